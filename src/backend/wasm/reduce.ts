/**
 * @file Sum reductions emitted as WebAssembly SIMD. The input is viewed as `[outer, red, inner]`
 * (the reduced axes collapsed into one contiguous middle block) and summed over `red`, always
 * accumulating in float64 as the reference backend does (float32 lanes are promoted pairwise),
 * so results differ from it only by summation order.
 */

import type { ModuleBuilder } from "./emitter.js";

type Elem = "f32" | "f64";

/**
 * `rsum_<t>(x, out, outer, red, inner)`: out[o, j] = Σ_r x[o, r, j].
 * @example
 * emitSum(m, "f32"); // exports rsum_f32
 */
export function emitSum(m: ModuleBuilder, t: Elem): void {
  const es = t === "f32" ? 4 : 8;
  const load = t === "f32" ? "f32.load" : "f64.load";
  const store = t === "f32" ? "f32.store" : "f64.store";
  m.func(`rsum_${t}`, ["i32", "i32", "i32", "i32", "i32"], [], (c) => {
    const [x, out, outer, red, inner] = [0, 1, 2, 3, 4];
    const o = c.local("i32");
    const r = c.local("i32");
    const j = c.local("i32");
    const p = c.local("i32");
    const q = c.local("i32");
    const vecEnd = c.local("i32");
    const rowB = c.local("i32");
    const acc0 = c.local("v128");
    const acc1 = c.local("v128");
    const s = c.local("f64");
    // Push four promoted lanes' worth of x at address p into acc0 (first two) and acc1 (last two).
    const accumulate4 = (addr: number): void => {
      if (t === "f32") {
        c.get(acc0).get(addr).mem("v128.load64_zero").simd("f64x2.promote_low_f32x4").simd("f64x2.add");
        c.set(acc0);
        c.get(acc1).get(addr).mem("v128.load64_zero", 8).simd("f64x2.promote_low_f32x4").simd("f64x2.add");
        c.set(acc1);
      } else {
        c.get(acc0).get(addr).mem("v128.load").simd("f64x2.add").set(acc0);
        c.get(acc1).get(addr).mem("v128.load", 16).simd("f64x2.add").set(acc1);
      }
    };
    const scalarTo = (addr: number): void => {
      c.get(s).get(addr).mem(load);
      if (t === "f32") c.op("f64.promote_f32");
      c.op("f64.add").set(s);
    };
    const storeS = (addr: number): void => {
      c.get(addr).get(s);
      if (t === "f32") c.op("f32.demote_f64");
      c.mem(store);
    };
    c.get(inner).i32(1).op("i32.eq").if();
    // Each output sums one contiguous run of `red` elements.
    c.get(red).i32(-4).op("i32.and").set(vecEnd);
    c.i32(0).set(o);
    c.forLoop(
      o,
      () => c.get(outer),
      1,
      () => {
        c.get(x).get(o).get(red).op("i32.mul").i32(es).op("i32.mul").op("i32.add").set(p);
        c.v128const().set(acc0);
        c.v128const().set(acc1);
        c.i32(0).set(r);
        c.forLoop(
          r,
          () => c.get(vecEnd),
          4,
          () => {
            accumulate4(p);
            c.get(p)
              .i32(4 * es)
              .op("i32.add")
              .set(p);
          },
        );
        c.get(acc0).get(acc1).simd("f64x2.add").set(acc0);
        c.get(acc0).lane("f64x2.extract_lane", 0).get(acc0).lane("f64x2.extract_lane", 1).op("f64.add");
        c.set(s);
        c.forLoop(
          r,
          () => c.get(red),
          1,
          () => {
            scalarTo(p);
            c.get(p).i32(es).op("i32.add").set(p);
          },
        );
        c.get(out).get(o).i32(es).op("i32.mul").op("i32.add").set(q);
        storeS(q);
      },
    );
    c.else();
    // Vectorised across the kept inner axis: four columns at a time, walking the rows.
    c.get(inner).i32(-4).op("i32.and").set(vecEnd);
    c.get(inner).i32(es).op("i32.mul").set(rowB);
    c.i32(0).set(o);
    c.forLoop(
      o,
      () => c.get(outer),
      1,
      () => {
        c.i32(0).set(j);
        c.forLoop(
          j,
          () => c.get(vecEnd),
          4,
          () => {
            c.get(x).get(o).get(red).op("i32.mul").get(inner).op("i32.mul").get(j).op("i32.add");
            c.i32(es).op("i32.mul").op("i32.add").set(p);
            c.v128const().set(acc0);
            c.v128const().set(acc1);
            c.i32(0).set(r);
            c.forLoop(
              r,
              () => c.get(red),
              1,
              () => {
                accumulate4(p);
                c.get(p).get(rowB).op("i32.add").set(p);
              },
            );
            c.get(out).get(o).get(inner).op("i32.mul").get(j).op("i32.add").i32(es).op("i32.mul");
            c.op("i32.add").set(q);
            for (let lane = 0; lane < 4; lane++) {
              c.get(q);
              c.get(lane < 2 ? acc0 : acc1).lane("f64x2.extract_lane", lane % 2);
              if (t === "f32") c.op("f32.demote_f64");
              c.mem(store, lane * es);
            }
          },
        );
        c.forLoop(
          j,
          () => c.get(inner),
          1,
          () => {
            c.get(x).get(o).get(red).op("i32.mul").get(inner).op("i32.mul").get(j).op("i32.add");
            c.i32(es).op("i32.mul").op("i32.add").set(p);
            c.f64(0).set(s);
            c.i32(0).set(r);
            c.forLoop(
              r,
              () => c.get(red),
              1,
              () => {
                scalarTo(p);
                c.get(p).get(rowB).op("i32.add").set(p);
              },
            );
            c.get(out).get(o).get(inner).op("i32.mul").get(j).op("i32.add").i32(es).op("i32.mul");
            c.op("i32.add").set(q);
            storeS(q);
          },
        );
      },
    );
    c.end();
  });
}
