/**
 * @file Comparisons, logical ops and `select` (the primitive behind `where`). Comparisons have a
 * zero derivative, never "no gradient": they may appear anywhere inside a differentiated function.
 */

import type { BinaryKernel } from "../backend/backend.js";
import { definePrimitive, type Primitive } from "../core/primitive.js";
import { Zero } from "../core/zero.js";
import { DTypeError } from "../errors.js";
import { where } from "../ops/index.js";
import {
  broadcastBatcher,
  checkArity,
  checkSameDType,
  elementwiseAval,
  instantiate,
  type NoParams,
  need,
  unbroadcast,
} from "./rules.js";
import { jetLinear, jetZero } from "./series.js";

function comparison(name: string, kernel: BinaryKernel, boolOnly = false): Primitive<NoParams> {
  const prim: Primitive<NoParams> = definePrimitive<NoParams>({
    name,
    saves: "none",
    abstractEval(avals) {
      checkArity(name, avals, 2);
      checkSameDType(name, avals);
      if (boolOnly && avals[0]!.dtype !== "bool")
        throw new DTypeError(`${name}: expected bool operands, got ${avals[0]!.dtype}`);
      return [{ shape: elementwiseAval(name, avals).shape, dtype: "bool", weakType: false }];
    },
    impl: (b, [x, y], [ax, ay], _p, [out]) => [
      b.binary(kernel, x!, ax!.shape, y!, ay!.shape, out!.shape, ax!.dtype, "bool"),
    ],
    jvp: (_, __, [out]) => [Zero.like(out!)],
    vjp: (_, [x, y]) => [Zero.like(x!), Zero.like(y!)],
    // bool output: no Taylor coefficients
    jet: jetZero(),
    // elementwise with NumPy broadcasting: align the batch axes, then compare once
    batch: broadcastBatcher(() => prim),
  });
  return prim;
}

export const eqP = comparison("eq", "eq");
export const neP = comparison("ne", "ne");
export const ltP = comparison("lt", "lt");
export const leP = comparison("le", "le");
export const gtP = comparison("gt", "gt");
export const geP = comparison("ge", "ge");
export const andP = comparison("and", "and", true);
export const orP = comparison("or", "or", true);

// select(c, a, b): d = select(c, da, db); the cotangent goes to the chosen branch only (the
// other branch gets an exact 0, which is why a NaN-producing untaken branch needs double-where).
export const selectP: Primitive<NoParams> = definePrimitive<NoParams>({
  name: "select",
  saves: "inputs",
  abstractEval(avals) {
    checkArity("select", avals, 3);
    const [c, a, b] = avals;
    if (c!.dtype !== "bool") throw new DTypeError(`select: condition must be bool, got ${c!.dtype}`);
    checkSameDType("select", [a!, b!]);
    const shape = elementwiseAval("select", avals, a!.dtype).shape;
    return [{ shape, dtype: a!.dtype, weakType: a!.weakType && b!.weakType }];
  },
  impl: (bk, [c, a, b], [ac, aa, ab], _p, [out]) => [
    bk.select(c!, ac!.shape, a!, aa!.shape, b!, ab!.shape, out!.shape, out!.dtype),
  ],
  jvp: ([c], [, ta, tb]) => [where(c!, instantiate(ta!), instantiate(tb!))],
  vjp: ([ct], [c, a, b], _o, _p, needs) => [
    Zero.like(c!),
    need(needs, 1, a!, () => unbroadcast(where(c!, ct!, 0), a!.shape)),
    need(needs, 2, b!, () => unbroadcast(where(c!, 0, ct!), b!.shape)),
  ],
  // jet: the condition picks each coefficient, y_k = select(c, a_k, b_k)
  jet: jetLinear(() => selectP),
  // the three operands broadcast together, so they batch like any elementwise op
  batch: broadcastBatcher(() => selectP),
});
