/**
 * @file Staging: the interpreter that records primitives into a `Program` instead of running
 * them, and `ad.trace`. Values are abstract while staging (only shapes and dtypes are known), so
 * reading one — a JS `if` on a traced value — is an error that points to `ad.cond`.
 */

import { currentInterpreter, type Interpreter, withInterpreter } from "../core/interpreter.js";
import type { Aval, Primitive } from "../core/primitive.js";
import { type Atom, type Eqn, Lit, Program, Var } from "../core/program.js";
import { peekTensorId, Tensor, type TraceState } from "../core/tensor.js";
import { TransformError } from "../errors.js";
import { scalarOf } from "../ops/convert.js";
import { flatten, type TreeDef, unflatten } from "../tree.js";
import { checkFunction } from "./args.js";
import { noteMaxVarId } from "./simplify.js";

export class StagingInterpreter implements Interpreter {
  /** Staging records instead of evaluating, so it has no level below it. */
  readonly parent: Interpreter | null;
  readonly eqns: Eqn[] = [];
  private nextId = 1;
  constructor(readonly op: string) {
    this.parent = currentInterpreter();
  }

  /** The largest variable id so far (ids are dense from 1). */
  get maxId(): number {
    return this.nextId - 1;
  }

  newVar(aval: Aval): Var {
    const v = new Var(this.nextId++, aval);
    v.owner = this;
    return v;
  }

  /** The tracer of `v`: its trace state is the variable itself. */
  tracer(v: Var): Tensor {
    return new Tensor(v.shape as number[], v.dtype, v.weakType, null, null, v as TraceState);
  }

  atom(t: Tensor): Atom {
    const s = t._trace;
    return s !== null && s.owner === this ? (s as unknown as Var) : new Lit(t);
  }

  process<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor[] {
    // Once per staged primitive, mostly before the engine optimizes it: indexed loops, no closures.
    const n = args.length;
    const inputs: Atom[] = new Array(n);
    for (let i = 0; i < n; i++) inputs[i] = this.atom(args[i]!);
    const avals = prim.abstractEval(args, params);
    const m = avals.length;
    const outs: Var[] = new Array(m);
    const tracers: Tensor[] = new Array(m);
    for (let k = 0; k < m; k++) {
      const v = (outs[k] = this.newVar(avals[k]!));
      tracers[k] = new Tensor(v.shape as number[], v.dtype, v.weakType, null, null, v as TraceState);
    }
    this.eqns.push({ prim: prim as Primitive<unknown>, params, inputs, outs });
    return tracers;
  }

  concrete(): Tensor {
    throw new TransformError(
      `${this.op}: a traced value was read (e.g. by a JS if/while on it, item() or toArray()); values are abstract while staging. Use ad.cond(pred, trueFn, falseFn, ...operands) or ad.whileLoop for value-dependent control flow`,
    );
  }
}

/** A traced function: its Program plus how to map pytree arguments and results onto it. */
export interface Staged {
  readonly program: Program;
  readonly inDef: TreeDef;
  /** Per argument leaf: true if it is a traced input (a tensor or a number), false if static. */
  readonly dynamic: boolean[];
  readonly outDef: TreeDef;
  /** Output leaves that were JS numbers (returned as numbers). */
  readonly outNumbers: boolean[];
  /** False when a literal is a tracer of another transform (the program may not be reused). */
  readonly reusable: boolean;
  /** Tensors with an id below this existed before tracing: captured from outside, possibly mutable. */
  readonly firstId: number;
  /** The captured (outside) tensors the program reads. */
  readonly captured: Tensor[];
}

/** Leaves a transform traces: tensors and JS numbers (numbers become float64 scalars). */
export function toInputTensor(l: unknown): Tensor | null {
  if (l instanceof Tensor) return l;
  if (typeof l === "number") return scalarOf(l, "float64", true);
  return null;
}

/** Trace `f` on the avals of `args` into a Program. */
export function stage(f: (...args: never[]) => unknown, args: readonly unknown[], op: string): Staged {
  const firstId = peekTensorId();
  const interp = new StagingInterpreter(op);
  const [leaves, inDef] = flatten(args);
  const inputs: Var[] = [];
  const dynamic: boolean[] = [];
  const lifted = leaves.map((l) => {
    const t = toInputTensor(l);
    dynamic.push(t !== null);
    if (t === null) return l;
    const v = interp.newVar(t);
    inputs.push(v);
    return interp.tracer(v);
  });
  const out = withInterpreter(interp, () =>
    (f as (...a: unknown[]) => unknown)(...(unflatten(inDef, lifted) as unknown[])),
  );
  const [outLeaves, outDef] = flatten(out);
  const outNumbers: boolean[] = [];
  const outputs = outLeaves.map((l, i) => {
    outNumbers.push(typeof l === "number");
    const t = toInputTensor(l);
    if (t === null)
      throw new TransformError(`${op}: output leaf ${i} must be a Tensor or a number, got ${typeof l}`);
    return interp.atom(t);
  });
  const program = noteMaxVarId(new Program(inputs, interp.eqns, outputs), interp.maxId);
  // (indexed loops: this runs once per traced equation, usually before the engine optimizes it)
  let reusable = true;
  const captured = new Set<Tensor>();
  const eqns = interp.eqns;
  for (let i = 0; i < eqns.length; i++) {
    const ins = eqns[i]!.inputs;
    for (let k = 0; k < ins.length; k++) {
      const a = ins[k]!;
      if (!(a instanceof Lit)) continue;
      if (a.value._trace !== null) reusable = false;
      if (a.value._id < firstId) captured.add(a.value);
    }
  }
  for (const a of outputs) if (a instanceof Lit && a.value._id < firstId) captured.add(a.value);
  return { program, inDef, dynamic, outDef, outNumbers, reusable, firstId, captured: [...captured] };
}

/**
 * The Program (Wengert list) of the primitives `f` performs on arguments like `args`: one typed
 * equation per line. `ad.trace(ad.grad(f))(x)` shows the backward pass as primitives too.
 * @example
 * console.log(ad.trace((x) => ad.mul(ad.sin(x), x))(ad.tensor([1, 2])).toString());
 */
export function trace<A extends unknown[]>(f: (...args: A) => unknown): (...args: A) => Program {
  checkFunction(f, "trace");
  return (...args: A) => stage(f as (...a: never[]) => unknown, args, "trace").program;
}
