/**
 * @file A sum over a fused elementwise program's result, in one pass: jit's `reduce_sum` of a
 * value nothing else reads (a squared error, a masked count, a norm's squares) evaluates the
 * program where the sum kernel would load the element and adds it at once, so the program's result
 * is never stored. The loops are `rsum`'s own (`emitSumLoops`) with each load replaced by the
 * program: the same float64 accumulators in the same order, so the bits equal the program's
 * kernel followed by the sum kernel. Covered: programs `fused-array.ts` compiles whose inputs are all of the sum's
 * float type and read plainly or at an offset (a slice: the caller offsets the input's address;
 * one-element inputs are splat), with one result.
 */

import type { DType } from "../../dtype.js";
import { type FusedProgram, isOffsetView } from "../kernel.js";
import { type Code, type MemorySpec, ModuleBuilder } from "./emitter.js";
import { covered, emitNode, MAX_NODES, simdNodes, typeOf, type WT } from "./fused-array.js";
import { emitSumLoops } from "./reduce.js";

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
  const load = t === "f32" ? "f32.load" : "f64.load";
  const result = p.outputs[0]!;
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
  emitSumLoops(c, t, [nIn, nIn + 1, nIn + 2, nIn + 3, nIn + 4], {
    // The program's values at two elements (float32: the low lanes; the upper ones compute on
    // zeros, unread), promoted to an f64x2.
    pair: (p0, h) => {
      for (let k = 0; k < nIn; k++) {
        if (scalar[k]) continue;
        c.get(k).get(p0).op("i32.add");
        if (t === "f32") c.mem("v128.load64_zero", 8 * h);
        else c.mem("v128.load", 16 * h);
        c.set(vec[k]!);
      }
      simdNodes(c, p, types, t, vec);
      c.get(vec[result]!);
      if (t === "f32") c.simd("f64x2.promote_low_f32x4");
    },
    one: (p0) => {
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
    },
    base: null,
  });
}
