/**
 * @file A sum over a fused elementwise program's result, in one pass: jit's `reduce_sum` of a
 * value nothing else reads (a squared error, a norm's squares, a LayerNorm's squared deviations)
 * evaluates the program where the sum kernel would load the element and adds it at once, so the
 * summed result is never stored; the program's other results (a LayerNorm's `x − mean`) are
 * stored as it goes. The loops are `rsum`'s own (`emitSumLoops`) with each load replaced by the
 * program: the same float64 accumulators in the same order, so the bits equal the program's
 * kernel followed by the sum kernel.
 *
 * Covered: programs `fused-array.ts` compiles, every input and result of the sum's float type
 * (bools only inside), one-element inputs splat, and inputs read
 * - `plain` (or at an offset, a slice: the caller moves the address),
 * - `row`: one element per contiguous run (a per-row mean `[N, 1]` under a sum over the last axis),
 * - `run`: the same run of elements in every contiguous run (a bias `[D]` under that sum);
 * the last two only in sums over trailing axes (inner = 1), which the caller checks.
 */

import type { DType } from "../../dtype.js";
import type { FusedProgram, InputView } from "../kernel.js";
import { type Code, type MemorySpec, ModuleBuilder } from "./emitter.js";
import { covered, emitNode, MAX_NODES, simdNodes, typeOf, type WT } from "./fused-array.js";
import { emitSumLoops } from "./reduce.js";

/** How the kernel reads an input (see the file comment); `scalar`: one element, read once. */
export type SumRead = "plain" | "scalar" | "row" | "run";

/**
 * The bytes of a module exporting `kernel(in_0 … in_k-1, out, outer, red, inner, width,
 * keep_0 … keep_m-1)`: for the program's result `sumOutput` viewed as `[outer, red, inner]`,
 * out[o, j] = Σ_r prog(o, r, j) for j < width, and every other result written whole to its
 * `keep` array (byte addresses; `row` inputs read element (o % mod) + offset of their view,
 * `run` inputs element r + offset). Null when `p` is not covered.
 * @example
 * const p = { inputs: ["float32"], nodes: [{ kind: "binary", op: "mul", a: 0, b: 0, dtype: "float32" }], outputs: [1] };
 * emitFusedSum(p, ["plain"], 0, "float32", { shared: false, initial: 1 }) !== null; // true
 */
export function emitFusedSum(
  p: FusedProgram,
  reads: readonly SumRead[],
  sumOutput: number,
  dtype: DType,
  memory: MemorySpec,
): Uint8Array | null {
  const t = typeOf(dtype);
  if (t === null || t === "i32" || p.nodes.length > MAX_NODES) return null;
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
  // One float type throughout (the vector evaluation's lanes), bools only as masks inside.
  for (const x of types) if (x !== "i32" && x !== t) return null;
  for (const o of p.outputs) if (types[o] !== t) return null;
  for (let k = 0; k < p.nodes.length; k++) if (!covered(p, k, types)) return null;
  const m = new ModuleBuilder(memory);
  const params = new Array<"i32">(p.inputs.length + 5 + p.outputs.length - 1).fill("i32");
  m.func("kernel", params, [], (c) => body(c, p, reads, sumOutput, types, t));
  return m.toBytes();
}

function body(
  c: Code,
  p: FusedProgram,
  reads: readonly SumRead[],
  sumOutput: number,
  types: readonly WT[],
  t: "f32" | "f64",
): void {
  const nIn = p.inputs.length;
  const red = nIn + 2;
  const es = t === "f32" ? 4 : 8;
  const load = t === "f32" ? "f32.load" : "f64.load";
  const store = t === "f32" ? "f32.store" : "f64.store";
  const result = p.outputs[sumOutput]!;
  /** The results written whole, with their array's parameter index. */
  const kept = p.outputs
    .map((id, j) => ({ id, j }))
    .filter(({ j }) => j !== sumOutput)
    .map(({ id }, q) => ({ id, param: nIn + 5 + q }));
  const val = types.map((ty) => c.local(ty));
  const vec = types.map(() => c.local("v128"));
  const splat = (k: number) =>
    c
      .get(val[k]!)
      .simd(t === "f32" ? "f32x4.splat" : "f64x2.splat")
      .set(vec[k]!);
  /** Per input read element by element, the byte address of element 0 of the current run, less p. */
  const delta = reads.map((r) => (r === "plain" || r === "run" ? c.local("i32") : -1));
  for (let k = 0; k < nIn; k++) {
    if (reads[k] === "scalar") {
      c.get(k).mem(load).set(val[k]!);
      splat(k);
    } else if (reads[k] === "plain") c.get(k).set(delta[k]!);
  }
  const views = p.views ?? [];
  emitSumLoops(c, t, [nIn, nIn + 1, red, nIn + 3, nIn + 4], {
    row: (o, p0) => {
      for (let k = 0; k < nIn; k++) {
        const v = views[k] as InputView | null | undefined;
        if (reads[k] === "row") {
          // The element of this run: (o·red / div) % mod + offset, with div = red.
          c.get(k).get(o);
          if (v && v.mod > 0) c.i32(v.mod).op("i32.rem_u");
          if (v && v.offset !== 0) c.i32(v.offset).op("i32.add");
          c.i32(es).op("i32.mul").op("i32.add").mem(load).set(val[k]!);
          splat(k);
        } else if (reads[k] === "run") {
          // Element r + offset: the run's start address, less this run's p.
          c.get(k);
          if (v && v.offset !== 0) c.i32(v.offset * es).op("i32.add");
          c.get(p0).op("i32.sub").set(delta[k]!);
        }
      }
    },
    // The program's values at two elements (float32: the low lanes; the upper ones compute on
    // zeros, unread), promoted to an f64x2; kept results stored as they are.
    pair: (p0, h) => {
      for (let k = 0; k < nIn; k++) {
        if (delta[k]! < 0) continue;
        c.get(delta[k]!).get(p0).op("i32.add");
        if (t === "f32") c.mem("v128.load64_zero", 8 * h);
        else c.mem("v128.load", 16 * h);
        c.set(vec[k]!);
      }
      simdNodes(c, p, types, t, vec);
      for (const { id, param } of kept) {
        c.get(param).get(p0).op("i32.add").get(vec[id]!);
        if (t === "f32") c.storeLane64(0, 8 * h);
        else c.mem("v128.store", 16 * h);
      }
      c.get(vec[result]!);
      if (t === "f32") c.simd("f64x2.promote_low_f32x4");
    },
    one: (p0) => {
      for (let k = 0; k < nIn; k++) {
        if (delta[k]! < 0) continue;
        c.get(delta[k]!).get(p0).op("i32.add").mem(load).set(val[k]!);
      }
      p.nodes.forEach((n, k) => {
        emitNode(c, n, val, types, nIn + k);
        c.set(val[nIn + k]!);
      });
      for (const { id, param } of kept) c.get(param).get(p0).op("i32.add").get(val[id]!).mem(store);
      c.get(val[result]!);
      if (t === "f32") c.op("f64.promote_f32");
    },
    base: null,
  });
}
