/**
 * @file Values (API §1, §10): creating and reading tensors, dtypes and promotion with weak JS
 * numbers, NumPy broadcasting, method forms, and the semantics of shape ops, reductions, linear
 * algebra and rounding compared with NumPy/PyTorch (expected values computed by hand or by a
 * brute-force reference in this file).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

// ---------------------------------------------------------------- helpers

type Nested = number | boolean | Nested[];

/** Shape of a rectangular nested array. */
function shapeOf(x: Nested): number[] {
  const s: number[] = [];
  let d: Nested = x;
  while (Array.isArray(d)) {
    s.push(d.length);
    if (d.length === 0) break;
    d = d[0]!;
  }
  return s;
}

function flat(x: Nested): number[] {
  if (Array.isArray(x)) return x.flatMap(flat);
  return [typeof x === "boolean" ? (x ? 1 : 0) : x];
}

/** `actual` has the shape of `expected` and every entry within atol + rtol·|expected|. */
function assertClose(actual: ad.Tensor, expected: Nested, tol = 1e-6, what = ""): void {
  assert.deepEqual(actual.shape, shapeOf(expected), `${what}: shape`);
  const a = Array.from(actual.data());
  const e = flat(expected);
  assert.equal(a.length, e.length, `${what}: size`);
  a.forEach((v, i) => {
    const w = e[i]!;
    if (Number.isNaN(w)) assert.ok(Number.isNaN(v), `${what}[${i}]: ${v} vs NaN`);
    else assert.ok(Math.abs(v - w) <= tol * (1 + Math.abs(w)), `${what}[${i}]: got ${v}, expected ${w}`);
  });
}

const close = (a: number, b: number, tol = 1e-6, what = ""): void =>
  assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${what}: got ${a}, expected ${b}`);

/** True when `msg` names `shape` as "[2, 3]", "[2,3]" or "(2, 3)". */
function namesShape(msg: string, shape: readonly number[]): boolean {
  const inner = shape.join(",\\s*");
  return new RegExp(`[\\[(]${inner}[\\])]`).test(msg);
}

/** Asserts `f` throws `type` and that the message names every shape in `shapes`. */
function throwsNaming(f: () => unknown, type: typeof ad.AdError, shapes: number[][]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    assert.ok(e instanceof ad.AdError);
    for (const s of shapes)
      assert.ok(namesShape((e as Error).message, s), `message "${(e as Error).message}" should name [${s}]`);
    return true;
  });
}

/** Deterministic small integers (exact in every float dtype), `n` of them. */
function ints(n: number, seed = 1): number[] {
  return Array.from({ length: n }, (_, i) => ((i * 7 + seed * 3) % 11) - 5);
}

/** A float64 tensor of `shape` filled with `ints`. */
function seqT(shape: number[], seed = 1): ad.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return ad.tensor(new Float64Array(ints(n, seed)), { shape });
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** Brute-force einsum with an explicit output: sums over every assignment of the labels. */
function refEinsum(spec: string, ...xs: ad.Tensor[]): { shape: number[]; data: number[] } {
  const [lhs, out] = spec.split("->") as [string, string];
  const ins = lhs.split(",");
  const size = new Map<string, number>();
  ins.forEach((s, k) => [...s].forEach((l, i) => size.set(l, xs[k]!.shape[i]!)));
  const labels = [...size.keys()];
  const outShape = [...out].map((l) => size.get(l)!);
  const outStr = stridesOf(outShape);
  const data = new Array<number>(outShape.reduce((a, b) => a * b, 1)).fill(0);
  const vals = xs.map((x) => Array.from(x.data()));
  const strs = xs.map((x) => stridesOf(x.shape));
  const idx = new Map<string, number>();
  const rec = (j: number): void => {
    if (j === labels.length) {
      let p = 1;
      ins.forEach((s, k) => {
        let off = 0;
        [...s].forEach((l, i) => (off += idx.get(l)! * strs[k]![i]!));
        p *= vals[k]![off]!;
      });
      let o = 0;
      [...out].forEach((l, i) => (o += idx.get(l)! * outStr[i]!));
      data[o]! += p;
      return;
    }
    const l = labels[j]!;
    for (let v = 0; v < size.get(l)!; v++) {
      idx.set(l, v);
      rec(j + 1);
    }
  };
  rec(0);
  return { shape: outShape, data };
}

const i32 = (x: Nested): ad.Tensor => ad.tensor(x as number[], { dtype: "int32" });
const f64 = (x: Nested): ad.Tensor => ad.tensor(x as number[], { dtype: "float64" });

// ---------------------------------------------------------------- creating

describe("ad.tensor", () => {
  test("from a number: a 0-d float32 tensor", () => {
    const t = ad.tensor(2.5);
    assert.deepEqual(t.shape, []);
    assert.equal(t.dtype, "float32");
    assert.equal(t.size, 1);
    assert.equal(t.ndim, 0);
    assert.equal(t.toArray(), 2.5);
    assert.equal(ad.tensor(0.1).item(), Math.fround(0.1), "stored in float32");
  });

  test("from nested arrays: shape inferred, float32 by default, row-major", () => {
    const t = ad.tensor([
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
    ]);
    assert.deepEqual(t.shape, [1, 2, 3]);
    assert.equal(t.dtype, "float32");
    assert.ok(t.data() instanceof Float32Array);
    assert.deepEqual(Array.from(t.data()), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(ad.tensor([]).shape, [0]);
    assert.deepEqual(ad.tensor([[], []]).shape, [2, 0]);
  });

  test("ragged nested arrays throw ShapeError", () => {
    assert.throws(() => ad.tensor([[1, 2], [3]]), ad.ShapeError);
    assert.throws(() => ad.tensor([[1, 2], 3] as unknown as number[][]), ad.ShapeError);
    assert.throws(() => ad.tensor([[[1], [2]], [[3]]]), ad.ShapeError);
  });

  test("ragged with a number before a nested array also throws ShapeError", () => {
    assert.throws(() => ad.tensor([1, [2, 3]] as unknown as number[]), ad.ShapeError);
  });

  test("non-numeric data throws a typed error", () => {
    assert.throws(() => ad.tensor(["a"] as unknown as number[]), ad.AdError);
    assert.throws(() => ad.tensor([{}] as unknown as number[]), ad.AdError);
  });

  test("from TypedArrays: dtype kept, {shape} reshapes, the source is copied", () => {
    const cases: Array<[ad.TensorData, ad.DType]> = [
      [new Float32Array([1, 2, 3, 4, 5, 6]), "float32"],
      [new Float64Array([1, 2, 3, 4, 5, 6]), "float64"],
      [new Int32Array([1, 2, 3, 4, 5, 6]), "int32"],
    ];
    for (const [src, dtype] of cases) {
      const t = ad.tensor(src, { shape: [2, 3] });
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.shape, [2, 3]);
      assert.deepEqual(t.toArray(), [
        [1, 2, 3],
        [4, 5, 6],
      ]);
    }
    const src = new Float64Array([1, 2, 3]);
    const t = ad.tensor(src);
    assert.deepEqual(t.shape, [3], "1-D without {shape}");
    src[0] = 99;
    assert.deepEqual(t.toArray(), [1, 2, 3], "later writes to the source do not leak in");
    assert.throws(() => ad.tensor(new Float32Array(6), { shape: [4, 2] }), ad.ShapeError);
    const c = ad.tensor(new Float64Array([1.5, -2.5]), { dtype: "int32" });
    assert.equal(c.dtype, "int32");
    assert.deepEqual(c.toArray(), [1, -2]);
  });

  test("booleans give a bool tensor", () => {
    const t = ad.tensor([
      [true, false],
      [false, true],
    ]);
    assert.equal(t.dtype, "bool");
    assert.deepEqual(t.toArray(), [
      [true, false],
      [false, true],
    ]);
    assert.equal(ad.tensor(true).dtype, "bool");
    assert.equal(ad.tensor(true).toArray(), true);
  });

  test("mixed booleans and numbers are numeric, not bool (as NumPy)", () => {
    const t = ad.tensor([true, 2, 0.5] as unknown as number[]);
    assert.notEqual(t.dtype, "bool");
    assert.deepEqual(t.toArray(), [1, 2, 0.5]);
  });

  test("{dtype} for each of the four dtypes", () => {
    const data = [1.75, -1.75, 0, 0.1];
    const f32 = ad.tensor(data, { dtype: "float32" });
    assert.equal(f32.dtype, "float32");
    assert.ok(f32.data() instanceof Float32Array);
    assert.deepEqual(f32.toArray(), data.map(Math.fround));
    const f = ad.tensor(data, { dtype: "float64" });
    assert.equal(f.dtype, "float64");
    assert.ok(f.data() instanceof Float64Array);
    assert.deepEqual(f.toArray(), data, "float64 keeps 0.1 exactly");
    const i = ad.tensor(data, { dtype: "int32" });
    assert.equal(i.dtype, "int32");
    assert.ok(i.data() instanceof Int32Array);
    assert.deepEqual(i.toArray(), [1, -1, 0, 0], "float to int truncates toward zero");
    const b = ad.tensor([2, -3, 0], { dtype: "bool" });
    assert.equal(b.dtype, "bool");
    assert.deepEqual(b.toArray(), [true, true, false]);
    assert.deepEqual(ad.tensor([true, false], { dtype: "float32" }).toArray(), [1, 0]);
    assert.equal(ad.tensor(3, { dtype: "float64" }).dtype, "float64");
    assert.throws(() => ad.tensor([1], { dtype: "complex64" as ad.DType }), ad.DTypeError);
  });

  test("{dtype: 'bool'}: every nonzero number is true (as astype and NumPy)", () => {
    assert.deepEqual(ad.tensor([1.75, -1.75, 0, 0.1], { dtype: "bool" }).toArray(), [
      true,
      true,
      false,
      true,
    ]);
    assert.deepEqual(ad.tensor([0.5, -0.25, 256], { dtype: "bool" }).toArray(), [true, true, true]);
    assert.deepEqual(ad.tensor(new Float32Array([0.5, 256]), { dtype: "bool" }).toArray(), [true, true]);
    assert.equal(ad.scalar(0.5, { dtype: "bool" }).item(), 1);
    assert.deepEqual(ad.astype(ad.tensor([0.5, 256]), "bool").toArray(), [true, true]);
  });

  test("a tensor argument passes through, converted by {dtype}", () => {
    const t = ad.tensor([1.5, 2.5]);
    assert.deepEqual(ad.tensor(t).toArray(), [1.5, 2.5]);
    const c = ad.tensor(t, { dtype: "float64" });
    assert.equal(c.dtype, "float64");
    assert.deepEqual(c.toArray(), [1.5, 2.5]);
  });
});

describe("creation functions", () => {
  test("scalar: 0-d, float32 unless {dtype}", () => {
    const s = ad.scalar(3);
    assert.deepEqual(s.shape, []);
    assert.equal(s.dtype, "float32");
    assert.equal(s.item(), 3);
    assert.equal(ad.scalar(0.1, { dtype: "float64" }).item(), 0.1);
    assert.equal(ad.scalar(7, { dtype: "int32" }).dtype, "int32");
  });

  test("zeros, ones, full: shape, dtype (float32 default), values", () => {
    const z = ad.zeros([2, 3]);
    assert.deepEqual(z.shape, [2, 3]);
    assert.equal(z.dtype, "float32");
    assert.deepEqual(z.toArray(), [
      [0, 0, 0],
      [0, 0, 0],
    ]);
    assert.deepEqual(ad.ones([2]).toArray(), [1, 1]);
    assert.deepEqual(ad.ones([], { dtype: "int32" }).toArray(), 1);
    assert.equal(ad.ones([3], { dtype: "float64" }).dtype, "float64");
    assert.deepEqual(ad.zeros([2], { dtype: "bool" }).toArray(), [false, false]);
    assert.deepEqual(ad.ones([2], { dtype: "bool" }).toArray(), [true, true]);
    const f = ad.full([2, 1], 0.1, { dtype: "float64" });
    assert.deepEqual(f.toArray(), [[0.1], [0.1]]);
    assert.deepEqual(ad.full([2], 7).toArray(), [7, 7]);
    assert.equal(ad.full([2], 7).dtype, "float32");
    assert.deepEqual(ad.zeros([0, 4]).shape, [0, 4]);
    assert.throws(() => ad.zeros([-1]), ad.ShapeError);
    assert.throws(() => ad.ones([1.5]), ad.ShapeError);
  });

  test("zerosLike and onesLike keep shape and dtype", () => {
    const t = ad.tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { dtype: "int32" },
    );
    const z = ad.zerosLike(t);
    assert.deepEqual(z.shape, [2, 2]);
    assert.equal(z.dtype, "int32");
    assert.deepEqual(z.toArray(), [
      [0, 0],
      [0, 0],
    ]);
    const o = ad.onesLike(ad.zeros([3], { dtype: "float64" }));
    assert.equal(o.dtype, "float64");
    assert.deepEqual(o.toArray(), [1, 1, 1]);
    assert.equal(ad.onesLike(t, { dtype: "float32" }).dtype, "float32");
  });

  test("eye: identity, rectangular with {m}, dtype", () => {
    assert.deepEqual(ad.eye(3).toArray(), [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    assert.equal(ad.eye(2).dtype, "float32");
    assert.deepEqual(ad.eye(2, { m: 3 }).toArray(), [
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const e = ad.eye(2, { dtype: "int32" });
    assert.equal(e.dtype, "int32");
    assert.deepEqual(e.toArray(), [
      [1, 0],
      [0, 1],
    ]);
  });

  test("arange: one-argument form, integer steps give int32", () => {
    const a = ad.arange(5);
    assert.equal(a.dtype, "int32");
    assert.deepEqual(a.toArray(), [0, 1, 2, 3, 4]);
    assert.deepEqual(ad.arange(2, 5).toArray(), [2, 3, 4]);
    assert.deepEqual(ad.arange(0, 10, 3).toArray(), [0, 3, 6, 9]);
    assert.deepEqual(ad.arange(5, 0, -2).toArray(), [5, 3, 1]);
    assert.deepEqual(ad.arange(5, 0).toArray(), [], "empty when stop <= start");
    assert.deepEqual(ad.arange(0).shape, [0]);
  });

  test("arange: float steps give float32 values as NumPy (stop excluded)", () => {
    const a = ad.arange(1, 2, 0.25);
    assert.equal(a.dtype, "float32");
    assert.deepEqual(a.toArray(), [1, 1.25, 1.5, 1.75]);
    assert.deepEqual(ad.arange(1, 0, -0.25).toArray(), [1, 0.75, 0.5, 0.25]);
    // np.arange(0, 1, 0.1) has 10 entries
    const b = ad.arange(0, 1, 0.1);
    assert.equal(b.size, 10);
    assertClose(
      b,
      Array.from({ length: 10 }, (_, i) => i / 10),
      1e-6,
    );
    assert.deepEqual(ad.arange(0.5, 3).toArray(), [0.5, 1.5, 2.5]);
    const d = ad.arange(3, undefined, 1, { dtype: "float64" });
    assert.equal(d.dtype, "float64");
    assert.deepEqual(d.toArray(), [0, 1, 2]);
    assert.throws(() => ad.arange(0, 5, 0), ad.AdError);
  });

  test("linspace: n points, both ends included", () => {
    const l = ad.linspace(0, 1, 5);
    assert.equal(l.dtype, "float32");
    assert.deepEqual(l.toArray(), [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(ad.linspace(1, -1, 3).toArray(), [1, 0, -1]);
    assert.deepEqual(ad.linspace(2, 5, 1).toArray(), [2]);
    assert.deepEqual(ad.linspace(2, 5, 0).shape, [0]);
    const d = ad.linspace(0, 1, 3, { dtype: "float64" });
    assert.equal(d.dtype, "float64");
    assert.deepEqual(d.toArray(), [0, 0.5, 1]);
    const t = ad.linspace(0, 1, 11, { dtype: "float64" }).toArray() as number[];
    assert.equal(t[10], 1, "the last point is exactly b");
    assert.throws(() => ad.linspace(0, 1, -1), ad.AdError);
  });
});

// ---------------------------------------------------------------- reading

describe("reading values", () => {
  test("shape, size, ndim, dtype", () => {
    const t = ad.zeros([2, 3, 4]);
    assert.deepEqual(t.shape, [2, 3, 4]);
    assert.equal(t.size, 24);
    assert.equal(t.ndim, 3);
    assert.equal(t.dtype, "float32");
    const s = ad.scalar(1);
    assert.equal(s.size, 1);
    assert.equal(s.ndim, 0);
    assert.equal(ad.zeros([3, 0]).size, 0);
  });

  test("toArray: a number for 0-d, nested arrays otherwise, booleans for bool", () => {
    assert.equal(ad.scalar(4).toArray(), 4);
    assert.equal(typeof ad.scalar(4).toArray(), "number");
    assert.deepEqual(ad.arange(6).reshape([2, 3]).toArray(), [
      [0, 1, 2],
      [3, 4, 5],
    ]);
    assert.deepEqual(ad.tensor([[true], [false]]).toArray(), [[true], [false]]);
    assert.equal(ad.tensor(false).toArray(), false);
    assert.deepEqual(ad.zeros([2, 0]).toArray(), [[], []]);
    const nan = ad.tensor([Number.NaN, Number.POSITIVE_INFINITY]).toArray() as number[];
    assert.ok(Number.isNaN(nan[0]));
    assert.equal(nan[1], Number.POSITIVE_INFINITY);
  });

  test("item: the number of a size-1 tensor of any rank; ShapeError otherwise", () => {
    assert.equal(ad.scalar(3).item(), 3);
    assert.equal(ad.tensor([[[2.5]]]).item(), 2.5);
    assert.equal(typeof ad.tensor(true).item(), "number");
    throwsNaming(() => ad.tensor([1, 2]).item(), ad.ShapeError, [[2]]);
    throwsNaming(() => ad.zeros([2, 3]).item(), ad.ShapeError, [[2, 3]]);
    assert.throws(() => ad.zeros([0]).item(), ad.ShapeError);
  });

  test("data: a fresh row-major TypedArray of the right type", () => {
    const t = ad.tensor([
      [1, 2],
      [3, 4],
    ]);
    const d = t.data();
    assert.ok(d instanceof Float32Array);
    assert.deepEqual(Array.from(d), [1, 2, 3, 4]);
    d[0] = 100;
    assert.deepEqual(t.toArray(), [
      [1, 2],
      [3, 4],
    ]);
    assert.equal(t.data()[0], 1, "a second call is not the mutated copy");
    assert.notEqual(t.data(), t.data());
    assert.ok(ad.zeros([1], { dtype: "float64" }).data() instanceof Float64Array);
    assert.ok(ad.zeros([1], { dtype: "int32" }).data() instanceof Int32Array);
    assert.ok(ad.zeros([1], { dtype: "bool" }).data() instanceof Uint8Array);
    // data of a derived (transposed) tensor is row-major in its own shape
    assert.deepEqual(Array.from(ad.arange(6).reshape([2, 3]).transpose().data()), [0, 3, 1, 4, 2, 5]);
    // mutating the data of an op result does not affect later reads either
    const r = ad.add(t, 1);
    r.data()[1] = -7;
    assert.deepEqual(r.toArray(), [
      [2, 3],
      [4, 5],
    ]);
  });

  test("toString: numpy-like, naming the dtype", () => {
    assert.equal(ad.tensor([1.5, 2]).toString(), "tensor([1.5, 2], dtype=float32)");
    assert.equal(String(ad.tensor([1.5, 2])), ad.tensor([1.5, 2]).toString());
    assert.equal(ad.scalar(2.5).toString(), "tensor(2.5, dtype=float32)");
    assert.equal(ad.arange(3).toString(), "tensor([0, 1, 2], dtype=int32)");
    assert.equal(ad.tensor([true, false]).toString(), "tensor([true, false], dtype=bool)");
    assert.equal(ad.tensor(0.1).toString(), "tensor(0.1, dtype=float32)", "float32 printed short");
    const f = ad.tensor([1 / 3], { dtype: "float64" }).toString();
    assert.match(f, /^tensor\(\[0\.3333\d*\], dtype=float64\)$/);
    const m = ad
      .tensor([
        [1, 2],
        [3, 4],
      ])
      .toString();
    assert.match(m, /^tensor\(\[\[1, 2\],\s*\n\s*\[3, 4\]\], dtype=float32\)$/);
    assert.match(ad.tensor([Number.NaN, Number.NEGATIVE_INFINITY]).toString(), /nan|NaN/);
    const big = ad.arange(2000).toString();
    assert.ok(big.includes("..."), "large tensors are summarised");
    assert.ok(big.length < 200);
    assert.ok(big.includes("1999"));
  });
});

describe("allclose", () => {
  test("default tolerances (rtol 1e-5, atol 1e-8)", () => {
    assert.equal(ad.allclose(ad.tensor([1, 2]), ad.tensor([1, 2])), true);
    assert.equal(ad.allclose(f64([1, 2]), f64([1 + 1e-7, 2])), true);
    assert.equal(ad.allclose(f64([1, 2]), f64([1.001, 2])), false);
    assert.equal(ad.allclose(f64([0]), f64([1e-9])), true);
    assert.equal(ad.allclose(f64([0]), f64([1e-7])), false);
  });

  test("rtol and atol; |a - b| <= atol + rtol·|b| (asymmetric, as NumPy)", () => {
    assert.equal(ad.allclose(f64([1, 2]), f64([1.001, 2]), { rtol: 1e-2 }), true);
    assert.equal(ad.allclose(f64([0]), f64([0.01]), { atol: 0.1 }), true);
    assert.equal(ad.allclose(f64([0]), f64([0.01]), { atol: 0.001 }), false);
    assert.equal(ad.allclose(f64([100]), f64([101]), { rtol: 0, atol: 1 }), true);
    assert.equal(ad.allclose(f64([100]), f64([101]), { rtol: 0, atol: 0.5 }), false);
    // |0 - 1| <= 1·|1| but |1 - 0| > 1·|0|
    assert.equal(ad.allclose(f64([0]), f64([1]), { rtol: 1, atol: 0 }), true);
    assert.equal(ad.allclose(f64([1]), f64([0]), { rtol: 1, atol: 0 }), false);
  });

  test("broadcasts like NumPy; incompatible shapes throw ShapeError", () => {
    assert.equal(ad.allclose(ad.ones([2, 3]), 1), true);
    assert.equal(ad.allclose(ad.ones([2, 3]), ad.ones([3])), true);
    assert.equal(ad.allclose(ad.ones([2, 1]), ad.ones([1, 4])), true);
    assert.equal(ad.allclose(ad.tensor([[1], [2]]), ad.tensor([1, 1])), false);
    throwsNaming(() => ad.allclose(ad.ones([2, 3]), ad.ones([2])), ad.ShapeError, [[2, 3], [2]]);
  });

  test("NaN is never close unless equalNan; an infinity is close only to the same infinity", () => {
    assert.equal(ad.allclose(f64([Number.NaN]), f64([Number.NaN])), false);
    assert.equal(ad.allclose(f64([Number.NaN]), f64([Number.NaN]), { equalNan: true }), true);
    assert.equal(ad.allclose(f64([Number.POSITIVE_INFINITY]), f64([Number.POSITIVE_INFINITY])), true);
    assert.equal(ad.allclose(f64([Number.POSITIVE_INFINITY]), f64([Number.NEGATIVE_INFINITY])), false);
    assert.equal(ad.allclose(f64([0]), f64([Number.POSITIVE_INFINITY])), false);
    assert.equal(ad.allclose(f64([Number.POSITIVE_INFINITY]), f64([0])), false);
  });
});

// ---------------------------------------------------------------- dtypes

describe("dtype promotion", () => {
  test("a JS number takes the tensor's float dtype (weak typing)", () => {
    const r = ad.add(ad.tensor([1, 2]), 0.5);
    assert.equal(r.dtype, "float32");
    assert.ok(r.data() instanceof Float32Array);
    assert.deepEqual(r.toArray(), [1.5, 2.5]);
    assert.equal(ad.add(1, ad.tensor([1])).dtype, "float32", "number on the left");
    assert.equal(ad.mul(ad.tensor([1]), 1e300).dtype, "float32");
    assert.equal(ad.add(f64([1]), 0.5).dtype, "float64");
    // 1 + 1e-8 rounds to 1 in float32: the number was not kept in float64
    assert.equal(ad.add(ad.tensor([1]), 1e-8).item(), 1);
  });

  test("int32 tensor with an integer number stays int32; with a fraction becomes float32", () => {
    const a = ad.add(i32([1, 2]), 1);
    assert.equal(a.dtype, "int32");
    assert.deepEqual(a.toArray(), [2, 3]);
    assert.equal(ad.mul(i32([1, 2]), 3).dtype, "int32");
    const b = ad.add(i32([1, 2]), 0.5);
    assert.equal(b.dtype, "float32");
    assert.deepEqual(b.toArray(), [1.5, 2.5]);
  });

  test("tensor-tensor promotion: int32+float32 → float32, float32+float64 → float64", () => {
    const a = ad.add(i32([1]), ad.tensor([0.5]));
    assert.equal(a.dtype, "float32");
    assert.deepEqual(a.toArray(), [1.5]);
    assert.equal(ad.add(ad.tensor([0.5]), i32([1])).dtype, "float32");
    assert.equal(ad.add(ad.tensor([1]), f64([1])).dtype, "float64");
    assert.equal(ad.mul(f64([1]), ad.tensor([1])).dtype, "float64");
    assert.equal(ad.add(i32([1]), f64([1])).dtype, "float64");
    assert.equal(ad.add(ad.tensor([true]), i32([2])).dtype, "int32");
    assert.equal(ad.add(ad.tensor([true]), ad.tensor([2])).dtype, "float32");
  });

  test("ops on JS numbers only give float64 0-d tensors", () => {
    const e = ad.exp(0.7);
    assert.equal(e.dtype, "float64");
    assert.deepEqual(e.shape, []);
    assert.equal(e.item(), Math.exp(0.7));
    const s = ad.add(1, 2);
    assert.equal(s.dtype, "float64");
    assert.deepEqual(s.shape, []);
    assert.equal(s.item(), 3);
    assert.equal(ad.mul(0.1, 3).item(), 0.1 * 3, "computed in float64");
    assert.equal(ad.sin(1).dtype, "float64");
    assert.equal(ad.neg(2).dtype, "float64");
    assert.equal(ad.div(1, 4).item(), 0.25);
  });

  test("division of integers gives floats", () => {
    const q = ad.div(i32([1, 3, -7]), i32([2, 2, 2]));
    assert.ok(q.dtype === "float32" || q.dtype === "float64", q.dtype);
    assert.deepEqual(q.toArray(), [0.5, 1.5, -3.5]);
    assert.deepEqual(ad.div(i32([1, 3]), 2).toArray(), [0.5, 1.5]);
  });

  test("comparisons give bool", () => {
    const x = ad.tensor([1, 2, 3]);
    const cases: Array<[ad.Tensor, boolean[]]> = [
      [ad.equal(x, 2), [false, true, false]],
      [ad.notEqual(x, 2), [true, false, true]],
      [ad.less(x, 2), [true, false, false]],
      [ad.lessEqual(x, 2), [true, true, false]],
      [ad.greater(x, 2), [false, false, true]],
      [ad.greaterEqual(x, 2), [false, true, true]],
      [ad.less(i32([1, 2]), 1.5).reshape([2]), [true, false]],
      [ad.equal(i32([1, 2]), ad.tensor([1, 2.5])), [true, false]],
      [ad.isnan(ad.tensor([Number.NaN, 1])), [true, false]],
      [ad.isfinite(ad.tensor([Number.POSITIVE_INFINITY, Number.NaN, 1])), [false, false, true]],
    ];
    for (const [r, want] of cases) {
      assert.equal(r.dtype, "bool");
      assert.deepEqual(r.toArray(), want);
    }
    assert.equal(x.greater(1).dtype, "bool");
  });

  test("sum of bool counts as int32", () => {
    const b = ad.tensor([
      [true, true, false],
      [false, true, false],
    ]);
    const s = ad.sum(b);
    assert.equal(s.dtype, "int32");
    assert.equal(s.item(), 3);
    const s0 = ad.sum(b, { axis: 0 });
    assert.equal(s0.dtype, "int32");
    assert.deepEqual(s0.toArray(), [1, 2, 0]);
    assert.equal(ad.sum(ad.greater(ad.arange(10), 6)).item(), 3);
    assert.equal(ad.sum(i32([1, 2])).dtype, "int32");
  });
});

// ---------------------------------------------------------------- broadcasting

describe("broadcasting", () => {
  test("binary ops broadcast like NumPy (size-1 axes, missing leading axes)", () => {
    const a = seqT([2, 1, 3]);
    const b = seqT([4, 1], 2);
    const r = ad.add(a, b);
    assert.deepEqual(r.shape, [2, 4, 3]);
    const av = Array.from(a.data());
    const bv = Array.from(b.data());
    const want: number[] = [];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 4; j++) for (let k = 0; k < 3; k++) want.push(av[i * 3 + k]! + bv[j]!);
    assert.deepEqual(Array.from(r.data()), want);
    assert.deepEqual(ad.mul(ad.tensor([[1], [2]]), ad.tensor([1, 10, 100])).toArray(), [
      [1, 10, 100],
      [2, 20, 200],
    ]);
    assert.deepEqual(ad.sub(ad.tensor([[1, 2, 3]]), ad.tensor([[1], [2]])).shape, [2, 3]);
  });

  test("0-d operands broadcast against anything", () => {
    assert.deepEqual(ad.add(ad.scalar(1), ad.zeros([2, 3])).shape, [2, 3]);
    assert.deepEqual(ad.mul(ad.zeros([4]), ad.scalar(2)).shape, [4]);
    assert.deepEqual(ad.maximum(ad.scalar(1), ad.tensor([0, 2])).toArray(), [1, 2]);
    assert.deepEqual(ad.add(ad.scalar(1), ad.scalar(2)).shape, []);
    assert.deepEqual(ad.add(ad.zeros([0, 3]), ad.ones([3])).shape, [0, 3]);
    assert.deepEqual(ad.add(ad.zeros([1, 3]), ad.ones([0, 1])).shape, [0, 3]);
  });

  test("incompatible shapes throw ShapeError naming both shapes", () => {
    throwsNaming(() => ad.add(ad.zeros([2, 3]), ad.zeros([4])), ad.ShapeError, [[2, 3], [4]]);
    throwsNaming(() => ad.mul(ad.zeros([3, 1, 5]), ad.zeros([2, 4])), ad.ShapeError, [
      [3, 1, 5],
      [2, 4],
    ]);
    throwsNaming(() => ad.less(ad.zeros([2]), ad.zeros([3])), ad.ShapeError, [[2], [3]]);
    throwsNaming(() => ad.tensor([1, 2]).add(ad.zeros([3, 3])), ad.ShapeError, [[2], [3, 3]]);
  });

  test("where broadcasts condition and both branches", () => {
    const c = ad.tensor([[true], [false]]);
    const r = ad.where(c, ad.tensor([1, 2, 3]), 0);
    assert.deepEqual(r.shape, [2, 3]);
    assert.equal(r.dtype, "float32");
    assert.deepEqual(r.toArray(), [
      [1, 2, 3],
      [0, 0, 0],
    ]);
    const r2 = ad.where(ad.tensor(true), ad.tensor([1, 2]), ad.tensor([[5], [6]]));
    assert.deepEqual(r2.toArray(), [
      [1, 2],
      [1, 2],
    ]);
    const r3 = ad.where(ad.tensor([true, false, true]), ad.scalar(1), ad.tensor([[7], [8]]));
    assert.deepEqual(r3.toArray(), [
      [1, 7, 1],
      [1, 8, 1],
    ]);
    assert.equal(ad.where(ad.tensor([true, false]), i32([1, 2]), 0.5).dtype, "float32");
    assert.equal(ad.where(ad.tensor([true]), ad.tensor([1]), f64([2])).dtype, "float64");
    assert.throws(() => ad.where(ad.tensor([true, false, true]), ad.zeros([2]), 0), ad.ShapeError);
    assert.throws(() => ad.where(ad.tensor([true, false]), ad.zeros([3]), ad.zeros([3])), ad.ShapeError);
  });
});

// ---------------------------------------------------------------- methods and indexing

describe("method forms", () => {
  test("t.add, t.mul, t.sum({axis, keepdims}) match the functions", () => {
    const t = ad.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.deepEqual(t.add(ad.tensor([10, 20, 30])).toArray(), ad.add(t, ad.tensor([10, 20, 30])).toArray());
    assert.deepEqual(t.mul(2).sub(1).toArray(), [
      [1, 3, 5],
      [7, 9, 11],
    ]);
    assert.equal(t.sum().item(), 21);
    assert.deepEqual(t.sum({ axis: 0 }).toArray(), [5, 7, 9]);
    assert.deepEqual(t.sum({ axis: 1, keepdims: true }).toArray(), [[6], [15]]);
    assert.deepEqual(t.sum({ axis: -1 }).toArray(), [6, 15]);
    assert.deepEqual(t.sum({ axis: [0, 1], keepdims: true }).toArray(), [[21]]);
    assert.deepEqual(t.sum({ keepdims: true }).shape, [1, 1]);
    assert.throws(() => t.sum({ axis: 2 }), ad.ShapeError);
    assert.deepEqual(t.max({ axis: 0 }).toArray(), [4, 5, 6]);
    assert.deepEqual(t.mean({ axis: 1 }).toArray(), [2, 5]);
  });

  test("t.at: integers (negative from the end) drop axes, [start, stop] slices", () => {
    const x = ad.arange(24).reshape([2, 3, 4]);
    assert.deepEqual(x.at(1, -1).toArray(), [20, 21, 22, 23]);
    assert.equal(x.at(-1, -1, -1).item(), 23);
    assert.deepEqual(x.at(-1, -1, -1).shape, []);
    assert.deepEqual(x.at(0).shape, [3, 4]);
    assert.deepEqual(x.at(0, [1, 3], [-2, 4]).toArray(), [
      [6, 7],
      [10, 11],
    ]);
    assert.deepEqual(x.at(null, 0).shape, [2, 4]);
    assert.deepEqual(x.at(null, 0).toArray(), [
      [0, 1, 2, 3],
      [12, 13, 14, 15],
    ]);
    assert.deepEqual(ad.arange(5).at([-3]).toArray(), [2, 3, 4], "[start] runs to the end");
    assert.deepEqual(ad.arange(5).at([1, -1]).toArray(), [1, 2, 3]);
    assert.deepEqual(ad.arange(5).at([3, 1]).shape, [0], "empty when stop <= start, as Python slices");
    assert.deepEqual(ad.arange(5).at([-10, 10]).toArray(), [0, 1, 2, 3, 4], "slices clamp");
    assert.throws(() => x.at(2), ad.ShapeError);
    assert.throws(() => x.at(0, -4), ad.ShapeError);
    assert.throws(() => x.at(0, 0, 0, 0), ad.ShapeError);
    assert.deepEqual(ad.at(x, 1, 2, 3).item(), 23);
  });
});

// ---------------------------------------------------------------- shape ops

describe("shape operations (vs NumPy)", () => {
  test("reshape with -1", () => {
    assert.deepEqual(ad.arange(6).reshape([-1, 2]).toArray(), [
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    assert.deepEqual(ad.arange(24).reshape([2, -1, 4]).shape, [2, 3, 4]);
    assert.deepEqual(ad.arange(6).reshape([-1]).shape, [6]);
    assert.deepEqual(ad.tensor([5]).reshape([]).shape, []);
    assert.throws(() => ad.arange(6).reshape([4, -1]), ad.ShapeError);
    assert.throws(() => ad.arange(6).reshape([-1, -1]), ad.ShapeError);
    throwsNaming(() => ad.arange(6).reshape([4, 2]), ad.ShapeError, [[6], [4, 2]]);
  });

  test("transpose reverses axes by default; explicit and negative axes", () => {
    assert.deepEqual(ad.arange(6).reshape([2, 3]).transpose().toArray(), [
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
    const x = ad.arange(24).reshape([2, 3, 4]);
    assert.deepEqual(x.transpose().shape, [4, 3, 2]);
    assert.equal(x.transpose().at(3, 2, 1).item(), x.at(1, 2, 3).item());
    const p = x.transpose([1, 0, 2]);
    assert.deepEqual(p.shape, [3, 2, 4]);
    assert.equal(p.at(2, 1, 3).item(), x.at(1, 2, 3).item());
    assert.deepEqual(x.transpose([-1, 0, 1]).shape, [4, 2, 3]);
    assert.throws(() => x.transpose([0, 0, 1]), ad.ShapeError);
    assert.throws(() => x.transpose([0, 1]), ad.ShapeError);
    assert.deepEqual(ad.transpose(ad.arange(3)).toArray(), [0, 1, 2], "1-D is unchanged");
  });

  test("expandDims and squeeze", () => {
    assert.deepEqual(ad.zeros([3]).expandDims(0).shape, [1, 3]);
    assert.deepEqual(ad.zeros([3]).expandDims(-1).shape, [3, 1]);
    assert.deepEqual(ad.zeros([3, 4]).expandDims(1).shape, [3, 1, 4]);
    assert.deepEqual(ad.zeros([3]).expandDims([0, 2]).shape, [1, 3, 1]);
    assert.deepEqual(ad.scalar(3).expandDims(0).toArray(), [3]);
    assert.deepEqual(ad.zeros([1, 3, 1]).squeeze().shape, [3]);
    assert.deepEqual(ad.zeros([1, 3, 1]).squeeze(-1).shape, [1, 3]);
    assert.deepEqual(ad.zeros([1, 3, 1]).squeeze([0, 2]).shape, [3]);
    assert.deepEqual(ad.zeros([1, 1]).squeeze().shape, []);
    assert.throws(() => ad.zeros([1, 3, 1]).squeeze(1), ad.ShapeError);
  });

  test("concat and stack along an axis (default 0, negative allowed)", () => {
    const a = ad.tensor([
      [1, 2],
      [3, 4],
    ]);
    const b = ad.tensor([[5, 6]]);
    assert.deepEqual(ad.concat([a, b]).toArray(), [
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    assert.deepEqual(ad.concat([a, ad.tensor([[9], [8]])], 1).toArray(), [
      [1, 2, 9],
      [3, 4, 8],
    ]);
    assert.deepEqual(ad.concat([a, ad.tensor([[9], [8]])], -1).shape, [2, 3]);
    assert.throws(() => ad.concat([a, ad.zeros([3, 1])], 1), ad.ShapeError);
    assert.equal(ad.concat([ad.ones([1]), f64([0])]).dtype, "float64");
    const s0 = ad.stack([ad.arange(3), ad.arange(3).mul(10)]);
    assert.deepEqual(s0.toArray(), [
      [0, 1, 2],
      [0, 10, 20],
    ]);
    assert.deepEqual(ad.stack([ad.arange(3), ad.arange(3).mul(10)], 1).toArray(), [
      [0, 0],
      [1, 10],
      [2, 20],
    ]);
    assert.deepEqual(ad.stack([ad.zeros([2, 3]), ad.zeros([2, 3])], -1).shape, [2, 3, 2]);
    assert.deepEqual(ad.stack([ad.scalar(1), ad.scalar(2)]).toArray(), [1, 2]);
    assert.throws(() => ad.stack([ad.zeros([2]), ad.zeros([3])]), ad.ShapeError);
  });

  test("split: a number of equal parts, or split indices (NumPy)", () => {
    const vals = (ts: ad.Tensor[]) => ts.map((t) => t.toArray());
    assert.deepEqual(vals(ad.split(ad.arange(6), 3)), [
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    assert.throws(() => ad.split(ad.arange(5), 3), ad.ShapeError);
    assert.deepEqual(vals(ad.split(ad.arange(8), [3, 5])), [
      [0, 1, 2],
      [3, 4],
      [5, 6, 7],
    ]);
    // np.split(np.arange(6), [4, 2]) -> [0..3], [], [2..5]
    assert.deepEqual(vals(ad.split(ad.arange(6), [4, 2])), [[0, 1, 2, 3], [], [2, 3, 4, 5]]);
    assert.deepEqual(vals(ad.split(ad.arange(6), [-2])), [
      [0, 1, 2, 3],
      [4, 5],
    ]);
    assert.deepEqual(vals(ad.split(ad.arange(4), [0, 10])), [[], [0, 1, 2, 3], []]);
    const m = ad.arange(6).reshape([2, 3]);
    assert.deepEqual(vals(m.split(3, 1)), [
      [[0], [3]],
      [[1], [4]],
      [[2], [5]],
    ]);
    assert.deepEqual(vals(m.split([1], -1)), [
      [[0], [3]],
      [
        [1, 2],
        [4, 5],
      ],
    ]);
  });

  test("slice(begin, size): negative begin counts from the end, size -1 to the end", () => {
    const x = ad.arange(24).reshape([2, 3, 4]);
    assert.deepEqual(x.slice([1, 1, 0], [1, 2, -1]).toArray(), [
      [
        [16, 17, 18, 19],
        [20, 21, 22, 23],
      ],
    ]);
    assert.deepEqual(ad.arange(5).slice([1], [3]).toArray(), [1, 2, 3]);
    assert.deepEqual(ad.arange(5).slice([-2]).toArray(), [3, 4]);
    assert.deepEqual(ad.arange(5).slice([1], [-1]).toArray(), [1, 2, 3, 4]);
    assert.throws(() => ad.arange(5).slice([3], [4]), ad.ShapeError);
    assert.throws(() => x.slice([0, 0]), ad.ShapeError);
  });

  test("flip: all axes by default, or the given ones", () => {
    const m = ad.arange(6).reshape([2, 3]);
    assert.deepEqual(m.flip().toArray(), [
      [5, 4, 3],
      [2, 1, 0],
    ]);
    assert.deepEqual(m.flip(1).toArray(), [
      [2, 1, 0],
      [5, 4, 3],
    ]);
    assert.deepEqual(m.flip(0).toArray(), [
      [3, 4, 5],
      [0, 1, 2],
    ]);
    assert.deepEqual(ad.arange(8).reshape([2, 2, 2]).flip([0, 2]).toArray(), [
      [
        [5, 4],
        [7, 6],
      ],
      [
        [1, 0],
        [3, 2],
      ],
    ]);
  });

  test("pad with NumPy [[before, after], ...] widths and a constant", () => {
    assert.deepEqual(
      ad
        .tensor([[1, 2]])
        .pad([
          [1, 0],
          [0, 2],
        ])
        .toArray(),
      [
        [0, 0, 0, 0],
        [1, 2, 0, 0],
      ],
    );
    assert.deepEqual(
      ad
        .tensor([1, 2])
        .pad([[1, 1]], 9)
        .toArray(),
      [9, 1, 2, 9],
    );
    assert.deepEqual(ad.pad(ad.tensor([1]), [[2, 0]]).toArray(), [0, 0, 1]);
    assert.equal(ad.pad(i32([1]), [[1, 1]]).dtype, "int32");
    assert.throws(() => ad.tensor([1, 2]).pad([[-1, 1]]), ad.ShapeError);
    assert.throws(() => ad.tensor([[1]]).pad([[1, 1]]), ad.ShapeError);
  });

  test("take: flattened without axis, along an axis with it, negative indices (NumPy)", () => {
    const m = ad.arange(6).reshape([2, 3]);
    assert.deepEqual(m.take([5, 0, -1]).toArray(), [5, 0, 5]);
    assert.deepEqual(ad.take(m, [2, 0], 1).toArray(), [
      [2, 0],
      [5, 3],
    ]);
    assert.deepEqual(m.take([-1, -3], 1).toArray(), [
      [2, 0],
      [5, 3],
    ]);
    assert.deepEqual(m.take([1], 0).toArray(), [[3, 4, 5]]);
    assert.deepEqual(m.take([-1], -1).toArray(), [[2], [5]]);
    // indices of any shape: out shape = x.shape[:axis] + idx.shape + x.shape[axis+1:]
    const x = ad.arange(6).reshape([3, 2]);
    const t = x.take(
      i32([
        [0, 2],
        [1, 1],
      ]),
      0,
    );
    assert.deepEqual(t.shape, [2, 2, 2]);
    assert.deepEqual(t.toArray(), [
      [
        [0, 1],
        [4, 5],
      ],
      [
        [2, 3],
        [2, 3],
      ],
    ]);
    assert.deepEqual(m.take(1, 1).toArray(), [1, 4], "a scalar index drops the axis");
    assert.equal(m.take(ad.scalar(4, { dtype: "int32" })).item(), 4);
    assert.throws(() => ad.arange(6).take([6]), ad.AdError);
    assert.throws(() => ad.arange(6).take(ad.tensor([1])), ad.DTypeError);
  });

  test("gather: PyTorch semantics out[i][j] = x[i][index[i][j]] (axis 1)", () => {
    const x = ad.tensor([
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(
      x
        .gather(
          1,
          i32([
            [0, 0],
            [1, 0],
          ]),
        )
        .toArray(),
      [
        [1, 1],
        [4, 3],
      ],
    );
    assert.deepEqual(ad.gather(x, 0, i32([[1, 0]])).toArray(), [[3, 2]]);
    const y = ad.arange(6).reshape([2, 3]);
    assert.deepEqual(y.gather(1, i32([[2], [0]])).toArray(), [[2], [3]], "index smaller along axis");
    assert.deepEqual(y.gather(1, i32([[1, 0]])).toArray(), [[1, 0]], "index smaller off axis");
    assert.deepEqual(y.gather(-1, i32([[2], [1]])).toArray(), [[2], [4]], "negative axis");
    assert.throws(
      () =>
        x.gather(
          1,
          i32([
            [2, 0],
            [1, 0],
          ]),
        ),
      ad.AdError,
    );
    assert.throws(() => x.gather(1, ad.tensor([[0], [1]])), ad.DTypeError);
  });

  test("scatterAdd: PyTorch scatter_add, duplicate indices accumulate", () => {
    const r = ad.zeros([3, 2]).scatterAdd(
      0,
      i32([
        [0, 1],
        [0, 2],
      ]),
      ad.tensor([
        [1, 2],
        [3, 4],
      ]),
    );
    assert.deepEqual(r.toArray(), [
      [4, 0],
      [0, 2],
      [0, 4],
    ]);
    const r1 = ad.scatterAdd(
      ad.ones([2, 3]),
      1,
      i32([
        [0, 0],
        [2, 1],
      ]),
      ad.tensor([
        [1, 2],
        [3, 4],
      ]),
    );
    assert.deepEqual(r1.toArray(), [
      [4, 1, 1],
      [1, 5, 4],
    ]);
    const base = ad.zeros([3]);
    ad.scatterAdd(base, 0, i32([0]), ad.tensor([5]));
    assert.deepEqual(base.toArray(), [0, 0, 0], "the input is not modified");
    assert.deepEqual(
      ad
        .zeros([3])
        .scatterAdd(0, i32([0, 0]), ad.tensor([1, 2]))
        .toArray(),
      [3, 0, 0],
    );
  });

  test("broadcastTo", () => {
    assert.deepEqual(ad.tensor([1, 2]).broadcastTo([2, 2]).toArray(), [
      [1, 2],
      [1, 2],
    ]);
    assert.deepEqual(ad.scalar(3).broadcastTo([2]).toArray(), [3, 3]);
    assert.throws(() => ad.tensor([1, 2]).broadcastTo([3]), ad.ShapeError);
    assert.throws(() => ad.zeros([2, 2]).broadcastTo([2]), ad.ShapeError);
  });
});

// ---------------------------------------------------------------- reductions

describe("reductions (vs NumPy)", () => {
  const m = ad.tensor([
    [1, 5, 5],
    [7, 0, 7],
  ]);

  test("argmax/argmin: int32, first index on ties, flattened without an axis", () => {
    const a = m.argmax();
    assert.equal(a.dtype, "int32");
    assert.deepEqual(a.shape, []);
    assert.equal(a.item(), 3, "flattened index of the first 7");
    assert.deepEqual(m.argmax({ axis: 1 }).toArray(), [1, 0]);
    assert.deepEqual(m.argmax({ axis: 0 }).toArray(), [1, 0, 1]);
    assert.deepEqual(m.argmax({ axis: -1, keepdims: true }).toArray(), [[1], [0]]);
    assert.deepEqual(m.argmax({ axis: 0, keepdims: true }).shape, [1, 3]);
    assert.equal(ad.argmin(ad.tensor([3, 0, 0, 1])).item(), 1);
    assert.equal(ad.argmin(m).item(), 4);
    assert.deepEqual(
      ad
        .argmin(
          ad.tensor([
            [3, 0, 0],
            [0, 1, 0],
          ]),
          { axis: -1 },
        )
        .toArray(),
      [1, 0],
    );
    assert.equal(ad.argmax(i32([2, 9, 9])).item(), 1);
    assert.throws(() => ad.argmax(ad.zeros([0])), ad.ShapeError);
  });

  test("argmax with keepdims and no axis keeps every axis as size 1 (NumPy >= 1.22)", () => {
    const r = ad.argmax(ad.zeros([2, 3]), { keepdims: true });
    assert.deepEqual(r.shape, [1, 1]);
    assert.equal(r.item(), 0);
  });

  test("var/std: ddof 0 by default, {ddof}, axis and keepdims", () => {
    close(ad.var(ad.tensor([1, 2, 3, 4])).item(), 1.25);
    close(ad.tensor([1, 2, 3, 4]).var({ ddof: 1 }).item(), 5 / 3);
    close(ad.std(ad.tensor([1, 3])).item(), 1);
    close(ad.std(f64([1, 2, 3, 4]), { ddof: 1 }).item(), Math.sqrt(5 / 3), 1e-14);
    const x = ad.tensor([
      [1, 3],
      [2, 2],
      [0, 6],
    ]);
    assertClose(x.var({ axis: 0 }), [2 / 3, 26 / 9]);
    assertClose(x.std({ axis: 1 }), [1, 0, 3]);
    assertClose(x.std({ axis: 1, ddof: 1, keepdims: true }), [[Math.SQRT2], [0], [3 * Math.SQRT2]]);
    const v = ad.var(i32([1, 2]));
    assert.ok(v.dtype === "float32" || v.dtype === "float64");
    close(v.item(), 0.25);
    assert.equal(ad.var(f64([1, 2])).dtype, "float64");
  });

  test("prod over axes, with keepdims; integers stay integers", () => {
    const x = ad.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    assert.equal(x.prod().item(), 720);
    assert.deepEqual(x.prod({ axis: 1 }).toArray(), [6, 120]);
    assert.deepEqual(x.prod({ axis: 0, keepdims: true }).toArray(), [[4, 10, 18]]);
    assert.deepEqual(ad.prod(ad.tensor([2, 0, 3])).item(), 0);
    const pi = ad.prod(ad.arange(1, 6));
    assert.equal(pi.dtype, "int32");
    assert.equal(pi.item(), 120);
    assert.equal(ad.prod(ad.zeros([0])).item(), 1, "empty product is 1");
    assert.equal(ad.prod(ad.arange(1, 8)).item(), 5040, "odd lengths");
  });

  test("max/min over axes, keepdims, several axes", () => {
    assert.equal(m.max().item(), 7);
    assert.equal(m.min().item(), 0);
    assert.deepEqual(m.max({ axis: 0 }).toArray(), [7, 5, 7]);
    assert.deepEqual(m.min({ axis: 1, keepdims: true }).toArray(), [[1], [0]]);
    assert.deepEqual(
      ad
        .arange(24)
        .reshape([2, 3, 4])
        .max({ axis: [0, 2] })
        .toArray(),
      [15, 19, 23],
    );
    assert.deepEqual(
      ad
        .arange(24)
        .reshape([2, 3, 4])
        .min({ axis: [-1, 0] })
        .toArray(),
      [0, 4, 8],
    );
    assert.equal(ad.max(i32([3, -1])).dtype, "int32");
    assert.throws(() => ad.max(ad.zeros([0])), ad.ShapeError);
  });

  test("mean over axes; integers average to floats", () => {
    assertClose(m.mean({ axis: 1 }), [11 / 3, 14 / 3]);
    assertClose(m.mean({ axis: [0, 1], keepdims: true }), [[25 / 6]]);
    assertClose(m.mean({ axis: 0 }), [4, 2.5, 6]);
    const mi = ad.mean(ad.arange(4));
    assert.ok(mi.dtype === "float32" || mi.dtype === "float64");
    assert.equal(mi.item(), 1.5);
    assert.equal(ad.mean(ad.tensor([true, false, true, true])).item(), 0.75);
  });

  test("logsumexp: axis, keepdims, stable for large inputs", () => {
    const x = ad.tensor([
      [0, Math.log(3)],
      [1000, 1000],
    ]);
    assertClose(ad.logsumexp(x, { axis: 1 }), [Math.log(4), 1000 + Math.LN2], 1e-6);
    assertClose(ad.logsumexp(x, { axis: 1, keepdims: true }), [[Math.log(4)], [1000 + Math.LN2]], 1e-6);
    close(ad.logsumexp(f64([-1e4, -1e4, -1e4])).item(), -1e4 + Math.log(3), 1e-14);
    close(ad.logsumexp(ad.zeros([2, 2])).item(), Math.log(4));
    assert.equal(ad.logsumexp(ad.tensor([Number.NEGATIVE_INFINITY])).item(), Number.NEGATIVE_INFINITY);
  });
});

// ---------------------------------------------------------------- linear algebra

describe("matmul, dot, outer, einsum (vs NumPy)", () => {
  test("matmul 1-D cases: vector·vector is 0-d, vector·matrix and matrix·vector drop the axis", () => {
    const vv = ad.matmul(ad.tensor([1, 2, 3]), ad.tensor([4, 5, 6]));
    assert.deepEqual(vv.shape, []);
    assert.equal(vv.item(), 32);
    assert.deepEqual(
      ad
        .matmul(
          ad.tensor([1, 2]),
          ad.tensor([
            [1, 2, 3],
            [4, 5, 6],
          ]),
        )
        .toArray(),
      [9, 12, 15],
    );
    assert.deepEqual(
      ad
        .matmul(
          ad.tensor([
            [1, 2, 3],
            [4, 5, 6],
          ]),
          ad.tensor([1, 0, 1]),
        )
        .toArray(),
      [4, 10],
    );
    assert.deepEqual(ad.matmul(ad.ones([3]), ad.ones([5, 3, 2])).shape, [5, 2]);
    assert.deepEqual(ad.matmul(ad.ones([5, 2, 3]), ad.ones([3])).shape, [5, 2]);
    assert.throws(() => ad.matmul(ad.scalar(2), ad.ones([2])), ad.ShapeError);
  });

  test("matmul 2-D and batched with broadcasting batch axes, against loops", () => {
    const a = seqT([2, 1, 3, 4]);
    const b = seqT([5, 4, 2], 2);
    const r = ad.matmul(a, b);
    assert.deepEqual(r.shape, [2, 5, 3, 2]);
    const av = Array.from(a.data());
    const bv = Array.from(b.data());
    const want: number[] = [];
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 5; j++)
        for (let p = 0; p < 3; p++)
          for (let q = 0; q < 2; q++) {
            let s = 0;
            for (let k = 0; k < 4; k++) s += av[i * 12 + p * 4 + k]! * bv[j * 8 + k * 2 + q]!;
            want.push(s);
          }
    assert.deepEqual(Array.from(r.data()), want);
    assert.deepEqual(
      ad
        .matmul(
          ad.tensor([
            [1, 2],
            [3, 4],
          ]),
          ad.tensor([
            [5, 6],
            [7, 8],
          ]),
        )
        .toArray(),
      [
        [19, 22],
        [43, 50],
      ],
    );
    assert.deepEqual(
      ad
        .tensor([[1, 2]])
        .matmul(ad.tensor([[3], [4]]))
        .toArray(),
      [[11]],
    );
    const mi = ad.matmul(i32([[1, 2]]), i32([[3], [4]]));
    assert.equal(mi.dtype, "int32");
    assert.deepEqual(mi.toArray(), [[11]]);
    throwsNaming(() => ad.matmul(ad.ones([2, 3]), ad.ones([2, 3])), ad.ShapeError, [
      [2, 3],
      [2, 3],
    ]);
    assert.throws(() => ad.matmul(ad.ones([2, 2, 3]), ad.ones([3, 3, 2])), ad.ShapeError);
  });

  test("dot: inner product, matrix product, scalar multiply, N-D · M-D", () => {
    assert.equal(ad.dot(ad.tensor([1, 2]), ad.tensor([3, 4])).item(), 11);
    assert.deepEqual(ad.dot(ad.tensor([1, 2]), 3).toArray(), [3, 6]);
    const a = seqT([2, 3]);
    const b = seqT([4, 3, 5], 3);
    const r = ad.dot(a, b);
    // np.dot(a, b)[i, j, k] = sum_m a[i, m] * b[j, m, k]
    assert.deepEqual(r.shape, [2, 4, 5]);
    const ref = refEinsum("im,jmk->ijk", a, b);
    assert.deepEqual(Array.from(r.data()), ref.data);
    assert.deepEqual(
      ad
        .tensor([1, 2])
        .dot(ad.tensor([3, 4]))
        .item(),
      11,
    );
  });

  test("outer of vectors (flattening other ranks, as NumPy)", () => {
    assert.deepEqual(ad.outer(ad.tensor([1, 2]), ad.tensor([3, 4, 5])).toArray(), [
      [3, 4, 5],
      [6, 8, 10],
    ]);
    assert.deepEqual(ad.outer(ad.ones([2, 2]), ad.ones([3])).shape, [4, 3]);
    assert.deepEqual(
      ad
        .tensor([1, 2])
        .outer(ad.tensor([1]))
        .toArray(),
      [[1], [2]],
    );
  });

  test("einsum agrees with a brute-force sum for many specs", () => {
    const cases: Array<[string, number[][]]> = [
      [
        "ij,jk->ik",
        [
          [2, 3],
          [3, 4],
        ],
      ],
      ["ij->ji", [[2, 3]]],
      ["ii->", [[3, 3]]],
      ["ii->i", [[3, 3]]],
      ["ij->", [[2, 3]]],
      ["ij->i", [[2, 3]]],
      ["ij->j", [[2, 3]]],
      ["i,i->", [[4], [4]]],
      ["i,j->ij", [[2], [3]]],
      [
        "ij,ij->ij",
        [
          [2, 3],
          [2, 3],
        ],
      ],
      [
        "ij,ji->",
        [
          [2, 3],
          [3, 2],
        ],
      ],
      [
        "bij,bjk->bik",
        [
          [2, 2, 3],
          [2, 3, 4],
        ],
      ],
      [
        "bij,jk->bik",
        [
          [2, 2, 3],
          [3, 2],
        ],
      ],
      ["bii->bi", [[2, 3, 3]]],
      ["iij->j", [[2, 2, 3]]],
      ["i,ij,j->", [[2], [2, 3], [3]]],
      [
        "ij,jk,kl->il",
        [
          [2, 3],
          [3, 2],
          [2, 4],
        ],
      ],
      [
        "abc,cd->dba",
        [
          [2, 3, 2],
          [2, 3],
        ],
      ],
      [
        "ijk,ikl->jl",
        [
          [2, 2, 3],
          [2, 3, 2],
        ],
      ],
    ];
    cases.forEach(([spec, shapes]) => {
      const xs = shapes.map((s, i) => seqT(s, i + 1));
      const want = refEinsum(spec, ...xs);
      const got = ad.einsum(spec, ...xs);
      assert.deepEqual(got.shape, want.shape, spec);
      assert.deepEqual(Array.from(got.data()), want.data, spec);
    });
  });

  test("einsum implicit output (labels appearing once, alphabetical) and errors", () => {
    const a = seqT([2, 3]);
    const b = seqT([3, 4], 2);
    assert.deepEqual(ad.einsum("ij,jk", a, b).toArray(), ad.matmul(a, b).toArray());
    assert.deepEqual(ad.einsum("ba", a).toArray(), a.transpose().toArray());
    assert.equal(ad.einsum("ii", seqT([3, 3])).item(), refEinsum("ii->", seqT([3, 3])).data[0]);
    assert.throws(() => ad.einsum("ij,jk->ik", ad.ones([2, 3]), ad.ones([4, 2])), ad.ShapeError);
    assert.throws(() => ad.einsum("ij->ik", ad.ones([2, 3])), ad.ShapeError);
    assert.throws(() => ad.einsum("ijk->i", ad.ones([2, 3])), ad.ShapeError);
  });
});

// ---------------------------------------------------------------- nn and rounding

describe("softmax and round", () => {
  test("softmax sums to 1 along its axis and matches the formula", () => {
    const x = ad.tensor([
      [1, 2, 3],
      [-1, 0, 5],
    ]);
    const s = ad.softmax(x);
    assertClose(s.sum({ axis: -1 }), [1, 1], 1e-6);
    const e = [1, 2, 3].map(Math.exp);
    const z = e.reduce((p, q) => p + q);
    assertClose(s.at(0), [e[0]! / z, e[1]! / z, e[2]! / z], 1e-6);
    assertClose(ad.softmax(x, 0).sum({ axis: 0 }), [1, 1, 1], 1e-6);
    assertClose(ad.softmax(f64([0, 0])), [0.5, 0.5], 1e-15);
    assertClose(x.softmax().sum({ axis: 1 }), [1, 1], 1e-6);
  });

  test("softmax stays accurate for large logits (float32)", () => {
    // As jax.nn.softmax / torch.softmax: exp(x - max) / sum(exp(x - max)) gives exactly [0.5, 0.5]
    assertClose(ad.softmax(ad.tensor([1e4, 1e4])), [0.5, 0.5], 1e-6);
    assertClose(ad.softmax(ad.tensor([1000, 1000, 0])).sum(), 1, 1e-6);
    assertClose(ad.softmax(ad.tensor([-1e4, 0])), [0, 1], 1e-6);
  });

  test("round is half to even, as NumPy", () => {
    const r = ad.round(ad.tensor([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6]));
    assert.deepEqual(
      Array.from(r.data()).map((v) => v + 0),
      [0, 2, 2, 4, 0, -2, -2, 2, 3, -3],
    );
    assert.deepEqual(Array.from(ad.round(f64([1e15 + 0.5, 4.5])).data()), [1e15, 4]);
    assert.equal(ad.round(i32([3])).dtype, "int32");
    assert.equal(ad.round(2.5).item(), 2);
  });
});
