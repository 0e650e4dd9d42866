/**
 * @file Matrix products with one or two rows, or one column: the matrix-vector shapes (a single
 * example through a layer, the vector products of `jvp`/`vjp`, a Jacobian's basis rows). The
 * blocked GEMM packs B into panels first, which for one row of A costs as much as the product
 * itself (for 1 x 1000 @ 1000 x 1000 it ran at 3 GFLOP/s); these kernels read each operand
 * once, in place, and are bound by memory bandwidth instead.
 *
 * - `gemv_{t}(a, b, c, m, k, n)`: C = A B row by row. Columns of C go in blocks of eight vectors
 *   held in registers while k is walked (each step reads one contiguous run of B's row), then
 *   single vectors, then scalars.
 * - `gemv4_{t}(a, b, c, m, k, n)`: the same four rows at a time (blocks of two vectors), so each
 *   vector of B loaded serves four rows: the unpacked product for a few rows (3 to 16), whose
 *   packing would still cost a large share of the product. Rows past the last group of four are
 *   left to `gemv_{t}`.
 * - `gemvt_{t}(a, b, c, m, k)`: C = A b for a vector b (B with one column): a SIMD dot product
 *   per row of A, two vector accumulators, then a scalar tail.
 *
 * Each C element is a sum over k in order (in float32 for float32, rounded at every step, or
 * fused multiply-adds where relaxed SIMD is in use), so results differ from the reference
 * backend's float64 accumulation by rounding only, as the GEMM's do.
 */

import type { Code, LaneOp, ModuleBuilder, PlainOp, SimdOp } from "./emitter.js";

type Elem = "f32" | "f64";

const BLOCK = 8;

/**
 * dst = the bound below which a run of `w` elements starting at an index still fits in `n`
 * (a local): n − w + 1, or 0 when n < w (so an unsigned `i < dst` loop runs no step).
 */
function startLimit(c: Code, n: number, w: number, dst: number): void {
  c.get(n)
    .i32(w - 1)
    .op("i32.sub")
    .i32(0)
    .get(n)
    .i32(w)
    .op("i32.ge_u")
    .op("select")
    .set(dst);
}

/**
 * Emit `gemv_{t}`, `gemv4_{t}` and `gemvt_{t}` (see the file comment).
 * @example
 * const m = new ModuleBuilder({ shared: false, initial: 1 });
 * emitGemv(m, "f32", false); // m now defines gemv_f32, gemv4_f32 and gemvt_f32
 */
export function emitGemv(m: ModuleBuilder, t: Elem, fma: boolean): void {
  const L = t === "f32" ? 4 : 2;
  const es = t === "f32" ? 4 : 8;
  const V = t === "f32" ? "f32x4" : "f64x2";
  const load = (c: Code, offset = 0) => c.mem(t === "f32" ? "f32.load" : "f64.load", offset);
  const store = (c: Code) => c.mem(t === "f32" ? "f32.store" : "f64.store");
  const op = (name: string) => `${t}.${name}` as PlainOp;
  /** acc = acc + x * y with x, y pushed by the callers (a fused multiply-add with relaxed SIMD). */
  const madd = (c: Code, x: () => void, y: () => void, acc: number) => {
    if (fma) {
      x();
      y();
      c.get(acc)
        .simd(`${V}.relaxed_madd` as SimdOp)
        .set(acc);
    } else {
      c.get(acc);
      x();
      y();
      c.simd(`${V}.mul` as SimdOp)
        .simd(`${V}.add` as SimdOp)
        .set(acc);
    }
  };

  // R rows at a time: each vector of B read from memory serves R rows of A.
  for (const R of [1, 4]) {
    const blocks = R === 1 ? [BLOCK, 1] : [2, 1];
    m.func(R === 1 ? `gemv_${t}` : `gemv${R}_${t}`, ["i32", "i32", "i32", "i32", "i32", "i32"], [], (c) => {
      const [A, B, C, M, K, N] = [0, 1, 2, 3, 4, 5];
      const i = c.local("i32");
      const j = c.local("i32");
      const kk = c.local("i32");
      const pa = c.local("i32"); // A[i, kk]
      const pb = c.local("i32"); // B[kk, j]
      const row = c.local("i32"); // address of A's row i
      const rowBytes = c.local("i32"); // bytes per row of A
      const stride = c.local("i32"); // bytes per row of B
      const limit = c.local("i32");
      const rowLimit = c.local("i32");
      const av = Array.from({ length: R }, () => c.local("v128"));
      const acc = Array.from({ length: R * Math.max(...blocks) }, () => c.local("v128"));
      const bv = c.local("v128");
      const s = Array.from({ length: R }, () => c.local(t));
      /** Push the address of C[i + r, j] plus nothing (stores add their own offsets). */
      const cAt = (r: number) =>
        c
          .get(C)
          .get(i)
          .i32(r)
          .op("i32.add")
          .get(N)
          .op("i32.mul")
          .get(j)
          .op("i32.add")
          .i32(es)
          .op("i32.mul")
          .op("i32.add");
      c.get(N).i32(es).op("i32.mul").set(stride);
      c.get(K).i32(es).op("i32.mul").set(rowBytes);
      // Row groups start while i + R <= M (the caller does the last M mod R rows with R = 1).
      startLimit(c, M, R, rowLimit);
      c.i32(0).set(i);
      c.forLoop(
        i,
        () => c.get(rowLimit),
        R,
        () => {
          c.get(A).get(i).get(rowBytes).op("i32.mul").op("i32.add").set(row);
          c.i32(0).set(j);
          for (const nv of blocks) {
            const w = nv * L;
            // Blocks start while j + w <= N, i.e. j < N - w + 1 (0 when N < w).
            startLimit(c, N, w, limit);
            c.forLoop(
              j,
              () => c.get(limit),
              w,
              () => {
                for (let v = 0; v < R * nv; v++) c.v128const().set(acc[v]!);
                c.get(row).set(pa);
                c.get(B).get(j).i32(es).op("i32.mul").op("i32.add").set(pb);
                c.i32(0).set(kk);
                c.forLoop(
                  kk,
                  () => c.get(K),
                  1,
                  () => {
                    for (let r = 0; r < R; r++) {
                      c.get(pa);
                      if (r > 0) c.get(rowBytes).i32(r).op("i32.mul").op("i32.add");
                      load(c)
                        .simd(`${V}.splat` as SimdOp)
                        .set(av[r]!);
                    }
                    for (let v = 0; v < nv; v++) {
                      if (R > 1)
                        c.get(pb)
                          .mem("v128.load", v * 16)
                          .set(bv);
                      for (let r = 0; r < R; r++)
                        madd(
                          c,
                          () => c.get(av[r]!),
                          () => (R > 1 ? c.get(bv) : c.get(pb).mem("v128.load", v * 16)),
                          acc[r * nv + v]!,
                        );
                    }
                    c.get(pa).i32(es).op("i32.add").set(pa);
                    c.get(pb).get(stride).op("i32.add").set(pb);
                  },
                );
                for (let r = 0; r < R; r++)
                  for (let v = 0; v < nv; v++) {
                    cAt(r);
                    c.get(acc[r * nv + v]!).mem("v128.store", v * 16);
                  }
              },
            );
          }
          // The last columns, one at a time.
          c.forLoop(
            j,
            () => c.get(N),
            1,
            () => {
              for (let r = 0; r < R; r++) (t === "f32" ? c.f32(0) : c.f64(0)).set(s[r]!);
              c.get(row).set(pa);
              c.get(B).get(j).i32(es).op("i32.mul").op("i32.add").set(pb);
              c.i32(0).set(kk);
              c.forLoop(
                kk,
                () => c.get(K),
                1,
                () => {
                  for (let r = 0; r < R; r++) {
                    c.get(s[r]!).get(pa);
                    if (r > 0) c.get(rowBytes).i32(r).op("i32.mul").op("i32.add");
                    load(c).get(pb);
                    load(c).op(op("mul")).op(op("add")).set(s[r]!);
                  }
                  c.get(pa).i32(es).op("i32.add").set(pa);
                  c.get(pb).get(stride).op("i32.add").set(pb);
                },
              );
              for (let r = 0; r < R; r++) {
                cAt(r);
                c.get(s[r]!);
                store(c);
              }
            },
          );
        },
      );
    });
  }

  m.func(`gemvt_${t}`, ["i32", "i32", "i32", "i32", "i32"], [], (c) => {
    const [A, B, C, M, K] = [0, 1, 2, 3, 4];
    const i = c.local("i32");
    const kk = c.local("i32");
    const pa = c.local("i32");
    const limit = c.local("i32");
    const a0 = c.local("v128");
    const a1 = c.local("v128");
    const s = c.local(t);
    const w = 2 * L;
    startLimit(c, K, w, limit);
    c.i32(0).set(i);
    c.forLoop(
      i,
      () => c.get(M),
      1,
      () => {
        c.get(A).get(i).get(K).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(pa);
        c.v128const().set(a0);
        c.v128const().set(a1);
        c.i32(0).set(kk);
        c.forLoop(
          kk,
          () => c.get(limit),
          w,
          () => {
            const bAt = (off: number) => () =>
              c.get(B).get(kk).i32(es).op("i32.mul").op("i32.add").mem("v128.load", off);
            madd(c, () => c.get(pa).mem("v128.load", 0), bAt(0), a0);
            madd(c, () => c.get(pa).mem("v128.load", 16), bAt(16), a1);
            c.get(pa)
              .i32(w * es)
              .op("i32.add")
              .set(pa);
          },
        );
        // Horizontal sum of the two accumulators, then the tail.
        c.get(a0)
          .get(a1)
          .simd(`${V}.add` as SimdOp)
          .set(a0);
        c.get(a0).lane(`${V}.extract_lane` as LaneOp, 0);
        for (let l = 1; l < L; l++)
          c.get(a0)
            .lane(`${V}.extract_lane` as LaneOp, l)
            .op(op("add"));
        c.set(s);
        c.forLoop(
          kk,
          () => c.get(K),
          1,
          () => {
            c.get(s).get(pa);
            load(c).get(B).get(kk).i32(es).op("i32.mul").op("i32.add");
            load(c).op(op("mul")).op(op("add")).set(s);
            c.get(pa).i32(es).op("i32.add").set(pa);
          },
        );
        c.get(C).get(i).i32(es).op("i32.mul").op("i32.add").get(s);
        store(c);
      },
    );
  });
}
