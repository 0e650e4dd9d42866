/**
 * @file The Threefry-2x32 counter-based block cipher (20 rounds; Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011) and the key handling built on it, bit for bit as JAX's
 * `jax.random` with the threefry2x32 implementation. Pure uint32 arithmetic, no dependencies.
 *
 * JAX has two ways to turn a key into counters. The default here is the original one (JAX < 0.5,
 * or `jax_threefry_partitionable=False`); `{ partitionable: true }` gives the per-element counters
 * that JAX ≥ 0.5 uses by default. Key derivation by `keyFromSeed` and `foldIn` is the same in both.
 */

import { DTypeError, ShapeError } from "../errors.js";

/** A threefry key: two uint32 words, as `jax.random.key_data(key)`. */
export type Key = [number, number];

/** Which JAX counter layout to reproduce (see the file header). */
export interface ThreefryOptions {
  /** Per-element 64-bit counters, JAX's `jax_threefry_partitionable=True` (its default since 0.5). */
  partitionable?: boolean;
}

// Skein's key-schedule parity constant.
const PARITY = 0x1bd11bda;

// 32-bit left rotation (on int32 bit patterns).
const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

/**
 * Threefry-2x32 with 20 rounds over counter blocks `(x0[i], x1[i])`, as JAX's `threefry2x32_p`.
 * Returns fresh arrays; the inputs are left unchanged.
 * @example
 * threefry2x32(0, 0, Uint32Array.of(0), Uint32Array.of(0)); // [Uint32Array [0x6b200159], Uint32Array [0x99ba4efe]]
 */
export function threefry2x32(
  key0: number,
  key1: number,
  x0: Uint32Array,
  x1: Uint32Array,
): [Uint32Array, Uint32Array] {
  checkWord("threefry2x32", key0);
  checkWord("threefry2x32", key1);
  if (x0.length !== x1.length) {
    throw new ShapeError(
      `threefry2x32: counter halves must match in length, got [${x0.length}] and [${x1.length}]`,
    );
  }
  const k0 = key0 | 0;
  const k1 = key1 | 0;
  const k2 = (key0 ^ key1 ^ PARITY) | 0;
  const y0 = new Uint32Array(x0.length);
  const y1 = new Uint32Array(x0.length);
  // Unrolled like JAX's lowering (3x faster than looping over the schedule). int32 adds wrap like
  // uint32 adds once truncated with |0, and the Uint32Array stores reinterpret the bits.
  // biome-ignore format: one line per round (add, rotate, xor) reads like the cipher's definition
  for (let i = 0; i < x0.length; i++) {
    let a = (x0[i]! + k0) | 0;
    let b = (x1[i]! + k1) | 0;
    // Rounds 1-4 (rotations 13 15 26 6), then inject key words 1, 2 and the injection count 1.
    a = (a + b) | 0; b = rotl(b, 13) ^ a;
    a = (a + b) | 0; b = rotl(b, 15) ^ a;
    a = (a + b) | 0; b = rotl(b, 26) ^ a;
    a = (a + b) | 0; b = rotl(b, 6) ^ a;
    a = (a + k1) | 0; b = (b + k2 + 1) | 0;
    // Rounds 5-8 (rotations 17 29 16 24); the key schedule rotates by one word per injection.
    a = (a + b) | 0; b = rotl(b, 17) ^ a;
    a = (a + b) | 0; b = rotl(b, 29) ^ a;
    a = (a + b) | 0; b = rotl(b, 16) ^ a;
    a = (a + b) | 0; b = rotl(b, 24) ^ a;
    a = (a + k2) | 0; b = (b + k0 + 2) | 0;
    // Rounds 9-12.
    a = (a + b) | 0; b = rotl(b, 13) ^ a;
    a = (a + b) | 0; b = rotl(b, 15) ^ a;
    a = (a + b) | 0; b = rotl(b, 26) ^ a;
    a = (a + b) | 0; b = rotl(b, 6) ^ a;
    a = (a + k0) | 0; b = (b + k1 + 3) | 0;
    // Rounds 13-16.
    a = (a + b) | 0; b = rotl(b, 17) ^ a;
    a = (a + b) | 0; b = rotl(b, 29) ^ a;
    a = (a + b) | 0; b = rotl(b, 16) ^ a;
    a = (a + b) | 0; b = rotl(b, 24) ^ a;
    a = (a + k1) | 0; b = (b + k2 + 4) | 0;
    // Rounds 17-20.
    a = (a + b) | 0; b = rotl(b, 13) ^ a;
    a = (a + b) | 0; b = rotl(b, 15) ^ a;
    a = (a + b) | 0; b = rotl(b, 26) ^ a;
    a = (a + b) | 0; b = rotl(b, 6) ^ a;
    a = (a + k2) | 0; b = (b + k0 + 5) | 0;
    y0[i] = a;
    y1[i] = b;
  }
  return [y0, y1];
}

/**
 * The key for an integer seed, as `jax.random.key_data(jax.random.key(seed))`: the seed's 64-bit
 * two's-complement pattern split into `[hi32, lo32]`. (JAX without `jax_enable_x64` first truncates
 * the seed to 32 bits; the two agree for seeds in `[0, 2³²)`.)
 * @example
 * keyFromSeed(42);  // [0, 42]
 * keyFromSeed(-1);  // [4294967295, 4294967295]
 */
export function keyFromSeed(seed: number | bigint): Key {
  if (typeof seed === "number" && !Number.isSafeInteger(seed)) {
    throw new DTypeError(`keyFromSeed: the seed must be a safe integer (or a bigint), got ${String(seed)}`);
  }
  const u = BigInt.asUintN(64, BigInt(seed));
  return [Number(u >> 32n), Number(u & 0xffffffffn)];
}

/**
 * `n` new keys from `key`, as `jax.random.key_data(jax.random.split(key, n))`: threefry over the
 * counters `0 … 2n−1` (pairs of consecutive outputs), or over `(0, i)` when partitionable.
 * @example
 * splitKey([0, 0], 2); // [[4146024105, 967050713], [2718843009, 1272950319]]
 */
export function splitKey(key: Key, n = 2, options: ThreefryOptions = {}): Key[] {
  checkKey("splitKey", key);
  checkCount("splitKey", n, 0x7fffffff);
  const keys: Key[] = [];
  if (options.partitionable) {
    const [y0, y1] = threefry2x32(key[0], key[1], new Uint32Array(n), iota(n));
    for (let i = 0; i < n; i++) keys.push([y0[i]!, y1[i]!]);
  } else {
    const bits = threefryCounts(key, 2 * n);
    for (let i = 0; i < n; i++) keys.push([bits[2 * i]!, bits[2 * i + 1]!]);
  }
  return keys;
}

/**
 * A key derived from `key` and the integer `data`, as `jax.random.fold_in` (either counter layout).
 * @example
 * foldIn([0, 0], 3); // [2467461003, 3840466878]
 */
export function foldIn(key: Key, data: number): Key {
  checkKey("foldIn", key);
  if (!Number.isSafeInteger(data)) {
    throw new DTypeError(`foldIn: data must be an integer, got ${String(data)}`);
  }
  // JAX casts data to uint32 and seeds it as the counter pair (0, data).
  const [y0, y1] = threefry2x32(key[0], key[1], Uint32Array.of(0), Uint32Array.of(data >>> 0));
  return [y0[0]!, y1[0]!];
}

/**
 * `count` random 32-bit words from `key`, as `jax.random.bits(key, (count,), dtype=uint32)`.
 * @example
 * randomBits([0, 0], 4); // Uint32Array [4146024105, 967050713, 2718843009, 1272950319]
 */
export function randomBits(key: Key, count: number, options: ThreefryOptions = {}): Uint32Array {
  checkKey("randomBits", key);
  checkCount("randomBits", count, 0xfffffffe);
  if (!options.partitionable) return threefryCounts(key, count);
  // Partitionable 32-bit draws fold the two output words of counter (0, i) together.
  const [y0, y1] = threefry2x32(key[0], key[1], new Uint32Array(count), iota(count));
  for (let i = 0; i < count; i++) y0[i]! ^= y1[i]!;
  return y0;
}

/**
 * `count` random 64-bit words from `key` as `[hi, lo]` uint32 halves, as
 * `jax.random.bits(key, (count,), dtype=uint64)` under `jax_enable_x64`.
 * @example
 * const [hi, lo] = randomBits64([0, 0], 2); // hi: first half of randomBits(key, 4), lo: second half
 */
export function randomBits64(
  key: Key,
  count: number,
  options: ThreefryOptions = {},
): [Uint32Array, Uint32Array] {
  checkKey("randomBits64", key);
  checkCount("randomBits64", count, 0x7fffffff);
  if (options.partitionable) return threefry2x32(key[0], key[1], new Uint32Array(count), iota(count));
  // The original layout draws 2·count words and takes the first half as the high words.
  const bits = threefryCounts(key, 2 * count);
  return [bits.subarray(0, count), bits.subarray(count)];
}

/**
 * Uniform float32 in `[0, 1)` from 32 random bits each, as `jax.random.uniform` for float32: the top
 * 23 bits become the mantissa of a float in `[1, 2)`, minus 1. That is exactly `(bits >>> 9)·2⁻²³`.
 * @example
 * uniformFloat32FromBits(Uint32Array.of(0, 0x80000000, 0xffffffff)); // Float32Array [0, 0.5, 0.99999988]
 */
export function uniformFloat32FromBits(bits: Uint32Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = (bits[i]! >>> 9) * 2 ** -23;
  return out;
}

/**
 * Uniform float64 in `[0, 1)` from 64 random bits each (`hi`, `lo` halves), as `jax.random.uniform`
 * for float64: the top 52 bits become the mantissa of a float in `[1, 2)`, minus 1, which is exactly
 * `hi·2⁻³² + (lo >>> 12)·2⁻⁵²`.
 * @example
 * uniformFloat64FromBits(Uint32Array.of(0x80000000), Uint32Array.of(0)); // Float64Array [0.5]
 */
export function uniformFloat64FromBits(hi: Uint32Array, lo: Uint32Array): Float64Array {
  if (hi.length !== lo.length) {
    throw new ShapeError(
      `uniformFloat64FromBits: halves must match in length, got [${hi.length}] and [${lo.length}]`,
    );
  }
  const out = new Float64Array(hi.length);
  for (let i = 0; i < hi.length; i++) out[i] = hi[i]! * 2 ** -32 + (lo[i]! >>> 12) * 2 ** -52;
  return out;
}

// JAX's threefry_2x32(key, iota(count)): the counters are halved (padded with one 0 when odd), the
// halves hashed as pairs, the two outputs concatenated and the padding dropped.
function threefryCounts(key: Key, count: number): Uint32Array {
  const half = Math.ceil(count / 2);
  const x1 = new Uint32Array(half);
  for (let i = 0; half + i < count; i++) x1[i] = half + i;
  const [y0, y1] = threefry2x32(key[0], key[1], iota(half), x1);
  const out = new Uint32Array(count);
  out.set(y0);
  out.set(y1.subarray(0, count - half), half);
  return out;
}

function iota(n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

function checkWord(name: string, w: number): void {
  if (!Number.isInteger(w) || w < 0 || w > 0xffffffff) {
    throw new DTypeError(`${name}: key words must be uint32 integers, got ${String(w)}`);
  }
}

function checkKey(name: string, key: Key): void {
  if (!Array.isArray(key) || key.length !== 2) {
    throw new ShapeError(`${name}: a key is a pair of uint32 words, got ${String(key)}`);
  }
  checkWord(name, key[0]);
  checkWord(name, key[1]);
}

function checkCount(name: string, n: number, max: number): void {
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new ShapeError(`${name}: the count must be an integer in [0, ${max}], got ${String(n)}`);
  }
}
