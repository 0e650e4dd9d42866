/**
 * @file Batched matrix multiplication, the one contraction primitive: `[...b, m, k] @ [...b, k, n]`
 * with identical batch dims (the ops layer broadcasts them). `dot`, `outer`, `einsum` and
 * `matmul`'s NumPy corner cases are composed from it.
 */

import { bind } from "../core/interpreter.js";
import { definePrimitive, type Primitive } from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { DTypeError, ShapeError } from "../errors.js";
import { reshape, transpose } from "../ops/index.js";
import { fmtShape, shapeEq, sizeOf } from "../shape.js";
import { checkArity, moveAxis, need, nz, sumTerms } from "./rules.js";
import { jetBilinear } from "./series.js";

/**
 * matmul's params: an operand may be read transposed in its last two axes (`op(A) = Aᵀ`). The
 * public `ad.matmul` never sets them; the reverse pass does (G Bᵀ and Aᵀ G are products of the
 * operands as stored, with no transposed copy), as JAX's dot_general contracts any dimensions.
 * Absent flags print nothing, so programs of plain products read as before.
 */
export interface MatmulParams {
  transA?: boolean;
  transB?: boolean;
}

/** `op(a) @ op(b)` as one `matmul` equation (operands of rank >= 2 with equal batch dims). */
export function matmulT(a: Tensor, b: Tensor, transA: boolean, transB: boolean): Tensor {
  const p: MatmulParams = transA || transB ? { transA, transB } : {};
  return bind(matmulP, [a, b], p)[0]!;
}

/** m, k, n of `op(A) @ op(B)` from the stored shapes. */
function dims(
  sa: readonly number[],
  sb: readonly number[],
  p: MatmulParams,
): [number, number, number, number] {
  const r = sa.length;
  const m = p.transA ? sa[r - 1]! : sa[r - 2]!;
  const k = p.transA ? sa[r - 2]! : sa[r - 1]!;
  const k2 = p.transB ? sb[r - 1]! : sb[r - 2]!;
  const n = p.transB ? sb[r - 2]! : sb[r - 1]!;
  return [m, k, k2, n];
}

// d(op(A) op(B)) = op(dA) op(B) + op(A) op(dB);  vjp for C = A B: (G Bᵀ, Aᵀ G), and the
// transposed forms for the other three (each one product of the operands as stored).
export const matmulP: Primitive<MatmulParams> = definePrimitive<MatmulParams>({
  name: "matmul",
  saves: "inputs",
  abstractEval(avals, p) {
    checkArity("matmul", avals, 2);
    const [a, b] = avals;
    const sa = a!.shape;
    const sb = b!.shape;
    if (a!.dtype !== b!.dtype)
      throw new DTypeError(`matmul: operand dtypes differ (${a!.dtype}, ${b!.dtype})`);
    if (a!.dtype === "bool") throw new DTypeError("matmul: bool operands are not supported");
    if (sa.length < 2 || sa.length !== sb.length || !shapeEq(sa.slice(0, -2), sb.slice(0, -2)))
      throw new ShapeError(
        `matmul: operands ${fmtShape(sa)} and ${fmtShape(sb)} need rank >= 2 and equal batch dims`,
      );
    const [m, k, k2, n] = dims(sa, sb, p);
    if (k !== k2)
      throw new ShapeError(
        `matmul: contracting dimensions differ: lhs ${fmtShape(sa)} has ${k} columns, rhs ${fmtShape(sb)} has ${k2} rows`,
      );
    return [
      {
        shape: [...sa.slice(0, -2), m, n],
        dtype: a!.dtype,
        weakType: a!.weakType && b!.weakType,
      },
    ];
  },
  impl(bk, [x, y], [a, b], p) {
    const sa = a!.shape;
    const [m, k, , n] = dims(sa, b!.shape, p);
    const trans = p.transA || p.transB ? { a: p.transA === true, b: p.transB === true } : undefined;
    return [bk.matmul(x!, y!, sizeOf(sa.slice(0, -2)), m, k, n, a!.dtype, trans)];
  },
  jvp: ([a, b], [ta, tb], [out], p) => {
    const tA = p.transA === true;
    const tB = p.transB === true;
    return [
      sumTerms(
        out!,
        nz(ta!, (t) => matmulT(t, b!, tA, tB)),
        nz(tb!, (t) => matmulT(a!, t, tA, tB)),
      ),
    ];
  },
  vjp: ([ct], [a, b], _o, p, needs) => {
    const g = ct!;
    const tA = p.transA === true;
    const tB = p.transB === true;
    // C = op(A) op(B). dop(A) = G op(B)ᵀ and dop(B) = op(A)ᵀ G, transposed back where op is.
    const dA = (): Tensor =>
      !tA ? matmulT(g, b!, false, !tB) : tB ? matmulT(b!, g, true, true) : matmulT(b!, g, false, true);
    const dB = (): Tensor =>
      !tB ? matmulT(a!, g, !tA, false) : tA ? matmulT(g, a!, true, true) : matmulT(g, a!, true, false);
    return [need(needs, 0, a!, dA), need(needs, 1, b!, dB)];
  },
  // jet: bilinear, so the Cauchy product, (AB)_k = Σ_j C(k, j) A_j B_{k−j}
  jet: (primals, series, outs, p) =>
    jetBilinear<MatmulParams>((x, y) => matmulT(x, y, p.transA === true, p.transB === true))(
      primals,
      series,
      outs,
      p,
    ),
  showParams: (p) => [p.transA ? "transA" : "", p.transB ? "transB" : ""].filter((x) => x !== "").join(","),
  // A batched alone: its batch rows join the m rows ([.., n·m, k] @ B); B batched alone: its batch
  // columns join the n columns (A @ [.., k, n·p]); both: the batch axis is one more leading dim.
  batch: ([a0, b0], [da, db], p0) => {
    // Transposed operands are made plain first (moving the batch axis would move their last two).
    let a = a0!;
    let b = b0!;
    if (p0.transA || p0.transB) {
      // Swap the example's last two axes, the batch axis (at d) staying where it is.
      const swap = (x: Tensor, d: number | null | undefined) => {
        const ex = Array.from({ length: x.ndim }, (_, i) => i).filter((i) => i !== d);
        const i1 = ex[ex.length - 2]!;
        const i2 = ex[ex.length - 1]!;
        const perm = Array.from({ length: x.ndim }, (_, i) => (i === i1 ? i2 : i === i2 ? i1 : i));
        return transpose(x, perm);
      };
      if (p0.transA) a = swap(a, da);
      if (p0.transB) b = swap(b, db);
    }
    const p: MatmulParams = {};
    const r = a.ndim - (da === null ? 0 : 1); // rank of one example
    if (da !== null && da !== undefined && (db === null || db === undefined)) {
      const x = moveAxis(a!, da, r - 2); // [..., n, m, k]
      const s = x.shape;
      const n = s[r - 2]!;
      const y = bind(matmulP, [reshape(x, [...s.slice(0, r - 2), n * s[r - 1]!, s[r]!]), b!], p)[0]!;
      return [[reshape(y, [...s.slice(0, r - 2), n, s[r - 1]!, y.shape[r - 1]!])], [r - 2]];
    }
    if (da === null || da === undefined) {
      const x = moveAxis(b!, db!, r - 1); // [..., k, n, p]
      const s = x.shape;
      const n = s[r - 1]!;
      const y = bind(matmulP, [a!, reshape(x, [...s.slice(0, r - 1), n * s[r]!])], p)[0]!;
      return [[reshape(y, [...y.shape.slice(0, r - 1), n, s[r]!])], [r - 1]];
    }
    return [bind(matmulP, [moveAxis(a!, da, 0), moveAxis(b!, db!, 0)], p), [0]];
  },
});
