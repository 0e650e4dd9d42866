/**
 * @file A straight-through estimator (STE) with `ad.customVjp`: `round` in the forward pass, the
 * identity in the backward pass. `round` has derivative 0 almost everywhere, so a model whose
 * weights pass through it cannot learn; the STE pretends the rounding was not there when the
 * gradient flows back (quantisation-aware training, binary networks).
 *
 * Run: node --import tsx examples/straight-through.ts
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
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
