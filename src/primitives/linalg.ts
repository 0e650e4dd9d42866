/**
 * @file Batched matrix multiplication, the one contraction primitive: `[...b, m, k] @ [...b, k, n]`
 * with identical batch dims (the ops layer broadcasts them). `dot`, `outer`, `einsum` and
 * `matmul`'s NumPy corner cases are composed from it.
 */

import { bind } from "../core/interpreter.js";
import { definePrimitive, type Primitive } from "../core/primitive.js";
import { DTypeError, ShapeError } from "../errors.js";
import { matmul, reshape, swapLastAxes } from "../ops/index.js";
import { fmtShape, shapeEq, sizeOf } from "../shape.js";
import { checkArity, moveAxis, type NoParams, need, nz, sumTerms } from "./rules.js";
import { jetBilinear } from "./series.js";

// d(A B) = dA B + A dB;  vjp: (G B^T, A^T G)
export const matmulP: Primitive<NoParams> = definePrimitive<NoParams>({
  name: "matmul",
  saves: "inputs",
  abstractEval(avals) {
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
    if (sa[sa.length - 1] !== sb[sb.length - 2])
      throw new ShapeError(
        `matmul: contracting dimensions differ: lhs ${fmtShape(sa)} has ${sa[sa.length - 1]} columns, rhs ${fmtShape(sb)} has ${sb[sb.length - 2]} rows`,
      );
    return [
      {
        shape: [...sa.slice(0, -1), sb[sb.length - 1]!],
        dtype: a!.dtype,
        weakType: a!.weakType && b!.weakType,
      },
    ];
  },
  impl(bk, [x, y], [a, b]) {
    const sa = a!.shape;
    const sb = b!.shape;
    const m = sa[sa.length - 2]!;
    const k = sa[sa.length - 1]!;
    const n = sb[sb.length - 1]!;
    return [bk.matmul(x!, y!, sizeOf(sa.slice(0, -2)), m, k, n, a!.dtype)];
  },
  jvp: ([a, b], [ta, tb], [out]) => [
    sumTerms(
      out!,
      nz(ta!, (t) => matmul(t, b!)),
      nz(tb!, (t) => matmul(a!, t)),
    ),
  ],
  vjp: ([ct], [a, b], _o, _p, needs) => [
    need(needs, 0, a!, () => matmul(ct!, swapLastAxes(b!))),
    need(needs, 1, b!, () => matmul(swapLastAxes(a!), ct!)),
  ],
  // jet: bilinear, so the Cauchy product, (AB)_k = Σ_j C(k, j) A_j B_{k−j}
  jet: jetBilinear((a, b) => matmul(a, b)),
  // A batched alone: its batch rows join the m rows ([.., n·m, k] @ B); B batched alone: its batch
  // columns join the n columns (A @ [.., k, n·p]); both: the batch axis is one more leading dim.
  batch: ([a, b], [da, db], p) => {
    const r = a!.ndim - (da === null ? 0 : 1); // rank of one example
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
