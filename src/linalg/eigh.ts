/** @file `ad.linalg.eigh`: eigenvalues and eigenvectors of symmetric matrices. */

import { bind } from "../core/interpreter.js";
import type { Tensor, TensorLike } from "../core/tensor.js";
import { inOp } from "../errors.js";
import { promoteArgs } from "../ops/convert.js";
import { eighP } from "../primitives/linalg-decomp.js";
import { squareSize } from "./solve.js";

/**
 * Eigendecomposition of symmetric matrices `[..., n, n]` (the symmetric part (A + Aᵀ)/2 is
 * used, as JAX does): `[w, V]` with the eigenvalues w `[..., n]` in ascending order and the
 * orthonormal eigenvectors as the columns of V `[..., n, n]`, A V = V diag(w); each column's
 * largest component is positive, so the result is unique for distinct eigenvalues. Cyclic
 * Jacobi rotations in float64. Derivatives in both modes, to any order: dw = diag(Vᵀ dA V) and
 * dV = V (F ∘ Vᵀ dA V) with F_ij = 1/(w_j − w_i), exact for distinct eigenvalues; an exactly
 * repeated pair has no unique eigenvectors and its term is dropped (0, not an infinity), so the
 * eigenvalues' gradients stay finite at a degenerate matrix such as the identity. NaN or
 * infinite input gives NaN.
 * @example
 * const [w, v] = ad.linalg.eigh(ad.tensor([[2, 1], [1, 2]], { dtype: "float64" }));
 * w.toArray(); // [1, 3]
 * v.toArray(); // [[0.7071…, 0.7071…], [-0.7071…, 0.7071…]]
 */
export function eigh(a: TensorLike): [Tensor, Tensor] {
  return inOp("eigh", () => {
    const x = promoteArgs("eigh", [a], "float")[0]!;
    squareSize("eigh", x);
    const [w, v] = bind(eighP, [x], {});
    return [w!, v!];
  });
}
