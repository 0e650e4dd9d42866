/**
 * @file Program simplification before `jit` runs it: constant folding (equations whose inputs are
 * all concrete literals are evaluated once), common-subexpression elimination (the same primitive
 * and params on the same inputs) and dead-code elimination (equations no output depends on).
 */

import { bind, evalInterpreter, withInterpreter } from "../core/interpreter.js";
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

function paramKey(p: unknown): string | null {
  // Most equations (elementwise arithmetic) have empty params: no serialisation for them.
  if (typeof p === "object" && p !== null && Object.getPrototypeOf(p) === Object.prototype) {
    let empty = true;
    for (const _ in p) {
      empty = false;
      break;
    }
    if (empty) return "";
  }
  try {
    return JSON.stringify(p, byIdentity) ?? "";
  } catch {
    return null;
  }
}

/** Fold, merge and prune a program (returns a new one; the input is unchanged). */
export function simplify(
  program: Program,
  stats?: SimplifyStats,
  foldable: (l: Lit) => boolean = () => true,
): Program {
  const subst = new Map<Var, Atom>();
  const get = (a: Atom): Atom => (a instanceof Var ? (subst.get(a) ?? a) : a);
  // CSE keys are integers (hashes of the primitive, params and operand identities) checked
  // exactly on a hit: no strings are built per equation.
  const litIds = new Map<Lit, number>();
  const atomId = (a: Atom): number => {
    if (a instanceof Var) return a.id;
    let id = litIds.get(a);
    if (id === undefined) litIds.set(a, (id = -1 - litIds.size));
    return id;
  };
  const primIds = new Map<unknown, number>();
  interface Seen {
    readonly prim: unknown;
    readonly pk: string;
    readonly inputs: readonly Atom[];
    readonly outs: readonly Var[];
  }
  const seen = new Map<number, Seen[]>();
  const kept: Eqn[] = [];
  for (const e0 of program.eqns) {
    const inputs = e0.inputs.map(get);
    // Constant folding: every input is a concrete literal (but an expanding operation such as a
    // broadcast stays lazy, so a scalar is not turned into a large constant array).
    if (
      inputs.every((a) => a instanceof Lit && a.value._trace === null && foldable(a)) &&
      e0.outs.reduce((n, v) => n + sizeOf(v.aval.shape), 0) <=
        Math.max(
          inputs.reduce((n, a) => n + sizeOf(a.aval.shape), 0),
          16,
        )
    ) {
      const vals = withInterpreter(evalInterpreter, () =>
        bind(
          e0.prim,
          inputs.map((a) => (a as Lit).value),
          e0.params,
        ),
      );
      e0.outs.forEach((v, i) => subst.set(v, new Lit(vals[i]!)));
      if (stats) stats.folded++;
      continue;
    }
    // CSE: same primitive, params and inputs as an earlier equation.
    const pk = paramKey(e0.params);
    if (pk !== null) {
      let pid = primIds.get(e0.prim);
      if (pid === undefined) primIds.set(e0.prim, (pid = primIds.size + 1));
      let h = Math.imul(pid, 0x9e3779b1) ^ pk.length;
      for (const a of inputs) h = Math.imul(h ^ atomId(a), 0x85ebca6b) >>> 0;
      const bucket = seen.get(h);
      const prev = bucket?.find(
        (c) =>
          c.prim === e0.prim &&
          c.pk === pk &&
          c.inputs.length === inputs.length &&
          c.inputs.every((a, i) => a === inputs[i]) &&
          c.outs.length === e0.outs.length,
      );
      if (prev !== undefined) {
        e0.outs.forEach((v, i) => subst.set(v, prev.outs[i]!));
        if (stats) stats.merged++;
        continue;
      }
      const entry: Seen = { prim: e0.prim, pk, inputs, outs: e0.outs };
      if (bucket === undefined) seen.set(h, [entry]);
      else bucket.push(entry);
    }
    kept.push({ prim: e0.prim, params: e0.params, inputs, outs: e0.outs });
  }
  const outputs = program.outputs.map(get);
  // DCE: keep what the outputs need, walking backward.
  const live = new Set<Var>(outputs.filter((a): a is Var => a instanceof Var));
  const out: Eqn[] = [];
  for (let i = kept.length - 1; i >= 0; i--) {
    const e = kept[i]!;
    if (!e.outs.some((v) => live.has(v))) {
      if (stats) stats.removed++;
      continue;
    }
    for (const a of e.inputs) if (a instanceof Var) live.add(a);
    out.push(e);
  }
  out.reverse();
  return new Program(program.inputs, out, outputs);
}
