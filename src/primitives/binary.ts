/**
 * @file Elementwise binary arithmetic. Operands have one dtype (the ops layer promotes) and
 * broadcast as in NumPy inside the kernel, so every VJP sums its cotangent back to the operand's
 * shape with `unbroadcast`, and every batching rule lines the batch axes up for that
 * broadcasting (`broadcastBatcher`). Tie and zero conventions are written here, once, and the
 * Taylor (`jet`) rules keep them: max/min split ties, x^c stays finite at x = 0 for integer c.
 */

import type { BinaryKernel, DeviceBuffer } from "../backend/backend.js";
import { definePrimitive, type JetRule, type Primitive, type Tangent } from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { Zero } from "../core/zero.js";
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
  nz,
  sumTerms,
  unbroadcast,
} from "./rules.js";
import {
  type Coeffs,
  cadd,
  cdiv,
  cexp,
  clog,
  cmul,
  coeffs,
  csquare,
  csub,
  deriv,
  faaDiBruno,
  fitSeries,
  fromCoeffs,
  integ,
  jetBilinear,
  jetLinear,
  orderOf,
} from "./series.js";

type JvpTerms = (
  x: Tensor,
  y: Tensor,
  out: Tensor,
  tx: Tangent,
  ty: Tangent,
) => [Tensor | null, Tensor | null];
type VjpTerms = (x: Tensor, y: Tensor, out: Tensor, ct: Tensor) => [() => Tensor, () => Tensor];
/** The cotangent of one operand (the form of the cheap rules: no thunks to allocate per node). */
type VjpOne = (x: Tensor, y: Tensor, out: Tensor, ct: Tensor) => Tensor;

/**
 * A binary op from its kernel and its two partial rules. `vjp` returns thunks so that a
 * cotangent is only computed for an operand that wants one.
 */
function binary(
  name: string,
  kernel: BinaryKernel,
  saves: "none" | "inputs" | "all",
  jvp: JvpTerms,
  vjp: VjpTerms | readonly [VjpOne, VjpOne],
  jet: JetRule<NoParams> | "linear",
): Primitive<NoParams> {
  const prim: Primitive<NoParams> = definePrimitive<NoParams>({
    name,
    saves,
    abstractEval(avals) {
      checkArity(name, avals, 2);
      checkSameDType(name, avals);
      return [elementwiseAval(name, avals)];
    },
    // Operands are indexed, not destructured: array destructuring goes through the iterator
    // protocol, which allocates in code the engine has not optimized yet (every traced op).
    impl(b, xs, avals, _p, outs): DeviceBuffer[] {
      const ax = avals[0]!;
      const ay = avals[1]!;
      const out = outs[0]!;
      return [b.binary(kernel, xs[0]!, ax.shape, xs[1]!, ay.shape, out.shape, ax.dtype, out.dtype)];
    },
    jvp(xs, ts, outs) {
      const out = outs[0]!;
      const terms = jvp(xs[0]!, xs[1]!, out, ts[0]!, ts[1]!);
      return [sumTerms(out, terms[0], terms[1])];
    },
    vjp(cts, xs, outs, _p, needs) {
      // (`need` spelled out: this runs for every recorded binary op, so no closures here)
      const ct = cts[0]!;
      const x = xs[0]!;
      const y = xs[1]!;
      const out = outs[0]!;
      if (typeof vjp !== "function") {
        const pair = vjp as readonly [VjpOne, VjpOne];
        return [
          needs[0] ? unbroadcast(pair[0](x, y, out, ct), x.shape) : Zero.like(x),
          needs[1] ? unbroadcast(pair[1](x, y, out, ct), y.shape) : Zero.like(y),
        ];
      }
      const g = vjp(x, y, out, ct);
      return [
        needs[0] ? unbroadcast(g[0](), x.shape) : Zero.like(x),
        needs[1] ? unbroadcast(g[1](), y.shape) : Zero.like(y),
      ];
    },
    // "linear": every Taylor coefficient maps through the JVP rule
    jet: jet === "linear" ? jetLinear(() => prim) : jet,
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

/** The jet rule of a binary op from a recurrence on both operands' normalised coefficients. */
function taylor2(
  rule: (x: Tensor, y: Tensor, out: Tensor, a: Coeffs, b: Coeffs) => Coeffs,
): JetRule<NoParams> {
  return ([x, y], [sx, sy], [out]) => {
    const K = orderOf([sx ?? null, sy ?? null]);
    return [fromCoeffs(rule(x!, y!, out!, coeffs(x!, sx ?? null, K), coeffs(y!, sy ?? null, K)), out!)];
  };
}

/**
 * n-th derivative of x^c in x: c(c−1)…(c−n+1) x^(c−n), 0 where the falling factorial is (so
 * x² at 0 has finite coefficients, as the nested JVP rule gives).
 */
function powDerivative(x: Tensor, c: Tensor, n: number): Tensor {
  let ff = c;
  for (let i = 1; i < n; i++) ff = mul(ff, sub(c, i));
  return where(equal(ff, 0), 0, mul(ff, pow(x, sub(c, n))));
}

// d(x + y) = dx + dy
// jet: y_k = x_k + z_k
export const addP = binary(
  "add",
  "add",
  "none",
  (_x, _y, _o, tx, ty) => [nz(tx, (t) => t), nz(ty, (t) => t)],
  [(_x, _y, _o, ct) => ct, (_x, _y, _o, ct) => ct],
  "linear",
);
// d(x - y) = dx - dy
// jet: y_k = x_k − z_k
export const subP = binary(
  "sub",
  "sub",
  "none",
  (_x, _y, _o, tx, ty) => [nz(tx, (t) => t), nz(ty, neg)],
  [(_x, _y, _o, ct) => ct, (_x, _y, _o, ct) => neg(ct)],
  "linear",
);
// d(x y) = y dx + x dy
// jet: Leibniz, y_k = Σ_j C(k, j) x_j z_{k−j}
export const mulP = binary(
  "mul",
  "mul",
  "inputs",
  (x, y, _o, tx, ty) => [nz(tx, (t) => mul(t, y)), nz(ty, (t) => mul(x, t))],
  [(_x, y, _o, ct) => mul(ct, y), (x, _y, _o, ct) => mul(x, ct)],
  jetBilinear((a, b) => mul(a, b)),
);
// d(x / y) = dx / y - (x/y) dy / y
// jet: q = x / y from y q = x: y_0 c_k = a_k − Σ_{j≥1} b_j c_{k−j}
export const divP = binary(
  "div",
  "div",
  "all",
  (_x, y, out, tx, ty) => [nz(tx, (t) => div(t, y)), nz(ty, (t) => neg(mul(t, div(out, y))))],
  [(_x, y, _o, ct) => div(ct, y), (_x, y, out, ct) => neg(mul(ct, div(out, y)))],
  taylor2((_x, _y, out, a, b) => cdiv(a, b, out)),
);
// d(x^y) = y x^(y-1) dx + log(x) x^y dy, with 0 for y = 0 in the first term and log(0) -> 0 in
// the second, so x^2 at 0 and 0^y have finite derivatives (never exp(y log x)).
const powDx = (x: Tensor, y: Tensor) => where(equal(y, 0), 0, mul(y, pow(x, sub(y, 1))));
const powDy = (x: Tensor, out: Tensor) => mul(logOrZero(x), out);
// jet: a constant exponent c gives Faà di Bruno with (x^c)⁽ⁿ⁾ = c(c−1)…(c−n+1) x^(c−n) (finite at
// x = 0 for integer c, where the ODE x y' = c y x' would divide by 0); otherwise y = exp(z) with
// z = y·log x (log 0 taken as 0 when x is constant, as the JVP does).
function powJet([x, y]: Tensor[], [sx, sy]: (Tensor[] | null)[], [out]: Tensor[]): (Tensor[] | null)[] {
  if (sy === null || sy === undefined)
    return [
      fitSeries(
        faaDiBruno(sx!, (n) => powDerivative(x!, y!, n)),
        out!,
      ),
    ];
  const K = sy.length;
  const logx: Coeffs =
    sx === null || sx === undefined
      ? [logOrZero(x!), ...new Array<null>(K).fill(null)]
      : clog(coeffs(x!, sx, K), log(x!));
  return [fromCoeffs(cexp(cmul(coeffs(y!, sy, K), logx), out!), out!)];
}
export const powP = binary(
  "pow",
  "pow",
  "all",
  (x, y, out, tx, ty) => [nz(tx, (t) => mul(t, powDx(x, y))), nz(ty, (t) => mul(t, powDy(x, out)))],
  [(x, y, _o, ct) => mul(ct, powDx(x, y)), (x, _y, out, ct) => mul(ct, powDy(x, out))],
  powJet,
);
// d max(x, y) = w dx + (1 - w) dy with w = [x > y] + 0.5 [x = y]: ties split equally
// jet: y_k = w x_k + (1 − w) z_k with the JVP's tie weight w
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
  "linear",
);
// d min(x, y) = w dx + (1 - w) dy with w = [x < y] + 0.5 [x = y]
// jet: y_k = w x_k + (1 − w) z_k with the JVP's tie weight w
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
  "linear",
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
  // jet: θ' = (y x' − x y') / (x² + y²): products, a quotient, an antiderivative
  taylor2((_x, _y, out, a, b) =>
    integ(out, cdiv(csub(cmul(b, deriv(a)), cmul(a, deriv(b))), cadd(csquare(a), csquare(b)))),
  ),
);
