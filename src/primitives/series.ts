/**
 * @file The vocabulary of the Taylor-mode (`jet`) rules: truncated power series on tensors.
 *
 * A jet rule receives and returns derivative coefficients (JAX's convention: for the path
 * x(t) = x_0 + x_1 t + x_2 t²/2! + …, x_k = dᵏx/dtᵏ at t = 0). The recurrences (Griewank &
 * Walther, "Evaluating Derivatives", ch. 13) are simplest on normalised Taylor coefficients
 * a_k = x_k / k!, so the smooth rules convert with `coeffs`, run a recurrence, and convert back
 * with `fromCoeffs`. A null coefficient is an exact zero: every helper skips it and never
 * materialises it. Everything is written with library ops, so the rules differentiate, batch
 * and stage again.
 */

import type { Aval, JetRule, Primitive, Tangent } from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { add, astype, broadcastTo, div, mul, neg, sub, zeros } from "../ops/index.js";
import { shapeEq } from "../shape.js";
import { instantiate } from "./rules.js";

/** One value's K derivative coefficients `[x_1, …, x_K]`, or null when they are all zero. */
export type Series = Tensor[] | null;

/** Normalised Taylor coefficients `[a_0, a_1, …, a_K]` with a_k = x_k / k! (a_0 the primal); null = 0. */
export type Coeffs = (Tensor | null)[];

/** A product of two coefficients: `mul` for elementwise ops, `matmul` for matmul. */
export type Product = (a: Tensor, b: Tensor) => Tensor;

/** K, the truncation order, read from the first non-zero series (a rule always gets one). */
export function orderOf(series: readonly Series[]): number {
  for (const s of series) if (s !== null) return s.length;
  throw new Error("adjoint internal error: a jet rule was called without a non-zero series");
}

/** k! as a float. */
export function factorial(k: number): number {
  let f = 1;
  for (let i = 2; i <= k; i++) f *= i;
  return f;
}

/** The binomial coefficient C(n, k). */
function binomial(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return Math.round(c);
}

/** c·t, with zeros skipped. */
export function scale(t: Tensor | null, c: number): Tensor | null {
  if (t === null || c === 0) return null;
  return c === 1 ? t : mul(t, c);
}

/** a + b, with zeros skipped. */
export function plus(a: Tensor | null, b: Tensor | null): Tensor | null {
  return a === null ? b : b === null ? a : add(a, b);
}

/** a − b, with zeros skipped. */
export function minus(a: Tensor | null, b: Tensor | null): Tensor | null {
  return b === null ? a : a === null ? neg(b) : sub(a, b);
}

/** `t` broadcast and cast to an output's aval. */
export function fit(t: Tensor, out: Aval): Tensor {
  let r = t;
  if (!shapeEq(r.shape, out.shape)) r = broadcastTo(r, out.shape);
  if (r.dtype !== out.dtype) r = astype(r, out.dtype);
  return r;
}

/**
 * The normalised coefficients of a value with primal `x0` and derivative coefficients `s`.
 * @example coeffs(x0, [x1, x2], 2); // [x0, x1, x2 / 2]
 */
export function coeffs(x0: Tensor, s: Series, K: number): Coeffs {
  const c: Coeffs = [x0];
  for (let k = 1; k <= K; k++) c.push(s === null ? null : scale(s[k - 1]!, 1 / factorial(k)));
  return c;
}

/**
 * Derivative coefficients y_k = k!·c_k (k = 1..K), shaped and typed like `out`; null if all are zero.
 * @example fromCoeffs([y0, c1, c2], out); // [c1, 2 c2]
 */
export function fromCoeffs(c: Coeffs, out: Aval): Series {
  const terms = c.slice(1);
  if (terms.every((t) => t === null)) return null;
  return terms.map((t, i) =>
    t === null ? zeros(out.shape, { dtype: out.dtype }) : fit(scale(t, factorial(i + 1))!, out),
  );
}

/** Derivative coefficients fitted to `out` (zeros for nulls); null if all are zero. */
export function fitSeries(terms: readonly (Tensor | null)[], out: Aval): Series {
  if (terms.every((t) => t === null)) return null;
  return terms.map((t) => (t === null ? zeros(out.shape, { dtype: out.dtype }) : fit(t, out)));
}

/** Σ_{j=lo}^{hi} a_j · b_{k−j}, zeros skipped (null when every term is zero). */
function conv(a: Coeffs, b: Coeffs, k: number, lo: number, hi: number, prod: Product = mul): Tensor | null {
  let acc: Tensor | null = null;
  for (let j = lo; j <= hi; j++) {
    const x = a[j];
    const y = b[k - j];
    if (x === null || x === undefined || y === null || y === undefined) continue;
    acc = plus(acc, prod(x, y));
  }
  return acc;
}

/** Coefficient-wise a + b. */
export function cadd(a: Coeffs, b: Coeffs): Coeffs {
  return a.map((t, k) => plus(t, b[k] ?? null));
}

/** Coefficient-wise a − b. */
export function csub(a: Coeffs, b: Coeffs): Coeffs {
  return a.map((t, k) => minus(t, b[k] ?? null));
}

/** Coefficient-wise −a. */
export function cneg(a: Coeffs): Coeffs {
  return a.map((t) => (t === null ? null : neg(t)));
}

/**
 * The product series (Cauchy / Leibniz): c_k = Σ_{j=0}^{k} a_j b_{k−j}, as long as the shorter
 * operand; `c0` (the primal product, when the caller has it) replaces c_0.
 * @example cmul([a0, a1], [b0, b1]); // [a0 b0, a0 b1 + a1 b0]
 */
export function cmul(a: Coeffs, b: Coeffs, prod: Product = mul, c0?: Tensor): Coeffs {
  const n = Math.min(a.length, b.length);
  const c: Coeffs = [];
  for (let k = 0; k < n; k++) c.push(k === 0 && c0 !== undefined ? c0 : conv(a, b, k, 0, k, prod));
  return c;
}

/** The k-th coefficient of a², Σ_{i=0}^{k} c_i c_{k−i}, summing each symmetric pair once. */
export function csquareAt(c: Coeffs, k: number): Tensor | null {
  let acc: Tensor | null = null;
  for (let i = 0; 2 * i < k; i++) {
    const x = c[i];
    const y = c[k - i];
    if (x !== null && x !== undefined && y !== null && y !== undefined) acc = plus(acc, mul(x, y));
  }
  acc = scale(acc, 2);
  if (k % 2 === 0) {
    const m = c[k / 2];
    if (m !== null && m !== undefined) acc = plus(acc, mul(m, m));
  }
  return acc;
}

/** The series of a²: each coefficient by `csquareAt`, `c0` (when given) as the constant term. */
export function csquare(a: Coeffs, c0?: Tensor): Coeffs {
  return a.map((_, k) => (k === 0 && c0 !== undefined ? c0 : csquareAt(a, k)));
}

/**
 * The quotient series c = a / b: b_0 c_k = a_k − Σ_{j=1}^{k} b_j c_{k−j}; `c0` (when given) is
 * the primal quotient. `b_0` must be non-zero (it is a primal).
 */
export function cdiv(a: Coeffs, b: Coeffs, c0?: Tensor): Coeffs {
  const b0 = b[0]!;
  const a0 = a[0] ?? null;
  const c: Coeffs = [c0 ?? (a0 === null ? null : div(a0, b0))];
  for (let k = 1; k < a.length; k++) {
    const r = minus(a[k] ?? null, conv(b, c, k, 1, k));
    c.push(r === null ? null : div(r, b0));
  }
  return c;
}

/** The derivative along the path: (dx/dt)_m = (m + 1) a_{m+1}, m = 0..K−1 (one shorter). */
export function deriv(a: Coeffs): Coeffs {
  return a.slice(1).map((t, m) => scale(t, m + 1));
}

/** The antiderivative with constant term `c0`: c_k = d_{k−1} / k (one longer). */
export function integ(c0: Tensor, d: Coeffs): Coeffs {
  return [c0, ...d.map((t, m) => scale(t, 1 / (m + 1)))];
}

/**
 * The solution of y' = g · x' along the path, term by term: k c_k = Σ_{j=1}^{k} j a_j g_{k−j},
 * where `g(c, m)`, the m-th coefficient of g, may read c_0..c_m (exp: g = y; tanh: g = 1 − y²).
 * @example ode(a, exp(a[0]), (c, m) => c[m]); // the series of exp(x)
 */
export function ode(a: Coeffs, y0: Tensor, g: (c: Coeffs, m: number) => Tensor | null): Coeffs {
  const da = deriv(a);
  const c: Coeffs = [y0];
  const gs: Coeffs = [];
  for (let k = 1; k < a.length; k++) {
    gs.push(g(c, k - 1));
    c.push(scale(conv(da, gs, k - 1, 0, k - 1), 1 / k));
  }
  return c;
}

/** y = exp(x): y' = y x'. */
export function cexp(a: Coeffs, y0: Tensor): Coeffs {
  return ode(a, y0, (c, m) => c[m]!);
}

/**
 * sin and cos (σ = −1) or sinh and cosh (σ = +1) together: s' = c x', c' = σ s x', so
 * k s_k = Σ j a_j c_{k−j} and k c_k = σ Σ j a_j s_{k−j}.
 */
export function sinCos(a: Coeffs, s0: Tensor, c0: Tensor, sigma: 1 | -1): [Coeffs, Coeffs] {
  const da = deriv(a);
  const s: Coeffs = [s0];
  const c: Coeffs = [c0];
  for (let k = 1; k < a.length; k++) {
    const sk = scale(conv(da, c, k - 1, 0, k - 1), 1 / k);
    c.push(scale(conv(da, s, k - 1, 0, k - 1), sigma / k));
    s.push(sk);
  }
  return [s, c];
}

/** y = log(x): x y' = x', so a_0 c_k = a_k − (1/k) Σ_{j=1}^{k−1} j c_j a_{k−j}. */
export function clog(a: Coeffs, y0: Tensor): Coeffs {
  const a0 = a[0]!;
  const c: Coeffs = [y0];
  for (let k = 1; k < a.length; k++) {
    let acc: Tensor | null = null;
    for (let j = 1; j < k; j++) {
      const cj = c[j];
      const ak = a[k - j];
      if (cj !== null && cj !== undefined && ak !== null && ak !== undefined)
        acc = plus(acc, scale(mul(cj, ak), j / k));
    }
    const r = minus(a[k] ?? null, acc);
    c.push(r === null ? null : div(r, a0));
  }
  return c;
}

/** y = √x: y² = x, so 2 c_0 c_k = a_k − Σ_{j=1}^{k−1} c_j c_{k−j}. */
export function csqrt(a: Coeffs, y0: Tensor): Coeffs {
  const twoY0 = mul(y0, 2);
  const c: Coeffs = [y0];
  for (let k = 1; k < a.length; k++) {
    const r = minus(a[k] ?? null, conv(c, c, k, 1, k - 1));
    c.push(r === null ? null : div(r, twoY0));
  }
  return c;
}

/**
 * y = f(x) from f's derivatives at the primal, f⁽ⁿ⁾(x_0) = `d(n)`, in the derivative convention
 * (Faà di Bruno): y_k = Σ_{n=1}^{k} f⁽ⁿ⁾ B_{k,n}(x_1, …, x_{k−n+1}), with the partial Bell
 * polynomials B_{k,1} = x_k, B_{k,n} = Σ_{i=1}^{k−n+1} C(k−1, i−1) x_i B_{k−i,n−1}. Used where the
 * ODE recurrence would divide by a primal that may be 0 (x^c at x = 0).
 * @example faaDiBruno([x1, x2], (n) => fn(x0)); // [f' x1, f'' x1² + f' x2]
 */
export function faaDiBruno(s: readonly Tensor[], d: (n: number) => Tensor): Tensor[] {
  const K = s.length;
  const bell: (Tensor | null)[][] = [[]];
  for (let k = 1; k <= K; k++) {
    const row: (Tensor | null)[] = [null, s[k - 1]!];
    for (let n = 2; n <= k; n++) {
      let acc: Tensor | null = null;
      for (let i = 1; i <= k - n + 1; i++) {
        const prev = bell[k - i]![n - 1] ?? null;
        if (prev !== null) acc = plus(acc, scale(mul(s[i - 1]!, prev), binomial(k - 1, i - 1)));
      }
      row.push(acc);
    }
    bell.push(row);
  }
  const ds: Tensor[] = [];
  const dAt = (n: number): Tensor => (ds[n] ??= d(n));
  const out: Tensor[] = [];
  for (let k = 1; k <= K; k++) {
    let acc: Tensor | null = null;
    for (let n = 1; n <= k; n++) {
      const b = bell[k]![n] ?? null;
      if (b !== null) acc = plus(acc, mul(dAt(n), b));
    }
    out.push(acc ?? mul(s[k - 1]!, 0));
  }
  return out;
}

/**
 * The jet of a primitive that is linear in its differentiable operands once the other operands
 * and the primals are fixed (movement ops, sums, select, max/min with their tie weights, abs with
 * sign(x), conversions): every coefficient maps through the JVP rule, y_k = J x_k.
 * @example jet: jetLinear(() => reshapeP), // y_k = reshape(x_k)
 */
export function jetLinear<P>(self: () => Primitive<P>): JetRule<P> {
  return (primals, series, outs, params) => {
    const prim = self();
    const K = orderOf(series);
    const cols: Tangent[][] = [];
    for (let k = 0; k < K; k++)
      cols.push(
        prim.jvp(
          primals,
          series.map((s, i) => (s === null ? Zero.like(primals[i]!) : s[k]!)),
          outs,
          params,
        ),
      );
    return outs.map((_, j) => {
      const terms = cols.map((c) => c[j]!);
      return terms.every((t) => isZero(t)) ? null : terms.map(instantiate);
    });
  };
}

/**
 * The jet of a primitive that is locally constant (comparisons, sign, floor, argmax, random): all zero.
 * @example jet: jetZero(), // floor(x(t)) is flat
 */
export function jetZero<P>(): JetRule<P> {
  return (_primals, _series, outs) => outs.map(() => null);
}

/**
 * The jet of a bilinear product (elementwise `mul`, `matmul`): the Cauchy product of the two
 * operands' series, c_k = Σ_{j=0}^{k} a_j b_{k−j}, i.e. y_k = Σ_j C(k, j) x_j z_{k−j}.
 * @example jet: jetBilinear((a, b) => matmul(a, b)),
 */
export function jetBilinear<P>(prod: Product): JetRule<P> {
  return ([x, y], [sx, sy], [out]) => {
    const K = orderOf([sx ?? null, sy ?? null]);
    return [fromCoeffs(cmul(coeffs(x!, sx ?? null, K), coeffs(y!, sy ?? null, K), prod, out!), out!)];
  };
}
