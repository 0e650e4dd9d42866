/**
 * @file A numerically stable `logsumexp` over the last axis with a softmax VJP
 * (`ad.customVjp`). The forward pass shifts by the (finite) maximum so that `exp` never
 * overflows, and keeps the softmax as its residual; the backward pass is one multiplication,
 * ȳ · softmax(x). Both stay exact at x = [1000, 1000] and at all -Inf (value -Inf, gradient
 * uniform: the limit of softmax of equal inputs), where a naive formula gives Inf or NaN.
 *
 * Run: npx tsx examples/stable-logsumexp.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** The pieces of a shifted log-sum-exp along the last axis (size-1 axis kept): e = exp(x - shift), s = Σ e. */
function shifted(x: ad.Tensor): { e: ad.Tensor; s: ad.Tensor; y: ad.Tensor } {
  // Shift by the maximum when it is finite (so exp never overflows), by 0 otherwise.
  const m = ad.stopGradient(ad.max(x, { axis: -1, keepdims: true }));
  const shift = ad.where(ad.isfinite(m), m, 0);
  const e = ad.exp(ad.sub(x, shift));
  const s = ad.sum(e, { axis: -1, keepdims: true });
  return { e, s, y: ad.add(ad.log(s), shift) };
}

/**
 * Stable log-sum-exp over the last axis; its gradient is softmax(x).
 * @example
 * stableLogsumexp(ad.tensor([1000, 1000], { dtype: "float64" })).item(); // 1000.6931471805599
 */
export const stableLogsumexp = ad.customVjp((x: ad.Tensor) => ad.squeeze(shifted(x).y, -1), {
  fwd: (x) => {
    const { e, s, y } = shifted(x);
    const n = x.shape[x.ndim - 1]!;
    // softmax = e / s; all -Inf (s = 0) gives the uniform limit instead of 0/0.
    const softmax = ad.where(ad.equal(s, 0), 1 / n, ad.div(e, s));
    return [ad.squeeze(y, -1), softmax];
  },
  // Math: x̄ = ȳ · softmax(x) (ȳ broadcast along the reduced axis).
  bwd: (softmax, g) => [ad.mul(ad.expandDims(g, -1), softmax)],
});

function main(): void {
  const big = ad.tensor([1000, 1000], { dtype: "float64" });
  const ninf = ad.tensor([-Infinity, -Infinity], { dtype: "float64" });
  const naive = (x: ad.Tensor) => ad.log(ad.sum(ad.exp(x)));
  for (const [name, x] of [
    ["[1000, 1000]", big],
    ["[-Inf, -Inf]", ninf],
  ] as const) {
    const [v, g] = ad.valueAndGrad(stableLogsumexp)(x);
    const [nv, ng] = ad.valueAndGrad(naive)(x);
    console.log(`${name}: stable ${v.item()} grad ${JSON.stringify(g.toArray())}`);
    console.log(`${" ".repeat(name.length)}  naive  ${nv.item()} grad ${JSON.stringify(ng.toArray())}`);
  }
  const x = ad.tensor([0.5, -1, 2], { dtype: "float64" });
  console.log("Hessian (diag(s) - s sᵀ):", ad.hessian(stableLogsumexp)(x).toArray());
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
