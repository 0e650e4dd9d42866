/**
 * @file Batched matrix multiplication, the one contraction primitive: `[...b, m, k] @ [...b, k, n]`
 * with identical batch dims (the ops layer broadcasts them). `dot`, `outer`, `einsum` and
 * `matmul`'s NumPy corner cases are composed from it.
 */

import { definePrimitive } from "../core/primitive.js";
import { DTypeError, ShapeError } from "../errors.js";
import { matmul, swapLastAxes } from "../ops/index.js";
import { fmtShape, shapeEq, sizeOf } from "../shape.js";
import { checkArity, type NoParams, need, nz, sumTerms } from "./rules.js";

// d(A B) = dA B + A dB;  vjp: (G B^T, A^T G)
export const matmulP = definePrimitive<NoParams>({
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
});
