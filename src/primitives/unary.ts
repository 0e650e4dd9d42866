/**
 * @file Elementwise unary primitives. A smooth elementwise op is fully described by its kernel
 * and its pointwise derivative d(x, y) (y = the output): jvp(t) = d·t and vjp(ct) = ct·d.
 * Ops whose derivative is zero wherever it exists (sign, floor, ceil, round) get symbolic zeros.
 * Every one batches the same way: f(x) of a batch is the batch of f(x), on the same axis.
 */

import type { Backend, DeviceBuffer, UnaryKernel } from "../backend/backend.js";
import { type Aval, definePrimitive, type Primitive } from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { Zero } from "../core/zero.js";
import {
  add,
  cos,
  cosh,
  exp,
  mul,
  neg,
  reciprocal,
  rsqrt,
  sign,
  sin,
  sinh,
  square,
  sub,
} from "../ops/index.js";
import { sizeOf } from "../shape.js";
import { checkArity, checkFloat, type NoParams, nz, unopBatcher } from "./rules.js";

type Deriv = (x: Tensor, y: Tensor) => Tensor;

/** Shape rule and kernel shared by every unary elementwise op. */
function elementwise1(name: string, kernel: UnaryKernel, floatOnly: boolean) {
  return {
    name,
    abstractEval(avals: readonly Aval[]): Aval[] {
      checkArity(name, avals, 1);
      const a = avals[0]!;
      if (floatOnly) checkFloat(name, a);
      return [{ shape: a.shape, dtype: a.dtype, weakType: a.weakType }];
    },
    impl(b: Backend, [x]: DeviceBuffer[], [a]: readonly Aval[]): DeviceBuffer[] {
      return [b.unary(kernel, x!, sizeOf(a!.shape), a!.dtype)];
    },
  };
}

/** A smooth unary op given its pointwise derivative. */
function smooth(
  name: string,
  kernel: UnaryKernel,
  d: Deriv,
  saves: "inputs" | "outputs",
): Primitive<NoParams> {
  const prim: Primitive<NoParams> = definePrimitive<NoParams>({
    ...elementwise1(name, kernel, true),
    saves,
    jvp: ([x], [t], [y]) => [mul(t as Tensor, d(x!, y!))],
    vjp: ([ct], [x], [y]) => [mul(ct!, d(x!, y!))],
    // f applies to each element, so the batch axis stays put
    batch: unopBatcher(() => prim),
  });
  return prim;
}

/** A unary op with zero derivative almost everywhere (and 0 chosen at the jumps). */
function piecewiseConstant(name: string, kernel: UnaryKernel): Primitive<NoParams> {
  const prim: Primitive<NoParams> = definePrimitive<NoParams>({
    ...elementwise1(name, kernel, false),
    saves: "none",
    jvp: (_, __, [y]) => [Zero.like(y!)],
    vjp: (_, [x]) => [Zero.like(x!)],
    // elementwise: the batch axis stays put
    batch: unopBatcher(() => prim),
  });
  return prim;
}

const TWO_OVER_SQRT_PI = 1.1283791670955126;

// d(-x) = -dx (linear: the rules apply the op itself)
export const negP: Primitive<NoParams> = definePrimitive<NoParams>({
  ...elementwise1("neg", "neg", false),
  saves: "none",
  jvp: (_, [t]) => [nz(t!, neg) ?? t!],
  vjp: ([ct]) => [neg(ct!)],
  // elementwise: the batch axis stays put
  batch: unopBatcher(() => negP),
});
// d(e^x) = e^x dx
export const expP = smooth("exp", "exp", (_, y) => y, "outputs");
// d(log x) = dx / x
export const logP = smooth("log", "log", (x) => reciprocal(x), "inputs");
// d(log(1+x)) = dx / (1+x)
export const log1pP = smooth("log1p", "log1p", (x) => reciprocal(add(x, 1)), "inputs");
// d(e^x - 1) = e^x dx
export const expm1P = smooth("expm1", "expm1", (_, y) => add(y, 1), "outputs");
// d(sqrt x) = dx / (2 sqrt x); +Inf at 0, as IEEE says
export const sqrtP = smooth("sqrt", "sqrt", (_, y) => mul(reciprocal(y), 0.5), "outputs");
// d(sin x) = cos x dx
export const sinP = smooth("sin", "sin", (x) => cos(x), "inputs");
// d(cos x) = -sin x dx
export const cosP = smooth("cos", "cos", (x) => neg(sin(x)), "inputs");
// d(tan x) = (1 + tan^2 x) dx
export const tanP = smooth("tan", "tan", (_, y) => add(square(y), 1), "outputs");
// d(asin x) = dx / sqrt(1 - x^2)
export const asinP = smooth("asin", "asin", (x) => rsqrt(sub(1, square(x))), "inputs");
// d(acos x) = -dx / sqrt(1 - x^2)
export const acosP = smooth("acos", "acos", (x) => neg(rsqrt(sub(1, square(x)))), "inputs");
// d(atan x) = dx / (1 + x^2)
export const atanP = smooth("atan", "atan", (x) => reciprocal(add(square(x), 1)), "inputs");
// d(sinh x) = cosh x dx
export const sinhP = smooth("sinh", "sinh", (x) => cosh(x), "inputs");
// d(cosh x) = sinh x dx
export const coshP = smooth("cosh", "cosh", (x) => sinh(x), "inputs");
// d(tanh x) = (1 - tanh^2 x) dx
export const tanhP = smooth("tanh", "tanh", (_, y) => sub(1, square(y)), "outputs");
// d(sigmoid x) = s (1 - s) dx; the kernel itself is stable for every |x|
export const logisticP = smooth("logistic", "logistic", (_, y) => mul(y, sub(1, y)), "outputs");
// d(erf x) = 2/sqrt(pi) e^{-x^2} dx
export const erfP = smooth("erf", "erf", (x) => mul(exp(neg(square(x))), TWO_OVER_SQRT_PI), "inputs");
// d|x| = sign(x) dx, so abs'(0) = 0: the subgradient that agrees with sign(0) = 0 (as PyTorch)
export const absP: Primitive<NoParams> = definePrimitive<NoParams>({
  ...elementwise1("abs", "abs", false),
  saves: "inputs",
  jvp: ([x], [t]) => [mul(t as Tensor, sign(x!))],
  vjp: ([ct], [x]) => [mul(ct!, sign(x!))],
  // elementwise: the batch axis stays put
  batch: unopBatcher(() => absP),
});
export const signP = piecewiseConstant("sign", "sign");
export const floorP = piecewiseConstant("floor", "floor");
export const ceilP = piecewiseConstant("ceil", "ceil");
export const roundP = piecewiseConstant("round", "round");
export const notP = piecewiseConstant("not", "not");
