/**
 * @file Reductions emitted as WebAssembly SIMD. The input is viewed as `[outer, red, inner]` (the
 * reduced axes collapsed into one contiguous middle block) and reduced over `red`; a kernel call
 * handles `width` of the `inner` columns, so that threads can share the columns out when there
 * are few outer rows (a bias gradient sums [N, D] over N: outer = 1, inner = D).
 *
 * - Sums accumulate in float64 as the reference backend does (float32 lanes are promoted), so
 *   over a non-trailing axis (each output's terms in row order, one lane per column) they equal
 *   its results bit for bit, and over trailing axes (four interleaved partial sums per output)
 *   they differ from it only by summation order.
 * - max, min, argmax and argmin are exact: the first NaN wins, otherwise the first element equal
 *   to the extreme (so of -0 and +0 the first one met), as in the reference. Across columns each
 *   lane runs that rule on its own column; along a contiguous run the four lanes each keep the
 *   first winner of their quarter and are merged by index.
 */

import type { Code, ModuleBuilder } from "./emitter.js";

export type Elem = "f32" | "f64";

/** The reductions with a wasm kernel besides `sum`. */
export const WASM_EXTREMA = ["max", "min", "argmax", "argmin"] as const;
/** One of `WASM_EXTREMA`. */
export type WasmExtremum = (typeof WASM_EXTREMA)[number];

const PARAMS = ["i32", "i32", "i32", "i32", "i32", "i32"] as const;

interface ElemInfo {
  readonly es: number;
  readonly lanes: number;
  readonly load: "f32.load" | "f64.load";
  readonly store: "f32.store" | "f64.store";
}

function info(t: Elem): ElemInfo {
  return t === "f32"
    ? { es: 4, lanes: 4, load: "f32.load", store: "f32.store" }
    : { es: 8, lanes: 2, load: "f64.load", store: "f64.store" };
}

/** Columns handled per pass over the rows: one 64-byte cache line of each row. */
const BLOCK_COLS = { f32: 16, f64: 8 } as const;

/**
 * Walk the column blocks of one outer row: `block(cols, j)` is emitted for full blocks of
 * `BLOCK_COLS`, then for groups of one vector, then for single columns (cols = 1), with the local
 * `j` holding the first column.
 */
function columnBlocks(
  c: Code,
  t: Elem,
  width: number,
  j: number,
  end: number,
  block: (cols: number) => void,
): void {
  const { lanes } = info(t);
  for (const cols of [BLOCK_COLS[t], lanes, 1]) {
    // end = width rounded down to a multiple of cols
    c.get(width).i32(-cols).op("i32.and").set(end);
    c.forLoop(
      j,
      () => c.get(end),
      cols,
      () => block(cols),
    );
  }
}

/**
 * What a sum adds, given the local `p` holding the current element's byte offset: `pair(h)`
 * pushes the two elements at p + 8h (float32) or p + 16h (float64) as an f64x2, `one()` pushes
 * the element at p as an f64. `base` pushes what offsets are relative to (the input's address),
 * or nothing when the source adds its own addresses.
 */
export interface SumSource {
  readonly pair: (p: number, h: number) => void;
  readonly one: (p: number) => void;
  readonly base: (() => void) | null;
  /** Called at the start of each contiguous run (inner = 1) with the locals `o` and `p`. */
  readonly row?: (o: number, p: number) => void;
}

/**
 * The loops of a sum over `[outer, red, inner]` viewed input (params `out, outer, red, inner,
 * width` at the given local indices), elements from `src`: along one contiguous run per output,
 * four interleaved float64 partial sums then the rest; across columns, each lane its column's
 * terms in row order. `rsum` and jit's fused sums (`fused-sum.ts`) are both this code, so they
 * add in the same order and give the same bits.
 */
export function emitSumLoops(
  c: Code,
  t: Elem,
  [out, outer, red, inner, width]: readonly [number, number, number, number, number],
  src: SumSource,
): void {
  const { es, store } = info(t);
  const o = c.local("i32");
  const r = c.local("i32");
  const j = c.local("i32");
  const p = c.local("i32");
  const end = c.local("i32");
  const rowB = c.local("i32");
  const s = c.local("f64");
  const x = c.local("f64");
  const acc: number[] = [];
  for (let i = 0; i < 8; i++) acc.push(c.local("v128"));
  /** Add `cols` consecutive elements at p (cols/2 promoted pairs) into acc[0..cols/2). */
  const accumulate = (cols: number): void => {
    for (let h = 0; h < cols / 2; h++) {
      c.get(acc[h]!);
      src.pair(p, h);
      c.simd("f64x2.add").set(acc[h]!);
    }
  };
  const scalarAdd = (): void => {
    src.one(p);
    c.set(x);
    c.get(s).get(x).op("f64.add").set(s);
  };
  /** Store the f64 value on the stack at out[o, j + lane] (address pushed by the caller). */
  const storeF64 = (offset: number): void => {
    if (t === "f32") c.op("f32.demote_f64");
    c.mem(store, offset);
  };
  /** Push the offset (o*red*inner + j) * es, plus the base. */
  const rowStart = (): void => {
    src.base?.();
    c.get(o).get(red).op("i32.mul").get(inner).op("i32.mul").get(j).op("i32.add");
    c.i32(es).op("i32.mul");
    if (src.base !== null) c.op("i32.add");
  };
  const outAt = (): void => {
    c.get(out).get(o).get(inner).op("i32.mul").get(j).op("i32.add").i32(es).op("i32.mul").op("i32.add");
  };
  c.get(inner).i32(es).op("i32.mul").set(rowB);
  c.i32(0).set(o);
  c.forLoop(
    o,
    () => c.get(outer),
    1,
    () => {
      c.i32(0).set(j);
      c.get(inner).i32(1).op("i32.eq").if();
      // One contiguous run of `red` per output: four interleaved partial sums, then the rest.
      rowStart();
      c.set(p);
      src.row?.(o, p);
      c.v128const().set(acc[0]!);
      c.v128const().set(acc[1]!);
      c.get(red).i32(-4).op("i32.and").set(end);
      c.i32(0).set(r);
      c.forLoop(
        r,
        () => c.get(end),
        4,
        () => {
          accumulate(4);
          c.get(p)
            .i32(4 * es)
            .op("i32.add")
            .set(p);
        },
      );
      c.get(acc[0]!).get(acc[1]!).simd("f64x2.add").set(acc[0]!);
      c.get(acc[0]!).lane("f64x2.extract_lane", 0).get(acc[0]!).lane("f64x2.extract_lane", 1).op("f64.add");
      c.set(s);
      c.forLoop(
        r,
        () => c.get(red),
        1,
        () => {
          scalarAdd();
          c.get(p).i32(es).op("i32.add").set(p);
        },
      );
      outAt();
      c.get(s);
      storeF64(0);
      c.else();
      // Across columns: each lane sums its column's terms in row order (the reference's order).
      columnBlocks(c, t, width, j, end, (cols) => {
        rowStart();
        c.set(p);
        if (cols === 1) c.f64(0).set(s);
        else for (let h = 0; h < cols / 2; h++) c.v128const().set(acc[h]!);
        c.i32(0).set(r);
        c.forLoop(
          r,
          () => c.get(red),
          1,
          () => {
            if (cols === 1) scalarAdd();
            else accumulate(cols);
            c.get(p).get(rowB).op("i32.add").set(p);
          },
        );
        if (cols === 1) {
          outAt();
          c.get(s);
          storeF64(0);
        } else
          for (let h = 0; h < cols / 2; h++)
            for (let lane = 0; lane < 2; lane++) {
              outAt();
              c.get(acc[h]!).lane("f64x2.extract_lane", lane);
              storeF64((2 * h + lane) * es);
            }
      });
      c.end();
    },
  );
}

/**
 * `rsum_<t>(x, out, outer, red, inner, width)`: out[o, j] = Σ_r x[o, r, j] for j < width.
 * @example
 * emitSum(m, "f32"); // exports rsum_f32
 */
export function emitSum(m: ModuleBuilder, t: Elem): void {
  const { load } = info(t);
  m.func(`rsum_${t}`, PARAMS, [], (c) => {
    emitSumLoops(c, t, [1, 2, 3, 4, 5], {
      pair: (p, h) => {
        c.get(p);
        if (t === "f32") c.mem("v128.load64_zero", 8 * h).simd("f64x2.promote_low_f32x4");
        else c.mem("v128.load", 16 * h);
      },
      one: (p) => {
        c.get(p).mem(load);
        if (t === "f32") c.op("f64.promote_f32");
      },
      base: () => c.get(0),
    });
  });
}

/**
 * `r<op>_<t>(x, out, outer, red, inner, width)` for max, min (out: the extreme, storage t),
 * argmax, argmin (out: int32 positions along the reduced block), with the reference's rules
 * (see the file comment). Needs red > 0.
 * @example
 * emitExtremum(m, "f32", "argmax"); // exports rargmax_f32
 */
export function emitExtremum(m: ModuleBuilder, t: Elem, op: WasmExtremum): void {
  const { es, lanes, load, store } = info(t);
  const isMax = op === "max" || op === "argmax";
  const isArg = op === "argmax" || op === "argmin";
  const V = t === "f32" ? "f32x4" : "f64x2";
  const I = t === "f32" ? "i32x4" : "i64x2";
  const better = isMax ? (`${V}.gt` as const) : (`${V}.lt` as const);
  const betterS = isMax ? (`${t}.gt` as const) : (`${t}.lt` as const);
  m.func(`r${op}_${t}`, PARAMS, [], (c) => {
    const [x, out, outer, red, inner, width] = [0, 1, 2, 3, 4, 5];
    const o = c.local("i32");
    const r = c.local("i32");
    const j = c.local("i32");
    const p = c.local("i32");
    const end = c.local("i32");
    const rowB = c.local("i32");
    const bi = c.local("i32");
    const li = c.local("i32");
    const bv = c.local(t);
    const lv = c.local(t);
    const v = c.local("v128");
    const take = c.local("v128");
    const rv = c.local("v128");
    const step = c.local("v128");
    const best: number[] = [];
    const idx: number[] = [];
    for (let i = 0; i < 4; i++) {
      best.push(c.local("v128"));
      idx.push(c.local("v128"));
    }
    /** take = v beats the kept value b: better, or v is NaN and b is not. */
    const takeVec = (b: number): void => {
      c.get(v).get(b).simd(better);
      c.get(v).get(v).simd(`${V}.ne`).get(b).get(b).simd(`${V}.eq`).simd("v128.and");
      c.simd("v128.or").set(take);
    };
    /** The scalar rule on lv (at position li) against bv (at bi): leaves the i32 condition. */
    const takeScalar = (): void => {
      c.get(bv).get(bv).op(`${t}.eq`);
      c.get(lv).get(lv).op(`${t}.ne`).get(lv).get(bv).op(betterS).op("i32.or");
      c.op("i32.and");
    };
    const keepScalar = (): void => {
      takeScalar();
      c.if();
      c.get(lv).set(bv);
      c.get(li).set(bi);
      c.end();
    };
    const rowStart = (): void => {
      c.get(x).get(o).get(red).op("i32.mul").get(inner).op("i32.mul").get(j).op("i32.add");
      c.i32(es).op("i32.mul").op("i32.add");
    };
    const outAt = (lane: number): void => {
      c.get(out).get(o).get(inner).op("i32.mul").get(j).op("i32.add").i32(lane).op("i32.add");
      c.i32(isArg ? 4 : es)
        .op("i32.mul")
        .op("i32.add");
    };
    const splatIndex = (k: number): void => {
      if (t === "f32") c.i32(k).simd("i32x4.splat");
      else c.i64(BigInt(k)).simd("i64x2.splat");
    };
    /** An index vector [k, k+1, ...] (one lane per consecutive element). */
    const iota = (k: number): void => {
      const bytes: number[] = [];
      for (let l = 0; l < lanes; l++) {
        const val = k + l;
        for (let b = 0; b < 16 / lanes; b++) bytes.push(b < 4 ? (val >>> (8 * b)) & 0xff : 0);
      }
      c.v128const(bytes);
    };
    const storeResult = (lane: number): void => {
      // Stack: address. Push the lane's value or index and store it.
      if (isArg) {
        c.get(idx[Math.floor(lane / lanes)]!).lane(`${I}.extract_lane`, lane % lanes);
        if (t === "f64") c.op("i32.wrap_i64");
        c.mem("i32.store");
      } else {
        c.get(best[Math.floor(lane / lanes)]!).lane(`${V}.extract_lane`, lane % lanes);
        c.mem(store);
      }
    };
    c.get(inner).i32(es).op("i32.mul").set(rowB);
    c.i32(0).set(o);
    c.forLoop(
      o,
      () => c.get(outer),
      1,
      () => {
        c.i32(0).set(j);
        c.get(inner).i32(1).op("i32.eq").if();
        // A contiguous run: lane l keeps the first winner among elements l, l+lanes, ...
        rowStart();
        c.set(p);
        c.get(p).mem(load).set(bv);
        c.i32(0).set(bi);
        c.i32(1).set(r);
        c.get(red)
          .i32(lanes * 2)
          .op("i32.ge_u")
          .if();
        c.get(p).mem("v128.load").set(best[0]!);
        iota(0);
        c.set(idx[0]!);
        iota(lanes);
        c.set(rv);
        splatIndex(lanes);
        c.set(step);
        c.get(red).i32(-lanes).op("i32.and").set(end);
        c.i32(lanes).set(r);
        c.forLoop(
          r,
          () => c.get(end),
          lanes,
          () => {
            c.get(p).get(r).i32(es).op("i32.mul").op("i32.add").mem("v128.load").set(v);
            takeVec(best[0]!);
            c.get(v).get(best[0]!).get(take).simd("v128.bitselect").set(best[0]!);
            c.get(rv).get(idx[0]!).get(take).simd("v128.bitselect").set(idx[0]!);
            c.get(rv).get(step).simd(`${I}.add`).set(rv);
          },
        );
        // Merge the lanes: lane 0 first, then a lane wins if it beats the kept value or ties it
        // (equal, or both NaN) at a smaller index.
        c.get(best[0]!).lane(`${V}.extract_lane`, 0).set(bv);
        c.get(idx[0]!).lane(`${I}.extract_lane`, 0);
        if (t === "f64") c.op("i32.wrap_i64");
        c.set(bi);
        for (let l = 1; l < lanes; l++) {
          c.get(best[0]!).lane(`${V}.extract_lane`, l).set(lv);
          c.get(idx[0]!).lane(`${I}.extract_lane`, l);
          if (t === "f64") c.op("i32.wrap_i64");
          c.set(li);
          takeScalar();
          // tie: (lv == bv, or both NaN) and li < bi
          c.get(lv).get(bv).op(`${t}.eq`);
          c.get(lv).get(lv).op(`${t}.ne`).get(bv).get(bv).op(`${t}.ne`).op("i32.and").op("i32.or");
          c.get(li).get(bi).op("i32.lt_u").op("i32.and");
          c.op("i32.or").if();
          c.get(lv).set(bv);
          c.get(li).set(bi);
          c.end();
        }
        c.end();
        // The rest one at a time (all later than what the lanes saw, so ties keep the kept one).
        c.forLoop(
          r,
          () => c.get(red),
          1,
          () => {
            c.get(p).get(r).i32(es).op("i32.mul").op("i32.add").mem(load).set(lv);
            c.get(r).set(li);
            keepScalar();
          },
        );
        outAt(0);
        if (isArg) c.get(bi).mem("i32.store");
        else c.get(bv).mem(store);
        c.else();
        // Across columns: each lane runs the rule down its own column.
        columnBlocks(c, t, width, j, end, (cols) => {
          rowStart();
          c.set(p);
          const nv = cols / lanes;
          if (cols === 1) {
            c.get(p).mem(load).set(bv);
            c.i32(0).set(bi);
          } else {
            for (let h = 0; h < nv; h++) {
              c.get(p)
                .mem("v128.load", 16 * h)
                .set(best[h]!);
              splatIndex(0);
              c.set(idx[h]!);
            }
            splatIndex(0);
            c.set(rv);
            splatIndex(1);
            c.set(step);
          }
          c.i32(1).set(r);
          c.forLoop(
            r,
            () => c.get(red),
            1,
            () => {
              c.get(p).get(rowB).op("i32.add").set(p);
              if (cols === 1) {
                c.get(p).mem(load).set(lv);
                c.get(r).set(li);
                keepScalar();
              } else {
                c.get(rv).get(step).simd(`${I}.add`).set(rv);
                for (let h = 0; h < nv; h++) {
                  c.get(p)
                    .mem("v128.load", 16 * h)
                    .set(v);
                  takeVec(best[h]!);
                  c.get(v).get(best[h]!).get(take).simd("v128.bitselect").set(best[h]!);
                  c.get(rv).get(idx[h]!).get(take).simd("v128.bitselect").set(idx[h]!);
                }
              }
            },
          );
          if (cols === 1) {
            outAt(0);
            if (isArg) c.get(bi).mem("i32.store");
            else c.get(bv).mem(store);
          } else
            for (let lane = 0; lane < cols; lane++) {
              outAt(lane);
              storeResult(lane);
            }
        });
        c.end();
      },
    );
  });
}
