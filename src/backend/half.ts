/**
 * @file float16 (IEEE binary16) and bfloat16 conversions with round-to-nearest-even, in both
 * directions between JS numbers and 16-bit patterns, plus "round a number to the nearest value
 * representable in that format" (what storing a result in that dtype means).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

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

/** x rounded to the nearest float16 value. */
export function roundFloat16(x: number): number {
  return fromFloat16Bits(toFloat16Bits(x));
}

/** x rounded to the nearest bfloat16 value. */
export function roundBfloat16(x: number): number {
  return fromBfloat16Bits(toBfloat16Bits(x));
}
