/**
 * @file float32 transcendentals emitted as WebAssembly SIMD: exp, log, tanh and the logistic
 * sigmoid. Each float32 lane is promoted to float64, evaluated there to about 1e-15 relative error
 * (Cody-Waite range reduction and a degree-12 Taylor polynomial for exp; an atanh series in
 * s = (m-1)/(m+1) for log; a Taylor series near 0 and exp elsewhere for tanh), and rounded once to
 * float32. The result is then the float32 rounding of the true value, which is what rounding JS
 * `Math`'s (sub-ulp accurate) float64 result gives, except when the value lies within ~1e-15 of a
 * float32 rounding boundary (about one element in 10^8). float64 tensors keep JS `Math`.
 */

import { Code, type ModuleBuilder } from "./emitter.js";

/** The float32 unary kernels with a wasm implementation. */
export const WASM_TRANSCENDENTAL = ["exp", "log", "tanh", "logistic"] as const;
/** One of `WASM_TRANSCENDENTAL`. */
export type WasmTranscendental = (typeof WASM_TRANSCENDENTAL)[number];

// ln 2 split fdlibm's way: LN2_HI = 0x3fe62e42fee00000 has 21 trailing zero bits, so k·LN2_HI is
// exact for |k| < 2^20, and LN2_HI + LN2_LO carries ln 2 to about 2^-85.
const LN2_HI = 0.6931471803691238;
const LN2_LO = 1.9082149292705877e-10;
const INV_LN2 = Math.LOG2E;

/**
 * Splatted constants. Materialising a constant vector costs V8 several instructions each time, so
 * the kernel is emitted twice: a dry run records every constant, and the real function splats
 * them once into locals before its loop and reads the locals inside it.
 */
class ConstPool {
  private readonly locals = new Map<string, number>();
  readonly seen = new Map<string, () => void>();

  private use(c: Code, key: string, emit: (c: Code) => void): void {
    const l = this.locals.get(key);
    if (l !== undefined) {
      c.get(l);
      return;
    }
    this.seen.set(key, () => emit(c));
    emit(c);
  }

  f64(c: Code, v: number): void {
    this.use(c, `f${Object.is(v, -0) ? "-0" : String(v)}`, (cc) => cc.f64(v).simd("f64x2.splat"));
  }

  i64(c: Code, v: bigint): void {
    this.use(c, `i${v}`, (cc) => cc.i64(v).simd("i64x2.splat"));
  }

  /** Splat every constant `dry` recorded into a local of `c` (emitted where called). */
  materialize(c: Code, dry: ConstPool): void {
    for (const key of dry.seen.keys()) {
      const l = c.local("v128");
      if (key.startsWith("f")) {
        const v = key === "f-0" ? -0 : Number(key.slice(1));
        c.f64(v).simd("f64x2.splat").set(l);
      } else
        c.i64(BigInt(key.slice(1)))
          .simd("i64x2.splat")
          .set(l);
      this.locals.set(key, l);
    }
  }
}

/**
 * f64x2 code over K independent vectors at once: every step is emitted for all of them before the
 * next step, so the CPU overlaps K dependency chains (a degree-12 Horner chain alone would leave
 * the arithmetic units idle most of the time).
 */
class Lanes {
  constructor(
    readonly c: Code,
    readonly k: number,
    readonly pool: ConstPool,
  ) {}

  /** K fresh v128 locals. */
  locals(): number[] {
    return Array.from({ length: this.k }, () => this.c.local("v128"));
  }

  splat(v: number): void {
    this.pool.f64(this.c, v);
  }

  splatI64(v: bigint): void {
    this.pool.i64(this.c, v);
  }

  /** For each vector j: push whatever `emit(j)` pushes, then pop the result into dst[j]. */
  each(dst: readonly number[], emit: (j: number) => void): void {
    for (let j = 0; j < this.k; j++) {
      emit(j);
      this.c.set(dst[j]!);
    }
  }

  /** dst = Horner evaluation of coefficients `cs` (highest degree first) at `x`. */
  horner(dst: readonly number[], x: readonly number[], cs: readonly number[]): void {
    const c = this.c;
    this.each(dst, () => this.splat(cs[0]!));
    for (let i = 1; i < cs.length; i++)
      this.each(dst, (j) => {
        c.get(dst[j]!).get(x[j]!).simd("f64x2.mul");
        this.splat(cs[i]!);
        c.simd("f64x2.add");
      });
  }
}

/** exp of the lanes of `x` (clamped to [lo, hi] first; NaN stays NaN) into `dst`. */
function emitExp(L: Lanes, x: readonly number[], dst: readonly number[], lo: number, hi: number): void {
  const c = L.c;
  const t = L.locals();
  const k = L.locals();
  const r = L.locals();
  const p = L.locals();
  // t = clamp(x, lo, hi) with pseudo-min/max (one instruction each, unlike min/max): with x as
  // the first operand, pmax(x, lo) = x < lo ? lo : x and pmin(·, hi) = hi < · ? hi : · keep NaN.
  L.each(t, (j) => {
    c.get(x[j]!);
    L.splat(lo);
    c.simd("f64x2.pmax");
    L.splat(hi);
    c.simd("f64x2.pmin");
  });
  // k = nearest(t / ln 2); r = t - k ln 2 in two parts (the first product is exact).
  L.each(k, (j) => {
    c.get(t[j]!);
    L.splat(INV_LN2);
    c.simd("f64x2.mul").simd("f64x2.nearest");
  });
  L.each(r, (j) => {
    c.get(t[j]!).get(k[j]!);
    L.splat(LN2_HI);
    c.simd("f64x2.mul").simd("f64x2.sub").get(k[j]!);
    L.splat(LN2_LO);
    c.simd("f64x2.mul").simd("f64x2.sub");
  });
  // exp(r) for |r| <= ln2/2: Taylor to degree 12 (truncation < 2e-16).
  const fact: number[] = [];
  for (let i = 12; i >= 0; i--) {
    let v = 1;
    for (let m = 2; m <= i; m++) v *= m;
    fact.push(1 / v);
  }
  L.horner(p, r, fact);
  // 2^k from the exponent field: (k + 1023) << 52 (k is within [-151, 129] after the clamp).
  L.each(dst, (j) => {
    c.get(p[j]!);
    c.get(k[j]!).simd("i32x4.trunc_sat_f64x2_s_zero").simd("i64x2.extend_low_i32x4_s");
    L.splatI64(1023n);
    c.simd("i64x2.add");
    c.i32(52).simd("i64x2.shl");
    c.simd("f64x2.mul");
  });
}

function emitLog(L: Lanes, x: readonly number[], dst: readonly number[]): void {
  const c = L.c;
  const m = L.locals();
  const e = L.locals();
  const big = L.locals();
  const s = L.locals();
  const z = L.locals();
  const p = L.locals();
  // e = unbiased exponent as a double, via the 2^52 trick: bits(2^52 + E) = 0x4330... | E.
  L.each(e, (j) => {
    c.get(x[j]!).i32(52).simd("i64x2.shr_u");
    L.splatI64(0x4330000000000000n);
    c.simd("v128.or");
    L.splat(2 ** 52 + 1023);
    c.simd("f64x2.sub");
  });
  // m = mantissa in [1, 2); halve it (and bump e) above √2 so that |s| <= 0.1716.
  L.each(m, (j) => {
    c.get(x[j]!);
    L.splatI64(0x000fffffffffffffn);
    c.simd("v128.and");
    L.splatI64(0x3ff0000000000000n);
    c.simd("v128.or");
  });
  L.each(big, (j) => {
    c.get(m[j]!);
    L.splat(Math.SQRT2);
    c.simd("f64x2.gt");
  });
  L.each(m, (j) => {
    c.get(m[j]!);
    L.splat(0.5);
    c.simd("f64x2.mul").get(m[j]!).get(big[j]!).simd("v128.bitselect");
  });
  L.each(e, (j) => {
    c.get(e[j]!).get(big[j]!);
    L.splat(1);
    c.simd("v128.and").simd("f64x2.add");
  });
  // log m = 2 atanh(s) = 2 s (1 + z/3 + z²/5 + …), z = s².
  L.each(s, (j) => {
    c.get(m[j]!);
    L.splat(1);
    c.simd("f64x2.sub").get(m[j]!);
    L.splat(1);
    c.simd("f64x2.add").simd("f64x2.div");
  });
  L.each(z, (j) => c.get(s[j]!).get(s[j]!).simd("f64x2.mul"));
  const cs: number[] = [];
  for (let i = 10; i >= 0; i--) cs.push(1 / (2 * i + 1));
  L.horner(p, z, cs);
  // e·ln2_hi + (e·ln2_lo + 2 s p)
  L.each(dst, (j) => {
    c.get(e[j]!);
    L.splat(LN2_HI);
    c.simd("f64x2.mul");
    c.get(e[j]!);
    L.splat(LN2_LO);
    c.simd("f64x2.mul");
    c.get(s[j]!).get(s[j]!).simd("f64x2.add").get(p[j]!).simd("f64x2.mul");
    c.simd("f64x2.add").simd("f64x2.add");
  });
  // log 0 = -Inf, log of a negative = NaN, log(+Inf) = +Inf, log(NaN) = NaN.
  L.each(dst, (j) => {
    L.splat(-Infinity);
    c.get(dst[j]!).get(x[j]!);
    L.splat(0);
    c.simd("f64x2.eq").simd("v128.bitselect");
  });
  L.each(dst, (j) => {
    L.splat(Number.NaN);
    c.get(dst[j]!).get(x[j]!);
    L.splat(0);
    c.simd("f64x2.lt").simd("v128.bitselect");
  });
  L.each(dst, (j) => {
    c.get(x[j]!).get(dst[j]!).get(x[j]!);
    L.splat(Infinity);
    c.simd("f64x2.eq").get(x[j]!).get(x[j]!).simd("f64x2.ne").simd("v128.or").simd("v128.bitselect");
  });
}

function emitTanh(L: Lanes, x: readonly number[], dst: readonly number[]): void {
  const c = L.c;
  const ax = L.locals();
  const z = L.locals();
  const t = L.locals();
  const two = L.locals();
  const e = L.locals();
  L.each(ax, (j) => c.get(x[j]!).simd("f64x2.abs"));
  // |x| < 1/16: tanh x = x (1 - x²/3 + 2x⁴/15 - …), eight terms (error < 1e-17).
  L.each(z, (j) => c.get(x[j]!).get(x[j]!).simd("f64x2.mul"));
  L.horner(t, z, [
    -929569 / 638512875,
    21844 / 6081075,
    -1382 / 155925,
    62 / 2835,
    -17 / 315,
    2 / 15,
    -1 / 3,
    1,
  ]);
  L.each(t, (j) => c.get(t[j]!).get(x[j]!).simd("f64x2.mul"));
  // Otherwise tanh |x| = 1 - 2 / (e^{2|x|} + 1), with the sign of x put back.
  L.each(two, (j) => c.get(ax[j]!).get(ax[j]!).simd("f64x2.add"));
  emitExp(L, two, e, -104, 89);
  L.each(e, (j) => {
    L.splat(1);
    L.splat(2);
    c.get(e[j]!);
    L.splat(1);
    c.simd("f64x2.add").simd("f64x2.div").simd("f64x2.sub");
  });
  // copysign(e, x), then pick the series below 1/16.
  L.each(e, (j) => {
    c.get(x[j]!).get(e[j]!);
    L.splatI64(-0x8000000000000000n);
    c.simd("v128.bitselect");
  });
  L.each(dst, (j) => {
    c.get(t[j]!).get(e[j]!).get(ax[j]!);
    L.splat(1 / 16);
    c.simd("f64x2.lt").simd("v128.bitselect");
  });
}

function emitLogistic(L: Lanes, x: readonly number[], dst: readonly number[]): void {
  // The reference's two branches: x >= 0: 1 / (1 + e^-x); else e^x / (1 + e^x). Both use e^-|x|.
  const c = L.c;
  const nax = L.locals();
  const e = L.locals();
  L.each(nax, (j) => c.get(x[j]!).simd("f64x2.abs").simd("f64x2.neg"));
  emitExp(L, nax, e, -104, 89);
  L.each(dst, (j) => {
    L.splat(1);
    L.splat(1);
    c.get(e[j]!).simd("f64x2.add").simd("f64x2.div");
    c.get(e[j]!);
    L.splat(1);
    c.get(e[j]!).simd("f64x2.add").simd("f64x2.div");
    c.get(x[j]!);
    L.splat(0);
    c.simd("f64x2.ge").simd("v128.bitselect");
  });
}

// float64x2 vectors per pass (16 float32 elements): enough independent Horner chains to hide the
// multiply-add latency (measured: K = 8 about 1.4x faster than K = 4, 1.8x than K = 2; Estrin's
// scheme with fewer vectors was no better and spilled more).
const K = 8;

/**
 * `tr_<op>_f32(x, out, n)`: out[i] = f32(op(f64(x[i]))).
 * @example
 * emitTranscendental(m, "exp"); // exports tr_exp_f32
 */
export function emitTranscendental(m: ModuleBuilder, op: WasmTranscendental): void {
  m.func(`tr_${op}_f32`, ["i32", "i32", "i32"], [], (c) => {
    const [x, out, n] = [0, 1, 2];
    const i = c.local("i32");
    const end = c.local("i32");
    const body = (L: Lanes, v: readonly number[], r: readonly number[]): void => {
      if (op === "exp") emitExp(L, v, r, -104, 89);
      else if (op === "log") emitLog(L, v, r);
      else if (op === "tanh") emitTanh(L, v, r);
      else emitLogistic(L, v, r);
    };
    // A dry run finds the constants; they are splatted once, here, before the loops.
    const dry = new ConstPool();
    {
      const d = new Code(3);
      const L = new Lanes(d, 1, dry);
      body(L, L.locals(), L.locals());
    }
    const pool = new ConstPool();
    pool.materialize(c, dry);
    // 2K float32 elements per pass (two per float64x2 vector) ...
    const wide = new Lanes(c, K, pool);
    const v = wide.locals();
    const r = wide.locals();
    c.get(n)
      .i32(-2 * K)
      .op("i32.and")
      .set(end);
    c.i32(0).set(i);
    c.forLoop(
      i,
      () => c.get(end),
      2 * K,
      () => {
        wide.each(v, (j) =>
          c
            .get(x)
            .mem("v128.load64_zero", 8 * j)
            .simd("f64x2.promote_low_f32x4"),
        );
        body(wide, v, r);
        for (let j = 0; j < K; j++)
          c.get(out)
            .get(r[j]!)
            .simd("f32x4.demote_f64x2_zero")
            .storeLane64(0, 8 * j);
        c.get(x)
          .i32(8 * K)
          .op("i32.add")
          .set(x);
        c.get(out)
          .i32(8 * K)
          .op("i32.add")
          .set(out);
      },
    );
    // ... then the rest one element at a time.
    const one = new Lanes(c, 1, pool);
    const v1 = one.locals();
    const r1 = one.locals();
    c.forLoop(
      i,
      () => c.get(n),
      1,
      () => {
        c.get(x).mem("f32.load").op("f64.promote_f32").simd("f64x2.splat").set(v1[0]!);
        body(one, v1, r1);
        c.get(out).get(r1[0]!).lane("f64x2.extract_lane", 0).op("f32.demote_f64").mem("f32.store");
        c.get(x).i32(4).op("i32.add").set(x);
        c.get(out).i32(4).op("i32.add").set(out);
      },
    );
  });
}
