/**
 * @file A sum over a fused elementwise program's result, in one pass: jit's `reduce_sum` of a
 * value nothing else reads (a squared error, a masked count, a norm's squares) evaluates the
 * program where the sum kernel would load the element and adds it at once, so the program's result
 * is never stored. The loop is `reduce.ts`'s `rsum` with each load replaced by the program: the
 * same float64 accumulators in the same order, so the bits equal the program's kernel followed by
 * the sum kernel. Covered: programs `fused-array.ts` compiles whose inputs are all of the sum's
 * float type and read plainly or at an offset (a slice: the caller offsets the input's address;
 * one-element inputs are splat), with one result.
 */

import type { DType } from "../../dtype.js";
import { type FusedProgram, isOffsetView } from "../kernel.js";
import { type Code, type MemorySpec, ModuleBuilder } from "./emitter.js";
import { covered, emitNode, MAX_NODES, simdNodes, typeOf, type WT } from "./fused-array.js";

/**
 * The bytes of a module exporting `kernel(in_0 … in_k-1, out, outer, red, inner, width)`: for the
 * input viewed as `[outer, red, inner]`, out[o, j] = Σ_r prog(o, r, j) for j < width (byte
 * addresses; input k read once where `scalar[k]`). Null when `p` is not covered.
 * @example
 * const p = { inputs: ["float32"], nodes: [{ kind: "binary", op: "mul", a: 0, b: 0, dtype: "float32" }], outputs: [1] };
 * emitFusedSum(p, [false], "float32", { shared: false, initial: 1 }) !== null; // true
 */
export function emitFusedSum(
  p: FusedProgram,
  scalar: readonly boolean[],
  dtype: DType,
  memory: MemorySpec,
): Uint8Array | null {
  const t = typeOf(dtype);
  if (t === null || t === "i32" || p.outputs.length !== 1 || p.nodes.length > MAX_NODES) return null;
  if (p.views?.some((v) => v !== null && v !== undefined && !isOffsetView(v))) return null;
  const types: WT[] = [];
  for (const d of p.inputs) {
    if (typeOf(d) !== t) return null;
    types.push(t);
  }
  for (const n of p.nodes) {
    const nt = typeOf(n.dtype);
    if (nt === null) return null;
    types.push(nt);
  }
  if (types[p.outputs[0]!] !== t) return null;
  // One float type throughout (the vector evaluation's lanes), bools as masks.
  for (const x of types) if (x !== "i32" && x !== t) return null;
  for (let k = 0; k < p.nodes.length; k++) if (!covered(p, k, types)) return null;
  const m = new ModuleBuilder(memory);
  const params = new Array<"i32">(p.inputs.length + 5).fill("i32");
  m.func("kernel", params, [], (c) => body(c, p, scalar, types, t));
  return m.toBytes();
}

function body(
  c: Code,
  p: FusedProgram,
  scalar: readonly boolean[],
  types: readonly WT[],
  t: "f32" | "f64",
): void {
  const nIn = p.inputs.length;
  const [out, outer, red, inner, width] = [nIn, nIn + 1, nIn + 2, nIn + 3, nIn + 4];
  const es = t === "f32" ? 4 : 8;
  const load = t === "f32" ? "f32.load" : "f64.load";
  const store = t === "f32" ? "f32.store" : "f64.store";
  const result = p.outputs[0]!;
  const o = c.local("i32");
  const r = c.local("i32");
  const j = c.local("i32");
  /** The byte offset of the current element (the same in every input). */
  const p0 = c.local("i32");
  const end = c.local("i32");
  const rowB = c.local("i32");
  const s = c.local("f64");
  const x = c.local("f64");
  const acc: number[] = [];
  for (let i = 0; i < 8; i++) acc.push(c.local("v128"));
  const val = types.map((ty) => c.local(ty));
  const vec = types.map(() => c.local("v128"));
  // One-element inputs: read once, as scalars and splat.
  for (let k = 0; k < nIn; k++)
    if (scalar[k]) {
      c.get(k).mem(load).set(val[k]!);
      c.get(val[k]!)
        .simd(t === "f32" ? "f32x4.splat" : "f64x2.splat")
        .set(vec[k]!);
    }
  /** Push the program's values at the two elements at byte offset p0 + 8h (f32) or 16h (f64), as f64x2. */
  const pair = (h: number): void => {
    for (let k = 0; k < nIn; k++) {
      if (scalar[k]) continue;
      c.get(k).get(p0).op("i32.add");
      if (t === "f32") c.mem("v128.load64_zero", 8 * h);
      else c.mem("v128.load", 16 * h);
      c.set(vec[k]!);
    }
    // float32: two elements in the low lanes (the upper ones compute on zeros, unread).
    simdNodes(c, p, types, t, vec);
    c.get(vec[result]!);
    if (t === "f32") c.simd("f64x2.promote_low_f32x4");
  };
  /** Add `cols` consecutive elements at p0 (cols/2 pairs) into acc[0..cols/2), as rsum does. */
  const accumulate = (cols: number): void => {
    for (let h = 0; h < cols / 2; h++) {
      c.get(acc[h]!);
      pair(h);
      c.simd("f64x2.add").set(acc[h]!);
    }
  };
  const scalarAdd = (): void => {
    for (let k = 0; k < nIn; k++) {
      if (scalar[k]) continue;
      c.get(k).get(p0).op("i32.add").mem(load).set(val[k]!);
    }
    p.nodes.forEach((n, k) => {
      emitNode(c, n, val, types, nIn + k);
      c.set(val[nIn + k]!);
    });
    c.get(val[result]!);
    if (t === "f32") c.op("f64.promote_f32");
    c.set(x);
    c.get(s).get(x).op("f64.add").set(s);
  };
  const storeF64 = (offset: number): void => {
    if (t === "f32") c.op("f32.demote_f64");
    c.mem(store, offset);
  };
  const rowStart = (): void => {
    c.get(o).get(red).op("i32.mul").get(inner).op("i32.mul").get(j).op("i32.add");
    c.i32(es).op("i32.mul");
  };
  const outAt = (): void => {
    c.get(out).get(o).get(inner).op("i32.mul").get(j).op("i32.add").i32(es).op("i32.mul").op("i32.add");
  };
  const lanes = t === "f32" ? 4 : 2;
  const blockCols = t === "f32" ? 16 : 8;
  c.get(inner).i32(es).op("i32.mul").set(rowB);
  c.i32(0).set(o);
  c.forLoop(
    o,
    () => c.get(outer),
    1,
    () => {
      c.i32(0).set(j);
      c.get(inner).i32(1).op("i32.eq").if();
      // One contiguous run per output: four interleaved partial sums, then the rest.
      rowStart();
      c.set(p0);
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
          c.get(p0)
            .i32(4 * es)
            .op("i32.add")
            .set(p0);
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
          c.get(p0).i32(es).op("i32.add").set(p0);
        },
      );
      outAt();
      c.get(s);
      storeF64(0);
      c.else();
      // Across columns: each lane sums its column's terms in row order.
      for (const cols of [blockCols, lanes, 1]) {
        c.get(width).i32(-cols).op("i32.and").set(end);
        c.forLoop(
          j,
          () => c.get(end),
          cols,
          () => {
            rowStart();
            c.set(p0);
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
                c.get(p0).get(rowB).op("i32.add").set(p0);
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
          },
        );
      }
      c.end();
    },
  );
}
