/**
 * @file Elementwise binary arithmetic. Operands have one dtype (the ops layer promotes) and
 * broadcast as in NumPy inside the kernel, so every VJP sums its cotangent back to the operand's
 * shape with `unbroadcast`, and every batching rule lines the batch axes up for that
 * broadcasting (`broadcastBatcher`). Tie and zero conventions are written here, once.
 */

import type { BinaryKernel, DeviceBuffer } from "../backend/backend.js";
import { definePrimitive, type Primitive, type Tangent } from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import {
  add,
  div,
  equal,
  greater,
  less,
  log,
  mul,
  neg,
  pow,
  reciprocal,
  square,
  sub,
  where,
} from "../ops/index.js";
import {
  broadcastBatcher,
  checkArity,
  checkSameDType,
  elementwiseAval,
  type NoParams,
  need,
  nz,
  sumTerms,
  unbroadcast,
} from "./rules.js";

type JvpTerms = (
  x: Tensor,
  y: Tensor,
  out: Tensor,
  tx: Tangent,
  ty: Tangent,
) => [Tensor | null, Tensor | null];
type VjpTerms = (x: Tensor, y: Tensor, out: Tensor, ct: Tensor) => [() => Tensor, () => Tensor];

/**
 * A binary op from its kernel and its two partial rules. `vjp` returns thunks so that a
 * cotangent is only computed for an operand that wants one.
 */
function binary(
  name: string,
  kernel: BinaryKernel,
  saves: "none" | "inputs" | "all",
  jvp: JvpTerms,
  vjp: VjpTerms,
): Primitive<NoParams> {
  const prim: Primitive<NoParams> = definePrimitive<NoParams>({
    name,
    saves,
    abstractEval(avals) {
      checkArity(name, avals, 2);
      checkSameDType(name, avals);
      return [elementwiseAval(name, avals)];
    },
    impl(b, [x, y], [ax, ay], _p, [out]): DeviceBuffer[] {
      return [b.binary(kernel, x!, ax!.shape, y!, ay!.shape, out!.shape, ax!.dtype, out!.dtype)];
    },
    jvp([x, y], [tx, ty], [out]) {
      return [sumTerms(out!, ...jvp(x!, y!, out!, tx!, ty!))];
    },
    vjp([ct], [x, y], [out], _p, needs) {
      const [gx, gy] = vjp(x!, y!, out!, ct!);
      return [
        need(needs, 0, x!, () => unbroadcast(gx(), x!.shape)),
        need(needs, 1, y!, () => unbroadcast(gy(), y!.shape)),
      ];
    },
    // elementwise with NumPy broadcasting: align the batch axes, then apply the op once
    batch: broadcastBatcher(() => prim),
  });
  return prim;
}

/** Weight of the first operand in max/min: 1 where it wins, 0.5 on ties, 0 where it loses. */
function chooserWeight(x: Tensor, y: Tensor, wins: (a: Tensor, b: Tensor) => Tensor): Tensor {
  return where(wins(x, y), 1, where(equal(x, y), 0.5, 0)).astype(x.dtype);
}

/** log(x) with log(0) replaced by 0, for d/dy x^y (whose factor x^y is 0 there anyway). */
function logOrZero(x: Tensor): Tensor {
  const zero = equal(x, 0);
  return where(zero, 0, log(where(zero, 1, x)));
}

// d(x + y) = dx + dy
export const addP = binary(
  "add",
  "add",
  "none",
  (_x, _y, _o, tx, ty) => [nz(tx, (t) => t), nz(ty, (t) => t)],
  (_x, _y, _o, ct) => [() => ct, () => ct],
);
// d(x - y) = dx - dy
export const subP = binary(
  "sub",
  "sub",
  "none",
  (_x, _y, _o, tx, ty) => [nz(tx, (t) => t), nz(ty, neg)],
  (_x, _y, _o, ct) => [() => ct, () => neg(ct)],
);
// d(x y) = y dx + x dy
export const mulP = binary(
  "mul",
  "mul",
  "inputs",
  (x, y, _o, tx, ty) => [nz(tx, (t) => mul(t, y)), nz(ty, (t) => mul(x, t))],
  (x, y, _o, ct) => [() => mul(ct, y), () => mul(x, ct)],
);
// d(x / y) = dx / y - (x/y) dy / y
export const divP = binary(
  "div",
  "div",
  "all",
  (_x, y, out, tx, ty) => [nz(tx, (t) => div(t, y)), nz(ty, (t) => neg(mul(t, div(out, y))))],
  (_x, y, out, ct) => [() => div(ct, y), () => neg(mul(ct, div(out, y)))],
);
// d(x^y) = y x^(y-1) dx + log(x) x^y dy, with 0 for y = 0 in the first term and log(0) -> 0 in
// the second, so x^2 at 0 and 0^y have finite derivatives (never exp(y log x)).
const powDx = (x: Tensor, y: Tensor) => where(equal(y, 0), 0, mul(y, pow(x, sub(y, 1))));
const powDy = (x: Tensor, out: Tensor) => mul(logOrZero(x), out);
export const powP = binary(
  "pow",
  "pow",
  "all",
  (x, y, out, tx, ty) => [nz(tx, (t) => mul(t, powDx(x, y))), nz(ty, (t) => mul(t, powDy(x, out)))],
  (x, y, out, ct) => [() => mul(ct, powDx(x, y)), () => mul(ct, powDy(x, out))],
);
// d max(x, y) = w dx + (1 - w) dy with w = [x > y] + 0.5 [x = y]: ties split equally
export const maxP = binary(
  "max",
  "max",
  "inputs",
  (x, y, _o, tx, ty) => {
    const w = chooserWeight(x, y, greater);
    return [nz(tx, (t) => mul(t, w)), nz(ty, (t) => mul(t, sub(1, w)))];
  },
  (x, y, _o, ct) => {
    const w = chooserWeight(x, y, greater);
    return [() => mul(ct, w), () => mul(ct, sub(1, w))];
  },
);
// d min(x, y) = w dx + (1 - w) dy with w = [x < y] + 0.5 [x = y]
export const minP = binary(
  "min",
  "min",
  "inputs",
  (x, y, _o, tx, ty) => {
    const w = chooserWeight(x, y, less);
    return [nz(tx, (t) => mul(t, w)), nz(ty, (t) => mul(t, sub(1, w)))];
  },
  (x, y, _o, ct) => {
    const w = chooserWeight(x, y, less);
    return [() => mul(ct, w), () => mul(ct, sub(1, w))];
  },
);
// d atan2(x, y) = (y dx - x dy) / (x^2 + y^2)
const atan2Scale = (x: Tensor, y: Tensor) => reciprocal(add(square(x), square(y)));
export const atan2P = binary(
  "atan2",
  "atan2",
  "inputs",
  (x, y, _o, tx, ty) => {
    const s = atan2Scale(x, y);
    return [nz(tx, (t) => mul(t, mul(y, s))), nz(ty, (t) => neg(mul(t, mul(x, s))))];
  },
  (x, y, _o, ct) => {
    const s = atan2Scale(x, y);
    return [() => mul(ct, mul(y, s)), () => neg(mul(ct, mul(x, s)))];
  },
);
