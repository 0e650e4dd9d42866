/**
 * @file Pytrees (API §1, §10): ad.tree.flatten/unflatten/leaves/map on nested objects and arrays
 * with tensor and number leaves, null/undefined as empty subtrees, structure mismatches, and
 * `ad.grad` returning exactly the structure of its argument.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

const close = (a: number, b: number, tol = 1e-6, what = ""): void =>
  assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${what}: got ${a}, expected ${b}`);

/** Replace every leaf by a tag describing it, to compare structures with deepEqual. */
function skeleton(t: unknown): unknown {
  if (t === null || t === undefined) return t;
  if (t instanceof ad.Tensor) return `Tensor${JSON.stringify(t.shape)}`;
  if (typeof t === "number") return "number";
  if (Array.isArray(t)) return t.map(skeleton);
  if (typeof t === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(t)) o[k] = skeleton(v);
    return o;
  }
  return typeof t;
}

describe("tree.flatten / unflatten / leaves", () => {
  const w = ad.tensor([
    [1, 2],
    [3, 4],
  ]);
  const b = ad.tensor([5, 6]);
  const c = ad.scalar(7);
  const tree = { w, layers: [{ b, s: 2 }, [3, c]], e: 5 };

  test("leaves come depth first, object keys in insertion order", () => {
    const [leaves] = ad.tree.flatten(tree);
    assert.equal(leaves.length, 6);
    assert.deepEqual(leaves, [w, b, 2, 3, c, 5]);
    assert.equal(leaves[0], w, "tensors are the same objects, not copies");
    assert.deepEqual(ad.tree.leaves(tree), leaves);
    assert.deepEqual(ad.tree.leaves({ z: 1, a: 2 }), [1, 2], "insertion order, not sorted");
    assert.deepEqual(ad.tree.leaves([1, [2, [3, [4]]], 5]), [1, 2, 3, 4, 5]);
  });

  test("a single leaf is its own tree", () => {
    const [leaves, def] = ad.tree.flatten(b);
    assert.deepEqual(leaves, [b]);
    assert.equal(ad.tree.unflatten(def, [c]), c);
    const [nl, nd] = ad.tree.flatten(3);
    assert.deepEqual(nl, [3]);
    assert.equal(ad.tree.unflatten(nd, [4]), 4);
  });

  test("unflatten(flatten(t)) rebuilds the same nesting with the same leaves", () => {
    const [leaves, def] = ad.tree.flatten(tree);
    const back = ad.tree.unflatten<typeof tree>(def, leaves);
    assert.notEqual(back, tree, "a new container");
    assert.deepEqual(skeleton(back), skeleton(tree));
    assert.equal(back.w, w);
    assert.equal((back.layers[0] as { b: ad.Tensor }).b, b);
    assert.equal((back.layers[1] as [number, ad.Tensor])[1], c);
    assert.equal(back.e, 5);
    assert.ok(Array.isArray(back.layers));
    assert.ok(Array.isArray(back.layers[1]));
  });

  test("unflatten with new leaves puts them in flatten order", () => {
    const [leaves, def] = ad.tree.flatten({ a: 1, b: [2, 3], c: { d: 4 } });
    const r = ad.tree.unflatten(
      def,
      leaves.map((x) => (x as number) * 10),
    );
    assert.deepEqual(r, { a: 10, b: [20, 30], c: { d: 40 } });
  });

  test("null and undefined are empty subtrees: no leaves, kept on unflatten", () => {
    const t = { a: null, b: [undefined, 1, null], c: { d: undefined, e: 2 } };
    const [leaves, def] = ad.tree.flatten(t);
    assert.deepEqual(leaves, [1, 2]);
    const back = ad.tree.unflatten<typeof t>(def, [10, 20]);
    assert.deepEqual(back, { a: null, b: [undefined, 10, null], c: { d: undefined, e: 20 } });
    assert.equal(back.a, null);
    assert.equal(back.b[0], undefined);
    assert.ok("d" in back.c, "the key of an undefined subtree is kept");
    assert.deepEqual(ad.tree.leaves(null), []);
    assert.deepEqual(ad.tree.leaves(undefined), []);
  });

  test("empty containers have no leaves and survive a round trip", () => {
    const t = { a: [], b: {}, c: [[], [{}]] };
    const [leaves, def] = ad.tree.flatten(t);
    assert.deepEqual(leaves, []);
    assert.deepEqual(ad.tree.unflatten(def, []), t);
  });

  test("unflatten with the wrong number of leaves throws a typed error", () => {
    const [, def] = ad.tree.flatten([1, { a: 2 }]);
    assert.throws(() => ad.tree.unflatten(def, [1]), ad.AdError);
    assert.throws(() => ad.tree.unflatten(def, [1, 2, 3]), ad.AdError);
  });
});

describe("tree.map", () => {
  test("maps every leaf, keeping the structure", () => {
    const r = ad.tree.map((x: number) => x * 2, { a: 1, b: [2, { c: 3 }], n: null });
    assert.deepEqual(r, { a: 2, b: [4, { c: 6 }], n: null });
  });

  test("over tensor leaves", () => {
    const t = { w: ad.tensor([1, 2]), b: [ad.scalar(3)] };
    const r = ad.tree.map((x: ad.Tensor) => x.mul(10), t) as typeof t;
    assert.deepEqual(r.w.toArray(), [10, 20]);
    assert.equal(r.b[0]!.item(), 30);
  });

  test("over two trees of the same structure: leaves are paired in order", () => {
    const p = { w: ad.tensor([1, 2]), b: [3, ad.scalar(4)] };
    const g = { w: ad.tensor([10, 20]), b: [30, ad.scalar(40)] };
    const r = ad.tree.map((x: ad.Tensor | number, y: ad.Tensor | number) => ad.sub(x, ad.mul(0.1, y)), p, g);
    const out = r as { w: ad.Tensor; b: [ad.Tensor, ad.Tensor] };
    assert.deepEqual(skeleton(out), { w: "Tensor[2]", b: ["Tensor[]", "Tensor[]"] });
    const wv = out.w.toArray() as number[];
    close(wv[0]!, 0);
    close(wv[1]!, 0);
    close(out.b[0].item(), 0, 1e-12);
    close(out.b[1].item(), 0);
    const three = ad.tree.map(
      (x: number, y: number, z: number) => x + y + z,
      [1, [2]],
      [10, [20]],
      [100, [200]],
    );
    assert.deepEqual(three, [111, [222]]);
  });

  test("structure mismatch throws a typed error", () => {
    const f = (x: number, y: number) => x + y;
    assert.throws(() => ad.tree.map(f, { a: 1, b: [2, 3] }, { a: 10, b: [20] }), ad.AdError);
    assert.throws(() => ad.tree.map(f, { a: 1, b: 2 }, { a: 10, c: 20 }), ad.AdError);
    assert.throws(() => ad.tree.map(f, { a: 1, b: null }, { a: 10, b: 2 }), ad.AdError);
    assert.throws(() => ad.tree.map(f, [1, 2], { 0: 1, 1: 2 }), ad.AdError);
    assert.throws(() => ad.tree.map(f, [1, [2]], [1, 2]), ad.AdError);
  });
});

describe("ad.grad keeps the structure of its argument", () => {
  test("nested object with tensor and number leaves and null", () => {
    const p = {
      w: ad.tensor([
        [1, 2],
        [3, 4],
      ]),
      layers: [{ b: ad.tensor([1, -1]), scale: 2 }, [0.5, ad.scalar(3)]],
      n: null,
    };
    type P = typeof p;
    const f = (q: P) => {
      const l0 = q.layers[0] as { b: ad.Tensor; scale: number };
      const l1 = q.layers[1] as [number, ad.Tensor];
      // sum(w²) + scale·sum(b) + l1[0]·l1[1]
      return ad.add(ad.add(ad.sum(ad.square(q.w)), ad.mul(l0.scale, ad.sum(l0.b))), ad.mul(l1[0], l1[1]));
    };
    const g = ad.grad(f)(p) as P;
    assert.deepEqual(skeleton(g), skeleton(p));
    assert.deepEqual(g.w.toArray(), [
      [2, 4],
      [6, 8],
    ]);
    const g0 = g.layers[0] as { b: ad.Tensor; scale: number };
    const g1 = g.layers[1] as [number, ad.Tensor];
    assert.deepEqual(g0.b.toArray(), [2, 2]);
    assert.equal(typeof g0.scale, "number", "a number leaf gets a number gradient");
    close(g0.scale, 0);
    assert.equal(typeof g1[0], "number");
    close(g1[0], 3);
    assert.ok(g1[1] instanceof ad.Tensor);
    assert.deepEqual(g1[1].shape, []);
    close(g1[1].item(), 0.5);
    assert.equal(g.n, null);
    assert.equal(g.w.dtype, "float32");
  });

  test("nested arrays", () => {
    const g = ad.grad((xs: [number, [number, ad.Tensor]]) =>
      ad.add(ad.mul(xs[0], xs[1][0]), ad.sum(ad.mul(xs[1][1], xs[1][1]))),
    )([2, [3, ad.tensor([1, 2])]]) as [number, [number, ad.Tensor]];
    assert.ok(Array.isArray(g));
    assert.equal(g.length, 2);
    assert.ok(Array.isArray(g[1]));
    assert.equal(g[1].length, 2);
    close(g[0], 3);
    close(g[1][0], 2);
    assert.deepEqual(g[1][1].toArray(), [2, 4]);
  });

  test("leaves that do not affect the output get zero gradients of their own shape", () => {
    const p = { used: ad.tensor([1, 2]), unused: ad.zeros([2, 3]), k: 4, nested: { u: [ad.scalar(1)] } };
    const g = ad.grad((q: typeof p) => ad.sum(q.used))(p) as typeof p;
    assert.deepEqual(skeleton(g), skeleton(p));
    assert.deepEqual(g.unused.toArray(), [
      [0, 0, 0],
      [0, 0, 0],
    ]);
    assert.equal(g.k, 0);
    assert.equal(g.nested.u[0]!.item(), 0);
  });

  test("valueAndGrad and argnums arrays return gradients shaped like each argument", () => {
    const f = (a: { x: ad.Tensor }, b: [number, ad.Tensor]) => ad.add(ad.sum(ad.mul(a.x, b[1])), b[0]);
    const a = { x: ad.tensor([1, 2]) };
    const b: [number, ad.Tensor] = [5, ad.tensor([3, 4])];
    const [v, ga] = ad.valueAndGrad(f)(a, b) as [ad.Tensor, { x: ad.Tensor }];
    close(v.item(), 16);
    assert.deepEqual(skeleton(ga), skeleton(a));
    assert.deepEqual(ga.x.toArray(), [3, 4]);
    const gs = ad.grad(f, { argnums: [0, 1] })(a, b) as [{ x: ad.Tensor }, [number, ad.Tensor]];
    assert.deepEqual(skeleton(gs), [skeleton(a), skeleton(b)]);
    assert.deepEqual(gs[0].x.toArray(), [3, 4]);
    close(gs[1][0], 1);
    assert.deepEqual(gs[1][1].toArray(), [1, 2]);
  });

  test("gradients map back onto the parameters with tree.map (an SGD step)", () => {
    const params = { w: ad.tensor([1, 2]), b: 0.5 };
    const loss = (p: typeof params) => ad.sum(ad.square(ad.add(p.w, p.b)));
    const g = ad.grad(loss)(params);
    const next = ad.tree.map(
      (p: ad.Tensor | number, d: ad.Tensor | number) => ad.sub(p, ad.mul(0.1, d)),
      params,
      g,
    ) as { w: ad.Tensor; b: ad.Tensor };
    // d/dw = 2(w + b) = [3, 5]; d/db = sum = 8
    const w = next.w.toArray() as number[];
    close(w[0]!, 0.7);
    close(w[1]!, 1.5);
    close(next.b.item(), -0.3, 1e-12);
  });
});
