/**
 * @file The wasm backend against the reference backend (the oracle): matmul over blocking edges,
 * batches and dtypes; elementwise kernels bit for bit (NaN, signed zeros, every broadcast
 * pattern); float32 transcendentals; sums; data movement; the JS-path kernels over resident
 * buffers; switching backends; gradients; threads; dispose. No Node-only imports: it also runs in
 * the browser suite (see test/backend-process.test.ts for what needs fresh processes).
 */

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import * as ad from "adjoint";

const initial = ad.getBackendName() as ad.BackendName;
after(() => ad.setBackend(initial));

/** Run `f` with `name` selected (tensors made inside live on that backend). */
function on<T>(name: ad.BackendName, f: () => T): T {
  const prev = ad.getBackendName() as ad.BackendName;
  ad.setBackend(name);
  try {
    return f();
  } finally {
    ad.setBackend(prev);
  }
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values in [-2, 2), with NaN, ±0, ±Inf, halves and ties sprinkled in when `special`. */
function data(n: number, seed: number, special = false): number[] {
  const r = rng(seed);
  const specials = [Number.NaN, 0, -0, Infinity, -Infinity, 0.5, -0.5, 1.5, -2.5, 1];
  return Array.from({ length: n }, (_, i) =>
    special && i % 7 === 3 ? specials[((i / 7) % specials.length) | 0]! : r() * 4 - 2,
  );
}

function make(values: number[], shape: number[], dtype: ad.DType): ad.Tensor {
  const arr = dtype === "float64" ? Float64Array.from(values) : Float32Array.from(values);
  return ad.tensor(arr, { shape, dtype });
}

/** The same computation on both backends, from the same host data. */
function both(f: () => ad.Tensor): { wasm: ad.Tensor; ref: ad.Tensor } {
  return { wasm: on("wasm", f), ref: on("reference", f) };
}

/** Bitwise equality of two tensors' values (NaN equals NaN, +0 differs from -0). */
function assertIdentical(a: ad.Tensor, b: ad.Tensor, what: string): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shapes`);
  assert.equal(a.dtype, b.dtype, `${what}: dtypes`);
  const x = a.data();
  const y = b.data();
  for (let i = 0; i < x.length; i++)
    if (!Object.is(x[i], y[i])) assert.fail(`${what}: element ${i} is ${x[i]} on wasm, ${y[i]} on reference`);
}

function maxRelError(a: ad.Tensor, b: ad.Tensor): number {
  const x = a.data();
  const y = b.data();
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) {
    num = Math.max(num, Math.abs(x[i]! - y[i]!));
    den = Math.max(den, Math.abs(y[i]!));
  }
  return den === 0 ? num : num / den;
}

describe("selecting a backend", () => {
  test("setBackend and getBackendName; unknown names are AdErrors", () => {
    on("reference", () => assert.equal(ad.getBackendName(), "reference"));
    on("wasm", () => assert.equal(ad.getBackendName(), "wasm"));
    assert.throws(() => ad.setBackend("webgpu" as ad.BackendName), ad.AdError);
    assert.throws(() => ad.setNumThreads(0), ad.AdError);
  });

  test("ready() and init() resolve to the selected backend's name", async () => {
    assert.equal(await ad.ready(), ad.getBackendName());
    assert.equal(await ad.init(), ad.getBackendName());
  });
});

describe("matmul matches the reference backend", () => {
  // [batch, m, k, n]: tile edges (m % 6, n % 8), several depth panels (k > 256), m above the
  // 120-row panel, n above the 2048-column panel, a batch.
  const shapes: [number, number, number, number][] = [
    [1, 37, 300, 53],
    [1, 130, 20, 70],
    [1, 5, 17, 2100],
    [3, 40, 30, 50],
    [1, 64, 64, 64],
    [1, 1, 600, 9],
    // matrix-vector kernels (gemv.ts): one or two rows (column blocks of 8 vectors, single
    // vectors, scalar tail), and one column (dot products with a tail)
    [2, 2, 300, 77],
    [1, 1, 100, 1000],
    [1, 50, 701, 1],
    [3, 90, 33, 1],
    // a few rows: groups of four sharing B, then the rest one at a time
    [2, 7, 130, 45],
    [1, 8, 64, 200],
    [1, 3, 50, 33],
  ];
  for (const dtype of ["float32", "float64"] as const)
    for (const [b, m, k, n] of shapes)
      test(`${dtype} [${b}, ${m}, ${k}] @ [${b}, ${k}, ${n}]`, () => {
        const A = data(b * m * k, 1);
        const B = data(b * k * n, 2);
        const { wasm, ref } = both(() => ad.matmul(make(A, [b, m, k], dtype), make(B, [b, k, n], dtype)));
        // float64 sums in the reference's order (exact); float32 accumulates in float32 lanes.
        assert.ok(
          maxRelError(wasm, ref) <= (dtype === "float64" ? 1e-14 : 2e-6),
          `error ${maxRelError(wasm, ref)}`,
        );
      });

  test("float16 and bfloat16 round the float32 result; int32 stays exact", () => {
    const A = data(40 * 70, 3).map((v) => Math.round(v * 4) / 4);
    const B = data(70 * 30, 4).map((v) => Math.round(v * 4) / 4);
    for (const dtype of ["float16", "bfloat16"] as const) {
      const { wasm, ref } = both(() => ad.matmul(make(A, [40, 70], dtype), make(B, [70, 30], dtype)));
      assert.equal(wasm.dtype, dtype);
      // Sums of quarter-integers are exact in float32, so both round the same value.
      assertIdentical(wasm, ref, dtype);
    }
    const ints = (seed: number, n: number) => data(n, seed).map((v) => Math.round(v * 10));
    const { wasm, ref } = both(() =>
      ad.matmul(
        ad.tensor(Int32Array.from(ints(5, 50 * 60)), { shape: [50, 60] }),
        ad.tensor(Int32Array.from(ints(6, 60 * 40)), { shape: [60, 40] }),
      ),
    );
    assertIdentical(wasm, ref, "int32");
  });

  test("k = 0 gives zeros", () => {
    const { wasm } = both(() => ad.matmul(ad.zeros([100, 0]), ad.zeros([0, 100])));
    assert.equal(ad.sum(ad.abs(wasm)).item(), 0);
  });
});

describe("elementwise kernels are bit-identical to the reference backend", () => {
  // [aShape, bShape]: same shape, scalar, row vector, column vector, outer, a 3-d pattern that
  // needs more than two collapsed groups.
  const patterns: [number[], number[]][] = [
    [
      [50, 60],
      [50, 60],
    ],
    [[50, 60], []],
    [[], [50, 60]],
    [[50, 60], [60]],
    [
      [50, 60],
      [50, 1],
    ],
    [
      [50, 1],
      [1, 60],
    ],
    [
      [6, 50, 10],
      [6, 1, 10],
    ],
    [[3001], [3001]],
  ];
  const ops = {
    add: ad.add,
    sub: ad.sub,
    mul: ad.mul,
    div: ad.div,
    maximum: ad.maximum,
    minimum: ad.minimum,
  };
  for (const dtype of ["float32", "float64"] as const)
    for (const [op, fn] of Object.entries(ops))
      test(`${op} ${dtype} over every broadcast pattern, with NaN, ±0 and ±Inf`, () => {
        patterns.forEach(([sa, sb], p) => {
          const na = sa.reduce((x, y) => x * y, 1);
          const nb = sb.reduce((x, y) => x * y, 1);
          const A = data(na, 10 + p, true);
          const B = data(nb, 20 + p, true);
          const { wasm, ref } = both(() => fn(make(A, sa, dtype), make(B, sb, dtype)));
          assertIdentical(wasm, ref, `${op} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
        });
      });

  for (const dtype of ["float32", "float64"] as const)
    test(`comparisons and where ${dtype} over broadcast patterns, with NaN and ±0`, () => {
      const cmp = {
        equal: ad.equal,
        notEqual: ad.notEqual,
        less: ad.less,
        lessEqual: ad.lessEqual,
        greater: ad.greater,
        greaterEqual: ad.greaterEqual,
      };
      patterns.forEach(([sa, sb], p) => {
        const na = sa.reduce((x, y) => x * y, 1);
        const nb = sb.reduce((x, y) => x * y, 1);
        // Coarse values so that ties (equal elements) occur.
        const A = data(na, 30 + p, true).map((v) => Math.round(v));
        const B = data(nb, 40 + p, true).map((v) => Math.round(v));
        for (const [name, fn] of Object.entries(cmp)) {
          const { wasm, ref } = both(() => fn(make(A, sa, dtype), make(B, sb, dtype)));
          assertIdentical(wasm, ref, `${name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
        }
        const { wasm, ref } = both(() => {
          const x = make(A, sa, dtype);
          const y = make(B, sb, dtype);
          return ad.where(ad.greater(x, y), x, ad.where(ad.less(y, 0), y, 0));
        });
        assertIdentical(wasm, ref, `where ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
      });
    });

  for (const dtype of ["float32", "float64"] as const)
    test(`neg abs sqrt floor ceil round ${dtype}, with halves and specials`, () => {
      const X = data(5000, 7, true).map((v, i) => (i % 5 === 1 ? v * 1e3 : v));
      const unary = {
        neg: ad.neg,
        abs: ad.abs,
        sqrt: ad.sqrt,
        floor: ad.floor,
        ceil: ad.ceil,
        round: ad.round,
      };
      for (const [op, fn] of Object.entries(unary)) {
        const { wasm, ref } = both(() => fn(make(X, [5000], dtype)));
        assertIdentical(wasm, ref, op);
      }
    });

  test("float32 exp, log, tanh and sigmoid round exactly as float32(Math.f(x)) over many magnitudes", () => {
    const r = rng(50);
    const n = 20000;
    // Magnitudes from 1e-40 (subnormal) to 3e38, both signs, plus the edges of exp's range.
    const X = Array.from({ length: n }, (_, i) => {
      const mag = Math.exp((r() - 0.5) * 180);
      return i % 3 === 0 ? (r() - 0.5) * 200 : r() < 0.5 ? -mag : mag;
    });
    X.splice(
      0,
      14,
      0,
      -0,
      Infinity,
      -Infinity,
      Number.NaN,
      1,
      88.72,
      88.73,
      -87.33,
      -103.97,
      -104,
      9.02,
      1e-8,
      -1e-30,
    );
    const fns = { exp: ad.exp, log: ad.log, tanh: ad.tanh, sigmoid: ad.sigmoid };
    for (const [name, fn] of Object.entries(fns))
      for (const dtype of ["float32", "float16"] as const) {
        const { wasm, ref } = both(() => fn(ad.astype(make(X, [n], "float32"), dtype)));
        assertIdentical(wasm, ref, `${name} ${dtype}`);
      }
  });

  test("a chain mixing wasm and JS kernels (exp, tanh, where, comparisons) stays identical", () => {
    const X = data(4096, 8);
    const f = () => {
      const x = make(X, [64, 64], "float32");
      const y = ad.tanh(ad.add(ad.mul(x, 3), ad.exp(x)));
      return ad.where(ad.greater(y, 0), ad.sqrt(ad.abs(y)), ad.neg(y));
    };
    const { wasm, ref } = both(f);
    assertIdentical(wasm, ref, "chain");
  });
});

describe("reductions and the JS-path kernels over resident buffers", () => {
  test("sum over leading, trailing, middle and all axes matches the reference", () => {
    for (const dtype of ["float32", "float64"] as const) {
      const X = data(6 * 70 * 13, 9);
      for (const axis of [0, 1, 2, [0, 1], [1, 2], [0, 1, 2]]) {
        const { wasm, ref } = both(() => ad.sum(make(X, [6, 70, 13], dtype), { axis }));
        assert.deepEqual(wasm.shape, ref.shape);
        assert.ok(maxRelError(wasm, ref) <= (dtype === "float64" ? 1e-14 : 1e-6), `${dtype} axis ${axis}`);
      }
    }
  });

  test("max, min, argmax and argmin over every contiguous block of axes are exact: first NaN, first of ties, ±0", () => {
    const r = rng(80);
    const fill = (n: number, mode: number) =>
      Array.from({ length: n }, () => {
        const u = r();
        if (mode === 0) return u * 4 - 2;
        if (mode === 1) return Math.round(u * 4 - 2); // many ties
        if (mode === 2) return r() < 0.01 ? Number.NaN : u - 0.5;
        if (mode === 3) return u < 0.5 ? 0 : -0;
        return u < 0.9 ? -Infinity : r() < 0.5 ? Infinity : -1;
      });
    // Runs shorter and longer than a vector, column counts around the 16-column blocks.
    const shapes = [[3001], [7, 500], [500, 7], [6, 33, 17], [2, 3, 401], [2100, 3]];
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      for (let mode = 0; mode < 5; mode++) {
        const X = fill(n, mode);
        for (const dtype of ["float32", "float64"] as const)
          for (let a = 0; a < shape.length; a++)
            for (let b = a; b < shape.length; b++) {
              const axis = Array.from({ length: b - a + 1 }, (_, i) => a + i);
              const fns: [string, (x: ad.Tensor) => ad.Tensor][] = [
                ["max", (x) => ad.max(x, { axis })],
                ["min", (x) => ad.min(x, { axis })],
              ];
              if (a === b)
                fns.push(
                  ["argmax", (x) => ad.argmax(x, { axis: a })],
                  ["argmin", (x) => ad.argmin(x, { axis: a })],
                );
              for (const [name, f] of fns) {
                const { wasm, ref } = both(() => f(make(X, shape, dtype)));
                assertIdentical(
                  wasm,
                  ref,
                  `${name} ${dtype} ${JSON.stringify(shape)} axis ${axis} mode ${mode}`,
                );
              }
            }
      }
    }
  });

  test("reductions over axes in several runs: extrema exact (first NaN, ±0 as met), sums to rounding", () => {
    const r = rng(81);
    const shape = [6, 5, 7, 13]; // a conv bias gradient's pattern: axes 0, 2 and 3
    const n = shape.reduce((a, b) => a * b, 1);
    const vals = Array.from({ length: n }, () => {
      const u = r();
      return u < 0.02 ? Number.NaN : u < 0.1 ? 0 : u < 0.2 ? -0 : Math.round(u * 8 - 4);
    });
    for (const dtype of ["float32", "float64"] as const)
      for (const axis of [
        [0, 2, 3],
        [0, 2],
        [1, 3],
        [0, 1, 3],
      ]) {
        for (const [name, f] of [
          ["max", (x: ad.Tensor) => ad.max(x, { axis })],
          ["min", (x: ad.Tensor) => ad.min(x, { axis })],
        ] as const) {
          const { wasm, ref } = both(() => f(make(vals, shape, dtype)));
          assertIdentical(wasm, ref, `${name} ${dtype} axis ${axis}`);
        }
        const X = data(n, 82);
        const { wasm, ref } = both(() => ad.sum(make(X, shape, dtype), { axis, keepdims: true }));
        assert.deepEqual(wasm.shape, ref.shape);
        assert.ok(
          maxRelError(wasm, ref) <= (dtype === "float64" ? 1e-14 : 1e-6),
          `sum ${dtype} axis ${axis}`,
        );
      }
  });

  test("sums over non-trailing axes equal the reference's bits (terms in the same order)", () => {
    const X = data(700 * 37, 81);
    for (const dtype of ["float32", "float64"] as const)
      for (const [shape, axis] of [
        [[700, 37], 0],
        [[7, 100, 37], 1],
        [
          [7, 100, 37],
          [0, 1],
        ],
      ] as [number[], number | number[]][]) {
        const { wasm, ref } = both(() => ad.sum(make(X, shape, dtype), { axis }));
        assertIdentical(wasm, ref, `sum ${dtype} ${JSON.stringify(shape)} axis ${axis}`);
      }
  });

  test("max, argmax, transpose, slice, concat, pad, flip, gather and cast agree exactly", () => {
    const X = data(60 * 70, 11, true);
    const cases: [string, (x: ad.Tensor) => ad.Tensor][] = [
      ["max", (x) => ad.max(x, { axis: 1 })],
      ["argmax", (x) => ad.argmax(x, { axis: 0 })],
      ["transpose", (x) => ad.transpose(x)],
      ["slice", (x) => ad.slice(x, [3, 5], [40, 50])],
      ["concat", (x) => ad.concat([x, x], 1)],
      [
        "pad",
        (x) =>
          ad.pad(x, [
            [1, 2],
            [0, 3],
          ]),
      ],
      ["flip", (x) => ad.flip(x, 0)],
      ["take", (x) => ad.take(x, ad.tensor(Int32Array.from([5, 0, 59, 5]), { shape: [4] }), 0)],
      ["astype", (x) => ad.astype(x, "float64")],
      ["float16", (x) => ad.astype(x, "float16")],
    ];
    for (const [name, f] of cases) {
      // Make the input resident first (a wasm kernel's result), then apply the JS-path op.
      const { wasm, ref } = both(() => f(ad.add(make(X, [60, 70], "float32"), 0.25)));
      assertIdentical(wasm, ref, name);
    }
  });
});

/** Every non-negative finite float16 value, indexed by its bit pattern (monotonic in it). */
const HALF: number[] = Array.from({ length: 0x7c00 }, (_, h) =>
  h < 0x400 ? h * 2 ** -24 : (1 + (h & 0x3ff) / 1024) * 2 ** ((h >>> 10) - 15),
);

/** float16 rounding by search among all float16 values: nearest, ties to the even bit pattern. */
function f16Oracle(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const a = Math.abs(x);
  let r: number;
  if (a >= 65520) r = Infinity;
  else {
    let lo = 0;
    let hi = HALF.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (HALF[mid]! <= a) lo = mid;
      else hi = mid;
    }
    if (a >= HALF[hi]!) lo = hi;
    const up = Math.min(lo + 1, HALF.length - 1);
    const m = (HALF[lo]! + HALF[up]!) / 2; // exact: float16 values have 11 significant bits
    r = a < m || up === lo ? HALF[lo]! : a > m ? HALF[up]! : HALF[lo % 2 === 0 ? lo : up]!;
  }
  return x < 0 || Object.is(x, -0) ? -r : r;
}

/** bfloat16 rounding of a float32 value: the nearer of its two bfloat16 neighbours, ties to even. */
function bf16Oracle(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  const top = u[0]! >>> 16;
  const val = (t: number) => {
    u[0] = t << 16;
    return f[0]!;
  };
  const lo = val(top);
  if (lo === x) return lo;
  const hi = val(top + 1); // the next value away from zero (Inf after the largest)
  // Past the largest finite value, rounding compares with 2^128 (where the next one would be).
  const far = Number.isFinite(hi) ? hi : Math.sign(x) * 2 ** 128;
  const d = Math.abs(x - lo) - Math.abs(far - x);
  return d < 0 ? lo : d > 0 ? hi : top % 2 === 0 ? lo : hi;
}

describe("casts are bit-identical to the reference backend", () => {
  const DTYPES = ["float32", "float64", "int32", "bool", "float16", "bfloat16"] as const;
  test("every pair of dtypes, with NaN, ±0, ±Inf, halves, ties and out-of-int32-range values", () => {
    const specials = [Number.NaN, 0, -0, Infinity, -Infinity, 65504, 65520, -65519.9, 2 ** 31, -(2 ** 31)];
    const more = [2 ** 32 + 5.5, 1e20, -3e9, 0.5, 1.5, -2.5, 1 + 2 ** -11, 2 ** -25, 3 * 2 ** -26];
    const r = rng(70);
    const n = 5003;
    const X = Array.from({ length: n }, (_, i) => {
      const k = i % 11;
      if (k === 0) return [...specials, ...more][((i / 11) | 0) % (specials.length + more.length)]!;
      if (k < 4) return (r() - 0.5) * 10;
      if (k < 7) return (r() - 0.5) * 2 ** (r() * 80 - 40);
      return Math.round((r() - 0.5) * 1e5) / 64;
    });
    for (const from of DTYPES)
      for (const to of DTYPES) {
        const { wasm, ref } = both(() => ad.astype(ad.astype(make(X, [n], "float64"), from), to));
        assertIdentical(wasm, ref, `${from} -> ${to}`);
      }
  });

  test("float16 and bfloat16 rounding equal a search among all 16-bit values (ties to even)", () => {
    const r = rng(71);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    const X: number[] = [];
    for (let i = 0; i < 20000; i++) {
      u[0] = (r() * 2 ** 32) >>> 0; // any float32 bit pattern
      X.push(f[0]!);
    }
    // Float16 ties and their neighbours in every binade, subnormals included, and the range edges.
    for (let h = 0; h < 0x7bff; h += 37) {
      const m = (HALF[h]! + HALF[h + 1]!) / 2;
      X.push(m, -m, Math.fround(m * (1 + 2 ** -23)), Math.fround(m * (1 - 2 ** -23)));
    }
    X.push(65504, 65519.99, 65520, 2 ** -24, 2 ** -25, 2 ** -26, 1e-45, 3.4e38, -0);
    const n = X.length;
    for (const dtype of ["float16", "bfloat16"] as const) {
      const oracle = dtype === "float16" ? f16Oracle : bf16Oracle;
      const { wasm, ref } = both(() => ad.astype(make(X, [n], "float32"), dtype));
      const w = wasm.data();
      const e = ref.data();
      for (let i = 0; i < n; i++) {
        const o = Math.fround(oracle(X[i]!));
        if (!Object.is(w[i], o)) assert.fail(`${dtype} of ${X[i]}: wasm ${w[i]}, oracle ${o}`);
        if (!Object.is(e[i], o)) assert.fail(`${dtype} of ${X[i]}: reference ${e[i]}, oracle ${o}`);
      }
    }
    // From float64 directly (no rounding to float32 first) for float16.
    const D = X.map((v, i) => v * (1 + (i % 3) * 2 ** -40));
    const { wasm, ref } = both(() => ad.astype(make(D, [n], "float64"), "float16"));
    const w = wasm.data();
    const e = ref.data();
    for (let i = 0; i < n; i++) {
      const o = f16Oracle(D[i]!);
      if (!Object.is(w[i], o) || !Object.is(e[i], o))
        assert.fail(`float16 of ${D[i]}: wasm ${w[i]}, reference ${e[i]}, oracle ${o}`);
    }
  });
});

describe("data movement kernels are bit-identical to the reference backend", () => {
  const X = data(4 * 30 * 50, 21, true);
  const cases: [string, (x: ad.Tensor) => ad.Tensor][] = [
    ["batched transpose", (x) => ad.transpose(x, [0, 2, 1])],
    ["transpose 2,0,1", (x) => ad.transpose(x, [2, 0, 1])],
    ["transpose 1,0,2", (x) => ad.transpose(x, [1, 0, 2])],
    ["2-D transpose", (x) => ad.transpose(ad.reshape(x, [120, 50]))],
    ["broadcast", (x) => ad.broadcastTo(ad.slice(x, [0, 0, 0], [4, 1, 50]), [4, 30, 50])],
    [
      "broadcast leading",
      (x) => ad.broadcastTo(ad.reshape(ad.slice(x, [0, 0, 0], [1, 30, 50]), [30, 50]), [3, 30, 50]),
    ],
    ["slice", (x) => ad.slice(x, [1, 3, 7], [3, 25, 40])],
    ["flip", (x) => ad.flip(x, [0, 2])],
    [
      "pad",
      (x) =>
        ad.pad(x, [
          [0, 1],
          [2, 0],
          [3, 3],
        ]),
    ],
    ["concat", (x) => ad.concat([x, ad.slice(x, [0, 0, 0], [4, 30, 7])], 2)],
    ["stack", (x) => ad.stack([x, x], 1)],
  ];
  for (const dtype of ["float32", "float64", "int32", "bool"] as const)
    test(`${dtype}: transposes, broadcasts, slices, flips, pads and concatenations`, () => {
      for (const [name, f] of cases) {
        const { wasm, ref } = both(() => f(ad.astype(make(X, [4, 30, 50], "float64"), dtype)));
        assertIdentical(wasm, ref, `${dtype} ${name}`);
      }
    });
});

describe("tensors keep working across a backend switch", () => {
  test("a resident wasm tensor in reference operations, and a reference tensor in wasm ones", () => {
    const X = data(100 * 100, 12);
    const w = on("wasm", () => ad.add(make(X, [100, 100], "float32"), 1)); // resident
    const r = on("reference", () => make(X, [100, 100], "float32"));
    const expected = on("reference", () => {
      const x = make(X, [100, 100], "float32");
      return ad.add(x, ad.add(x, 1));
    });
    on("reference", () => {
      assertIdentical(ad.add(r, w), expected, "reference op with a wasm operand");
      assertIdentical(ad.add(ad.zeros([100, 100]), ad.add(r, w)), expected, "reference first");
    });
    on("wasm", () => assertIdentical(ad.add(r, w), expected, "wasm op with a reference operand"));
  });
});

describe("gradients through wasm kernels", () => {
  test("gradcheck of a two-layer network in float64 with wasm-sized matmuls", () => {
    on("wasm", () => {
      const X = make(data(64 * 48, 13), [64, 48], "float64");
      const W1 = make(
        data(48 * 64, 14).map((v) => v / 8),
        [48, 64],
        "float64",
      );
      const W2 = make(
        data(64 * 40, 15).map((v) => v / 8),
        [64, 40],
        "float64",
      );
      const loss = (a: ad.Tensor, b: ad.Tensor) => ad.sum(ad.square(ad.matmul(ad.tanh(ad.matmul(X, a)), b)));
      const res = ad.gradcheck(loss, [W1, W2]);
      assert.ok(res.ok, res.message);
    });
  });
});

describe("threads", () => {
  test("a large matmul runs on two threads once the workers are up, bit-identical to one thread", async (t) => {
    if (!on("wasm", () => ad.wasmStats().sharedMemory)) {
      t.skip("no shared memory here (a browser page that is not cross-origin isolated)");
      return;
    }
    const prev = ad.getNumThreads();
    const prevBackend = ad.getBackendName() as ad.BackendName;
    // Not `on(...)`: this body awaits, and `on` restores the backend at the first await.
    ad.setBackend("wasm");
    try {
      {
        // Products split every way the threaded driver splits them: blocks of rows, blocks of
        // columns for few rows, several shared B panels in depth (k > 512 at n > 2048) and in
        // width (n > 2048), tile edges, and a batch of small items shared out whole.
        const products: [ad.DType, number, number, number, number][] = [
          ["float32", 1, 256, 256, 256],
          ["float32", 1, 50, 700, 2100],
          ["float64", 1, 301, 257, 129],
          ["float32", 64, 40, 60, 70],
        ];
        const product =
          ([dtype, bt, m, k, n]: (typeof products)[number], seed: number) =>
          () =>
            ad.matmul(
              make(data(bt * m * k, seed), [bt, m, k], dtype),
              make(data(bt * k * n, seed + 1), [bt, k, n], dtype),
            );
        ad.setNumThreads(1);
        const single = products.map((p, i) => product(p, 60 + 2 * i)());
        ad.setNumThreads(2);
        const a = make(data(256 * 256, 16), [256, 256], "float32");
        const b = make(data(256 * 256, 17), [256, 256], "float32");
        const before = ad.wasmStats().parallelKernels;
        for (let i = 0; i < 200 && ad.wasmStats().parallelKernels === before; i++) {
          await new Promise((r) => setTimeout(r, 10));
          ad.matmul(a, b); // starts the workers (the first calls run here until they are up)
        }
        assert.ok(ad.wasmStats().parallelKernels > before, "the workers never came up");
        // Elementwise kernels and sums split across threads give the reference's bits too.
        const X = data(512 * 600, 18, true);
        const Y = data(600, 19);
        const cases: [string, () => ad.Tensor][] = [
          ["tanh", () => ad.tanh(make(X, [512, 600], "float32"))],
          ["add by rows", () => ad.add(make(X, [512, 600], "float32"), make(Y, [600], "float32"))],
          ["mul by columns", () => ad.mul(make(X, [512 * 600], "float32"), 3)],
          ["sqrt", () => ad.sqrt(make(X, [512 * 600], "float64"))],
          ["greater", () => ad.greater(make(X, [512, 600], "float32"), 0.5)],
        ];
        // A worker the OS runs late is left out of a kernel (the caller does its share), so each
        // case repeats until one run was shared; every run must give the reference's bits.
        const shared = async (name: string, f: () => ad.Tensor, check: (t: ad.Tensor) => void) => {
          for (let i = 0; i < 100; i++) {
            const k = ad.wasmStats().parallelKernels;
            check(f());
            if (ad.wasmStats().parallelKernels > k) return;
            await new Promise((r) => setTimeout(r, 2));
          }
          assert.fail(`${name} never ran on two threads`);
        };
        for (const [i, p] of products.entries())
          await shared(`matmul ${p}`, product(p, 60 + 2 * i), (t) =>
            assertIdentical(t, single[i]!, `threaded matmul ${p} vs one thread`),
          );
        for (const [name, f] of cases) {
          const expected = on("reference", f);
          await shared(name, f, (t) => assertIdentical(t, expected, `threaded ${name}`));
        }
        const cols: [string, () => ad.Tensor][] = [
          ["sum over rows (columns split)", () => ad.sum(make(X, [512, 600], "float64"), { axis: 0 })],
          ["argmax over rows (columns split)", () => ad.argmax(make(X, [512, 600], "float32"), { axis: 0 })],
          ["max over columns (rows split)", () => ad.max(make(X, [512, 600], "float32"), { axis: 1 })],
          ["float16 rounding", () => ad.astype(make(X, [512 * 600], "float32"), "float16")],
        ];
        for (const [name, f] of cols) {
          const expected = on("reference", f);
          await shared(name, f, (t) => assertIdentical(t, expected, `threaded ${name}`));
        }
        // More threads than cores: any worker may take any block (each its own scratch).
        ad.setNumThreads(4);
        for (const [i, p] of products.entries())
          await shared(`matmul ${p} on 4 threads`, product(p, 60 + 2 * i), (t) =>
            assertIdentical(t, single[i]!, `matmul ${p} on 4 threads vs one thread`),
          );
        const S = X.map((v) => (Number.isFinite(v) ? v : 0));
        const sumOf = () => ad.sum(make(S, [600, 512], "float64"), { axis: 1 });
        const refSum = on("reference", sumOf);
        await shared("sum", sumOf, (t) => assert.ok(maxRelError(t, refSum) < 1e-14, "threaded sum"));
      }
    } finally {
      ad.setNumThreads(prev);
      ad.setBackend(prevBackend);
    }
  });
});

describe("memory", () => {
  test("dispose releases at once; later use of the tensor (or a reshape of it) throws", () => {
    on("wasm", () => {
      const t = ad.add(ad.ones([100, 100]), 1);
      const view = t.reshape([10000]);
      const before = ad.wasmStats().disposed;
      ad.dispose({ t, list: [t] });
      assert.equal(ad.wasmStats().disposed, before + 1);
      assert.throws(() => t.data(), ad.AdError);
      assert.throws(() => ad.add(view, 1), ad.AdError);
      ad.dispose(ad.tensor([1, 2])); // host tensors: nothing to do
    });
  });
});
