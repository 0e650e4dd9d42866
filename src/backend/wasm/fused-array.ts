/**
 * @file jit's fused elementwise programs over arrays (`FusedProgram`s, a DAG with several
 * results) compiled to one WebAssembly loop over the wasm backend's memory. The generated JS
 * kernel rounds every float32 node through `Math.fround` (about a nanosecond each, on the critical
 * path) and cannot use the single-precision instructions; here float32 nodes are `f32`
 * operations, which give the same bits: for `+ - * /` and `sqrt` of float32 operands, rounding
 * the exact double result once more to float32 equals rounding the exact result once (double
 * has more than twice float32's precision), and the other supported operations are exact.
 *
 * Programs over one float type (bools aside) whose inputs are read at `i` plus a constant offset
 * (slices; pads too, where they read their array) run four float32 (two float64) elements per
 * step in SIMD, with the scalar loop for the ends. Broadcasts (a bias along the rows, a per-row
 * scale) run row by row: each row reads a contiguous run or one splat element of every input,
 * so it is SIMD too, with one division per row instead of one per element (a bias + relu over
 * 512 x 512 float32 went from 2.6 ms to 0.18 ms). Mixed float types run the scalar loop.
 *
 * Covered: float32, float64 and bool inputs and results (bools are bytes in memory, 0/1 values
 * in the scalar loop and lane masks in the SIMD one), read through the same `InputView`s as the
 * JS kernel (offsets for slices, leading-axis pads, broadcasts), and the operations below. A
 * program with anything else (transcendentals, int32, 16-bit floats) returns null and keeps
 * the generated JS kernel.
 */

import type { DType } from "../../dtype.js";
import type { BinaryKernel, UnaryKernel } from "../backend.js";
import { castValue, type FusedProgram, type InputView } from "../kernel.js";
import { type Code, type MemorySpec, ModuleBuilder, type PlainOp, type SimdOp } from "./emitter.js";

/** The wasm type of a value: floats as themselves, bools as i32 0 or 1. */
export type WT = "f32" | "f64" | "i32";

export function typeOf(d: DType): WT | null {
  return d === "float32" ? "f32" : d === "float64" ? "f64" : d === "bool" ? "i32" : null;
}

const FLOAT_UNARY: Partial<Record<UnaryKernel, "abs" | "neg" | "sqrt" | "floor" | "ceil" | "nearest">> = {
  abs: "abs",
  neg: "neg",
  sqrt: "sqrt",
  floor: "floor",
  ceil: "ceil",
  round: "nearest", // round half to even, as the JS kernels' H.round
};
const FLOAT_ARITH: Partial<Record<BinaryKernel, "add" | "sub" | "mul" | "div">> = {
  add: "add",
  sub: "sub",
  mul: "mul",
  div: "div",
};
const FLOAT_COMPARE: Partial<Record<BinaryKernel, "eq" | "ne" | "lt" | "le" | "gt" | "ge">> = {
  eq: "eq",
  ne: "ne",
  lt: "lt",
  le: "le",
  gt: "gt",
  ge: "ge",
};

/** Largest program compiled (a wasm function body grows with it; V8 compiles it lazily anyway). */
export const MAX_NODES = 4000;

/**
 * The bytes of a module exporting `kernel(n, in_0 … in_k-1, out_0 … out_m-1)` (byte addresses)
 * that evaluates `p` at every index below `n`, reading input k once (element 0) where
 * `scalar[k]`; null when `p` uses something not covered (see the file comment).
 * @example
 * const p = { inputs: ["float32"], nodes: [{ kind: "unary", op: "neg", arg: 0, dtype: "float32" }], outputs: [1] };
 * emitFusedArray(p, [false], ["float32"], { shared: false, initial: 1 }) !== null; // true
 */
export function emitFusedArray(
  p: FusedProgram,
  scalar: readonly boolean[],
  outDtypes: readonly DType[],
  memory: MemorySpec,
): Uint8Array | null {
  if (p.nodes.length > MAX_NODES) return null;
  const nIn = p.inputs.length;
  const types: WT[] = [];
  for (const d of p.inputs) {
    const t = typeOf(d);
    if (t === null) return null;
    types.push(t);
  }
  for (const n of p.nodes) {
    const t = typeOf(n.dtype);
    if (t === null) return null;
    types.push(t);
  }
  for (let j = 0; j < p.outputs.length; j++) {
    const t = typeOf(outDtypes[j]!);
    if (t === null || types[p.outputs[j]!] !== t) return null;
  }
  // Check every node is covered before emitting anything.
  for (let k = 0; k < p.nodes.length; k++) if (!covered(p, k, types)) return null;
  const m = new ModuleBuilder(memory);
  const params = new Array<"i32">(1 + nIn + p.outputs.length).fill("i32");
  m.func("kernel", params, [], (c) => body(c, p, scalar, types));
  return m.toBytes();
}

export function covered(p: FusedProgram, k: number, types: readonly WT[]): boolean {
  const n = p.nodes[k]!;
  const t = types[p.inputs.length + k]!;
  switch (n.kind) {
    case "const":
      return true;
    case "unary":
      if (n.op === "not") return t === "i32" && types[n.arg] === "i32";
      return t !== "i32" && FLOAT_UNARY[n.op] !== undefined && types[n.arg] === t;
    case "binary": {
      const a = types[n.a]!;
      const b = types[n.b]!;
      if (a !== b) return false;
      if (n.op === "and" || n.op === "or") return t === "i32" && a === "i32";
      if (FLOAT_COMPARE[n.op] !== undefined)
        return t === "i32" && (a !== "i32" || n.op === "eq" || n.op === "ne");
      if (FLOAT_ARITH[n.op] !== undefined || n.op === "max" || n.op === "min") return t !== "i32" && a === t;
      return false;
    }
    case "select":
      return types[n.c] === "i32" && types[n.a] === t && types[n.b] === t;
    case "cast":
      return true; // every pair of f32, f64 and bool converts
  }
}

function body(c: Code, p: FusedProgram, scalar: readonly boolean[], types: readonly WT[]): void {
  const nIn = p.inputs.length;
  const N = 0;
  const inPtr = (k: number) => 1 + k;
  const outPtr = (j: number) => 1 + nIn + j;
  const i = c.local("i32");
  const val = types.map((t) => c.local(t));
  const used = new Uint8Array(nIn);
  for (const n of p.nodes)
    for (const a of n.kind === "const"
      ? []
      : n.kind === "unary" || n.kind === "cast"
        ? [n.arg]
        : n.kind === "binary"
          ? [n.a, n.b]
          : [n.c, n.a, n.b])
      if (a < nIn) used[a] = 1;
  for (const o of p.outputs) if (o < nIn) used[o] = 1;
  // Bools are stored as bytes (0 or 1).
  const load = (k: number) =>
    c.mem(types[k] === "f32" ? "f32.load" : types[k] === "f64" ? "f64.load" : "i32.load8_u");
  const shift = (k: number) => (types[k] === "f32" ? 2 : types[k] === "f64" ? 3 : 0);
  // One-element inputs: read once.
  for (let k = 0; k < nIn; k++)
    if (used[k] && scalar[k]) {
      c.get(inPtr(k));
      load(k).set(val[k]!);
    }
  const scalarLoop = (limit: () => void) =>
    c.forLoop(i, limit, 1, () => {
      for (let k = 0; k < nIn; k++)
        if (used[k] && !scalar[k])
          readInput(c, k, p.views?.[k] ?? null, i, inPtr(k), shift(k), val[k]!, types[k]!, load);
      p.nodes.forEach((n, k) => {
        emitNode(c, n, val, types, nIn + k);
        c.set(val[nIn + k]!);
      });
      p.outputs.forEach((o, j) => {
        const t = types[o]!;
        c.get(outPtr(j))
          .get(i)
          .i32(t === "f32" ? 2 : t === "f64" ? 3 : 0)
          .op("i32.shl")
          .op("i32.add")
          .get(val[o]!)
          .mem(t === "f32" ? "f32.store" : t === "f64" ? "f64.store" : "i32.store8");
      });
    });
  c.i32(0).set(i);
  const simd = simdType(p, scalar, types);
  const rows = simd === null ? rowPlan(p, scalar, types, used) : null;
  if (rows !== null) rowLoop(c, p, scalar, types, used, rows, i, val);
  if (simd !== null) {
    // Pads read their fill outside [start, end): the vector loop runs where every pad reads its
    // array, [lo, hi); the scalar loop does the indices before and after.
    let lo = 0;
    let hi = -1;
    for (let k = 0; k < nIn; k++) {
      const v = p.views?.[k] ?? null;
      if (v === null || scalar[k] || !used[k]) continue;
      lo = Math.max(lo, v.start);
      if (v.end >= 0) hi = hi < 0 ? v.end : Math.min(hi, v.end);
    }
    const min = (a: () => void, b: () => void) => {
      a();
      b();
      a();
      b();
      c.op("i32.lt_u").op("select");
    };
    const loL = c.local("i32");
    const hiL = c.local("i32");
    const endL = c.local("i32");
    min(
      () => c.i32(lo),
      () => c.get(N),
    );
    c.set(loL);
    if (hi < 0) c.get(N).set(hiL);
    else {
      min(
        () => c.i32(hi),
        () => c.get(N),
      );
      c.set(hiL);
    }
    // end = lo + ((hi - lo) rounded down to whole vectors), or lo when hi <= lo.
    c.get(loL)
      .get(hiL)
      .get(loL)
      .op("i32.sub")
      .i32(simd === "f32" ? -4 : -2)
      .op("i32.and")
      .op("i32.add");
    c.get(loL);
    c.get(hiL).get(loL).op("i32.gt_u");
    c.op("select").set(endL);
    if (lo > 0) scalarLoop(() => c.get(loL));
    simdLoop(c, p, scalar, types, simd, used, i, endL);
  }
  scalarLoop(() => c.get(N));
}

/** Input k's element at index i, through its view, into local `dst`. */
function readInput(
  c: Code,
  k: number,
  v: InputView | null,
  i: number,
  ptr: number,
  sh: number,
  dst: number,
  t: WT,
  load: (k: number) => Code,
): void {
  const address = () => {
    c.get(ptr).get(i);
    if (v !== null) {
      if (v.div !== 1) c.i32(v.div).op("i32.div_u");
      if (v.mod > 0) c.i32(v.mod).op("i32.rem_u");
      if (v.offset !== 0) c.i32(v.offset).op("i32.add");
    }
    c.i32(sh).op("i32.shl").op("i32.add");
  };
  if (v === null || (v.start <= 0 && v.end < 0)) {
    address();
    load(k).set(dst);
    return;
  }
  // A pad: the fill outside [start, end), read only inside (an index outside may not exist).
  emitConst(c, t, v.fill);
  c.set(dst);
  c.i32(1);
  if (v.start > 0) c.get(i).i32(v.start).op("i32.ge_u").op("i32.and");
  if (v.end >= 0) c.get(i).i32(v.end).op("i32.lt_u").op("i32.and");
  c.if();
  address();
  load(k).set(dst);
  c.end();
}

function emitConst(c: Code, t: WT, v: number): void {
  if (t === "f32") c.f32(v);
  else if (t === "f64") c.f64(v);
  else c.i32(v ? 1 : 0);
}

/** Push node `id`'s value (its operands are in `val`). */
export function emitNode(
  c: Code,
  n: FusedProgram["nodes"][number],
  val: readonly number[],
  types: readonly WT[],
  id: number,
): void {
  const t = types[id]!;
  switch (n.kind) {
    case "const":
      emitConst(c, t, castValue(n.dtype, n.value));
      return;
    case "unary":
      c.get(val[n.arg]!);
      if (n.op === "not") c.op("i32.eqz");
      else c.op(`${t}.${FLOAT_UNARY[n.op]!}` as PlainOp);
      return;
    case "binary": {
      const a = val[n.a]!;
      const b = val[n.b]!;
      const at = types[n.a]!;
      if (n.op === "and" || n.op === "or") {
        c.get(a)
          .get(b)
          .op(n.op === "and" ? "i32.and" : "i32.or");
        return;
      }
      const cmp = FLOAT_COMPARE[n.op];
      if (cmp !== undefined) {
        c.get(a)
          .get(b)
          .op(`${at}.${cmp}` as PlainOp);
        return;
      }
      if (n.op === "max" || n.op === "min") {
        // The JS kernels' rule: a when a > b (a < b for min) or a is NaN, else b.
        c.get(a).get(b);
        c.get(a)
          .get(b)
          .op(`${at}.${n.op === "max" ? "gt" : "lt"}` as PlainOp);
        c.get(a)
          .get(a)
          .op(`${at}.ne` as PlainOp)
          .op("i32.or");
        c.op("select");
        return;
      }
      c.get(a)
        .get(b)
        .op(`${t}.${FLOAT_ARITH[n.op]!}` as PlainOp);
      return;
    }
    case "select":
      c.get(val[n.a]!).get(val[n.b]!).get(val[n.c]!).op("select");
      return;
    case "cast": {
      const from = types[n.arg]!;
      c.get(val[n.arg]!);
      if (from === t) return;
      if (t === "i32") {
        // JS truthiness: 0, -0 and NaN are false.
        const x = val[n.arg]!;
        (from === "f32" ? c.f32(0) : c.f64(0)).op(`${from}.ne` as PlainOp);
        c.get(x)
          .get(x)
          .op(`${from}.eq` as PlainOp)
          .op("i32.and");
      } else if (from === "i32") c.op(t === "f32" ? "f32.convert_i32_s" : "f64.convert_i32_s");
      else c.op(t === "f32" ? "f32.demote_f64" : "f64.promote_f32");
      return;
    }
  }
}

// ---- SIMD ----------------------------------------------------------------------------------

/**
 * The float type of a program the SIMD loop covers: one float type for every float value (no
 * float32/float64 casts), and inputs read at `i` plus a constant (slices, pads; no broadcast
 * division).
 */
function simdType(p: FusedProgram, scalar: readonly boolean[], types: readonly WT[]): "f32" | "f64" | null {
  let ft: "f32" | "f64" | null = null;
  for (const t of types) {
    if (t === "i32") continue;
    if (ft !== null && ft !== t) return null;
    ft = t;
  }
  for (let k = 0; k < p.inputs.length; k++) {
    const v = p.views?.[k] ?? null;
    if (scalar[k] || v === null) continue;
    if (v.div !== 1 || v.mod > 0) return null;
  }
  return ft;
}

/**
 * The vector loop: `lanes` elements per step from `i` up to the local `limit` (a whole number of
 * vectors), every pad reading its array there. Bools are lane masks (all ones or all zeros).
 */
function simdLoop(
  c: Code,
  p: FusedProgram,
  scalar: readonly boolean[],
  types: readonly WT[],
  ft: "f32" | "f64",
  used: Uint8Array,
  i: number,
  limit: number,
): void {
  const nIn = p.inputs.length;
  const sh = ft === "f32" ? 2 : 3;
  const vec = types.map(() => c.local("v128"));
  for (let k = 0; k < nIn; k++)
    if (used[k] && scalar[k]) {
      splatInput(c, types[k]!, ft, () => c.get(1 + k));
      c.set(vec[k]!);
    }
  c.forLoop(
    i,
    () => c.get(limit),
    ft === "f32" ? 4 : 2,
    () =>
      simdStep(
        c,
        p,
        scalar,
        types,
        ft,
        used,
        vec,
        (k) => {
          const off = p.views?.[k]?.offset ?? 0;
          c.get(1 + k).get(i);
          if (off !== 0) c.i32(off).op("i32.add");
          if (types[k] !== "i32") c.i32(sh).op("i32.shl");
          c.op("i32.add");
        },
        (j) => c.get(1 + nIn + j).get(i),
      ),
  );
}

/** The element at the address `addr` pushes, splat to every lane (a bool as a lane mask). */
function splatInput(c: Code, t: WT, ft: "f32" | "f64", addr: () => void): void {
  if (t === "i32") {
    // 0 or 1 to a lane mask: 0 - b splat (all ones for f32 and f64 lanes alike).
    c.i32(0);
    addr();
    c.mem("i32.load8_u").op("i32.sub").simd("i32x4.splat");
    return;
  }
  addr();
  c.mem(ft === "f32" ? "f32.load" : "f64.load").simd(ft === "f32" ? "f32x4.splat" : "f64x2.splat");
}

/**
 * One vector step: load every input that is not splat already (`splat[k]`) from the address
 * `inAddr(k)` pushes, evaluate the nodes, store each output at the address `outBase(j)` pushes
 * plus the element index it pushes next (bytes for bools, elements shifted for floats).
 */
function simdStep(
  c: Code,
  p: FusedProgram,
  splat: readonly boolean[],
  types: readonly WT[],
  ft: "f32" | "f64",
  used: Uint8Array,
  vec: readonly number[],
  inAddr: (k: number) => void,
  outBase: (j: number) => void,
): void {
  const nIn = p.inputs.length;
  const lanes = ft === "f32" ? 4 : 2;
  const sh = ft === "f32" ? 2 : 3;
  for (let k = 0; k < nIn; k++) {
    if (!used[k] || splat[k]) continue;
    inAddr(k);
    if (types[k] !== "i32") c.mem("v128.load");
    else {
      // `lanes` bytes widened to lanes, then compared with 0: a lane mask.
      c.mem(ft === "f32" ? "v128.load32_zero" : "v128.load16_splat");
      c.simd("i16x8.extend_low_i8x16_u").simd("i32x4.extend_low_i16x8_u");
      if (ft === "f64") c.simd("i64x2.extend_low_i32x4_u");
      c.v128const().simd(ft === "f32" ? "i32x4.ne" : "i64x2.ne");
    }
    c.set(vec[k]!);
  }
  simdNodes(c, p, types, ft, vec);
  p.outputs.forEach((o, j) => {
    if (types[o] === "i32") {
      // A mask to bytes: each lane's low bit, one store per lane.
      for (let l = 0; l < lanes; l++) {
        outBase(j);
        c.op("i32.add");
        c.get(vec[o]!);
        if (ft === "f32") c.lane("i32x4.extract_lane", l);
        else c.lane("i64x2.extract_lane", l).op("i32.wrap_i64");
        c.i32(1).op("i32.and").mem("i32.store8", l);
      }
      return;
    }
    outBase(j);
    c.i32(sh).op("i32.shl").op("i32.add").get(vec[o]!).mem("v128.store");
  });
}

/**
 * Evaluate the program's nodes on vectors: operands in `vec` (inputs already there), each node's
 * value into its own `vec` local. Bools are lane masks.
 */
export function simdNodes(
  c: Code,
  p: FusedProgram,
  types: readonly WT[],
  ft: "f32" | "f64",
  vec: readonly number[],
): void {
  const nIn = p.inputs.length;
  const V = ft === "f32" ? "f32x4" : "f64x2";
  const splatConst = (v: number) => {
    if (ft === "f32") c.f32(v).simd("f32x4.splat");
    else c.f64(v).simd("f64x2.splat");
  };
  p.nodes.forEach((n, k) => {
    const id = nIn + k;
    const t = types[id]!;
    const get = (a: number) => c.get(vec[a]!);
    switch (n.kind) {
      case "const": {
        const v = castValue(n.dtype, n.value);
        if (t === "i32") c.i32(v ? -1 : 0).simd("i32x4.splat");
        else splatConst(v);
        break;
      }
      case "unary":
        get(n.arg);
        if (n.op === "not") c.simd("v128.not");
        else c.simd(`${V}.${FLOAT_UNARY[n.op]!}` as SimdOp);
        break;
      case "binary": {
        if (n.op === "and" || n.op === "or") {
          get(n.a);
          get(n.b);
          c.simd(n.op === "and" ? "v128.and" : "v128.or");
          break;
        }
        const cmp = FLOAT_COMPARE[n.op];
        if (cmp !== undefined) {
          get(n.a);
          get(n.b);
          // Masks compare equal lane by lane in 32-bit halves as well as whole.
          c.simd(types[n.a] === "i32" ? (cmp === "eq" ? "i32x4.eq" : "i32x4.ne") : (`${V}.${cmp}` as SimdOp));
          break;
        }
        if (n.op === "max" || n.op === "min") {
          get(n.a);
          get(n.b);
          get(n.a);
          get(n.b);
          c.simd(`${V}.${n.op === "max" ? "gt" : "lt"}` as SimdOp);
          get(n.a);
          get(n.a);
          c.simd(`${V}.ne` as SimdOp)
            .simd("v128.or")
            .simd("v128.bitselect");
          break;
        }
        get(n.a);
        get(n.b);
        c.simd(`${V}.${FLOAT_ARITH[n.op]!}` as SimdOp);
        break;
      }
      case "select":
        get(n.a);
        get(n.b);
        get(n.c);
        c.simd("v128.bitselect");
        break;
      case "cast": {
        const from = types[n.arg]!;
        get(n.arg);
        if (from === t) break;
        if (t === "i32") {
          // JS truthiness: 0, -0 and NaN are false.
          splatConst(0);
          c.simd(`${V}.ne` as SimdOp);
          get(n.arg);
          get(n.arg);
          c.simd(`${V}.eq` as SimdOp).simd("v128.and");
        } else {
          splatConst(1);
          c.simd("v128.and"); // mask & 1.0: 1.0 or +0
        }
        break;
      }
    }
    c.set(vec[id]!);
  });
}

// ---- rows ----------------------------------------------------------------------------------

/** How the row loop reads input k: `run` a contiguous run per row, `one` one element per row. */
interface RowRead {
  readonly kind: "run" | "one";
  readonly view: InputView;
}

/** The row loop's plan: its row length and how each input is read (null: plain or one-element). */
interface RowPlan {
  readonly ft: "f32" | "f64";
  readonly length: number;
  readonly reads: readonly (RowRead | null)[];
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/**
 * Broadcast views (a bias along the rows, a per-row scale) need a division or remainder per
 * element in the flat loop. Over rows of a length `L` that divides every such view's period,
 * each reads either a contiguous run (`(i % mod)`: the run starts at `(row · L) % mod`) or one
 * element per row (`i / div` with `div` a multiple of L), so the rows run in SIMD with one
 * division per row. Null when no input needs it or a view does not fit (pads keep the flat loop).
 */
function rowPlan(
  p: FusedProgram,
  scalar: readonly boolean[],
  types: readonly WT[],
  used: Uint8Array,
): RowPlan | null {
  let ft: "f32" | "f64" | null = null;
  for (const t of types) {
    if (t === "i32") continue;
    if (ft !== null && ft !== t) return null;
    ft = t;
  }
  if (ft === null) return null;
  let length = 0;
  for (let k = 0; k < p.inputs.length; k++) {
    const v = p.views?.[k] ?? null;
    if (!used[k] || scalar[k] || v === null) continue;
    if (v.start > 0 || v.end >= 0) return null;
    if (v.div > 1) length = gcd(length, v.div);
    else if (v.mod > 0) length = gcd(length, v.mod);
  }
  const lanes = ft === "f32" ? 4 : 2;
  if (length < 2 * lanes) return null;
  const reads = p.inputs.map((_, k): RowRead | null => {
    const v = p.views?.[k] ?? null;
    if (!used[k] || scalar[k] || v === null) return null;
    return { kind: v.div > 1 ? "one" : "run", view: v };
  });
  return { ft, length, reads };
}

/**
 * Rows of `plan.length` elements up to the last whole row (the flat scalar loop does any rest):
 * per row, each run's start address and each one-element read splat; then whole vectors and the
 * row's scalar end. Leaves `i` at the first element not done.
 */
function rowLoop(
  c: Code,
  p: FusedProgram,
  scalar: readonly boolean[],
  types: readonly WT[],
  used: Uint8Array,
  plan: RowPlan,
  i: number,
  val: readonly number[],
): void {
  const nIn = p.inputs.length;
  const { ft, length: L, reads } = plan;
  const lanes = ft === "f32" ? 4 : 2;
  const whole = L - (L % lanes);
  const shift = (t: WT) => (t === "f32" ? 2 : t === "f64" ? 3 : 0);
  const load = (t: WT) => c.mem(t === "f32" ? "f32.load" : t === "f64" ? "f64.load" : "i32.load8_u");
  const r0 = c.local("i32");
  const end = c.local("i32");
  const j = c.local("i32");
  const tmp = c.local("i32");
  const base = p.inputs.map((_, k) =>
    used[k] && !scalar[k] && reads[k]?.kind !== "one" ? c.local("i32") : -1,
  );
  const outBase = p.outputs.map(() => c.local("i32"));
  const vec = types.map(() => c.local("v128"));
  const splat = p.inputs.map((_, k) => scalar[k]! || reads[k]?.kind === "one");
  for (let k = 0; k < nIn; k++)
    if (used[k] && scalar[k]) {
      splatInput(c, types[k]!, ft, () => c.get(1 + k));
      c.set(vec[k]!);
    }
  // end = n - n % L
  c.get(0).get(0).i32(L).op("i32.rem_u").op("i32.sub").set(end);
  c.i32(0).set(r0);
  c.forLoop(
    r0,
    () => c.get(end),
    L,
    () => {
      for (let k = 0; k < nIn; k++) {
        if (!used[k] || scalar[k]) continue;
        const t = types[k]!;
        const rd = reads[k] ?? null;
        const v = rd?.view ?? null;
        // The element index this row starts reading at.
        c.get(r0);
        if (v !== null) {
          if (v.div > 1) c.i32(v.div).op("i32.div_u");
          if (v.mod > 0) c.i32(v.mod).op("i32.rem_u");
          if (v.offset !== 0) c.i32(v.offset).op("i32.add");
        }
        c.i32(shift(t))
          .op("i32.shl")
          .get(1 + k)
          .op("i32.add");
        if (rd?.kind === "one") {
          // One element for the whole row: its value for the scalar end, splat for the vectors.
          c.set(tmp);
          c.get(tmp);
          load(t).set(val[k]!);
          splatInput(c, t, ft, () => c.get(tmp));
          c.set(vec[k]!);
        } else c.set(base[k]!);
      }
      p.outputs.forEach((o, q) => {
        c.get(1 + nIn + q)
          .get(r0)
          .i32(shift(types[o]!))
          .op("i32.shl")
          .op("i32.add")
          .set(outBase[q]!);
      });
      c.i32(0).set(j);
      if (whole > 0)
        c.forLoop(
          j,
          () => c.i32(whole),
          lanes,
          () =>
            simdStep(
              c,
              p,
              splat,
              types,
              ft,
              used,
              vec,
              (k) => {
                c.get(base[k]!).get(j);
                if (types[k] !== "i32") c.i32(shift(types[k]!)).op("i32.shl");
                c.op("i32.add");
              },
              (q) => c.get(outBase[q]!).get(j),
            ),
        );
      if (whole < L)
        c.forLoop(
          j,
          () => c.i32(L),
          1,
          () => {
            for (let k = 0; k < nIn; k++) {
              if (!used[k] || splat[k]) continue;
              c.get(base[k]!).get(j).i32(shift(types[k]!)).op("i32.shl").op("i32.add");
              load(types[k]!).set(val[k]!);
            }
            p.nodes.forEach((n, k) => {
              emitNode(c, n, val, types, nIn + k);
              c.set(val[nIn + k]!);
            });
            p.outputs.forEach((o, q) => {
              const t = types[o]!;
              c.get(outBase[q]!)
                .get(j)
                .i32(shift(t))
                .op("i32.shl")
                .op("i32.add")
                .get(val[o]!)
                .mem(t === "f32" ? "f32.store" : t === "f64" ? "f64.store" : "i32.store8");
            });
          },
        );
    },
  );
  c.get(end).set(i);
}
