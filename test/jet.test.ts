/**
 * @file Taylor mode (`ad.jet`) against nested `jvp`: JAX's derivative-coefficient convention
 * (closed forms), a composite of every elementwise primitive to order 4 and 6, every row of the
 * op table (`op-specs.ts`: matmul, reductions, movement, indexing, ...) with several non-zero
 * input terms along the polynomial path, control flow, custom rules and checkpoints, jet under
 * and over grad/jvp/jit/vmap (and nested jets), pytrees and numbers, symbolic zeros, errors.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
// The primitive families of the built package (the same module instances as "adjoint").
import * as binaryPrims from "../dist/primitives/binary.js";
import * as comparePrims from "../dist/primitives/compare.js";
import * as controlPrims from "../dist/primitives/control.js";
import * as convertPrims from "../dist/primitives/convert.js";
import * as customPrims from "../dist/primitives/custom.js";
import * as fusedPrims from "../dist/primitives/fused.js";
import { allPrimitives } from "../dist/primitives/index.js";
import * as linalgPrims from "../dist/primitives/linalg.js";
import * as linalgDecompPrims from "../dist/primitives/linalg-decomp.js";
import * as movementPrims from "../dist/primitives/movement.js";
import * as randomPrims from "../dist/primitives/random.js";
import * as reducePrims from "../dist/primitives/reduce.js";
import * as unaryPrims from "../dist/primitives/unary.js";
import { checkpointP } from "../dist/transforms/checkpoint.js";
import { hashString, mulberry32, opSpecs, type Rng, sampleInputs, shapesOf } from "./op-specs.js";

type Fn = (...xs: ad.Tensor[]) => ad.Tensor;

const f64 = (data: ad.TensorData) => ad.tensor(data, { dtype: "float64" });
const fact = (k: number): number => (k <= 1 ? 1 : k * fact(k - 1));

/** t^k by repeated multiplication (so the reference path uses no rule but mul's). */
function powT(t: ad.Tensor, k: number): ad.Tensor {
  let r = t;
  for (let i = 1; i < k; i++) r = ad.mul(r, t);
  return r;
}

/**
 * The reference: d^k/dt^k f(x(t)) at t = 0 for k = 1..K, along x_i(t) = x_i + Σ_k s_ik t^k/k!,
 * by k nested `jvp`s in the scalar t.
 */
function nestedJvp(
  f: Fn,
  primals: readonly ad.Tensor[],
  series: readonly (readonly ad.Tensor[])[],
  K: number,
) {
  const g = (t: ad.Tensor): ad.Tensor =>
    f(
      ...primals.map((x, i) => {
        let acc = x;
        series[i]!.forEach((s, k) => {
          acc = ad.add(acc, ad.mul(s, ad.div(powT(t, k + 1), fact(k + 1))));
        });
        return acc;
      }),
    );
  const out: ad.Tensor[] = [];
  let h = g;
  for (let k = 1; k <= K; k++) {
    const prev = h;
    h = (t: ad.Tensor) => ad.jvp(prev, [t], [ad.onesLike(t)])[1] as ad.Tensor;
    out.push(h(f64(0)));
  }
  return out;
}

/** d^k f(x + t v)/dt^k at 0 for k = 1..K by nested jvp with the constant direction v. */
function nestedDirectional(f: Fn, x: ad.Tensor, v: ad.Tensor, K: number): ad.Tensor[] {
  const out: ad.Tensor[] = [];
  let h: Fn = f;
  for (let k = 1; k <= K; k++) {
    const prev = h;
    h = (y: ad.Tensor) => ad.jvp(prev, [y], [v])[1] as ad.Tensor;
    out.push(h(x));
  }
  return out;
}

interface PrimLike {
  readonly name: string;
  readonly jet?: unknown;
}

/** The primitives a module exports. */
function primsOf(mod: Record<string, unknown>): PrimLike[] {
  return Object.values(mod).filter(
    (v): v is PrimLike => typeof v === "object" && v !== null && "abstractEval" in v && "name" in v,
  );
}

/** Largest |jet − nested jvp| / (1 + |nested jvp|) over every float64 comparison of this file. */
let maxDiscrepancy = 0;

/** |a − b| ≤ atol + rtol |b| entrywise; returns the largest |a − b| / (1 + |b|). */
function assertNear(a: ad.Tensor, b: ad.Tensor, what: string, rtol = 1e-9, atol = 1e-9): number {
  assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  const x = a.data();
  const y = b.data();
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const u = Number(x[i]);
    const w = Number(y[i]);
    if (Number.isNaN(w)) {
      assert.ok(Number.isNaN(u), `${what}[${i}]: expected NaN, got ${u}`);
      continue;
    }
    const d = Math.abs(u - w);
    assert.ok(d <= atol + rtol * Math.abs(w), `${what}[${i}]: jet gives ${u}, nested jvp ${w}`);
    worst = Math.max(worst, d / (1 + Math.abs(w)));
  }
  if (b.dtype === "float64") maxDiscrepancy = Math.max(maxDiscrepancy, worst);
  return worst;
}

function randn(rng: Rng, shape: readonly number[]): ad.Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = 2 * rng() - 1;
  return ad.tensor(v, { dtype: "float64", shape: [...shape] });
}

/** jet(f) with the given series vs nested jvp along the same path, every order up to K. */
function checkAgainstNested(
  f: Fn,
  primals: ad.Tensor[],
  series: ad.Tensor[][],
  what: string,
  tol: { rtol?: number; atol?: number } = {},
): void {
  const K = series[0]!.length;
  const [y, ys] = ad.jet(f, primals, series) as [ad.Tensor, ad.Tensor[]];
  assertNear(y, f(...primals), `${what}: primal`, 0, 0);
  assert.equal(ys.length, K, `${what}: number of terms`);
  const ref = nestedJvp(f, primals, series, K);
  ref.forEach((r, k) => assertNear(ys[k]!, r, `${what}: term ${k + 1}`, tol.rtol, tol.atol));
}

// ---- the convention ---------------------------------------------------------------------------

describe("jet: JAX's derivative-coefficient convention", () => {
  test("series [1, 0, 0, …] gives the derivatives f⁽ᵏ⁾(x₀)", () => {
    const x = 0.3;
    const [y, s] = ad.jet((v: number) => ad.sin(v), [x], [[1, 0, 0, 0]]);
    assert.equal(y, Math.sin(x));
    const want = [Math.cos(x), -Math.sin(x), -Math.cos(x), Math.sin(x)];
    s.forEach((v, k) => assert.ok(Math.abs((v as number) - want[k]!) < 1e-15, `term ${k + 1}`));
    const [, e] = ad.jet((v: number) => ad.exp(ad.mul(v, 2)), [0], [[1, 0, 0, 0, 0]]);
    assert.deepEqual(e, [2, 4, 8, 16, 32]);
  });

  test("several input terms: x(t) = x0 + x1 t + x2 t²/2 + x3 t³/6", () => {
    // f = x²: y1 = 2 x0 x1, y2 = 2 x1² + 2 x0 x2, y3 = 6 x1 x2 + 2 x0 x3
    const [x0, x1, x2, x3] = [1.5, 0.7, -0.4, 2];
    const [y, s] = ad.jet((v: number) => ad.mul(v, v), [x0], [[x1, x2, x3]]);
    assert.equal(y, x0 * x0);
    const want = [2 * x0 * x1, 2 * x1 * x1 + 2 * x0 * x2, 6 * x1 * x2 + 2 * x0 * x3];
    s.forEach((v, k) => assert.ok(Math.abs((v as number) - want[k]!) < 1e-12, `term ${k + 1}`));
    // exp: y1 = e x1, y2 = e (x1² + x2), y3 = e (x1³ + 3 x1 x2 + x3)
    const [ey, es] = ad.jet((v: number) => ad.exp(v), [x0], [[x1, x2, x3]]);
    const e = Math.exp(x0);
    const eWant = [e * x1, e * (x1 * x1 + x2), e * (x1 ** 3 + 3 * x1 * x2 + x3)];
    assert.equal(ey, e);
    es.forEach((v, k) => assert.ok(Math.abs((v as number) - eWant[k]!) < 1e-12, `exp term ${k + 1}`));
  });

  test("K = 0 returns the value and no terms; a constant output has zero series", () => {
    assert.deepEqual(
      ad.jet((v: number) => ad.sin(v), [0], [[]]),
      [0, []],
    );
    const [y, s] = ad.jet((_v: ad.Tensor) => f64([1, 2]), [f64([3, 4])], [[f64([1, 1]), f64([0, 0])]]);
    assert.deepEqual((y as ad.Tensor).toArray(), [1, 2]);
    assert.deepEqual(
      s.map((t) => (t as ad.Tensor).toArray()),
      [
        [0, 0],
        [0, 0],
      ],
    );
  });
});

// ---- every elementwise primitive --------------------------------------------------------------

/** A composite that binds every elementwise primitive (checked against its trace below). */
function composite(x: ad.Tensor): ad.Tensor {
  const s = ad.sin(x);
  const c = ad.cos(x);
  const terms = [
    ad.neg(ad.exp(ad.mul(x, 0.5))),
    ad.log(ad.add(ad.square(x), 1)),
    ad.log1p(ad.mul(ad.exp(x), 0.5)),
    ad.expm1(ad.mul(x, 0.3)),
    ad.sqrt(ad.add(ad.square(x), 0.5)),
    s,
    c,
    ad.tan(ad.mul(x, 0.4)),
    ad.asin(ad.mul(ad.tanh(x), 0.6)),
    ad.acos(ad.mul(ad.sigmoid(x), 0.8)),
    ad.atan(ad.mul(x, 2)),
    ad.sinh(ad.mul(x, 0.7)),
    ad.cosh(ad.mul(x, 0.6)),
    ad.erf(x),
    ad.abs(ad.sub(x, 0.1)),
    ad.mul(ad.add(ad.add(ad.floor(ad.mul(x, 3)), ad.ceil(x)), ad.add(ad.round(ad.mul(x, 2)), ad.sign(x))), s),
    ad.div(s, ad.add(ad.cosh(x), 1)),
    ad.pow(ad.add(ad.cosh(x), 0.5), 2.5),
    ad.pow(ad.add(ad.cosh(x), 0.5), c),
    ad.pow(x, 3),
    ad.maximum(s, c),
    ad.minimum(ad.mul(s, 2), c),
    ad.atan2(s, ad.add(c, 2)),
    ad.where(ad.logicalOr(ad.greater(x, 0.5), ad.lessEqual(x, -0.5)), ad.exp(x), ad.square(x)),
    ad.where(ad.logicalAnd(ad.greaterEqual(x, -1), ad.less(x, 1)), s, c),
    ad.where(ad.logicalNot(ad.equal(x, 0.25)), ad.mul(x, c), 0),
    ad.where(ad.notEqual(x, 0.3), ad.mul(s, c), x),
    ad.mul(ad.stopGradient(x), s),
    ad.mul(ad.astype(ad.astype(x, "float32"), "float64"), c),
    ad.sub(x, c),
  ];
  return terms.reduce((a, b) => ad.add(a, b));
}

/** Every elementwise primitive: the unary, binary, compare and convert families. */
const ELEMENTWISE = [unaryPrims, binaryPrims, comparePrims, convertPrims].flatMap((m) =>
  primsOf(m).map((p) => p.name),
);

describe("jet vs nested jvp on a composite of every elementwise primitive", () => {
  const x = f64([-1.3, -0.45, 0.2, 0.7, 1.4]);
  const v = f64([1, -0.5, 0.8, 0.3, -1.2]);

  test("the composite binds every elementwise primitive", () => {
    const names = new Set(
      ad
        .trace(composite)(x)
        .eqns.map((e) => e.prim.name),
    );
    assert.ok(ELEMENTWISE.length >= 42);
    const missing = ELEMENTWISE.filter((n) => !names.has(n));
    assert.deepEqual(missing, []);
  });

  test("order 4, direction series [v, 0, 0, 0]", () => {
    const [y, ys] = ad.jet(composite, [x], [[v, ad.zerosLike(v), ad.zerosLike(v), ad.zerosLike(v)]]);
    assertNear(y, composite(x), "primal", 0, 0);
    nestedDirectional(composite, x, v, 4).forEach((r, k) => assertNear(ys[k]!, r, `term ${k + 1}`));
  });

  test("order 4 with four non-zero input terms (the polynomial path)", () => {
    const rng = mulberry32(7);
    const series = [0, 1, 2, 3].map(() => randn(rng, [5]));
    checkAgainstNested(composite, [x], [series], "composite");
  });

  test("order 6", () => {
    const zeros = ad.zerosLike(v);
    const [, ys] = ad.jet(composite, [x], [[v, zeros, zeros, zeros, zeros, zeros]]);
    nestedDirectional(composite, x, v, 6).forEach((r, k) =>
      assertNear(ys[k]!, r, `term ${k + 1}`, 1e-8, 1e-8),
    );
  });
});

describe("each elementwise primitive to order 6", () => {
  const x = f64([-0.8, -0.3, 0.15, 0.55, 0.9]);
  const pos = f64([0.3, 0.7, 1.1, 1.9, 2.6]);
  const y = f64([0.6, -1.1, 0.9, -0.2, 1.3]);
  const cases: [string, Fn, ad.Tensor][] = [
    ["neg", ad.neg, x],
    ["exp", ad.exp, x],
    ["log", ad.log, pos],
    ["log1p", ad.log1p, x],
    ["expm1", ad.expm1, x],
    ["sqrt", ad.sqrt, pos],
    ["sin", ad.sin, x],
    ["cos", ad.cos, x],
    ["tan", ad.tan, x],
    ["asin", ad.asin, x],
    ["acos", ad.acos, x],
    ["atan", ad.atan, x],
    ["sinh", ad.sinh, x],
    ["cosh", ad.cosh, x],
    ["tanh", ad.tanh, x],
    ["logistic", ad.sigmoid, x],
    ["erf", ad.erf, x],
    ["abs", ad.abs, x],
    ["sign", ad.sign, x],
    ["floor/ceil/round", (a) => ad.add(ad.floor(a), ad.add(ad.ceil(a), ad.round(a))), x],
    ["mul", (a) => ad.mul(ad.sin(a), ad.exp(a)), x],
    ["div", (a) => ad.div(ad.sin(a), ad.add(a, 2)), x],
    ["div by a series only", (a) => ad.div(1.5, ad.add(a, 2)), x],
    ["pow x^2.5", (a) => ad.pow(a, 2.5), pos],
    ["pow x^3 through 0", (a) => ad.pow(a, 3), f64([-0.5, 0, 0.5])],
    ["pow x^2 at 0", (a) => ad.pow(a, 2), f64([0, 0])],
    ["pow x^y", (a) => ad.pow(a, ad.cos(a)), pos],
    ["pow 2^x", (a) => ad.pow(2, a), x],
    ["pow 0^x (log 0 as 0)", (a) => ad.pow(ad.zerosLike(a), ad.add(a, 2)), x],
    ["max", (a) => ad.maximum(ad.sin(a), ad.mul(a, y)), x],
    ["min", (a) => ad.minimum(ad.sin(a), ad.mul(a, y)), x],
    ["atan2", (a) => ad.atan2(ad.sin(a), ad.add(ad.cos(a), ad.mul(a, 0.3))), x],
    ["atan2 constant y", (a) => ad.atan2(a, y), x],
    ["atan2 constant x", (a) => ad.atan2(y, a), x],
    ["select", (a) => ad.where(ad.greater(a, 0), ad.exp(a), ad.sin(a)), x],
  ];
  const v = f64([1, -0.7, 0.4, 1.3, -0.2]);
  for (const [name, f, at] of cases)
    test(name, () => {
      const dir = ad.slice(v, [0], at.shape);
      const zeros = ad.zerosLike(dir);
      const K = 6;
      const [, ys] = ad.jet(f, [at], [[dir, ...new Array<ad.Tensor>(K - 1).fill(zeros)]]);
      nestedDirectional(f, at, dir, K).forEach((r, k) =>
        assertNear(ys[k]!, r, `${name} term ${k + 1}`, 1e-8, 1e-8),
      );
    });

  test("ties split equally (max/min), as the JVP", () => {
    const a = f64([1, 2]);
    const [, ys] = ad.jet((u: ad.Tensor) => ad.maximum(u, f64([1, 0])), [a], [[f64([1, 1]), f64([2, 2])]]);
    assert.deepEqual(
      ys.map((t) => t.toArray()),
      [
        [0.5, 1],
        [1, 2],
      ],
    );
  });

  test("binary ops with series on both operands (broadcasting), several terms", () => {
    const rng = mulberry32(11);
    const a = f64([
      [0.4, -0.7, 1.2],
      [0.9, 0.1, -0.5],
    ]);
    const b = f64([1.3, 0.6, 0.8]);
    const sa = [0, 1, 2].map(() => randn(rng, [2, 3]));
    const sb = [0, 1, 2].map(() => randn(rng, [3]));
    const fns: [string, (p: ad.Tensor, q: ad.Tensor) => ad.Tensor][] = [
      ["add", ad.add],
      ["sub", ad.sub],
      ["mul", ad.mul],
      ["div", ad.div],
      ["pow", (p, q) => ad.pow(ad.add(ad.square(p), 0.5), q)],
      ["maximum", ad.maximum],
      ["minimum", ad.minimum],
      ["atan2", ad.atan2],
    ];
    for (const [name, f] of fns) checkAgainstNested(f as Fn, [a, b], [sa, sb], name);
  });

  test("float32 inputs stay float32 and agree within float32 rounding", () => {
    const a = ad.tensor([0.3, -0.6, 1.1]);
    const f = (u: ad.Tensor) => ad.tanh(ad.mul(ad.exp(u), ad.sin(u)));
    const dir = ad.tensor([1, 0.5, -1]);
    const zeros = ad.zerosLike(dir);
    const [y, ys] = ad.jet(f, [a], [[dir, zeros, zeros]]);
    assert.equal(y.dtype, "float32");
    for (const t of ys) assert.equal(t.dtype, "float32");
    nestedDirectional(f, a, dir, 3).forEach((r, k) => assertNear(ys[k]!, r, `term ${k + 1}`, 1e-4, 1e-4));
  });
});

// ---- every row of the op table ------------------------------------------------------------------

describe("jet vs nested jvp over the op table (three input terms, order 3)", () => {
  for (const spec of opSpecs) {
    const name = `${spec.name}${spec.label ? ` (${spec.label})` : ""}`;
    test(name, () => {
      const rng = mulberry32(hashString(`jet ${name}`));
      const shapes = shapesOf(spec, rng);
      const inputs = sampleInputs(spec, shapes, rng);
      // Small input terms keep the path inside the row's smooth domain.
      const series = shapes.map((s) => [0, 1, 2].map(() => ad.mul(randn(rng, s), 0.3)));
      checkAgainstNested(spec.fn, inputs, series, name, {
        rtol: Math.max(spec.rtol ?? 0, 1e-8),
        atol: Math.max(spec.atol ?? 0, 1e-8),
      });
    });
  }
});

describe("matmul, reductions and movement", () => {
  const rng = mulberry32(3);
  const A = randn(rng, [3, 4]);
  const B = randn(rng, [4, 2]);
  const sA = [0, 1, 2, 3].map(() => randn(rng, [3, 4]));
  const sB = [0, 1, 2, 3].map(() => randn(rng, [4, 2]));

  test("matmul with both operands on a path (Cauchy product), order 4", () => {
    checkAgainstNested((a, b) => ad.matmul(a, b), [A, B], [sA, sB], "matmul");
    checkAgainstNested(
      (a, b) => ad.sum(ad.tanh(ad.matmul(ad.matmul(a, b), ad.transpose(b)))),
      [A, B],
      [sA, sB],
      "tanh(A B Bᵀ)",
    );
  });

  test("batched matmul; one operand constant", () => {
    const X = randn(rng, [2, 3, 4]);
    const sX = [0, 1, 2].map(() => randn(rng, [2, 3, 4]));
    checkAgainstNested((x) => ad.matmul(ad.sin(x), B), [X], [sX], "sin(X) B");
  });

  test("reductions and movement inside a smooth function, order 4", () => {
    const f = (a: ad.Tensor) => {
      const m = ad.max(ad.mul(a, a), { axis: 1 });
      const r = ad.reshape(ad.transpose(a), [2, 6]);
      const p = ad.pad(ad.slice(a, [0, 1], [2, 2]), [
        [1, 0],
        [0, 1],
      ]);
      const g = ad.gather(a, 1, ad.tensor([[0], [3], [1]], { dtype: "int32" }));
      const s = ad.scatterAdd(
        ad.zerosLike(a),
        0,
        ad.tensor([[2, 0, 1, 1]], { dtype: "int32" }),
        ad.slice(a, [0, 0], [1, 4]),
      );
      const parts = [
        ad.sum(ad.exp(ad.mul(m, 0.3))),
        ad.sum(ad.sin(r)),
        ad.sum(ad.square(ad.flip(p, [0]))),
        ad.sum(ad.cos(ad.concat([g, ad.broadcastTo(ad.min(a, { axis: 1, keepdims: true }), [3, 2])], 1))),
        ad.sum(ad.tanh(s)),
        ad.logsumexp(a),
        ad.prod(ad.slice(a, [0, 0], [1, 3])),
      ];
      return parts.reduce((x, y) => ad.add(x, y));
    };
    checkAgainstNested(f, [A], [sA], "reductions/movement");
  });
});

// ---- linear algebra -----------------------------------------------------------------------------

describe("linear algebra: every ad.linalg function to order 4 (four input terms), batched and not", () => {
  const rng = mulberry32(11);
  const eye3 = ad.eye(3, { dtype: "float64" });
  /** M + 3I (well conditioned), and with its rows reversed (pivoting). */
  const wc = (m: ad.Tensor) => ad.add(m, ad.mul(3, eye3));
  const piv = (m: ad.Tensor) => ad.flip(wc(m), m.ndim - 2);
  const spd = (m: ad.Tensor) => ad.add(ad.matmul(m, ad.transpose(m)), eye3);
  const rows: [string, Fn, number[][]][] = [
    ["solve (pivoting)", (a, b) => ad.linalg.solve(piv(a!), b!), [[3, 3], [3]]],
    [
      "solve, batched",
      (a, b) => ad.linalg.solve(wc(a!), b!),
      [
        [2, 3, 3],
        [2, 3, 2],
      ],
    ],
    ["inv", (a) => ad.linalg.inv(piv(a!)), [[3, 3]]],
    ["det", (a) => ad.linalg.det(piv(a!)), [[3, 3]]],
    ["slogdet", (a) => ad.linalg.slogdet(wc(a!))[1], [[2, 3, 3]]],
    ["cholesky", (a) => ad.linalg.cholesky(spd(a!)), [[3, 3]]],
    [
      "cholesky, batched, lower triangle only",
      (a) => ad.linalg.cholesky(wc(a!), { symmetrizeInput: false }),
      [[2, 3, 3]],
    ],
    [
      "triangularSolve",
      (a, b) => ad.linalg.triangularSolve(wc(a!), b!, { lower: true }),
      [
        [3, 3],
        [3, 2],
      ],
    ],
    [
      "triangularSolve, transposeA, unitDiagonal, batched",
      (a, b) => ad.linalg.triangularSolve(wc(a!), b!, { transposeA: true, unitDiagonal: true }),
      [
        [2, 3, 3],
        [2, 3],
      ],
    ],
    ["luFactor", (a) => ad.linalg.luFactor(piv(a!)).lu, [[3, 3]]],
    ["norm (Frobenius, batched)", (a) => ad.linalg.norm(wc(a!), { axis: [-2, -1] }), [[2, 3, 3]]],
  ];
  for (const [name, f, shapes] of rows)
    test(name, () => {
      const xs = shapes.map((sh) => randn(rng, sh));
      const series = shapes.map((sh) => [0, 1, 2, 3].map(() => ad.mul(randn(rng, sh), 0.5)));
      checkAgainstNested(f, xs, series, name);
    });

  test("triangular_solve, cholesky and lu have their own Taylor rules (det keeps the generic one)", () => {
    const own = primsOf(linalgDecompPrims)
      .filter((p) => typeof p.jet === "function")
      .map((p) => p.name)
      .sort();
    assert.deepEqual(own, ["cholesky", "lu", "triangular_solve"]);
  });
});

// ---- control flow, custom rules, checkpoints ------------------------------------------------------

describe("higher-order primitives", () => {
  const x = f64([0.4, -0.9, 1.3]);
  const rng = mulberry32(5);
  const sx = [0, 1, 2].map(() => randn(rng, [3]));

  test("cond (staged by jit), both branches", () => {
    const f = ad.jit((u: ad.Tensor) =>
      ad.cond(
        ad.greater(ad.sum(u), 0),
        (w: ad.Tensor) => ad.mul(ad.sin(w), ad.exp(w)),
        (w: ad.Tensor) => ad.tanh(ad.mul(w, w)),
        u,
      ),
    ) as Fn;
    checkAgainstNested(f, [x], [sx], "cond, true branch");
    checkAgainstNested(f, [ad.neg(ad.abs(x))], [sx], "cond, false branch");
    // jet inside jit: the cond primitive meets the jet interpreter directly.
    const g = ad.jit((u: ad.Tensor, s: ad.Tensor) => ad.jet(f, [u], [[s, s]])[1][1]!);
    assertNear(g(x, sx[0]!), ad.jet(f, [x], [[sx[0]!, sx[0]!]])[1][1]!, "jit(jet(cond))", 1e-12, 1e-12);
  });

  test("scan with series on the carry, the xs and a closed-over constant", () => {
    const xs = randn(rng, [4, 3]);
    const sxs = [0, 1, 2].map(() => randn(rng, [4, 3]));
    const f = (c0: ad.Tensor, xsv: ad.Tensor, k: ad.Tensor) => {
      const [c, ys] = ad.scan(
        (c: ad.Tensor, xt: ad.Tensor) => [ad.add(ad.mul(ad.sin(c), k), xt), ad.mul(c, ad.cos(xt))],
        c0,
        xsv,
      );
      return ad.add(ad.sum(c), ad.sum(ad.square(ys)));
    };
    const k = f64([0.7, 1.1, -0.4]);
    const sk = [0, 1, 2].map(() => randn(rng, [3]));
    checkAgainstNested(f as Fn, [x, xs, k], [sx, sxs, sk], "scan");
    // a reverse scan, a series only on a constant
    const g = (kv: ad.Tensor) =>
      ad.sum(
        ad.scan((c: ad.Tensor, xt: ad.Tensor) => [ad.tanh(ad.add(ad.mul(c, kv), xt)), c], x, xs, {
          reverse: true,
        })[1],
      );
    checkAgainstNested(g, [k], [sk], "reverse scan, series on a constant");
  });

  test("fori and whileLoop (staged by jit)", () => {
    const f = (u: ad.Tensor) => ad.fori(0, 3, (_i, c: ad.Tensor) => ad.sin(ad.add(ad.mul(c, 1.3), 0.2)), u);
    checkAgainstNested(f, [x], [sx], "fori");
    const w = ad.jit((u: ad.Tensor) => {
      const [v] = ad.whileLoop(
        ([, i]: [ad.Tensor, ad.Tensor]) => ad.less(i, 3),
        ([c, i]: [ad.Tensor, ad.Tensor]) => [ad.mul(ad.sin(c), 1.5), ad.add(i, 1)],
        [u, ad.scalar(0, { dtype: "int32" })],
      );
      return v;
    }) as Fn;
    checkAgainstNested(w, [x], [sx], "whileLoop");
  });

  test("customJvp: the user's rule, nested (agrees with nested jvp)", () => {
    const sinJvp2 = ad.customJvp((u: ad.Tensor) => ad.sin(u), {
      jvp: ([u], [t]) => [ad.sin(u), ad.mul(t, ad.mul(ad.cos(u), 2))],
    });
    checkAgainstNested((u) => ad.exp(sinJvp2(u) as ad.Tensor), [x], [sx], "customJvp");
  });

  test("customVjp: with a jvp rule it is used; without one jet expands f", () => {
    const withJvp = ad.customVjp((u: ad.Tensor) => ad.tanh(u), {
      fwd: (u) => [ad.tanh(u), null],
      bwd: (_r, g) => [g],
      jvp: ([u], [t]) => [ad.tanh(u), ad.mul(t, 3)],
    });
    checkAgainstNested((u) => ad.sin(withJvp(u) as ad.Tensor), [x], [sx], "customVjp with jvp");
    const noJvp = ad.customVjp((u: ad.Tensor) => ad.tanh(u), {
      fwd: (u) => [ad.tanh(u), null],
      bwd: (_r, g) => [g],
    });
    const [, ys] = ad.jet((u: ad.Tensor) => ad.sin(noJvp(u) as ad.Tensor), [x], [sx]);
    const [, ref] = ad.jet((u: ad.Tensor) => ad.sin(ad.tanh(u)), [x], [sx]);
    ys.forEach((t, k) => assertNear(t, ref[k]!, `term ${k + 1}`, 0, 0));
  });

  test("checkpoint", () => {
    const body = ad.checkpoint((u: ad.Tensor) => ad.sin(ad.mul(ad.exp(u), u)));
    checkAgainstNested((u) => ad.sum(body(u) as ad.Tensor), [x], [sx], "checkpoint");
  });
});

// ---- composition with other transforms --------------------------------------------------------------

describe("jet composes with the other transforms", () => {
  test("grad of a jet coefficient: d/dx f'''(x) = f''''(x)", () => {
    const f = (v: ad.Tensor) => ad.mul(ad.sin(v), ad.exp(ad.mul(v, 0.5)));
    const third = (v: ad.Tensor) => ad.jet(f, [v], [[1, 0, 0]])[1][2]!;
    const x = f64(0.7);
    const g = ad.grad(third)(x);
    assertNear(g, nestedDirectional(f, x, f64(1), 4)[3]!, "grad∘jet");
  });

  test("jet of grad, and jet of jvp", () => {
    const f = (v: ad.Tensor) => ad.sum(ad.mul(ad.tanh(v), ad.cos(v)));
    const x = f64([0.3, -0.6]);
    const v = f64([1, 0.5]);
    const z = ad.zerosLike(v);
    const df = ad.grad(f) as Fn;
    const [, ys] = ad.jet(df, [x], [[v, z, z]]);
    nestedDirectional(df, x, v, 3).forEach((r, k) => assertNear(ys[k]!, r, `jet∘grad term ${k + 1}`));
    const jf = (u: ad.Tensor) => ad.jvp(f, [u], [v])[1] as ad.Tensor;
    const [, js] = ad.jet(jf, [x], [[v, z, z]]);
    nestedDirectional(jf, x, v, 3).forEach((r, k) => assertNear(js[k]!, r, `jet∘jvp term ${k + 1}`));
  });

  test("jvp of a jet coefficient", () => {
    const f = (v: ad.Tensor) => ad.erf(ad.mul(v, v));
    const second = (v: ad.Tensor) => ad.jet(f, [v], [[1, 0]])[1][1]!;
    const x = f64(0.4);
    assertNear(
      ad.jvp(second, [x], [f64(1)])[1] as ad.Tensor,
      nestedDirectional(f, x, f64(1), 3)[2]!,
      "jvp∘jet",
    );
  });

  test("jit: jet inside jit and jit inside jet give the eager result", () => {
    const f = (v: ad.Tensor) => ad.div(ad.sin(v), ad.add(ad.cosh(v), 1));
    const x = f64([0.2, 1.5]);
    const v = f64([1, -1]);
    const z = ad.zerosLike(v);
    const [, want] = ad.jet(f, [x], [[v, z, z, z]]);
    const jj = ad.jit(
      (a: ad.Tensor, b: ad.Tensor) =>
        ad.jet(f, [a], [[b, ad.zerosLike(b), ad.zerosLike(b), ad.zerosLike(b)]])[1],
    );
    jj(x, v).forEach((t, k) => assertNear(t, want[k]!, `jit∘jet term ${k + 1}`, 1e-12, 1e-12));
    const [, inner] = ad.jet(ad.jit(f), [x], [[v, z, z, z]]);
    inner.forEach((t, k) => assertNear(t, want[k]!, `jet∘jit term ${k + 1}`, 1e-12, 1e-12));
  });

  test("vmap of jet equals a loop; jet of vmap equals jet", () => {
    const f = (v: ad.Tensor) => ad.tanh(ad.mul(ad.exp(v), 0.5));
    const xs = f64([0.1, -0.4, 0.9]);
    const batched = ad.vmap((a: ad.Tensor) => ad.stack(ad.jet(f, [a], [[1, 0, 0]])[1] as ad.Tensor[]))(
      xs,
    ) as ad.Tensor;
    assert.deepEqual(batched.shape, [3, 3]);
    [0.1, -0.4, 0.9].forEach((a, i) => {
      const [, s] = ad.jet(f, [f64(a)], [[1, 0, 0]]);
      assertNear(
        ad.reshape(ad.slice(batched, [i, 0], [1, 3]), [3]),
        ad.stack(s as ad.Tensor[]),
        `row ${i}`,
        1e-12,
        1e-12,
      );
    });
    const one = ad.onesLike(xs);
    const z = ad.zerosLike(xs);
    const [, viaVmap] = ad.jet(ad.vmap(f) as Fn, [xs], [[one, z, z]]);
    const [, direct] = ad.jet(f, [xs], [[one, z, z]]);
    viaVmap.forEach((t, k) => assertNear(t, direct[k]!, `jet∘vmap term ${k + 1}`, 1e-12, 1e-12));
  });

  test("eager autograd: backward() through a jet coefficient", () => {
    const x = ad.tensor(0.5, { dtype: "float64", requiresGrad: true });
    const [, s] = ad.jet((v: ad.Tensor) => ad.sin(v), [x], [[1, 0]]);
    s[1]!.backward(); // d/dx (−sin x) = −cos x
    assert.ok(Math.abs(x.grad!.item() + Math.cos(0.5)) < 1e-15);
  });

  test("nested jets keep their perturbations apart: x · d/dy[x + y] = x", () => {
    const f = (x: ad.Tensor) =>
      ad.mul(x, ad.jet((y: ad.Tensor) => ad.add(x, y), [f64(1)], [[f64(1), f64(0)]])[1][0]!);
    const [y, s] = ad.jet(f, [f64(2)], [[f64(1), f64(0)]]);
    assert.deepEqual([y.item(), s[0]!.item(), s[1]!.item()], [2, 1, 0]);
    // jet of jet: the outer series of the inner second coefficient of sin(x·y) in y
    const g = (x: ad.Tensor) =>
      ad.jet((y: ad.Tensor) => ad.sin(ad.mul(x, y)), [f64(0.5)], [[f64(1), f64(0)]])[1][1]!;
    const x = f64(0.8);
    const [, gs] = ad.jet(g, [x], [[f64(1), f64(0)]]);
    nestedDirectional(g, x, f64(1), 2).forEach((r, k) => assertNear(gs[k]!, r, `jet∘jet term ${k + 1}`));
  });
});

// ---- the public surface -------------------------------------------------------------------------------

describe("jet: arguments and results", () => {
  test("numbers in, numbers out; several arguments", () => {
    const [y, s] = ad.jet(
      (a: number, b: number) => ad.mul(ad.sin(a), b),
      [0.5, 2],
      [
        [1, 0],
        [0, 1],
      ],
    );
    assert.equal(typeof y, "number");
    assert.ok(s.every((t) => typeof t === "number"));
    // y(t) = sin(0.5 + t)(2 + t²/2): y1 = 2 cos .5, y2 = −2 sin .5 + sin .5
    assert.ok(Math.abs((s[0] as number) - 2 * Math.cos(0.5)) < 1e-15);
    assert.ok(Math.abs((s[1] as number) - -Math.sin(0.5)) < 1e-15);
  });

  test("pytree primals and outputs: each term has the structure of its primal / the output", () => {
    const p = { w: f64([1, 2]), b: 0.5 };
    const t1 = { w: f64([1, 0]), b: 1 };
    const t2 = { w: f64([0, 0]), b: 0 };
    const [y, s] = ad.jet(
      (q: { w: ad.Tensor; b: ad.Tensor }) => ({ sum: ad.sum(ad.mul(q.w, q.b)), w2: ad.mul(q.w, q.w) }),
      [p],
      [[t1, t2]],
    );
    assert.deepEqual(Object.keys(y), ["sum", "w2"]);
    assert.equal(s.length, 2);
    // sum(w b): along w + t e0, b + t: y1 = b + Σw = 0.5 + 3, y2 = 2·1
    assert.ok(Math.abs(s[0]!.sum.item() - 3.5) < 1e-12);
    assert.ok(Math.abs(s[1]!.sum.item() - 2) < 1e-12);
    assert.deepEqual(s[0]!.w2.toArray(), [2, 0]);
    assert.deepEqual(s[1]!.w2.toArray(), [2, 0]);
  });

  test("an output that is a number or an int tensor has zero series", () => {
    const [, s] = ad.jet((a: ad.Tensor) => [3, ad.argmax(a), ad.sin(a)], [f64([0.1, 0.5])], [[f64([1, 1])]]);
    assert.equal(s[0]![0], 0);
    assert.deepEqual((s[0]![1] as ad.Tensor).toArray(), 0);
  });

  test("errors", () => {
    const x = f64([1, 2]);
    assert.throws(() => ad.jet(ad.sin as Fn, [x], [[f64([1, 2, 3])]]), ad.ShapeError);
    assert.throws(
      () => ad.jet((a: ad.Tensor, b: ad.Tensor) => ad.add(a, b), [x, x], [[x, x], [x]]),
      (e: unknown) => e instanceof ad.TransformError && /same number of terms/.test((e as Error).message),
    );
    assert.throws(() => ad.jet(ad.sin as Fn, [x], []), ad.TransformError);
    assert.throws(() => ad.jet(ad.sin as Fn, [x], [x as never]), ad.TransformError);
    assert.throws(() => ad.jet(42 as never, [x], [[x]]), ad.TransformError);
    assert.throws(() => ad.jet(ad.neg as Fn, [ad.tensor([1, 2], { dtype: "int32" })], [[x]]), ad.DTypeError);
    assert.throws(
      () => ad.jet((q: { a: ad.Tensor }) => q.a, [{ a: x }], [[[x]]]),
      (e: unknown) => e instanceof ad.TransformError && /structure/.test((e as Error).message),
    );
    assert.throws(() => ad.jet(ad.sin as Fn, [x], [["a" as never]]), ad.TransformError);
  });
});

describe("every primitive has a Taylor rule", () => {
  test("every primitive of the core families has its own rule", () => {
    const mods = [
      unaryPrims,
      binaryPrims,
      comparePrims,
      convertPrims,
      reducePrims,
      movementPrims,
      linalgPrims,
      randomPrims,
      controlPrims,
      customPrims,
      fusedPrims,
    ];
    const prims = [...mods.flatMap(primsOf), checkpointP as PrimLike];
    assert.ok(prims.length >= 62);
    assert.deepEqual(
      prims.filter((p) => typeof p.jet !== "function").map((p) => p.name),
      [],
    );
    // Any other primitive (matrix decompositions, ...) gets the generic rule (K nested JVPs);
    // the op table above checks those against nested jvp too.
    assert.ok(allPrimitives().size >= 59);
  });

  test("report: the largest discrepancy against nested jvp", (t) => {
    t.diagnostic(`max |jet − nested jvp| / (1 + |nested jvp|) over float64 checks: ${maxDiscrepancy}`);
    assert.ok(maxDiscrepancy < 1e-8, `max |jet − nested jvp| / (1 + |nested|) = ${maxDiscrepancy}`);
  });
});
