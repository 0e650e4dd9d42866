/**
 * @file A deep-equilibrium (DEQ) layer trained by gradient descent. The layer's output is the
 * fixed point z = tanh(W z + U x + b) — an "infinitely deep" weight-tied network — found by
 * `ad.fixedPoint`, whose gradient wrt (W, U, b) comes from the implicit function theorem: one
 * adjoint solve at the equilibrium, with memory that does not depend on how many iterations the
 * forward solve took. A linear readout maps z to a prediction; the loss is the mean squared error
 * on a small regression task, and a few steps of plain gradient descent lower it.
 *
 * Run: node --import tsx examples/deq-layer.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** The trainable parameters: the layer (W, U, b) and a linear readout (v, c). */
export interface DeqParams {
  W: ad.Tensor;
  U: ad.Tensor;
  b: ad.Tensor;
  v: ad.Tensor;
  c: ad.Tensor;
}

/**
 * Small random parameters: W scaled so that the map is a contraction (‖W‖ < 1, tanh' ≤ 1).
 * @example initDeq(8, 2, 0).W.shape; // [8, 8]
 */
export function initDeq(hidden: number, inputs: number, seed: number): DeqParams {
  const [k1, k2, k3] = ad.random.split(ad.random.key(seed), 3) as ad.Tensor[];
  return {
    W: ad.mul(ad.random.normal(k1!, [hidden, hidden], { dtype: "float64" }), 0.3 / Math.sqrt(hidden)),
    U: ad.random.normal(k2!, [hidden, inputs], { dtype: "float64" }),
    b: ad.zeros([hidden, 1], { dtype: "float64" }),
    v: ad.mul(ad.random.normal(k3!, [1, hidden], { dtype: "float64" }), 1 / Math.sqrt(hidden)),
    c: ad.zeros([1, 1], { dtype: "float64" }),
  };
}

/**
 * The equilibrium Z [hidden, batch] of z = tanh(W z + U x + b) for every column x of X [inputs, batch].
 * @example deqForward(initDeq(8, 2, 0), ad.ones([2, 5], { dtype: "float64" })).shape; // [8, 5]
 */
export function deqForward(p: DeqParams, X: ad.Tensor): ad.Tensor {
  const injected = ad.add(ad.matmul(p.U, X), p.b); // U x + b, computed once
  return ad.fixedPoint(
    (q: { W: ad.Tensor; inj: ad.Tensor }, z: ad.Tensor) => ad.tanh(ad.add(ad.matmul(q.W, z), q.inj)),
    { W: p.W, inj: injected },
    ad.zeros([p.W.shape[0]!, X.shape[1]!], { dtype: "float64" }),
  ) as ad.Tensor;
}

/** Mean squared error of the readout v·z + c against targets Y [1, batch]. */
export function deqLoss(p: DeqParams, X: ad.Tensor, Y: ad.Tensor): ad.Tensor {
  const pred = ad.add(ad.matmul(p.v, deqForward(p, X)), p.c);
  return ad.mean(ad.square(ad.sub(pred, Y)));
}

/** A toy regression task: y = sin(x₁) + x₂²/2 on random points of [-1.5, 1.5]². */
export function toyData(batch: number, seed: number): { X: ad.Tensor; Y: ad.Tensor } {
  const X = ad.random.uniform(ad.random.key(seed), [2, batch], {
    minval: -1.5,
    maxval: 1.5,
    dtype: "float64",
  });
  const [x1, x2] = ad.split(X, 2, 0) as [ad.Tensor, ad.Tensor];
  return { X, Y: ad.add(ad.sin(x1), ad.mul(0.5, ad.square(x2))) };
}

/**
 * Train for `steps` steps of gradient descent with learning rate `lr`; the loss at every step.
 * @example trainDeq({ steps: 3 }).length; // 4 (the initial loss and one per step)
 */
export function trainDeq(
  opts: { steps?: number; lr?: number; hidden?: number; batch?: number; seed?: number } = {},
) {
  const { steps = 20, lr = 0.1, hidden = 8, batch = 32, seed = 0 } = opts;
  const { X, Y } = toyData(batch, seed + 1);
  let params = initDeq(hidden, 2, seed);
  const valueAndGrad = ad.valueAndGrad((p: DeqParams) => deqLoss(p, X, Y));
  const losses: number[] = [];
  for (let k = 0; k < steps; k++) {
    const [loss, g] = valueAndGrad(params);
    losses.push((loss as ad.Tensor).item());
    params = ad.tree.map((w: ad.Tensor, gw: ad.Tensor) => ad.sub(w, ad.mul(lr, gw)), params, g) as DeqParams;
  }
  losses.push(deqLoss(params, X, Y).item());
  return losses;
}

function main(): void {
  const losses = trainDeq({ steps: 30 });
  for (const [k, l] of losses.entries())
    if (k % 5 === 0 || k === losses.length - 1) console.log(`step ${k}: loss ${l.toFixed(5)}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
