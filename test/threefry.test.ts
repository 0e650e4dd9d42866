/** @file Threefry-2x32 and JAX-compatible key handling, against published vectors and JAX outputs. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { DTypeError, ShapeError } from "../src/errors.js";
import {
  foldIn,
  type Key,
  keyFromSeed,
  randomBits,
  randomBits64,
  splitKey,
  threefry2x32,
  uniformFloat32FromBits,
  uniformFloat64FromBits,
} from "../src/random/threefry.js";

const u32 = (...xs: number[]): Uint32Array => Uint32Array.from(xs);
const list = (a: ArrayLike<number>): number[] => Array.from(a);

// The cipher written as a loop over its schedule (JAX's rolled lowering), to check the unrolled one.
function threefryRolled(k0: number, k1: number, x0: number, x1: number): [number, number] {
  const rot = [13, 15, 26, 6, 17, 29, 16, 24];
  const ks = [k0, k1, (k0 ^ k1 ^ 0x1bd11bda) >>> 0];
  let a = (x0 + k0) >>> 0;
  let b = (x1 + k1) >>> 0;
  for (let s = 0; s < 5; s++) {
    for (let j = 0; j < 4; j++) {
      const r = rot[(s % 2) * 4 + j]!;
      a = (a + b) >>> 0;
      b = (((b << r) | (b >>> (32 - r))) ^ a) >>> 0;
    }
    a = (a + ks[(s + 1) % 3]!) >>> 0;
    b = (b + ks[(s + 2) % 3]! + s + 1) >>> 0;
  }
  return [a, b];
}

test("threefry2x32: the Random123 known-answer vectors (20 rounds)", () => {
  const cases: Array<[number, number, number, number, number, number]> = [
    [0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3, 0xc4923a9c, 0x483df7a0],
    [0, 0, 0, 0, 0x6b200159, 0x99ba4efe],
    [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x1cb996fc, 0xbb002be7],
  ];
  for (const [k0, k1, x0, x1, y0, y1] of cases) {
    const c0 = u32(x0);
    const c1 = u32(x1);
    const [o0, o1] = threefry2x32(k0, k1, c0, c1);
    assert.deepEqual([o0[0], o1[0]], [y0, y1]);
    assert.deepEqual([c0[0], c1[0]], [x0, x1], "inputs are left unchanged");
  }
});

test("threefry2x32 agrees with the rolled schedule on many blocks", () => {
  let s = 12345;
  const next = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const n = 500;
  const x0 = new Uint32Array(n).map(next);
  const x1 = new Uint32Array(n).map(next);
  const k0 = next();
  const k1 = next();
  const [y0, y1] = threefry2x32(k0, k1, x0, x1);
  for (let i = 0; i < n; i++) {
    assert.deepEqual([y0[i], y1[i]], threefryRolled(k0, k1, x0[i]!, x1[i]!));
  }
  assert.deepEqual(threefry2x32(1, 2, u32(), u32()), [u32(), u32()]);
});

test("keyFromSeed is jax.random.PRNGKey", () => {
  assert.deepEqual(keyFromSeed(0), [0, 0]);
  assert.deepEqual(keyFromSeed(42), [0, 42]);
  assert.deepEqual(keyFromSeed(2 ** 32 - 1), [0, 0xffffffff]);
  assert.deepEqual(keyFromSeed(2 ** 32 + 5), [1, 5]);
  assert.deepEqual(keyFromSeed(-1), [0xffffffff, 0xffffffff]);
  assert.deepEqual(keyFromSeed(-(2 ** 31)), [0xffffffff, 0x80000000]);
  assert.deepEqual(keyFromSeed(2n ** 63n), [0x80000000, 0]);
  assert.throws(() => keyFromSeed(1.5), DTypeError);
  assert.throws(() => keyFromSeed(Number.NaN), DTypeError);
  assert.throws(() => keyFromSeed(2 ** 60), DTypeError);
});

test("splitKey is jax.random.split (original counters)", () => {
  assert.deepEqual(splitKey([0, 0], 2), [
    [4146024105, 967050713],
    [2718843009, 1272950319],
  ]);
  assert.deepEqual(splitKey([0, 0]), splitKey([0, 0], 2));
  assert.deepEqual(splitKey(keyFromSeed(42)), [
    [2465931498, 3679230171],
    [255383827, 267815257],
  ]);
  assert.deepEqual(splitKey([0, 0], 3), [
    [2467461003, 428148500],
    [3186719485, 3840466878],
    [2562233961, 1946702221],
  ]);
  // split(k, 4) is the words of bits(k, (8,)) taken in pairs
  assert.deepEqual(splitKey([0, 0], 4).flat(), list(randomBits([0, 0], 8)));
  assert.deepEqual(splitKey([0, 0], 0), []);
});

test("randomBits is jax.random.bits for uint32, odd counts included", () => {
  assert.deepEqual(list(randomBits([0, 0], 4)), [4146024105, 967050713, 2718843009, 1272950319]);
  assert.deepEqual(
    list(randomBits([0, 0], 8)),
    [2285895361, 1501764800, 1518642379, 4090693311, 433833334, 4221794875, 839183663, 3740430601],
  );
  // three counters pad to [0, 1] · [2, 0]: entries 0 and 2 match the 4-word draw, entry 1 does not
  assert.deepEqual(list(randomBits([0, 0], 3)), [4146024105, 1351547692, 2718843009]);
  assert.deepEqual(list(randomBits([0, 0], 1)), [0x6b200159]);
  assert.equal(randomBits([0, 0], 0).length, 0);
});

test("partitionable counters reproduce JAX >= 0.5 defaults", () => {
  const opts = { partitionable: true };
  assert.deepEqual(splitKey([0, 0], 8, opts), [
    [1797259609, 2579123966],
    [928981903, 3453687069],
    [4146024105, 2718843009],
    [2467461003, 3840466878],
    [2285895361, 433833334],
    [1524306142, 1887795613],
    [3792494674, 2909014575],
    [2716826189, 292468403],
  ]);
  // 32-bit draws xor the two words of counter (0, i); a shorter draw is a prefix of a longer one
  assert.deepEqual(list(randomBits([0, 0], 1, opts)), [(1797259609 ^ 2579123966) >>> 0]);
  assert.deepEqual(list(randomBits([0, 0], 3, opts)), list(randomBits([0, 0], 4, opts)).slice(0, 3));
  const [hi, lo] = randomBits64([0, 0], 2, opts);
  assert.deepEqual(
    [list(hi), list(lo)],
    [
      [1797259609, 928981903],
      [2579123966, 3453687069],
    ],
  );
});

test("foldIn is jax.random.fold_in", () => {
  assert.deepEqual(foldIn([0, 0], 3), [2467461003, 3840466878]);
  assert.deepEqual(foldIn([0, 0], 0), [0x6b200159, 0x99ba4efe]);
  assert.throws(() => foldIn([0, 0], 0.5), DTypeError);
});

test("randomBits64 takes the first half of 2n words as high words (JAX's uint64 bits)", () => {
  const key: Key = [7, 11];
  const all = randomBits(key, 10);
  const [hi, lo] = randomBits64(key, 5);
  assert.deepEqual(list(hi), list(all.subarray(0, 5)));
  assert.deepEqual(list(lo), list(all.subarray(5)));
});

test("uniformFloat32FromBits is JAX's float32 uniform", () => {
  // jax.random.uniform(key(0), (4,)) before JAX 0.5 (these also reproduce its published normals)
  const u = uniformFloat32FromBits(randomBits([0, 0], 4));
  assert.ok(u instanceof Float32Array);
  assert.deepEqual(list(u), [0.9653214, 0.22515893, 0.63302994, 0.29638183].map(Math.fround));
  // the bit trick itself: (bits >>> 9) | bits(1.0f) read as a float32, minus 1
  const bits = randomBits([3, 4], 1000);
  const view = new DataView(new ArrayBuffer(4));
  const got = uniformFloat32FromBits(bits);
  bits.forEach((b, i) => {
    view.setUint32(0, (b >>> 9) | 0x3f800000);
    assert.equal(got[i], view.getFloat32(0) - 1);
  });
  assert.deepEqual(list(uniformFloat32FromBits(u32(0, 0xffffffff))), [0, 1 - 2 ** -23]);
});

test("uniformFloat64FromBits is JAX's float64 uniform (52 mantissa bits)", () => {
  const [hi, lo] = randomBits64([5, 6], 1000);
  const got = uniformFloat64FromBits(hi, lo);
  const view = new DataView(new ArrayBuffer(8));
  for (let i = 0; i < hi.length; i++) {
    const bits = ((BigInt(hi[i]!) << 32n) | BigInt(lo[i]!)) >> 12n;
    view.setBigUint64(0, bits | 0x3ff0000000000000n);
    assert.equal(got[i], view.getFloat64(0) - 1);
  }
  assert.deepEqual(list(uniformFloat64FromBits(u32(0, 0xffffffff), u32(0, 0xffffffff))), [0, 1 - 2 ** -52]);
  assert.throws(() => uniformFloat64FromBits(u32(1), u32()), ShapeError);
});

test("uniform draws look uniform", () => {
  const n = 100000;
  const u = uniformFloat32FromBits(randomBits(keyFromSeed(1), n));
  let mean = 0;
  const bins = new Array<number>(10).fill(0);
  for (const v of u) {
    assert.ok(v >= 0 && v < 1);
    mean += v / n;
    bins[Math.floor(v * 10)]! += 1;
  }
  assert.ok(Math.abs(mean - 0.5) < 0.005, `mean ${mean}`);
  for (const c of bins) assert.ok(Math.abs(c - n / 10) < 500, `bins ${bins}`);
});

test("bad input raises typed errors", () => {
  assert.throws(() => threefry2x32(0, 0, u32(1, 2), u32(1)), ShapeError);
  assert.throws(() => threefry2x32(-1, 0, u32(1), u32(1)), DTypeError);
  assert.throws(() => threefry2x32(2 ** 32, 0, u32(1), u32(1)), DTypeError);
  assert.throws(() => splitKey([0, 0.5], 2), DTypeError);
  assert.throws(() => splitKey([0] as unknown as Key, 2), ShapeError);
  assert.throws(() => splitKey([0, 0], -1), ShapeError);
  assert.throws(() => randomBits([0, 0], 1.5), ShapeError);
});
