/**
 * @file Gradient checkpointing (rematerialisation): `ad.checkpoint(f, {policy})` and
 * `ad.checkpointSequential(fns, segments, x)`.
 *
 * A checkpointed call is ONE higher-order primitive, `checkpoint`, whose params hold `f` staged
 * into a Program. Values `f` captured from enclosing transforms (or eager tensors that require
 * grad) become extra inputs of that primitive (closure conversion), so every transform sees them.
 * Under reverse mode the tape records one node that keeps only the inputs and outputs; its VJP
 * re-runs the body under a fresh reverse interpreter on those inputs (recomputing the
 * intermediates) and pulls the cotangents back. A policy may keep some intermediates instead
 * ("dotsSaveable" keeps matmul outputs): the forward pass then emits them as extra outputs and
 * the recomputation splices them in instead of recomputing them.
 */

import { isGradEnabled, withGradMode } from "../core/grad-mode.js";
import { bind, currentInterpreter, withInterpreter } from "../core/interpreter.js";
import { definePrimitive, type Primitive, type Tangent } from "../core/primitive.js";
import { type Atom, type Eqn, Lit, Program, Var } from "../core/program.js";
import { backwardPass, Node, type Ref, recordEager } from "../core/tape.js";
import { Tensor } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { isFloat } from "../dtype.js";
import { ShapeError, TransformError } from "../errors.js";
import { fmtShape, shapeEq } from "../shape.js";
import { flatten, unflatten } from "../tree.js";
import { checkFunction } from "./args.js";
import { jetFlat } from "./jet.js";
import { JvpInterpreter } from "./jvp.js";
import { ReverseInterpreter } from "./reverse.js";
import { type Staged, stage } from "./stage.js";
import { vmap } from "./vmap.js";

/**
 * What a checkpointed function keeps for the backward pass (JAX's `checkpoint_policies`):
 * - `"nothingSaveable"` (default): only its inputs; every intermediate is recomputed;
 * - `"dotsSaveable"`: also the outputs of matrix products (the expensive ones); the cheap
 *   elementwise work in between is recomputed;
 * - `"everythingSaveable"`: everything, as without checkpointing (`f` is returned unchanged);
 * - a predicate on primitive names (`(name) => name === "matmul"`): keep the outputs of the
 *   primitives it accepts.
 */
export type CheckpointPolicy =
  | "nothingSaveable"
  | "dotsSaveable"
  | "everythingSaveable"
  | ((primitive: string) => boolean);

export interface CheckpointOptions {
  /** What to keep instead of recomputing (default `"nothingSaveable"`; JAX's snake-case names work too). */
  policy?: CheckpointPolicy;
}

interface CheckpointParams {
  /** The body, closure-converted: inputs are the call's tensors, then the captured values. */
  readonly program: Program;
  /** The policy's name, for printing. */
  readonly policy: string;
  /** The policy as a predicate on primitive names (null: nothing is kept); a batched body reapplies it. */
  readonly keep: ((primitive: string) => boolean) | null;
  /** Per equation: are its outputs kept (null: nothing is kept)? */
  readonly save: readonly boolean[] | null;
  /** Emit the kept values as extra outputs after the real ones (the forward pass under reverse mode). */
  readonly emitSaved: boolean;
  /** On a recorded node: the kept values, at the level the node's inputs live on. */
  readonly saved?: readonly Tensor[];
  /** On an eager node: its kept values have no history (a createGraph backward recomputes them). */
  readonly eager?: boolean;
  toJSON(): string;
}

/** Values of an evaluation of the body: its outputs, then the kept values in equation order. */
interface BodyRun {
  readonly outs: Tensor[];
  readonly saved: Tensor[];
}

/**
 * Evaluate the body through `bind`. Outputs of equations marked in `save` are collected; with
 * `inject`, those equations are not evaluated but given the values `inject` returns.
 */
function runBody(
  program: Program,
  args: readonly Tensor[],
  save: readonly boolean[] | null,
  inject?: (e: Eqn, ins: Tensor[]) => Tensor[],
): BodyRun {
  const env = new Map<Var, Tensor>();
  program.inputs.forEach((v, i) => env.set(v, args[i]!));
  const read = (a: Atom): Tensor => (a instanceof Var ? env.get(a)! : a.value);
  const saved: Tensor[] = [];
  program.eqns.forEach((e, k) => {
    const ins = e.inputs.map(read);
    const keep = save?.[k] ?? false;
    const outs = keep && inject !== undefined ? inject(e, ins) : bind(e.prim, ins, e.params);
    e.outs.forEach((v, i) => env.set(v, outs[i]!));
    if (keep) saved.push(...outs);
  });
  return { outs: program.outputs.map(read), saved };
}

/** The values a call returns: the outputs, and with `emitSaved` the kept values too. */
function emitted(p: CheckpointParams, r: BodyRun): Tensor[] {
  return p.emitSaved ? [...r.outs, ...r.saved] : r.outs;
}

/**
 * Record a kept equation on `interp` without evaluating it: its outputs are the kept values,
 * its inputs the recomputed ones, so the backward pass goes through it with its own VJP rule.
 */
function spliceSaved(
  interp: ReverseInterpreter,
  e: Eqn,
  ins: readonly Tensor[],
  vals: readonly Tensor[],
): Tensor[] {
  const parents = ins.map((t) => interp.refOf(t));
  if (!parents.some((r) => r !== null)) return [...vals];
  const node = new Node(
    e.prim,
    e.params,
    ins.map((t) => interp.primalOf(t)),
    vals,
    parents,
  );
  interp.nodes.push(node);
  return vals.map((v, index) => (isFloat(v.dtype) ? interp.lift(v, { node, index }) : v));
}

let replayObserver: ((nodes: readonly Node[]) => void) | null = null;

/**
 * @internal Benchmarks: called with the tape of every recomputation, after its forward pass and
 * before its backward pass (that is when it holds the most). Pass null to remove.
 */
export function observeCheckpointReplays(fn: ((nodes: readonly Node[]) => void) | null): void {
  replayObserver = fn;
}

/** A new tensor object on the same buffer, without history (a node's outputs must be its own). */
function fresh(t: Tensor): Tensor {
  return new Tensor(t.shape, t.dtype, t.weakType, t._buf, t._backend, null);
}

/**
 * The `checkpoint` primitive: `f` without stored intermediates.
 * Math: y = f(x); reverse x̄ = (∂f/∂x)ᵀ ȳ, with ∂f/∂x re-derived from x in the backward pass.
 */
export const checkpointP: Primitive<CheckpointParams> = definePrimitive<CheckpointParams>({
  name: "checkpoint",
  abstractEval(avals, p) {
    const ins = p.program.inputs;
    if (avals.length !== ins.length)
      throw new TransformError(`checkpoint: expected ${ins.length} operands, got ${avals.length}`);
    avals.forEach((a, i) => {
      if (!shapeEq(a.shape, ins[i]!.aval.shape) || a.dtype !== ins[i]!.aval.dtype)
        throw new ShapeError(
          `checkpoint: operand ${i} has shape ${fmtShape(a.shape)} ${a.dtype}, the body was traced for ${fmtShape(ins[i]!.aval.shape)} ${ins[i]!.aval.dtype}`,
        );
    });
    const outs = p.program.outputs.map((a) => a.aval);
    if (p.emitSaved && p.save !== null)
      p.program.eqns.forEach((e, k) => {
        if (p.save![k]) for (const v of e.outs) outs.push(v.aval);
      });
    return outs;
  },
  impl() {
    throw new Error("adjoint internal error: checkpoint runs its body through evaluate, it has no kernel");
  },
  evaluate(args, p) {
    if (!(isGradEnabled() && args.some((a) => a._requiresGrad)))
      return emitted(p, runBody(p.program, args, p.emitSaved ? p.save : null));
    // Eager autograd: one node; the body runs unrecorded and is recomputed by backward().
    const r = withGradMode(false, () => runBody(p.program, args, p.save));
    const outs = emitted(p, r).map(fresh);
    const node = p.emitSaved ? { ...p, eager: true } : { ...p, saved: r.saved, eager: true };
    recordEager(checkpointP as Primitive<unknown>, node, args, outs);
    return outs;
  },
  forwardWithResiduals(args, p) {
    // Runs one level below a reverse interpreter: what the recorded node keeps.
    if (p.save === null || p.emitSaved) return [bind(checkpointP, args, p), p];
    const all = bind(checkpointP, args, { ...p, emitSaved: true });
    const n = p.program.outputs.length;
    return [all.slice(0, n), { ...p, saved: all.slice(n) }];
  },
  jvp(primals, tangents, _outs, p) {
    const interp = new JvpInterpreter(currentInterpreter());
    const ins = primals.map((x, i) => {
      const t = tangents[i];
      return t === undefined || isZero(t) || !isFloat(x.dtype) ? x : interp.lift(x, t);
    });
    const r = withInterpreter(interp, () => runBody(p.program, ins, p.emitSaved ? p.save : null));
    return emitted(p, r).map((o) => interp.tangentOf(o));
  },
  // jet: forward mode stores nothing, so the body's own jet (no recomputation is involved)
  jet: (primals, series, _outs, p) =>
    jetFlat((xs) => emitted(p, runBody(p.program, xs, p.emitSaved ? p.save : null)), primals, series)[1],
  vjp(cts, primals, outs, p, needs) {
    const n = p.program.outputs.length;
    let kept: readonly Tensor[] | null = null;
    if (p.save !== null) {
      if (p.emitSaved) kept = outs.slice(n);
      // An eager node's kept values have no history: a createGraph backward recomputes them.
      else if (p.saved !== undefined && !(p.eager === true && isGradEnabled())) kept = p.saved;
    }
    // Recompute the body from the saved inputs under a fresh reverse interpreter.
    const interp = new ReverseInterpreter(currentInterpreter());
    const leaves = primals.map((x, i) => (needs[i] && isFloat(x.dtype) ? Node.leaf(x) : null));
    const ins = primals.map((x, i) => {
      const leaf = leaves[i];
      return leaf ? interp.lift(x, { node: leaf, index: 0 }) : x;
    });
    let pos = 0;
    const inject =
      kept === null
        ? undefined
        : (e: Eqn, xs: Tensor[]) => spliceSaved(interp, e, xs, kept.slice(pos, (pos += e.outs.length)));
    const r = withInterpreter(interp, () => runBody(p.program, ins, kept === null ? null : p.save, inject));
    replayObserver?.(interp.nodes);
    const seeds: [Ref, Tensor][] = [];
    const seed = (t: Tensor, ct: Tensor | undefined) => {
      const ref = interp.refOf(t);
      if (ref !== null && ct !== undefined) seeds.push([ref, ct]);
    };
    r.outs.forEach((o, k) => seed(o, cts[k]));
    if (p.emitSaved) r.saved.forEach((o, k) => seed(o, cts[n + k]));
    const adj = backwardPass(seeds, { order: interp.nodes });
    return primals.map((x, i): Tangent => {
      const leaf = leaves[i];
      return (leaf ? adj.get(leaf)?.[0] : undefined) ?? Zero.like(x);
    });
  },
  batch(args, dims, p) {
    // A checkpoint of the batched body (vmapped, staged, closure-converted), same policy. The
    // values a call with emitSaved returns after its outputs become plain outputs of the new body.
    const body = (...xs: Tensor[]): Tensor[] =>
      vmap((...ys: Tensor[]) => emitted(p, runBody(p.program, ys, p.emitSaved ? p.save : null)), {
        inAxes: [...dims],
      })(...xs) as Tensor[];
    const outs = bindCheckpoint(body, args, p.policy, p.keep);
    return [outs, outs.map(() => 0)];
  },
  saves: "inputs",
  showParams: (p) => `policy=${p.policy}, body=${p.program.eqns.length} eqns`,
});

/**
 * Closure conversion: literals that are traced values (captured from enclosing transforms) or
 * eager tensors that require grad become extra inputs of the program, so transforms see them.
 */
function closureConvert(program: Program): { program: Program; consts: Tensor[] } {
  let next = 1;
  for (const v of program.inputs) next = Math.max(next, v.id + 1);
  for (const e of program.eqns) for (const v of e.outs) next = Math.max(next, v.id + 1);
  const consts: Tensor[] = [];
  const vars = new Map<Tensor, Var>();
  const conv = (a: Atom): Atom => {
    if (!(a instanceof Lit) || (a.value._trace === null && !a.value._requiresGrad)) return a;
    let v = vars.get(a.value);
    if (v === undefined) {
      v = new Var(next++, { shape: a.value.shape, dtype: a.value.dtype, weakType: a.value.weakType });
      vars.set(a.value, v);
      consts.push(a.value);
    }
    return v;
  };
  const eqns = program.eqns.map((e) => ({ ...e, inputs: e.inputs.map(conv) }));
  const outputs = program.outputs.map(conv);
  return { program: new Program([...program.inputs, ...vars.values()], eqns, outputs), consts };
}

/** The policy as a predicate on primitive names, or null when it keeps nothing. */
function keeper(policy: CheckpointPolicy): ((primitive: string) => boolean) | null {
  if (policy === "dotsSaveable") return (name) => name === "matmul";
  return typeof policy === "function" ? policy : null;
}

let nextCheckpointId = 1;

/** Stage `body` on `args`, closure-convert it and bind one `checkpoint` primitive; the flat outputs. */
function bindCheckpoint(
  body: (...xs: Tensor[]) => unknown,
  args: readonly Tensor[],
  policy: string,
  keep: ((primitive: string) => boolean) | null,
): Tensor[] {
  return bindStaged(stage(body as (...a: never[]) => unknown, args, "checkpoint"), args, policy, keep);
}

function bindStaged(
  staged: Staged,
  args: readonly Tensor[],
  policy: string,
  keep: ((primitive: string) => boolean) | null,
): Tensor[] {
  const { program, consts } = closureConvert(staged.program);
  const mask = keep === null ? null : program.eqns.map((e) => keep(e.prim.name) === true);
  const id = nextCheckpointId++;
  const params: CheckpointParams = {
    program,
    policy,
    keep,
    save: mask?.some((m) => m) ? mask : null,
    emitSaved: false,
    toJSON: () => `checkpoint#${id}`,
  };
  return bind(checkpointP, [...args, ...consts], params);
}

const POLICIES = ["nothingSaveable", "dotsSaveable", "everythingSaveable"];

/**
 * `f` whose intermediates are recomputed in the backward pass instead of stored: under `grad`,
 * `vjp` and eager `backward()` the tape keeps only the call's inputs and outputs (plus what the
 * policy keeps), and the backward pass re-runs `f` once. Values are identical to `f`'s; so are
 * gradients. Tensor arguments are traced like `jit` traces them (use `ad.cond`/`ad.whileLoop` for
 * value-dependent control flow); every other argument (JS numbers too) is passed unchanged.
 * @example
 * const layer = ad.checkpoint((h: ad.Tensor, w: ad.Tensor) => ad.tanh(ad.matmul(w, h)));
 * const loss = (w: ad.Tensor, x: ad.Tensor) => ad.sum(layer(layer(x, w), w));
 * ad.grad(loss)(ad.eye(3), ad.ones([3])); // same as without checkpoint, with less stored
 */
export function checkpoint<A extends unknown[], R>(
  f: (...args: A) => R,
  opts: CheckpointOptions = {},
): (...args: A) => R {
  checkFunction(f, "checkpoint");
  if (opts === null || typeof opts !== "object")
    throw new TransformError("checkpoint: options must be an object such as { policy: 'nothingSaveable' }");
  // JAX spells the policies in snake case (`jax.checkpoint_policies.dots_saveable`): accept both.
  const policy =
    typeof opts.policy === "string"
      ? (opts.policy.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as CheckpointPolicy)
      : (opts.policy ?? "nothingSaveable");
  if (typeof policy !== "function" && !POLICIES.includes(policy))
    throw new TransformError(
      `checkpoint: unknown policy ${JSON.stringify(policy)}; use ${POLICIES.map((s) => `"${s}"`).join(", ")} or a predicate on primitive names`,
    );
  if (policy === "everythingSaveable") return f;
  const policyName = typeof policy === "function" ? "custom" : policy;
  const keep = keeper(policy);
  return (...args: A): R => {
    const [leaves, inDef] = flatten(args);
    const dyn = leaves.filter((l): l is Tensor => l instanceof Tensor);
    const body = (...ts: Tensor[]): unknown => {
      let k = 0;
      const call = unflatten<unknown[]>(
        inDef,
        leaves.map((l) => (l instanceof Tensor ? ts[k++] : l)),
      );
      return (f as (...a: unknown[]) => unknown)(...call);
    };
    const staged = stage(body as (...a: never[]) => unknown, dyn, "checkpoint");
    const outs = bindStaged(staged, dyn, policyName, keep);
    return unflatten<R>(
      staged.outDef,
      outs.map((t, i) => (staged.outNumbers[i] && t._trace === null ? t.item() : t)),
    );
  };
}

/**
 * √L-style checkpointing of a chain `fns[L-1](…fns[1](fns[0](x)))`: the chain is split into
 * `segments` consecutive groups of (nearly) equal length and every group but the last is
 * checkpointed (as PyTorch's `checkpoint_sequential`: the last group's backward runs right after
 * its forward, so recomputing it would save nothing). With `segments ≈ √L` the tape holds about
 * √L segment boundaries plus one segment's intermediates, and the backward pass recomputes at
 * most one forward pass.
 * @example
 * const layers = [1, 2, 3, 4].map((s) => (h: ad.Tensor) => ad.tanh(ad.mul(h, s)));
 * ad.grad((x: ad.Tensor) => ad.sum(ad.checkpointSequential(layers, 2, x)))(ad.ones([3]));
 */
export function checkpointSequential<T>(
  fns: readonly ((x: T) => T)[],
  segments: number,
  x: T,
  opts: CheckpointOptions = {},
): T {
  if (!Array.isArray(fns) || fns.some((fn) => typeof fn !== "function"))
    throw new TransformError("checkpointSequential: expected an array of functions");
  if (typeof segments !== "number" || !Number.isInteger(segments) || segments < 1)
    throw new TransformError(
      `checkpointSequential: segments must be a positive integer, got ${String(segments)}`,
    );
  const n = fns.length;
  const k = Math.min(segments, n);
  let v = x;
  let start = 0;
  for (let s = 0; s < k; s++) {
    const end = start + Math.floor(n / k) + (s < n % k ? 1 : 0);
    const group = fns.slice(start, end);
    const run = (y: T): T => group.reduce((acc, fn) => fn(acc), y);
    v = s < k - 1 ? checkpoint(run, opts)(v) : run(v);
    start = end;
  }
  return v;
}
