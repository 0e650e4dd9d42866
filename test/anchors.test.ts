/**
 * @file The hard correctness cases of shared/research/anchors.md table (c), each with the
 * "Expected / best convention" numbers, checked in forward mode (jvp, one basis tangent per input
 * element) and in reverse mode (grad). Also the numerical stability of sigmoid, softplus,
 * logsumexp, logSoftmax and cross-entropy for |x| up to 1e4, and normalize at the zero vector.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose as closeTo, plain, type Tol } from "./helpers.js";

// ---------------------------------------------------------------------------------------------
// Helpers

type Num = number | ad.Tensor;

/** Close to float32 precision unless told otherwise. */
function assertClose(actual: unknown, expected: unknown, tol: Tol = {}): void {
  closeTo(actual, expected, { rtol: tol.rtol ?? 1e-6, atol: tol.atol ?? 1e-7 });
}

/** Every entry is a finite number. */
function assertFinite(v: unknown, what: string): void {
  const walk = (x: unknown): void => {
    if (typeof x === "number") assert.ok(Number.isFinite(x), `${what}: ${JSON.stringify(plain(v))}`);
    else if (Array.isArray(x)) x.forEach(walk);
  };
  walk(plain(v));
}

/** Reverse mode: grad of a scalar function. */
function rev(f: (x: ad.Tensor) => ad.Tensor, x: ad.Tensor): unknown {
  return ad.grad(f)(x).toArray();
}

/** Forward mode: the gradient of a scalar function assembled from one jvp per input element. */
function fwd(f: (x: ad.Tensor) => ad.Tensor, x: ad.Tensor): unknown {
  const flat: number[] = [];
  for (let i = 0; i < x.size; i++) {
    const e = new Float64Array(x.size);
    e[i] = 1;
    const tangent = ad.tensor(e, { dtype: x.dtype, shape: x.shape });
    const [, t] = ad.jvp(f, [x], [tangent]);
    flat.push((t as ad.Tensor).item());
  }
  return ad.tensor(new Float64Array(flat), { dtype: "float64", shape: x.shape }).toArray();
}

/** Check one scalar function's gradient in both modes. */
function bothModes(
  f: (x: ad.Tensor) => ad.Tensor,
  x: ad.Tensor,
  expected: unknown,
  tol?: { rtol?: number; atol?: number },
): void {
  assertClose(rev(f, x), expected, tol);
  assertClose(fwd(f, x), expected, tol);
}

/** Derivative of a number -> number function in both modes. */
function scalarBoth(
  f: (x: Num) => Num,
  x0: number,
  expected: number,
  tol?: { rtol?: number; atol?: number },
) {
  const r = ad.grad(f)(x0);
  const [, t] = ad.jvp(f, [x0], [1]);
  assert.equal(typeof r, "number");
  assert.equal(typeof t, "number");
  assertClose(r, expected, tol);
  assertClose(t, expected, tol);
}

const f32 = (data: ad.TensorData) => ad.tensor(data, { dtype: "float32" });
const f64 = (data: ad.TensorData) => ad.tensor(data, { dtype: "float64" });

// ---------------------------------------------------------------------------------------------

describe("anchors (c): hard correctness cases, forward and reverse mode", () => {
  test("#1 perturbation confusion: D(x ↦ x · D(y ↦ x + y)(1))(1) = 1", () => {
    const fRev = (x: Num) => ad.mul(x, ad.grad((y: Num) => ad.add(x, y))(1) as Num);
    const fFwd = (x: Num) => ad.mul(x, ad.jvp((y: Num) => ad.add(x, y), [1], [1])[1] as Num);
    assert.equal(ad.grad(fRev)(1), 1);
    assert.equal(ad.jvp(fFwd, [1], [1])[1], 1);
    assert.equal(ad.grad(fFwd)(1), 1);
    assert.equal(ad.jvp(fRev, [1], [1])[1], 1);
    const x32 = ad.scalar(1);
    assert.equal((ad.grad(fRev)(x32) as ad.Tensor).item(), 1);
    assert.equal((ad.jvp(fFwd, [x32], [ad.scalar(1)])[1] as ad.Tensor).item(), 1);
  });

  test("#2 relu'(0) = 0", () => {
    scalarBoth(ad.relu, 0, 0);
    bothModes((x) => ad.sum(ad.relu(x)), f32([-1, 0, 2]), [0, 0, 1]);
    bothModes((x) => ad.sum(ad.relu(x)), f64([0, -0]), [0, 0]);
  });

  test("#3 abs'(0) = 0 (agrees with sign(0) = 0)", () => {
    scalarBoth(ad.abs, 0, 0);
    bothModes((x) => ad.sum(ad.abs(x)), f32([-1, 0, 2]), [-1, 0, 1]);
    assertClose(ad.sign(0), 0);
  });

  test("#4 grad max([1, 3, 3]) = [0, 0.5, 0.5] (ties split evenly)", () => {
    bothModes((x) => ad.max(x), f32([1, 3, 3]), [0, 0.5, 0.5]);
    bothModes((x) => ad.min(x), f32([1, 1, 3]), [0.5, 0.5, 0]);
    bothModes((x) => ad.max(x), f64([5, 5, 5, 5]), [0.25, 0.25, 0.25, 0.25]);
    bothModes((x) => ad.max(x), f64([1, 3, 2]), [0, 1, 0]);
    bothModes(
      (x) => ad.sum(ad.max(x, { axis: 1 })),
      f32([
        [1, 3, 3],
        [2, 2, 0],
      ]),
      [
        [0, 0.5, 0.5],
        [0.5, 0.5, 0],
      ],
    );
  });

  test("#5 d/dx maximum(x, 2) at x = 2 is 0.5 (each side)", () => {
    scalarBoth((x) => ad.maximum(x, 2), 2, 0.5);
    scalarBoth((x) => ad.maximum(2, x), 2, 0.5);
    scalarBoth((x) => ad.minimum(x, 2), 2, 0.5);
    const [gx, gy] = ad.grad((x: Num, y: Num) => ad.maximum(x, y), { argnums: [0, 1] })(2, 2);
    assert.deepEqual([gx, gy], [0.5, 0.5]);
    assert.deepEqual(ad.jvp((x: Num, y: Num) => ad.maximum(x, y), [2, 2], [1, 1])[1], 1);
    bothModes((x) => ad.sum(ad.maximum(x, 2)), f32([1, 2, 3]), [0, 0.5, 1]);
    bothModes((x) => ad.sum(ad.minimum(x, 2)), f32([1, 2, 3]), [1, 0.5, 0]);
  });

  test("#6 sqrt'(0) = +Inf; d/dx sqrt(x²) at 0 is NaN (0·Inf); use abs instead", () => {
    scalarBoth(ad.sqrt, 0, Number.POSITIVE_INFINITY);
    assertClose(
      rev((x) => ad.sum(ad.sqrt(x)), f32([0, 4])),
      [Number.POSITIVE_INFINITY, 0.25],
    );
    // Forward mode along e0 only (a zero tangent at the singular point would give 0·Inf = NaN, as in JAX).
    assertClose(
      ad.jvp((x: ad.Tensor) => ad.sum(ad.sqrt(x)), [f32([0, 4])], [f32([1, 0])])[1],
      Number.POSITIVE_INFINITY,
    );
    bothModes((x) => ad.sum(ad.sqrt(x)), f32([1, 4]), [0.5, 0.25]);
    scalarBoth((x) => ad.sqrt(ad.square(x)), 0, Number.NaN);
    scalarBoth((x) => ad.abs(x), 0, 0);
  });

  const linalg = (ad as unknown as { linalg?: { norm?: (x: ad.Tensor) => ad.Tensor } }).linalg;
  test("#7 grad ‖x‖₂ at [0, 0] = [0, 0] (subgradient)", {
    skip: linalg?.norm === undefined ? "ad.linalg.norm is not exported yet" : false,
  }, () => {
    const norm = linalg!.norm!;
    bothModes((x) => norm(x), f32([0, 0]), [0, 0]);
    bothModes((x) => norm(x), f32([3, 4]), [0.6, 0.8]);
    assertFinite(
      rev((x) => norm(x), f32([1e-20, 0])),
      "norm at [1e-20, 0]",
    );
    assertFinite(
      fwd((x) => norm(x), f32([1e-20, 0])),
      "norm at [1e-20, 0]",
    );
  });

  test("#8 sum(where(x > 0, log x, 0)) at [0, 1]: [NaN, 1] naive in reverse, [0, 1] with the double where", () => {
    const naive = (x: ad.Tensor) => ad.sum(ad.where(ad.greater(x, 0), ad.log(x), 0));
    const safe = (x: ad.Tensor) => {
      const m = ad.greater(x, 0);
      return ad.sum(ad.where(m, ad.log(ad.where(m, x, 1)), 0));
    };
    const x = f32([0, 1]);
    // Reverse mode routes a zero cotangent into log's Inf local derivative: 0·Inf = NaN (as JAX/PyTorch).
    assertClose(rev(naive, x), [Number.NaN, 1]);
    // Forward mode selects the taken branch's tangent; nothing multiplies the untaken Inf.
    assertClose(fwd(naive, x), [0, 1]);
    // The double-where pattern is finite in both modes.
    bothModes(safe, x, [0, 1]);
    bothModes(safe, f64([0, 1, 2, -3]), [0, 1, 0.5, 0]);
  });

  test("#9 prod is division-free: grad prod([2, 0, 3]) = [0, 6, 0], prod([0, 0, 3]) = [0, 0, 0]", () => {
    bothModes((x) => ad.prod(x), f32([2, 0, 3]), [0, 6, 0]);
    bothModes((x) => ad.prod(x), f32([0, 0, 3]), [0, 0, 0]);
    bothModes((x) => ad.prod(x), f64([2, 4, 3]), [12, 6, 8]);
    bothModes(
      (x) => ad.sum(ad.prod(x, { axis: 1 })),
      f32([
        [2, 0, 3],
        [1, 2, 3],
      ]),
      [
        [0, 6, 0],
        [6, 3, 2],
      ],
    );
    // Second order too: ∂²prod/∂xi∂xj = product of the others.
    assertClose(ad.hessian((x: ad.Tensor) => ad.prod(x))(f64([2, 0, 3])), [
      [0, 3, 0],
      [3, 0, 2],
      [0, 2, 0],
    ]);
    assertClose(ad.hessian((x: ad.Tensor) => ad.prod(x))(f64([0, 0, 3])), [
      [0, 3, 0],
      [3, 0, 0],
      [0, 0, 0],
    ]);
  });

  test("#10 d/dx x**2 and x**3 at 0 are 0; d/dy 0**y at y = 2 is 0", () => {
    scalarBoth((x) => ad.pow(x, 2), 0, 0);
    scalarBoth((x) => ad.pow(x, 3), 0, 0);
    scalarBoth((y) => ad.pow(0, y), 2, 0);
    bothModes((x) => ad.sum(ad.pow(x, 2)), f32([0, 3]), [0, 6]);
    bothModes((x) => ad.sum(ad.pow(x, 3)), f32([0, -2]), [0, 12]);
    bothModes((y) => ad.sum(ad.pow(f32([0, 2]), y)), f32([2, 3]), [0, 8 * Math.log(2)]);
    // Negative bases with integer exponents are fine too, and second derivatives at 0.
    scalarBoth((x) => ad.pow(x, 2), -3, -6);
    assert.equal(ad.grad(ad.grad((x: Num) => ad.pow(x, 2)))(0), 2);
    assert.equal(ad.grad(ad.grad((x: Num) => ad.pow(x, 3)))(0), 0);
    assert.equal(
      ad.jvp(
        ad.grad((x: Num) => ad.pow(x, 3)),
        [0],
        [1],
      )[1],
      0,
    );
  });

  test("#11 logsumexp([1000, 1000]) = 1000.6931, grad [0.5, 0.5]", () => {
    const lse = (x: ad.Tensor) => ad.logsumexp(x);
    assertClose(lse(f32([1000, 1000])), 1000 + Math.LN2, { rtol: 1e-7 });
    assertClose(lse(f64([1000, 1000])), 1000 + Math.LN2, { rtol: 1e-15 });
    bothModes(lse, f32([1000, 1000]), [0.5, 0.5]);
    bothModes(lse, f64([1000, 1000]), [0.5, 0.5]);
  });

  test("#11 logsumexp([0, −∞]) = 0, grad [1, 0]", () => {
    const lse = (x: ad.Tensor) => ad.logsumexp(x);
    assertClose(lse(f32([0, Number.NEGATIVE_INFINITY])), 0);
    bothModes(lse, f32([0, Number.NEGATIVE_INFINITY]), [1, 0]);
    bothModes(lse, f64([Number.NEGATIVE_INFINITY, 0, Number.NEGATIVE_INFINITY]), [0, 1, 0]);
  });

  test("#11 logsumexp of all −∞ is −∞ with gradient 0, not NaN", () => {
    const lse = (x: ad.Tensor) => ad.logsumexp(x);
    const x = f32([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    assertClose(lse(x), Number.NEGATIVE_INFINITY);
    bothModes(lse, x, [0, 0]);
    bothModes(
      lse,
      f64([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]),
      [0, 0, 0],
    );
    // Per row with an axis: one row all −∞, the other ordinary.
    bothModes(
      (m) => ad.sum(ad.logsumexp(m, { axis: 1 })),
      f64([
        [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY],
        [0, 0],
      ]),
      [
        [0, 0],
        [0.5, 0.5],
      ],
    );
  });

  test("#12 softplus'(100) = 1 in float32 (the naive log(1 + exp x) gives NaN)", () => {
    const x = f32([100]);
    assertClose(ad.softplus(x), [100]);
    bothModes((v) => ad.sum(ad.softplus(v)), x, [1]);
    scalarBoth(ad.softplus, 100, 1);
    // The naive form overflows exp(100) in float32: documented, not ours to fix.
    const naive = (v: ad.Tensor) => ad.sum(ad.log(ad.add(1, ad.exp(v))));
    assertClose(rev(naive, x), [Number.NaN]);
  });

  test("#13 cross-entropy −logSoftmax([0, 1000])[0]: value 1000, grad [−1, 1]", () => {
    const ce = (x: ad.Tensor) => ad.neg(ad.logSoftmax(x).at(0));
    for (const make of [f32, f64]) {
      const x = make([0, 1000]);
      assertClose(ce(x), 1000);
      const [v, g] = ad.valueAndGrad(ce)(x);
      assertClose(v, 1000);
      assertClose(g, [-1, 1]);
      assertClose(fwd(ce, x), [-1, 1]);
    }
  });

  describe("#14 broadcast gradients against a [3, 4] operand", () => {
    const X = ad.ones([3, 4]);
    const cases: [string, ad.Tensor, unknown][] = [
      ["[4]", ad.zeros([4]), [3, 3, 3, 3]],
      ["[1, 4]", ad.zeros([1, 4]), [[3, 3, 3, 3]]],
      ["[]", ad.zeros([]), 12],
      ["[3, 1]", ad.zeros([3, 1]), [[4], [4], [4]]],
    ];
    for (const [name, b, expected] of cases)
      test(`b of shape ${name}`, () => {
        bothModes((v) => ad.sum(ad.add(X, v)), b, expected);
        bothModes((v) => ad.sum(ad.add(v, X)), b, expected);
        bothModes((v) => ad.sum(ad.mul(X, v)), b, expected);
        bothModes((v) => ad.sum(ad.sub(ad.mul(X, 2), v)), b, ad.neg(ad.tensor(expected as ad.TensorData)));
        const g = ad.grad((v: ad.Tensor) => ad.sum(ad.add(X, v)))(b);
        assert.deepEqual(g.shape, b.shape);
        assert.equal(g.dtype, b.dtype);
      });

    test("a number b gets a number gradient 12", () => {
      scalarBoth((v) => ad.sum(ad.add(X, v)), 0, 12);
    });

    test("weighted: grad_b sum(W ⊙ (X + b)) with b [4] sums W over the broadcast axis", () => {
      const W = f64([
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10, 11, 12],
      ]);
      bothModes(
        (v) => ad.sum(ad.mul(W, ad.add(ad.ones([3, 4], { dtype: "float64" }), v))),
        ad.zeros([4], { dtype: "float64" }),
        [15, 18, 21, 24],
      );
      bothModes((v) => ad.sum(ad.mul(W, v)), ad.zeros([3, 1], { dtype: "float64" }), [[10], [26], [42]]);
    });
  });

  test("#15 unused input: ∂/∂y of f(x, y) = 2x is 0", () => {
    const f = (x: Num, _y: Num) => ad.mul(2, x);
    assert.deepEqual(ad.grad(f, { argnums: [0, 1] })(1, 5), [2, 0]);
    assert.deepEqual(ad.jvp(f, [1, 5], [0, 1])[1], 0);
    const g = (x: ad.Tensor, _y: ad.Tensor) => ad.sum(ad.mul(2, x));
    const [, gy] = ad.grad(g, { argnums: [0, 1] })(f32([1]), f32([5, 6]));
    assertClose(gy, [0, 0]);
    assertClose(ad.jvp(g, [f32([1]), f32([5, 6])], [f32([0]), f32([1, 1])])[1], 0);
  });

  test("#16 grad(grad(tanh))(0.5) = −2·tanh·sech² = −0.72686", () => {
    const expected = -2 * Math.tanh(0.5) * (1 - Math.tanh(0.5) ** 2);
    assertClose(expected, -0.72686, { rtol: 1e-5 });
    assertClose(ad.grad(ad.grad(ad.tanh))(0.5), expected, { rtol: 1e-13 });
    const jv = (g: (x: Num) => Num) => (x: Num) => ad.jvp(g, [x], [1])[1] as Num;
    assertClose(jv(jv(ad.tanh))(0.5), expected, { rtol: 1e-13 });
    assertClose(jv(ad.grad(ad.tanh))(0.5), expected, { rtol: 1e-13 });
    assertClose(ad.grad(jv(ad.tanh))(0.5), expected, { rtol: 1e-13 });
    // float32 too, and exp'' / sigmoid'' (saved outputs must stay differentiable).
    assertClose(ad.grad(ad.grad(ad.tanh))(ad.scalar(0.5)), expected, { rtol: 1e-6 });
    assertClose(ad.grad(ad.grad(ad.exp))(0.5), Math.exp(0.5), { rtol: 1e-14 });
    assertClose(jv(jv(ad.exp))(0.5), Math.exp(0.5), { rtol: 1e-14 });
  });

  test("#17 grad of an integer input is a DTypeError; of a non-scalar output a TransformError", () => {
    assert.throws(
      () => ad.grad((x: ad.Tensor) => ad.sum(x))(ad.tensor([1, 2], { dtype: "int32" })),
      ad.DTypeError,
    );
    assert.throws(
      () =>
        ad.jvp(
          (x: ad.Tensor) => ad.sum(x),
          [ad.tensor([1, 2], { dtype: "int32" })],
          [ad.tensor([1, 1], { dtype: "int32" })],
        ),
      ad.DTypeError,
    );
    assert.throws(() => ad.grad((x: ad.Tensor) => ad.mul(x, 2))(f32([1, 2])), ad.TransformError);
    assert.throws(() => ad.grad((x: ad.Tensor) => ad.mul(x, 2))(f32([1, 2])), /shape \[2\]/);
  });
});

// ---------------------------------------------------------------------------------------------

describe("numerical stability for |x| up to 1e4 (finite values and gradients, both modes)", () => {
  const big = [-1e4, -1000, -100, -1, 0, 1, 100, 1000, 1e4];
  for (const make of [f32, f64]) {
    const x = make(big);
    const dt = x.dtype;
    const weights = ad.tensor(
      big.map((_, i) => i + 1),
      { dtype: dt },
    );
    /** A scalar loss that weights each output differently, so the gradient is not trivially 0. */
    const weighted = (g: (v: ad.Tensor) => ad.Tensor) => (v: ad.Tensor) => ad.sum(ad.mul(g(v), weights));

    test(`sigmoid (${dt})`, () => {
      const y = ad.sigmoid(x);
      assertFinite(y, "sigmoid");
      assertClose(y.at(0), 0);
      assertClose(y.at(big.length - 1), 1);
      assertClose(y.at(4), 0.5);
      const s = (v: number) => 1 / (1 + Math.exp(-v));
      const g = rev(weighted(ad.sigmoid), x);
      assertFinite(g, "sigmoid grad");
      assertClose(
        g,
        big.map((v, i) => (i + 1) * s(v) * (1 - s(v))),
        { rtol: 1e-5, atol: 1e-30 },
      );
      assertFinite(ad.jvp(ad.sigmoid, [x], [ad.onesLike(x)])[1], "sigmoid jvp");
    });

    test(`softplus (${dt})`, () => {
      const y = ad.softplus(x);
      assertFinite(y, "softplus");
      assertClose(y.at(0), 0);
      assertClose(y.at(big.length - 1), 1e4);
      assertClose(y.at(4), Math.LN2);
      const g = rev(weighted(ad.softplus), x);
      assertFinite(g, "softplus grad");
      const s = (v: number) => 1 / (1 + Math.exp(-v));
      assertClose(
        g,
        big.map((v, i) => (i + 1) * s(v)),
        { rtol: 1e-5, atol: 1e-30 },
      );
      assertFinite(ad.jvp(ad.softplus, [x], [ad.onesLike(x)])[1], "softplus jvp");
    });

    test(`logsumexp (${dt})`, () => {
      assertClose(ad.logsumexp(x), 1e4);
      assertClose(ad.logsumexp(make([1e4, 1e4])), 1e4 + Math.LN2, { rtol: 1e-7 });
      assertClose(ad.logsumexp(make([-1e4, -1e4])), -1e4 + Math.LN2, { rtol: 1e-7 });
      const g = rev((v) => ad.logsumexp(v), x);
      assertFinite(g, "logsumexp grad");
      assertClose(g, [0, 0, 0, 0, 0, 0, 0, 0, 1]);
      bothModes((v) => ad.logsumexp(v), make([1e4, -1e4]), [1, 0]);
      bothModes((v) => ad.logsumexp(v), make([-1e4, -1e4]), [0.5, 0.5]);
    });

    test(`logSoftmax, softmax and cross-entropy (${dt})`, () => {
      const ls = ad.logSoftmax(x);
      assertFinite(ls, "logSoftmax");
      assertClose(ls.at(big.length - 1), 0);
      assertClose(ls.at(0), -2e4);
      assertFinite(ad.softmax(x), "softmax");
      const g = rev(
        weighted((v) => ad.logSoftmax(v)),
        x,
      );
      assertFinite(g, "logSoftmax grad");
      // Σ w_i (x_i − lse): gradient w − (Σw)·softmax = [1, …, 8, 9 − 45].
      assertClose(g, [1, 2, 3, 4, 5, 6, 7, 8, 9 - 45]);
      assertFinite(ad.jvp((v: ad.Tensor) => ad.logSoftmax(v), [x], [ad.onesLike(x)])[1], "logSoftmax jvp");
      assertFinite(
        rev(
          weighted((v) => ad.softmax(v)),
          x,
        ),
        "softmax grad",
      );
      const ce = (v: ad.Tensor) => ad.neg(ad.logSoftmax(v).at(0));
      assertClose(ce(make([-1e4, 1e4])), 2e4);
      bothModes(ce, make([-1e4, 1e4]), [-1, 1]);
      bothModes(ce, make([1e4, -1e4]), [0, 0]);
    });
  }

  test("normalize at the zero vector: value 0 and a finite gradient (float32 and float64)", () => {
    for (const dtype of ["float32", "float64"] as const) {
      const z = ad.zeros([3], { dtype });
      assertClose(ad.normalize(z), [0, 0, 0]);
      const g = rev((v) => ad.sum(ad.normalize(v)), z);
      assertFinite(g, `normalize grad (${dtype})`);
      assertFinite(
        fwd((v) => ad.sum(ad.normalize(v)), z),
        `normalize jvp (${dtype})`,
      );
      assertFinite(ad.jacrev((v: ad.Tensor) => ad.normalize(v))(z), `normalize jacobian (${dtype})`);
      // Away from 0 it is x/‖x‖: d(x0/‖x‖)/dx at [3, 4] = [16, −12]/125.
      bothModes((v) => ad.normalize(v).at(0), ad.tensor([3, 4], { dtype }), [16 / 125, -12 / 125]);
    }
  });
});
