/**
 * @file Elementwise fusion for `jit`: one pass over the simplified program that groups
 * elementwise equations into regions, each run as ONE `fused_program` equation — a DAG with
 * several results evaluated in one loop over its elements, with no intermediate arrays.
 *
 * - A region holds equations whose results have one shape (all one-element values form one
 *   class: a scalar chain, a loss, a learning-rate schedule, and their backward passes). Values
 *   used several times stay inside it; the results are the values read outside it or returned.
 * - Equations that do not read a region's values may move ahead of it (programs are pure), so a
 *   region is only cut by an equation that needs one of its values: it is emitted just before.
 * - Movement that is an index map of a value computed before the region — a broadcast along
 *   leading or trailing axes, a contiguous slice, a pad along the leading axis, a reshape — is read
 *   through an `InputView` instead of being materialised.
 * - A backend may keep some equations out (`barrier`): the wasm backend runs float32 exp, log,
 *   tanh and sigmoid on large arrays as SIMD kernels an order of magnitude faster than the JS
 *   `Math` calls a fused kernel would make.
 *
 * Each node keeps its dtype, so the fused kernels round exactly as the separate kernels would:
 * fused and unfused results are identical. Only literals made while tracing become constants of
 * a kernel; captured tensors (which may change in place) stay inputs, read at every call.
 */

import type { BinaryKernel, UnaryKernel } from "../backend/backend.js";
import type { FusedNode, FusedProgram, InputView } from "../backend/kernel.js";
import { roundResult } from "../backend/kernel.js";
import { scalarValue } from "../backend/reference.js";
import type { Aval, Primitive } from "../core/primitive.js";
import { type Atom, type Eqn, Lit, Program, Var } from "../core/program.js";
import type { DType } from "../dtype.js";
import {
  type FusedProgramParams,
  fusedProgramP,
  matmulEpilogueP,
  sumPrologueP,
} from "../primitives/fused.js";
import { type MatmulParams, matmulP } from "../primitives/linalg.js";
import type { PadParams, SliceParams } from "../primitives/movement.js";
import { shapeEq, sizeOf, stridesOf } from "../shape.js";
import { maxVarId, noteMaxVarId } from "./simplify.js";

const UNARY = new Set<string>([
  "neg",
  "exp",
  "log",
  "log1p",
  "expm1",
  "sqrt",
  "sin",
  "cos",
  "tan",
  "asin",
  "acos",
  "atan",
  "sinh",
  "cosh",
  "tanh",
  "logistic",
  "abs",
  "sign",
  "floor",
  "ceil",
  "round",
  "erf",
  "not",
]);
const BINARY = new Set<string>([
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "max",
  "min",
  "atan2",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
  "and",
  "or",
]);

// What a primitive is to the fusion pass, computed once per primitive (the pass asks for every
// equation of programs thousands long, mostly before the engine has optimized it).
const F_NONE = 0;
const F_UNARY = 1;
const F_BINARY = 2;
const F_SELECT = 3;
const F_CAST = 4;
/** stop_gradient: the identity when running. */
const F_IDENTITY = 5;
const F_BROADCAST = 6;
const F_RESHAPE = 7;
const F_SLICE = 8;
const F_PAD = 9;
const kinds = new Map<Primitive<unknown>, number>();

function kindOf(prim: Primitive<unknown>): number {
  let k = kinds.get(prim);
  if (k === undefined) {
    const n = prim.name;
    k = UNARY.has(n)
      ? F_UNARY
      : BINARY.has(n)
        ? F_BINARY
        : n === "select"
          ? F_SELECT
          : n === "convert_element_type"
            ? F_CAST
            : n === "stop_gradient"
              ? F_IDENTITY
              : n === "broadcast_to"
                ? F_BROADCAST
                : n === "reshape"
                  ? F_RESHAPE
                  : n === "slice"
                    ? F_SLICE
                    : n === "pad"
                      ? F_PAD
                      : F_NONE;
    kinds.set(prim, k);
  }
  return k;
}

const isOne = (shape: readonly number[]): boolean => shape.length === 0 || sizeOf(shape) === 1;

/**
 * Whether fusable equation `e` is the identity when running: stop_gradient, movement that keeps
 * the shape, and broadcasts or reshapes of a single value (read as a scalar everywhere).
 */
function isAlias(e: Eqn, k: number): boolean {
  if (k === F_IDENTITY) return true;
  if (k < F_BROADCAST) return false;
  const from = e.inputs[0]!.aval.shape;
  return shapeEq(from, e.outs[0]!.shape) || ((k === F_BROADCAST || k === F_RESHAPE) && isOne(from));
}

/** Whether a literal may be baked into a kernel (by default: any concrete one-element literal). */
export type ConstantLit = (l: Lit) => boolean;

/** Equations a backend runs faster on their own than inside a fused kernel. */
export type Barrier = (e: Eqn) => boolean;

function constantOf(a: Atom, isConstant: ConstantLit): number | null {
  if (!(a instanceof Lit)) return null;
  const t = a.value;
  if (t._trace !== null || !isOne(t.shape) || !isConstant(a)) return null;
  return scalarValue(t._buf) ?? t._hostData()[0]!;
}

// ---- views -------------------------------------------------------------------------------

const PLAIN: InputView = { div: 1, mod: 0, offset: 0, start: 0, end: -1, fill: 0 };

/**
 * The view reading a value of shape `from` broadcast to `to`, when the axes it keeps form one
 * block (a bias along trailing axes, a column along leading ones, ...); else null.
 */
function broadcastView(from: readonly number[], to: readonly number[]): InputView | null {
  const lead = to.length - from.length;
  if (lead < 0) return null;
  // Output axes (other than size 1) where the operand is present, as one contiguous block.
  let first = -1;
  let last = -1;
  for (let d = 0; d < to.length; d++) {
    if (to[d] === 1) continue;
    const present = d >= lead && from[d - lead] !== 1;
    if (present && from[d - lead] !== to[d]) return null;
    if (!present) continue;
    if (first < 0) first = d;
    else if (last !== d - 1) {
      // a gap: only size-1 axes between them keep it one block
      for (let g = last + 1; g < d; g++) if (to[g] !== 1) return null;
    }
    last = d;
  }
  if (first < 0) return null; // a single value: read as a scalar
  let div = 1;
  for (let d = last + 1; d < to.length; d++) div *= to[d]!;
  let block = 1;
  for (let d = first; d <= last; d++) block *= to[d]!;
  const leading = sizeOf(to) / (div * block) === 1;
  return { div, mod: leading ? 0 : block, offset: 0, start: 0, end: -1, fill: 0 };
}

/**
 * The view of a contiguous slice (size 1 on the axes before its first longer one, whole on the
 * axes after it), else null.
 */
function sliceView(shape: readonly number[], p: SliceParams): InputView | null {
  const st = stridesOf(shape);
  let offset = 0;
  for (let d = 0; d < shape.length; d++) offset += p.begin[d]! * st[d]!;
  let first = 0;
  while (first < shape.length - 1 && p.size[first] === 1) first++;
  for (let d = first + 1; d < shape.length; d++) if (p.size[d] !== shape[d]) return null;
  return { ...PLAIN, offset };
}

/**
 * The view of a pad along one axis whose earlier axes have size 1 (a contiguous block inside a
 * filled array), else null. The fill is the pad value as stored in `dtype`.
 */
function padView(shape: readonly number[], p: PadParams, dtype: DType): InputView | null {
  let axis = -1;
  for (let d = 0; d < shape.length; d++) {
    const [lo, hi] = p.widths[d]!;
    if (lo === 0 && hi === 0) continue;
    if (axis >= 0) return null;
    axis = d;
  }
  if (axis < 0) return PLAIN;
  for (let d = 0; d < axis; d++) if (shape[d] !== 1) return null;
  const outShape = shape.map((s, d) => s + p.widths[d]![0] + p.widths[d]![1]);
  const start = p.widths[axis]![0] * stridesOf(outShape)[axis]!;
  const fill = roundResult(dtype, p.value);
  return { div: 1, mod: 0, offset: -start, start, end: start + sizeOf(shape), fill };
}

// ---- regions ---------------------------------------------------------------------------------

/** One region: the equations it holds (indices, in order), its shape, and whether it is still open. */
interface Region {
  readonly eqns: number[];
  readonly shape: readonly number[];
  readonly scalar: boolean;
  open: boolean;
  /** Equations that compute (not alias or view): a region of fewer than two is not worth a kernel. */
  ops: number;
  views: number;
}

/**
 * Fuse elementwise work (returns a new program; the input is unchanged). `barrier` keeps
 * equations a backend runs faster on their own out of every kernel.
 */
export function fuse(program: Program, isConstant: ConstantLit = () => true, barrier?: Barrier): Program {
  // Variables are numbered densely by tracing: flat arrays indexed by id instead of maps (this
  // pass sees every equation of programs thousands long, on their first call).
  const maxId = maxVarId(program);
  if (maxId < 0) return program;
  program = absorbTransposes(program, maxId);
  const eqns = program.eqns;
  /** The region that computes each variable, or -1. */
  const regionOfVar = new Int32Array(maxId + 1).fill(-1);
  const regionOfEqn = new Int32Array(eqns.length).fill(-1);
  const regions: Region[] = [];
  /** Emission order: an equation index (>= 0) or a region (-1 - index), when it is cut. */
  const order: number[] = [];
  let scalarOpen = -1;
  const arrayOpen: number[] = [];
  const close = (r: number) => {
    const reg = regions[r]!;
    reg.open = false;
    if (r === scalarOpen) scalarOpen = -1;
    else arrayOpen.splice(arrayOpen.indexOf(r), 1);
    order.push(-1 - r);
  };
  for (let i = 0; i < eqns.length; i++) {
    const e = eqns[i]!;
    const target = regionFor(e, barrier, regions, scalarOpen, arrayOpen, regionOfVar);
    // Any other open region this equation reads is cut here (its values are needed now).
    const ins = e.inputs;
    for (let k = 0; k < ins.length; k++) {
      const a = ins[k]!;
      if (!(a instanceof Var)) continue;
      const r = regionOfVar[a.id]!;
      if (r >= 0 && r !== target && regions[r]!.open) close(r);
    }
    if (target === -2) {
      order.push(i);
      continue;
    }
    let r = target;
    if (r < 0) {
      const shape = e.outs[0]!.shape;
      const scalar = isOne(shape);
      r = regions.push({ eqns: [], shape, scalar, open: true, ops: 0, views: 0 }) - 1;
      if (scalar) scalarOpen = r;
      else arrayOpen.push(r);
    }
    const reg = regions[r]!;
    reg.eqns.push(i);
    const k = kindOf(e.prim);
    if (k >= F_UNARY && k <= F_CAST) reg.ops++;
    else if (k !== F_RESHAPE && !isAlias(e, k)) reg.views++;
    regionOfEqn[i] = r;
    regionOfVar[e.outs[0]!.id] = r;
  }
  for (let r = 0; r < regions.length; r++) if (regions[r]!.open) order.push(-1 - r);
  // Nothing to do unless a region is worth a kernel, or one operation could join a product or a sum.
  if (!regions.some((r) => worthFusing(r)) && !joinsProductOrSum(regions, eqns, maxId)) return program;
  // A region's results: its values read outside it, or returned.
  const escapes = new Uint8Array(maxId + 1);
  for (let i = 0; i < eqns.length; i++) {
    const ins = eqns[i]!.inputs;
    const own = regionOfEqn[i]!;
    for (let k = 0; k < ins.length; k++) {
      const a = ins[k]!;
      if (!(a instanceof Var)) continue;
      const r = regionOfVar[a.id]!;
      if (r >= 0 && r !== own) escapes[a.id] = 1;
    }
  }
  for (const a of program.outputs) if (a instanceof Var) escapes[a.id] = 1;
  const out: (Eqn | null)[] = [];
  const slot = new Int32Array(maxId + 1).fill(-1);
  // Products, by result: where they were emitted (an epilogue may take one in), and every
  // variable's readers (a product with readers outside its epilogue stays on its own).
  const productAt = new Map<number, number>();
  /** Sums taken into the program that feeds them (by equation index): skipped where they stood. */
  const absorbed = new Set<number>();
  const readers = new Int32Array(maxId + 1);
  for (let i = 0; i < eqns.length; i++)
    for (const a of eqns[i]!.inputs) if (a instanceof Var) readers[a.id]!++;
  for (const a of program.outputs) if (a instanceof Var) readers[a.id]!++;
  for (let o = 0; o < order.length; o++) {
    const x = order[o]!;
    if (x >= 0) {
      if (absorbed.has(x)) continue;
      const e = eqns[x]!;
      if (e.prim === matmulP) productAt.set(e.outs[0]!.id, out.length);
      out.push(e);
      continue;
    }
    const reg = regions[-1 - x]!;
    // One operation alone is not worth a kernel, unless it is a product's epilogue (a bias add,
    // a relu mask in a reverse pass: it saves the product's array) or feeds a sum (x·x summed).
    const worth = worthFusing(reg);
    if (worth || (reg.ops >= 1 && !reg.scalar)) {
      const f = buildProgram(eqns, reg, escapes, slot, isConstant);
      const fused = reg.scalar
        ? null
        : (withEpilogue(f, reg, eqns, readers, productAt, out) ??
          sumOf(f, eqns, readers, order, o, absorbed));
      if (fused !== null || worth) {
        out.push(fused ?? f);
        continue;
      }
    }
    for (let j = 0; j < reg.eqns.length; j++) out.push(eqns[reg.eqns[j]!]!);
  }
  const kept = out.filter((e): e is Eqn => e !== null);
  return noteMaxVarId(new Program(program.inputs, kept, program.outputs), maxId);
}

/**
 * A fused program (not a product's epilogue) with a result that only a later `reduce_sum` reads
 * becomes a `sum_prologue` computing the sum and the program's other results, emitted here (the
 * sum reads nothing else, so its result may be defined earlier); the sum's own slot in `order`
 * is skipped. Null otherwise. (Which inputs the backend reads inside its sum kernel, and which
 * make it run the program and then the sum, is the backend's choice: the bits are the same.)
 */
function sumOf(
  f: Eqn,
  eqns: readonly Eqn[],
  readers: Int32Array,
  order: readonly number[],
  from: number,
  absorbed: Set<number>,
): Eqn | null {
  if (f.prim !== fusedProgramP) return null;
  const params = f.params as FusedProgramParams;
  for (let q = 0; q < f.outs.length; q++) {
    const v = f.outs[q]!;
    if (readers[v.id] !== 1 || (v.dtype !== "float32" && v.dtype !== "float64")) continue;
    for (let o = from + 1; o < order.length; o++) {
      const x = order[o]!;
      if (x < 0) continue;
      const e = eqns[x]!;
      if (!e.inputs.includes(v)) continue;
      if (e.inputs.length !== 1 || e.prim.name !== "reduce_sum" || e.outs[0]!.dtype !== v.dtype) break;
      absorbed.add(x);
      return {
        prim: sumPrologueP as never,
        params: {
          ...params,
          axes: (e.params as { axes: number[] }).axes,
          sum: e.outs[0]!.aval,
          sumOutput: q,
        },
        inputs: f.inputs,
        outs: [e.outs[0]!, ...f.outs.filter((_, j) => j !== q)],
      };
    }
  }
  return null;
}

/**
 * A region that reads a product nothing else reads (a bias and an activation after `x @ W`, a
 * relu mask after `G Wᵀ`) takes the product in as one `matmul_epilogue` equation, emitted where
 * the region is (the product's operands are ready there: they were where it stood). Its slot in
 * `out` is cleared. Null when the region reads no such product.
 */
function withEpilogue(
  f: Eqn,
  reg: Region,
  eqns: readonly Eqn[],
  readers: Int32Array,
  productAt: Map<number, number>,
  out: (Eqn | null)[],
): Eqn | null {
  const params = f.params as FusedProgramParams;
  const views = params.prog.views;
  for (let k = 0; k < f.inputs.length; k++) {
    const a = f.inputs[k]!;
    if (!(a instanceof Var) || (views?.[k] ?? null) !== null) continue;
    // Read once, plainly (not also through a view: the product is computed inside the step).
    if (f.inputs.indexOf(a) !== k || f.inputs.lastIndexOf(a) !== k) continue;
    const at = productAt.get(a.id);
    if (at === undefined || out[at] === null) continue;
    if (a.dtype !== "float32" && a.dtype !== "float64") continue;
    if (sizeOf(a.shape) !== params.size) continue;
    let inside = 0;
    for (const i of reg.eqns) for (const b of eqns[i]!.inputs) if (b === a) inside++;
    if (inside !== readers[a.id]) continue;
    const prod = out[at]!;
    const t = prod.params as MatmulParams;
    out[at] = null;
    const into = params.outs.findIndex((o) => o.dtype === a.dtype);
    const rest = f.inputs.filter((_, j) => j !== k);
    return {
      prim: matmulEpilogueP as never,
      params: { ...params, transA: t.transA === true, transB: t.transB === true, acc: k, into },
      inputs: [prod.inputs[0]!, prod.inputs[1]!, ...rest],
      outs: f.outs,
    };
  }
  return null;
}

/** perm swaps the last two axes and keeps the others. */
function swapsLastTwo(perm: readonly number[]): boolean {
  const r = perm.length;
  if (r < 2 || perm[r - 1] !== r - 2 || perm[r - 2] !== r - 1) return false;
  for (let d = 0; d < r - 2; d++) if (perm[d] !== d) return false;
  return true;
}

/**
 * Transposes of the last two axes that feed products are absorbed by them: the product reads
 * the operand as stored, transposed (its `transA`/`transB` params; the backend's packing walks
 * it down its columns), and such a transpose goes away when products were its only readers.
 * Reverse passes make products of transposed operands directly; this catches the user's own
 * (`ad.matmul(ad.transpose(a), b)`).
 */
function absorbTransposes(program: Program, maxId: number): Program {
  const eqns = program.eqns;
  let swaps: Map<number, Eqn> | null = null;
  for (let i = 0; i < eqns.length; i++) {
    const e = eqns[i]!;
    if (e.prim.name === "transpose" && swapsLastTwo((e.params as { perm: number[] }).perm))
      (swaps ??= new Map()).set(e.outs[0]!.id, e);
  }
  if (swaps === null) return program;
  const readers = new Int32Array(maxId + 1);
  const absorbed = new Int32Array(maxId + 1);
  for (let i = 0; i < eqns.length; i++)
    for (const a of eqns[i]!.inputs) if (a instanceof Var) readers[a.id]!++;
  for (const a of program.outputs) if (a instanceof Var) readers[a.id]!++;
  const swapOf = (a: Atom): Eqn | undefined => (a instanceof Var ? swaps!.get(a.id) : undefined);
  let changed = false;
  const rewritten = eqns.map((e): Eqn => {
    if (e.prim !== matmulP) return e;
    const ta = swapOf(e.inputs[0]!);
    const tb = swapOf(e.inputs[1]!);
    if (ta === undefined && tb === undefined) return e;
    changed = true;
    if (ta !== undefined) absorbed[ta.outs[0]!.id]!++;
    if (tb !== undefined) absorbed[tb.outs[0]!.id]!++;
    // A transposed read of a transpose is a plain read.
    const p = e.params as MatmulParams;
    const transA = (p.transA === true) !== (ta !== undefined);
    const transB = (p.transB === true) !== (tb !== undefined);
    return {
      prim: matmulP as never,
      params: transA || transB ? { transA, transB } : {},
      inputs: [ta?.inputs[0] ?? e.inputs[0]!, tb?.inputs[0] ?? e.inputs[1]!],
      outs: e.outs,
    };
  });
  if (!changed) return program;
  const kept = rewritten.filter((e) => {
    const id = e.outs[0]?.id;
    return !(swaps!.has(id ?? -1) && swaps!.get(id!) === e && absorbed[id!] === readers[id!]);
  });
  return noteMaxVarId(new Program(program.inputs, kept, program.outputs), maxId);
}

/** Some array region of one operation reads a product or has a value that is summed. */
function joinsProductOrSum(regions: readonly Region[], eqns: readonly Eqn[], maxId: number): boolean {
  const mark = new Uint8Array(maxId + 1); // 1: a product's result, 2: summed
  for (const e of eqns) {
    if (e.prim === matmulP) mark[e.outs[0]!.id]! |= 1;
    const a = e.inputs[0];
    if (e.prim.name === "reduce_sum" && a instanceof Var) mark[a.id]! |= 2;
  }
  for (const r of regions) {
    if (r.ops < 1 || r.scalar) continue;
    for (const i of r.eqns) {
      const e = eqns[i]!;
      if (e.outs.some((v) => (mark[v.id]! & 2) !== 0)) return true;
      if (e.inputs.some((a) => a instanceof Var && (mark[a.id]! & 1) !== 0)) return true;
    }
  }
  return false;
}

function worthFusing(r: Region): boolean {
  return r.ops >= 2 || (r.ops >= 1 && r.views >= 1);
}

/**
 * The region equation `e` joins: an open one (index), a new one (-1), or none (-2, it is not
 * fusable). A movement equation joins an array region only where its operand is read through a
 * view (computed before the region) or it is the identity.
 */
function regionFor(
  e: Eqn,
  barrier: Barrier | undefined,
  regions: readonly Region[],
  scalarOpen: number,
  arrayOpen: readonly number[],
  regionOfVar: Int32Array,
): number {
  const k = kindOf(e.prim);
  if (k === F_NONE || e.outs.length !== 1) return -2;
  const shape = e.outs[0]!.shape;
  if (isOne(shape)) {
    // Scalars: elementwise work, and movement of single values (free inside a kernel).
    if (k >= F_BROADCAST && !isAlias(e, k)) return -2;
    return scalarOpen >= 0 ? scalarOpen : -1;
  }
  if (barrier?.(e)) return -2;
  let r = -1;
  for (let j = 0; j < arrayOpen.length; j++)
    if (shapeEq(regions[arrayOpen[j]!]!.shape, shape)) {
      r = arrayOpen[j]!;
      break;
    }
  if (k < F_BROADCAST || isAlias(e, k)) return r;
  // Other movement: an index map of a value from outside the region (never an inner value).
  const a = e.inputs[0]!;
  if (a instanceof Var && r >= 0 && regionOfVar[a.id] === r) return -2;
  return viewOf(e) === null ? -2 : r;
}

/** The view that reads the operand of movement equation `e` as its result, or null. */
function viewOf(e: Eqn): InputView | null {
  const a = e.inputs[0]!;
  const from = a.aval.shape;
  const to = e.outs[0]!.shape;
  switch (kindOf(e.prim)) {
    case F_BROADCAST:
      return broadcastView(from, to);
    case F_RESHAPE:
      return sizeOf(from) === sizeOf(to) ? PLAIN : null;
    case F_SLICE:
      return sliceView(from, e.params as SliceParams);
    case F_PAD:
      return padView(from, e.params as PadParams, e.outs[0]!.dtype);
    default:
      return null;
  }
}

/** Constants of one region, deduplicated by dtype and value (-0 apart from 0; NaN is one key). */
class ConstantTable {
  private readonly byDtype = new Map<DType, Map<number, number>>();
  private readonly negZero = new Map<DType, number>();
  readonly nodes: FusedNode[] = [];

  /** The index (among the constants) of `value` as a constant of `dtype`. */
  index(value: number, dtype: DType): number {
    if (value === 0 && 1 / value < 0) {
      let k = this.negZero.get(dtype);
      if (k === undefined) this.negZero.set(dtype, (k = this.push(value, dtype)));
      return k;
    }
    let m = this.byDtype.get(dtype);
    if (m === undefined) this.byDtype.set(dtype, (m = new Map()));
    let k = m.get(value);
    if (k === undefined) m.set(value, (k = this.push(value, dtype)));
    return k;
  }

  private push(value: number, dtype: DType): number {
    return this.nodes.push({ kind: "const", value, dtype }) - 1;
  }
}

const viewKey = (v: InputView): string => `${v.div},${v.mod},${v.offset},${v.start},${v.end},${v.fill}`;

/**
 * One `fused_program` equation for a region. Variables are looked up in a flat array by id
 * (`slot`, shared by every region of the program and reset after each); literals that are
 * constants are numbered through a table; other literals (captured tensors, read at every call)
 * and outside values become inputs, read plainly or through a view.
 */
function buildProgram(
  eqns: readonly Eqn[],
  reg: Region,
  escapes: Uint8Array,
  slot: Int32Array,
  isConstant: ConstantLit,
): Eqn {
  const region = reg.eqns;
  const shape = reg.shape;
  const n = sizeOf(shape);
  // slot[v.id]: -2 = made by this region (numbered below), >= 0 = an input (plain read) or a value.
  for (let r = 0; r < region.length; r++) slot[eqns[region[r]!]!.outs[0]!.id] = -2;
  const inputs: Atom[] = [];
  const inputDtypes: DType[] = [];
  const views: (InputView | null)[] = [];
  let anyView = false;
  const litInput = new Map<Lit, number>();
  const viewed = new Map<Atom, Map<string, number>>();
  const consts = new ConstantTable();
  const litConst = new Map<Lit, number>();
  const addInput = (a: Atom, view: InputView | null): number => {
    inputs.push(a);
    inputDtypes.push(a.aval.dtype);
    views.push(view);
    if (view !== null) anyView = true;
    return inputs.length - 1;
  };
  /** The input reading outside atom `a` through `view` (deduplicated). */
  const viewInput = (a: Atom, view: InputView): number => {
    let m = viewed.get(a);
    if (m === undefined) viewed.set(a, (m = new Map()));
    const key = viewKey(view);
    let k = m.get(key);
    if (k === undefined) m.set(key, (k = addInput(a, view)));
    return k;
  };
  /** An operand from outside the region, read at this region's shape. */
  const outside = (a: Atom): void => {
    if (a instanceof Var) {
      if (slot[a.id] !== -1) return;
    } else if (litInput.has(a) || litConst.has(a)) return;
    const from = a.aval.shape;
    if (!reg.scalar && !isOne(from) && !shapeEq(from, shape) && sizeOf(from) !== n) {
      // A broadcast operand: read through a view (or broadcast by the primitive when no view fits).
      const v = broadcastView(from, shape);
      if (v !== null) return void viewInput(a, v);
    }
    if (a instanceof Var) slot[a.id] = addInput(a, null);
    else {
      const c = constantOf(a, isConstant);
      if (c !== null) litConst.set(a, consts.index(c, a.value.dtype));
      else litInput.set(a, addInput(a, null));
    }
  };
  // Inputs come first in a program's numbering, so collect them before numbering any node.
  for (let r = 0; r < region.length; r++) {
    const e = eqns[region[r]!]!;
    const k = kindOf(e.prim);
    const ins = e.inputs;
    if (k >= F_BROADCAST && !isAlias(e, k)) {
      viewInput(ins[0]!, viewOf(e)!);
      continue;
    }
    for (let j = 0; j < ins.length; j++) outside(ins[j]!);
  }
  const base = inputs.length;
  // Constants are the first nodes; the operations follow.
  const nodes: FusedNode[] = consts.nodes;
  const idOf = (a: Atom): number => {
    if (a instanceof Var) {
      const s = slot[a.id]!;
      if (s !== -1) return s;
    } else {
      const l = litInput.get(a) ?? litConst.get(a);
      if (l !== undefined) return litInput.has(a) ? l : base + l;
    }
    // A broadcast operand read through a view.
    return viewed.get(a)!.get(viewKey(broadcastView(a.aval.shape, shape)!))!;
  };
  const outs: Var[] = [];
  const outIds: number[] = [];
  for (let r = 0; r < region.length; r++) {
    const e = eqns[region[r]!]!;
    const ins = e.inputs;
    const v = e.outs[0]!;
    const dtype = v.dtype;
    const name = e.prim.name;
    let node: FusedNode | null = null;
    const k = kindOf(e.prim);
    switch (k) {
      case F_UNARY:
        node = { kind: "unary", op: name as UnaryKernel, arg: idOf(ins[0]!), dtype };
        break;
      case F_BINARY:
        node = { kind: "binary", op: name as BinaryKernel, a: idOf(ins[0]!), b: idOf(ins[1]!), dtype };
        break;
      case F_SELECT:
        node = { kind: "select", c: idOf(ins[0]!), a: idOf(ins[1]!), b: idOf(ins[2]!), dtype };
        break;
      case F_CAST:
        node = { kind: "cast", arg: idOf(ins[0]!), dtype };
        break;
    }
    if (node !== null) slot[v.id] = base + nodes.push(node) - 1;
    else {
      // Identity, moves of single values and of same-shape values alias their operand; the other
      // movement reads its outside operand through its view.
      const a = ins[0]!;
      slot[v.id] = isAlias(e, k) ? idOf(a) : viewed.get(a)!.get(viewKey(viewOf(e)!))!;
    }
    if (escapes[v.id]) {
      outs.push(v);
      outIds.push(slot[v.id]!);
    }
  }
  // Reset the slots this region used.
  for (let r = 0; r < region.length; r++) {
    const e = eqns[region[r]!]!;
    slot[e.outs[0]!.id] = -1;
    const ins = e.inputs;
    for (let k = 0; k < ins.length; k++) {
      const a = ins[k]!;
      if (a instanceof Var) slot[a.id] = -1;
    }
  }
  const prog: FusedProgram = anyView
    ? { inputs: inputDtypes, nodes, outputs: outIds, views }
    : { inputs: inputDtypes, nodes, outputs: outIds };
  const avals: Aval[] = outs.map((v) => v.aval);
  return {
    prim: fusedProgramP as never,
    params: { prog, outs: avals, size: n },
    inputs,
    outs,
  };
}
