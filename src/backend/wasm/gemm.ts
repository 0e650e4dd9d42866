/**
 * @file The matrix-multiplication kernels (GotoBLAS/BLIS structure) emitted as WebAssembly SIMD:
 * B is packed into `kc x NR` column strips (kept in L1 while a whole A panel streams past), A into
 * `MR x kc` row strips (an `mc x kc` panel stays in L2), and an `MR x NR` register-blocked
 * micro-kernel accumulates the tile in SIMD registers (splat-loaded A, vector-loaded B; relaxed-SIMD
 * FMA when the runtime has it). Partial tiles at the edges go through a small scratch tile.
 */

import type { ModuleBuilder } from "./emitter.js";

/** Blocking parameters of one element type. */
export interface GemmShape {
  /** Rows of the register tile. */
  readonly mr: number;
  /** Columns of the register tile (a multiple of the SIMD lane count). */
  readonly nr: number;
  /** Depth of a packed panel (L1 blocking). */
  readonly kc: number;
  /** Rows of a packed A panel (L2 blocking; a multiple of `mr`). */
  readonly mc: number;
  /** Columns of a packed B panel (L3 blocking; a multiple of `nr`). */
  readonly nc: number;
}

/**
 * The blocking of each element type. V8 allocates 15 SIMD registers: an `mr x nr` tile takes
 * mr·nr/lanes accumulators, plus nr/lanes B vectors, one splat of A and (without FMA) one product
 * temporary. Without FMA, 4 x 8 (f32) and 4 x 4 (f64) fit with room to spare: larger tiles spill
 * (6 x 8 measured 15% slower) and other shapes that fit (5 x 8, 3 x 12, 2 x 16) measured within
 * noise while 4 rows divide more common sizes. With FMA there is no temporary and 6 x 8 fits.
 * kc = 256 keeps a B strip and an A strip in L1, mc rows of A (≤ 240 KiB) in L2.
 * @example
 * gemmShape("f32", true); // { mr: 6, nr: 8, kc: 256, mc: 120, nc: 2048 }
 */
export function gemmShape(t: "f32" | "f64", fma: boolean): GemmShape {
  if (t === "f32")
    return fma ? { mr: 6, nr: 8, kc: 256, mc: 120, nc: 2048 } : { mr: 4, nr: 8, kc: 256, mc: 120, nc: 2048 };
  return fma ? { mr: 6, nr: 4, kc: 256, mc: 96, nc: 1024 } : { mr: 4, nr: 4, kc: 256, mc: 96, nc: 1024 };
}

/**
 * Scratch bytes one thread needs for `gemm` of this shape: packed A, packed B and one tile.
 * @example
 * gemmScratchBytes(gemmShape("f64", false), 8).b; // 2097152
 */
export function gemmScratchBytes(s: GemmShape, elemBytes: number): { a: number; b: number; tile: number } {
  return { a: s.mc * s.kc * elemBytes, b: s.kc * s.nc * elemBytes, tile: s.mr * s.nr * elemBytes };
}

type Elem = "f32" | "f64";

/** `MR x NR` micro-kernel: C(tile) (=|+=) Ap(strip) · Bp(strip) over `kc`. */
function emitMicro(m: ModuleBuilder, t: Elem, s: GemmShape, fma: boolean): number {
  const es = t === "f32" ? 4 : 8;
  const lanes = 16 / es;
  const V = s.nr / lanes;
  const splat = t === "f32" ? "v128.load32_splat" : "v128.load64_splat";
  const add = t === "f32" ? "f32x4.add" : "f64x2.add";
  const mul = t === "f32" ? "f32x4.mul" : "f64x2.mul";
  const madd = t === "f32" ? "f32x4.relaxed_madd" : "f64x2.relaxed_madd";
  // params: ap, bp, cp, ldcBytes, kc, accumulate
  return m.func(
    `micro_${t}`,
    ["i32", "i32", "i32", "i32", "i32", "i32"],
    [],
    (c) => {
      const [ap, bp, cp, ldc, kc, accFlag] = [0, 1, 2, 3, 4, 5];
      const acc: number[] = [];
      for (let i = 0; i < s.mr * V; i++) acc.push(c.local("v128"));
      const bv: number[] = [];
      for (let v = 0; v < V; v++) bv.push(c.local("v128"));
      const av = c.local("v128");
      const bEnd = c.local("i32");
      const row = c.local("i32");
      for (const a of acc) c.v128const().set(a);
      // One depth step per iteration, deliberately not unrolled: TurboFan hoists the loads of
      // unrolled steps to the top of the loop body, which overflows the 15 allocatable SIMD
      // registers and spills accumulators (measured: unrolling by 2 or 4 is 25-45% slower).
      c.get(bp)
        .get(kc)
        .i32(s.nr * es)
        .op("i32.mul")
        .op("i32.add")
        .set(bEnd);
      const out = c.block();
      const top = c.loop();
      c.get(bp).get(bEnd).op("i32.ge_u").brIf(out);
      for (let v = 0; v < V; v++)
        c.get(bp)
          .mem("v128.load", v * lanes * es)
          .set(bv[v]!);
      for (let r = 0; r < s.mr; r++) {
        c.get(ap)
          .mem(splat, r * es)
          .set(av);
        for (let v = 0; v < V; v++) {
          const x = acc[r * V + v]!;
          if (fma) c.get(av).get(bv[v]!).get(x).simd(madd).set(x);
          else c.get(x).get(av).get(bv[v]!).simd(mul).simd(add).set(x);
        }
      }
      c.get(ap)
        .i32(s.mr * es)
        .op("i32.add")
        .set(ap);
      c.get(bp)
        .i32(s.nr * es)
        .op("i32.add")
        .set(bp);
      c.br(top).end().end();
      // Write the tile back.
      const writeBack = (accumulate: boolean): void => {
        c.get(cp).set(row);
        for (let r = 0; r < s.mr; r++) {
          for (let v = 0; v < V; v++) {
            c.get(row);
            if (accumulate)
              c.get(row)
                .mem("v128.load", v * 16)
                .get(acc[r * V + v]!)
                .simd(add);
            else c.get(acc[r * V + v]!);
            c.mem("v128.store", v * 16);
          }
          if (r + 1 < s.mr) c.get(row).get(ldc).op("i32.add").set(row);
        }
      };
      c.get(accFlag).if();
      writeBack(true);
      c.else();
      writeBack(false);
      c.end();
    },
    false,
  );
}

/** Pack `kc x nc` of B (read through row and column strides) into `nr`-column strips, zero-padded. */
function emitPackB(m: ModuleBuilder, t: Elem, s: GemmShape): number {
  const es = t === "f32" ? 4 : 8;
  const load = t === "f32" ? "f32.load" : "f64.load";
  const store = t === "f32" ? "f32.store" : "f64.store";
  return m.func(
    `packB_${t}`,
    ["i32", "i32", "i32", "i32", "i32", "i32"],
    [],
    (c) => {
      // Element (p, j) of B is at b + (p·rs + j·cs)·es: rs = ldb, cs = 1 for row-major B; rs = 1,
      // cs = ldb for a transposed one (the strips are then gathered element by element).
      const [b, rs, cs, kc, nc, dst] = [0, 1, 2, 3, 4, 5];
      const j0 = c.local("i32");
      const p = c.local("i32");
      const j = c.local("i32");
      const src = c.local("i32");
      const ldbB = c.local("i32");
      const csB = c.local("i32");
      const val = c.local(t);
      c.get(rs).i32(es).op("i32.mul").set(ldbB);
      c.get(cs).i32(es).op("i32.mul").set(csB);
      c.i32(0).set(j0);
      c.forLoop(
        j0,
        () => c.get(nc),
        s.nr,
        () => {
          c.get(b).get(j0).get(csB).op("i32.mul").op("i32.add").set(src);
          c.i32(0).set(p);
          c.get(j0)
            .i32(s.nr)
            .op("i32.add")
            .get(nc)
            .op("i32.le_s")
            .get(cs)
            .i32(1)
            .op("i32.eq")
            .op("i32.and")
            .if();
          // A full strip: NR contiguous elements per row, copied as vectors.
          c.forLoop(
            p,
            () => c.get(kc),
            1,
            () => {
              for (let v = 0; v < (s.nr * es) / 16; v++)
                c.get(dst)
                  .get(src)
                  .mem("v128.load", v * 16)
                  .mem("v128.store", v * 16);
              c.get(src).get(ldbB).op("i32.add").set(src);
              c.get(dst)
                .i32(s.nr * es)
                .op("i32.add")
                .set(dst);
            },
          );
          c.else();
          // A gathered strip, or the last, partial one: zero-pad the missing columns.
          c.forLoop(
            p,
            () => c.get(kc),
            1,
            () => {
              c.i32(0).set(j);
              c.forLoop(
                j,
                () => c.i32(s.nr),
                1,
                () => {
                  if (t === "f32") c.f32(0).set(val);
                  else c.f64(0).set(val);
                  c.get(j0).get(j).op("i32.add").get(nc).op("i32.lt_s").if();
                  c.get(src).get(j).get(csB).op("i32.mul").op("i32.add").mem(load).set(val);
                  c.end();
                  c.get(dst).get(j).i32(es).op("i32.mul").op("i32.add").get(val).mem(store);
                },
              );
              c.get(src).get(ldbB).op("i32.add").set(src);
              c.get(dst)
                .i32(s.nr * es)
                .op("i32.add")
                .set(dst);
            },
          );
          c.end();
        },
      );
    },
    false,
  );
}

/**
 * Pack `mc x kc` of A into `mr`-row strips, zero-padded. Element (i, p) of A is at
 * a + (i·rs + p·cs)·es: rs = lda, cs = 1 row-major; rs = 1, cs = lda for a transposed A.
 */
function emitPackA(m: ModuleBuilder, t: Elem, s: GemmShape): number {
  const es = t === "f32" ? 4 : 8;
  const load = t === "f32" ? "f32.load" : "f64.load";
  const store = t === "f32" ? "f32.store" : "f64.store";
  return m.func(
    `packA_${t}`,
    ["i32", "i32", "i32", "i32", "i32", "i32"],
    [],
    (c) => {
      const [a, rs, cs, mc, kc, dst] = [0, 1, 2, 3, 4, 5];
      const i0 = c.local("i32");
      const r = c.local("i32");
      const p = c.local("i32");
      const src = c.local("i32");
      const out = c.local("i32");
      const ldaB = c.local("i32");
      const csB = c.local("i32");
      const stripB = c.local("i32");
      c.get(rs).i32(es).op("i32.mul").set(ldaB);
      c.get(cs).i32(es).op("i32.mul").set(csB);
      c.get(kc)
        .i32(s.mr * es)
        .op("i32.mul")
        .set(stripB);
      c.i32(0).set(i0);
      c.forLoop(
        i0,
        () => c.get(mc),
        s.mr,
        () => {
          c.i32(0).set(r);
          c.forLoop(
            r,
            () => c.i32(s.mr),
            1,
            () => {
              // out = dst + r*es; walks the strip with stride MR elements.
              c.get(dst).get(r).i32(es).op("i32.mul").op("i32.add").set(out);
              c.i32(0).set(p);
              c.get(i0).get(r).op("i32.add").get(mc).op("i32.lt_s").if();
              c.get(a).get(i0).get(r).op("i32.add").get(ldaB).op("i32.mul").op("i32.add").set(src);
              c.forLoop(
                p,
                () => c.get(kc),
                1,
                () => {
                  c.get(out).get(src).mem(load).mem(store);
                  c.get(src).get(csB).op("i32.add").set(src);
                  c.get(out)
                    .i32(s.mr * es)
                    .op("i32.add")
                    .set(out);
                },
              );
              c.else();
              c.forLoop(
                p,
                () => c.get(kc),
                1,
                () => {
                  c.get(out);
                  if (t === "f32") c.f32(0);
                  else c.f64(0);
                  c.mem(store);
                  c.get(out)
                    .i32(s.mr * es)
                    .op("i32.add")
                    .set(out);
                },
              );
              c.end();
            },
          );
          c.get(dst).get(stripB).op("i32.add").set(dst);
        },
      );
    },
    false,
  );
}

/** Copy (or add) the valid `mr x nr` corner of a scratch tile into C. */
function emitMerge(m: ModuleBuilder, t: Elem, s: GemmShape): number {
  const es = t === "f32" ? 4 : 8;
  const load = t === "f32" ? "f32.load" : "f64.load";
  const store = t === "f32" ? "f32.store" : "f64.store";
  const add = t === "f32" ? "f32.add" : "f64.add";
  return m.func(
    `merge_${t}`,
    ["i32", "i32", "i32", "i32", "i32", "i32"],
    [],
    (c) => {
      const [tile, cp, ldcB, mr, nr, accFlag] = [0, 1, 2, 3, 4, 5];
      const r = c.local("i32");
      const j = c.local("i32");
      const dst = c.local("i32");
      const src = c.local("i32");
      const val = c.local(t);
      c.i32(0).set(r);
      c.forLoop(
        r,
        () => c.get(mr),
        1,
        () => {
          c.get(cp).get(r).get(ldcB).op("i32.mul").op("i32.add").set(dst);
          c.get(tile)
            .get(r)
            .i32(s.nr * es)
            .op("i32.mul")
            .op("i32.add")
            .set(src);
          c.i32(0).set(j);
          c.forLoop(
            j,
            () => c.get(nr),
            1,
            () => {
              c.get(src).mem(load).set(val);
              c.get(accFlag).if();
              c.get(dst).mem(load).get(val).op(add).set(val);
              c.end();
              c.get(dst).get(val).mem(store);
              c.get(dst).i32(es).op("i32.add").set(dst);
              c.get(src).i32(es).op("i32.add").set(src);
            },
          );
        },
      );
    },
    false,
  );
}

/**
 * The register-tile loops over one packed A block (`mc x kc`, at `pA`) and `nc` columns of packed
 * B strips (at `bp`, strip j at bp + j·kc·es): C[0:mc, 0:nc] (=|+=) A·B, full tiles straight into
 * C, edge tiles through the scratch tile.
 */
function emitInner(m: ModuleBuilder, t: Elem, s: GemmShape, micro: number, merge: number): number {
  const es = t === "f32" ? 4 : 8;
  return m.func(
    `inner_${t}`,
    ["i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"],
    [],
    (c) => {
      const [pA, bp, cc, ldcB, mc, nc, kc, first, tile] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
      const jr = c.local("i32");
      const ir = c.local("i32");
      const mr = c.local("i32");
      const nr = c.local("i32");
      const cp = c.local("i32");
      const lim = c.local("i32");
      const apS = c.local("i32");
      const bpS = c.local("i32");
      const clampTo = (dst: number, block: number, total: number, pos: number): void => {
        c.get(total).get(pos).op("i32.sub").set(lim);
        c.i32(block).set(dst);
        c.get(lim).get(dst).op("i32.lt_s").if();
        c.get(lim).set(dst);
        c.end();
      };
      c.i32(0).set(jr);
      c.forLoop(
        jr,
        () => c.get(nc),
        s.nr,
        () => {
          clampTo(nr, s.nr, nc, jr);
          // This column strip: bp + jr*kc*es.
          c.get(bp).get(jr).get(kc).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(bpS);
          c.i32(0).set(ir);
          c.forLoop(
            ir,
            () => c.get(mc),
            s.mr,
            () => {
              clampTo(mr, s.mr, mc, ir);
              // cp = c + ir*ldcB + jr*es; the A strip: pA + ir*kc*es.
              c.get(cc).get(ir).get(ldcB).op("i32.mul").op("i32.add");
              c.get(jr).i32(es).op("i32.mul").op("i32.add").set(cp);
              c.get(pA).get(ir).get(kc).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(apS);
              c.get(mr).i32(s.mr).op("i32.eq").get(nr).i32(s.nr).op("i32.eq").op("i32.and");
              c.if();
              c.get(apS).get(bpS).get(cp).get(ldcB).get(kc).get(first).call(micro);
              c.else();
              c.get(apS)
                .get(bpS)
                .get(tile)
                .i32(s.nr * es)
                .get(kc)
                .i32(0)
                .call(micro);
              c.get(tile).get(cp).get(ldcB).get(mr).get(nr).get(first).call(merge);
              c.end();
            },
          );
        },
      );
    },
    false,
  );
}

/**
 * Emit the matmul kernels of one element type (operands read through row and column element
 * strides — `rs = ld, cs = 1` for a row-major operand, `rs = 1, cs = ld` for a transposed one,
 * which the packing absorbs — and C row-major with stride `ldc`, so that a thread can take a
 * block of rows or columns; all need k > 0, since C is overwritten, not accumulated, by the
 * first depth panel unless told otherwise):
 * - `gemm_<t>(a, b, c, m, k, n, rsA, csA, rsB, csB, ldc, packA, packB, tile)`: C = A B on one
 *   thread, with this thread's scratch (see `gemmScratchBytes`);
 * - `gemmp_<t>(part, a, b, c, m, k, n, rsA, csA, rsB, csB, ldc, packA, packB, tile)`: the same
 *   with scratch `part` places into arrays of per-participant scratch (one task of a parallel batch);
 * - `packB_<t>(b, rs, cs, kc, nc, dst)`: pack `kc x nc` of B into `nr`-column strips (one task of
 *   the cooperative packing of a shared B panel);
 * - `gemmblk_<t>(part, a, rsA, csA, c, ldc, m, k, n, pB, ncp, j0, acc, packA, tile)`: C[0:m, 0:n]
 *   (=, or += when `acc`) A[0:m, 0:k] · B[0:k, j0:j0+n] where B was packed at `pB` as depth
 *   panels of `kc` rows, panel p at pB + p·kc·ncp·es holding its column strips (`ncp` columns,
 *   a multiple of nr; j0 a multiple of nr) — one task of a parallel product.
 * Every variant runs the same panels, micro-kernel and accumulation order, so a product has the
 * same bits however it is split across threads.
 * @example
 * emitGemm(m, "f32", gemmShape("f32", false), false); // exports gemm_f32, gemmblk_f32, ...
 */
export function emitGemm(m: ModuleBuilder, t: Elem, s: GemmShape, fma: boolean): void {
  const es = t === "f32" ? 4 : 8;
  const micro = emitMicro(m, t, s, fma);
  const packB = emitPackB(m, t, s);
  const packA = emitPackA(m, t, s);
  const merge = emitMerge(m, t, s);
  const inner = emitInner(m, t, s, micro, merge);
  const I32x14 = new Array<"i32">(14).fill("i32");
  const gemm = m.func(`gemm_${t}`, I32x14, [], (c) => {
    const [a, b, cc, M, K, N, rsA, csA, rsB, csB, ldc, pA, pB, tile] = [
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
    ];
    const jc = c.local("i32");
    const pc = c.local("i32");
    const ic = c.local("i32");
    const nc = c.local("i32");
    const kc = c.local("i32");
    const mc = c.local("i32");
    const lim = c.local("i32");
    const ldcB = c.local("i32");
    const first = c.local("i32");
    c.get(ldc).i32(es).op("i32.mul").set(ldcB);
    const clampTo = (dst: number, block: number, total: number, pos: number): void => {
      // dst = min(block, total - pos)
      c.get(total).get(pos).op("i32.sub").set(lim);
      c.i32(block).set(dst);
      c.get(lim).get(dst).op("i32.lt_s").if();
      c.get(lim).set(dst);
      c.end();
    };
    c.i32(0).set(jc);
    c.forLoop(
      jc,
      () => c.get(N),
      s.nc,
      () => {
        clampTo(nc, s.nc, N, jc);
        c.i32(0).set(pc);
        c.forLoop(
          pc,
          () => c.get(K),
          s.kc,
          () => {
            clampTo(kc, s.kc, K, pc);
            c.get(pc).i32(0).op("i32.ne").set(first);
            // packB(b + (pc*rsB + jc*csB)*es, rsB, csB, kc, nc, pB)
            c.get(b).get(pc).get(rsB).op("i32.mul").get(jc).get(csB).op("i32.mul").op("i32.add");
            c.i32(es).op("i32.mul");
            c.op("i32.add").get(rsB).get(csB).get(kc).get(nc).get(pB).call(packB);
            c.i32(0).set(ic);
            c.forLoop(
              ic,
              () => c.get(M),
              s.mc,
              () => {
                clampTo(mc, s.mc, M, ic);
                c.get(a).get(ic).get(rsA).op("i32.mul").get(pc).get(csA).op("i32.mul").op("i32.add");
                c.i32(es).op("i32.mul");
                c.op("i32.add").get(rsA).get(csA).get(mc).get(kc).get(pA).call(packA);
                // inner(pA, pB, c + (ic*ldc + jc)*es, ldcB, mc, nc, kc, first, tile)
                c.get(pA).get(pB);
                c.get(cc).get(ic).get(ldc).op("i32.mul").get(jc).op("i32.add").i32(es).op("i32.mul");
                c.op("i32.add").get(ldcB).get(mc).get(nc).get(kc).get(first).get(tile).call(inner);
              },
            );
          },
        );
      },
    );
  });
  const sz = gemmScratchBytes(s, es);
  m.func(`gemmp_${t}`, ["i32", ...I32x14], [], (c) => {
    // Participant `part` uses element `part` of each per-participant scratch array.
    for (let q = 1; q <= 11; q++) c.get(q);
    c.get(12).get(0).i32(sz.a).op("i32.mul").op("i32.add");
    c.get(13).get(0).i32(sz.b).op("i32.mul").op("i32.add");
    c.get(14).get(0).i32(sz.tile).op("i32.mul").op("i32.add");
    c.call(gemm);
  });
  m.func(`packB_${t}`, ["i32", "i32", "i32", "i32", "i32", "i32"], [], (c) => {
    c.get(0).get(1).get(2).get(3).get(4).get(5).call(packB);
  });
  m.func(`gemmblk_${t}`, new Array<"i32">(15).fill("i32"), [], (c) => {
    const [part, a, rsA, csA, cc, ldc, M, K, N, pB, ncp, j0, acc, pAs, tiles] = [
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    ];
    const pA = c.local("i32");
    const tile = c.local("i32");
    const pc = c.local("i32");
    const ic = c.local("i32");
    const kc = c.local("i32");
    const mc = c.local("i32");
    const lim = c.local("i32");
    const ldcB = c.local("i32");
    const first = c.local("i32");
    const bp = c.local("i32");
    const clampTo = (dst: number, block: number, total: number, pos: number): void => {
      c.get(total).get(pos).op("i32.sub").set(lim);
      c.i32(block).set(dst);
      c.get(lim).get(dst).op("i32.lt_s").if();
      c.get(lim).set(dst);
      c.end();
    };
    c.get(pAs).get(part).i32(sz.a).op("i32.mul").op("i32.add").set(pA);
    c.get(tiles).get(part).i32(sz.tile).op("i32.mul").op("i32.add").set(tile);
    c.get(ldc).i32(es).op("i32.mul").set(ldcB);
    c.i32(0).set(pc);
    c.forLoop(
      pc,
      () => c.get(K),
      s.kc,
      () => {
        clampTo(kc, s.kc, K, pc);
        c.get(acc).get(pc).i32(0).op("i32.ne").op("i32.or").set(first);
        // This depth panel's strips from column j0: pB + pc*ncp*es + j0*kc*es.
        c.get(pB).get(pc).get(ncp).op("i32.mul").i32(es).op("i32.mul").op("i32.add");
        c.get(j0).get(kc).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(bp);
        c.i32(0).set(ic);
        c.forLoop(
          ic,
          () => c.get(M),
          s.mc,
          () => {
            clampTo(mc, s.mc, M, ic);
            c.get(a).get(ic).get(rsA).op("i32.mul").get(pc).get(csA).op("i32.mul").op("i32.add");
            c.i32(es).op("i32.mul");
            c.op("i32.add").get(rsA).get(csA).get(mc).get(kc).get(pA).call(packA);
            c.get(pA).get(bp);
            c.get(cc).get(ic).get(ldcB).op("i32.mul").op("i32.add");
            c.get(ldcB).get(mc).get(N).get(kc).get(first).get(tile).call(inner);
          },
        );
      },
    );
  });
}
