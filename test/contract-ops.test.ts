/**
 * @file Black-box contract tests for API.md §2 (operations) and the §10 conventions for ops: every
 * op as a function and as a tensor method, broadcasting, derivatives in both modes against
 * analytic formulas, reductions with axis/keepdims, linear algebra, shape ops, and the non-smooth
 * and numerical-stability conventions. Written from the contract alone.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { checks, f64, flat, n, num, type T } from "./contract-helpers.js";

const { near, allNear } = checks(1e-6);

/** Calls a method by name (the method forms are the contract under test). */
function method(t: T, name: string, ...args: unknown[]): T {
  const m = (t as unknown as Record<string, unknown>)[name];
  assert.equal(typeof m, "function", `Tensor method ${name} missing`);
  return (m as (...a: unknown[]) => T).apply(t, args);
}

function fn(name: string): (...a: unknown[]) => T {
  const f = (ad as unknown as Record<string, unknown>)[name];
  assert.equal(typeof f, "function", `ad.${name} missing`);
  return f as (...a: unknown[]) => T;
}

// ------------------------------------------------------------------ unary

const erf = (x: number): number => {
  // Abramowitz–Stegun 7.1.26 is too coarse; use a series/continued fraction good to 1e-14.
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = 0;
    let term = t;
    for (let n = 0; n < 60; n++) {
      sum += term / (2 * n + 1);
      term *= (-t * t) / (n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // continued fraction for erfc
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
};
const phi = (x: number) => Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
const Phi = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
const sig = (x: number) => 1 / (1 + Math.exp(-x));

/** [name, f(x), f'(x), test point] — analytic truth. */
const UNARY: [string, (x: number) => number, (x: number) => number, number][] = [
  ["neg", (x) => -x, () => -1, 0.3],
  ["exp", Math.exp, Math.exp, 0.3],
  ["log", Math.log, (x) => 1 / x, 0.3],
  ["log1p", Math.log1p, (x) => 1 / (1 + x), 0.3],
  ["expm1", Math.expm1, Math.exp, 0.3],
  ["sqrt", Math.sqrt, (x) => 0.5 / Math.sqrt(x), 0.3],
  ["rsqrt", (x) => 1 / Math.sqrt(x), (x) => -0.5 * x ** -1.5, 0.3],
  ["square", (x) => x * x, (x) => 2 * x, -0.3],
  ["reciprocal", (x) => 1 / x, (x) => -1 / (x * x), 0.3],
  ["abs", Math.abs, (x) => Math.sign(x), -0.3],
  ["sign", Math.sign, () => 0, -0.3],
  ["sin", Math.sin, Math.cos, 0.3],
  ["cos", Math.cos, (x) => -Math.sin(x), 0.3],
  ["tan", Math.tan, (x) => 1 / Math.cos(x) ** 2, 0.3],
  ["asin", Math.asin, (x) => 1 / Math.sqrt(1 - x * x), 0.3],
  ["acos", Math.acos, (x) => -1 / Math.sqrt(1 - x * x), 0.3],
  ["atan", Math.atan, (x) => 1 / (1 + x * x), 0.3],
  ["sinh", Math.sinh, Math.cosh, 0.3],
  ["cosh", Math.cosh, Math.sinh, 0.3],
  ["tanh", Math.tanh, (x) => 1 - Math.tanh(x) ** 2, 0.3],
  ["sigmoid", sig, (x) => sig(x) * (1 - sig(x)), 0.3],
  ["relu", (x) => Math.max(x, 0), (x) => (x > 0 ? 1 : 0), 0.3],
  ["softplus", (x) => Math.log1p(Math.exp(x)), sig, 0.3],
  ["gelu", (x) => x * Phi(x), (x) => Phi(x) + x * phi(x), 0.3],
  ["erf", erf, (x) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x), 0.3],
  ["floor", Math.floor, () => 0, 1.3],
  ["ceil", Math.ceil, () => 0, 1.3],
  ["round", Math.round, () => 0, 1.3],
];

describe("§2 unary ops: function and method, value and derivative in both modes", () => {
  for (const [name, f, df, x0] of UNARY) {
    test(name, () => {
      const x = f64([x0, x0 / 2]);
      const y = fn(name)(x);
      assert.equal(y.dtype, "float64", `${name} keeps float64`);
      allNear(y, [f(x0), f(x0 / 2)], 1e-12, `${name} value`);
      allNear(method(x, name), y, 0, `${name} method`);
      // float32 input stays float32
      assert.equal(fn(name)(ad.tensor([x0])).dtype, "float32");
      // reverse mode
      const g = ad.grad((v: T) => ad.sum(fn(name)(v)))(x);
      allNear(g, [df(x0), df(x0 / 2)], 1e-10, `${name} grad`);
      // forward mode
      const [, t] = ad.jvp((v: T) => fn(name)(v), [x], [f64([1, 2])]);
      allNear(t, [df(x0), 2 * df(x0 / 2)], 1e-10, `${name} jvp`);
      // a JS number in → float64 0-d out
      near(num(fn(name)(x0)), f(x0), 1e-12, `${name}(number)`);
      // a number argument's gradient is a number
      const gn = ad.grad((v: T) => fn(name)(v))(n(x0));
      assert.equal(typeof gn, "number");
      near(gn as unknown as number, df(x0), 1e-10, `${name} grad(number)`);
    });
  }

  test("second derivatives of a few unary ops (saved outputs stay differentiable)", () => {
    const d2 = (name: string, x: number) =>
      ad.grad(ad.grad((v: T) => fn(name)(v)))(n(x)) as unknown as number;
    near(d2("tanh", 0.5), -2 * Math.tanh(0.5) * (1 - Math.tanh(0.5) ** 2), 1e-12);
    near(d2("exp", 0.5), Math.exp(0.5), 1e-12);
    near(d2("sigmoid", 0.5), sig(0.5) * (1 - sig(0.5)) * (1 - 2 * sig(0.5)), 1e-12);
    near(d2("sqrt", 0.5), -0.25 * 0.5 ** -1.5, 1e-12);
    near(d2("log", 0.5), -4, 1e-12);
    near(d2("softplus", 0.5), sig(0.5) * (1 - sig(0.5)), 1e-12);
    near(d2("gelu", 0.5), 2 * phi(0.5) - 0.5 * 0.5 * phi(0.5), 1e-10);
  });

  test("gelu {approximate: 'tanh'} is the tanh form; default is the exact erf form", () => {
    const x = 1.3;
    const tanhForm = 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    near(num(ad.gelu(f64([x]), { approximate: "tanh" })), tanhForm, 1e-12);
    near(num(ad.gelu(f64([x]))), x * Phi(x), 1e-12);
    assert.ok(Math.abs(tanhForm - x * Phi(x)) > 1e-5, "the two forms differ at this point");
  });
});

// ------------------------------------------------------------------ binary

const BINARY: [string, (a: number, b: number) => number, (a: number, b: number) => [number, number]][] = [
  ["add", (a, b) => a + b, () => [1, 1]],
  ["sub", (a, b) => a - b, () => [1, -1]],
  ["mul", (a, b) => a * b, (a, b) => [b, a]],
  ["div", (a, b) => a / b, (a, b) => [1 / b, -a / (b * b)]],
  ["pow", (a, b) => a ** b, (a, b) => [b * a ** (b - 1), a ** b * Math.log(a)]],
  ["maximum", Math.max, (a, b) => (a > b ? [1, 0] : [0, 1])],
  ["minimum", Math.min, (a, b) => (a < b ? [1, 0] : [0, 1])],
  ["atan2", Math.atan2, (a, b) => [b / (a * a + b * b), -a / (a * a + b * b)]],
];

describe("§2 binary ops: function, method, broadcasting, gradients reduced to each input's shape", () => {
  for (const [name, f, df] of BINARY) {
    test(name, () => {
      const A = [
        [0.5, 1.5, 2.5],
        [0.7, 1.1, 3.0],
      ];
      const B = [1.2, 0.9, 2.0];
      const a = f64(A);
      const b = f64(B);
      const y = fn(name)(a, b);
      assert.deepEqual(y.shape, [2, 3]);
      allNear(
        y,
        A.map((r) => r.map((v, j) => f(v, B[j]!))),
        1e-12,
        `${name} value`,
      );
      allNear(method(a, name, b), y, 0, `${name} method`);
      // [3,1] with [2]-ish broadcasting to [3,2]
      const c = fn(name)(f64([[0.5], [1.5], [2.5]]), f64([1.1, 2.2]));
      assert.deepEqual(c.shape, [3, 2]);
      // gradients: b is broadcast along axis 0, so its gradient sums over rows
      const [ga, gb] = ad.grad((u: T, v: T) => ad.sum(fn(name)(u, v)), { argnums: [0, 1] })(a, b) as [T, T];
      assert.deepEqual(ga.shape, [2, 3]);
      assert.deepEqual(gb.shape, [3]);
      allNear(
        ga,
        A.map((r) => r.map((v, j) => df(v, B[j]!)[0])),
        1e-10,
        `${name} grad a`,
      );
      allNear(
        gb,
        B.map((bv, j) => df(A[0]![j]!, bv)[1] + df(A[1]![j]!, bv)[1]),
        1e-10,
        `${name} grad b`,
      );
      // forward mode wrt b only
      const [, t] = ad.jvp((v: T) => fn(name)(a, v), [b], [f64([1, 1, 1])]);
      allNear(
        t,
        A.map((r) => r.map((v, j) => df(v, B[j]!)[1])),
        1e-10,
        `${name} jvp`,
      );
      // a number on either side
      allNear(fn(name)(a, 2), fn(name)(a, f64(2)), 1e-12);
      allNear(fn(name)(2, b), fn(name)(f64(2), b), 1e-12);
      assert.equal(fn(name)(ad.tensor([1, 2]), 3).dtype, "float32");
    });
  }

  test("broadcast gradient shapes (anchors c#14): [4], [1,4], [], [3,1] against [3,4]", () => {
    const X = ad.ones([3, 4]);
    const gradB = (b: T) => ad.grad((v: T) => ad.sum(ad.add(X, v)))(b) as T;
    assert.deepEqual(gradB(ad.zeros([4])).toArray(), [3, 3, 3, 3]);
    assert.deepEqual(gradB(ad.zeros([1, 4])).toArray(), [[3, 3, 3, 3]]);
    const g0 = gradB(ad.scalar(0));
    assert.deepEqual(g0.shape, []);
    assert.equal(g0.item(), 12);
    assert.deepEqual(gradB(ad.zeros([3, 1])).toArray(), [[4], [4], [4]]);
    const gn = ad.grad((v: T) => ad.sum(ad.mul(X, v)))(n(2));
    assert.equal(gn, 12);
  });

  test("incompatible broadcast throws ShapeError naming both shapes", () => {
    assert.throws(
      () => ad.add(ad.zeros([2, 3]), ad.zeros([4])),
      (e: unknown) => e instanceof ad.ShapeError && /2.*3/.test(e.message) && /4/.test(e.message),
    );
    assert.throws(() => ad.zeros([2, 3]).mul(ad.zeros([2])), ad.ShapeError);
  });
});

// ------------------------------------------------------------------ compare, where

describe("§2 compare ops return bool; where", () => {
  const a = ad.tensor([1, 2, 3]);
  const b = ad.tensor([3, 2, 1]);
  const cases: [string, number[]][] = [
    ["equal", [0, 1, 0]],
    ["notEqual", [1, 0, 1]],
    ["less", [1, 0, 0]],
    ["lessEqual", [1, 1, 0]],
    ["greater", [0, 0, 1]],
    ["greaterEqual", [0, 1, 1]],
  ];
  for (const [name, want] of cases) {
    test(name, () => {
      const r = fn(name)(a, b);
      assert.equal(r.dtype, "bool");
      assert.deepEqual(flat(r), want);
      assert.deepEqual(flat(method(a, name, b)), want);
      // with a number, broadcasting
      assert.equal(fn(name)(a, 2).dtype, "bool");
      assert.deepEqual(fn(name)(ad.tensor([[1], [3]]), a).shape, [2, 3]);
    });
  }

  test("isnan, isfinite", () => {
    const x = ad.tensor([0, Number.NaN, Number.POSITIVE_INFINITY, -1]);
    assert.equal(ad.isnan(x).dtype, "bool");
    assert.deepEqual(flat(ad.isnan(x)), [0, 1, 0, 0]);
    assert.deepEqual(flat(x.isnan()), [0, 1, 0, 0]);
    assert.deepEqual(flat(ad.isfinite(x)), [1, 0, 0, 1]);
    assert.deepEqual(flat(x.isfinite()), [1, 0, 0, 1]);
  });

  test("comparisons have zero derivative, never an error (anchors c#8 notes)", () => {
    const g = ad.grad((x: T) => ad.sum(ad.where(ad.greater(x, 0), x, ad.mul(x, 3))))(f64([1, -1]));
    allNear(g, [1, 3]);
  });

  test("where(cond, a, b) broadcasts, takes numbers, and routes gradients", () => {
    const c = ad.tensor([[true], [false]], { dtype: "bool" });
    const r = ad.where(c, ad.tensor([1, 2, 3]), 0);
    assert.deepEqual(r.shape, [2, 3]);
    assert.deepEqual(r.toArray(), [
      [1, 2, 3],
      [0, 0, 0],
    ]);
    const [ga, gb] = ad.grad((x: T, y: T) => ad.sum(ad.where(c, x, y)), { argnums: [0, 1] })(
      f64([1, 2, 3]),
      f64([[5], [6]]),
    ) as [T, T];
    assert.deepEqual(ga.toArray(), [1, 1, 1]);
    assert.deepEqual(gb.toArray(), [[0], [3]]);
  });

  test("where as a method: cond.where(a, b), and PyTorch's x.where(cond, other)", () => {
    const c = ad.tensor([true, false], { dtype: "bool" });
    assert.deepEqual(c.where(ad.tensor([1, 2]), ad.tensor([3, 4])).toArray(), [1, 4]);
    assert.deepEqual(c.where(1, 2).toArray(), [1, 2]);
    assert.deepEqual(ad.tensor([1, 2]).where(c, 0).toArray(), [1, 0]);
    const g = ad.grad((v: T) => ad.sum(c.where(v, 0)))(f64([5, 6]));
    allNear(g, [1, 0]);
  });

  test("double-where pattern gives finite gradients (anchors c#8)", () => {
    const f = (x: T) => {
      const m = ad.greater(x, 0);
      const safe = ad.where(m, x, 1);
      return ad.sum(ad.where(m, ad.log(safe), 0));
    };
    allNear(ad.grad(f)(f64([0, 1])), [0, 1], 0);
    allNear(ad.grad(f)(ad.tensor([0, 2])), [0, 0.5], 0);
    const fs = (x: T) => {
      const m = ad.greater(x, 0);
      return ad.sum(ad.where(m, ad.sqrt(ad.where(m, x, 1)), 0));
    };
    allNear(ad.grad(fs)(f64([0, 4])), [0, 0.25], 0);
  });
});

// ------------------------------------------------------------------ reductions

describe("§2/§10 reductions with {axis, keepdims}", () => {
  const X = [
    [1, 5, 2],
    [4, 3, 6],
  ];
  const x = f64(X);

  test("sum, mean, prod, max, min: all, axis, negative axis, axis arrays, keepdims; methods", () => {
    assert.equal(ad.sum(x).item(), 21);
    assert.deepEqual(ad.sum(x).shape, []);
    assert.deepEqual(ad.sum(x, { axis: 0 }).toArray(), [5, 8, 8]);
    assert.deepEqual(ad.sum(x, { axis: -1 }).toArray(), [8, 13]);
    assert.deepEqual(ad.sum(x, { axis: 1, keepdims: true }).toArray(), [[8], [13]]);
    assert.deepEqual(ad.sum(x, { axis: [0, 1] }).shape, []);
    assert.deepEqual(ad.sum(x, { axis: [0, 1], keepdims: true }).toArray(), [[21]]);
    assert.deepEqual(x.sum({ axis: 0 }).toArray(), [5, 8, 8]);
    assert.equal(x.sum().item(), 21);
    assert.deepEqual(ad.mean(x, { axis: 1 }).toArray(), [8 / 3, 13 / 3]);
    assert.equal(x.mean().item(), 3.5);
    assert.deepEqual(ad.prod(x, { axis: 0 }).toArray(), [4, 15, 12]);
    assert.equal(x.prod().item(), 720);
    assert.deepEqual(ad.max(x, { axis: 1 }).toArray(), [5, 6]);
    assert.deepEqual(x.max({ axis: -2, keepdims: true }).toArray(), [[4, 5, 6]]);
    assert.equal(ad.min(x).item(), 1);
    assert.deepEqual(x.min({ axis: 0 }).toArray(), [1, 3, 2]);
  });

  test("3-d with axis arrays including negative axes", () => {
    const t = ad.arange(0, 24, 1, { dtype: "float64" }).reshape([2, 3, 4]);
    const s = ad.sum(t, { axis: [0, -1] });
    assert.deepEqual(s.shape, [3]);
    // sum over i,k of (12 i + 4 j + k)
    assert.deepEqual(
      s.toArray(),
      [0, 1, 2].map((j) => 12 * 4 + 8 * 4 * j + 2 * 6),
    );
    assert.deepEqual(ad.sum(t, { axis: [0, -1], keepdims: true }).shape, [1, 3, 1]);
  });

  test("empty reductions: sum → 0, prod → 1; reductions of size-1 dims", () => {
    assert.equal(ad.sum(ad.zeros([0])).item(), 0);
    assert.equal(ad.prod(ad.zeros([0])).item(), 1);
    assert.deepEqual(ad.sum(ad.zeros([2, 0]), { axis: 1 }).toArray(), [0, 0]);
    assert.deepEqual(ad.sum(ad.ones([3, 1]), { axis: 1 }).toArray(), [1, 1, 1]);
    const g = ad.grad((v: T) => ad.sum(v))(ad.zeros([0]));
    assert.deepEqual((g as T).shape, [0]);
  });

  test("logsumexp value and axis", () => {
    const v = Math.log(Math.exp(1) + Math.exp(5) + Math.exp(2));
    allNear(ad.logsumexp(x, { axis: 1 }), [v, Math.log(Math.exp(4) + Math.exp(3) + Math.exp(6))], 1e-12);
    allNear(x.logsumexp({ axis: 1, keepdims: true }).shape, [2, 1], 0);
  });

  test("var and std use ddof 0 unless {ddof} is given", () => {
    const r = [1, 5, 2];
    const m = 8 / 3;
    const ss = r.reduce((s, a) => s + (a - m) ** 2, 0);
    allNear(ad.var(x, { axis: 1 }).at(0), ss / 3, 1e-12);
    allNear(x.var({ axis: 1, ddof: 1 }).at(0), ss / 2, 1e-12);
    allNear(ad.std(x, { axis: -1 }).at(0), Math.sqrt(ss / 3), 1e-12);
    allNear(x.std({ axis: 1, ddof: 1 }).at(0), Math.sqrt(ss / 2), 1e-12);
    assert.deepEqual(ad.var(x, { axis: 0, keepdims: true }).shape, [1, 3]);
    // gradient of var: 2 (x - mean) / n
    const g = ad.grad((v: T) => ad.var(v))(f64([1, 2, 6]));
    allNear(
      g,
      [1, 2, 6].map((a) => (2 * (a - 3)) / 3),
      1e-12,
    );
  });

  test("argmax/argmin return int32, with axis and keepdims; first index on ties", () => {
    const a = ad.argmax(x, { axis: 1 });
    assert.equal(a.dtype, "int32");
    assert.deepEqual(a.toArray(), [1, 2]);
    assert.deepEqual(x.argmin({ axis: 0 }).toArray(), [0, 1, 0]);
    assert.equal(ad.argmax(x).item(), 5);
    assert.deepEqual(ad.argmax(x, { axis: -1, keepdims: true }).toArray(), [[1], [2]]);
    assert.equal(ad.argmax(ad.tensor([1, 3, 3])).item(), 1);
  });

  test("reduction gradients: sum/mean/max/min/prod along axes, keepdims, jvp", () => {
    const gs = ad.grad((v: T) => ad.sum(ad.mul(ad.mean(v, { axis: 0 }), f64([1, 2, 3]))))(x);
    allNear(gs, [
      [0.5, 1, 1.5],
      [0.5, 1, 1.5],
    ]);
    const gm = ad.grad((v: T) => ad.sum(ad.max(v, { axis: 1, keepdims: true })))(x);
    allNear(gm, [
      [0, 1, 0],
      [0, 0, 1],
    ]);
    const gp = ad.grad((v: T) => ad.sum(ad.prod(v, { axis: 1 })))(x);
    allNear(gp, [
      [10, 2, 5],
      [18, 24, 12],
    ]);
    const [, t] = ad.jvp((v: T) => ad.min(v, { axis: 0 }), [x], [ad.onesLike(x)]);
    allNear(t, [1, 1, 1]);
    const gl = ad.grad((v: T) => ad.sum(ad.logsumexp(v, { axis: 1 })))(x);
    const sm = (r: number[]) => {
      const z = r.reduce((s, a) => s + Math.exp(a), 0);
      return r.map((a) => Math.exp(a) / z);
    };
    allNear(gl, X.map(sm), 1e-12);
  });
});

// ------------------------------------------------------------------ linear algebra

describe("§2 linear algebra", () => {
  test("matmul: 2-d, batched broadcasting, vector cases; method", () => {
    const a = ad.tensor([
      [1, 2],
      [3, 4],
    ]);
    const b = ad.tensor([
      [5, 6],
      [7, 8],
    ]);
    assert.deepEqual(ad.matmul(a, b).toArray(), [
      [19, 22],
      [43, 50],
    ]);
    assert.deepEqual(a.matmul(b).toArray(), [
      [19, 22],
      [43, 50],
    ]);
    const A = ad.random.normal(ad.random.key(0), [2, 1, 3, 4]);
    const B = ad.random.normal(ad.random.key(1), [5, 4, 2]);
    const C = ad.matmul(A, B);
    assert.deepEqual(C.shape, [2, 5, 3, 2]);
    // entry check against the 2-d product of the slices
    const c12 = ad.matmul(A.at(1, 0), B.at(2));
    assert.ok(ad.allclose(C.at(1, 2), c12, { atol: 1e-5 }));
    // vector @ matrix and matrix @ vector (NumPy semantics)
    assert.deepEqual(ad.matmul(ad.tensor([1, 1]), a).toArray(), [4, 6]);
    assert.deepEqual(ad.matmul(a, ad.tensor([1, 1])).toArray(), [3, 7]);
    assert.equal(ad.matmul(ad.tensor([1, 2]), ad.tensor([3, 4])).item(), 11);
    assert.throws(() => ad.matmul(ad.zeros([2, 3]), ad.zeros([2, 3])), ad.ShapeError);
  });

  test("matmul gradients (both operands, batched broadcast) match the analytic formulas", () => {
    const A = ad.random.normal(ad.random.key(2), [3, 2, 4], { dtype: "float64" });
    const B = ad.random.normal(ad.random.key(3), [4, 5], { dtype: "float64" });
    const [gA, gB] = ad.grad((a: T, b: T) => ad.sum(ad.matmul(a, b)), { argnums: [0, 1] })(A, B) as [T, T];
    assert.deepEqual(gA.shape, [3, 2, 4]);
    assert.deepEqual(gB.shape, [4, 5]);
    // d/dA sum(A B) = 1 B^T ; d/dB = sum_batch A^T 1
    allNear(gA, ad.broadcastTo(ad.sum(B, { axis: 1 }), [3, 2, 4]), 1e-12);
    allNear(gB, ad.broadcastTo(ad.sum(A, { axis: [0, 1] }).reshape([4, 1]), [4, 5]), 1e-12);
  });

  test("dot, outer, einsum", () => {
    assert.equal(ad.dot(ad.tensor([1, 2, 3]), ad.tensor([4, 5, 6])).item(), 32);
    assert.equal(
      ad
        .tensor([1, 2, 3])
        .dot(ad.tensor([4, 5, 6]))
        .item(),
      32,
    );
    assert.deepEqual(ad.outer(ad.tensor([1, 2]), ad.tensor([3, 4, 5])).toArray(), [
      [3, 4, 5],
      [6, 8, 10],
    ]);
    const m = ad.tensor([
      [1, 2],
      [3, 4],
    ]);
    assert.equal(ad.einsum("ii->", m).item(), 5);
    assert.deepEqual(ad.einsum("ij->ji", m).toArray(), [
      [1, 3],
      [2, 4],
    ]);
    assert.deepEqual(ad.einsum("ij,jk->ik", m, m).toArray(), [
      [7, 10],
      [15, 22],
    ]);
    const a = ad.random.normal(ad.random.key(4), [2, 3, 4]);
    const b = ad.random.normal(ad.random.key(5), [2, 4, 5]);
    assert.ok(ad.allclose(ad.einsum("bij,bjk->bik", a, b), ad.matmul(a, b), { atol: 1e-5 }));
    const g = ad.grad((v: T) => ad.einsum("i,i->", v, v))(f64([1, 2]));
    allNear(g, [2, 4]);
  });

  const A = [
    [4, 1, 0.5],
    [1, 3, 0.2],
    [0.5, 0.2, 2],
  ];
  const a = f64(A);

  test("linalg.solve, inv, det, slogdet", () => {
    const b = f64([1, 2, 3]);
    const x = ad.linalg.solve(a, b);
    allNear(ad.matmul(a, x), b, 1e-12);
    const inv = ad.linalg.inv(a);
    allNear(ad.matmul(a, inv), ad.eye(3, { dtype: "float64" }), 1e-12);
    const detv = 4 * (3 * 2 - 0.04) - 1 * (2 - 0.1) + 0.5 * (0.2 - 1.5);
    near(ad.linalg.det(a).item(), detv, 1e-12);
    const [sign, logabs] = ad.linalg.slogdet(
      f64([
        [0, 1],
        [2, 0],
      ]),
    ) as [T, T];
    near(num(sign), -1, 0);
    near(num(logabs), Math.log(2), 1e-12);
    // batched solve: [2,3,3] with [2,3,1]
    const ab = ad.stack([a, ad.add(a, ad.eye(3, { dtype: "float64" }))]);
    const bb = f64([
      [[1], [0], [0]],
      [[0], [1], [0]],
    ]);
    const xb = ad.linalg.solve(ab, bb);
    assert.deepEqual(xb.shape, [2, 3, 1]);
    allNear(ad.matmul(ab, xb), bb, 1e-12);
  });

  test("linalg gradients: d det/dA = det·A^{-T}, d logdet, solve and inv via gradcheck", () => {
    const g = ad.grad((m: T) => ad.linalg.det(m))(a) as T;
    const expected = ad.mul(ad.linalg.det(a), ad.linalg.inv(a).transpose());
    allNear(g, expected, 1e-10);
    const gl = ad.grad((m: T) => (ad.linalg.slogdet(m) as [T, T])[1])(a) as T;
    allNear(gl, ad.linalg.inv(a).transpose(), 1e-10);
    const b = f64([1, 2, 3]);
    assert.ok(ad.gradcheck((m: T, v: T) => ad.sum(ad.sin(ad.linalg.solve(m, v))), [a, b]).ok);
    assert.ok(ad.gradcheck((m: T) => ad.sum(ad.square(ad.linalg.inv(m))), [a]).ok);
  });

  test("linalg.cholesky: lower factor, gradient by gradcheck", () => {
    const L = ad.linalg.cholesky(a);
    allNear(ad.matmul(L, L.transpose()), a, 1e-12);
    near(L.at(0, 1).item(), 0, 0);
    assert.ok(
      ad.gradcheck((m: T) => ad.sum(ad.linalg.cholesky(ad.mul(ad.add(m, m.transpose()), 0.5))), [a]).ok,
    );
  });

  test("linalg.triangularSolve with a lower factor", () => {
    const L = f64([
      [2, 0],
      [1, 4],
    ]);
    const b = f64([[2], [9]]);
    const x = ad.linalg.triangularSolve(L, b, { lower: true });
    allNear(x, [[1], [2]], 1e-12);
    const U = L.transpose();
    const xu = ad.linalg.triangularSolve(U, f64([[4], [8]]), { lower: false });
    allNear(ad.matmul(U, xu), [[4], [8]], 1e-12);
  });

  test("linalg.norm: L2 of a vector, Frobenius of a matrix, axis, gradient, 0 → gradient 0 (anchors c#7)", () => {
    near(ad.linalg.norm(f64([3, 4])).item(), 5, 0);
    near(
      ad.linalg
        .norm(
          f64([
            [1, 2],
            [2, 4],
          ]),
        )
        .item(),
      5,
      1e-12,
    );
    allNear(
      ad.linalg.norm(
        f64([
          [3, 4],
          [6, 8],
        ]),
        { axis: 1 },
      ),
      [5, 10],
      1e-12,
    );
    allNear(ad.grad((v: T) => ad.linalg.norm(v))(f64([3, 4])), [0.6, 0.8], 1e-12);
    allNear(ad.grad((v: T) => ad.linalg.norm(v))(f64([0, 0])), [0, 0], 0);
    allNear(ad.grad((v: T) => ad.linalg.norm(v))(ad.tensor([0, 0])), [0, 0], 0);
    const tiny = flat(ad.grad((v: T) => ad.linalg.norm(v))(ad.tensor([1e-20, 0])));
    assert.ok(tiny.every(Number.isFinite), `tiny-norm gradient ${tiny}`);
    const [, t] = ad.jvp((v: T) => ad.linalg.norm(v), [f64([0, 0])], [f64([1, 1])]);
    assert.ok(Number.isFinite(num(t)));
  });
});

// ------------------------------------------------------------------ shape ops

describe("§2/§10 shape ops", () => {
  const x = f64([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const w = f64([
    [0.1, 0.2, 0.3],
    [0.4, 0.5, 0.6],
  ]);

  test("reshape (with -1), transpose (default reverses, axes), expandDims, squeeze, broadcastTo", () => {
    assert.deepEqual(x.reshape([3, 2]).toArray(), [
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    assert.deepEqual(ad.reshape(x, [-1]).shape, [6]);
    assert.deepEqual(x.reshape([1, -1, 2]).shape, [1, 3, 2]);
    assert.deepEqual(ad.transpose(x).shape, [3, 2]);
    const t3 = ad.zeros([2, 3, 4]);
    assert.deepEqual(t3.transpose().shape, [4, 3, 2]);
    assert.deepEqual(ad.transpose(t3, [1, 0, 2]).shape, [3, 2, 4]);
    assert.deepEqual(t3.transpose([2, 0, 1]).shape, [4, 2, 3]);
    assert.deepEqual(ad.expandDims(x, 0).shape, [1, 2, 3]);
    assert.deepEqual(x.expandDims(-1).shape, [2, 3, 1]);
    assert.deepEqual(ad.squeeze(ad.zeros([1, 3, 1])).shape, [3]);
    assert.deepEqual(ad.zeros([1, 3, 1]).squeeze(0).shape, [3, 1]);
    assert.deepEqual(ad.broadcastTo(ad.tensor([1, 2]), [3, 2]).toArray(), [
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
    assert.deepEqual(
      ad
        .tensor([[1], [2]])
        .broadcastTo([2, 2])
        .toArray(),
      [
        [1, 1],
        [2, 2],
      ],
    );
    assert.throws(() => x.reshape([4, 2]), ad.ShapeError);
    const g = ad.grad((v: T) => ad.sum(ad.mul(ad.broadcastTo(v, [2, 3]), w)))(f64([1, 1, 1]));
    allNear(g, [0.5, 0.7, 0.9], 1e-12);
    const gt = ad.grad((v: T) => ad.sum(ad.mul(v.transpose(), w.transpose())))(x);
    allNear(gt, w, 0);
  });

  test("concat(xs, axis = 0), stack(xs, axis = 0) and their gradients", () => {
    assert.deepEqual(ad.concat([x, x]).shape, [4, 3]);
    assert.deepEqual(ad.concat([x, ad.zeros([2, 1], { dtype: "float64" })], 1).shape, [2, 4]);
    assert.deepEqual(ad.concat([x, x], -1).shape, [2, 6]);
    assert.deepEqual(ad.stack([x, x]).shape, [2, 2, 3]);
    assert.deepEqual(ad.stack([x, x], 1).shape, [2, 2, 3]);
    assert.deepEqual(ad.stack([x, x], -1).shape, [2, 3, 2]);
    assert.deepEqual(ad.stack([ad.scalar(1), ad.scalar(2)]).toArray(), [1, 2]);
    const [g1, g2] = ad.grad((a: T, b: T) => ad.sum(ad.mul(ad.concat([a, b], 1), f64([1, 2, 3, 4]))), {
      argnums: [0, 1],
    })(f64([[1, 1]]), f64([[1, 1]])) as [T, T];
    allNear(g1, [[1, 2]]);
    allNear(g2, [[3, 4]]);
    assert.throws(() => ad.concat([x, ad.zeros([3, 3])], 1), ad.ShapeError);
  });

  test("split(x, sections, axis = 0) as NumPy: a number = equal parts, an array = split indices", () => {
    const r = ad.arange(0, 6, 1, { dtype: "float64" });
    const parts = ad.split(r, 3);
    assert.equal(parts.length, 3);
    assert.deepEqual(
      parts.map((p: T) => p.toArray()),
      [
        [0, 1],
        [2, 3],
        [4, 5],
      ],
    );
    const idx = ad.split(r, [1, 4]);
    assert.deepEqual(
      idx.map((p: T) => p.toArray()),
      [[0], [1, 2, 3], [4, 5]],
    );
    const cols = x.split(3, 1);
    assert.equal(cols.length, 3);
    assert.deepEqual(cols[2]!.toArray(), [[3], [6]]);
    const g = ad.grad((v: T) => {
      const [a, b] = ad.split(v, [2]);
      return ad.add(ad.sum(a!), ad.mul(ad.sum(b!), 10));
    })(r);
    allNear(g, [1, 1, 10, 10, 10, 10]);
  });

  test("slice(begin, size), flip, pad(widths) with NumPy [[before, after], …]", () => {
    assert.deepEqual(ad.slice(x, [0, 1], [2, 2]).toArray(), [
      [2, 3],
      [5, 6],
    ]);
    assert.deepEqual(x.slice([1, 0], [1, 3]).toArray(), [[4, 5, 6]]);
    assert.deepEqual(ad.flip(x, 1).toArray(), [
      [3, 2, 1],
      [6, 5, 4],
    ]);
    assert.deepEqual(x.flip(0).toArray(), [
      [4, 5, 6],
      [1, 2, 3],
    ]);
    assert.deepEqual(ad.flip(ad.tensor([1, 2, 3])).toArray(), [3, 2, 1]);
    const p = ad.pad(x, [
      [1, 0],
      [0, 2],
    ]);
    assert.deepEqual(p.toArray(), [
      [0, 0, 0, 0, 0],
      [1, 2, 3, 0, 0],
      [4, 5, 6, 0, 0],
    ]);
    assert.deepEqual(
      ad
        .tensor([1, 2])
        .pad([[2, 1]])
        .toArray(),
      [0, 0, 1, 2, 0],
    );
    const gs = ad.grad((v: T) =>
      ad.sum(
        ad.mul(
          ad.slice(v, [0, 1], [2, 2]),
          f64([
            [1, 2],
            [3, 4],
          ]),
        ),
      ),
    )(x);
    allNear(gs, [
      [0, 1, 2],
      [0, 3, 4],
    ]);
    const gp = ad.grad((v: T) => ad.sum(ad.square(ad.pad(v, [[1, 1]]))))(f64([1, 2]));
    allNear(gp, [2, 4]);
    const gf = ad.grad((v: T) => ad.sum(ad.mul(ad.flip(v, 0), f64([1, 2, 3]))))(f64([0, 0, 0]));
    allNear(gf, [3, 2, 1]);
  });

  test("take(x, indices, axis?) as NumPy, with repeated indices and gradients", () => {
    const i = ad.tensor([2, 0, 2], { dtype: "int32" });
    assert.deepEqual(ad.take(x, i, 1).toArray(), [
      [3, 1, 3],
      [6, 4, 6],
    ]);
    // no axis: flattened
    assert.deepEqual(ad.take(x, ad.tensor([5, 0], { dtype: "int32" })).toArray(), [6, 1]);
    assert.deepEqual(x.take(ad.tensor([1], { dtype: "int32" }), 0).toArray(), [[4, 5, 6]]);
    // index tensor of rank 2 along axis 0
    assert.deepEqual(
      ad.take(
        ad.tensor([10, 20, 30]),
        ad.tensor(
          [
            [0, 1],
            [2, 2],
          ],
          { dtype: "int32" },
        ),
        0,
      ).shape,
      [2, 2],
    );
    const g = ad.grad((v: T) => ad.sum(ad.take(v, i, 1)))(x);
    allNear(g, [
      [1, 0, 2],
      [1, 0, 2],
    ]);
  });

  test("gather(x, axis, index) and scatterAdd(x, axis, index, src) as PyTorch", () => {
    const idx = ad.tensor(
      [
        [0, 0],
        [1, 0],
      ],
      { dtype: "int32" },
    );
    const t = f64([
      [1, 2],
      [3, 4],
    ]);
    // torch.gather(t, 1, [[0,0],[1,0]]) = [[1,1],[4,3]]
    assert.deepEqual(ad.gather(t, 1, idx).toArray(), [
      [1, 1],
      [4, 3],
    ]);
    assert.deepEqual(t.gather(1, idx).toArray(), [
      [1, 1],
      [4, 3],
    ]);
    // torch.gather(t, 0, [[0,0],[1,0]]) = [[1,2],[3,2]]
    assert.deepEqual(ad.gather(t, 0, idx).toArray(), [
      [1, 2],
      [3, 2],
    ]);
    // scatter_add: out[i][index[i][j]] += src[i][j] for dim 1
    const z = ad.zeros([2, 3], { dtype: "float64" });
    const src = f64([
      [1, 2],
      [3, 4],
    ]);
    const s = ad.scatterAdd(z, 1, idx, src);
    assert.deepEqual(s.toArray(), [
      [3, 0, 0],
      [4, 3, 0],
    ]);
    assert.deepEqual(z.scatterAdd(1, idx, src).toArray(), s.toArray());
    const gg = ad.grad((v: T) => ad.sum(ad.gather(v, 1, idx)))(t);
    allNear(gg, [
      [2, 0],
      [1, 1],
    ]);
    const [gx, gsrc] = ad.grad(
      (a: T, b: T) =>
        ad.sum(
          ad.mul(
            ad.scatterAdd(a, 1, idx, b),
            f64([
              [1, 2, 3],
              [4, 5, 6],
            ]),
          ),
        ),
      {
        argnums: [0, 1],
      },
    )(z, src) as [T, T];
    allNear(gx, [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    allNear(gsrc, [
      [1, 1],
      [5, 4],
    ]);
  });

  test("t.at(...index): basic integer indexing, negative indices, differentiable", () => {
    assert.deepEqual(x.at(1).toArray(), [4, 5, 6]);
    assert.equal(x.at(1, 2).item(), 6);
    assert.deepEqual(x.at(1, 2).shape, []);
    assert.equal(x.at(-1, -3).item(), 4);
    const g = ad.grad((v: T) => ad.mul(v.at(0, 1), v.at(1, 2)))(x);
    allNear(g, [
      [0, 6, 0],
      [0, 0, 2],
    ]);
  });
});

// ------------------------------------------------------------------ nn functions

describe("§2/§10 neural-net functions", () => {
  test("softmax(x, axis = -1), logSoftmax, functions and methods, gradients", () => {
    const x = f64([
      [1, 2, 3],
      [0, 0, 0],
    ]);
    const e = [1, 2, 3].map(Math.exp);
    const z = e.reduce((s, a) => s + a, 0);
    allNear(
      ad.softmax(x).at(0),
      e.map((a) => a / z),
      1e-12,
    );
    allNear(x.softmax().at(1), [1 / 3, 1 / 3, 1 / 3], 1e-12);
    allNear(
      ad.softmax(x, 0).at(0),
      [1 / (1 + Math.exp(-1)), 1 / (1 + Math.exp(-2)), 1 / (1 + Math.exp(-3))],
      1e-12,
    );
    allNear(
      ad.logSoftmax(x).at(0),
      [1, 2, 3].map((a) => a - Math.log(z)),
      1e-12,
    );
    allNear(x.logSoftmax(0), ad.log(ad.softmax(x, 0)), 1e-12);
    assert.ok(
      ad.gradcheck(
        (v: T) =>
          ad.sum(
            ad.mul(
              ad.softmax(v),
              f64([
                [1, 2, 3],
                [4, 5, 6],
              ]),
            ),
          ),
        [x],
      ).ok,
    );
  });

  test("normalize(x, {axis = -1, eps = 1e-12}) = x / max(‖x‖₂, eps)", () => {
    const x = f64([
      [3, 4],
      [0, 0],
    ]);
    allNear(
      ad.normalize(x),
      [
        [0.6, 0.8],
        [0, 0],
      ],
      1e-12,
    );
    allNear(
      x.normalize({ axis: 0 }),
      [
        [1, 1],
        [0, 0],
      ],
      1e-12,
    );
    allNear(ad.normalize(f64([1e-13, 0]), { eps: 1e-12 }), [0.1, 0], 1e-9);
    const g = ad.grad((v: T) => ad.sum(ad.normalize(v)))(f64([3, 4]));
    // d/dx (x/‖x‖) summed: (1 - x (x·1)/‖x‖²)/‖x‖
    allNear(g, [(1 - (3 * 7) / 25) / 5, (1 - (4 * 7) / 25) / 5], 1e-12);
  });
});

// ------------------------------------------------------------------ §10 non-smooth and stability

describe("§2/§10 non-smooth conventions, in reverse and forward mode, eager and jit", () => {
  const rev = (f: (x: T) => T, x: number[]) => flat(ad.grad((v: T) => ad.sum(f(v)))(f64(x)));
  const fwd = (f: (x: T) => T, x: number[]) => flat(ad.jvp(f, [f64(x)], [ad.onesLike(f64(x))])[1] as T);
  const jitRev = (f: (x: T) => T, x: number[]) => flat(ad.jit(ad.grad((v: T) => ad.sum(f(v))))(f64(x)));

  test("relu'(0) = 0 (anchors c#2)", () => {
    for (const g of [rev, fwd, jitRev]) assert.deepEqual(g(ad.relu, [0, 1, -1]), [0, 1, 0]);
    assert.deepEqual(rev(ad.relu, [0]), [0]);
    assert.equal(ad.grad((v: T) => ad.relu(v))(n(0)), 0);
  });

  test("abs'(0) = 0 (anchors c#3)", () => {
    for (const g of [rev, fwd, jitRev]) assert.deepEqual(g(ad.abs, [0, 2, -2]), [0, 1, -1]);
  });

  test("max/min reduction ties split the gradient equally (anchors c#4)", () => {
    allNear(
      rev((v) => ad.max(v), [1, 3, 3]),
      [0, 0.5, 0.5],
      0,
    );
    allNear(
      rev((v) => ad.min(v), [2, 2, 2, 5]),
      [1 / 3, 1 / 3, 1 / 3, 0],
      1e-15,
    );
    allNear(
      jitRev((v) => ad.max(v), [1, 3, 3]),
      [0, 0.5, 0.5],
      0,
    );
    // forward mode: tangent is the mean of the tangents at the ties
    const [, t] = ad.jvp((v: T) => ad.max(v), [f64([1, 3, 3])], [f64([0, 1, 3])]);
    near(num(t), 2, 0);
    const g2 = ad.grad((v: T) => ad.sum(ad.max(v, { axis: 1 })))(
      f64([
        [4, 4],
        [1, 2],
      ]),
    );
    allNear(g2, [
      [0.5, 0.5],
      [0, 1],
    ]);
  });

  test("maximum/minimum binary ties split 0.5/0.5 (anchors c#5)", () => {
    near(ad.grad((x: T) => ad.maximum(x, 2))(n(2)) as unknown as number, 0.5, 0);
    near(ad.grad((x: T) => ad.minimum(x, 2))(n(2)) as unknown as number, 0.5, 0);
    const [ga, gb] = ad.grad((a: T, b: T) => ad.maximum(a, b), { argnums: [0, 1] })(
      n(1.5),
      n(1.5),
    ) as unknown as [number, number];
    assert.deepEqual([ga, gb], [0.5, 0.5]);
    const [, t] = ad.jvp((a: T) => ad.maximum(a, f64(2)), [f64(2)], [f64(1)]);
    near(num(t), 0.5, 0);
    near(num(ad.jit(ad.grad((x: T) => ad.maximum(x, 2)))(f64(2))), 0.5, 0);
  });

  test("sqrt'(0) = +Inf (IEEE); sqrt(x²) at 0 gives NaN (anchors c#6)", () => {
    assert.deepEqual(rev(ad.sqrt, [0]), [Number.POSITIVE_INFINITY]);
    assert.ok(Number.isNaN(rev((v) => ad.sqrt(ad.square(v)), [0])[0]!));
  });

  test("prod is division-free, exact with zeros (anchors c#9)", () => {
    assert.deepEqual(
      rev((v) => ad.prod(v), [2, 0, 3]),
      [0, 6, 0],
    );
    assert.deepEqual(
      rev((v) => ad.prod(v), [0, 0, 3]),
      [0, 0, 0],
    );
    assert.deepEqual(
      fwd((v) => ad.prod(v), [2, 0, 3]),
      [6],
    );
    assert.deepEqual(
      jitRev((v) => ad.prod(v), [2, 0, 3]),
      [0, 6, 0],
    );
    assert.deepEqual(flat(ad.grad((v: T) => ad.prod(v))(ad.tensor([2, 0, 3]))), [0, 6, 0]);
    // second derivative through prod at a zero
    const h = ad.hessian((v: T) => ad.prod(v))(f64([2, 0, 3]));
    allNear(
      h,
      [
        [0, 3, 0],
        [3, 0, 2],
        [0, 2, 0],
      ],
      0,
    );
  });

  test("pow at 0: d/dx x^2 = 0, x^3 = 0; d/dy 0^y at y = 2 is 0 (anchors c#10)", () => {
    assert.deepEqual(
      rev((v) => ad.pow(v, 2), [0]),
      [0],
    );
    assert.deepEqual(
      rev((v) => ad.pow(v, 3), [0]),
      [0],
    );
    assert.deepEqual(
      fwd((v) => ad.pow(v, 2), [0]),
      [0],
    );
    assert.deepEqual(flat(ad.grad((v: T) => ad.sum(ad.pow(v, 2)))(ad.tensor([0]))), [0]);
    assert.deepEqual(
      rev((y) => ad.pow(0, y), [2]),
      [0],
    );
    assert.deepEqual(
      rev((y) => ad.pow(f64([0]), y), [2]),
      [0],
    );
    // d/dx x^1 at 0 is exactly 1; second derivative of x^2 at 0 is 2
    assert.deepEqual(
      rev((v) => ad.pow(v, 1), [0]),
      [1],
    );
    near(ad.grad(ad.grad((v: T) => ad.pow(v, 2)))(n(0)) as unknown as number, 2, 0);
    // negative bases with integer exponents
    near(ad.pow(-2, 3).item(), -8, 0);
    assert.deepEqual(
      rev((v) => ad.pow(v, 3), [-2]),
      [12],
    );
  });
});

describe("§2 numerically stable by construction for |x| up to 1e4", () => {
  test("logsumexp (anchors c#11)", () => {
    near(ad.logsumexp(ad.tensor([1000, 1000])).item(), 1000 + Math.LN2, 1e-6);
    allNear(ad.grad((v: T) => ad.logsumexp(v))(ad.tensor([1000, 1000])), [0.5, 0.5], 1e-6);
    near(ad.logsumexp(ad.tensor([0, Number.NEGATIVE_INFINITY])).item(), 0, 0);
    allNear(ad.grad((v: T) => ad.logsumexp(v))(ad.tensor([0, Number.NEGATIVE_INFINITY])), [1, 0], 0);
    const ninf = Number.NEGATIVE_INFINITY;
    assert.equal(ad.logsumexp(ad.tensor([ninf, ninf])).item(), ninf);
    allNear(ad.grad((v: T) => ad.logsumexp(v))(ad.tensor([ninf, ninf])), [0, 0], 0);
    near(ad.logsumexp(ad.tensor([-1e4, -1e4])).item(), -1e4 + Math.LN2, 1e-6);
  });

  test("softplus and sigmoid (anchors c#12)", () => {
    near(num(ad.grad((v: T) => ad.softplus(v))(ad.scalar(100))), 1, 0);
    near(ad.softplus(ad.tensor([1e4])).item(), 1e4, 1e-7);
    near(ad.softplus(ad.tensor([-1e4])).item(), 0, 0);
    near(num(ad.grad((v: T) => ad.softplus(v))(ad.scalar(-1e4))), 0, 0);
    near(ad.sigmoid(ad.tensor([-1e4])).item(), 0, 0);
    near(ad.sigmoid(ad.tensor([1e4])).item(), 1, 0);
    for (const x of [-1e4, 1e4, -100, 100]) {
      const g = num(ad.grad((v: T) => ad.sigmoid(v))(ad.scalar(x)));
      assert.ok(Number.isFinite(g) && g >= 0, `sigmoid' at ${x} = ${g}`);
    }
  });

  test("logSoftmax and cross-entropy (anchors c#13)", () => {
    const l = ad.logSoftmax(ad.tensor([0, 1000]));
    allNear(l, [-1000, 0], 1e-6);
    const g = ad.grad((v: T) => ad.neg(ad.logSoftmax(v).at(0)))(ad.tensor([0, 1000]));
    allNear(g, [-1, 1], 1e-6);
    const logits = ad.tensor([
      [1e4, -1e4, 0],
      [-1e4, 1e4, 0],
    ]);
    const labels = ad.tensor([1, 1], { dtype: "int32" });
    const ce = ad.nn.crossEntropy(logits, labels);
    near(ce.item(), 1e4, 1e-6);
    const gl = flat(ad.grad((v: T) => ad.nn.crossEntropy(v, labels))(logits));
    assert.ok(gl.every(Number.isFinite));
    allNear(gl, [0.5, -0.5, 0, 0, 0, 0], 1e-6);
  });
});

describe("§2 composition sanity: methods chain like NumPy/PyTorch", () => {
  test("a chained expression on a non-contiguous transpose", () => {
    const x = ad.arange(0, 6, 1, { dtype: "float64" }).reshape([2, 3]).transpose();
    const y = x.mul(2).add(1).exp().log().sum({ axis: 0 });
    allNear(y, [1 + 3 + 5, 7 + 9 + 11], 1e-12);
    const g = ad.grad((v: T) =>
      v
        .transpose()
        .mul(f64([[1], [2]]))
        .sum(),
    )(x);
    allNear(g, [
      [1, 2],
      [1, 2],
      [1, 2],
    ]);
  });
});
