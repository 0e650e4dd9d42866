/**
 * @file float16 (IEEE binary16) and bfloat16 conversions with round-to-nearest-even, in both
 * directions between JS numbers and 16-bit patterns, plus "round a number to the nearest value
 * representable in that format" (what storing a result in that dtype means).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1);
/** The high word of `f64` (sign, exponent, top of the fraction) on little-endian hosts. */
const hi = new Uint32Array(f64.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/** The bfloat16 bit pattern of x (round to nearest even from float32; NaN stays NaN). */
export function toBfloat16Bits(x: number): number {
  f32[0] = x; // to float32 first (exact for float32 inputs)
  const b = u32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  const rounded = b + 0x7fff + ((b >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** The value of a bfloat16 bit pattern. */
export function fromBfloat16Bits(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** The float16 bit pattern of x, rounded to nearest even directly from the double. */
export function toFloat16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  let a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  // Largest finite half is 65504; values from 65520 up round to Inf.
  if (a >= 65520) return sign | 0x7c00;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1; // guard log2 rounding
  if (2 ** (e + 1) <= a) e += 1;
  if (e < -14) {
    // Subnormal: units of 2^-24.
    const m = roundHalfEven(a / 2 ** -24);
    return sign | m; // m may reach 1024 = the smallest normal, which is the right encoding
  }
  a = a / 2 ** e - 1; // fraction in [0, 1)
  let m = roundHalfEven(a * 1024);
  let ee = e + 15;
  if (m === 1024) {
    m = 0;
    ee += 1;
  }
  if (ee >= 31) return sign | 0x7c00;
  return sign | (ee << 10) | m;
}

/** The value of a float16 bit pattern. */
export function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * x rounded to the nearest float16 value (ties to even), directly from the double. Adding
 * M = 2^(e+42) to |x| in [2^e, 2^(e+1)) leaves the float16 quantum 2^(e-10) as the last place
 * of the sum, so the double addition's own round-to-nearest-even rounds to float16 and
 * subtracting M is exact (below 2^-14, M = 2^28 gives the subnormal quantum 2^-24). Equal to
 * `fromFloat16Bits(toFloat16Bits(x))`, several times faster: it runs after every float16 result.
 * @example
 * roundFloat16(1 + 2 ** -11); // 1 (a tie, to even)
 */
export function roundFloat16(x: number): number {
  const a = Math.abs(x);
  if (!(a < 65520)) return a >= 65520 ? (x < 0 ? -Infinity : Infinity) : Number.NaN;
  let m = 268435456; // 2^28
  if (a >= 6.103515625e-5) {
    f64[0] = a;
    hi[HI] = hi[HI]! & 0x7ff00000;
    hi[1 - HI] = 0;
    m = f64[0]! * 4398046511104; // 2^e * 2^42
  }
  const r = a + m - m;
  return x < 0 ? -r : x === 0 ? x : r;
}

/**
 * x rounded to the nearest bfloat16 value: to float32 first (as storing it would), then the
 * top 16 bits rounded to nearest even. Equal to `fromBfloat16Bits(toBfloat16Bits(x))`.
 * @example
 * roundBfloat16(1 + 2 ** -8); // 1 (a tie, to even)
 */
export function roundBfloat16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return Number.NaN;
  u32[0] = (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  return f32[0]!;
}
