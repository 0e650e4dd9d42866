/**
 * @file MAML on sine-wave regression (Finn, Abbeel & Levine 2017): learn an initialisation θ of a
 * small MLP from which ONE gradient step on K = 10 points of a new sine wave fits that wave.
 * The meta-gradient differentiates through the inner gradient step, so it contains
 * second derivatives (grad of a function that calls grad); first-order MAML (FOMAML) drops them
 * by stopping the gradient of the inner step. Tasks are batched with `ad.vmap` and the whole
 * meta-gradient is compiled once with `ad.jit`.
 *
 * Task: y = A·sin(x − φ), A ∈ [0.1, 5], φ ∈ [0, π], x ∈ [−5, 5]; model 1 → 40 → 40 → 1 (ReLU);
 * inner step: SGD with α = 0.01 on the mean squared error of the K support points; outer: Adam
 * with learning rate 3e-3 on the query points of 25 tasks per meta-step, 600 meta-steps.
 *
 * Measured on 200 held-out tasks (query MSE): MAML 3.031 before adaptation, 0.930 after one
 * step, 0.531 after ten; FOMAML 3.542, 1.605 and 1.027. Both runs together: 12.6 s of CPU time
 * (43 s wall-clock on a shared 2-core machine).
 *
 * Run: npx tsx examples/maml-sine.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** The MLP's parameters. */
export type Params = Record<"w1" | "b1" | "w2" | "b2" | "w3" | "b3", ad.Tensor>;

/**
 * Initial parameters: weights uniform in ±1/√fanIn (PyTorch's `nn.Linear` default), zero biases.
 * A small output layer matters here: with a larger initialisation the first inner step at
 * α = 0.01 overshoots (gradients of the squared error are large for |y| up to 5).
 * @example
 * initParams(ad.random.key(0)).w1.shape; // [1, 40]
 */
export function initParams(key: ad.Tensor, hidden = 40): Params {
  const [k1, k2, k3] = ad.random.split(key, 3);
  const w = (k: ad.Tensor, fanIn: number, fanOut: number) =>
    ad.random.uniform(k, [fanIn, fanOut], { minval: -1 / Math.sqrt(fanIn), maxval: 1 / Math.sqrt(fanIn) });
  return {
    w1: w(k1!, 1, hidden),
    b1: ad.zeros([hidden]),
    w2: w(k2!, hidden, hidden),
    b2: ad.zeros([hidden]),
    w3: w(k3!, hidden, 1),
    b3: ad.zeros([1]),
  };
}

/** The network on inputs `x: [n, 1]`. */
export function net(p: Params, x: ad.Tensor): ad.Tensor {
  const h1 = ad.relu(ad.add(ad.matmul(x, p.w1), p.b1));
  const h2 = ad.relu(ad.add(ad.matmul(h1, p.w2), p.b2));
  return ad.add(ad.matmul(h2, p.w3), p.b3);
}

/** Mean squared error of the network on one task's points. */
export function mse(p: Params, x: ad.Tensor, y: ad.Tensor): ad.Tensor {
  return ad.mean(ad.square(ad.sub(net(p, x), y)));
}

/**
 * `steps` plain gradient steps from `p` on the support set. With `firstOrder` the inner
 * gradients are constants for the outer derivative (FOMAML); otherwise the outer gradient flows
 * through them (MAML: Hessian–vector products appear in the meta-gradient).
 */
export function adapt(
  p: Params,
  xs: ad.Tensor,
  ys: ad.Tensor,
  alpha: number,
  steps = 1,
  firstOrder = false,
): Params {
  let q = p;
  for (let s = 0; s < steps; s++) {
    const g = ad.grad(mse)(q, xs, ys);
    q = ad.tree.map(
      (w: ad.Tensor, gw: ad.Tensor) => ad.sub(w, ad.mul(firstOrder ? ad.stopGradient(gw) : gw, alpha)),
      q,
      g,
    ) as Params;
  }
  return q;
}

/** A batch of sine tasks: support and query points `[tasks, K, 1]`. */
export interface TaskBatch {
  xs: ad.Tensor;
  ys: ad.Tensor;
  xq: ad.Tensor;
  yq: ad.Tensor;
}

/**
 * Sample `tasks` sine waves and K support and K query points of each.
 * @example
 * sampleTasks(ad.random.key(1), 25, 10).xs.shape; // [25, 10, 1]
 */
export function sampleTasks(key: ad.Tensor, tasks: number, k: number): TaskBatch {
  const [ka, kp, kx] = ad.random.split(key, 3);
  const amp = ad.random.uniform(ka!, [tasks, 1, 1], { minval: 0.1, maxval: 5 });
  const phase = ad.random.uniform(kp!, [tasks, 1, 1], { minval: 0, maxval: Math.PI });
  const x = ad.random.uniform(kx!, [tasks, 2 * k, 1], { minval: -5, maxval: 5 });
  const y = ad.mul(amp, ad.sin(ad.sub(x, phase)));
  const [xs, xq] = ad.split(x, 2, 1);
  const [ys, yq] = ad.split(y, 2, 1);
  return { xs: xs!, ys: ys!, xq: xq!, yq: yq! };
}

/** Options of `metaTrain`. */
export interface MetaOptions {
  iterations?: number;
  tasksPerBatch?: number;
  k?: number;
  alpha?: number;
  metaLr?: number;
  firstOrder?: boolean;
  seed?: number;
}

/**
 * Meta-train an initialisation with MAML (or FOMAML with `firstOrder`).
 * @example
 * const theta = metaTrain({ iterations: 100 });
 */
export function metaTrain(opts: MetaOptions = {}): Params {
  const alpha = opts.alpha ?? 0.01;
  const firstOrder = opts.firstOrder ?? false;
  const k = opts.k ?? 10;
  const tasks = opts.tasksPerBatch ?? 25;
  const [kInit, kData] = ad.random.split(ad.random.key(opts.seed ?? 0));
  // The query loss after adaptation, averaged over the task batch (vmap over the task axis).
  const metaLoss = (p: Params, b: TaskBatch) =>
    ad.mean(
      ad.vmap((xs: ad.Tensor, ys: ad.Tensor, xq: ad.Tensor, yq: ad.Tensor) =>
        mse(adapt(p, xs, ys, alpha, 1, firstOrder), xq, yq),
      )(b.xs, b.ys, b.xq, b.yq),
    );
  const metaGrad = ad.jit(ad.valueAndGrad(metaLoss));
  const tx = ad.optim.adam(opts.metaLr ?? 3e-3);
  let params = initParams(kInit!);
  let state = tx.init(params);
  const keys = ad.random.split(kData!, opts.iterations ?? 600);
  for (const key of keys) {
    const [, g] = metaGrad(params, sampleTasks(key, tasks, k));
    const [updates, next] = tx.update(g, state, params);
    params = ad.optim.applyUpdates(params, updates);
    state = next;
  }
  return params;
}

/** Mean query MSE over held-out tasks before and after `steps` adaptation steps. */
export function evaluate(
  p: Params,
  opts: { tasks?: number; k?: number; alpha?: number; steps?: number; seed?: number } = {},
): { before: number; after: number } {
  const b = sampleTasks(ad.random.key(opts.seed ?? 1234), opts.tasks ?? 200, opts.k ?? 10);
  const alpha = opts.alpha ?? 0.01;
  const steps = opts.steps ?? 1;
  const per = ad.vmap((xs: ad.Tensor, ys: ad.Tensor, xq: ad.Tensor, yq: ad.Tensor) =>
    ad.stack([mse(p, xq, yq), mse(adapt(p, xs, ys, alpha, steps), xq, yq)]),
  )(b.xs, b.ys, b.xq, b.yq);
  const [before, after] = ad.mean(per, { axis: 0 }).toArray() as number[];
  return { before: before!, after: after! };
}

function main(): void {
  for (const firstOrder of [false, true]) {
    const t0 = performance.now();
    const p = metaTrain({ firstOrder });
    const s = (performance.now() - t0) / 1000;
    const e1 = evaluate(p);
    const e10 = evaluate(p, { steps: 10 });
    console.log(
      `${firstOrder ? "FOMAML" : "MAML  "}: ${s.toFixed(1)} s; held-out query MSE before adaptation ${e1.before.toFixed(3)}, ` +
        `after 1 step ${e1.after.toFixed(3)}, after 10 steps ${e10.after.toFixed(3)}`,
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
