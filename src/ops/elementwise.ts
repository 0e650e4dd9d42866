/**
 * @file Elementwise operations: thin wrappers that promote dtypes and call `bind`, plus the
 * composites (relu, softplus, gelu, ...) built from primitives so they inherit every rule.
 */

import { bind1 } from "../core/interpreter.js";
import type { Primitive } from "../core/primitive.js";
import type { Tensor, TensorLike } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { inOp, relabel } from "../errors.js";
import * as P from "../primitives/index.js";
import type { NoParams } from "../primitives/rules.js";
import { promoteArgs, toTensor } from "./convert.js";

/**
 * The params of every parameterless primitive call, shared: one allocation less per operation
 * (rules never modify params).
 */
const NO_PARAMS: NoParams = Object.freeze({}) as NoParams;

const floatUnary =
  (prim: Primitive<NoParams>, op: string) =>
  (x: TensorLike): Tensor => {
    try {
      return bind1(prim, promoteArgs(op, [x], "float"), NO_PARAMS);
    } catch (e) {
      throw relabel(e, op);
    }
  };
const anyUnary =
  (prim: Primitive<NoParams>, op: string) =>
  (x: TensorLike): Tensor => {
    try {
      return bind1(prim, promoteArgs(op, [x], "number"), NO_PARAMS);
    } catch (e) {
      throw relabel(e, op);
    }
  };
const arith =
  (prim: Primitive<NoParams>, op: string, kind: "any" | "number" | "float" = "number") =>
  (x: TensorLike, y: TensorLike): Tensor => {
    try {
      return bind1(prim, promoteArgs(op, [x, y], kind), NO_PARAMS);
    } catch (e) {
      throw relabel(e, op);
    }
  };
const compare = (prim: Primitive<NoParams>, op: string) => arith(prim, op, "any");

/** -x. @example ad.neg(ad.tensor([1, -2])).toArray(); // [-1, 2] */
export const neg = anyUnary(P.negP, "neg");
/** e^x. @example ad.exp(0).item(); // 1 */
export const exp = floatUnary(P.expP, "exp");
/** Natural logarithm. @example ad.log(1).item(); // 0 */
export const log = floatUnary(P.logP, "log");
/** log(1 + x), accurate near 0. @example ad.log1p(0).item(); // 0 */
export const log1p = floatUnary(P.log1pP, "log1p");
/** e^x - 1, accurate near 0. @example ad.expm1(0).item(); // 0 */
export const expm1 = floatUnary(P.expm1P, "expm1");
/** Square root (its derivative at 0 is +Inf, as IEEE says). @example ad.sqrt(4).item(); // 2 */
export const sqrt = floatUnary(P.sqrtP, "sqrt");
/** @example ad.sin(0).item(); // 0 */
export const sin = floatUnary(P.sinP, "sin");
/** @example ad.cos(0).item(); // 1 */
export const cos = floatUnary(P.cosP, "cos");
/** @example ad.tan(0).item(); // 0 */
export const tan = floatUnary(P.tanP, "tan");
/** @example ad.asin(0).item(); // 0 */
export const asin = floatUnary(P.asinP, "asin");
/** @example ad.acos(1).item(); // 0 */
export const acos = floatUnary(P.acosP, "acos");
/** @example ad.atan(0).item(); // 0 */
export const atan = floatUnary(P.atanP, "atan");
/** @example ad.sinh(0).item(); // 0 */
export const sinh = floatUnary(P.sinhP, "sinh");
/** @example ad.cosh(0).item(); // 1 */
export const cosh = floatUnary(P.coshP, "cosh");
/** @example ad.tanh(0).item(); // 0 */
export const tanh = floatUnary(P.tanhP, "tanh");
/** 1 / (1 + e^-x), finite for every x. @example ad.sigmoid(0).item(); // 0.5 */
export const sigmoid = floatUnary(P.logisticP, "sigmoid");
/** The error function. @example ad.erf(0).item(); // 0 */
export const erf = floatUnary(P.erfP, "erf");
/** |x| (derivative sign(x), so 0 at 0). @example ad.abs(-2).item(); // 2 */
export const abs = anyUnary(P.absP, "abs");
/** -1, 0 or 1 (zero derivative). @example ad.sign(-3).item(); // -1 */
export const sign = anyUnary(P.signP, "sign");
/** Round down (zero derivative). @example ad.floor(1.5).item(); // 1 */
export const floor = anyUnary(P.floorP, "floor");
/** Round up (zero derivative). @example ad.ceil(1.5).item(); // 2 */
export const ceil = anyUnary(P.ceilP, "ceil");
/** Round half to even, as NumPy (zero derivative). @example ad.round(2.5).item(); // 2 */
export const round = anyUnary(P.roundP, "round");

/** @example ad.add(ad.tensor([1, 2]), 1).toArray(); // [2, 3] */
export const add = arith(P.addP, "add");
/** @example ad.sub(3, 1).item(); // 2 */
export const sub = arith(P.subP, "sub");
/** @example ad.mul(ad.tensor([1, 2]), 3).toArray(); // [3, 6] */
export const mul = arith(P.mulP, "mul");
/** True division (integers divide to float32). @example ad.div(1, 4).item(); // 0.25 */
export const div = arith(P.divP, "div", "float");
/**
 * x^y with finite derivatives at x = 0 (d/dx x^2 at 0 is 0; d/dy 0^y is 0).
 * @example ad.pow(2, 3).item(); // 8
 */
export const pow = arith(P.powP, "pow");
/** Elementwise max; at ties the derivative is split equally. @example ad.maximum(1, 2).item(); // 2 */
export const maximum = arith(P.maxP, "maximum");
/** Elementwise min; at ties the derivative is split equally. @example ad.minimum(1, 2).item(); // 1 */
export const minimum = arith(P.minP, "minimum");
/** atan(x / y) in the right quadrant. @example ad.atan2(1, 1).item(); // 0.785... */
export const atan2 = arith(P.atan2P, "atan2", "float");

/** @example ad.equal(ad.tensor([1, 2]), 2).toArray(); // [false, true] */
export const equal = compare(P.eqP, "equal");
/** @example ad.notEqual(1, 2).item(); // 1 (true) */
export const notEqual = compare(P.neP, "notEqual");
/** @example ad.less(1, 2).item(); // 1 (true) */
export const less = compare(P.ltP, "less");
/** @example ad.lessEqual(2, 2).item(); // 1 (true) */
export const lessEqual = compare(P.leP, "lessEqual");
/** @example ad.greater(1, 2).item(); // 0 (false) */
export const greater = compare(P.gtP, "greater");
/** @example ad.greaterEqual(2, 2).item(); // 1 (true) */
export const greaterEqual = compare(P.geP, "greaterEqual");

/** Elementwise logical and of bool tensors. @example ad.logicalAnd(ad.tensor([true]), ad.tensor([false])).toArray(); // [false] */
export function logicalAnd(x: Tensor, y: Tensor): Tensor {
  return inOp("logicalAnd", () => bind1(P.andP, [asBool(x), asBool(y)], {}));
}
/** Elementwise logical or. @example ad.logicalOr(ad.tensor([true]), ad.tensor([false])).toArray(); // [true] */
export function logicalOr(x: Tensor, y: Tensor): Tensor {
  return inOp("logicalOr", () => bind1(P.orP, [asBool(x), asBool(y)], {}));
}
/** Elementwise logical not. @example ad.logicalNot(ad.tensor([true])).toArray(); // [false] */
export function logicalNot(x: Tensor): Tensor {
  return bind1(P.notP, [asBool(x)], {});
}

function asBool(x: TensorLike): Tensor {
  const t = toTensor(x, "logical");
  return t.dtype === "bool" ? t : notEqual(t, 0);
}

/**
 * True where x is NaN.
 * @example ad.isnan(ad.tensor([NaN, 1])).toArray(); // [true, false]
 */
export function isnan(x: TensorLike): Tensor {
  const t = toTensor(x, "isnan");
  return notEqual(t, t);
}

/**
 * True where x is neither NaN nor ±Inf.
 * @example ad.isfinite(ad.tensor([Infinity, 1])).toArray(); // [false, true]
 */
export function isfinite(x: TensorLike): Tensor {
  const t = toTensor(x, "isfinite");
  if (!isFloat(t.dtype)) return equal(t, t);
  // x - x is 0 for finite x and NaN for ±Inf and NaN.
  return equal(sub(t, t), 0);
}

/**
 * Select elementwise: `a` where `cond` is true, else `b` (broadcasting all three).
 * The untaken branch receives an exact zero cotangent; use the double-where pattern
 * (`where(m, f(where(m, x, safe)), other)`) when that branch would be NaN/Inf.
 * @example ad.where(ad.tensor([true, false]), 1, 2).toArray(); // [1, 2]
 */
export function where(cond: TensorLike, a: TensorLike, b: TensorLike): Tensor {
  return inOp("where", () => {
    const c = asBool(cond);
    const [x, y] = promoteArgs("where", [a, b]);
    return bind1(P.selectP, [c, x!, y!], {});
  });
}

/**
 * `x`, with zero derivative in every mode.
 * @example ad.grad((x) => ad.stopGradient(x).mul(x))(3); // 3
 */
export function stopGradient(x: TensorLike): Tensor {
  return bind1(P.stopGradientP, [toTensor(x, "stopGradient")], {});
}

/** x·x. @example ad.square(3).item(); // 9 */
export function square(x: TensorLike): Tensor {
  const t = promoteArgs("square", [x], "number")[0]!;
  return mul(t, t);
}

/** 1/x. @example ad.reciprocal(4).item(); // 0.25 */
export function reciprocal(x: TensorLike): Tensor {
  return div(1, promoteArgs("reciprocal", [x], "float")[0]!);
}

/** 1/sqrt(x). @example ad.rsqrt(4).item(); // 0.5 */
export function rsqrt(x: TensorLike): Tensor {
  return reciprocal(sqrt(x));
}

/** max(x, 0) with relu'(0) = 0. @example ad.relu(ad.tensor([-1, 2])).toArray(); // [0, 2] */
export function relu(x: TensorLike): Tensor {
  const t = promoteArgs("relu", [x], "number")[0]!;
  return where(greater(t, 0), t, 0);
}

/**
 * log(1 + e^x), stable for every |x|: max(x, 0) + log1p(e^-|x|). Its derivative is sigmoid(x).
 * @example ad.softplus(0).item(); // 0.693...
 */
export function softplus(x: TensorLike): Tensor {
  const t = promoteArgs("softplus", [x], "float")[0]!;
  // Two smooth branches, x + log1p(e^-x) for x > 0 and log1p(e^x) otherwise (the same values as
  // max(x, 0) + log1p(e^-|x|)), so every derivative at 0 is softplus's own: the kinks of max and
  // |x| there gave a second derivative of 0 instead of 1/4. Double where: no overflow in either.
  const pos = greater(t, 0);
  const a = where(pos, t, 0);
  return where(pos, add(a, log1p(exp(neg(a)))), log1p(exp(where(pos, 0, t))));
}

/**
 * Gaussian error linear unit: exact erf form x·Φ(x), or the tanh approximation.
 * @example ad.gelu(0).item(); // 0
 */
export function gelu(x: TensorLike, opts: { approximate?: "none" | "tanh" } = {}): Tensor {
  const t = promoteArgs("gelu", [x], "float")[0]!;
  if (opts.approximate === "tanh") {
    const inner = mul(add(t, mul(pow(t, 3), 0.044715)), Math.sqrt(2 / Math.PI));
    return mul(mul(t, 0.5), add(tanh(inner), 1));
  }
  return mul(mul(t, 0.5), add(erf(mul(t, Math.SQRT1_2)), 1));
}
