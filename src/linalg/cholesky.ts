/** @file `ad.linalg.cholesky`: the Cholesky factor of symmetric positive-definite matrices. */

import { bind1 } from "../core/interpreter.js";
import type { Tensor, TensorLike } from "../core/tensor.js";
import { inOp } from "../errors.js";
import { promoteArgs } from "../ops/convert.js";
import { add, mul, swapLastAxes } from "../ops/index.js";
import { choleskyP } from "../primitives/linalg-decomp.js";
import { squareSize } from "./solve.js";

export interface CholeskyOptions {
  /** Return the upper factor U = Lᵀ (A = Uᵀ U) instead of the lower one (default false). */
  upper?: boolean;
  /**
   * Factor the symmetric part ½(A + Aᵀ) (default true, as JAX), so that derivatives are those of
   * a function of a symmetric matrix and symmetric in turn. With false only the lower triangle of
   * A is read (as NumPy and LAPACK) and the strict upper triangle gets zero derivative.
   */
  symmetrizeInput?: boolean;
}

/**
 * The Cholesky factor L (lower triangular, positive diagonal) of symmetric positive-definite
 * matrices `[..., n, n]`, with A = L Lᵀ. A matrix that is not positive definite gives a factor of
 * NaNs (as JAX; NumPy raises `LinAlgError`) — check with `ad.isnan`, or inside `ad.detectAnomaly`.
 * Its derivative: dL = L Φ(L⁻¹ dA L⁻ᵀ), Φ = the lower triangle with the diagonal halved.
 * @example
 * ad.linalg.cholesky(ad.tensor([[4, 2], [2, 5]])).toArray(); // [[2, 0], [1, 2]]
 */
export function cholesky(a: TensorLike, opts: CholeskyOptions = {}): Tensor {
  return inOp("cholesky", () => {
    const x = promoteArgs("cholesky", [a], "float")[0]!;
    squareSize("cholesky", x);
    const sym = (opts.symmetrizeInput ?? true) ? mul(add(x, swapLastAxes(x)), 0.5) : x;
    const l = bind1(choleskyP, [sym], {});
    return opts.upper ? swapLastAxes(l) : l;
  });
}
