/**
 * @file `ad.linalg.det` and `ad.linalg.slogdet`. `det` is one primitive whose derivative is
 * Jacobi's formula with the cofactor matrix, computed from the pivoted LU so that it stays exact
 * at singular matrices of rank n − 1; `slogdet` is composed from the `lu` primitive.
 */

import { bind, bind1 } from "../core/interpreter.js";
import type { Tensor, TensorLike } from "../core/tensor.js";
import { inOp } from "../errors.js";
import { promoteArgs } from "../ops/convert.js";
import { abs, log, mul, prod, sign, sum } from "../ops/index.js";
import { detP, diagonal, luP, pivotSign } from "../primitives/linalg-decomp.js";
import { squareSize } from "./solve.js";

/**
 * Determinants of square matrices `[..., n, n]` (LU with partial pivoting, the product taken in
 * float64). A singular matrix gives exactly 0 when elimination meets an exact zero pivot, and its
 * gradient is still the cofactor matrix adj(A)ᵀ — exact for rank n − 1, 0 for lower rank.
 * Integer inputs are promoted to float32.
 * @example
 * ad.linalg.det(ad.tensor([[1, 2], [3, 4]])).item(); // -2
 * ad.grad((a) => ad.linalg.det(a))(ad.tensor([[1, 2], [3, 4]])).toArray(); // [[4, -3], [-2, 1]]
 */
export function det(a: TensorLike): Tensor {
  return inOp("det", () => {
    const x = promoteArgs("det", [a], "float")[0]!;
    squareSize("det", x);
    return bind1(detP, [x], {});
  });
}

/**
 * Sign and natural log of the absolute determinant, `[sign, logabsdet]`, each `[...]` for input
 * `[..., n, n]`: det = sign · exp(logabsdet) without overflow or underflow. A singular matrix gives
 * sign 0 and logabsdet −Inf (as NumPy and JAX); the gradient of logabsdet is A⁻ᵀ (Inf/NaN there).
 * @example
 * const [s, l] = ad.linalg.slogdet(ad.tensor([[0, 2], [3, 0]]));
 * s.item(); // -1
 * l.item(); // ≈ 1.7918 (log 6)
 */
export function slogdet(a: TensorLike): [Tensor, Tensor] {
  return inOp("slogdet", () => {
    const x = promoteArgs("slogdet", [a], "float")[0]!;
    squareSize("slogdet", x);
    const [lu, pivots] = bind(luP, [x], {}) as [Tensor, Tensor, Tensor];
    const u = diagonal(lu);
    // d logabsdet = Σ du_ii / u_ii = tr(A⁻¹ dA), through the lu rule
    return [mul(pivotSign(pivots, x), prod(sign(u), { axis: -1 })), sum(log(abs(u)), { axis: -1 })];
  });
}
