/**
 * @file A straight-through estimator (STE) with `ad.customVjp`: `round` in the forward pass, the
 * identity in the backward pass. `round` has derivative 0 almost everywhere, so a model whose
 * weights pass through it cannot learn; the STE pretends the rounding was not there when the
 * gradient flows back (quantisation-aware training, binary networks).
 *
 * `quantisationAwareRegression` shows why it matters: least squares with 12 correlated features
 * whose weights must lie on a grid of step 1/4. Rounding the float solution (post-training
 * quantisation) ignores the correlations; fine-tuning through `roundSTE` (quantisation-aware
 * training) finds a better grid point. Without the STE the gradient is exactly zero and nothing
 * moves.
 *
 * Measured (seed 0): mean squared error 0.0105 in float, 0.358 after rounding, 0.170 after
 * quantisation-aware training (500 Adam steps); plain `round` leaves it at 0.358. 2 s of CPU time.
 *
 * Run: npx tsx examples/straight-through.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/**
 * round(x) whose derivative is 1 in every mode: reverse mode uses `bwd`, forward mode `jvp`.
 * @example
 * ad.grad((x: ad.Tensor) => ad.sum(roundSTE(x)))(ad.tensor([0.3, 1.7])); // [1, 1]
 */
export const roundSTE = ad.customVjp((x: ad.Tensor) => ad.round(x), {
  // Math: y = round(x); x̄ = ȳ (as if y = x).
  fwd: (x) => [ad.round(x), null],
  bwd: (_residuals, g) => [g],
  // Math: ẏ = ẋ.
  jvp: ([x], [t]) => [ad.round(x), t],
});

/** Fit a weight that is used quantised to a grid of step 1/4: y ≈ round(4w)/4 · x. */
export function fitQuantised(steps = 60, lr = 0.1): { w: number; quantised: number; loss: number } {
  const x = ad.tensor([1, 2, 3, 4], { dtype: "float64" });
  const y = ad.mul(x, 0.8); // the best weight on the grid is 0.75
  const loss = (w: ad.Tensor) => {
    const q = ad.div(roundSTE(ad.mul(w, 4)), 4);
    return ad.mean(ad.square(ad.sub(ad.mul(q, x), y)));
  };
  let w = ad.scalar(0, { dtype: "float64" });
  for (let i = 0; i < steps; i++) w = ad.sub(w, ad.mul(ad.grad(loss)(w), lr));
  return { w: w.item(), quantised: Math.round(w.item() * 4) / 4, loss: loss(w).item() };
}

function main(): void {
  const x = ad.tensor([0.3, 1.7, -2.5]);
  console.log("round(x)            :", roundSTE(x).toArray());
  console.log(
    "grad of plain round :",
    ad
      .grad((v: ad.Tensor) => ad.sum(ad.round(v)))(x)
      .toArray(),
  );
  console.log(
    "grad of STE round   :",
    ad
      .grad((v: ad.Tensor) => ad.sum(roundSTE(v)))(x)
      .toArray(),
  );
  const r = fitQuantised();
  console.log(`fitted w = ${r.w.toFixed(4)}, used as ${r.quantised}, loss ${r.loss.toExponential(3)}`);
  const q = quantisationAwareRegression();
  console.log("least squares with weights on a grid of 1/4 (mean squared error):");
  console.log(`  float weights                        ${q.floatLoss.toFixed(4)}`);
  console.log(`  rounded after training               ${q.roundedLoss.toFixed(4)}`);
  console.log(`  quantisation-aware training (STE)    ${q.steLoss.toFixed(4)}`);
  console.log(`  the same with plain round (grad = 0) ${q.plainRoundLoss.toFixed(4)}`);
}

/** What `quantisationAwareRegression` measures: mean squared errors of four weight vectors. */
export interface QuantisationResult {
  /** Unconstrained least squares. */
  floatLoss: number;
  /** The float solution rounded to the grid (post-training quantisation). */
  roundedLoss: number;
  /** Fine-tuned through `roundSTE`: the best grid point seen during training. */
  steLoss: number;
  /** The same fine-tuning through plain `round` (zero gradient). */
  plainRoundLoss: number;
}

/**
 * Least squares on correlated features with weights restricted to multiples of `grid`:
 * post-training rounding against quantisation-aware fine-tuning with the straight-through
 * estimator (Adam with cosine-decayed step size on latent float weights; the forward pass, and so
 * the loss, always uses the rounded weights).
 * @example
 * const r = quantisationAwareRegression();
 * r.steLoss < r.roundedLoss; // true
 */
export function quantisationAwareRegression(
  opts: { seed?: number; steps?: number; grid?: number; lr?: number } = {},
): QuantisationResult {
  const n = 400;
  const d = 12;
  const grid = opts.grid ?? 0.25;
  const steps = opts.steps ?? 500;
  const f64 = { dtype: "float64" } as const;
  const [k1, k2, k3, k4] = ad.random.split(ad.random.key(opts.seed ?? 0), 4);
  // Correlated features: independent normals mixed by I + 0.6·(random matrix).
  const mixing = ad.add(ad.eye(d, f64), ad.mul(ad.random.normal(k1!, [d, d], f64), 0.6));
  const X = ad.matmul(ad.random.normal(k2!, [n, d], f64), mixing);
  const y = ad.add(
    ad.matmul(X, ad.random.normal(k3!, [d], f64)),
    ad.mul(ad.random.normal(k4!, [n], f64), 0.1),
  );
  const mse = (w: ad.Tensor) => ad.mean(ad.square(ad.sub(ad.matmul(X, w), y)));
  const Xt = ad.transpose(X);
  const wFloat = ad.linalg.solve(ad.matmul(Xt, X), ad.matmul(Xt, y));
  const quantised = (round: (t: ad.Tensor) => ad.Tensor) => (w: ad.Tensor) =>
    mse(ad.mul(round(ad.div(w, grid)), grid));
  const fineTune = (loss: (w: ad.Tensor) => ad.Tensor): number => {
    const tx = ad.optim.adam(ad.optim.cosineSchedule(opts.lr ?? 0.01, steps));
    let w = wFloat;
    let state = tx.init(w);
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < steps; i++) {
      const [l, g] = ad.valueAndGrad(loss)(w);
      // The loss is already that of the quantised weights, so keeping the best costs nothing:
      // STE updates hop between neighbouring grid points rather than settling.
      best = Math.min(best, l.item());
      const [u, next] = tx.update(g, state, w);
      w = ad.optim.applyUpdates(w, u);
      state = next;
    }
    return Math.min(best, loss(w).item());
  };
  return {
    floatLoss: mse(wFloat).item(),
    roundedLoss: quantised(ad.round)(wFloat).item(),
    steLoss: fineTune(quantised(roundSTE)),
    plainRoundLoss: fineTune(quantised(ad.round)),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
