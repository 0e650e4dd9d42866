/**
 * @file Black-box contract tests for the corners a tough reviewer probes: dtype promotion between
 * tensors and weak numbers, JS control flow on concrete values inside transforms, pytree corner
 * cases (null leaves, arrays of numbers), argnums with hasAux, eager autograd through jit, custom
 * rules and control flow, NumPy-style conveniences (einsum ellipsis, pad forms), vmap of
 * unbatched outputs, and random shape semantics as JAX.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { checks, f64, flat, n, num, type T } from "./contract-helpers.js";

const { near, allNear } = checks(1e-9);

const i32 = (x: unknown) => ad.tensor(x as number[], { dtype: "int32" });

describe("dtype promotion between tensors (as JAX/NumPy)", () => {
  test("float32 with float64 → float64; int32 with float32 → float32; bool with int32 → int32", () => {
    assert.equal(ad.add(ad.tensor([1]), f64([1])).dtype, "float64");
    assert.equal(ad.mul(i32([1]), ad.tensor([1.5])).dtype, "float32");
    assert.deepEqual(flat(ad.mul(i32([2]), ad.tensor([1.5]))), [3]);
    assert.equal(ad.add(ad.tensor([true], { dtype: "bool" }), i32([1])).dtype, "int32");
  });

  test("int32 reductions and means: sum stays int32, mean is floating", () => {
    const x = i32([1, 2, 4]);
    assert.equal(ad.sum(x).dtype, "int32");
    assert.equal(ad.sum(x).item(), 7);
    const m = ad.mean(x);
    assert.ok(m.dtype === "float32" || m.dtype === "float64");
    near(m.item(), 7 / 3, 1e-6);
    assert.equal(ad.max(x).dtype, "int32");
  });

  test("true division of integers gives floats (as JAX/PyTorch)", () => {
    const d = ad.div(i32([3, 4]), 2);
    assert.notEqual(d.dtype, "int32");
    assert.deepEqual(flat(d), [1.5, 2]);
  });

  test("a float number with an int32 tensor does not truncate the number (JAX weak-type lattice)", () => {
    const r = ad.mul(i32([1, 2]), 1.5);
    assert.deepEqual(flat(r), [1.5, 3]);
  });

  test("ops on bool tensors: logical results stay bool; sum counts", () => {
    const b = ad.greater(ad.tensor([1, 2, 3]), 1);
    assert.equal(ad.sum(b).item(), 2);
  });
});

describe("JS control flow on concrete values inside transforms (values are concrete while tracing eagerly)", () => {
  const f = (x: T) => (x.item() > 0 ? ad.mul(x, x) : ad.neg(x));

  test("item() and toArray() work inside grad, jvp, hessian, jacrev", () => {
    near(ad.grad(f)(n(3)) as unknown as number, 6);
    near(ad.grad(f)(n(-3)) as unknown as number, -1);
    near(num(ad.jvp(f, [f64(3)], [f64(1)])[1]), 6);
    near(num(ad.hessian(f)(f64(3))), 2);
    const g = (v: T) => {
      const arr = v.toArray() as number[];
      return arr[0]! > arr[1]! ? ad.sum(ad.square(v)) : ad.sum(v);
    };
    allNear(ad.jacrev(g)(f64([2, 1])), [4, 2]);
    allNear(ad.grad(g)(f64([1, 2])), [1, 1]);
  });

  test("a data-dependent JS loop inside grad (Newton iterations unrolled)", () => {
    const sqrtNewton = (a: T) => {
      let x: T = ad.onesLike(a);
      while (Math.abs(ad.sub(ad.mul(x, x), a).item()) > 1e-12) x = ad.mul(0.5, ad.add(x, ad.div(a, x)));
      return x;
    };
    near(ad.grad(sqrtNewton)(n(4)) as unknown as number, 0.25, 1e-9);
  });
});

describe("pytree corners", () => {
  test("an array of numbers as the argument gives an array of number gradients", () => {
    const g = ad.grad((xs: T[]) => ad.mul(xs[0]!, xs[1]!))([n(2), n(5)]);
    assert.deepEqual(g, [5, 2]);
  });

  test("null leaves are empty subtrees and come back as null", () => {
    const g = ad.grad((p: { w: T; extra: null }) => ad.sum(ad.square(p.w)))({
      w: f64([1, 2]),
      extra: null,
    }) as {
      w: T;
      extra: null;
    };
    allNear(g.w, [2, 4]);
    assert.equal(g.extra, null);
  });

  test("argnums array with hasAux: [[g0, g1], aux]; valueAndGrad likewise", () => {
    const f = (a: T, b: T) => [ad.mul(a, b), "aux!"] as [T, string];
    const [gs, aux] = ad.grad(f, { argnums: [0, 1], hasAux: true })(n(2), n(3)) as unknown as [
      number[],
      string,
    ];
    assert.deepEqual(gs, [3, 2]);
    assert.equal(aux, "aux!");
    const [[v, aux2], gs2] = ad.valueAndGrad(f, { argnums: [0, 1], hasAux: true })(n(2), n(3)) as [
      [T, string],
      number[],
    ];
    near(num(v), 6);
    assert.equal(aux2, "aux!");
    assert.deepEqual(gs2, [3, 2]);
  });

  test("hvp and linearize with pytree primals", () => {
    const f = (p: { a: T; b: T }) => ad.sum(ad.mul(ad.square(p.a), p.b));
    const [hv] = ad.hvp(f, [{ a: f64([1, 2]), b: f64([3, 4]) }], [{ a: f64([1, 1]), b: f64([0, 0]) }]) as [
      { a: T; b: T },
    ];
    allNear(hv.a, [6, 8]);
    allNear(hv.b, [2, 4]);
    const [out, lin] = ad.linearize(f, { a: f64([1, 2]), b: f64([3, 4]) });
    near(num(out), 3 + 16);
    near(num(lin({ a: f64([1, 0]), b: f64([0, 1]) })), 6 + 4);
  });

  test("jacobian of a pytree-valued function gives a pytree of Jacobians", () => {
    const f = (x: T) => ({ s: ad.sum(x), d: ad.mul(x, 2) });
    for (const jac of [ad.jacfwd(f), ad.jacrev(f)]) {
      const J = jac(f64([1, 2, 3])) as { s: T; d: T };
      assert.deepEqual(J.s.shape, [3]);
      assert.deepEqual(J.d.shape, [3, 3]);
      allNear(J.d, [
        [2, 0, 0],
        [0, 2, 0],
        [0, 0, 2],
      ]);
    }
  });
});

describe("vmap corners", () => {
  test("an output that does not depend on the batch is broadcast along outAxes", () => {
    const r = ad.vmap((_x: T) => ad.scalar(1, { dtype: "float64" }))(f64([1, 2, 3]));
    allNear(r, [1, 1, 1]);
  });

  test("outAxes -1 and a single inAxes number for all arguments", () => {
    const r = ad.vmap((a: T, b: T) => ad.add(a, b), { inAxes: 1, outAxes: -1 })(
      f64([
        [1, 2],
        [3, 4],
      ]),
      f64([
        [10, 20],
        [30, 40],
      ]),
    );
    // batch over columns: each call sees a column [a0j, a1j]; out stacked last
    allNear(r, [
      [11, 22],
      [33, 44],
    ]);
  });

  test("vmap of jacrev, and of a function with reductions over negative axes", () => {
    const J = ad.vmap(ad.jacrev((x: T) => ad.mul(ad.sin(x), 2)))(f64([[0], [Math.PI]]));
    assert.deepEqual(J.shape, [2, 1, 1]);
    allNear(J, [[[2]], [[-2]]]);
    const s = ad.vmap((x: T) => ad.sum(x, { axis: -1 }))(ad.ones([4, 2, 3], { dtype: "float64" }));
    assert.deepEqual(s.shape, [4, 2]);
  });
});

describe("eager autograd through functional pieces", () => {
  test("a jit-compiled function is differentiable by backward()", () => {
    const x = ad.tensor([0.5, 1], { dtype: "float64", requiresGrad: true });
    const jf = ad.jit((v: T) => ad.sum(ad.mul(ad.sin(v), v)));
    jf(x).backward();
    allNear(
      x.grad,
      [0.5, 1].map((a) => Math.sin(a) + a * Math.cos(a)),
    );
  });

  test("customVjp and checkpoint under backward()", () => {
    const twice = ad.customVjp((v: T) => ad.mul(v, 1), {
      fwd: (v: T) => [ad.mul(v, 1), null] as [T, unknown],
      bwd: (_r: unknown, ct: T) => [ad.mul(ct, 2)],
    });
    const x = ad.tensor([1, 2], { dtype: "float64", requiresGrad: true });
    ad.sum(twice(x)).backward();
    allNear(x.grad, [2, 2]);
    const y = ad.tensor([0.3], { dtype: "float64", requiresGrad: true });
    ad.sum(ad.checkpoint((v: T) => ad.exp(ad.sin(v)))(y)).backward();
    allNear(y.grad, [Math.cos(0.3) * Math.exp(Math.sin(0.3))]);
  });

  test("scan under backward()", () => {
    const x = ad.tensor([1, 2, 3], { dtype: "float64", requiresGrad: true });
    const [c] = ad.scan((acc: T, v: T) => [ad.mul(acc, v), acc] as [T, T], f64(1), x) as [T, T];
    c.backward();
    allNear(x.grad, [6, 3, 2]);
  });

  test("a size-1 (shape [1]) output may call backward() without gradOutput; non-leaf .grad is null", () => {
    const x = ad.tensor([3], { requiresGrad: true });
    const h = ad.mul(x, 2);
    const y = ad.mul(h, x);
    y.backward();
    allNear(x.grad, [12]);
    assert.equal(h.grad, null);
  });

  test("parameters of a module require grad", () => {
    const lin = new ad.nn.Linear(2, 2, { key: ad.random.key(0) });
    assert.ok(lin.parameters().every((p: T) => p.requiresGrad && p.isLeaf));
  });
});

describe("custom rules corners", () => {
  test("reverse-over-reverse through a customVjp whose bwd is differentiable", () => {
    const cube = ad.customVjp((x: T) => ad.pow(x, 3), {
      fwd: (x: T) => [ad.pow(x, 3), x] as [T, unknown],
      bwd: (x: unknown, ct: T) => [ad.mul(ct, ad.mul(3, ad.square(x as T)))],
    });
    near(ad.grad(ad.grad(cube))(n(2)) as unknown as number, 12);
  });

  test("customVjp with pytree arguments and a number argument", () => {
    const f = ad.customVjp((p: { a: T; b: T }, k: T) => ad.mul(ad.add(p.a, p.b), k), {
      fwd: (p: { a: T; b: T }, k: T) => [ad.mul(ad.add(p.a, p.b), k), k] as [T, unknown],
      bwd: (k: unknown, ct: T) => [{ a: ad.mul(ct, k as T), b: ad.mul(ct, k as T) }, ad.sum(ct)],
    });
    const [gp, gk] = ad.grad((p: { a: T; b: T }, k: T) => ad.sum(f(p, k)), { argnums: [0, 1] })(
      { a: f64([1, 2]), b: f64([3, 4]) },
      n(2),
    ) as unknown as [{ a: T; b: T }, number];
    allNear(gp.a, [2, 2]);
    allNear(gp.b, [2, 2]);
    assert.equal(typeof gk, "number");
    near(gk, 2);
  });
});

describe("NumPy conveniences", () => {
  test("einsum with ellipsis and implicit output", () => {
    const a = ad.random.normal(ad.random.key(1), [2, 3, 4]);
    const b = ad.random.normal(ad.random.key(2), [2, 4, 5]);
    assert.ok(ad.allclose(ad.einsum("...ij,...jk->...ik", a, b), ad.matmul(a, b), { atol: 1e-5 }));
    const m = ad.tensor([
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(ad.einsum("ij,jk", m, m).toArray(), [
      [7, 10],
      [15, 22],
    ]);
    assert.deepEqual(ad.einsum("ij", m).toArray(), m.toArray());
  });

  test("squeeze/expandDims with several axes; transpose with negative axes", () => {
    assert.deepEqual(ad.squeeze(ad.zeros([1, 2, 1, 3]), [0, 2]).shape, [2, 3]);
    assert.deepEqual(ad.expandDims(ad.zeros([2]), [0, 2]).shape, [1, 2, 1]);
    assert.deepEqual(ad.transpose(ad.zeros([2, 3, 4]), [-1, 0, 1]).shape, [4, 2, 3]);
  });

  test("split with a negative axis; concat of one tensor", () => {
    const parts = ad.split(ad.zeros([2, 6]), 2, -1);
    assert.deepEqual(
      parts.map((p: T) => p.shape),
      [
        [2, 3],
        [2, 3],
      ],
    );
    assert.deepEqual(ad.concat([ad.ones([2])]).toArray(), [1, 1]);
  });

  test("t.at with an out-of-range index throws a typed error", () => {
    assert.throws(() => ad.zeros([2, 3]).at(2), ad.AdError);
    assert.throws(() => ad.zeros([2, 3]).at(0, -4), ad.AdError);
  });

  test("softmax with −Inf entries and its gradient stay finite", () => {
    const x = ad.tensor([Number.NEGATIVE_INFINITY, 0, 0]);
    allNear(ad.softmax(x), [0, 0.5, 0.5], 1e-7);
    const g = flat(ad.grad((v: T) => ad.softmax(v).at(1))(x));
    assert.ok(g.every(Number.isFinite), `${g}`);
  });
});

describe("random shape semantics as JAX", () => {
  test("categorical with batched logits and a shape that ends in the batch shape", () => {
    const logits = ad.log(
      ad.tensor([
        [1, 0, 0],
        [0, 0, 1],
      ]),
    );
    const c = ad.random.categorical(ad.random.key(0), logits, { shape: [5, 2] });
    assert.deepEqual(c.shape, [5, 2]);
    for (const row of c.toArray() as number[][]) assert.deepEqual(row, [0, 2]);
  });

  test("bernoulli with tensor p broadcast to a larger shape; 0-d normal", () => {
    const b = ad.random.bernoulli(ad.random.key(1), ad.tensor([0, 1]), [3, 2]);
    assert.deepEqual(b.shape, [3, 2]);
    assert.deepEqual(flat(b), [0, 1, 0, 1, 0, 1]);
    const z = ad.random.normal(ad.random.key(2), []);
    assert.deepEqual(z.shape, []);
  });

  test("vmap over stacked keys gives the numbers a loop over the keys gives", () => {
    const keys = ad.random.split(ad.random.key(3), 3);
    const batched = ad.vmap((k: T) => ad.random.normal(k, [2]))(ad.stack(keys));
    assert.deepEqual(
      batched.toArray(),
      keys.map((k: T) => ad.random.normal(k, [2]).toArray()),
    );
  });

  test("a wrong key (the array split returns, a number, a float tensor) is a typed error naming the function", () => {
    const keys = ad.random.split(ad.random.key(3), 3);
    for (const bad of [keys, 5, ad.tensor([1, 2])])
      for (const [name, call] of [
        ["normal", (k: T) => ad.random.normal(k, [2])],
        ["uniform", (k: T) => ad.random.uniform(k, [2])],
        ["bernoulli", (k: T) => ad.random.bernoulli(k, 0.5, [2])],
        ["split", (k: T) => ad.random.split(k)],
      ] as [string, (k: T) => unknown][])
        assert.throws(
          () => call(bad as unknown as T),
          (e: unknown) => e instanceof ad.AdError && new RegExp(name).test((e as Error).message),
        );
  });

  test("random under jit is reproducible from the key argument", () => {
    const jf = ad.jit((k: T) => ad.random.normal(k, [3]));
    assert.deepEqual(jf(ad.random.key(5)).toArray(), ad.random.normal(ad.random.key(5), [3]).toArray());
    assert.notDeepEqual(jf(ad.random.key(6)).toArray(), jf(ad.random.key(5)).toArray());
  });
});
