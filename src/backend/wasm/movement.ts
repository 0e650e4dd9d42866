/**
 * @file Data-movement kernels emitted as WebAssembly, one per element size (1, 4 and 8 bytes;
 * values are moved as integers, so every bit pattern, NaN payloads included, is preserved):
 * a strided N-d copy that serves transpose, broadcast, slice, flip, pad and concat (each is
 * "walk an output region, reading the input through strides"), and a cache-blocked 2-D transpose
 * for the case the strided copy handles worst (reading down columns).
 */

import type { Code, MemOp, ModuleBuilder } from "./emitter.js";

/** Element sizes with a kernel, and the integer loads/stores that move them. */
export const ELEM_SIZES = [1, 4, 8] as const;
/** One of `ELEM_SIZES`. */
export type ElemSize = (typeof ELEM_SIZES)[number];

const MOVE: Record<ElemSize, { load: MemOp; store: MemOp; local: "i32" | "i64" }> = {
  1: { load: "i32.load8_u", store: "i32.store8", local: "i32" },
  4: { load: "i32.load", store: "i32.store", local: "i32" },
  8: { load: "i64.load", store: "i64.store", local: "i64" },
};

/**
 * `copy_<es>(src, dst, nd, desc)`: for every index of the region `shape` (nd dims), copy
 * src[Σ i_d·srcStride_d] to dst[Σ i_d·dstStride_d]. `desc` points to 3·nd i32 words (shape,
 * source strides, destination strides, in elements; strides may be negative or zero) followed by
 * nd words of scratch for the odometer. The innermost dimension runs as `memory.copy` when both
 * of its strides are 1.
 * @example
 * emitStridedCopy(m, 8); // exports copy_8
 */
export function emitStridedCopy(m: ModuleBuilder, es: ElemSize): void {
  const { load, store, local } = MOVE[es];
  m.func(`copy_${es}`, ["i32", "i32", "i32", "i32"], [], (c) => {
    const [src, dst, nd, desc] = [0, 1, 2, 3];
    const n = c.local("i32");
    const ss = c.local("i32");
    const ds = c.local("i32");
    const j = c.local("i32");
    const d = c.local("i32");
    const ps = c.local("i32");
    const pd = c.local("i32");
    const q = c.local("i32");
    const word = c.local("i32");
    const v = c.local(local);
    // word(k) = desc + 4·k
    const loadWord = (k: () => void): void => {
      c.get(desc);
      k();
      c.i32(4).op("i32.mul").op("i32.add").mem("i32.load");
    };
    // Innermost extent and byte strides.
    loadWord(() => c.get(nd).i32(1).op("i32.sub"));
    c.set(n);
    loadWord(() => c.get(nd).i32(2).op("i32.mul").i32(1).op("i32.sub"));
    c.i32(es).op("i32.mul").set(ss);
    loadWord(() => c.get(nd).i32(3).op("i32.mul").i32(1).op("i32.sub"));
    c.i32(es).op("i32.mul").set(ds);
    // Zero the odometer.
    c.i32(0).set(d);
    c.forLoop(
      d,
      () => c.get(nd),
      1,
      () => {
        c.get(desc).get(nd).i32(3).op("i32.mul").get(d).op("i32.add").i32(4).op("i32.mul").op("i32.add");
        c.i32(0).mem("i32.store");
      },
    );
    const done = c.block();
    const outer = c.loop();
    {
      // The innermost run.
      c.get(ss).i32(es).op("i32.eq").get(ds).i32(es).op("i32.eq").op("i32.and").if();
      c.get(dst).get(src).get(n).i32(es).op("i32.mul").memoryCopy();
      c.else();
      c.get(src).set(ps);
      c.get(dst).set(pd);
      c.i32(0).set(j);
      c.forLoop(
        j,
        () => c.get(n),
        1,
        () => {
          c.get(ps).mem(load).set(v);
          c.get(pd).get(v).mem(store);
          c.get(ps).get(ss).op("i32.add").set(ps);
          c.get(pd).get(ds).op("i32.add").set(pd);
        },
      );
      c.end();
      // Advance the odometer over dims nd-2 .. 0; leave when every dim wrapped.
      c.get(nd).i32(2).op("i32.sub").set(d);
      const next = c.block();
      const carry = c.loop();
      c.get(d).i32(0).op("i32.lt_s").brIf(done);
      // q = address of idx[d]; word = shape[d]
      c.get(desc).get(nd).i32(3).op("i32.mul").get(d).op("i32.add").i32(4).op("i32.mul").op("i32.add").set(q);
      c.get(q).get(q).mem("i32.load").i32(1).op("i32.add").mem("i32.store");
      // src += srcStride[d]·es; dst += dstStride[d]·es
      loadWord(() => c.get(nd).get(d).op("i32.add"));
      c.i32(es).op("i32.mul").get(src).op("i32.add").set(src);
      loadWord(() => c.get(nd).i32(2).op("i32.mul").get(d).op("i32.add"));
      c.i32(es).op("i32.mul").get(dst).op("i32.add").set(dst);
      loadWord(() => c.get(d));
      c.set(word);
      c.get(q).mem("i32.load").get(word).op("i32.lt_s").brIf(next);
      // Wrapped: rewind this dim and carry into the next one out.
      c.get(q).i32(0).mem("i32.store");
      c.get(src);
      loadWord(() => c.get(nd).get(d).op("i32.add"));
      c.get(word).op("i32.mul").i32(es).op("i32.mul").op("i32.sub").set(src);
      c.get(dst);
      loadWord(() => c.get(nd).i32(2).op("i32.mul").get(d).op("i32.add"));
      c.get(word).op("i32.mul").i32(es).op("i32.mul").op("i32.sub").set(dst);
      c.get(d).i32(1).op("i32.sub").set(d);
      c.br(carry);
      c.end();
      c.end();
      c.br(outer);
    }
    c.end();
    c.end();
  });
}

/** Byte indices of an `i8x16.shuffle` picking lanes of `bytes` bytes (0-3 or 0-1: first operand). */
function laneBytes(lanes: readonly number[], bytes: number): number[] {
  return lanes.flatMap((l) => Array.from({ length: bytes }, (_, b) => l * bytes + b));
}

/**
 * Transpose one vector-sized square block with shuffles: 4 x 4 of 4-byte elements, or 2 x 2 of
 * 8-byte ones, read from rows at `ps` (stride `srcRowB` bytes), written to rows at `pd`.
 */
function blockTranspose(
  c: Code,
  es: 4 | 8,
  ps: number,
  pd: number,
  srcRowB: number,
  dstRowB: number,
  v: number[],
): void {
  const n = 16 / es;
  for (let q = 0; q < n; q++) {
    c.get(ps);
    if (q > 0) c.get(srcRowB).i32(q).op("i32.mul").op("i32.add");
    c.mem("v128.load").set(v[q]!);
  }
  const out = (q: number): void => {
    c.get(pd);
    if (q > 0) c.get(dstRowB).i32(q).op("i32.mul").op("i32.add");
  };
  if (es === 8) {
    out(0);
    c.get(v[0]!)
      .get(v[1]!)
      .shuffle(laneBytes([0, 2], 8))
      .mem("v128.store");
    out(1);
    c.get(v[0]!)
      .get(v[1]!)
      .shuffle(laneBytes([1, 3], 8))
      .mem("v128.store");
    return;
  }
  // Interleave pairs of rows, then pairs of pairs: (a0 b0 a1 b1), (c0 d0 c1 d1) -> (a0 b0 c0 d0)...
  c.get(v[0]!)
    .get(v[1]!)
    .shuffle(laneBytes([0, 4, 1, 5], 4))
    .set(v[4]!);
  c.get(v[0]!)
    .get(v[1]!)
    .shuffle(laneBytes([2, 6, 3, 7], 4))
    .set(v[5]!);
  c.get(v[2]!)
    .get(v[3]!)
    .shuffle(laneBytes([0, 4, 1, 5], 4))
    .set(v[6]!);
  c.get(v[2]!)
    .get(v[3]!)
    .shuffle(laneBytes([2, 6, 3, 7], 4))
    .set(v[7]!);
  const halves = [
    [4, 6, [0, 1, 4, 5]],
    [4, 6, [2, 3, 6, 7]],
    [5, 7, [0, 1, 4, 5]],
    [5, 7, [2, 3, 6, 7]],
  ] as const;
  halves.forEach(([x, y, lanes], q) => {
    out(q);
    c.get(v[x]!).get(v[y]!).shuffle(laneBytes(lanes, 4)).mem("v128.store");
  });
}

/**
 * `transpose2d_<es>(src, dst, rows, cols)`: dst[j·rows + i] = src[i·cols + j], in 16 x 16 tiles.
 * @example
 * emitTranspose2d(m, 4); // exports transpose2d_4
 */
export function emitTranspose2d(m: ModuleBuilder, es: ElemSize): void {
  const { load, store, local } = MOVE[es];
  const B = 16;
  m.func(`transpose2d_${es}`, ["i32", "i32", "i32", "i32"], [], (c) => {
    const [src, dst, rows, cols] = [0, 1, 2, 3];
    const ib = c.local("i32");
    const jb = c.local("i32");
    const i = c.local("i32");
    const j = c.local("i32");
    const iEnd = c.local("i32");
    const jEnd = c.local("i32");
    const ps = c.local("i32");
    const pd = c.local("i32");
    const v = c.local(local);
    const colsB = c.local("i32");
    const rowsB = c.local("i32");
    const vs: number[] = [];
    for (let q = 0; q < 8; q++) vs.push(c.local("v128"));
    c.get(cols).i32(es).op("i32.mul").set(colsB);
    c.get(rows).i32(es).op("i32.mul").set(rowsB);
    const minTo = (dst_: number, a: number, step: number, limit: number): void => {
      c.get(a).i32(step).op("i32.add").set(dst_);
      c.get(dst_).get(limit).op("i32.gt_s").if();
      c.get(limit).set(dst_);
      c.end();
    };
    c.i32(0).set(ib);
    c.forLoop(
      ib,
      () => c.get(rows),
      B,
      () => {
        minTo(iEnd, ib, B, rows);
        c.i32(0).set(jb);
        c.forLoop(
          jb,
          () => c.get(cols),
          B,
          () => {
            minTo(jEnd, jb, B, cols);
            if (es !== 1) {
              // A full tile: vector-sized blocks transposed with shuffles.
              c.get(iEnd).get(ib).op("i32.sub").i32(B).op("i32.eq");
              c.get(jEnd).get(jb).op("i32.sub").i32(B).op("i32.eq").op("i32.and").if();
              const n = 16 / es;
              c.get(ib).set(i);
              c.forLoop(
                i,
                () => c.get(iEnd),
                n,
                () => {
                  c.get(jb).set(j);
                  c.forLoop(
                    j,
                    () => c.get(jEnd),
                    n,
                    () => {
                      c.get(src).get(i).get(cols).op("i32.mul").get(j).op("i32.add").i32(es).op("i32.mul");
                      c.op("i32.add").set(ps);
                      c.get(dst).get(j).get(rows).op("i32.mul").get(i).op("i32.add").i32(es).op("i32.mul");
                      c.op("i32.add").set(pd);
                      blockTranspose(c, es, ps, pd, colsB, rowsB, vs);
                    },
                  );
                },
              );
              // Partial tiles below take the element loop.
              c.get(iEnd).set(i);
              c.else();
              c.get(ib).set(i);
              c.end();
            } else c.get(ib).set(i);
            c.forLoop(
              i,
              () => c.get(iEnd),
              1,
              () => {
                // ps = src + (i·cols + jb)·es; pd = dst + (jb·rows + i)·es
                c.get(src).get(i).get(cols).op("i32.mul").get(jb).op("i32.add").i32(es).op("i32.mul");
                c.op("i32.add").set(ps);
                c.get(dst).get(jb).get(rows).op("i32.mul").get(i).op("i32.add").i32(es).op("i32.mul");
                c.op("i32.add").set(pd);
                c.get(jb).set(j);
                c.forLoop(
                  j,
                  () => c.get(jEnd),
                  1,
                  () => {
                    c.get(ps).mem(load).set(v);
                    c.get(pd).get(v).mem(store);
                    c.get(ps).i32(es).op("i32.add").set(ps);
                    c.get(pd).get(rows).i32(es).op("i32.mul").op("i32.add").set(pd);
                  },
                );
              },
            );
          },
        );
      },
    );
  });
}
