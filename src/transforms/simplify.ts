/**
 * @file Program simplification before `jit` runs it: constant folding (equations whose inputs are
 * all concrete literals are evaluated once), exact algebraic identities (`x * 1` is `x`, where 1
 * may be a broadcast one: every reverse pass starts from one), common-subexpression elimination
 * (the same primitive and params on the same inputs, in either order for `add` and `mul`) and
 * dead-code elimination (equations no output depends on).
 */

import { scalarValue } from "../backend/reference.js";
import { bind, evalInterpreter, withInterpreter } from "../core/interpreter.js";
import type { Aval } from "../core/primitive.js";
import { type Atom, type Eqn, Lit, Program, Var } from "../core/program.js";
import { Tensor } from "../core/tensor.js";
import { sizeOf } from "../shape.js";

/** Statistics of one simplification, for tests and benchmarks. */
export interface SimplifyStats {
  folded: number;
  merged: number;
  removed: number;
}

const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;

/** Sub-programs and tensors in params (control flow, custom rules) are keyed by identity, not serialised. */
function byIdentity(_key: string, v: unknown): unknown {
  if (!(v instanceof Program) && !(v instanceof Tensor)) return v;
  let id = objectIds.get(v);
  if (id === undefined) objectIds.set(v, (id = nextObjectId++));
  return `#${id}`;
}

/** The last params object found empty (elementwise operations share one frozen `{}`). */
let lastEmpty: unknown = null;

function paramKey(p: unknown): string | null {
  // Most equations (elementwise arithmetic) have empty params: no serialisation for them.
  if (p === lastEmpty) return "";
  if (typeof p === "object" && p !== null && Object.getPrototypeOf(p) === Object.prototype) {
    let empty = true;
    for (const _ in p) {
      empty = false;
      break;
    }
    if (empty) {
      if (Object.isFrozen(p)) lastEmpty = p;
      return "";
    }
  }
  try {
    return JSON.stringify(p, byIdentity) ?? "";
  } catch {
    return null;
  }
}

/**
 * One literal per one-element constant value, dtype and weak type (constants made while tracing
 * never change, so any of them can stand for the others): `ad.mul(x, 0.9)` written twice gives
 * two literals that CSE would otherwise never find equal.
 */
class LiteralTable {
  /** By dtype, for strongly and for weakly typed literals (no key strings to build). */
  private readonly strong = new Map<string, Map<number, Lit>>();
  private readonly weak = new Map<string, Map<number, Lit>>();

  canonical(l: Lit): Lit {
    const t = l.value;
    const v = scalarValue(t._buf);
    if (v === null || (v === 0 && 1 / v < 0)) return l; // not a plain scalar, or -0 (kept apart)
    const byType = t.weakType ? this.weak : this.strong;
    let m = byType.get(t.dtype);
    if (m === undefined) byType.set(t.dtype, (m = new Map()));
    const c = m.get(v);
    if (c !== undefined && c.value.shape.length === t.shape.length) return c;
    if (c === undefined) m.set(v, l);
    return l;
  }
}

/** Entries of the CSE table: equations already kept, by hash of primitive, params and operands. */
interface Seen {
  readonly prim: unknown;
  readonly pk: string;
  readonly inputs: readonly Atom[];
  readonly outs: readonly Var[];
  next: Seen | null;
}

let nextPrimId = 1;

/** A number per primitive for CSE hashes, kept on the primitive (a WeakMap lookup per equation costs more). */
function primId(prim: object): number {
  const p = prim as { _cseId?: number };
  let id = p._cseId;
  if (id !== undefined) return id;
  id = frozenPrimIds.get(prim);
  if (id !== undefined) return id;
  id = nextPrimId++;
  if (Object.isExtensible(p)) Object.defineProperty(p, "_cseId", { value: id, enumerable: false });
  else frozenPrimIds.set(prim, id);
  return id;
}
const frozenPrimIds = new WeakMap<object, number>();

/**
 * Fold, merge and prune a program (returns a new one; the input is unchanged). One pass forward
 * (folding and CSE) and one backward (DCE), over flat arrays indexed by variable id: jit runs this
 * on programs thousands of equations long on their first call, mostly before the engine has
 * optimized this code, so every allocation and iterator counts.
 */
export function simplify(
  program: Program,
  stats?: SimplifyStats,
  foldable: (l: Lit) => boolean = () => true,
): Program {
  const eqns = program.eqns;
  const maxId = maxVarId(program);
  if (maxId < 0) return program; // variables not numbered uniquely: leave it as it is
  const pass = new ForwardPass(maxId, stats, foldable);
  for (let i = 0; i < eqns.length; i++) pass.step(eqns[i]!);
  const { subst, kept } = pass;
  const outputs = program.outputs.map((a) => (a instanceof Var ? (subst[a.id] ?? a) : a));
  return noteMaxVarId(new Program(program.inputs, prune(kept, outputs, maxId, stats), outputs), maxId);
}

/** DCE: the equations the outputs need, walking backward. */
function prune(kept: readonly Eqn[], outputs: readonly Atom[], maxId: number, stats?: SimplifyStats): Eqn[] {
  const live = new Uint8Array(maxId + 1);
  for (let k = 0; k < outputs.length; k++) {
    const a = outputs[k]!;
    if (a instanceof Var) live[a.id] = 1;
  }
  const out: Eqn[] = [];
  for (let i = kept.length - 1; i >= 0; i--) {
    const e = kept[i]!;
    let used = false;
    for (let k = 0; k < e.outs.length; k++) if (live[e.outs[k]!.id]) used = true;
    if (!used) {
      if (stats) stats.removed++;
      continue;
    }
    for (let k = 0; k < e.inputs.length; k++) {
      const a = e.inputs[k]!;
      if (a instanceof Var) live[a.id] = 1;
    }
    out.push(e);
  }
  out.reverse();
  return out;
}

/** The forward pass's state: substitutions, the CSE table, canonical literals, kept equations. */
class ForwardPass {
  /** What each variable was replaced by (a folded literal or an earlier equal variable). */
  readonly subst: (Atom | undefined)[];
  readonly seen = new Map<number, Seen>();
  readonly lits = new LiteralTable();
  readonly kept: Eqn[] = [];
  /** Variables known to hold ones everywhere (a one-element literal 1 broadcast or reshaped). */
  readonly ones: Uint8Array;

  constructor(
    maxId: number,
    readonly stats: SimplifyStats | undefined,
    readonly foldable: (l: Lit) => boolean,
  ) {
    this.subst = new Array(maxId + 1);
    this.ones = new Uint8Array(maxId + 1);
  }

  isOne(a: Atom): boolean {
    return a instanceof Var ? this.ones[a.id] === 1 : litIsOnes(a);
  }

  /** Fold, rewrite or merge one equation, or keep it. */
  step(e0: Eqn): void {
    const { subst, seen, lits, kept, ones, stats, foldable } = this;
    const ins0 = e0.inputs;
    let inputs = ins0;
    let allLit = true;
    for (let k = 0; k < ins0.length; k++) {
      const a = ins0[k]!;
      let r: Atom | undefined;
      if (a instanceof Var) {
        r = subst[a.id];
        if (r === undefined || r instanceof Var) allLit = false;
        else if (r.value._trace !== null || !foldable(r)) allLit = false;
      } else if (a.value._trace === null && foldable(a)) {
        // Equal one-element constants become one literal, so CSE sees `pow 0.9 t` twice as equal
        // (a canonical literal is itself foldable: made while tracing, concrete).
        const c = lits.canonical(a);
        if (c !== a) r = c;
      } else allLit = false;
      if (r !== undefined) {
        if (inputs === ins0) inputs = ins0.slice();
        (inputs as Atom[])[k] = r;
      }
    }
    // Constant folding: every input is a concrete literal (but an expanding operation such as a
    // broadcast stays lazy, so a scalar is not turned into a large constant array).
    if (allLit) {
      let inSize = 0;
      for (let k = 0; k < inputs.length; k++) inSize += sizeOf(inputs[k]!.aval.shape);
      let outSize = 0;
      for (let k = 0; k < e0.outs.length; k++) outSize += sizeOf(e0.outs[k]!.aval.shape);
      if (outSize <= Math.max(inSize, 16)) {
        const vals = withInterpreter(evalInterpreter, () =>
          bind(
            e0.prim,
            inputs.map((a) => (a as Lit).value),
            e0.params,
          ),
        );
        for (let k = 0; k < e0.outs.length; k++) subst[e0.outs[k]!.id] = new Lit(vals[k]!);
        if (stats) stats.folded++;
        return;
      }
    }
    const name = e0.prim.name;
    if (inputs.length === 1 && (name === "broadcast_to" || name === "reshape") && this.isOne(inputs[0]!))
      ones[e0.outs[0]!.id] = 1;
    if (name === "mul" && inputs.length === 2) {
      // x * 1 is x exactly (NaN, infinities and -0 included) when it has the result's type.
      const out = e0.outs[0]!.aval;
      const x = this.isOne(inputs[1]!) ? inputs[0]! : this.isOne(inputs[0]!) ? inputs[1]! : null;
      if (x !== null && sameAval(x.aval, out)) {
        subst[e0.outs[0]!.id] = x;
        if (stats) stats.merged++;
        return;
      }
    }
    if ((name === "add" || name === "mul") && inputs.length === 2 && !atomBefore(inputs[0]!, inputs[1]!)) {
      // IEEE addition and multiplication commute exactly: one operand order for CSE to compare.
      inputs = [inputs[1]!, inputs[0]!];
    }
    // CSE: same primitive, params and inputs as an earlier equation.
    const pk = paramKey(e0.params);
    if (pk !== null) {
      let h = Math.imul(primId(e0.prim), 0x9e3779b1) ^ pk.length;
      for (let k = 0; k < inputs.length; k++) {
        const a = inputs[k]!;
        h = Math.imul(h ^ (a instanceof Var ? a.id : -a.id), 0x85ebca6b) >>> 0;
      }
      const head = seen.get(h);
      let prev: Seen | null = head ?? null;
      while (prev !== null && !sameEqn(prev, e0.prim, pk, inputs, e0.outs.length)) prev = prev.next;
      if (prev !== null) {
        for (let k = 0; k < e0.outs.length; k++) subst[e0.outs[k]!.id] = prev.outs[k]!;
        if (stats) stats.merged++;
        return;
      }
      seen.set(h, { prim: e0.prim, pk, inputs, outs: e0.outs, next: head ?? null });
    }
    kept.push(inputs === ins0 ? e0 : { prim: e0.prim, params: e0.params, inputs, outs: e0.outs });
  }
}

/** Programs whose variables are known to be numbered uniquely, and their largest id. */
const knownMaxId = new WeakMap<Program, number>();

/**
 * @internal Record that `program`'s variables have unique ids up to `maxId` (staging numbers them
 * so; passes that only drop equations or reuse variables keep it), so `maxVarId` need not check.
 */
export function noteMaxVarId(program: Program, maxId: number): Program {
  knownMaxId.set(program, maxId);
  return program;
}

/**
 * The largest variable id of a program, or -1 if two variables share an id (tracing numbers them
 * uniquely; the flat arrays of the passes rely on it).
 */
export function maxVarId(program: Program): number {
  const known = knownMaxId.get(program);
  if (known !== undefined) return known;
  let maxId = 0;
  const eqns = program.eqns;
  for (let i = 0; i < program.inputs.length; i++) maxId = Math.max(maxId, program.inputs[i]!.id);
  for (let i = 0; i < eqns.length; i++) {
    const outs = eqns[i]!.outs;
    for (let j = 0; j < outs.length; j++) maxId = Math.max(maxId, outs[j]!.id);
  }
  const bound = new Uint8Array(maxId + 1);
  const bind1 = (v: Var): boolean => {
    if (bound[v.id]) return false;
    bound[v.id] = 1;
    return true;
  };
  for (let i = 0; i < program.inputs.length; i++) if (!bind1(program.inputs[i]!)) return -1;
  for (let i = 0; i < eqns.length; i++) {
    const outs = eqns[i]!.outs;
    for (let j = 0; j < outs.length; j++) if (!bind1(outs[j]!)) return -1;
  }
  return maxId;
}

/** Variables first (by id), then literals (by creation): the order CSE compares operands in. */
function atomBefore(a: Atom, b: Atom): boolean {
  if (a instanceof Var) return !(b instanceof Var) || a.id <= b.id;
  return !(b instanceof Var) && a.id <= b.id;
}

/** A small concrete literal holding ones only (folding turns a broadcast one into one). */
function litIsOnes(l: Lit): boolean {
  const t = l.value;
  if (t._trace !== null) return false;
  const v = scalarValue(t._buf);
  if (v !== null) return v === 1;
  if (sizeOf(l.aval.shape) > 16) return false;
  const d = t.data();
  for (let k = 0; k < d.length; k++) if (d[k] !== 1) return false;
  return true;
}

function sameAval(a: Aval, b: Aval): boolean {
  if (a.dtype !== b.dtype || a.weakType !== b.weakType || a.shape.length !== b.shape.length) return false;
  for (let k = 0; k < a.shape.length; k++) if (a.shape[k] !== b.shape[k]) return false;
  return true;
}

function sameEqn(c: Seen, prim: unknown, pk: string, inputs: readonly Atom[], nOuts: number): boolean {
  if (c.prim !== prim || c.pk !== pk || c.inputs.length !== inputs.length || c.outs.length !== nOuts)
    return false;
  for (let k = 0; k < inputs.length; k++) if (c.inputs[k] !== inputs[k]) return false;
  return true;
}
