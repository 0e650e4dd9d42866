/**
 * @file `ad.linalg.solve`, `inv`, `triangularSolve` and `luFactor`: linear systems through the
 * `lu` and `triangular_solve` primitives, batched over leading axes that broadcast as in NumPy.
 * Their derivatives come from those primitives' matrix-calculus rules (d(A⁻¹b) = A⁻¹(db − dA x)
 * in effect), never from differentiating elimination loops.
 *
 * Singular matrices follow JAX, not NumPy: no exception (a value-dependent error could not be
 * raised under `jit` or `vmap`), the exact zero pivot of U gives IEEE Inf/NaN in the result.
 */

import { bind } from "../core/interpreter.js";
import type { Tensor, TensorLike } from "../core/tensor.js";
import { inOp, ShapeError } from "../errors.js";
import { promoteArgs } from "../ops/convert.js";
import { broadcastTo, expandDims, eye, squeeze, swapLastAxes } from "../ops/index.js";
import { luP, permuteRows, trisolve } from "../primitives/linalg-decomp.js";
import { broadcastShapes, fmtShape, shapeEq } from "../shape.js";

/** @internal Check `[..., n, n]` and return n (a ShapeError naming the op and the shape otherwise). */
export function squareSize(op: string, a: Tensor, what = "a"): number {
  const s = a.shape;
  if (s.length < 2 || s[s.length - 1] !== s[s.length - 2])
    throw new ShapeError(
      `${op}: ${what} must be a square matrix or a stack of them [..., n, n], got shape ${fmtShape(s)}`,
    );
  return s[s.length - 1]!;
}

/** @internal The common batch shape of two `[..., r, c]` operands. */
function batchOf(op: string, a: Tensor, b: Tensor): number[] {
  try {
    return broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), op);
  } catch {
    throw new ShapeError(
      `${op}: the batch dimensions of a ${fmtShape(a.shape)} and b ${fmtShape(b.shape)} cannot be broadcast together`,
    );
  }
}

/**
 * Whether `b` is a vector right-hand side for `a` (PyTorch's rule): `b` is 1-D, or a stack of
 * vectors with exactly the leading shape of `a` (`b.shape` = `a.shape[:-1]`). Anything else is a
 * stack of matrices whose batch dims broadcast against those of `a`.
 */
function isVectorRhs(a: Tensor, b: Tensor): boolean {
  return b.ndim === 1 || (b.ndim === a.ndim - 1 && shapeEq(b.shape, a.shape.slice(0, -1)));
}

/** The LU factors and permutation of `a`, and `b` as matrices, all broadcast to one batch shape. */
function luAndRhs(
  op: string,
  a: Tensor,
  b: Tensor,
): { lu: Tensor; perm: Tensor; rhs: Tensor; vector: boolean } {
  const n = squareSize(op, a);
  if (b.ndim === 0) throw new ShapeError(`${op}: b must have rank >= 1, got shape ${fmtShape(b.shape)}`);
  const vector = isVectorRhs(a, b);
  const m = vector ? expandDims(b, -1) : b;
  if (m.shape[m.ndim - 2] !== n)
    throw new ShapeError(
      `${op}: a ${fmtShape(a.shape)} is ${n}×${n} but b ${fmtShape(b.shape)} has ${m.shape[m.ndim - 2]} ${vector ? "entries" : "rows"}`,
    );
  const batch = batchOf(op, a, m);
  const [lu, , perm] = bind(luP, [a], {}) as [Tensor, Tensor, Tensor];
  return {
    lu: broadcastTo(lu, [...batch, n, n]),
    perm: broadcastTo(perm, [...batch, n]),
    rhs: broadcastTo(m, [...batch, n, m.shape[m.ndim - 1]!]),
    vector,
  };
}

/** x = U⁻¹ L⁻¹ P b from packed LU factors (batch dims already equal). */
function luSolve(lu: Tensor, perm: Tensor, b: Tensor): Tensor {
  const y = trisolve(lu, permuteRows(b, perm), { lower: true, transposeA: false, unitDiagonal: true });
  return trisolve(lu, y, { lower: false, transposeA: false, unitDiagonal: false });
}

/**
 * Solve `a x = b` for square `a [..., n, n]` (LU with partial pivoting). `b` is a vector `[n]`, a
 * stack of vectors shaped exactly `a.shape[:-1]` (PyTorch's rule), or otherwise matrices
 * `[..., n, k]` whose batch dims broadcast against those of `a`. Integer inputs are
 * promoted to float32. A singular `a` gives Inf/NaN (as JAX; NumPy raises instead).
 * Differentiable in both arguments: d x = A⁻¹ (db − dA x).
 * @example
 * const a = ad.tensor([[3, 1], [1, 2]], { dtype: "float64" });
 * ad.linalg.solve(a, ad.tensor([9, 8], { dtype: "float64" })).toArray(); // [2, 3]
 */
export function solve(a: TensorLike, b: TensorLike): Tensor {
  return inOp("solve", () => {
    const [x, y] = promoteArgs("solve", [a, b], "float") as [Tensor, Tensor];
    const { lu, perm, rhs, vector } = luAndRhs("solve", x, y);
    const out = luSolve(lu, perm, rhs);
    return vector ? squeeze(out, -1) : out;
  });
}

/**
 * The inverse of square matrices `[..., n, n]` (LU with partial pivoting; d A⁻¹ = −A⁻¹ dA A⁻¹).
 * A singular matrix gives Inf/NaN entries (as JAX; NumPy raises `LinAlgError`).
 * @example ad.linalg.inv(ad.tensor([[2, 0], [0, 4]])).toArray(); // [[0.5, 0], [0, 0.25]]
 */
export function inv(a: TensorLike): Tensor {
  return inOp("inv", () => {
    const x = promoteArgs("inv", [a], "float")[0]!;
    const n = squareSize("inv", x);
    const [lu, , perm] = bind(luP, [x], {}) as [Tensor, Tensor, Tensor];
    return luSolve(lu, perm, broadcastTo(eye(n, { dtype: x.dtype }), x.shape));
  });
}

export interface TriangularSolveOptions {
  /** `a` is lower triangular (default false: upper, as SciPy's `solve_triangular`). Only that triangle is read. */
  lower?: boolean;
  /** Solve with aᵀ instead of a (default false). */
  transposeA?: boolean;
  /** Take the diagonal of `a` as all ones without reading it (default false). */
  unitDiagonal?: boolean;
  /** Solve `op(a) x = b` (true, the default) or `x op(a) = b` (false). */
  leftSide?: boolean;
}

/**
 * Solve a triangular system `op(a) x = b` (or `x op(a) = b` with `leftSide: false`) by
 * substitution, reading only the triangle of `a` that `lower` names. `b` is a vector (or a stack
 * of vectors, by the rule of `solve`) or matrices `[..., n, k]` (`[..., k, n]` on the right side);
 * batch dims broadcast. A zero on the diagonal gives Inf/NaN. Differentiable in both arguments.
 * @example
 * const l = ad.tensor([[2, 0], [1, 1]], { dtype: "float64" });
 * ad.linalg.triangularSolve(l, ad.tensor([4, 3], { dtype: "float64" }), { lower: true }).toArray(); // [2, 1]
 */
export function triangularSolve(a: TensorLike, b: TensorLike, opts: TriangularSolveOptions = {}): Tensor {
  return inOp("triangularSolve", () => {
    const { lower = false, transposeA = false, unitDiagonal = false, leftSide = true } = opts;
    const [x, y] = promoteArgs("triangularSolve", [a, b], "float") as [Tensor, Tensor];
    const n = squareSize("triangularSolve", x);
    if (y.ndim === 0)
      throw new ShapeError(`triangularSolve: b must have rank >= 1, got shape ${fmtShape(y.shape)}`);
    const vector = isVectorRhs(x, y);
    // The right side x op(a) = b is op(a)ᵀ xᵀ = bᵀ.
    let m = vector ? expandDims(y, -1) : leftSide ? y : swapLastAxes(y);
    if (m.shape[m.ndim - 2] !== n)
      throw new ShapeError(
        `triangularSolve: a ${fmtShape(x.shape)} is ${n}×${n} but b ${fmtShape(y.shape)} has ${m.shape[m.ndim - 2]} ${vector ? "entries" : leftSide ? "rows" : "columns"}`,
      );
    const batch = batchOf("triangularSolve", x, m);
    m = broadcastTo(m, [...batch, n, m.shape[m.ndim - 1]!]);
    const out = trisolve(broadcastTo(x, [...batch, n, n]), m, {
      lower,
      transposeA: leftSide ? transposeA : !transposeA,
      unitDiagonal,
    });
    return vector ? squeeze(out, -1) : leftSide ? out : swapLastAxes(out);
  });
}

/** The result of `luFactor`. */
export interface LuFactorization {
  /** Packed factors `[..., n, n]`: L (unit lower triangular) below the diagonal, U on and above. */
  lu: Tensor;
  /** LAPACK-style int32 pivots `[..., n]` (0-based): row i was swapped with row `pivots[i]` at step i. */
  pivots: Tensor;
  /** The int32 row permutation `[..., n]`: `a[permutation] = L U`. */
  permutation: Tensor;
}

/**
 * LU factorisation with partial pivoting of square matrices `[..., n, n]` (JAX's `lax.linalg.lu`):
 * `a[permutation] = L U`. Differentiable in `lu` (the pivots and permutation are integers). A
 * singular matrix factors without error, with a zero on U's diagonal.
 * @example
 * const { lu, permutation } = ad.linalg.luFactor(ad.tensor([[0, 1], [2, 3]]));
 * permutation.toArray(); // [1, 0]
 * lu.toArray(); // [[2, 3], [0, 1]]
 */
export function luFactor(a: TensorLike): LuFactorization {
  return inOp("luFactor", () => {
    const x = promoteArgs("luFactor", [a], "float")[0]!;
    squareSize("luFactor", x);
    const [lu, pivots, permutation] = bind(luP, [x], {}) as [Tensor, Tensor, Tensor];
    return { lu, pivots, permutation };
  });
}
