/**
 * @file Black-box contract tests for API.md §1 (values: creating and reading tensors, dtypes, JS
 * numbers as values, pytrees) and §10 "Numbers" and "random", written from the contract alone as a
 * user would call the package.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { checks, flat, n, num } from "./contract-helpers.js";

const { near, allNear } = checks(1e-6);

/** A number from a number or a size-1 tensor (transforms may return either where the contract allows). */

describe("§1 creating and reading tensors", () => {
  test("ad.tensor of nested JS arrays: shape, dtype float32, size, ndim", () => {
    const t = ad.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, "float32");
    assert.equal(t.size, 6);
    assert.equal(t.ndim, 2);
    assert.deepEqual(t.toArray(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
  });

  test("ad.tensor(number) and ad.scalar(number) are float32 0-d tensors unless dtype says otherwise", () => {
    const a = ad.tensor(2.5);
    assert.deepEqual(a.shape, []);
    assert.equal(a.ndim, 0);
    assert.equal(a.size, 1);
    assert.equal(a.dtype, "float32");
    assert.equal(a.toArray(), 2.5);
    const s = ad.scalar(3);
    assert.deepEqual(s.shape, []);
    assert.equal(s.dtype, "float32");
    assert.equal(s.item(), 3);
    const d = ad.scalar(0.1, { dtype: "float64" });
    assert.equal(d.dtype, "float64");
    assert.equal(d.item(), 0.1);
    assert.equal(ad.tensor(7, { dtype: "int32" }).dtype, "int32");
  });

  test("ad.tensor with dtype options: float64 keeps double precision, int32 and bool", () => {
    const d = ad.tensor([0.1, 0.2], { dtype: "float64" });
    assert.equal(d.dtype, "float64");
    assert.deepEqual(d.toArray(), [0.1, 0.2]);
    const f = ad.tensor([0.1]);
    assert.equal(f.at(0).item(), Math.fround(0.1));
    const i = ad.tensor([1, -2, 3], { dtype: "int32" });
    assert.equal(i.dtype, "int32");
    assert.deepEqual(i.toArray(), [1, -2, 3]);
    const b = ad.tensor([true, false, true], { dtype: "bool" });
    assert.equal(b.dtype, "bool");
    assert.deepEqual(flat(b.toArray()), [1, 0, 1]);
  });

  test("ad.tensor from a TypedArray, with {shape}", () => {
    const t = ad.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
    assert.deepEqual(t.shape, [2, 3]);
    assert.deepEqual(t.toArray(), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const flatT = ad.tensor(new Float32Array([1, 2]));
    assert.deepEqual(flatT.shape, [2]);
    const d = ad.tensor(new Float64Array([0.1, 0.2, 0.3, 0.4]), { shape: [2, 2], dtype: "float64" });
    assert.equal(d.dtype, "float64");
    assert.equal(d.at(0, 0).item(), 0.1);
  });

  test("a TypedArray's own element type is kept when no dtype is given (as NumPy/PyTorch)", () => {
    assert.equal(ad.tensor(new Float64Array([0.1, 0.2])).dtype, "float64");
    assert.equal(ad.tensor(new Int32Array([1, 2])).dtype, "int32");
  });

  test("the source array is copied: mutating it later does not change the tensor", () => {
    const src = new Float32Array([1, 2, 3]);
    const t = ad.tensor(src);
    src[0] = 100;
    assert.deepEqual(t.toArray(), [1, 2, 3]);
    const js = [1, 2];
    const u = ad.tensor(js);
    js[0] = 9;
    assert.deepEqual(u.toArray(), [1, 2]);
  });

  test("requiresGrad option", () => {
    const t = ad.tensor([1, 2], { requiresGrad: true });
    assert.equal(t.requiresGrad, true);
    assert.equal(ad.tensor([1, 2]).requiresGrad, false);
  });

  test("zeros, ones, full, zerosLike, onesLike with shapes and dtypes", () => {
    const z = ad.zeros([2, 3]);
    assert.deepEqual(z.shape, [2, 3]);
    assert.equal(z.dtype, "float32");
    assert.deepEqual(flat(z.toArray()), [0, 0, 0, 0, 0, 0]);
    const o = ad.ones([3], { dtype: "int32" });
    assert.equal(o.dtype, "int32");
    assert.deepEqual(o.toArray(), [1, 1, 1]);
    const f = ad.full([2, 2], 7.5, { dtype: "float64" });
    assert.equal(f.dtype, "float64");
    assert.deepEqual(f.toArray(), [
      [7.5, 7.5],
      [7.5, 7.5],
    ]);
    const f0 = ad.full([], 3);
    assert.deepEqual(f0.shape, []);
    assert.equal(f0.item(), 3);
    const base = ad.tensor([[1], [2], [3]], { dtype: "float64" });
    const zl = ad.zerosLike(base);
    assert.deepEqual(zl.shape, [3, 1]);
    assert.equal(zl.dtype, "float64");
    assert.deepEqual(flat(zl.toArray()), [0, 0, 0]);
    const ol = ad.onesLike(base);
    assert.equal(ol.dtype, "float64");
    assert.deepEqual(flat(ol.toArray()), [1, 1, 1]);
    const empty = ad.zeros([0, 3]);
    assert.deepEqual(empty.shape, [0, 3]);
    assert.equal(empty.size, 0);
  });

  test("eye, arange, linspace", () => {
    assert.deepEqual(ad.eye(3).toArray(), [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    assert.equal(ad.eye(2, { dtype: "float64" }).dtype, "float64");
    assert.deepEqual(flat(ad.arange(5).toArray()), [0, 1, 2, 3, 4]);
    assert.deepEqual(flat(ad.arange(2, 5).toArray()), [2, 3, 4]);
    allNear(ad.arange(0, 1, 0.25).toArray(), [0, 0.25, 0.5, 0.75]);
    assert.deepEqual(flat(ad.arange(5, 1, -2).toArray()), [5, 3]);
    assert.equal(ad.arange(0, 3, 1, { dtype: "float64" }).dtype, "float64");
    allNear(ad.linspace(0, 1, 5).toArray(), [0, 0.25, 0.5, 0.75, 1]);
    const l = ad.linspace(-1, 1, 3, { dtype: "float64" });
    assert.equal(l.dtype, "float64");
    assert.deepEqual(l.toArray(), [-1, 0, 1]);
  });

  test("toArray gives nested arrays, a number for 0-d", () => {
    assert.equal(typeof ad.scalar(1).toArray(), "number");
    assert.deepEqual(ad.zeros([1, 1, 2]).toArray(), [[[0, 0]]]);
    assert.deepEqual(ad.zeros([2, 0]).toArray(), [[], []]);
  });

  test("item(): the number of a size-1 tensor of any rank; ShapeError otherwise", () => {
    assert.equal(ad.tensor([[4]]).item(), 4);
    assert.equal(ad.tensor([5]).item(), 5);
    assert.equal(ad.tensor([3], { dtype: "int32" }).item(), 3);
    assert.throws(() => ad.tensor([1, 2]).item(), ad.ShapeError);
    assert.throws(() => ad.zeros([0]).item(), ad.ShapeError);
  });

  test("data(): a fresh row-major TypedArray copy, also for non-contiguous transposes", () => {
    const t = ad.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const d = t.data();
    assert.ok(d instanceof Float32Array);
    assert.deepEqual(Array.from(d), [1, 2, 3, 4, 5, 6]);
    d[0] = 99;
    assert.equal(t.at(0, 0).item(), 1);
    assert.deepEqual(Array.from(t.data()), [1, 2, 3, 4, 5, 6]);
    const tt = t.transpose();
    assert.deepEqual(tt.shape, [3, 2]);
    assert.deepEqual(Array.from(tt.data()), [1, 4, 2, 5, 3, 6]);
    assert.ok(ad.tensor([1], { dtype: "float64" }).data() instanceof Float64Array);
    assert.ok(ad.tensor([1], { dtype: "int32" }).data() instanceof Int32Array);
  });

  test("toString is readable and numpy-like", () => {
    const s = ad
      .tensor([
        [1.5, 2],
        [3, 4],
      ])
      .toString();
    assert.equal(typeof s, "string");
    assert.match(s, /1\.5/);
    assert.match(s, /\[\s*\[/);
    assert.match(s, /4/);
    assert.match(String(ad.scalar(2.5)), /2\.5/);
    // whole numbers print exactly, never rounded to another integer
    assert.match(ad.tensor([123456789], { dtype: "float64" }).toString(), /123456789/);
    assert.match(ad.tensor([1234567]).toString(), /1234567/);
    assert.match(ad.tensor([true, false], { dtype: "bool" }).toString(), /true/);
  });

  test("t.dispose() may be called (an optimisation, never required); twice is harmless", () => {
    const small = ad.tensor([1, 2]);
    small.dispose();
    small.dispose();
    const big = ad.ones([512, 512]).mul(2);
    big.dispose();
    // a disposed tensor either still reads (host memory) or throws a typed error, never garbage
    try {
      assert.equal(ad.sum(big).item(), 2 * 512 * 512);
    } catch (e) {
      assert.ok(e instanceof ad.AdError, String(e));
    }
    // and nothing else is affected
    assert.equal(ad.sum(ad.ones([512, 512])).item(), 512 * 512);
  });

  test("allclose returns a boolean and honours rtol/atol", () => {
    const a = ad.tensor([1, 2, 3]);
    assert.equal(ad.allclose(a, ad.tensor([1, 2, 3])), true);
    assert.equal(ad.allclose(a, ad.tensor([1, 2, 3.1])), false);
    assert.equal(ad.allclose(a, ad.tensor([1, 2, 3.1]), { atol: 0.2 }), true);
    assert.equal(ad.allclose(a, ad.tensor([1, 2, 3.1]), { rtol: 0.05 }), true);
    assert.equal(typeof ad.allclose(a, a), "boolean");
  });
});

describe("§1/§10 JS numbers are values", () => {
  test("an op on JS numbers only returns a float64 0-d tensor", () => {
    const e = ad.exp(0.7);
    assert.ok(e instanceof ad.Tensor);
    assert.equal(e.dtype, "float64");
    assert.deepEqual(e.shape, []);
    assert.equal(e.item(), Math.exp(0.7));
    const s = ad.add(1, 2);
    assert.equal(s.dtype, "float64");
    assert.equal(s.item(), 3);
    assert.equal(ad.mul(0.1, 3).item(), 0.1 * 3);
  });

  test("a number in a binary op with a tensor takes the tensor's dtype (weak typing)", () => {
    const f = ad.tensor([1, 2]);
    assert.equal(ad.add(f, 0.5).dtype, "float32");
    assert.equal(ad.mul(2, f).dtype, "float32");
    assert.equal(f.add(1).dtype, "float32");
    const d = ad.tensor([1, 2], { dtype: "float64" });
    assert.equal(ad.sub(d, 1).dtype, "float64");
    const i = ad.tensor([1, 2], { dtype: "int32" });
    const r = ad.add(i, 3);
    assert.equal(r.dtype, "int32");
    assert.deepEqual(r.toArray(), [4, 5]);
    // float32 weak scalar: 0.1 is rounded into float32 like the tensor
    assert.equal(
      ad
        .add(ad.zeros([1]), 0.1)
        .at(0)
        .item(),
      Math.fround(0.1),
    );
  });

  test("numbers are accepted wherever tensors are: where, maximum, matmul-free ops, reductions", () => {
    assert.equal(
      ad
        .maximum(ad.tensor([1, 5]), 3)
        .at(0)
        .item(),
      3,
    );
    assert.deepEqual(ad.where(ad.tensor([true, false], { dtype: "bool" }), 1, 2).toArray(), [1, 2]);
    assert.equal(ad.sum(4).item(), 4);
    assert.equal(
      ad
        .pow(2, ad.tensor([3]))
        .at(0)
        .item(),
      8,
    );
  });

  test("a number argument of a transform is a float64 scalar and its gradient is a number", () => {
    const g = ad.grad((x: ad.Tensor) => ad.mul(x, x))(n(3));
    assert.equal(typeof g, "number");
    assert.equal(g, 6);
    // float64 precision: d/dx sin(x) at 0.1 is cos(0.1) to double precision
    const gs = ad.grad((x: ad.Tensor) => ad.sin(x))(n(0.1));
    assert.equal(typeof gs, "number");
    near(gs as unknown as number, Math.cos(0.1), 1e-15);
  });
});

describe("§1 pytrees and ad.tree", () => {
  const tree = { w: ad.tensor([1, 2]), b: 3, layers: [{ a: ad.tensor([[1]]) }, { a: 4 }] };

  test("tree.leaves lists tensor and number leaves", () => {
    const leaves = ad.tree.leaves(tree);
    assert.equal(leaves.length, 4);
    const nums = leaves.filter((l: unknown) => typeof l === "number");
    assert.deepEqual([...nums].sort(), [3, 4]);
  });

  test("tree.flatten → [leaves, treedef]; tree.unflatten(treedef, leaves) rebuilds the structure", () => {
    const [leaves, def] = ad.tree.flatten(tree);
    assert.equal(leaves.length, 4);
    const doubled = leaves.map((l: unknown) => (typeof l === "number" ? l * 2 : (l as ad.Tensor).mul(2)));
    const back = ad.tree.unflatten(def, doubled) as typeof tree;
    assert.deepEqual(Object.keys(back).sort(), ["b", "layers", "w"]);
    assert.equal(back.b, 6);
    assert.ok(Array.isArray(back.layers));
    assert.equal(back.layers.length, 2);
    assert.equal(back.layers[1]!.a, 8);
    assert.deepEqual((back.w as ad.Tensor).toArray(), [2, 4]);
    assert.deepEqual((back.layers[0]!.a as ad.Tensor).toArray(), [[2]]);
  });

  test("flatten of an array keeps order; a bare leaf is a one-leaf tree", () => {
    const [leaves] = ad.tree.flatten([1, [2, 3], 4]);
    assert.deepEqual(leaves, [1, 2, 3, 4]);
    const [l2, def2] = ad.tree.flatten(ad.tensor([1]));
    assert.equal(l2.length, 1);
    const re = ad.tree.unflatten(def2, [5]);
    assert.equal(re, 5);
  });

  test("tree.map applies to every leaf and keeps the structure", () => {
    const m = ad.tree.map(
      (l: unknown) => (typeof l === "number" ? l + 1 : (l as ad.Tensor).add(1)),
      tree,
    ) as {
      w: ad.Tensor;
      b: number;
      layers: [{ a: ad.Tensor }, { a: number }];
    };
    assert.deepEqual(m.w.toArray(), [2, 3]);
    assert.equal(m.b, 4);
    assert.equal(m.layers[1].a, 5);
    assert.deepEqual(m.layers[0].a.toArray(), [[2]]);
  });
});

describe("§1/§10 random: functional and reproducible", () => {
  test("key and split: default n = 2 returns an array of keys, n given returns n", () => {
    const k = ad.random.key(0);
    const ks = ad.random.split(k);
    assert.ok(Array.isArray(ks));
    assert.equal(ks.length, 2);
    const k3 = ad.random.split(k, 3);
    assert.ok(Array.isArray(k3));
    assert.equal(k3.length, 3);
    const a = ad.random.normal(ks[0]!, [4]).toArray();
    const b = ad.random.normal(ks[1]!, [4]).toArray();
    assert.notDeepEqual(a, b);
  });

  test("same key, same numbers; different seeds, different numbers", () => {
    const a = ad.random.normal(ad.random.key(42), [8]).toArray();
    const b = ad.random.normal(ad.random.key(42), [8]).toArray();
    const c = ad.random.normal(ad.random.key(43), [8]).toArray();
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const s1 = ad.random.split(ad.random.key(7), 2);
    const s2 = ad.random.split(ad.random.key(7), 2);
    assert.deepEqual(ad.random.uniform(s1[1]!, [3]).toArray(), ad.random.uniform(s2[1]!, [3]).toArray());
  });

  test("normal: shape, float32 default, dtype option, moments", () => {
    const x = ad.random.normal(ad.random.key(1), [4000]);
    assert.deepEqual(x.shape, [4000]);
    assert.equal(x.dtype, "float32");
    const v = flat(x.toArray());
    const mean = v.reduce((s, a) => s + a, 0) / v.length;
    const variance = v.reduce((s, a) => s + (a - mean) ** 2, 0) / v.length;
    assert.ok(Math.abs(mean) < 0.08, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.1, `var ${variance}`);
    const d = ad.random.normal(ad.random.key(1), [2, 3], { dtype: "float64" });
    assert.equal(d.dtype, "float64");
    assert.deepEqual(d.shape, [2, 3]);
  });

  test("uniform lies in [0, 1) with mean 1/2", () => {
    const v = flat(ad.random.uniform(ad.random.key(2), [4000]).toArray());
    assert.ok(v.every((a) => a >= 0 && a < 1));
    const mean = v.reduce((s, a) => s + a, 0) / v.length;
    assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
  });

  test("bernoulli(key, p, shape?) as JAX: bool samples with mean p; shape defaults to p's shape", () => {
    const b = ad.random.bernoulli(ad.random.key(3), 0.3, [4000]);
    assert.deepEqual(b.shape, [4000]);
    assert.equal(b.dtype, "bool");
    const v = flat(b.toArray());
    const mean = v.reduce((s, a) => s + a, 0) / v.length;
    assert.ok(Math.abs(mean - 0.3) < 0.04, `mean ${mean}`);
    const bp = ad.random.bernoulli(ad.random.key(3), ad.tensor([0, 1, 0, 1]));
    assert.deepEqual(bp.shape, [4]);
    assert.deepEqual(flat(bp.toArray()), [0, 1, 0, 1]);
  });

  test("categorical(key, logits, {axis?, shape?}) as JAX: int32 class indices", () => {
    const logits = ad.log(ad.tensor([0.1, 0.0, 0.9]));
    const c = ad.random.categorical(ad.random.key(4), logits, { shape: [2000] });
    assert.deepEqual(c.shape, [2000]);
    assert.equal(c.dtype, "int32");
    const v = flat(c.toArray());
    assert.ok(v.every((a) => a === 0 || a === 2));
    const frac2 = v.filter((a) => a === 2).length / v.length;
    assert.ok(Math.abs(frac2 - 0.9) < 0.04, `frac ${frac2}`);
    // batched logits: one draw per row by default (axis -1)
    const rows = ad.log(
      ad.tensor([
        [1, 0, 0],
        [0, 0, 1],
      ]),
    );
    const r = ad.random.categorical(ad.random.key(5), rows);
    assert.deepEqual(r.shape, [2]);
    assert.deepEqual(r.toArray(), [0, 2]);
    // axis 0: one draw per column
    const cols = ad.random.categorical(ad.random.key(5), rows.transpose(), { axis: 0 });
    assert.deepEqual(cols.toArray(), [0, 2]);
  });

  test("gumbel: shape and mean (Euler–Mascheroni constant)", () => {
    const g = ad.random.gumbel(ad.random.key(6), [4000]);
    assert.deepEqual(g.shape, [4000]);
    const v = flat(g.toArray());
    const mean = v.reduce((s, a) => s + a, 0) / v.length;
    assert.ok(Math.abs(mean - 0.5772) < 0.08, `mean ${mean}`);
  });

  test("num() helper sanity (keeps this file's helpers honest)", () => {
    assert.equal(num(ad.scalar(2)), 2);
    assert.equal(num(3), 3);
  });
});
