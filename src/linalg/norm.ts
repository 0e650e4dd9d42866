/**
 * @file `ad.linalg.norm`: vector and matrix norms with NumPy's `ord`/`axis` semantics. Norms are
 * composed from primitives with the double-where pattern at 0, so ‖x‖ at the origin has the
 * subgradient 0 (PyTorch's convention) instead of 0/0.
 */

import type { Tensor, TensorLike } from "../core/tensor.js";
import { inOp, ShapeError } from "../errors.js";
import { promoteArgs } from "../ops/convert.js";
import {
  abs,
  astype,
  equal,
  greater,
  matmul,
  max,
  min,
  notEqual,
  pow,
  reshape,
  sqrt,
  sum,
  swapLastAxes,
  transpose,
  where,
} from "../ops/index.js";
import { safeNorm } from "../ops/nn.js";
import { normAxes } from "../shape.js";
import { eigh } from "./eigh.js";

export interface NormOptions {
  /**
   * Vector norms (1-D input or one axis): 2 (default), 1, Infinity (max |xᵢ|), -Infinity
   * (min |xᵢ|), 0 (the count of non-zeros, zero derivative) or any other p ≠ 0:
   * (Σ|xᵢ|ᵖ)^(1/p), as NumPy (a negative p gives 0 when an entry is 0).
   * Matrix norms (2-D input or two axes): "fro" (default), 1 (max column sum of |aᵢⱼ|), -1 (min
   * column sum), Infinity (max row sum), -Infinity (min row sum), 2 (the largest singular
   * value), -2 (the smallest) and "nuc" (their sum). Singular values are the square roots of the
   * eigenvalues of the smaller Gram matrix (A Aᵀ or Aᵀ A, `eigh`): the largest is accurate to
   * working precision, the smallest to about ε·σ_max²/σ_min (enough unless A is ill-conditioned).
   */
  ord?: number | "fro" | "nuc";
  /** One axis (vector norm) or two axes (matrix norm); default: the whole tensor (flattened). */
  axis?: number | readonly [number, number];
  keepdims?: boolean;
}

/** s^(1/p) with a zero gradient (not NaN) where s = 0. */
function root(s: Tensor, p: number): Tensor {
  const zero = equal(s, 0);
  return where(zero, 0, pow(where(zero, 1, s), 1 / p));
}

function vectorNorm(x: Tensor, ord: number, axis: number[], keepdims: boolean): Tensor {
  const o = { axis, keepdims };
  if (ord === 2) return safeNorm(x, axis, keepdims);
  if (ord === Infinity) return max(abs(x), o);
  if (ord === -Infinity) return min(abs(x), o);
  if (ord === 0) return sum(astype(notEqual(x, 0), x.dtype), o);
  if (ord === 1) return sum(abs(x), o);
  if (Number.isNaN(ord)) throw new ShapeError("norm: vector ord must be a number or ±Infinity, got NaN");
  return root(sum(pow(abs(x), ord), o), ord);
}

/** Singular values of the matrices over axes (r, c) of x (moved last), from the smaller Gram matrix. */
function singularValues(x: Tensor, r: number, c: number): Tensor {
  const rest = x.shape.map((_, i) => i).filter((i) => i !== r && i !== c);
  const a = transpose(x, [...rest, r, c]);
  const m = x.shape[r]!;
  const n = x.shape[c]!;
  const gram = m <= n ? matmul(a, swapLastAxes(a)) : matmul(swapLastAxes(a), a);
  const [w] = eigh(gram);
  // σ = √max(w, 0) (rounding can leave a zero eigenvalue slightly negative), with the double-where
  // pattern at 0 so that a zero singular value has gradient 0 (as ‖x‖₂ at the origin) not 0·∞.
  const pos = greater(w, 0);
  return where(pos, sqrt(where(pos, w, 1)), 0);
}

function matrixNorm(
  x: Tensor,
  ord: number | "fro" | "nuc",
  axes: [number, number],
  keepdims: boolean,
): Tensor {
  const [r, c] = axes;
  if (ord === "fro") return safeNorm(x, axes, keepdims);
  if (ord === 2 || ord === -2 || ord === "nuc") {
    const s = singularValues(x, r, c);
    const out = ord === 2 ? max(s, { axis: -1 }) : ord === -2 ? min(s, { axis: -1 }) : sum(s, { axis: -1 });
    if (!keepdims) return out;
    const shape = x.shape.slice();
    shape[r] = 1;
    shape[c] = 1;
    return reshape(out, shape);
  }
  // Induced norms: 1 = max column sum, Infinity = max row sum (min for the negative orders).
  const [inner, outer] = ord === 1 || ord === -1 ? [r, c] : [c, r];
  if (!(ord === 1 || ord === -1 || ord === Infinity || ord === -Infinity))
    throw new ShapeError(
      `norm: matrix ord ${ord} is not supported (use "fro", "nuc", 1, -1, 2, -2, Infinity or -Infinity)`,
    );
  const sums = sum(abs(x), { axis: inner, keepdims: true });
  const pick = ord > 0 ? max : min;
  const out = pick(sums, { axis: outer, keepdims: true });
  return keepdims
    ? out
    : reshape(
        out,
        x.shape.filter((_, i) => i !== r && i !== c),
      );
}

/**
 * Vector or matrix norm (NumPy `linalg.norm` semantics). Gradient 0 at the origin.
 * @example
 * ad.linalg.norm(ad.tensor([3, 4])).item(); // 5
 * ad.grad((x) => ad.linalg.norm(x))(ad.tensor([0, 0])).toArray(); // [0, 0]
 */
export function norm(x: TensorLike, opts: NormOptions = {}): Tensor {
  return inOp("norm", () => {
    const t = promoteArgs("norm", [x], "float")[0]!;
    const keepdims = opts.keepdims ?? false;
    const { ord, axis } = opts;
    if (axis === undefined) {
      if (ord === undefined || (ord === "fro" && t.ndim === 2)) return safeNorm(t, undefined, keepdims);
      if (t.ndim === 2) return matrixNorm(t, ord, [0, 1], keepdims);
      if (t.ndim === 1 && typeof ord === "number") return vectorNorm(t, ord, [0], keepdims);
      if (t.ndim === 1)
        throw new ShapeError(`norm: ord ${JSON.stringify(ord)} is a matrix norm; got a 1-D tensor`);
      throw new ShapeError(
        `norm: ord ${String(ord)} needs a 1-D or 2-D tensor or an explicit axis, got rank ${t.ndim}`,
      );
    }
    const axes = normAxes(typeof axis === "number" ? axis : [...axis], t.ndim, "norm");
    if (axes.length === 1) {
      if (ord !== undefined && typeof ord !== "number")
        throw new ShapeError(`norm: ord ${JSON.stringify(ord)} is a matrix norm and needs two axes`);
      return vectorNorm(t, ord ?? 2, axes, keepdims);
    }
    if (axes.length === 2) {
      const list = typeof axis === "number" ? axes : normAxesOrdered(axis, t.ndim);
      return matrixNorm(t, ord ?? "fro", [list[0]!, list[1]!], keepdims);
    }
    throw new ShapeError(`norm: axis must name one or two axes, got ${JSON.stringify(axis)}`);
  });
}

/** Two axes in the order given (row axis first), normalised. */
function normAxesOrdered(axis: readonly number[], ndim: number): number[] {
  return axis.map((a) => (a < 0 ? a + ndim : a));
}
