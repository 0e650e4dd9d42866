/**
 * @file Elementwise fusion for `jit`, in two passes over the simplified program.
 *
 * 1. Scalar programs: every run of elementwise equations on one-element values (a scalar chain,
 *    a loss, a learning-rate schedule, and their backward passes) becomes ONE `fused_program`
 *    equation: a DAG with several results, compiled to a straight-line JS function. Equations
 *    that do not read the run's values may move ahead of it (programs are pure), so a run is
 *    only cut by an equation that needs one of its values.
 * 2. Chains: every maximal tree of elementwise equations whose inner values have a single use
 *    becomes one `fused` equation evaluated in one pass over the output, with no intermediate
 *    arrays.
 *
 * Each node keeps its dtype, so the fused kernels round exactly as the separate kernels would:
 * fused and unfused results are identical. Only literals made while tracing become constants of
 * a kernel; captured tensors (which may change in place) stay inputs, read at every call.
 */

import type { BinaryKernel, UnaryKernel } from "../backend/backend.js";
import type { FusedExpr, FusedNode, FusedProgram } from "../backend/kernel.js";
import { exprSize } from "../backend/kernel.js";
import { scalarValue } from "../backend/reference.js";
import type { Aval, Primitive } from "../core/primitive.js";
import { type Atom, type Eqn, Lit, Program, Var } from "../core/program.js";
import type { DType } from "../dtype.js";
import { fusedP, fusedProgramP } from "../primitives/fused.js";
import { sizeOf } from "../shape.js";
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

/** Reshapes and broadcasts of a single value are free inside a kernel: the value is read everywhere. */
function scalarMove(e: Eqn): boolean {
  const n = e.prim.name;
  return (n === "broadcast_to" || n === "reshape") && sizeOf(e.inputs[0]!.aval.shape) === 1;
}

function fusable(e: Eqn): boolean {
  const n = e.prim.name;
  return (
    e.outs.length === 1 &&
    (UNARY.has(n) ||
      BINARY.has(n) ||
      n === "select" ||
      n === "convert_element_type" ||
      n === "stop_gradient" ||
      scalarMove(e))
  );
}

// What a primitive is to the fusion passes, computed once per primitive (the passes ask for every
// equation of programs thousands long, mostly before the engine has optimized them).
const F_NONE = 0;
const F_UNARY = 1;
const F_BINARY = 2;
const F_SELECT = 3;
const F_CAST = 4;
/** stop_gradient: the identity when running. */
const F_IDENTITY = 5;
/** broadcast_to/reshape: fusable when its operand is a single value. */
const F_MOVE = 6;
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
              : n === "broadcast_to" || n === "reshape"
                ? F_MOVE
                : F_NONE;
    kinds.set(prim, k);
  }
  return k;
}

const isOne = (shape: readonly number[]): boolean => shape.length === 0 || sizeOf(shape) === 1;

/** Whether a literal may be baked into a kernel (by default: any concrete one-element literal). */
export type ConstantLit = (l: Lit) => boolean;

function constantOf(a: Atom, isConstant: ConstantLit): number | null {
  if (!(a instanceof Lit)) return null;
  const t = a.value;
  if (t._trace !== null || !isOne(t.shape) || !isConstant(a)) return null;
  return scalarValue(t._buf) ?? t._hostData()[0]!;
}

/** Fuse elementwise work (returns a new program; the input is unchanged). */
export function fuse(program: Program, isConstant: ConstantLit = () => true): Program {
  return fuseChains(fuseScalars(program, isConstant), isConstant);
}

// ---- pass 1: scalar programs ---------------------------------------------------------------

/** A fusable equation whose result has one element (its operands then have one too). */
function scalarFusable(e: Eqn): boolean {
  const k = kindOf(e.prim);
  if (k === F_NONE || e.outs.length !== 1 || !isOne(e.outs[0]!.shape)) return false;
  return k !== F_MOVE || isOne(e.inputs[0]!.aval.shape);
}

/** Whether equation `e` reads a value of run `r`. */
function readsRegion(e: Eqn, regionOfVar: Int32Array, r: number): boolean {
  const ins = e.inputs;
  for (let k = 0; k < ins.length; k++) {
    const a = ins[k]!;
    if (a instanceof Var && regionOfVar[a.id] === r) return true;
  }
  return false;
}

function fuseScalars(program: Program, isConstant: ConstantLit): Program {
  const eqns = program.eqns;
  // Variables are numbered densely by tracing: flat arrays indexed by id instead of maps (this
  // pass sees every equation of programs thousands long, on their first call).
  const maxId = maxVarId(program);
  if (maxId < 0) return program;
  /** The run (region) that computes each variable, or -1. */
  const regionOfVar = new Int32Array(maxId + 1).fill(-1);
  const regionOfEqn = new Int32Array(eqns.length).fill(-1);
  const regions: number[][] = [];
  let largest = 0;
  // Partition: a run grows until an equation that reads one of its values needs it.
  let open = -1;
  for (let i = 0; i < eqns.length; i++) {
    const e = eqns[i]!;
    if (scalarFusable(e)) {
      if (open < 0) open = regions.push([]) - 1;
      const reg = regions[open]!;
      reg.push(i);
      if (reg.length > largest) largest = reg.length;
      regionOfEqn[i] = open;
      regionOfVar[e.outs[0]!.id] = open;
      continue;
    }
    if (open >= 0 && readsRegion(e, regionOfVar, open)) open = -1;
  }
  if (largest < 2) return program;
  // A run's results: its values read outside it, or returned.
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
  // Each run is emitted where it was cut, just before the first equation that reads it (the
  // equations between that do not read it went ahead of it), or at the end.
  const out: Eqn[] = [];
  const slot = new Int32Array(maxId + 1).fill(-1);
  let current = -1;
  for (let i = 0; i < eqns.length; i++) {
    const r = regionOfEqn[i]!;
    if (r >= 0) {
      current = r; // a run only changes after it was cut, below
      continue;
    }
    const e = eqns[i]!;
    if (current >= 0 && readsRegion(e, regionOfVar, current)) {
      out.push(emitRegion(eqns, regions[current]!, escapes, slot, isConstant));
      current = -1;
    }
    out.push(e);
  }
  if (current >= 0) out.push(emitRegion(eqns, regions[current]!, escapes, slot, isConstant));
  return noteMaxVarId(new Program(program.inputs, out, program.outputs), maxId);
}

function emitRegion(
  eqns: readonly Eqn[],
  reg: readonly number[],
  escapes: Uint8Array,
  slot: Int32Array,
  isConstant: ConstantLit,
): Eqn {
  return reg.length === 1 ? eqns[reg[0]!]! : buildProgram(eqns, reg, escapes, slot, isConstant);
}

/** Constants of one run, deduplicated by dtype and value (-0 apart from 0; NaN is one key). */
class ConstantTable {
  private readonly byDtype = new Map<DType, Map<number, number>>();
  private negZero = new Map<DType, number>();
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

/**
 * One `fused_program` equation for the equations `region` (indices into `eqns`, in order).
 * Variables are looked up in a flat array by id (`slot`, shared by every run of the program and
 * reset after each); literals that are constants are numbered through a table, other literals
 * (captured tensors, read at every call) become inputs.
 */
function buildProgram(
  eqns: readonly Eqn[],
  region: readonly number[],
  escapes: Uint8Array,
  slot: Int32Array,
  isConstant: ConstantLit,
): Eqn {
  // slot[v.id]: -2 = made by this run (numbered below), >= 0 = an input's index, or (after the
  // inputs are known) a value id; constants are encoded as -3 - (their index among constants).
  for (let r = 0; r < region.length; r++) slot[eqns[region[r]!]!.outs[0]!.id] = -2;
  const inputs: Atom[] = [];
  const inputDtypes: DType[] = [];
  const litInput = new Map<Lit, number>();
  const consts = new ConstantTable();
  const litConst = new Map<Lit, number>();
  // Inputs come first in a program's numbering, so collect them before numbering any node.
  for (let r = 0; r < region.length; r++) {
    const ins = eqns[region[r]!]!.inputs;
    for (let k = 0; k < ins.length; k++) {
      const a = ins[k]!;
      if (a instanceof Var) {
        if (slot[a.id] !== -1) continue;
        slot[a.id] = inputs.length;
      } else {
        if (litInput.has(a) || litConst.has(a)) continue;
        const c = constantOf(a, isConstant);
        if (c !== null) {
          litConst.set(a, consts.index(c, a.value.dtype));
          continue;
        }
        litInput.set(a, inputs.length);
      }
      inputs.push(a);
      inputDtypes.push(a.aval.dtype);
    }
  }
  const base = inputs.length;
  // Constants are the first nodes; the operations follow.
  const nodes: FusedNode[] = consts.nodes;
  const idOf = (a: Atom): number =>
    a instanceof Var ? slot[a.id]! : (litInput.get(a) ?? base + litConst.get(a)!);
  const outs: Var[] = [];
  const outIds: number[] = [];
  for (let r = 0; r < region.length; r++) {
    const e = eqns[region[r]!]!;
    const ins = e.inputs;
    const v = e.outs[0]!;
    const dtype = v.dtype;
    const n = e.prim.name;
    let node: FusedNode | null = null;
    switch (kindOf(e.prim)) {
      case F_UNARY:
        node = { kind: "unary", op: n as UnaryKernel, arg: idOf(ins[0]!), dtype };
        break;
      case F_BINARY:
        node = { kind: "binary", op: n as BinaryKernel, a: idOf(ins[0]!), b: idOf(ins[1]!), dtype };
        break;
      case F_SELECT:
        node = { kind: "select", c: idOf(ins[0]!), a: idOf(ins[1]!), b: idOf(ins[2]!), dtype };
        break;
      case F_CAST:
        node = { kind: "cast", arg: idOf(ins[0]!), dtype };
        break;
    }
    if (node === null)
      slot[v.id] = idOf(ins[0]!); // moves and stop_gradient alias their operand
    else slot[v.id] = base + nodes.push(node) - 1;
    if (escapes[v.id]) {
      outs.push(v);
      outIds.push(slot[v.id]!);
    }
  }
  // Reset the slots this run used.
  for (let r = 0; r < region.length; r++) {
    const e = eqns[region[r]!]!;
    slot[e.outs[0]!.id] = -1;
    const ins = e.inputs;
    for (let k = 0; k < ins.length; k++) {
      const a = ins[k]!;
      if (a instanceof Var) slot[a.id] = -1;
    }
  }
  const prog: FusedProgram = { inputs: inputDtypes, nodes, outputs: outIds };
  const avals: Aval[] = outs.map((v) => v.aval);
  return {
    prim: fusedProgramP as never,
    params: { prog, outs: avals, size: 1 },
    inputs,
    outs,
  };
}

// ---- pass 2: chains ------------------------------------------------------------------------

/** The expression node of one fusable equation over its operands' expressions. */
function node(e: Eqn, args: FusedExpr[]): FusedExpr {
  const n = e.prim.name;
  const dtype: DType = e.outs[0]!.aval.dtype;
  if (UNARY.has(n)) return { kind: "unary", op: n as UnaryKernel, arg: args[0]!, dtype };
  if (BINARY.has(n)) return { kind: "binary", op: n as BinaryKernel, a: args[0]!, b: args[1]!, dtype };
  if (n === "select") return { kind: "select", c: args[0]!, a: args[1]!, b: args[2]!, dtype };
  if (n === "convert_element_type") return { kind: "cast", arg: args[0]!, dtype };
  return args[0]!; // stop_gradient, and moves of a single value, are the identity when running
}

function fuseChains(program: Program, isConstant: ConstantLit): Program {
  const producer = new Map<Var, number>();
  const uses = new Map<Var, number>();
  program.eqns.forEach((e, i) => {
    for (const v of e.outs) producer.set(v, i);
    for (const a of e.inputs) if (a instanceof Var) uses.set(a, (uses.get(a) ?? 0) + 1);
  });
  // Program outputs must stay materialised.
  for (const a of program.outputs) if (a instanceof Var) uses.set(a, (uses.get(a) ?? 0) + 2);
  const absorbed = new Set<number>();
  const replaced = new Map<number, Eqn>();
  for (let i = program.eqns.length - 1; i >= 0; i--) {
    const root = program.eqns[i]!;
    if (absorbed.has(i) || !fusable(root)) continue;
    const leaves: Atom[] = [];
    const taken: number[] = [];
    // The tree below `root`, built without recursion (chains may be thousands deep): each
    // frame is an equation whose operands are expanded first, then combined by `node`.
    const leaf = (a: Atom): FusedExpr => {
      const c = constantOf(a, isConstant);
      if (c !== null) return { kind: "const", value: c, dtype: a.aval.dtype };
      let k = leaves.indexOf(a);
      if (k < 0) k = leaves.push(a) - 1;
      return { kind: "input", index: k, dtype: a.aval.dtype };
    };
    const absorbable = (a: Atom): number | null => {
      if (!(a instanceof Var)) return null;
      const p = producer.get(a);
      return p !== undefined && uses.get(a) === 1 && !absorbed.has(p) && fusable(program.eqns[p]!) ? p : null;
    };
    const frames: { e: Eqn; next: number; args: FusedExpr[] }[] = [{ e: root, next: 0, args: [] }];
    let expr: FusedExpr | null = null;
    while (frames.length > 0) {
      const f = frames[frames.length - 1]!;
      if (f.next < f.e.inputs.length) {
        const a = f.e.inputs[f.next++]!;
        const p = absorbable(a);
        if (p === null) f.args.push(leaf(a));
        else {
          absorbed.add(p);
          taken.push(p);
          frames.push({ e: program.eqns[p]!, next: 0, args: [] });
        }
        continue;
      }
      frames.pop();
      const x = node(f.e, f.args);
      if (frames.length === 0) expr = x;
      else frames[frames.length - 1]!.args.push(x);
    }
    if (exprSize(expr!) < 2) {
      for (const p of taken) absorbed.delete(p);
      continue;
    }
    replaced.set(i, {
      prim: fusedP as never,
      params: { expr: expr!, out: root.outs[0]!.aval },
      inputs: leaves,
      outs: root.outs,
    });
  }
  const eqns = program.eqns.flatMap((e, i) => (absorbed.has(i) ? [] : [replaced.get(i) ?? e]));
  return new Program(program.inputs, eqns, program.outputs);
}
