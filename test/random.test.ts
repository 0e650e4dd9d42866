/**
 * @file ad.random (API §1, §10): reproducible keys, split, JAX-compatible uniform bits, the
 * moments of every distribution on large samples, dtype options and typed errors.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

const R = ad.random;

/** |a - b| <= tol. */
const near = (a: number, b: number, tol: number, what = ""): void =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: got ${a}, expected ${b} ± ${tol}`);

function moments(t: ad.Tensor): { mean: number; variance: number; min: number; max: number } {
  const d = t.data();
  let s = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of d) {
    s += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = s / d.length;
  let q = 0;
  for (const v of d) q += (v - mean) ** 2;
  return { mean, variance: q / d.length, min, max };
}

const same = (a: ad.Tensor, b: ad.Tensor): boolean =>
  a.size === b.size && Array.from(a.data()).every((v, i) => Object.is(v, b.data()[i]));

describe("keys", () => {
  test("key(seed) is reproducible data: int32 [2], as jax.random.PRNGKey", () => {
    const k = R.key(0);
    assert.ok(k instanceof ad.Tensor);
    assert.equal(k.dtype, "int32");
    assert.deepEqual(k.shape, [2]);
    assert.deepEqual(k.toArray(), [0, 0]);
    assert.deepEqual(R.key(42).toArray(), [0, 42]);
    assert.deepEqual(R.key(42).toArray(), R.key(42).toArray());
    assert.notDeepEqual(R.key(1).toArray(), R.key(2).toArray());
    // PRNGKey(-1) = [0xffffffff, 0xffffffff] as uint32, i.e. [-1, -1] as int32
    assert.deepEqual(R.key(-1).toArray(), [-1, -1]);
  });

  test("split(key, n) returns an array of n keys, default 2, as jax.random.split", () => {
    const k = R.key(0);
    const two = R.split(k);
    assert.ok(Array.isArray(two));
    assert.equal(two.length, 2);
    for (const s of two) {
      assert.ok(s instanceof ad.Tensor);
      assert.equal(s.dtype, "int32");
      assert.deepEqual(s.shape, [2]);
    }
    // jax.random.split(jax.random.key(0)) in JAX >= 0.5 (partitionable threefry, its default):
    // [[1797259609, 2579123966], [928981903, 3453687069]] (uint32)
    const u32 = (t: ad.Tensor) => Array.from(t.data() as Int32Array, (v) => v >>> 0);
    assert.deepEqual(two.map(u32), [
      [1797259609, 2579123966],
      [928981903, 3453687069],
    ]);
    const five = R.split(k, 5);
    assert.equal(five.length, 5);
    const distinct = new Set(five.map((s) => s.toArray().toString()));
    assert.equal(distinct.size, 5, "all keys differ");
    assert.deepEqual(R.split(k, 1).length, 1);
    assert.deepEqual(
      R.split(k, 3).map((s) => s.toArray()),
      R.split(R.key(0), 3).map((s) => s.toArray()),
      "split is deterministic",
    );
    assert.ok(!same(two[0]!, k) && !same(two[1]!, k), "split keys differ from their parent");
  });
});

describe("reproducibility", () => {
  test("the same key gives the same numbers, different keys different numbers", () => {
    const k = R.key(7);
    const draws: Array<(key: ad.Tensor) => ad.Tensor> = [
      (key) => R.uniform(key, [50]),
      (key) => R.normal(key, [50]),
      (key) => R.gumbel(key, [50]),
      (key) => R.bernoulli(key, 0.5, [50]),
      (key) => R.categorical(key, ad.zeros([8]), { shape: [50] }),
    ];
    for (const draw of draws) {
      assert.ok(same(draw(k), draw(R.key(7))), "same key, same numbers");
      const [k1, k2] = R.split(k);
      assert.ok(!same(draw(k1!), draw(k2!)), "different keys, different numbers");
      assert.ok(!same(draw(R.key(7)), draw(R.key(8))), "different seeds, different numbers");
    }
  });

  test("ad.random.uniform reproduces jax.random.uniform (threefry, JAX >= 0.5 layout)", () => {
    // jax.random.uniform(jax.random.key(0), (4,)) with JAX's default jax_threefry_partitionable=True.
    const u = R.uniform(R.key(0), [4]);
    assert.equal(u.dtype, "float32");
    const want = [0.947667, 0.9785799, 0.33229148, 0.46866846];
    Array.from(u.data()).forEach((v, i) => near(v, want[i]!, 1e-6, `u[${i}]`));
    // Per-element counters: a scalar draw is the first element of the [4] draw.
    const s = R.uniform(R.key(0));
    assert.deepEqual(s.shape, []);
    near(s.item(), 0.947667, 1e-6, "scalar");
  });

  test("shapes: [] by default, nested shapes, size 0", () => {
    const k = R.key(3);
    assert.deepEqual(R.uniform(k).shape, []);
    assert.deepEqual(R.normal(k).shape, []);
    assert.deepEqual(R.normal(k, [2, 3, 4]).shape, [2, 3, 4]);
    assert.deepEqual(R.gumbel(k, [0, 3]).shape, [0, 3]);
    assert.deepEqual(R.uniform(k, [3, 2]).data().length, 6);
  });
});

describe("distributions (10^5 samples)", () => {
  const N = 100_000;

  test("uniform: in [0, 1), mean ≈ 1/2, variance ≈ 1/12", () => {
    const m = moments(R.uniform(R.key(1), [N]));
    assert.ok(m.min >= 0, `min ${m.min}`);
    assert.ok(m.max < 1, `max ${m.max}`);
    // standard error of the mean: sqrt(1/12 / N) ≈ 0.0009
    near(m.mean, 0.5, 0.005, "mean");
    near(m.variance, 1 / 12, 0.002, "variance");
  });

  test("uniform with minval/maxval", () => {
    const m = moments(R.uniform(R.key(11), [N], { minval: -2, maxval: 4 }));
    assert.ok(m.min >= -2 && m.max < 4, `range [${m.min}, ${m.max}]`);
    near(m.mean, 1, 0.03, "mean");
    near(m.variance, 3, 0.06, "variance");
  });

  test("normal: mean ≈ 0, std ≈ 1, symmetric tails", () => {
    const z = R.normal(R.key(2), [N]);
    assert.equal(z.dtype, "float32");
    const m = moments(z);
    near(m.mean, 0, 0.015, "mean");
    near(Math.sqrt(m.variance), 1, 0.015, "std");
    assert.ok(m.min > -7 && m.max < 7, "finite, plausible extremes");
    // P(|z| < 1) ≈ 0.6827
    let inside = 0;
    for (const v of z.data()) if (Math.abs(v) < 1) inside++;
    near(inside / N, 0.6827, 0.01, "P(|z| < 1)");
  });

  test("gumbel: mean ≈ Euler–Mascheroni 0.5772, variance ≈ π²/6", () => {
    const m = moments(R.gumbel(R.key(3), [N]));
    near(m.mean, 0.5772156649, 0.02, "mean");
    near(m.variance, Math.PI ** 2 / 6, 0.05, "variance");
    assert.ok(Number.isFinite(m.min) && Number.isFinite(m.max));
  });

  test("bernoulli: bool, frequency ≈ p (scalar p and a tensor of p)", () => {
    for (const p of [0.3, 0.9]) {
      const b = R.bernoulli(R.key(4), p, [N]);
      assert.equal(b.dtype, "bool");
      assert.deepEqual(b.shape, [N]);
      near(ad.sum(b).item() / N, p, 0.01, `p = ${p}`);
    }
    const ps = ad.tensor([0, 0.25, 1]);
    const b = R.bernoulli(R.key(5), ps, [N / 10, 3]);
    assert.deepEqual(b.shape, [N / 10, 3]);
    const freq = ad.mean(b, { axis: 0 }).toArray() as number[];
    near(freq[0]!, 0, 0, "p = 0");
    near(freq[1]!, 0.25, 0.02, "p = 0.25");
    near(freq[2]!, 1, 0, "p = 1");
    assert.deepEqual(R.bernoulli(R.key(5), ps).shape, [3], "shape defaults to p's shape");
  });

  test("categorical: int32 samples with frequencies ≈ softmax(logits) (10^4 samples)", () => {
    const logits = ad.tensor([1, 0, -1, 2]);
    const n = 10_000;
    const c = R.categorical(R.key(6), logits, { shape: [n] });
    assert.equal(c.dtype, "int32");
    assert.deepEqual(c.shape, [n]);
    const counts = [0, 0, 0, 0];
    for (const v of c.data()) {
      assert.ok(v >= 0 && v < 4);
      counts[v]! += 1;
    }
    const p = ad.softmax(logits).toArray() as number[];
    counts.forEach((k, i) => near(k / n, p[i]!, 0.02, `class ${i}`));
  });

  test("categorical: batch of logits along an axis", () => {
    const logits = ad.tensor([
      [0, 100, 0],
      [100, 0, 0],
    ]);
    assert.deepEqual(R.categorical(R.key(0), logits).toArray(), [1, 0]);
    const t = R.categorical(R.key(0), logits.transpose(), { axis: 0 });
    assert.deepEqual(t.toArray(), [1, 0]);
    assert.deepEqual(R.categorical(R.key(0), logits, { shape: [5, 2] }).shape, [5, 2]);
    assert.equal(R.categorical(R.key(0), ad.tensor([0, 0, 30])).item(), 2);
  });
});

describe("dtypes and errors", () => {
  test("dtype float64 option", () => {
    const u = R.uniform(R.key(9), [1000], { dtype: "float64" });
    assert.equal(u.dtype, "float64");
    assert.ok(u.data() instanceof Float64Array);
    const m = moments(u);
    assert.ok(m.min >= 0 && m.max < 1);
    // float64 draws use more than float32's 23 mantissa bits
    assert.ok(
      Array.from(u.data()).some((v) => v * 2 ** 23 !== Math.floor(v * 2 ** 23)),
      "more than 23 bits of resolution",
    );
    assert.equal(R.normal(R.key(9), [3], { dtype: "float64" }).dtype, "float64");
    assert.equal(R.gumbel(R.key(9), [3], { dtype: "float64" }).dtype, "float64");
    assert.equal(R.uniform(R.key(9), [3]).dtype, "float32", "float32 by default");
  });

  test("bad seeds throw DTypeError", () => {
    assert.throws(() => R.key(1.5), ad.DTypeError);
    assert.throws(() => R.key(Number.NaN), ad.DTypeError);
    assert.throws(() => R.key(Number.POSITIVE_INFINITY), ad.DTypeError);
    assert.throws(() => R.key("0" as unknown as number), ad.DTypeError);
  });

  test("bad shapes throw ShapeError", () => {
    const k = R.key(0);
    assert.throws(() => R.uniform(k, [-1]), ad.ShapeError);
    assert.throws(() => R.normal(k, [1.5]), ad.ShapeError);
    assert.throws(() => R.gumbel(k, [2, -3]), ad.ShapeError);
    assert.throws(() => R.bernoulli(k, ad.tensor([0.1, 0.2, 0.3]), [2]), ad.ShapeError);
    assert.throws(() => R.categorical(k, ad.scalar(1)), ad.ShapeError);
    assert.throws(() => R.categorical(k, ad.zeros([2, 3]), { shape: [4] }), ad.ShapeError);
    assert.throws(() => R.split(k, 0), ad.ShapeError);
    assert.throws(() => R.split(k, 1.5), ad.ShapeError);
  });

  test("a number instead of a shape array throws a typed error", () => {
    const k = R.key(0);
    const bad = 3 as unknown as number[];
    assert.throws(() => R.uniform(k, bad), ad.AdError);
    assert.throws(() => R.normal(k, bad), ad.AdError);
    assert.throws(() => R.gumbel(k, bad), ad.AdError);
  });

  test("non-float dtypes and malformed keys throw typed errors", () => {
    const k = R.key(0);
    assert.throws(() => R.normal(k, [2], { dtype: "int32" }), ad.DTypeError);
    assert.throws(() => R.uniform(k, [2], { dtype: "bool" }), ad.DTypeError);
    assert.throws(() => R.uniform(ad.tensor([1, 2, 3], { dtype: "int32" }), [2]), ad.AdError);
    assert.throws(() => R.uniform(ad.tensor([1, 2]), [2]), ad.AdError);
    assert.throws(() => R.split(ad.tensor([1, 2]), 2), ad.AdError);
  });
});
