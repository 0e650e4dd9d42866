/**
 * @file Element-type conversions (the `cast` kernel) emitted as WebAssembly, bit-identical to the
 * reference backend: float32 <-> float64, integer and boolean conversions with JS semantics
 * (`Math.trunc(x) | 0`, `x ? 1 : 0`), and rounding to float16 and bfloat16 with ties to even —
 * the conversion every 16-bit-float result goes through (`src/backend/half.ts` is the oracle).
 *
 * float16 rounding needs no table and no branch: adding M = 2^(e+13) to |x| (float32 with
 * exponent e) leaves exactly the float16 quantum 2^(e-10) as the sum's last place, so the
 * hardware's round-to-nearest-even does the rounding and subtracting M gives the float16 value
 * (M = 2^-1 below 2^-14, where float16 is subnormal with the fixed quantum 2^-24). The same
 * trick in float64 (M = 2^(e+42), at least 2^28) rounds float64 and int32 inputs directly, with
 * no double rounding, as the oracle does. bfloat16 keeps the top half of the float32 bits,
 * rounded by the integer add the oracle uses.
 */

import type { Code, ModuleBuilder } from "./emitter.js";

/** Element storage of a cast's input. */
export type CastFrom = "f32" | "f64" | "i32" | "u8";
/** What a cast produces: a storage, or float16/bfloat16 values in float32 storage. */
export type CastTo = "f32" | "f64" | "i32" | "u8" | "f16" | "bf16";

/** Every (from, to) pair with a kernel: all but the plain copies (same storage, no rounding). */
export const CAST_PAIRS: readonly (readonly [CastFrom, CastTo])[] = (
  ["f32", "f64", "i32", "u8"] as const
).flatMap((f) =>
  (["f32", "f64", "i32", "u8", "f16", "bf16"] as const).filter((t) => t !== f).map((t) => [f, t] as const),
);

const BYTES = { f32: 4, f64: 8, i32: 4, u8: 1 } as const;

/** The storage a cast result lives in. */
function storageOfTo(t: CastTo): CastFrom {
  return t === "f16" || t === "bf16" ? "f32" : t;
}

/** Bytes of a float32 / int32 constant as a splatted v128 immediate. */
function splat32(bits: number): number[] {
  const out: number[] = [];
  for (let l = 0; l < 4; l++) for (let b = 0; b < 4; b++) out.push((bits >>> (8 * b)) & 0xff);
  return out;
}

/**
 * Scalar float16 rounding of the f64 in local `x` (leaves the rounded f64 on the stack): the
 * magic-constant add described in the file comment, then infinities, signs and NaN. `a` and `r`
 * are f64 scratch locals.
 */
function f16OfF64(c: Code, x: number, a: number, r: number): void {
  c.get(x).op("f64.abs").set(a);
  // r = (a + M) - M with M = max(2^e * 2^42, 2^28).
  c.get(a);
  c.get(a).op("i64.reinterpret_f64").i64(0x7ff0000000000000n).op("i64.and").op("f64.reinterpret_i64");
  c.f64(2 ** 42)
    .op("f64.mul")
    .f64(2 ** 28)
    .op("f64.max")
    .tee(r);
  c.op("f64.add").get(r).op("f64.sub").set(r);
  // |x| >= 65520 rounds past the largest float16 (65504) to infinity; the sign is x's.
  c.get(r).f64(Infinity).get(a).f64(65520).op("f64.lt").op("select");
  c.get(x).op("f64.copysign");
  c.f64(Number.NaN).get(x).get(x).op("f64.eq").op("select");
}

/** Scalar bfloat16 rounding of the f32 in local `y` (leaves the rounded f32 on the stack). */
function bf16OfF32(c: Code, y: number, b: number): void {
  c.get(y).op("i32.reinterpret_f32").set(b);
  // Round: b + 0x7fff + (bit 16 of b), keep the top half; NaN: quieted, top half kept.
  c.get(b).i32(0x7fff).op("i32.add").get(b).i32(16).op("i32.shr_u").i32(1).op("i32.and").op("i32.add");
  c.get(b).i32(0x400000).op("i32.or");
  c.get(y).get(y).op("f32.eq").op("select");
  c.i32(0xffff0000 | 0)
    .op("i32.and")
    .op("f32.reinterpret_i32");
}

/** `Math.trunc(x) | 0` of the f64 in local `x` (ToInt32: modulo 2^32; NaN and ±Inf give 0). */
function int32OfF64(c: Code, x: number, t: number): void {
  c.get(x)
    .op("f64.trunc")
    .tee(t)
    .op("f64.abs")
    .f64(2 ** 31)
    .op("f64.lt")
    .if();
  c.get(t)
    .op("i32.trunc_f64_s")
    .set(t + 1);
  c.else();
  // t - floor(t / 2^32) 2^32 is exact and in [0, 2^32) for finite t; t - t is 0 only then.
  c.i32(0).set(t + 1);
  c.get(t).get(t).op("f64.sub").f64(0).op("f64.eq").if();
  c.get(t)
    .get(t)
    .f64(2 ** 32)
    .op("f64.div")
    .op("f64.floor")
    .f64(2 ** 32)
    .op("f64.mul")
    .op("f64.sub");
  c.op("i64.trunc_f64_s")
    .op("i32.wrap_i64")
    .set(t + 1);
  c.end();
  c.end();
  c.get(t + 1);
}

/**
 * `cast_<from>_<to>(x, out, n)`: out[i] = the reference backend's cast of x[i]. Vectorised where
 * the conversion is hot (to and from float16/bfloat16 rounding, float32 <-> float64, int32 ->
 * float32, float32 -> int32 in range); the rest, and every tail, one element at a time.
 * @example
 * emitCast(m, "f32", "f16"); // exports cast_f32_f16
 */
export function emitCast(m: ModuleBuilder, from: CastFrom, to: CastTo): void {
  const se = BYTES[from];
  const de = BYTES[storageOfTo(to)];
  m.func(`cast_${from}_${to}`, ["i32", "i32", "i32"], [], (c) => {
    const [x, out, n] = [0, 1, 2];
    const i = c.local("i32");
    const vecEnd = c.local("i32");
    const ps = c.local("i32");
    const pd = c.local("i32");
    const v = c.local("v128");
    const w = c.local("v128");
    const s = c.local("v128");
    const fx = c.local("f64");
    const fa = c.local("f64");
    const fr = c.local("f64");
    const ft = c.local("f64");
    c.local("i32"); // ft + 1: int32OfF64's result (locals are numbered in declaration order)
    const y = c.local("f32");
    const b = c.local("i32");
    c.get(x).set(ps);
    c.get(out).set(pd);
    c.i32(0).set(i);
    const vector = vectorBody(from, to);
    if (vector !== null) {
      c.get(n).i32(-4).op("i32.and").set(vecEnd);
      c.forLoop(
        i,
        () => c.get(vecEnd),
        4,
        () => {
          vector(c, { ps, pd, v, w, s, fx, fa, fr, ft, y, b });
          c.get(ps)
            .i32(4 * se)
            .op("i32.add")
            .set(ps);
          c.get(pd)
            .i32(4 * de)
            .op("i32.add")
            .set(pd);
        },
      );
    }
    c.forLoop(
      i,
      () => c.get(n),
      1,
      () => {
        scalar(c, from, to, { ps, pd, fx, fa, fr, ft, y, b }, 0, 0);
        c.get(ps).i32(se).op("i32.add").set(ps);
        c.get(pd).i32(de).op("i32.add").set(pd);
      },
    );
  });
}

interface ScalarLocals {
  readonly ps: number;
  readonly pd: number;
  readonly fx: number;
  readonly fa: number;
  readonly fr: number;
  readonly ft: number;
  readonly y: number;
  readonly b: number;
}

interface VectorLocals extends ScalarLocals {
  readonly v: number;
  readonly w: number;
  readonly s: number;
}

/** Convert the element at ps + srcOff into pd + dstOff (byte offsets), one at a time. */
function scalar(c: Code, from: CastFrom, to: CastTo, l: ScalarLocals, srcOff: number, dstOff: number): void {
  const { ps, pd, fx, fa, fr, ft, y, b } = l;
  // The value as f64 (exact from every storage), as f32 (rounded, where bfloat16 needs it), or i32.
  const asF64 = (): void => {
    c.get(ps);
    if (from === "f32") c.mem("f32.load", srcOff).op("f64.promote_f32");
    else if (from === "f64") c.mem("f64.load", srcOff);
    else if (from === "i32") c.mem("i32.load", srcOff).op("f64.convert_i32_s");
    else c.mem("i32.load8_u", srcOff).op("f64.convert_i32_s");
  };
  c.get(pd);
  switch (to) {
    case "f32":
      if (from === "i32" || from === "u8")
        c.get(ps)
          .mem(from === "i32" ? "i32.load" : "i32.load8_u", srcOff)
          .op("f32.convert_i32_s");
      else {
        asF64();
        c.op("f32.demote_f64");
      }
      c.mem("f32.store", dstOff);
      return;
    case "f64":
      asF64();
      c.mem("f64.store", dstOff);
      return;
    case "i32":
      if (from === "u8") c.get(ps).mem("i32.load8_u", srcOff);
      else {
        asF64();
        c.set(fx);
        int32OfF64(c, fx, ft);
      }
      c.mem("i32.store", dstOff);
      return;
    case "u8":
      // x ? 1 : 0 — NaN and ±0 are false.
      if (from === "i32") c.get(ps).mem("i32.load", srcOff).i32(0).op("i32.ne");
      else {
        asF64();
        c.set(fx);
        c.get(fx).f64(0).op("f64.lt").get(fx).f64(0).op("f64.gt").op("i32.or");
      }
      c.mem("i32.store8", dstOff);
      return;
    case "f16":
      asF64();
      c.set(fx);
      f16OfF64(c, fx, fa, fr);
      c.op("f32.demote_f64").mem("f32.store", dstOff);
      return;
    case "bf16":
      // The oracle goes through float32 first (Math.fround), then rounds the bits.
      if (from === "i32" || from === "u8")
        c.get(ps)
          .mem(from === "i32" ? "i32.load" : "i32.load8_u", srcOff)
          .op("f32.convert_i32_s");
      else {
        asF64();
        c.op("f32.demote_f64");
      }
      c.set(y);
      bf16OfF32(c, y, b);
      c.mem("f32.store", dstOff);
      return;
  }
}

type VectorBody = (c: Code, l: VectorLocals) => void;

/** The four-element body of the vectorised conversions (null: scalar only). */
function vectorBody(from: CastFrom, to: CastTo): VectorBody | null {
  if (from === "f32" && to === "f16")
    return (c, { ps, pd, v, w, s }) => {
      c.get(ps).mem("v128.load").set(v);
      c.get(v).v128const(splat32(0x80000000)).simd("v128.and").set(s);
      c.get(v).v128const(splat32(0x7fffffff)).simd("v128.and").set(v); // |x|
      // M = 2^(e+13), at least 2^-1, built in the exponent field.
      c.get(v)
        .v128const(splat32(0x7f800000))
        .simd("v128.and")
        .v128const(splat32(13 << 23))
        .simd("i32x4.add");
      c.v128const(splat32(0x3f000000)).simd("i32x4.max_s").set(w);
      c.get(pd);
      c.get(v).get(w).simd("f32x4.add").get(w).simd("f32x4.sub").get(s).simd("v128.or");
      // |x| >= 65520 rounds past the largest float16 (65504) to ±Inf (NaN lanes too, for now).
      c.get(s).v128const(splat32(0x7f800000)).simd("v128.or");
      c.get(v).v128const(splat32(0x477ff000)).simd("f32x4.lt").simd("v128.bitselect");
      // NaN: the canonical NaN.
      c.v128const(splat32(0x7fc00000));
      c.get(v).get(v).simd("f32x4.eq").simd("v128.bitselect");
      c.mem("v128.store");
    };
  if (from === "f32" && to === "bf16")
    return (c, { ps, pd, v, w }) => {
      c.get(ps).mem("v128.load").set(v);
      c.get(pd);
      c.get(v).v128const(splat32(0x7fff)).simd("i32x4.add");
      c.get(v).i32(16).simd("i32x4.shr_u").v128const(splat32(1)).simd("v128.and").simd("i32x4.add");
      c.get(v).v128const(splat32(0x400000)).simd("v128.or");
      c.get(v).get(v).simd("f32x4.eq").set(w);
      c.get(w).simd("v128.bitselect");
      c.v128const(splat32(0xffff0000)).simd("v128.and");
      c.mem("v128.store");
    };
  if (from === "f32" && to === "f64")
    return (c, { ps, pd }) => {
      for (let h = 0; h < 2; h++)
        c.get(pd)
          .get(ps)
          .mem("v128.load64_zero", 8 * h)
          .simd("f64x2.promote_low_f32x4")
          .mem("v128.store", 16 * h);
    };
  if (from === "f64" && to === "f32")
    return (c, { ps, pd }) => {
      for (let h = 0; h < 2; h++)
        c.get(pd)
          .get(ps)
          .mem("v128.load", 16 * h)
          .simd("f32x4.demote_f64x2_zero")
          .storeLane64(0, 8 * h);
    };
  if (from === "i32" && to === "f32")
    return (c, { ps, pd }) => {
      c.get(pd).get(ps).mem("v128.load").simd("f32x4.convert_i32x4_s").mem("v128.store");
    };
  if (from === "i32" && to === "f64")
    return (c, { ps, pd }) => {
      for (let h = 0; h < 2; h++)
        c.get(pd)
          .get(ps)
          .mem("v128.load64_zero", 8 * h)
          .simd("f64x2.convert_low_i32x4_s")
          .mem("v128.store", 16 * h);
    };
  if (from === "f32" && to === "i32")
    return (c, l) => {
      const { ps, pd, v } = l;
      // Saturating truncation is Math.trunc(x) | 0 for |x| < 2^31; other lanes take the
      // scalar path (ToInt32 wraps modulo 2^32, NaN and infinities give 0).
      c.get(ps).mem("v128.load").set(v);
      c.get(v).simd("f32x4.abs").v128const(splat32(0x4f000000)).simd("f32x4.lt").simd("i32x4.all_true");
      c.if();
      c.get(pd).get(v).simd("i32x4.trunc_sat_f32x4_s").mem("v128.store");
      c.else();
      for (let e = 0; e < 4; e++) scalar(c, "f32", "i32", l, 4 * e, 4 * e);
      c.end();
    };
  return null;
}
