/**
 * @file Gradient clipping as a function: `clipGradient(x, maxNorm)` is the identity in the
 * forward pass and rescales the cotangent flowing back through it to norm at most `maxNorm`
 * (`ad.customVjp`). Put it where a gradient may explode — here, the state of a recurrence —
 * and everything upstream sees a clipped gradient.
 *
 * Run: npx tsx examples/clip-gradient.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/**
 * The identity, with the cotangent clipped to L2 norm `maxNorm` on its way back.
 * `maxNorm` is a JS number, so it is passed through unchanged and gets no cotangent.
 * @example
 * ad.grad((x: ad.Tensor) => ad.sum(ad.mul(clipGradient(x, 1), ad.tensor([3, 4]))))(ad.zeros([2])); // [0.6, 0.8]
 */
export const clipGradient = ad.customVjp((x: ad.Tensor, _maxNorm: number) => x, {
  fwd: (x, maxNorm) => [x, maxNorm],
  // Math: x̄ = ȳ · min(1, maxNorm / ‖ȳ‖₂) (a zero cotangent stays zero: maxNorm / 0 = ∞).
  bwd: (maxNorm, g) => {
    const norm = ad.sqrt(ad.sum(ad.square(g)));
    return [ad.mul(g, ad.minimum(1, ad.div(maxNorm, norm))), null];
  },
});

/** A recurrence h ← tanh(W h + x) that multiplies gradients by ~3 per step, with or without clipping. */
export function recurrentGrad(steps: number, maxNorm: number | null): ad.Tensor {
  const W = ad.tensor(
    [
      [3, 0.5],
      [-0.5, 3],
    ],
    { dtype: "float64" },
  );
  const x = ad.tensor([0.01, -0.02], { dtype: "float64" });
  const loss = (h0: ad.Tensor) => {
    let h = h0;
    for (let i = 0; i < steps; i++) {
      h = ad.tanh(ad.add(ad.matmul(W, h), x));
      if (maxNorm !== null) h = clipGradient(h, maxNorm);
    }
    return ad.sum(h);
  };
  return ad.grad(loss)(ad.tensor([0.001, 0.002], { dtype: "float64" }));
}

function main(): void {
  const norm = (t: ad.Tensor) => ad.sqrt(ad.sum(ad.square(t))).item();
  console.log("gradient norm, 6 steps, no clipping :", norm(recurrentGrad(6, null)).toFixed(4));
  console.log("gradient norm, 6 steps, clipped to 1:", norm(recurrentGrad(6, 1)).toFixed(4));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
