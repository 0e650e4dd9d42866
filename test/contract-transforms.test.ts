/**
 * @file Black-box contract tests for API.md §3 (functional transforms) and §10 "Transforms":
 * grad/valueAndGrad with argnums and hasAux, vjp, jvp, linearize, jacobians and mode choice,
 * hessian/hvp shapes, vmap axes, jit retracing, stopGradient, checkpointing, custom rules, pytrees
 * in and out, numbers in and out, and composition without perturbation confusion.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { checks, f64, n, num, type T } from "./contract-helpers.js";

const { near, allNear } = checks(1e-9);

const shape = (v: unknown) => (v as T).shape;

// ------------------------------------------------------------------ grad

describe("§3 grad", () => {
  const f = (x: T, y: T) => ad.sum(ad.mul(ad.sin(x), y));
  const x = f64([0.1, 0.2, 0.3]);
  const y = f64([1, 2, 3]);

  test("default argnums 0; an array gives an array of gradients", () => {
    allNear(ad.grad(f)(x, y), [Math.cos(0.1), 2 * Math.cos(0.2), 3 * Math.cos(0.3)]);
    const g1 = ad.grad(f, { argnums: 1 })(x, y);
    allNear(g1, [Math.sin(0.1), Math.sin(0.2), Math.sin(0.3)]);
    const gs = ad.grad(f, { argnums: [1, 0] })(x, y);
    assert.ok(Array.isArray(gs));
    assert.equal(gs.length, 2);
    allNear(gs[0], g1);
    allNear(gs[1], ad.grad(f)(x, y));
    const single = ad.grad(f, { argnums: [0] })(x, y);
    assert.ok(Array.isArray(single) && single.length === 1);
  });

  test("a bad argnums throws TransformError", () => {
    assert.throws(() => ad.grad(f, { argnums: 2 })(x, y), ad.TransformError);
    assert.throws(() => ad.grad(f, { argnums: [0, 5] })(x, y), ad.TransformError);
    assert.throws(() => ad.grad(f, { argnums: 1.5 })(x, y), ad.TransformError);
  });

  test("scalar outputs: 0-d tensor, size-1 tensor, number; otherwise TransformError naming the shape", () => {
    allNear(ad.grad((v: T) => ad.sum(v).reshape([1, 1]))(x), [1, 1, 1]);
    allNear(ad.grad((v: T) => ad.sum(v).reshape([1]))(x), [1, 1, 1]);
    assert.equal(ad.grad((_v: T) => 5 as unknown as T)(n(2)), 0);
  });

  test("grad of a non-scalar output throws TransformError naming the shape", () => {
    assert.throws(
      () => ad.grad((v: T) => ad.mul(v, 2))(x),
      (e: unknown) => e instanceof ad.TransformError && /3/.test((e as Error).message),
    );
  });

  test("grad wrt int32 or bool input throws DTypeError", () => {
    assert.throws(() => ad.grad((v: T) => ad.sum(v))(ad.tensor([1, 2], { dtype: "int32" })), ad.DTypeError);
    assert.throws(() => ad.grad((v: T) => ad.sum(v))(ad.tensor([true], { dtype: "bool" })), ad.DTypeError);
    // a non-differentiated int32 argument is fine
    const g = ad.grad((v: T, i: T) => ad.sum(ad.take(v, i)))(x, ad.tensor([0, 0], { dtype: "int32" }));
    allNear(g, [2, 0, 0]);
  });

  test("gradient dtype follows the argument (float32 → float32, float64 → float64)", () => {
    assert.equal((ad.grad((v: T) => ad.sum(v))(ad.tensor([1])) as T).dtype, "float32");
    assert.equal((ad.grad((v: T) => ad.sum(v))(x) as T).dtype, "float64");
  });

  test("hasAux: grad returns [gradient, aux]", () => {
    const r = ad.grad((v: T) => [ad.sum(ad.square(v)), { note: "hi", m: ad.mean(v) }] as [T, unknown], {
      hasAux: true,
    })(x);
    assert.ok(Array.isArray(r));
    const [g, aux] = r as [T, { note: string; m: T }];
    allNear(g, [0.2, 0.4, 0.6]);
    assert.equal(aux.note, "hi");
    near(num(aux.m), 0.2);
  });

  test("unused input gets zeros of its shape (anchors c#15)", () => {
    const [, gy] = ad.grad((a: T, _b: T) => ad.sum(ad.mul(a, 2)), { argnums: [0, 1] })(x, f64([[1, 2]])) as [
      T,
      T,
    ];
    assert.deepEqual(gy.shape, [1, 2]);
    assert.deepEqual(gy.toArray(), [[0, 0]]);
    assert.equal(ad.grad((_a: T, b: T) => b, { argnums: 0 })(n(1), n(2)), 0);
  });

  test("a constant function has gradient zero (output independent of input)", () => {
    allNear(ad.grad((_v: T) => ad.scalar(3))(x), [0, 0, 0]);
  });
});

describe("§3/§10 pytrees and numbers in and out of transforms", () => {
  const params = {
    w: f64([
      [1, 2],
      [3, 4],
    ]),
    b: f64([0.5, -0.5]),
    layers: [{ s: 2 }, { s: f64([3]) }],
  };
  const loss = (p: typeof params, x: T) => {
    const h = ad.add(ad.matmul(p.w, x), p.b);
    return ad.sum(ad.mul(ad.mul(ad.square(h), p.layers[0]!.s), p.layers[1]!.s as T));
  };
  const xin = f64([1, 1]);

  test("the gradient has exactly the structure of the argument; number leaves give numbers", () => {
    const g = ad.grad(loss)(params, xin) as typeof params;
    assert.deepEqual(Object.keys(g).sort(), ["b", "layers", "w"]);
    assert.ok(Array.isArray(g.layers));
    assert.equal(g.layers.length, 2);
    assert.equal(typeof g.layers[0]!.s, "number");
    assert.deepEqual(shape(g.w), [2, 2]);
    assert.deepEqual(shape(g.b), [2]);
    assert.deepEqual(shape(g.layers[1]!.s), [1]);
    // h = [3.5, 6.5]; loss = 6 * sum h^2 ; dL/dh = 12 h
    allNear(g.b, [42, 78]);
    allNear(g.w, [
      [42, 42],
      [78, 78],
    ]);
    near(g.layers[0]!.s as number, 3 * (3.5 ** 2 + 6.5 ** 2));
    allNear(g.layers[1]!.s, [2 * (3.5 ** 2 + 6.5 ** 2)]);
  });

  test("number leaves nested in non-differentiated arguments are float64 scalars", () => {
    const g = ad.grad((a: T, cfg: { k: number }) => {
      assert.ok(typeof cfg.k === "number" || (cfg.k as unknown as T).dtype === "float64");
      return ad.mul(a, cfg.k);
    })(n(2), { k: 0.1 });
    assert.equal(typeof g, "number");
    assert.equal(g, 0.1);
  });

  test("valueAndGrad: [value, gradient]; hasAux: [[value, aux], gradient]", () => {
    const [v, g] = ad.valueAndGrad(loss)(params, xin) as [T, typeof params];
    near(num(v), 6 * (3.5 ** 2 + 6.5 ** 2));
    allNear(g.b, [42, 78]);
    const [[v2, aux], g2] = ad.valueAndGrad((a: T) => [ad.sum(ad.square(a)), ad.mul(a, 10)] as [T, T], {
      hasAux: true,
    })(f64([1, 2])) as [[T, T], T];
    near(num(v2), 5);
    allNear(aux, [10, 20]);
    allNear(g2, [2, 4]);
    const [vn, gn] = ad.valueAndGrad((a: T) => ad.mul(a, a))(n(3)) as unknown as [unknown, number];
    near(num(vn), 9);
    assert.equal(gn, 6);
    const [, gArr] = ad.valueAndGrad((a: T, b: T) => ad.mul(a, b), { argnums: [0, 1] })(
      n(2),
      n(5),
    ) as unknown as [unknown, number[]];
    assert.deepEqual(gArr, [5, 2]);
  });

  test("jvp with pytree primals and tangents; vjp with a pytree primal", () => {
    const [out, tout] = ad.jvp(
      (p: { a: T; b: number }) => ad.mul(p.a, p.b),
      [{ a: f64([1, 2]), b: 3 }],
      [{ a: f64([1, 0]), b: 1 }],
    );
    allNear(out, [3, 6]);
    allNear(tout, [1 * 3 + 1, 2]);
    const [o, pull] = ad.vjp((p: { a: T; b: number }) => ad.mul(p.a, p.b), { a: f64([1, 2]), b: 3 });
    allNear(o, [3, 6]);
    const [ct] = pull(f64([1, 1])) as [{ a: T; b: number }];
    allNear(ct.a, [3, 3]);
    assert.equal(typeof ct.b, "number");
    near(ct.b, 3);
  });

  test("pytree outputs of jit and vmap", () => {
    const f = (p: { a: T; b: T }) => ({ s: ad.add(p.a, p.b), list: [ad.mul(p.a, 2)] });
    const r = ad.jit(f)({ a: f64([1, 2]), b: f64([3, 4]) });
    allNear(r.s, [4, 6]);
    allNear(r.list[0], [2, 4]);
    const v = ad.vmap(f)({ a: f64([[1], [2]]), b: f64([[3], [4]]) });
    allNear(v.s, [[4], [6]]);
  });
});

// ------------------------------------------------------------------ vjp / jvp / linearize

describe("§3 vjp, jvp, linearize", () => {
  const f = (x: T, y: T) => ad.mul(ad.sin(x), y);
  const x = f64([0.5, 1.0]);
  const y = f64([2, 3]);

  test("vjp returns [out, vjpFn]; vjpFn gives one cotangent per primal and may be called many times", () => {
    const [out, pull] = ad.vjp(f, x, y);
    allNear(out, [2 * Math.sin(0.5), 3 * Math.sin(1)]);
    const r1 = pull(f64([1, 0]));
    assert.ok(Array.isArray(r1));
    assert.equal(r1.length, 2);
    allNear(r1[0], [2 * Math.cos(0.5), 0]);
    allNear(r1[1], [Math.sin(0.5), 0]);
    const r2 = pull(f64([0, 1]));
    allNear(r2[0], [0, 3 * Math.cos(1)]);
    const r3 = pull(f64([1, 0]));
    allNear(r3[0], r1[0]);
  });

  test("vjp with number primals gives number cotangents", () => {
    const [, pull] = ad.vjp((a: T, b: T) => ad.mul(a, b), n(2), n(5));
    const [ca, cb] = pull(n(1)) as unknown as [number, number];
    assert.equal(typeof ca, "number");
    assert.deepEqual([ca, cb], [5, 2]);
  });

  test("jvp(f, primals[], tangents[]) → [out, tangentOut]", () => {
    const [out, t] = ad.jvp(f, [x, y], [f64([1, 1]), f64([0, 1])]);
    allNear(out, [2 * Math.sin(0.5), 3 * Math.sin(1)]);
    allNear(t, [2 * Math.cos(0.5), 3 * Math.cos(1) + Math.sin(1)]);
    const [o2, t2] = ad.jvp((a: T) => ad.exp(a), [1], [2]);
    near(num(o2), Math.E);
    near(num(t2), 2 * Math.E);
  });

  test("a tangent whose shape does not match its primal throws ShapeError", () => {
    assert.throws(() => ad.jvp(f, [x, y], [f64([1, 1, 1]), f64([0, 1])]), ad.ShapeError);
    assert.throws(() => ad.jvp(f, [x, y], [f64([[1, 1]]), f64([0, 1])]), ad.ShapeError);
    assert.throws(() => ad.linearize(f, x, y)[1](f64([1]), y), ad.ShapeError);
  });

  test("linearize(f, ...primals) → [out, jvpFn], reusable", () => {
    const [out, lin] = ad.linearize(f, x, y);
    allNear(out, [2 * Math.sin(0.5), 3 * Math.sin(1)]);
    allNear(lin(f64([1, 1]), f64([0, 1])), [2 * Math.cos(0.5), 3 * Math.cos(1) + Math.sin(1)]);
    allNear(lin(f64([0, 0]), f64([1, 0])), [Math.sin(0.5), 0]);
    allNear(lin(f64([2, 2]), f64([0, 2])), [4 * Math.cos(0.5), 6 * Math.cos(1) + 2 * Math.sin(1)]);
  });
});

// ------------------------------------------------------------------ jacobians, hessian, hvp

describe("§3 jacobians, hessian, hvp", () => {
  const A = f64([
    [1, 2, 3],
    [4, 5, 6],
  ]);

  test("jacfwd/jacrev/jacobian: shape [...outShape, ...inShape] and equal values", () => {
    // f: [2,3] → [4]
    const f = (x: T) =>
      ad.concat([ad.sum(ad.square(x), { axis: 1 }), ad.sum(ad.sin(x), { axis: 0 }).slice([0], [2])]);
    for (const jac of [ad.jacfwd(f), ad.jacrev(f), ad.jacobian(f)]) {
      const J = jac(A) as T;
      assert.deepEqual(J.shape, [4, 2, 3]);
      const j = J.toArray() as number[][][];
      allNear(j[0], [
        [2, 4, 6],
        [0, 0, 0],
      ]);
      allNear(j[3], [
        [0, Math.cos(2), 0],
        [0, Math.cos(5), 0],
      ]);
    }
  });

  test("jacobian of scalar → vector and vector → scalar, numbers in", () => {
    const f = (t: T) => ad.stack([ad.sin(t), ad.cos(t), ad.mul(t, t)]);
    for (const jac of [ad.jacfwd(f), ad.jacrev(f), ad.jacobian(f)]) {
      const J = jac(n(0.5)) as T;
      assert.deepEqual(J.shape, [3]);
      allNear(J, [Math.cos(0.5), -Math.sin(0.5), 1]);
    }
    const g = (v: T) => ad.sum(ad.square(v));
    const Jg = ad.jacrev(g)(f64([1, 2])) as T;
    assert.deepEqual(Jg.shape, [2]);
    allNear(Jg, [2, 4]);
  });

  test("jacfwd/jacrev with argnums arrays give one Jacobian per argument", () => {
    const f = (a: T, b: T) => ad.mul(a, b);
    for (const jac of [ad.jacfwd(f, { argnums: [0, 1] }), ad.jacrev(f, { argnums: [0, 1] })]) {
      const [ja, jb] = jac(f64([1, 2]), f64([3, 4])) as unknown as [T, T];
      allNear(ja, [
        [3, 0],
        [0, 4],
      ]);
      allNear(jb, [
        [1, 0],
        [0, 2],
      ]);
    }
    const jb1 = ad.jacrev(f, { argnums: 1 })(f64([1, 2]), f64([3, 4]));
    allNear(jb1, [
      [1, 0],
      [0, 2],
    ]);
  });

  test("jacobian with pytree input gives the input's structure", () => {
    const f = (p: { a: T; b: T }) => ad.add(ad.mul(p.a, 2), ad.sum(p.b));
    for (const jac of [ad.jacfwd(f), ad.jacrev(f)]) {
      const J = jac({ a: f64([1, 2]), b: f64([1, 1, 1]) }) as unknown as { a: T; b: T };
      assert.deepEqual(J.a.shape, [2, 2]);
      assert.deepEqual(J.b.shape, [2, 3]);
      allNear(J.b, [
        [1, 1, 1],
        [1, 1, 1],
      ]);
    }
  });

  test("jacobian picks forward mode when inputs < outputs (works on a forward-only whileLoop)", () => {
    // whileLoop is forward-mode differentiable only: with 1 input and 3 outputs jacobian must use jvp.
    const f = (x: T) => {
      const [, y] = ad.whileLoop(
        ([i]: [T, T]) => ad.less(i, 3),
        ([i, v]: [T, T]) => [ad.add(i, 1), ad.mul(v, 2)] as [T, T],
        [ad.scalar(0, { dtype: "int32" }), x] as [T, T],
      ) as [T, T];
      return ad.stack([y, ad.mul(y, 2), ad.mul(y, 3)]);
    };
    const J = ad.jacobian(f)(f64(1.5)) as T;
    allNear(J, [8, 16, 24]);
  });

  test("jacobian picks reverse mode otherwise (works on a reverse-only customVjp, inputs ≥ outputs)", () => {
    const sq = ad.customVjp((x: T) => ad.square(x), {
      fwd: (x: T) => [ad.square(x), x] as [T, unknown],
      bwd: (x: unknown, ct: T) => [ad.mul(ct, ad.mul(x as T, 2))],
    });
    allNear(ad.jacobian((x: T) => ad.sum(sq(x)))(f64([1, 2, 3])), [2, 4, 6]);
    allNear(ad.jacobian((x: T) => sq(x))(f64([1, 2])), [
      [2, 0],
      [0, 4],
    ]);
  });

  test("hessian (forward-over-reverse): shape [...in, ...in], values", () => {
    const f = (x: T) => ad.add(ad.sum(ad.pow(x, 3)), ad.mul(x.at(0, 0), x.at(1, 2)));
    const H = ad.hessian(f)(A) as T;
    assert.deepEqual(H.shape, [2, 3, 2, 3]);
    const h = H.toArray() as number[][][][];
    near(h[0]![1]![0]![1]!, 12);
    near(h[1]![2]![1]![2]!, 36);
    near(h[0]![0]![1]![2]!, 1);
    near(h[1]![2]![0]![0]!, 1);
    near(h[0]![1]![0]![2]!, 0);
    near(num(ad.hessian((t: T) => ad.mul(ad.sin(t), t))(n(0.3))), 2 * Math.cos(0.3) - 0.3 * Math.sin(0.3));
  });

  test("hvp(f, primals, tangents) returns one entry per primal", () => {
    const f = (x: T, y: T) => ad.sum(ad.mul(ad.square(x), y));
    const r = ad.hvp(f, [f64([1, 2]), f64([3, 4])], [f64([1, 0]), f64([0, 1])]);
    assert.ok(Array.isArray(r));
    assert.equal(r.length, 2);
    // H = [[2y, 0, 2x, 0], ...]: Hv_x = 2y∘vx + 2x∘vy ; Hv_y = 2x∘vx
    allNear(r[0], [6, 4]);
    allNear(r[1], [2, 0]);
    const single = ad.hvp((x: T) => ad.sum(ad.pow(x, 3)), [f64([1, 2])], [f64([1, 1])]);
    assert.ok(Array.isArray(single) && single.length === 1);
    allNear(single[0], [6, 12]);
    const hn = ad.hvp((t: T) => ad.pow(t, 3), [n(2)], [n(1)]);
    assert.equal(typeof hn[0], "number");
    near(hn[0] as unknown as number, 12);
  });
});

// ------------------------------------------------------------------ vmap

describe("§3 vmap", () => {
  test("default inAxes 0 over every argument", () => {
    const f = (a: T, b: T) => ad.dot(a, b);
    const r = ad.vmap(f)(
      f64([
        [1, 2],
        [3, 4],
      ]),
      f64([
        [1, 1],
        [2, 2],
      ]),
    );
    allNear(r, [3, 14]);
  });

  test("inAxes array with null (broadcast argument) and axis 1; outAxes", () => {
    const f = (a: T, b: T) => ad.mul(a, b);
    const a = f64([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const r = ad.vmap(f, { inAxes: [1, null] })(a, f64([10, 20]));
    assert.deepEqual(r.shape, [3, 2]);
    allNear(r, [
      [10, 80],
      [20, 100],
      [30, 120],
    ]);
    const r2 = ad.vmap(f, { inAxes: [1, null], outAxes: 1 })(a, f64([10, 20]));
    assert.deepEqual(r2.shape, [2, 3]);
    allNear(r2, [
      [10, 20, 30],
      [80, 100, 120],
    ]);
    const r3 = ad.vmap((v: T) => ad.sum(v), { inAxes: -1 })(a);
    allNear(r3, [5, 7, 9]);
  });

  test("inAxes and outAxes as pytrees", () => {
    const f = (p: { x: T; s: T }) => ({ y: ad.mul(p.x, p.s), z: ad.sum(p.x) });
    const r = ad.vmap(f, { inAxes: [{ x: 0, s: null }], outAxes: { y: 1, z: 0 } })({
      x: f64([
        [1, 2],
        [3, 4],
        [5, 6],
      ]),
      s: f64(2),
    });
    assert.deepEqual(r.y.shape, [2, 3]);
    allNear(r.y, [
      [2, 6, 10],
      [4, 8, 12],
    ]);
    allNear(r.z, [3, 7, 11]);
  });

  test("a number argument with inAxes null; inconsistent sizes throw ShapeError", () => {
    const f = (a: T, k: number) => ad.mul(a, k);
    allNear(ad.vmap(f, { inAxes: [0, null] })(f64([1, 2]), 3), [3, 6]);
    assert.throws(() => ad.vmap((a: T, b: T) => ad.add(a, b))(f64([1, 2]), f64([1, 2, 3])), ad.ShapeError);
  });

  test("vmap(grad(f)) gives per-example gradients; jit(vmap(grad(f))) the same", () => {
    const f = (w: T, x: T) => ad.sum(ad.square(ad.mul(w, x)));
    const w = f64([1, 2]);
    const xs = f64([
      [1, 1],
      [2, 3],
    ]);
    const per = ad.vmap(ad.grad(f), { inAxes: [null, 0] })(w, xs);
    allNear(per, [
      [2, 4],
      [8, 36],
    ]);
    const perJ = ad.jit(ad.vmap(ad.grad(f), { inAxes: [null, 0] }))(w, xs);
    allNear(perJ, per);
  });

  test("nested vmap and vmap of matmul", () => {
    const outer = ad.vmap(
      ad.vmap((a: T, b: T) => ad.mul(a, b), { inAxes: [0, null] }),
      { inAxes: [null, 0] },
    );
    const r = outer(f64([1, 2, 3]), f64([10, 100]));
    assert.deepEqual(r.shape, [2, 3]);
    allNear(r, [
      [10, 20, 30],
      [100, 200, 300],
    ]);
    const mm = ad.vmap((m: T) => ad.matmul(m, f64([1, 1])))(ad.ones([4, 2, 2], { dtype: "float64" }));
    assert.deepEqual(mm.shape, [4, 2]);
  });
});

// ------------------------------------------------------------------ jit

describe("§3 jit", () => {
  test("same results as f; traced once per input shape/dtype signature", () => {
    let traces = 0;
    const f = (x: T) => {
      traces++;
      return ad.sum(ad.mul(ad.exp(x), 2));
    };
    const jf = ad.jit(f);
    near(num(jf(f64([0, 1]))), 2 + 2 * Math.E);
    const after1 = traces;
    near(num(jf(f64([1, 0]))), 2 + 2 * Math.E);
    near(num(jf(f64([2, 0]))), 2 * Math.exp(2) + 2);
    assert.equal(traces, after1, "same shape/dtype must not retrace");
    near(num(jf(f64([0, 0, 0]))), 6);
    assert.equal(traces, after1 + 1, "a new shape retraces");
    near(num(jf(ad.tensor([0, 0]))), 4, 1e-6);
    assert.equal(traces, after1 + 2, "a new dtype retraces");
    near(num(jf(f64([0, 1]))), 2 + 2 * Math.E);
    assert.equal(traces, after1 + 2, "a cached signature is reused");
  });

  test("number arguments: new values give new (correct) results", () => {
    const jf = ad.jit((x: T, k: T) => ad.mul(x, k));
    allNear(jf(f64([1, 2]), n(3)), [3, 6]);
    allNear(jf(f64([1, 2]), n(5)), [5, 10]);
  });

  test("grad(jit(f)), jit(grad(f)), jvp(jit(f)), vmap(jit(f))", () => {
    const f = (x: T) => ad.sum(ad.mul(ad.sin(x), x));
    const x = f64([0.2, 0.7]);
    const want = [0.2, 0.7].map((a) => Math.sin(a) + a * Math.cos(a));
    allNear(ad.grad(ad.jit(f))(x), want);
    allNear(ad.jit(ad.grad(f))(x), want);
    const [, t] = ad.jvp(ad.jit(f), [x], [f64([1, 1])]);
    near(num(t), want[0]! + want[1]!);
    allNear(ad.vmap(ad.jit((v: T) => ad.mul(v, v)))(f64([1, 2, 3])), [1, 4, 9]);
  });

  test("jit with pytree arguments and JS control flow on shapes", () => {
    const jf = ad.jit((p: { a: T; list: T[] }) => (p.a.shape[0] === 2 ? ad.add(p.a, p.list[0]!) : p.a));
    allNear(jf({ a: f64([1, 2]), list: [f64([1, 1])] }), [2, 3]);
    allNear(jf({ a: f64([1, 2, 3]), list: [f64([1, 1, 1])] }), [1, 2, 3]);
  });
});

// ------------------------------------------------------------------ composition, nesting

describe("§3 transforms compose without limit; no perturbation confusion", () => {
  test("f(x) = x · d/dy[x + y] has derivative exactly 1 (anchors c#1): grad∘grad, jvp∘jvp, jvp∘grad", () => {
    const inner = (x: T) => ad.grad((y: T) => ad.add(x, y))(n(1)) as unknown as T;
    const f = (x: T) => ad.mul(x, inner(x));
    assert.equal(ad.grad(f)(n(1)), 1);
    assert.equal(ad.grad(f)(n(7.5)), 1);
    const d = (g: (v: T) => T) => (v: number) => num(ad.jvp(g, [v], [1])[1]);
    const fj = (x: T) => ad.mul(x, d((y: T) => ad.add(x, y))(1) as unknown as T);
    near(d(fj)(1), 1, 0);
    const fm = (x: T) => ad.mul(x, ad.grad((y: T) => ad.add(x, y))(n(1)) as unknown as T);
    near(d(fm)(3), 1, 0);
  });

  test("closure perturbations: D(x ↦ D(y ↦ sin(x·y))(…)) agrees with the analytic mixed derivative", () => {
    // d/dx [ d/dy sin(x y) at y=2 ] = d/dx [x cos(2x)] = cos 2x − 2x sin 2x at x = 1
    const g = (x: T) => ad.grad((y: T) => ad.sin(ad.mul(x, y)))(n(2)) as unknown as T;
    near(ad.grad(g)(n(1)) as unknown as number, Math.cos(2) - 2 * Math.sin(2));
  });

  test("grad(grad(tanh)) (anchors c#16), third derivative, jacfwd(jacrev) = hessian", () => {
    near(
      ad.grad(ad.grad((x: T) => ad.tanh(x)))(n(0.5)) as unknown as number,
      -2 * Math.tanh(0.5) * (1 - Math.tanh(0.5) ** 2),
      1e-12,
    );
    near(ad.grad(ad.grad(ad.grad((x: T) => ad.pow(x, 4))))(n(2)) as unknown as number, 48);
    const f = (v: T) => ad.sum(ad.mul(ad.exp(v), v.at(0)));
    const x = f64([0.3, -0.4]);
    allNear(ad.jacfwd(ad.jacrev(f))(x), ad.hessian(f)(x));
    allNear(ad.jacrev(ad.jacfwd(f))(x), ad.hessian(f)(x));
  });

  test("jvp(grad(f)) is the Hessian-vector product", () => {
    const f = (v: T) => ad.sum(ad.pow(v, 3));
    const [, hv] = ad.jvp(ad.grad(f), [f64([1, 2])], [f64([1, 1])]);
    allNear(hv, [6, 12]);
  });
});

// ------------------------------------------------------------------ stopGradient, checkpoint

describe("§3 stopGradient and checkpointing", () => {
  test("stopGradient: value unchanged, zero derivative in every mode and order", () => {
    const f = (x: T) => ad.mul(x, ad.stopGradient(ad.mul(x, x)));
    near(num(f(f64(3))), 27);
    near(ad.grad(f)(n(3)) as unknown as number, 9);
    near(num(ad.jvp(f, [3], [1])[1]), 9);
    near(ad.grad(ad.grad(f))(n(3)) as unknown as number, 0);
    allNear(ad.vmap(ad.grad(f))(f64([1, 2])), [1, 4]);
    assert.equal(num(ad.stopGradient(2)), 2);
  });

  test("checkpoint(f): same values and gradients, any order; policy option accepted", () => {
    const block = (x: T) => ad.tanh(ad.mul(ad.sin(x), ad.exp(x)));
    const x = f64([0.1, 0.5, -0.3]);
    const plain = (v: T) => ad.sum(block(block(v)));
    const ck = (v: T) => ad.sum(ad.checkpoint(block)(ad.checkpoint(block)(v)));
    near(num(ck(x)), num(plain(x)));
    allNear(ad.grad(ck)(x), ad.grad(plain)(x), 1e-12);
    allNear(ad.hessian(ck)(x), ad.hessian(plain)(x), 1e-10);
    const [, t] = ad.jvp(ck, [x], [f64([1, 2, 3])]);
    const [, t0] = ad.jvp(plain, [x], [f64([1, 2, 3])]);
    near(num(t), num(t0));
    for (const policy of ["nothingSaveable", "dotsSaveable", "everythingSaveable", "dots_saveable"]) {
      const pol = ad.checkpoint(block, { policy: policy as "dotsSaveable" });
      allNear(ad.grad((v: T) => ad.sum(pol(pol(v))))(x), ad.grad(plain)(x), 1e-12, policy);
    }
    const byPredicate = ad.checkpoint(block, { policy: (name: string) => name === "sin" });
    allNear(ad.grad((v: T) => ad.sum(byPredicate(v)))(x), ad.grad((v: T) => ad.sum(block(v)))(x), 1e-12);
    const withArgs = ad.checkpoint((a: T, b: T) => ad.mul(ad.sin(a), b));
    allNear(
      ad.grad((a: T) => ad.sum(withArgs(a, f64([2, 2, 2]))))(x),
      [0.1, 0.5, -0.3].map((a) => 2 * Math.cos(a)),
    );
  });

  test("checkpointSequential(fns, segments, x) equals the chain, with the same gradient", () => {
    const fns = [0.5, -1, 2, 0.3, 1.1, -0.7].map((c) => (v: T) => ad.tanh(ad.add(ad.mul(v, c), 0.1)));
    const chain = (v: T) => fns.reduce((h, g) => g(h), v);
    const x = f64([0.2, -0.4]);
    const out = ad.checkpointSequential(fns, 2, x);
    allNear(out, chain(x), 1e-12);
    allNear(
      ad.grad((v: T) => ad.sum(ad.checkpointSequential(fns, 3, v)))(x),
      ad.grad((v: T) => ad.sum(chain(v)))(x),
      1e-12,
    );
  });
});

// ------------------------------------------------------------------ custom rules

describe("§3 custom rules", () => {
  test("customVjp: fwd(...args) → [out, residuals], bwd(residuals, cotangent) → cotangents[]", () => {
    let bwdCalls = 0;
    // a gradient clipper: identity forward, backward clips to [-1, 1] and doubles
    const clip = ad.customVjp((x: T, s: T) => ad.mul(x, s), {
      fwd: (x: T, s: T) => [ad.mul(x, s), [x, s]] as [T, unknown],
      bwd: (res: unknown, ct: T) => {
        bwdCalls++;
        const [x, s] = res as [T, T];
        return [ad.mul(ad.minimum(ad.maximum(ct, -1), 1), ad.mul(s, 2)), ad.sum(ad.mul(ct, x))];
      },
    });
    const x = f64([1, 2]);
    allNear(clip(x, f64(3)), [3, 6]);
    const [gx, gs] = ad.grad((a: T, b: T) => ad.sum(ad.mul(clip(a, b), 5)), { argnums: [0, 1] })(
      x,
      f64(3),
    ) as [T, T];
    allNear(gx, [6, 6]);
    near(num(gs), 15);
    assert.ok(bwdCalls >= 1);
    // composes with vmap and jit
    const gv = ad.vmap(ad.grad((a: T) => ad.sum(clip(a, f64(3)))))(f64([[1], [2]]));
    allNear(gv, [[6], [6]]);
    allNear(ad.jit(ad.grad((a: T) => ad.sum(clip(a, f64(3)))))(x), [6, 6]);
  });

  test("customVjp with a numerically safe rule: log1pexp gradient finite at 100 in float32", () => {
    const log1pexp = ad.customVjp((x: T) => ad.log(ad.add(1, ad.exp(x))), {
      fwd: (x: T) => [ad.log(ad.add(1, ad.exp(x))), x] as [T, unknown],
      bwd: (x: unknown, ct: T) => [ad.mul(ct, ad.sigmoid(x as T))],
    });
    near(num(ad.grad((v: T) => ad.sum(log1pexp(v)))(ad.tensor([100]))), 1, 1e-7);
  });

  test("customJvp: jvp(primals, tangents) → [out, tangentOut], used by jvp and by grad", () => {
    let calls = 0;
    const f = ad.customJvp((x: T) => ad.sin(x), {
      jvp: (primals: T[], tangents: T[]) => {
        calls++;
        const [x] = primals;
        const [t] = tangents;
        // deliberately 3·cos so the test can tell the custom rule was used
        return [ad.sin(x!), ad.mul(ad.mul(ad.cos(x!), 3), t!)] as [T, T];
      },
    });
    near(num(f(f64(0.4))), Math.sin(0.4));
    near(num(ad.jvp(f, [0.4], [1])[1]), 3 * Math.cos(0.4));
    near(ad.grad(f)(n(0.4)) as unknown as number, 3 * Math.cos(0.4));
    allNear(ad.vmap(ad.grad(f))(f64([0.4, 0.5])), [3 * Math.cos(0.4), 3 * Math.cos(0.5)]);
    near(num(ad.jit(ad.grad(f))(f64(0.4))), 3 * Math.cos(0.4));
    assert.ok(calls >= 1);
  });

  test("customJvp second order: grad(grad(f)) differentiates the custom rule", () => {
    const f = ad.customJvp((x: T) => ad.sin(x), {
      jvp: ([x]: T[], [t]: T[]) => [ad.sin(x!), ad.mul(ad.cos(x!), t!)] as [T, T],
    });
    near(ad.grad(ad.grad(f))(n(0.4)) as unknown as number, -Math.sin(0.4));
  });
});
