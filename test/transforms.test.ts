/**
 * @file The function transforms (grad, valueAndGrad, vjp, jvp, linearize, jacfwd, jacrev,
 * jacobian, hessian, hvp, stopGradient) on worked examples with known answers: the seeds' example,
 * the Rosenbrock Hessian, perturbation confusion, Hessian-vector products, non-square Jacobians,
 * an MLP against central finite differences, numbers in / numbers out, pytrees, aux outputs,
 * higher derivatives and JS control flow.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose } from "./helpers.js";

// ---------------------------------------------------------------------------------------------
// Helpers

type Num = number | ad.Tensor;

function structure(v: unknown): unknown {
  if (v instanceof ad.Tensor) return `T<${v.dtype}>[${v.shape.join(",")}]`;
  if (typeof v === "number") return "number";
  if (Array.isArray(v)) return v.map(structure);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, structure(x)]));
  return typeof v;
}

function asTensor(v: unknown): ad.Tensor {
  assert.ok(v instanceof ad.Tensor, `expected a Tensor, got ${JSON.stringify(structure(v))}`);
  return v;
}

function asNumber(v: unknown): number {
  assert.equal(typeof v, "number", `expected a number, got ${JSON.stringify(structure(v))}`);
  return v as number;
}

const f64 = (data: ad.TensorData) => ad.tensor(data, { dtype: "float64" });

/** Deterministic pseudo-random values in (-1, 1). */
function seq(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9);
}

function mat(rows: number, cols: number, seed: number): number[][] {
  const v = seq(rows * cols, seed);
  return Array.from({ length: rows }, (_, r) => v.slice(r * cols, (r + 1) * cols));
}

// ---------------------------------------------------------------------------------------------
// The seeds' worked example: f(x1, x2) = (x1 + x2) sin x1 at (1, 2)

describe("worked example f(x1, x2) = (x1 + x2)·sin(x1) at (1, 2)", () => {
  const f = (x1: Num, x2: Num) => ad.mul(ad.add(x1, x2), ad.sin(x1));
  const value = 3 * Math.sin(1);
  const d1 = Math.sin(1) + 3 * Math.cos(1);
  const d2 = Math.sin(1);

  const kinds = [
    { name: "numbers", make: (v: number): Num => v, dtype: null, tol: { rtol: 1e-14 } },
    {
      name: "float64",
      make: (v: number): Num => ad.scalar(v, { dtype: "float64" }),
      dtype: "float64",
      tol: { rtol: 1e-14 },
    },
    { name: "float32", make: (v: number): Num => ad.scalar(v), dtype: "float32", tol: { rtol: 1e-6 } },
  ] as const;

  for (const k of kinds) {
    /** A result leaf: a number for number inputs, else a tensor of the input dtype. */
    const leaf = (v: unknown): number => {
      if (k.dtype === null) return asNumber(v);
      const t = asTensor(v);
      assert.equal(t.dtype, k.dtype);
      assert.deepEqual(t.shape, []);
      return t.item();
    };
    const x1 = k.make(1);
    const x2 = k.make(2);

    describe(`with ${k.name}`, () => {
      test("grad with argnums [0, 1], 0 and 1", () => {
        const [g1, g2] = ad.grad(f, { argnums: [0, 1] })(x1, x2);
        assertClose([leaf(g1), leaf(g2)], [d1, d2], k.tol);
        assertClose(leaf(ad.grad(f)(x1, x2)), d1, k.tol);
        assertClose(leaf(ad.grad(f, { argnums: 1 })(x1, x2)), d2, k.tol);
        assertClose(leaf(ad.grad(f, { argnums: -1 })(x1, x2)), d2, k.tol);
      });

      test("valueAndGrad", () => {
        const [v, [g1, g2]] = ad.valueAndGrad(f, { argnums: [0, 1] })(x1, x2);
        assertClose([leaf(v), leaf(g1), leaf(g2)], [value, d1, d2], k.tol);
        const [v0, g0] = ad.valueAndGrad(f)(x1, x2);
        assertClose([leaf(v0), leaf(g0)], [value, d1], k.tol);
      });

      test("vjp (the pullback is linear and reusable)", () => {
        const [out, back] = ad.vjp(f, x1, x2);
        assertClose(leaf(out), value, k.tol);
        const [g1, g2] = back(1);
        assertClose([leaf(g1), leaf(g2)], [d1, d2], k.tol);
        const [h1, h2] = back(k.dtype === null ? 2 : ad.scalar(2, { dtype: k.dtype }));
        assertClose([leaf(h1), leaf(h2)], [2 * d1, 2 * d2], k.tol);
      });

      test("jvp with both seeds", () => {
        const [o1, t1] = ad.jvp(f, [x1, x2], [1, 0]);
        const [o2, t2] = ad.jvp(f, [x1, x2], [0, 1]);
        assertClose([leaf(o1), leaf(o2)], [value, value], k.tol);
        assertClose([leaf(t1), leaf(t2)], [d1, d2], k.tol);
        const [, t3] = ad.jvp(f, [x1, x2], [2, -3]);
        assertClose(leaf(t3), 2 * d1 - 3 * d2, k.tol);
      });

      test("linearize", () => {
        const [out, lin] = ad.linearize(f, x1, x2);
        assertClose(leaf(out), value, k.tol);
        assertClose([leaf(lin(k.make(1), k.make(0))), leaf(lin(k.make(0), k.make(1)))], [d1, d2], k.tol);
        assertClose(leaf(lin(k.make(0.5), k.make(4))), 0.5 * d1 + 4 * d2, k.tol);
      });

      test("jacfwd, jacrev and jacobian", () => {
        for (const jac of [ad.jacfwd, ad.jacrev, ad.jacobian]) {
          const [j1, j2] = jac(f, { argnums: [0, 1] })(x1, x2) as unknown as unknown[];
          assertClose([leaf(j1), leaf(j2)], [d1, d2], k.tol);
          assertClose(leaf(jac(f)(x1, x2)), d1, k.tol);
        }
      });
    });
  }

  test("with one vector input x = [1, 2] (float64 and float32)", () => {
    for (const dtype of ["float64", "float32"] as const) {
      const tol = { rtol: dtype === "float64" ? 1e-14 : 1e-6 };
      const g = (x: ad.Tensor) => f(x.at(0), x.at(1));
      const x = ad.tensor([1, 2], { dtype });
      const gr = ad.grad(g)(x);
      assert.equal(gr.dtype, dtype);
      assertClose(gr, [d1, d2], tol);
      assertClose(ad.jacfwd(g)(x), [d1, d2], tol);
      assertClose(ad.jacrev(g)(x), [d1, d2], tol);
      assertClose(ad.jvp(g, [x], [ad.tensor([1, 0], { dtype })])[1], d1, tol);
      assertClose(ad.vjp(g, x)[1](1)[0], [d1, d2], tol);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Rosenbrock

describe("Rosenbrock Hessian", () => {
  const rosen = (x: ad.Tensor) =>
    ad.add(ad.square(ad.sub(1, x.at(0))), ad.mul(100, ad.square(ad.sub(x.at(1), ad.square(x.at(0))))));
  const rosen2 = (a: Num, b: Num) =>
    ad.add(ad.square(ad.sub(1, a)), ad.mul(100, ad.square(ad.sub(b, ad.square(a)))));
  const expected = [
    [802, -400],
    [-400, 200],
  ];
  const compositions: [string, (g: (x: ad.Tensor) => ad.Tensor) => (x: ad.Tensor) => unknown][] = [
    ["hessian", (g) => ad.hessian(g)],
    ["jacfwd(jacrev)", (g) => ad.jacfwd(ad.jacrev(g))],
    ["jacrev(jacrev)", (g) => ad.jacrev(ad.jacrev(g))],
    ["jacfwd(jacfwd)", (g) => ad.jacfwd(ad.jacfwd(g))],
    ["jacrev(jacfwd)", (g) => ad.jacrev(ad.jacfwd(g))],
    ["jacobian(jacobian)", (g) => ad.jacobian(ad.jacobian(g))],
    ["jacfwd(grad)", (g) => ad.jacfwd(ad.grad(g))],
    ["jacrev(grad)", (g) => ad.jacrev(ad.grad(g))],
  ];
  for (const [name, h] of compositions) {
    test(`${name} at (1, 1) is [[802, -400], [-400, 200]] (float64 and float32)`, () => {
      const H = asTensor(h(rosen)(f64([1, 1])));
      assert.equal(H.dtype, "float64");
      assert.deepEqual(H.shape, [2, 2]);
      assertClose(H, expected);
      const H32 = asTensor(h(rosen)(ad.tensor([1, 1])));
      assert.equal(H32.dtype, "float32");
      assertClose(H32, expected, { rtol: 1e-6 });
    });
  }

  test("hessian at (-1.2, 1) is [[1200x² - 400y + 2, -400x], [-400x, 200]]", () => {
    assertClose(ad.hessian(rosen)(f64([-1.2, 1])), [
      [1330, 480],
      [480, 200],
    ]);
  });

  test("hessian with number arguments and argnums [0, 1] gives nested numbers", () => {
    const H = ad.hessian(rosen2, { argnums: [0, 1] })(1, 1) as unknown;
    assert.deepEqual(structure(H), [
      ["number", "number"],
      ["number", "number"],
    ]);
    assertClose(H, expected);
    assert.equal(ad.hessian(rosen2)(1, 1), 802);
  });
});

// ---------------------------------------------------------------------------------------------
// Perturbation confusion

describe("nested derivatives never confuse their perturbations", () => {
  // f(x) = x · d/dy[x + y] at y = 1; df/dx = 1 everywhere (a confused implementation gives 2).
  const innerGrad = (x: Num) => ad.grad((y: Num) => ad.add(x, y))(1) as Num;
  const innerJvp = (x: Num) => ad.jvp((y: Num) => ad.add(x, y), [1], [1])[1] as Num;
  const innerVjp = (x: Num) => ad.vjp((y: Num) => ad.add(x, y), 1)[1](1)[0] as Num;
  const inners: [string, (x: Num) => Num][] = [
    ["grad", innerGrad],
    ["jvp", innerJvp],
    ["vjp", innerVjp],
  ];
  const outers: [string, (f: (x: Num) => Num, x: Num) => unknown][] = [
    ["grad", (f, x) => ad.grad(f)(x)],
    ["jvp", (f, x) => ad.jvp(f, [x], [1])[1]],
    ["jacfwd", (f, x) => ad.jacfwd(f)(x)],
    ["jacrev", (f, x) => ad.jacrev(f)(x)],
    ["linearize", (f, x) => ad.linearize(f, x)[1](1)],
  ];
  for (const [on, outer] of outers)
    for (const [inn, inner] of inners)
      test(`${on}∘${inn}: d/dx[x · d/dy(x + y)] = 1`, () => {
        const f = (x: Num) => ad.mul(x, inner(x));
        for (const x0 of [1, 3, -2.5]) assert.equal(outer(f, x0), 1);
        const t = asTensor(outer(f, ad.scalar(3, { dtype: "float64" })));
        assert.equal(t.item(), 1);
      });

  test("the inner perturbation can depend on x: d/dx[x · d/dy(x·y)] = 2x", () => {
    const f = (x: Num) => ad.mul(x, ad.grad((y: Num) => ad.mul(x, y))(1) as Num);
    const g = (x: Num) => ad.mul(x, ad.jvp((y: Num) => ad.mul(x, y), [1], [1])[1] as Num);
    assert.equal(ad.grad(f)(3), 6);
    assert.equal(ad.jvp(f, [3], [1])[1], 6);
    assert.equal(ad.grad(g)(3), 6);
    assert.equal(ad.jvp(g, [3], [1])[1], 6);
  });

  test("the same with a vector x inside jacfwd and jacrev", () => {
    // F(x) = x · sum(d/dy sum(x + y)) at y = [1, 1]: dF/dx = 2·I
    const F = (x: ad.Tensor) =>
      ad.mul(x, ad.sum(ad.grad((y: ad.Tensor) => ad.sum(ad.add(x, y)))(f64([1, 1]))));
    const I2 = [
      [2, 0],
      [0, 2],
    ];
    assertClose(ad.jacfwd(F)(f64([0.5, -4])), I2);
    assertClose(ad.jacrev(F)(f64([0.5, -4])), I2);
  });

  test("closure example of anchors note 1: h(y) = D(x ↦ sin(x·y))(1) = y cos y, h'(2) = cos 2 − 2 sin 2", () => {
    const expected = Math.cos(2) - 2 * Math.sin(2); // −2.23474
    assertClose(expected, -2.2347416, { rtol: 1e-7 });
    // The transforms differentiate pytrees of tensors; the closure is written as a function of y.
    const hGrad = (y: Num) => ad.grad((x: Num) => ad.sin(ad.mul(x, y)))(1) as Num;
    const hJvp = (y: Num) => ad.jvp((x: Num) => ad.sin(ad.mul(x, y)), [1], [1])[1] as Num;
    assertClose(hGrad(0.7), 0.7 * Math.cos(0.7), { rtol: 1e-14 });
    for (const h of [hGrad, hJvp]) {
      assertClose(ad.grad(h)(2), expected, { rtol: 1e-13 });
      assertClose(ad.jvp(h, [2], [1])[1], expected, { rtol: 1e-13 });
      assertClose(ad.jacrev(h)(2), expected, { rtol: 1e-13 });
    }
    // The literal closure (a function-valued result) with the scalar Dual forward mode.
    const h = ad.derivative((x: ad.Dual) => (y: ad.DualLike) => ad.Dual.sin(x.mul(y)))(1) as (
      y: ad.DualLike,
    ) => ad.DualLike;
    assertClose(h(0.7), 0.7 * Math.cos(0.7), { rtol: 1e-14 });
    assertClose(ad.derivative((y: ad.Dual) => h(y) as ad.Dual)(2), expected, { rtol: 1e-13 });
  });

  test("a transform of a function that returns a closure is a TransformError, not a wrong answer", () => {
    const g = (x: Num) => (y: Num) => ad.sin(ad.mul(x, y));
    assert.throws(() => ad.grad(g as unknown as (x: Num) => Num)(1), ad.TransformError);
    assert.throws(() => ad.jvp(g as unknown as (x: Num) => Num, [1], [1]), ad.TransformError);
  });
});

// ---------------------------------------------------------------------------------------------
// Hessian-vector products on an MLP loss

describe("hvp on a small MLP loss (float64)", () => {
  const X = f64(mat(5, 3, 1));
  const Y = f64(mat(5, 2, 2));
  interface Params {
    W1: ad.Tensor;
    b1: ad.Tensor;
    W2: ad.Tensor;
    b2: ad.Tensor;
  }
  const shapes: [keyof Params, number[]][] = [
    ["W1", [3, 4]],
    ["b1", [4]],
    ["W2", [4, 2]],
    ["b2", [2]],
  ];
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const nParams = shapes.reduce((n, [, s]) => n + size(s), 0);
  const randomParams = (seed: number): Params => {
    const out: Partial<Params> = {};
    shapes.forEach(([k, s], i) => {
      out[k] = ad.tensor(new Float64Array(seq(size(s), seed + i)), { dtype: "float64", shape: s });
    });
    return out as Params;
  };
  const loss4 = (W1: ad.Tensor, b1: ad.Tensor, W2: ad.Tensor, b2: ad.Tensor) => {
    const h = ad.tanh(ad.add(ad.matmul(X, W1), b1));
    return ad.mean(ad.square(ad.sub(ad.add(ad.matmul(h, W2), b2), Y)));
  };
  const loss = (p: Params) => loss4(p.W1, p.b1, p.W2, p.b2);
  const unpack = (theta: ad.Tensor): Params => {
    let off = 0;
    const out: Partial<Params> = {};
    for (const [k, s] of shapes) {
      out[k] = ad.reshape(ad.slice(theta, [off], [size(s)]), s);
      off += size(s);
    }
    return out as Params;
  };
  const pack = (p: Params): number[] => shapes.flatMap(([k]) => Array.from(p[k].data()));
  const params = randomParams(3);
  const v = randomParams(7);
  const theta = f64(pack(params));
  const H = asTensor(ad.hessian((t: ad.Tensor) => loss(unpack(t)))(theta));
  const Hv = ad.matmul(H, f64(pack(v)));

  test("the Hessian is symmetric", () => {
    assert.deepEqual(H.shape, [nParams, nParams]);
    assertClose(H, ad.transpose(H), { rtol: 1e-12, atol: 1e-14 });
  });

  test("params as a pytree {W1, b1, W2, b2}: hvp = hessian · v, with the structure of the params", () => {
    const out = ad.hvp(loss, [params], [v]);
    assert.equal(out.length, 1);
    assert.deepEqual(structure(out[0]), structure(params));
    assertClose(pack(out[0]), Hv, { rtol: 1e-10, atol: 1e-13 });
  });

  test("params as separate arguments: one entry per primal", () => {
    const out = ad.hvp(loss4, [params.W1, params.b1, params.W2, params.b2], [v.W1, v.b1, v.W2, v.b2]);
    assert.equal(out.length, 4);
    const [W1, b1, W2, b2] = out;
    assertClose(pack({ W1, b1, W2, b2 }), Hv, { rtol: 1e-10, atol: 1e-13 });
  });

  test("agrees with jvp∘grad and with reverse-over-reverse grad(⟨grad, v⟩)", () => {
    const [, jg] = ad.jvp((p: Params) => ad.grad(loss)(p), [params], [v]);
    assertClose(pack(jg), Hv, { rtol: 1e-10, atol: 1e-13 });
    const gv = (p: Params) => {
      const g = ad.grad(loss)(p);
      return shapes.reduce(
        (acc: ad.Tensor, [k]) => ad.add(acc, ad.sum(ad.mul(g[k], v[k]))),
        ad.scalar(0, { dtype: "float64" }),
      );
    };
    assertClose(pack(ad.grad(gv)(params)), Hv, { rtol: 1e-10, atol: 1e-13 });
  });

  test("hvp with number primals returns numbers", () => {
    const out = ad.hvp((a: Num, b: Num) => ad.mul(ad.square(a), ad.sin(b)), [2, 3], [1, 0.5]);
    // H = [[2 sin b, 2a cos b], [2a cos b, -a² sin b]]
    assert.deepEqual(structure(out), ["number", "number"]);
    assertClose(out, [2 * Math.sin(3) + 0.5 * 4 * Math.cos(3), 4 * Math.cos(3) - 0.5 * 4 * Math.sin(3)], {
      rtol: 1e-13,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Non-square Jacobians

describe("jacfwd, jacrev and jacobian agree on non-square functions", () => {
  test("R^3 -> R^5 matches the analytic Jacobian, shape [5, 3]", () => {
    const f = (x: ad.Tensor) =>
      ad.stack([x.at(0), ad.mul(x.at(0), x.at(1)), ad.sin(x.at(2)), ad.exp(x.at(1)), ad.sum(ad.square(x))]);
    const [a, b, c] = [0.3, -0.5, 1.2];
    const expected = [
      [1, 0, 0],
      [b, a, 0],
      [0, 0, Math.cos(c)],
      [0, Math.exp(b), 0],
      [2 * a, 2 * b, 2 * c],
    ];
    for (const jac of [ad.jacfwd, ad.jacrev, ad.jacobian]) {
      const J = asTensor(jac(f)(f64([a, b, c])));
      assert.deepEqual(J.shape, [5, 3]);
      assertClose(J, expected, { rtol: 1e-14 });
    }
  });

  test("R^5 -> R^2 matches the analytic Jacobian, shape [2, 5]", () => {
    const f = (x: ad.Tensor) => ad.stack([ad.mul(x.at(0), x.at(4)), ad.sum(ad.sin(x))]);
    const xs = [0.1, 0.2, -0.3, 0.4, 2];
    const expected = [[2, 0, 0, 0, 0.1], xs.map(Math.cos)];
    for (const jac of [ad.jacfwd, ad.jacrev, ad.jacobian]) {
      const J = asTensor(jac(f)(f64(xs)));
      assert.deepEqual(J.shape, [2, 5]);
      assertClose(J, expected, { rtol: 1e-14 });
    }
  });

  test("matrix in, matrix out: shape [...outShape, ...inShape]", () => {
    const A = f64(mat(4, 3, 5));
    const f = (x: ad.Tensor) => ad.tanh(ad.matmul(A, x)); // [4,3]·[3,2] -> [4,2]
    const x = f64(mat(3, 2, 6));
    const Jf = asTensor(ad.jacfwd(f)(x));
    const Jr = asTensor(ad.jacrev(f)(x));
    assert.deepEqual(Jf.shape, [4, 2, 3, 2]);
    assert.deepEqual(Jr.shape, [4, 2, 3, 2]);
    assertClose(Jf, Jr, { rtol: 1e-13, atol: 1e-15 });
    assertClose(ad.jacobian(f)(x), Jr, { rtol: 1e-13, atol: 1e-15 });
    // Column (i=1, j=0) is the jvp along the basis tangent e_{10}.
    const e = f64([
      [0, 0],
      [1, 0],
      [0, 0],
    ]);
    const col = asTensor(ad.jvp(f, [x], [e])[1]);
    const Ja = Jf.toArray() as number[][][][];
    assertClose(
      col,
      Ja.map((r) => r.map((c) => c[1]![0]!)),
      { rtol: 1e-13 },
    );
  });

  test("pytree inputs and outputs with argnums arrays", () => {
    const W = f64([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const vv = f64([0.5, 0.25]);
    const s = f64([1, -1, 2]);
    const g = (p: { W: ad.Tensor; v: ad.Tensor }, t: ad.Tensor) => ({
      a: ad.tanh(ad.matmul(p.W, t)),
      b: [ad.sum(ad.mul(p.v, ad.exp(t.at(0)))), ad.mul(t.at(2), p.W.at(1, 1))],
    });
    const results = [ad.jacfwd, ad.jacrev, ad.jacobian].map((jac) =>
      jac(g, { argnums: [0, 1] })({ W, v: vv }, s),
    );
    const expectedStructure = {
      a: [{ W: "T<float64>[2,2,3]", v: "T<float64>[2,2]" }, "T<float64>[2,3]"],
      b: [
        [{ W: "T<float64>[2,3]", v: "T<float64>[2]" }, "T<float64>[3]"],
        [{ W: "T<float64>[2,3]", v: "T<float64>[2]" }, "T<float64>[3]"],
      ],
    };
    for (const r of results) assert.deepEqual(structure(r), expectedStructure);
    assertClose(results[0], results[1], { rtol: 1e-13, atol: 1e-15 });
    assertClose(results[2], results[1], { rtol: 1e-13, atol: 1e-15 });
    // Spot checks: ∂b1/∂t = [0, 0, W11], ∂b0/∂v = exp(t0)·1, ∂b1/∂W = t2 at (1,1).
    const r = results[1] as { b: [unknown, [{ W: ad.Tensor; v: ad.Tensor }, ad.Tensor]][] };
    const b0 = r.b[0] as unknown as [{ W: ad.Tensor; v: ad.Tensor }, ad.Tensor];
    const b1 = r.b[1] as unknown as [{ W: ad.Tensor; v: ad.Tensor }, ad.Tensor];
    assertClose(b1[1], [0, 0, 5]);
    assertClose(b0[0].v, [Math.E, Math.E], { rtol: 1e-15 });
    assertClose(b1[0].W, [
      [0, 0, 0],
      [0, 2, 0],
    ]);
    // A single argnum gives the bare pytree per output leaf.
    const r0 = ad.jacrev(g, { argnums: 0 })({ W, v: vv }, s);
    assert.deepEqual(structure(r0), {
      a: { W: "T<float64>[2,2,3]", v: "T<float64>[2,2]" },
      b: [
        { W: "T<float64>[2,3]", v: "T<float64>[2]" },
        { W: "T<float64>[2,3]", v: "T<float64>[2]" },
      ],
    });
  });

  test("jacobian of number -> number entries are numbers; number -> vector is a tensor", () => {
    for (const jac of [ad.jacfwd, ad.jacrev, ad.jacobian]) {
      assertClose(asNumber(jac((x: Num) => ad.sin(x))(1)), Math.cos(1), { rtol: 1e-15 });
      const J = jac((a: Num, b: Num) => [ad.mul(a, b), ad.sin(a)], { argnums: [0, 1] })(2, 3);
      assert.deepEqual(structure(J), [
        ["number", "number"],
        ["number", "number"],
      ]);
      assertClose(J, [
        [3, 2],
        [Math.cos(2), 0],
      ]);
      const v = asTensor(jac((x: Num) => ad.stack([ad.mul(x, 1), ad.mul(x, x)]))(3));
      assertClose(v, [1, 6]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A 2-layer MLP against central finite differences

describe("float64 gradients of a 2-layer MLP match central finite differences", () => {
  const X = f64(mat(6, 4, 11));
  const Y = f64(mat(6, 3, 12));
  type P = { W1: ad.Tensor; b1: ad.Tensor; W2: ad.Tensor; b2: ad.Tensor };
  const loss = (p: P) => {
    const h = ad.tanh(ad.add(ad.matmul(X, p.W1), p.b1));
    const y = ad.add(ad.matmul(h, p.W2), p.b2);
    return ad.mean(ad.square(ad.sub(y, Y)));
  };
  const params: P = {
    W1: f64(mat(4, 5, 13)),
    b1: f64(seq(5, 14)),
    W2: f64(mat(5, 3, 15)),
    b2: f64(seq(3, 16)),
  };

  test("every entry to 1e-7 relative", () => {
    const g = ad.grad(loss)(params);
    assert.deepEqual(structure(g), structure(params));
    const eps = 1e-5;
    let worst = 0;
    for (const key of ["W1", "b1", "W2", "b2"] as const) {
      const base = params[key].data() as Float64Array;
      const analytic = g[key].data();
      const shape = params[key].shape;
      for (let i = 0; i < base.length; i++) {
        const at = (delta: number) => {
          const d = Float64Array.from(base);
          d[i]! += delta;
          return loss({ ...params, [key]: ad.tensor(d, { dtype: "float64", shape }) }).item();
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        const a = analytic[i]!;
        const rel = Math.abs(a - numeric) / Math.max(Math.abs(numeric), 1e-3);
        worst = Math.max(worst, rel);
        assert.ok(rel < 1e-7, `${key}[${i}]: analytic ${a} vs numeric ${numeric} (rel ${rel})`);
      }
    }
    assert.ok(worst < 1e-7);
  });

  test("valueAndGrad gives the same value and gradient as loss and grad", () => {
    const [v, g] = ad.valueAndGrad(loss)(params);
    assertClose(v, loss(params), { rtol: 1e-15 });
    assertClose(g, ad.grad(loss)(params), { rtol: 1e-15 });
  });
});

// ---------------------------------------------------------------------------------------------
// Numbers, pytrees, aux, unused inputs, reusable pullbacks

describe("numbers in, numbers out", () => {
  test("grad, valueAndGrad, jvp, vjp and linearize of number arguments return numbers", () => {
    const f = (x: Num) => ad.mul(x, ad.exp(x));
    assertClose(asNumber(ad.grad(f)(0.5)), 1.5 * Math.exp(0.5), { rtol: 1e-15 });
    const [v, g] = ad.valueAndGrad(f)(0.5);
    assertClose([asNumber(v), asNumber(g)], [0.5 * Math.exp(0.5), 1.5 * Math.exp(0.5)], { rtol: 1e-15 });
    const [o, t] = ad.jvp(f, [0.5], [2]);
    assertClose([asNumber(o), asNumber(t)], [0.5 * Math.exp(0.5), 3 * Math.exp(0.5)], { rtol: 1e-15 });
    const [o2, back] = ad.vjp(f, 0.5);
    asNumber(o2);
    assertClose(asNumber(back(1)[0]), 1.5 * Math.exp(0.5), { rtol: 1e-15 });
    const [o3, lin] = ad.linearize(f, 0.5);
    asNumber(o3);
    assertClose(asNumber(lin(1)), 1.5 * Math.exp(0.5), { rtol: 1e-15 });
  });

  test("a function that returns a plain number (independent of x) has gradient 0", () => {
    assert.equal(ad.grad((_x: Num) => 3)(2), 0);
    assert.deepEqual(
      ad.jvp((_x: Num) => 3, [2], [1]),
      [3, 0],
    );
  });

  test("number leaves nested in a pytree get number gradients; tensor leaves get tensors", () => {
    const g = ad.grad((p: { a: number; t: ad.Tensor }) => ad.mul(p.a, ad.sum(p.t)))({
      a: 2,
      t: ad.tensor([1, 2]),
    });
    assert.deepEqual(structure(g), { a: "number", t: "T<float32>[2]" });
    assertClose(g, { a: 3, t: [2, 2] }, { rtol: 1e-7 });
  });

  test("mixing a number and a tensor argument: each result keeps its argument's kind", () => {
    const [gx, gy] = ad.grad((x: Num, y: ad.Tensor) => ad.sum(ad.mul(x, y)), { argnums: [0, 1] })(
      2,
      f64([1, 2]),
    );
    assert.equal(asNumber(gx), 3);
    assert.equal(asTensor(gy).dtype, "float64");
    assertClose(gy, [2, 2]);
  });
});

describe("pytrees", () => {
  test("gradients keep the exact structure {w, b, layers: [...]}", () => {
    const params = {
      w: ad.tensor([1, 2]),
      b: ad.tensor([3, 4]),
      layers: [{ k: 2, m: f64([[1, 2]]) }, [f64(5)], { deep: { deeper: [ad.tensor([0.5])] } }],
    };
    type Params = typeof params;
    const f = (p: Params) => {
      const l0 = p.layers[0] as { k: number; m: ad.Tensor };
      const l1 = p.layers[1] as ad.Tensor[];
      const l2 = p.layers[2] as { deep: { deeper: ad.Tensor[] } };
      return ad.add(
        ad.add(ad.sum(ad.mul(p.w, p.b)), ad.mul(l0.k, l1[0]!)),
        ad.add(ad.sum(ad.square(l0.m)), ad.sum(ad.mul(3, l2.deep.deeper[0]!))),
      );
    };
    const g = ad.grad(f)(params);
    assert.deepEqual(structure(g), {
      w: "T<float32>[2]",
      b: "T<float32>[2]",
      layers: [
        { k: "number", m: "T<float64>[1,2]" },
        ["T<float64>[]"],
        { deep: { deeper: ["T<float32>[1]"] } },
      ],
    });
    assertClose(
      g,
      { w: [3, 4], b: [1, 2], layers: [{ k: 5, m: [[2, 4]] }, [2], { deep: { deeper: [[3]] } }] },
      { rtol: 1e-7 },
    );
    // The structure also survives vjp, jvp tangents and valueAndGrad.
    assert.deepEqual(structure(ad.valueAndGrad(f)(params)[1]), structure(g));
    assert.deepEqual(structure(ad.vjp(f, params)[1](1)[0]), structure(g));
  });

  test("jvp takes pytree primals and tangents and returns the output's structure", () => {
    const f = (p: { a: ad.Tensor; b: [ad.Tensor, number] }) => ({
      s: ad.sum(ad.mul(p.a, p.b[0])),
      t: [ad.mul(p.a, p.b[1])],
    });
    const p = { a: f64([1, 2]), b: [f64([3, 4]), 5] as [ad.Tensor, number] };
    const t = { a: f64([1, 0]), b: [f64([0, 1]), 0] as [ad.Tensor, number] };
    const [out, tan] = ad.jvp(f, [p], [t]);
    assertClose(out, { s: 11, t: [[5, 10]] });
    assertClose(tan, { s: 3 + 2, t: [[5, 0]] });
  });
});

describe("hasAux", () => {
  const f = (x: Num) =>
    [ad.mul(x, x), { n: 3, t: ad.mul(x, 2), s: "label" }] as [
      ad.Tensor,
      { n: number; t: ad.Tensor; s: string },
    ];

  test("grad with hasAux returns [grad, aux]", () => {
    const [g, aux] = ad.grad(f, { hasAux: true })(3);
    assert.equal(g, 6);
    assert.equal(aux.n, 3);
    assert.equal(aux.s, "label");
    assertClose(aux.t, 6);
    // aux holds concrete values usable after the transform returned (not escaped tracers).
    assertClose(ad.add(aux.t, 1), 7);
  });

  test("valueAndGrad with hasAux returns [[value, aux], grad]", () => {
    const [[v, aux], g] = ad.valueAndGrad(f, { hasAux: true })(3);
    assert.equal(v, 9);
    assert.equal(g, 6);
    assert.equal(aux.n, 3);
    assertClose(aux.t, 6);
  });

  test("hasAux with tensors and argnums", () => {
    const h = (x: ad.Tensor, y: ad.Tensor) => [ad.sum(ad.mul(x, y)), ad.mul(x, 10)] as [ad.Tensor, ad.Tensor];
    const [g, aux] = ad.grad(h, { argnums: 1, hasAux: true })(f64([1, 2]), f64([3, 4]));
    assertClose(g, [1, 2]);
    assertClose(aux, [10, 20]);
    const [gs, aux2] = ad.grad(h, { argnums: [0, 1], hasAux: true })(f64([1, 2]), f64([3, 4]));
    assertClose(gs, [
      [3, 4],
      [1, 2],
    ]);
    assertClose(aux2, [10, 20]);
  });
});

describe("unused inputs and reusable pullbacks", () => {
  test("inputs the output does not depend on get zeros of their shape and dtype", () => {
    const f = (x: Num, _y: ad.Tensor, _z: Num) => ad.mul(2, x);
    const [gx, gy, gz] = ad.grad(f, { argnums: [0, 1, 2] })(1, ad.tensor([3, 4]), 7);
    assert.equal(gx, 2);
    assert.equal(asTensor(gy).dtype, "float32");
    assertClose(gy, [0, 0]);
    assert.equal(gz, 0);
    const [, ty] = ad.jvp((x: Num, _y: Num) => ad.mul(2, x), [1, 5], [0, 1]);
    assert.equal(ty, 0);
    const J = ad.jacrev((x: Num, _y: ad.Tensor) => ad.stack([ad.mul(x, 1), ad.mul(x, 2)]), { argnums: 1 })(
      1,
      f64([[1, 2, 3]]),
    );
    assert.deepEqual(asTensor(J).shape, [2, 1, 3]);
    assertClose(J, [[[0, 0, 0]], [[0, 0, 0]]]);
    assertClose(ad.jacfwd((x: Num, _y: ad.Tensor) => ad.mul(x, 1), { argnums: 1 })(1, f64([1, 2])), [0, 0]);
    // An unused pytree leaf.
    assertClose(
      ad.grad((p: { a: ad.Tensor; b: ad.Tensor }) => ad.sum(p.a))({ a: f64([1]), b: f64([2, 3]) }),
      {
        a: [1],
        b: [0, 0],
      },
    );
  });

  test("vjpFn can be called many times and is linear", () => {
    const f = (x: ad.Tensor) => ad.mul(ad.sin(x), x.at(0));
    const x = f64([0.3, 1.1, -0.7]);
    const [, back] = ad.vjp(f, x);
    const c1 = f64([1, 0, 2]);
    const c2 = f64([-1, 3, 0.5]);
    const r1 = asTensor(back(c1)[0]);
    const r2 = asTensor(back(c2)[0]);
    assertClose(back(c1)[0], r1, { rtol: 0 });
    assertClose(back(ad.add(ad.mul(c1, 2), c2))[0], ad.add(ad.mul(r1, 2), r2), { rtol: 1e-14 });
    for (let i = 0; i < 20; i++) assertClose(back(c1)[0], r1, { rtol: 0 });
    // Against the explicit Jacobian: vjp(c) = c · J.
    const J = asTensor(ad.jacfwd(f)(x));
    assertClose(r1, ad.matmul(c1, J), { rtol: 1e-14 });
  });
});

// ---------------------------------------------------------------------------------------------
// Higher derivatives

describe("higher derivatives", () => {
  test("third derivatives: sin''' = -cos, exp''' = exp, log''' = 2/x³, x⁴''' = 24x", () => {
    const d3 = (f: (x: Num) => Num) => ad.grad(ad.grad(ad.grad(f)));
    assertClose(d3(ad.sin)(0.5), -Math.cos(0.5), { rtol: 1e-14 });
    assertClose(d3(ad.exp)(0.5), Math.exp(0.5), { rtol: 1e-14 });
    assertClose(d3(ad.log)(0.5), 2 / 0.125, { rtol: 1e-14 });
    assertClose(d3((x) => ad.pow(x, 4))(1.5), 36, { rtol: 1e-14 });
    // Mixed modes.
    assertClose(ad.jvp(ad.grad(ad.grad(ad.sin)), [0.5], [1])[1], -Math.cos(0.5), { rtol: 1e-14 });
    assertClose(ad.grad((x: Num) => ad.jvp(ad.grad(ad.sin), [x], [1])[1] as Num)(0.5), -Math.cos(0.5), {
      rtol: 1e-14,
    });
  });

  test("second derivatives of tanh, exp, sigmoid (saved outputs stay differentiable)", () => {
    assertClose(ad.grad(ad.grad(ad.tanh))(0.5), -0.7268619813835873, { rtol: 1e-13 });
    assertClose(ad.grad(ad.grad(ad.tanh))(0.5), -0.72686, { rtol: 1e-5 });
    assertClose(ad.grad(ad.grad(ad.exp))(0.5), Math.exp(0.5), { rtol: 1e-15 });
    const s = 1 / (1 + Math.exp(-0.5));
    assertClose(ad.grad(ad.grad(ad.sigmoid))(0.5), s * (1 - s) * (1 - 2 * s), { rtol: 1e-13 });
    assertClose(ad.grad(ad.grad(ad.sqrt))(4), -0.25 * 4 ** -1.5, { rtol: 1e-14 });
    // Elementwise on a float32 tensor.
    const x = ad.tensor([0.5, -1]);
    const tanh2 = (v: number) => -2 * Math.tanh(v) * (1 - Math.tanh(v) ** 2);
    const g2 = ad.grad((y: ad.Tensor) => ad.sum(ad.grad((z: ad.Tensor) => ad.sum(ad.tanh(z)))(y)))(x);
    assertClose(g2, [tanh2(0.5), tanh2(-1)], { rtol: 1e-5 });
  });

  test("fourth derivative by grad and by jvp agree", () => {
    const f = (x: Num) => ad.mul(ad.sin(x), ad.exp(x));
    const d4 = ad.grad(ad.grad(ad.grad(ad.grad(f))));
    const jv = (g: (x: Num) => Num) => (x: Num) => ad.jvp(g, [x], [1])[1] as Num;
    const d4j = jv(jv(jv(jv(f))));
    // (sin x e^x)'''' = -4 sin x e^x
    assertClose(d4(0.3), -4 * Math.sin(0.3) * Math.exp(0.3), { rtol: 1e-13 });
    assertClose(d4j(0.3), -4 * Math.sin(0.3) * Math.exp(0.3), { rtol: 1e-13 });
  });
});

// ---------------------------------------------------------------------------------------------
// stopGradient

describe("stopGradient gives a zero derivative in every mode", () => {
  const sgSq = (x: Num) => ad.stopGradient(ad.square(x));
  test("grad, valueAndGrad, vjp", () => {
    assert.equal(ad.grad(sgSq)(3), 0);
    assert.deepEqual(ad.valueAndGrad(sgSq)(3), [9, 0]);
    assert.deepEqual(ad.vjp(sgSq, 3)[1](1), [0]);
    assert.equal(ad.grad((x: Num) => ad.mul(x, ad.stopGradient(x)))(3), 3);
    assertClose(ad.grad((x: ad.Tensor) => ad.sum(ad.stopGradient(x)))(ad.tensor([1, 2])), [0, 0]);
  });

  test("jvp and linearize", () => {
    assert.deepEqual(ad.jvp(sgSq, [3], [1]), [9, 0]);
    assert.deepEqual(
      ad.jvp((x: Num) => ad.mul(x, ad.stopGradient(x)), [3], [1]),
      [9, 3],
    );
    assert.equal(ad.linearize(sgSq, 3)[1](1), 0);
    assertClose(
      ad.jvp((x: ad.Tensor) => ad.stopGradient(ad.exp(x)), [f64([0, 1])], [f64([1, 1])])[1],
      [0, 0],
    );
  });

  test("jacobians and nested derivatives", () => {
    assertClose(ad.jacfwd((x: ad.Tensor) => ad.mul(x, ad.stopGradient(x)))(f64([2, 3])), [
      [2, 0],
      [0, 3],
    ]);
    assertClose(ad.jacrev((x: ad.Tensor) => ad.mul(x, ad.stopGradient(x)))(f64([2, 3])), [
      [2, 0],
      [0, 3],
    ]);
    // d/dx [x · sg(x)] = sg(x), whose derivative is 0; d²/dx² [x² · sg(x)] = 2 sg(x).
    assert.equal(ad.grad(ad.grad((x: Num) => ad.mul(x, ad.stopGradient(x))))(3), 0);
    assert.equal(ad.grad(ad.grad((x: Num) => ad.mul(ad.square(x), ad.stopGradient(x))))(3), 6);
    assert.equal(
      ad.jvp(
        ad.grad((x: Num) => ad.mul(x, ad.stopGradient(x))),
        [3],
        [1],
      )[1],
      0,
    );
    assert.equal(
      ad.grad((x: Num) => ad.jvp((y: Num) => ad.stopGradient(ad.mul(x, y)), [1], [1])[1] as Num)(3),
      0,
    );
    assertClose(ad.hessian((x: ad.Tensor) => ad.sum(ad.mul(ad.square(x), ad.stopGradient(x))))(f64([1, 2])), [
      [2, 0],
      [0, 4],
    ]);
    // Stopping an outer variable inside an inner derivative: d/dx [x · d/dy (sg(x)·y)] = d/dx [x · sg(x)] = x.
    assert.equal(
      ad.grad((x: Num) => ad.mul(x, ad.grad((y: Num) => ad.mul(ad.stopGradient(x), y))(1) as Num))(3),
      3,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// JS control flow

describe("JS control flow inside the transforms", () => {
  const piecewise = (x: Num) => {
    const v = typeof x === "number" ? x : x.item();
    return v > 0 ? ad.mul(x, x) : ad.neg(ad.sin(x));
  };
  test("an `if` on x.item()", () => {
    assert.equal(ad.grad(piecewise)(3), 6);
    assertClose(ad.grad(piecewise)(-1), -Math.cos(-1), { rtol: 1e-15 });
    assertClose(ad.grad(piecewise)(ad.scalar(3, { dtype: "float64" })), 6);
    assert.equal(ad.jvp(piecewise, [3], [1])[1], 6);
    assert.equal(ad.grad(ad.grad(piecewise))(3), 2);
    assertClose(ad.grad(ad.grad(piecewise))(-1), Math.sin(-1), { rtol: 1e-15 });
    // item() on a tracer inside the transform (not the raw argument).
    const g = (x: ad.Tensor) => (ad.sum(ad.mul(x, x)).item() > 1 ? ad.sum(ad.exp(x)) : ad.sum(x));
    assertClose(ad.grad(g)(f64([1, 2])), [Math.E, Math.exp(2)], { rtol: 1e-15 });
    assertClose(ad.grad(g)(f64([0.1, 0.2])), [1, 1]);
  });

  test("a fixed loop (Horner's rule) and a value-dependent while loop", () => {
    // p(x) = ((x + 1)·x + 2)·x + 3 => p'(x) = 3x² + 2x + 2
    const horner = (x: Num) => {
      let acc: Num = 1;
      for (const c of [1, 2, 3]) acc = ad.add(ad.mul(acc, x), c);
      return acc;
    };
    assert.equal(ad.grad(horner)(2), 18);
    assert.equal(ad.jvp(horner, [2], [1])[1], 18);
    assert.equal(ad.grad(ad.grad(horner))(2), 14);
    // Doubling until above 10: y = 2^k x, dy/dx = 2^k (k depends on the value of x).
    const grow = (x: Num) => {
      let y = ad.mul(x, 1);
      while (y.item() < 10) y = ad.mul(y, 2);
      return y;
    };
    assert.equal(ad.grad(grow)(3), 4); // 3 -> 6 -> 12
    assert.equal(ad.grad(grow)(0.5), 32); // 0.5 -> ... -> 16
    assert.equal(ad.jvp(grow, [3], [1])[1], 4);
  });

  test("Newton's iteration for sqrt: the unrolled loop differentiates to 1/(2√a)", () => {
    const newtonSqrt = (a: Num) => {
      let x: Num = ad.mul(a, 1);
      for (let i = 0; i < 30 && Math.abs(ad.sub(ad.mul(x, x), a).item()) > 1e-15; i++)
        x = ad.mul(0.5, ad.add(x, ad.div(a, x)));
      return x;
    };
    assertClose(ad.grad(newtonSqrt)(2), 1 / (2 * Math.SQRT2), { rtol: 1e-10 });
    assertClose(ad.jacfwd(newtonSqrt)(2), 1 / (2 * Math.SQRT2), { rtol: 1e-10 });
  });
});
