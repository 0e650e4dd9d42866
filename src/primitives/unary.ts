/**
 * @file Elementwise unary primitives. A smooth elementwise op is fully described by its kernel
 * and its pointwise derivative d(x, y) (y = the output): jvp(t) = d·t and vjp(ct) = ct·d.
 * Ops whose derivative is zero wherever it exists (sign, floor, ceil, round) get symbolic zeros.
 * Every one batches the same way: f(x) of a batch is the batch of f(x), on the same axis.
 * Taylor mode: each smooth op gives its series by the recurrence of an ODE it satisfies
 * (y' = y x' for exp, x y' = x' for log, ...; see `series.ts`); linear and piecewise-linear ones
 * map every coefficient through their JVP; piecewise-constant ones have zero series.
 */

import type { Backend, DeviceBuffer, UnaryKernel } from "../backend/backend.js";
import { type Aval, definePrimitive, type JetRule, type Primitive } from "../core/primitive.js";
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
  sqrt,
  square,
  sub,
} from "../ops/index.js";
import { sizeOf } from "../shape.js";
import { checkArity, checkFloat, type NoParams, nz, unopBatcher } from "./rules.js";
import {
  type Coeffs,
  cdiv,
  cexp,
  clog,
  cneg,
  coeffs,
  csqrt,
  csquare,
  csquareAt,
  deriv,
  fromCoeffs,
  integ,
  jetLinear,
  jetZero,
  minus,
  ode,
  scale,
  sinCos,
} from "./series.js";

type Deriv = (x: Tensor, y: Tensor) => Tensor;

/** A Taylor recurrence: the output's normalised coefficients from the input's `a` (a_0 = x), x and y. */
type Taylor = (a: Coeffs, x: Tensor, y: Tensor) => Coeffs;

/** The jet rule of a unary op from its recurrence on normalised coefficients. */
function taylorJet(rule: Taylor): JetRule<NoParams> {
  return ([x], [s], [y]) =>
    s === null || s === undefined ? [null] : [fromCoeffs(rule(coeffs(x!, s, s.length), x!, y!), y!)];
}

/** Shape rule and kernel shared by every unary elementwise op. */
function elementwise1(name: string, kernel: UnaryKernel, floatOnly: boolean) {
  return {
    name,
    abstractEval(avals: readonly Aval[]): Aval[] {
      checkArity(name, avals, 1);
      const a = avals[0]!;
      if (floatOnly) checkFloat(name, a);
      return [a]; // same shape, dtype and weak type (and no copy: this runs for every op)
    },
    // (indexed, not destructured, here and in the rules below: array destructuring goes through
    // the iterator protocol, which allocates in code the engine has not optimized yet)
    impl(b: Backend, xs: DeviceBuffer[], avals: readonly Aval[]): DeviceBuffer[] {
      const a = avals[0]!;
      return [b.unary(kernel, xs[0]!, sizeOf(a.shape), a.dtype)];
    },
  };
}

/** A smooth unary op given its pointwise derivative. */
function smooth(
  name: string,
  kernel: UnaryKernel,
  d: Deriv,
  saves: "inputs" | "outputs",
  taylor: Taylor,
): Primitive<NoParams> {
  const prim: Primitive<NoParams> = definePrimitive<NoParams>({
    ...elementwise1(name, kernel, true),
    saves,
    jvp: (xs, ts, ys) => [mul(ts[0] as Tensor, d(xs[0]!, ys[0]!))],
    vjp: (cts, xs, ys) => [mul(cts[0]!, d(xs[0]!, ys[0]!))],
    jet: taylorJet(taylor),
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
    jvp: (_, __, ys) => [Zero.like(ys[0]!)],
    vjp: (_, xs) => [Zero.like(xs[0]!)],
    // locally constant: every Taylor coefficient is 0
    jet: jetZero(),
    // elementwise: the batch axis stays put
    batch: unopBatcher(() => prim),
  });
  return prim;
}

const TWO_OVER_SQRT_PI = 1.1283791670955126;

/** The series of √(1 − x²) (asin, acos), from the series `a` of x. */
function sqrtOneMinusSquare(a: Coeffs, x: Tensor): Coeffs {
  const q: Coeffs = a.map((_, k) => (k === 0 ? sub(1, square(x)) : scale(csquareAt(a, k), -1)));
  return csqrt(q, sqrt(q[0]!));
}

// d(-x) = -dx (linear: the rules apply the op itself)
export const negP: Primitive<NoParams> = definePrimitive<NoParams>({
  ...elementwise1("neg", "neg", false),
  saves: "none",
  jvp: (_, ts) => [nz(ts[0]!, neg) ?? ts[0]!],
  vjp: (cts) => [neg(cts[0]!)],
  // y_k = −x_k
  jet: jetLinear(() => negP),
  // elementwise: the batch axis stays put
  batch: unopBatcher(() => negP),
});
// d(e^x) = e^x dx
// jet: y' = y x', so k c_k = Σ j a_j c_{k−j}
export const expP = smooth(
  "exp",
  "exp",
  (_, y) => y,
  "outputs",
  (a, _, y) => cexp(a, y),
);
// d(log x) = dx / x
// jet: x y' = x', so x c_k = a_k − (1/k) Σ j c_j a_{k−j}
export const logP = smooth(
  "log",
  "log",
  (x) => reciprocal(x),
  "inputs",
  (a, _, y) => clog(a, y),
);
// d(log(1+x)) = dx / (1+x)
// jet: log's recurrence on 1 + x
export const log1pP = smooth(
  "log1p",
  "log1p",
  (x) => reciprocal(add(x, 1)),
  "inputs",
  (a, x, y) => clog([add(x, 1), ...a.slice(1)], y),
);
// d(e^x - 1) = e^x dx
// jet: y' = (y + 1) x'
export const expm1P = smooth(
  "expm1",
  "expm1",
  (_, y) => add(y, 1),
  "outputs",
  (a, _, y) => ode(a, y, (c, m) => (m === 0 ? add(y, 1) : c[m]!)),
);
// d(sqrt x) = dx / (2 sqrt x); +Inf at 0, as IEEE says
// jet: y² = x, so 2 y c_k = a_k − Σ_{0<j<k} c_j c_{k−j}
export const sqrtP = smooth(
  "sqrt",
  "sqrt",
  (_, y) => mul(reciprocal(y), 0.5),
  "outputs",
  (a, _, y) => csqrt(a, y),
);
// d(sin x) = cos x dx
// jet: with cos, s' = c x', c' = −s x'
export const sinP = smooth(
  "sin",
  "sin",
  (x) => cos(x),
  "inputs",
  (a, x, y) => sinCos(a, y, cos(x), -1)[0],
);
// d(cos x) = -sin x dx
// jet: with sin, s' = c x', c' = −s x'
export const cosP = smooth(
  "cos",
  "cos",
  (x) => neg(sin(x)),
  "inputs",
  (a, x, y) => sinCos(a, sin(x), y, -1)[1],
);
// d(tan x) = (1 + tan^2 x) dx
// jet: y' = (1 + y²) x'
export const tanP = smooth(
  "tan",
  "tan",
  (_, y) => add(square(y), 1),
  "outputs",
  (a, _, y) => ode(a, y, (c, m) => (m === 0 ? add(square(y), 1) : csquareAt(c, m))),
);
// d(asin x) = dx / sqrt(1 - x^2)
// jet: y' = x' / √(1 − x²): the series of √(1 − x²), a quotient, an antiderivative
export const asinP = smooth(
  "asin",
  "asin",
  (x) => rsqrt(sub(1, square(x))),
  "inputs",
  (a, x, y) => integ(y, cdiv(deriv(a), sqrtOneMinusSquare(a, x))),
);
// d(acos x) = -dx / sqrt(1 - x^2)
// jet: y' = −x' / √(1 − x²)
export const acosP = smooth(
  "acos",
  "acos",
  (x) => neg(rsqrt(sub(1, square(x)))),
  "inputs",
  (a, x, y) => integ(y, cneg(cdiv(deriv(a), sqrtOneMinusSquare(a, x)))),
);
// d(atan x) = dx / (1 + x^2)
// jet: y' = x' / (1 + x²)
export const atanP = smooth(
  "atan",
  "atan",
  (x) => reciprocal(add(square(x), 1)),
  "inputs",
  (a, x, y) => integ(y, cdiv(deriv(a), csquare(a, add(square(x), 1)))),
);
// d(sinh x) = cosh x dx
// jet: with cosh, s' = c x', c' = s x'
export const sinhP = smooth(
  "sinh",
  "sinh",
  (x) => cosh(x),
  "inputs",
  (a, x, y) => sinCos(a, y, cosh(x), 1)[0],
);
// d(cosh x) = sinh x dx
// jet: with sinh, s' = c x', c' = s x'
export const coshP = smooth(
  "cosh",
  "cosh",
  (x) => sinh(x),
  "inputs",
  (a, x, y) => sinCos(a, sinh(x), y, 1)[1],
);
// d(tanh x) = (1 - tanh^2 x) dx
// jet: y' = (1 − y²) x'
export const tanhP = smooth(
  "tanh",
  "tanh",
  (_, y) => sub(1, square(y)),
  "outputs",
  (a, _, y) => ode(a, y, (c, m) => (m === 0 ? sub(1, square(y)) : scale(csquareAt(c, m), -1))),
);
// d(sigmoid x) = s (1 - s) dx; the kernel itself is stable for every |x|
// jet: y' = (y − y²) x'
export const logisticP = smooth(
  "logistic",
  "logistic",
  (_, y) => mul(y, sub(1, y)),
  "outputs",
  (a, _, y) => ode(a, y, (c, m) => (m === 0 ? mul(y, sub(1, y)) : minus(c[m]!, csquareAt(c, m)))),
);
// d(erf x) = 2/sqrt(pi) e^{-x^2} dx
// jet: y' = (2/√π) g x' with g = exp(−x²) (itself by exp's recurrence on the series of −x²)
export const erfP = smooth(
  "erf",
  "erf",
  (x) => mul(exp(neg(square(x))), TWO_OVER_SQRT_PI),
  "inputs",
  (a, x, y) => {
    const u = cneg(csquare(a, square(x)));
    const g = cexp(u, exp(u[0]!));
    return ode(a, y, (_, m) => scale(g[m]!, TWO_OVER_SQRT_PI));
  },
);
// d|x| = sign(x) dx, so abs'(0) = 0: the subgradient that agrees with sign(0) = 0 (as PyTorch)
export const absP: Primitive<NoParams> = definePrimitive<NoParams>({
  ...elementwise1("abs", "abs", false),
  saves: "inputs",
  jvp: (xs, ts) => [mul(ts[0] as Tensor, sign(xs[0]!))],
  vjp: (cts, xs) => [mul(cts[0]!, sign(xs[0]!))],
  // |x| is linear near any x ≠ 0: y_k = sign(x) x_k (0 at x = 0, as the JVP)
  jet: jetLinear(() => absP),
  // elementwise: the batch axis stays put
  batch: unopBatcher(() => absP),
});
export const signP = piecewiseConstant("sign", "sign");
export const floorP = piecewiseConstant("floor", "floor");
export const ceilP = piecewiseConstant("ceil", "ceil");
export const roundP = piecewiseConstant("round", "round");
export const notP = piecewiseConstant("not", "not");
