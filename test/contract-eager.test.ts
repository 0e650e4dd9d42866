/**
 * @file Black-box contract tests for API.md §7 and §10 "Eager": PyTorch-style autograd —
 * requiresGrad/isLeaf/gradFn, backward with accumulation, retainGraph/createGraph,
 * autograd.grad with allowUnused, noGrad/detach, hooks, in-place methods with version counters,
 * InPlaceError and GraphFreedError.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { checks, flat, type T } from "./contract-helpers.js";

const { allNear } = checks(1e-9);

const leaf = (x: unknown, dtype: "float32" | "float64" = "float64") =>
  ad.tensor(x as number[], { dtype, requiresGrad: true });

describe("§7 leaves, gradFn, backward", () => {
  test("requiresGrad, isLeaf, gradFn (operation name or null)", () => {
    const x = leaf([1, 2]);
    assert.equal(x.requiresGrad, true);
    assert.equal(x.isLeaf, true);
    assert.equal(x.gradFn, null);
    const y = x.mul(2);
    assert.equal(y.requiresGrad, true);
    assert.equal(y.isLeaf, false);
    assert.equal(typeof y.gradFn, "string");
    assert.match(String(y.gradFn), /mul/i);
    const c = ad.tensor([1, 2]);
    assert.equal(c.isLeaf, true);
    assert.equal(c.requiresGrad, false);
    assert.equal(c.mul(2).gradFn, null);
    assert.equal(c.mul(2).requiresGrad, false);
    assert.equal(x.grad, null);
  });

  test("backward accumulates (+=) into .grad of every leaf that requires grad", () => {
    const x = leaf([1, 2, 3]);
    const w = leaf([0.5, 0.5, 0.5]);
    const c = ad.tensor([1, 1, 1], { dtype: "float64" });
    ad.sum(ad.mul(ad.mul(x, w), c)).backward();
    allNear(x.grad, [0.5, 0.5, 0.5]);
    allNear(w.grad, [1, 2, 3]);
    assert.equal(c.grad, null);
    ad.sum(ad.square(x)).backward();
    allNear(x.grad, [2.5, 4.5, 6.5]);
    assert.equal(x.grad!.dtype, "float64");
    assert.deepEqual(x.grad!.shape, [3]);
  });

  test("broadcasting in eager backward reduces to the leaf's shape", () => {
    const b = leaf([[1, 2, 3]]);
    ad.sum(ad.add(ad.ones([4, 3], { dtype: "float64" }), b)).backward();
    allNear(b.grad, [[4, 4, 4]]);
    assert.deepEqual(b.grad!.shape, [1, 3]);
  });

  test("a non-scalar y without gradOutput → TransformError; with gradOutput it works", () => {
    const x = leaf([1, 2]);
    const y = ad.mul(x, x);
    assert.throws(() => y.backward(), ad.TransformError);
    const x2 = leaf([1, 2]);
    ad.mul(x2, x2).backward(ad.tensor([1, 10], { dtype: "float64" }));
    allNear(x2.grad, [2, 40]);
  });

  test("a second backward without retainGraph → GraphFreedError; with retainGraph it accumulates", () => {
    const x = leaf([1, 2]);
    const y = ad.sum(ad.exp(x));
    y.backward();
    assert.throws(() => y.backward(), ad.GraphFreedError);
    const x2 = leaf([1, 2]);
    const y2 = ad.sum(ad.exp(x2));
    y2.backward(undefined, { retainGraph: true });
    y2.backward();
    allNear(x2.grad, [2 * Math.E, 2 * Math.exp(2)]);
  });

  test("createGraph: the gradients are themselves differentiable", () => {
    const x = leaf([2]);
    ad.sum(ad.pow(x, 3)).backward(undefined, { createGraph: true });
    const g = x.grad!;
    allNear(g, [12]);
    assert.equal(g.requiresGrad, true);
    x.zeroGrad();
    ad.sum(g).backward();
    allNear(x.grad, [12]);
  });

  test("zeroGrad() sets .grad to null", () => {
    const x = leaf([1]);
    ad.sum(x).backward();
    assert.ok(x.grad !== null);
    x.zeroGrad();
    assert.equal(x.grad, null);
  });

  test("float32 leaves get float32 gradients; a graph with a 0-d leaf", () => {
    const x = ad.scalar(3, { requiresGrad: true });
    ad.mul(x, x).backward();
    assert.equal(x.grad!.dtype, "float32");
    assert.deepEqual(x.grad!.shape, []);
    assert.equal(x.grad!.item(), 6);
  });
});

describe("§7/§10 autograd.grad", () => {
  test("outputs and inputs; gradOutputs; returns an array per input", () => {
    const x = leaf([1, 2]);
    const y = leaf([3]);
    const out = ad.sum(ad.mul(x, y));
    const gs = ad.autograd.grad(out, [x, y]);
    assert.ok(Array.isArray(gs));
    allNear(gs[0], [3, 3]);
    allNear(gs[1], [3]);
    assert.equal(x.grad, null, "autograd.grad does not accumulate into .grad");
    const z = ad.mul(x, 2);
    const [gz] = ad.autograd.grad([z], [x], { gradOutputs: [ad.tensor([1, 5], { dtype: "float64" })] });
    allNear(gz, [2, 10]);
  });

  test("frees the graph unless retainGraph", () => {
    const x = leaf([1, 2]);
    const out = ad.sum(ad.sin(x));
    ad.autograd.grad(out, [x]);
    assert.throws(() => ad.autograd.grad(out, [x]), ad.GraphFreedError);
    const out2 = ad.sum(ad.sin(x));
    ad.autograd.grad(out2, [x], { retainGraph: true });
    allNear(ad.autograd.grad(out2, [x])[0], [Math.cos(1), Math.cos(2)]);
  });

  test("createGraph gives differentiable gradients (second derivative)", () => {
    const x = leaf([0.5]);
    const [g] = ad.autograd.grad(ad.sum(ad.pow(x, 3)), [x], { createGraph: true });
    allNear(g, [0.75]);
    const [h] = ad.autograd.grad(ad.sum(g!), [x]);
    allNear(h, [3]);
  });

  test("allowUnused gives null for an unused input", () => {
    const x = leaf([1]);
    const u = leaf([1]);
    const gs = ad.autograd.grad(ad.sum(ad.mul(x, 2)), [x, u], { allowUnused: true });
    allNear(gs[0], [2]);
    assert.equal(gs[1], null);
  });
});

describe("§7 noGrad, detach, hooks", () => {
  test("noGrad(fn): nothing inside is recorded, and fn's result is returned", () => {
    const x = leaf([1, 2]);
    const y = ad.noGrad(() => ad.mul(x, 3));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    allNear(y, [3, 6]);
  });

  test("detach(): same values, not recorded", () => {
    const x = leaf([1, 2]);
    const d = ad.mul(x, 2).detach();
    assert.equal(d.requiresGrad, false);
    assert.equal(d.isLeaf, true);
    allNear(d, [2, 4]);
    const z = ad.sum(ad.mul(x, d));
    z.backward();
    allNear(x.grad, [2, 4]);
  });

  test("registerHook(fn): fn(grad) sees the gradient of a leaf and may replace it", () => {
    const x = leaf([1, 2]);
    const seen: number[][] = [];
    x.registerHook((g: T) => {
      seen.push(flat(g));
      return ad.mul(g, 10);
    });
    ad.sum(ad.mul(x, 3)).backward();
    assert.deepEqual(seen, [[3, 3]]);
    allNear(x.grad, [30, 30]);
  });

  test("registerHook returns a remover: call it or its remove() (PyTorch's handle)", () => {
    const x = leaf([1, 2]);
    const h = x.registerHook((g: T) => ad.mul(g, 10));
    h.remove();
    ad.sum(x).backward();
    allNear(x.grad, [1, 1]);
    const y = leaf([1]);
    const h2 = y.registerHook((g: T) => ad.mul(g, 10));
    h2();
    ad.sum(y).backward();
    allNear(y.grad, [1]);
  });

  test("a hook on a leaf used twice sees the summed gradient once", () => {
    const x = leaf([1]);
    const seen: number[][] = [];
    x.registerHook((g: T) => {
      seen.push(flat(g));
    });
    ad.sum(ad.add(ad.mul(x, 2), ad.mul(x, 3))).backward();
    assert.deepEqual(seen, [[5]]);
  });

  test("a hook on an intermediate changes what flows to the leaves; returning nothing keeps it", () => {
    const x = leaf([1, 2]);
    const h = ad.mul(x, 2);
    let observed: number[] = [];
    h.registerHook((g: T) => {
      observed = flat(g);
      return undefined;
    });
    const h2 = ad.mul(h, 1);
    h2.registerHook((g: T) => ad.mul(g, -1));
    ad.sum(ad.mul(h2, 5)).backward();
    assert.deepEqual(observed, [-5, -5]);
    allNear(x.grad, [-10, -10]);
  });
});

describe("§7/§10 in-place methods and version counters", () => {
  test("add_ sub_ mul_ div_ copy_ fill_ zero_ mutate (and return the tensor itself)", () => {
    const t = ad.tensor([1, 2, 3], { dtype: "float64" });
    const r = t.add_(1);
    assert.equal(r, t);
    allNear(t, [2, 3, 4]);
    t.sub_(ad.tensor([1, 1, 1], { dtype: "float64" }));
    allNear(t, [1, 2, 3]);
    t.mul_(2);
    allNear(t, [2, 4, 6]);
    t.div_(2);
    allNear(t, [1, 2, 3]);
    t.copy_(ad.tensor([7, 8, 9], { dtype: "float64" }));
    allNear(t, [7, 8, 9]);
    t.fill_(4);
    allNear(t, [4, 4, 4]);
    t.zero_();
    allNear(t, [0, 0, 0]);
    // broadcasting source
    const m = ad.zeros([2, 2]);
    m.add_(ad.tensor([1, 2]));
    assert.deepEqual(m.toArray(), [
      [1, 2],
      [1, 2],
    ]);
  });

  test("other tensors built from a mutated one are unaffected (values are immutable otherwise)", () => {
    const t = ad.tensor([1, 2]);
    const u = t.mul(1);
    const v = t.reshape([2, 1]);
    t.fill_(0);
    assert.deepEqual(u.toArray(), [1, 2]);
    assert.deepEqual(v.toArray(), [[1], [2]]);
  });

  test("backward through an op whose saved input was modified afterwards → InPlaceError naming it", () => {
    const x = leaf([0.5, 1]);
    const a = ad.sigmoid(x);
    a.mul_(2);
    assert.throws(
      () => ad.sum(a).backward(),
      (e: unknown) => e instanceof ad.InPlaceError && /sigmoid/.test((e as Error).message),
    );
    const y = leaf([1, 2]);
    const e = ad.exp(y);
    const z = ad.sum(ad.mul(e, e));
    e.add_(1);
    assert.throws(() => z.backward(), ad.InPlaceError);
  });

  test("modifying a leaf that requires grad outside noGrad throws InPlaceError at once; inside noGrad it works", () => {
    const w = leaf([1, 2]);
    assert.throws(() => w.add_(1), ad.InPlaceError);
    assert.throws(() => w.zero_(), ad.InPlaceError);
    ad.sum(ad.square(w)).backward();
    ad.noGrad(() => w.sub_(ad.mul(w.grad!, 0.25)));
    allNear(w, [0.5, 1]);
    assert.equal(w.requiresGrad, true);
    assert.equal(w.isLeaf, true);
  });

  test("in-place ops on non-leaves are recorded and differentiable", () => {
    const x = leaf([1, 2]);
    const y = ad.mul(x, 2);
    y.mul_(x); // y = 2x²
    y.add_(x); // y = 2x² + x
    ad.sum(y).backward();
    allNear(x.grad, [5, 9]);

    const a = leaf([3]);
    const b = ad.mul(a, 1);
    b.div_(a.add(1)); // b = a / (a + 1); derivative 1/(a+1)²
    ad.sum(b).backward();
    allNear(a.grad, [1 / 16]);

    const p = leaf([1, 2]);
    const q = ad.mul(p, 5);
    q.copy_(ad.mul(p, 3)); // gradient flows to the source only
    ad.sum(q).backward();
    allNear(p.grad, [3, 3]);

    const r = leaf([1, 2]);
    const s = ad.mul(r, 5);
    s.fill_(1); // derivative cut
    ad.sum(ad.add(s, r)).backward();
    allNear(r.grad, [1, 1]);

    const k = leaf([1, 2]);
    const l = ad.exp(k);
    l.zero_();
    ad.sum(ad.add(l, ad.mul(k, 2))).backward();
    allNear(k.grad, [2, 2]);
  });

  test("in-place then later use sees the new value in the gradient (sub_)", () => {
    const x = leaf([2]);
    const y = ad.mul(x, x); // 4
    y.sub_(ad.mul(x, 3)); // x² − 3x ; derivative 2x − 3 = 1
    ad.sum(ad.mul(y, y)).backward(); // d (x²−3x)² = 2(x²−3x)(2x−3) = 2·(−2)·1
    allNear(x.grad, [-4]);
  });
});
