/**
 * @file Structured control flow (API §3): `cond`, `whileLoop`, `scan` and `fori`. When the
 * predicate of a `cond` or `whileLoop` is concrete (readable: no `jit`/`trace` staging or `vmap`
 * batching underneath), the branch or the loop simply runs in JS, so every transform sees its
 * primitives. Otherwise the functions are staged once into closed sub-Programs (values captured
 * from outer transforms become explicit operands) and a higher-order primitive is bound (see
 * `src/primitives/control.ts`). `scan` is always a primitive: its body is staged once and its
 * reverse mode stores only the carry entering each step.
 */

import { bind, currentInterpreter, type Interpreter, withInterpreter } from "../core/interpreter.js";
import type { Aval } from "../core/primitive.js";
import { type Atom, Lit, Program, Var } from "../core/program.js";
import { backwardPass, Node, type Ref } from "../core/tape.js";
import { peekTensorId, Tensor } from "../core/tensor.js";
import { isZero } from "../core/zero.js";
import type { DType } from "../dtype.js";
import { isFloat } from "../dtype.js";
import { AdError, DTypeError, ShapeError, TransformError } from "../errors.js";
import { scalarOf } from "../ops/convert.js";
import { add, astype, less } from "../ops/index.js";
import { condP, scanP, whileP } from "../primitives/control.js";
import { fmtShape, shapeEq } from "../shape.js";
import { flatten, map as mapTree, showTreeDef, type TreeDef, treeDefEqual, unflatten } from "../tree.js";
import { checkFunction } from "./args.js";
import { JvpInterpreter } from "./jvp.js";
import { ReverseInterpreter } from "./reverse.js";
import { simplify } from "./simplify.js";
import { StagingInterpreter, toInputTensor } from "./stage.js";
import { batchCall } from "./vmap.js";

// ---- types -----------------------------------------------------------------------------------

/** A value as control flow hands it to user functions: tensor and number leaves are tensors. */
export type Traced<T> = T extends number | Tensor
  ? Tensor
  : T extends readonly unknown[]
    ? { -readonly [K in keyof T]: Traced<T[K]> }
    : T extends object
      ? { [K in keyof T]: Traced<T[K]> }
      : T;

/** What a user function may return where a value like `T` is expected: tensors or numbers at the leaves. */
export type Leafy<T> = T extends number | Tensor
  ? Tensor | number
  : T extends readonly unknown[]
    ? { readonly [K in keyof T]: Leafy<T[K]> }
    : T extends object
      ? { [K in keyof T]: Leafy<T[K]> }
      : T;

/** The operands of `cond` as its branches receive them. */
export type TracedArgs<A extends readonly unknown[]> = { -readonly [K in keyof A]: Traced<A[K]> };

/** A predicate: a JS boolean or number, or a size-1 tensor (truthy as in JS: nonzero and not NaN). */
export type Pred = Tensor | boolean | number;

export interface ScanOptions {
  /** The number of steps; required when `xs` is null, else it must match their leading axis. */
  length?: number;
  /** Run from the last element of `xs` to the first (the ys keep their positions). */
  reverse?: boolean;
}

// ---- reading predicates ----------------------------------------------------------------------

/**
 * @internal Whether `t`'s value can be read: walking down its interpreters meets no staging one
 * (and none that refuses to give its value, like vmap's).
 */
export function isConcrete(t: Tensor): boolean {
  let v = t;
  while (v._trace !== null) {
    const owner = v._trace.owner;
    if (owner instanceof StagingInterpreter) return false;
    try {
      v = owner.concrete(v);
    } catch (e) {
      if (e instanceof AdError) return false;
      throw e;
    }
  }
  return true;
}

/** Whether a staging interpreter is current or below the current one (computed values are then abstract). */
function stagingBelow(): boolean {
  for (let i: Interpreter | null = currentInterpreter(); i !== null; i = i.parent)
    if (i instanceof StagingInterpreter) return true;
  return false;
}

/** @internal The truth value of a concrete size-1 tensor (as JS: nonzero and not NaN). */
export function readPred(t: Tensor): boolean {
  return Boolean(t._hostData()[0]);
}

/** The value of a predicate, or null when it is abstract (staged or batched). */
function predValue(pred: unknown, op: string): boolean | null {
  if (typeof pred === "boolean") return pred;
  if (typeof pred === "number") return Boolean(pred);
  if (!(pred instanceof Tensor))
    throw new TransformError(
      `${op}: the predicate must be a boolean, a number or a size-1 tensor, got ${describeLeaf(pred)}`,
    );
  if (pred.size !== 1)
    throw new ShapeError(`${op}: the predicate must be a scalar (size 1), got shape ${fmtShape(pred.shape)}`);
  return isConcrete(pred) ? readPred(pred) : null;
}

function describeLeaf(l: unknown): string {
  if (l === null || l === undefined) return String(l);
  return typeof l === "object" ? (l.constructor?.name ?? "object") : typeof l;
}

// ---- leaves ----------------------------------------------------------------------------------

/** A leaf as a tensor: numbers become weakly typed float64 scalars, booleans bool scalars. */
function leafTensor(l: unknown, what: string): Tensor {
  if (typeof l === "boolean") return scalarOf(l ? 1 : 0, "bool", false);
  const t = toInputTensor(l);
  if (t === null) throw new TransformError(`${what} must be a Tensor or a number, got ${describeLeaf(l)}`);
  return t;
}

/** Flatten a pytree whose leaves must be tensors or numbers. */
function flattenLeaves(tree: unknown, what: string): [Tensor[], TreeDef] {
  const [ls, def] = flatten(tree);
  return [ls.map((l, i) => leafTensor(l, ls.length === 1 ? what : `${what} (leaf ${i})`)), def];
}

/** Number leaves of a pytree as tensors (other leaves unchanged). */
function numbersToTensors<T>(tree: T): Traced<T> {
  return mapTree(
    (l: unknown) => (typeof l === "number" ? scalarOf(l, "float64", true) : l),
    tree,
  ) as Traced<T>;
}

const avalOf = (a: Aval): Aval => ({ shape: a.shape, dtype: a.dtype, weakType: a.weakType });
const showAval = (a: Aval): string => `${a.dtype}${fmtShape(a.shape)}${a.weakType ? " (weak)" : ""}`;

// ---- staging closed sub-programs -------------------------------------------------------------

/** A staged function whose program takes its captured traced values first: `(consts..., args...)`. */
interface Closed {
  readonly program: Program;
  readonly consts: Tensor[];
}

/**
 * Stage `f` on abstract arguments of `avals` into a closed Program: tracers of other transforms
 * it captures become leading inputs (`consts`), so those transforms see them as operands of the
 * control-flow primitive. The program is simplified (constants folded, dead code removed).
 */
function stageFlat(f: (args: Tensor[]) => readonly unknown[], avals: readonly Aval[], op: string): Closed {
  const firstId = peekTensorId();
  const interp = new StagingInterpreter(op);
  const vars = avals.map((a) => interp.newVar(a));
  const outs = withInterpreter(interp, () => f(vars.map((v) => interp.tracer(v))));
  const outAtoms = outs.map((l, i) => interp.atom(leafTensor(l, `${op}: output leaf ${i}`)));
  const constVars = new Map<Tensor, Var>();
  const consts: Tensor[] = [];
  const close = (a: Atom): Atom => {
    if (!(a instanceof Lit) || a.value._trace === null) return a;
    let v = constVars.get(a.value);
    if (v === undefined) {
      v = interp.newVar(a.value);
      constVars.set(a.value, v);
      consts.push(a.value);
    }
    return v;
  };
  const eqns = interp.eqns.map((e) => ({
    prim: e.prim,
    params: e.params,
    inputs: e.inputs.map(close),
    outs: e.outs,
  }));
  const outputs = outAtoms.map(close);
  const program = new Program([...consts.map((c) => constVars.get(c)!), ...vars], eqns, outputs);
  // Only constants made while staging are folded: captured tensors may change in place later.
  return { program: simplify(program, undefined, (l) => l.value._id >= firstId), consts };
}

function outAvals(c: Closed): Aval[] {
  return c.program.outputs.map((a) => a.aval);
}

/** `c`'s program taking the consts `all` (a superset of its own, in that order) before its arguments. */
function withConsts(c: Closed, all: readonly Tensor[]): Program {
  const p = c.program;
  const own = new Map<Tensor, Var>();
  c.consts.forEach((t, i) => own.set(t, p.inputs[i]!));
  let next = 1;
  for (const v of p.inputs) next = Math.max(next, v.id + 1);
  for (const e of p.eqns) for (const v of e.outs) next = Math.max(next, v.id + 1);
  const cv = all.map((t) => own.get(t) ?? new Var(next++, avalOf(t)));
  return new Program([...cv, ...p.inputs.slice(c.consts.length)], p.eqns, p.outputs);
}

/** Apply dtype casts (null = none) to output leaves. */
function castLeaves(
  ls: readonly unknown[],
  casts: readonly (DType | null | undefined)[],
  what: string,
): Tensor[] {
  return ls.map((l, i) => {
    const t = leafTensor(l, `${what} (leaf ${i})`);
    const c = casts[i];
    return c === null || c === undefined ? t : astype(t, c);
  });
}

interface CarryFix {
  /** Per carry leaf: promote the initial value to this dtype (it was weakly typed). */
  readonly promote: (DType | null)[];
  /** Per carry leaf: cast what the function returns to this dtype (it was weakly typed). */
  readonly cast: (DType | null)[];
}

/**
 * Compare a loop's carry in and out: shapes must agree; dtypes too, except that a weakly typed
 * side (a JS number) adopts the other's dtype, as in JAX. Null when they agree already.
 */
function reconcileCarry(
  inA: readonly Aval[],
  outA: readonly Aval[],
  op: string,
  fn: string,
): CarryFix | null {
  const promote: (DType | null)[] = inA.map(() => null);
  const cast: (DType | null)[] = inA.map(() => null);
  let any = false;
  inA.forEach((a, j) => {
    const b = outA[j]!;
    const where = inA.length === 1 ? "the carry" : `carry leaf ${j}`;
    if (!shapeEq(a.shape, b.shape))
      throw new ShapeError(
        `${op}: ${fn} returned ${where} with shape ${fmtShape(b.shape)}, but the initial carry has shape ${fmtShape(a.shape)}; the carry must keep its shape`,
      );
    if (a.dtype === b.dtype && a.weakType === b.weakType) return;
    any = true;
    if (a.dtype === b.dtype) {
      if (a.weakType) promote[j] = a.dtype;
      if (b.weakType) cast[j] = a.dtype;
    } else if (a.weakType) {
      promote[j] = b.dtype;
      if (b.weakType) cast[j] = b.dtype;
    } else if (b.weakType) cast[j] = a.dtype;
    else
      throw new DTypeError(
        `${op}: ${fn} returned ${where} of dtype ${b.dtype}, but the initial carry has dtype ${a.dtype}; the carry must keep its dtype`,
      );
  });
  return any ? { promote, cast } : null;
}

/** Stage a loop function until its carry types are a fixpoint (weak initial values adopt the body's dtypes). */
function stageLoop(
  init: Tensor[],
  stageWith: (carry: readonly Aval[], casts: readonly (DType | null)[]) => Closed,
  op: string,
  fn: string,
): { closed: Closed; carry: Tensor[] } {
  const nC = init.length;
  let carry = init;
  let casts: (DType | null)[] = init.map(() => null);
  for (let attempt = 0; ; attempt++) {
    const closed = stageWith(carry, casts);
    const fix = reconcileCarry(carry, outAvals(closed).slice(0, nC), op, fn);
    if (fix === null) return { closed, carry };
    if (attempt >= 2)
      throw new DTypeError(
        `${op}: the carry types do not settle: ${fn} takes ${carry.map(showAval).join(", ")} and returns ${outAvals(
          closed,
        )
          .slice(0, nC)
          .map(showAval)
          .join(", ")}`,
      );
    carry = carry.map((c, j) => (fix.promote[j] ? astype(c, fix.promote[j]) : c));
    casts = casts.map((c, j) => fix.cast[j] ?? c);
  }
}

// ---- flat cores (used by the public functions and by the rules) --------------------------------

/** @internal `cond` on flat tensor operands; the branches return flat leaves. */
export function condFlat(
  pred: Pred,
  trueFn: (ops: Tensor[]) => readonly unknown[],
  falseFn: (ops: Tensor[]) => readonly unknown[],
  op: string,
  operands: Tensor[] = [],
  checkStructure?: () => void,
): Tensor[] {
  const pv = predValue(pred, op);
  if (pv !== null)
    return (pv ? trueFn : falseFn)(operands).map((l, i) => leafTensor(l, `${op}: output leaf ${i}`));
  const avals = operands.map(avalOf);
  const stageBranch = (
    fn: (ops: Tensor[]) => readonly unknown[],
    casts: readonly (DType | null)[],
    name: string,
  ) => stageFlat((args) => castLeaves(fn(args), casts, `${op}: ${name} output`), avals, op);
  let t = stageBranch(trueFn, [], "trueFn");
  let f = stageBranch(falseFn, [], "falseFn");
  checkStructure?.();
  const ta = outAvals(t);
  const fa = outAvals(f);
  if (ta.length !== fa.length)
    throw new TransformError(
      `${op}: the branches return different numbers of values (trueFn ${ta.length}, falseFn ${fa.length})`,
    );
  const castT: (DType | null)[] = ta.map(() => null);
  const castF: (DType | null)[] = ta.map(() => null);
  ta.forEach((a, i) => {
    const b = fa[i]!;
    const where = ta.length === 1 ? "the output" : `output leaf ${i}`;
    if (!shapeEq(a.shape, b.shape))
      throw new ShapeError(
        `${op}: the branches return different shapes for ${where}: trueFn gives ${fmtShape(a.shape)}, falseFn gives ${fmtShape(b.shape)}`,
      );
    if (a.dtype === b.dtype && a.weakType === b.weakType) return;
    if (a.dtype === b.dtype) {
      if (a.weakType) castT[i] = a.dtype;
      else castF[i] = b.dtype;
    } else if (a.weakType && !b.weakType) castT[i] = b.dtype;
    else if (b.weakType && !a.weakType) castF[i] = a.dtype;
    else
      throw new DTypeError(
        `${op}: the branches return different dtypes for ${where}: trueFn gives ${a.dtype}, falseFn gives ${b.dtype}`,
      );
  });
  if (castT.some((c) => c !== null)) t = stageBranch(trueFn, castT, "trueFn");
  if (castF.some((c) => c !== null)) f = stageBranch(falseFn, castF, "falseFn");
  const consts = [...new Set([...f.consts, ...t.consts])];
  const branches: [Program, Program] = [withConsts(f, consts), withConsts(t, consts)];
  return bind(condP, [pred as Tensor, ...consts, ...operands], { branches });
}

/** @internal `scan` on flat leaves: `body(carry, x) => [carry, y]`, all outputs flat. */
export function scanFlat(
  body: (carry: Tensor[], x: Tensor[]) => readonly [readonly unknown[], readonly unknown[]],
  init: Tensor[],
  xs: Tensor[],
  opts: { length: number; reverse: boolean; saveCarries: boolean },
): Tensor[] {
  const nC = init.length;
  const xAvals = xs.map((x) => ({ shape: x.shape.slice(1), dtype: x.dtype, weakType: x.weakType }));
  const { closed, carry } = stageLoop(
    init,
    (carryAvals, casts) =>
      stageFlat(
        (args) => {
          const [c, y] = body(args.slice(0, nC), args.slice(nC));
          return [...castLeaves(c, casts, "scan: fn's carry"), ...y];
        },
        [...carryAvals, ...xAvals],
        "scan",
      ),
    "scan",
    "fn",
  );
  return bind(scanP, [...closed.consts, ...carry, ...xs], {
    body: closed.program,
    length: opts.length,
    numConsts: closed.consts.length,
    numCarry: nC,
    reverse: opts.reverse,
    saveCarries: opts.saveCarries,
  });
}

/**
 * @internal `whileLoop` on flat leaves. While the predicate is concrete the loop runs in JS
 * (every transform sees the body's primitives); from the first abstract predicate on, the rest of
 * the loop is staged into a `while` primitive.
 */
export function whileFlat(
  condFn: (carry: Tensor[]) => unknown,
  bodyFn: (carry: Tensor[]) => readonly unknown[],
  init: Tensor[],
  op: string,
): Tensor[] {
  // Under staging (jit, trace, a staged body) every computed value is abstract: stage at once.
  if (stagingBelow()) return whileStaged(condFn, bodyFn, init, op);
  let c = init;
  for (;;) {
    const pv = predValue(condFn(c), op);
    if (pv === null) return whileStaged(condFn, bodyFn, c, op);
    if (!pv) return c;
    const next = bodyFn(c).map((l, i) => leafTensor(l, `${op}: bodyFn's carry (leaf ${i})`));
    next.forEach((t, j) => {
      if (!shapeEq(t.shape, c[j]!.shape))
        throw new ShapeError(
          `${op}: bodyFn returned ${next.length === 1 ? "the carry" : `carry leaf ${j}`} with shape ${fmtShape(t.shape)}, but it had shape ${fmtShape(c[j]!.shape)}; the carry must keep its shape`,
        );
    });
    c = next;
  }
}

function whileStaged(
  condFn: (carry: Tensor[]) => unknown,
  bodyFn: (carry: Tensor[]) => readonly unknown[],
  init: Tensor[],
  op: string,
): Tensor[] {
  const { closed: body, carry } = stageLoop(
    init,
    (carryAvals, casts) =>
      stageFlat((args) => castLeaves(bodyFn(args), casts, `${op}: bodyFn's carry`), carryAvals, op),
    op,
    "bodyFn",
  );
  const cond = stageFlat((args) => [condFn(args)], carry, op);
  const pa = outAvals(cond)[0]!;
  if (pa.shape.reduce((n, d) => n * d, 1) !== 1)
    throw new ShapeError(`${op}: condFn must return a scalar (size 1), got shape ${fmtShape(pa.shape)}`);
  return bind(whileP, [...cond.consts, ...body.consts, ...carry], {
    cond: cond.program,
    body: body.program,
    numCondConsts: cond.consts.length,
    numBodyConsts: body.consts.length,
  });
}

// ---- derivative and batching helpers for the rules -------------------------------------------

/** @internal Forward mode on a flat function: its outputs and their tangents (null = zero). */
export function jvpFlat(
  f: (xs: Tensor[]) => Tensor[],
  primals: readonly Tensor[],
  tangents: readonly (Tensor | null)[],
): [Tensor[], (Tensor | null)[]] {
  const interp = new JvpInterpreter(currentInterpreter());
  const args = primals.map((p, i) => {
    const t = tangents[i];
    return t === null || t === undefined ? p : interp.lift(p, t);
  });
  const outs = withInterpreter(interp, () => f(args));
  return [
    outs.map((o) => interp.primalOf(o)),
    outs.map((o) => {
      const t = interp.tangentOf(o);
      return isZero(t) ? null : t;
    }),
  ];
}

/** @internal Reverse mode on a flat function: cotangents of the `diff` inputs (null = zero) for output cotangents `cts`. */
export function vjpFlat(
  f: (xs: Tensor[]) => Tensor[],
  primals: readonly Tensor[],
  diff: readonly boolean[],
  cts: readonly (Tensor | null)[],
): (Tensor | null)[] {
  const interp = new ReverseInterpreter(currentInterpreter());
  const leaves = primals.map((p, i) => (diff[i] ? Node.leaf(p) : null));
  const args = primals.map((p, i) => {
    const n = leaves[i];
    return n === null || n === undefined ? p : interp.lift(p, { node: n, index: 0 });
  });
  const outs = withInterpreter(interp, () => f(args));
  const seeds: [Ref, Tensor][] = [];
  outs.forEach((o, i) => {
    const ct = cts[i];
    const r = interp.refOf(o);
    if (ct !== null && ct !== undefined && r !== null) seeds.push([r, ct]);
  });
  const adj = backwardPass(seeds, { order: interp.nodes });
  return leaves.map((n) => (n === null ? null : (adj.get(n)?.[0] ?? null)));
}

/** @internal Map a flat function over the batch axes `dims` (null = unbatched); results batched on axis 0. */
export function batchFlat(
  f: (xs: Tensor[]) => Tensor[],
  args: readonly Tensor[],
  dims: readonly (number | null)[],
  size: number,
): Tensor[] {
  return batchCall((...xs) => f(xs), args, dims, size);
}

/**
 * @internal Which outputs of `p` can depend on the inputs flagged in `mask` (an over-approximation:
 * every float output of an equation with a flagged operand is flagged).
 */
export function nonzeroOutputs(p: Program, mask: readonly boolean[]): boolean[] {
  const nz = new Set<Var>();
  p.inputs.forEach((v, i) => {
    if (mask[i]) nz.add(v);
  });
  for (const e of p.eqns)
    if (e.inputs.some((a) => a instanceof Var && nz.has(a)))
      for (const v of e.outs) if (isFloat(v.aval.dtype)) nz.add(v);
  return p.outputs.map((a) => a instanceof Var && nz.has(a));
}

// ---- public API ------------------------------------------------------------------------------

/**
 * `pred ? trueFn(...operands) : falseFn(...operands)`, differentiable and stageable. With a
 * concrete predicate (a JS boolean or number, or a tensor whose value can be read, even inside
 * `grad`/`jvp`) the chosen branch simply runs. With an abstract one (under `jit`/`trace`, or
 * batched by `vmap`) both branches are staged and a `cond` primitive chooses at run time: they
 * must return the same structure, shapes and dtypes (a JS number adopts the other branch's
 * dtype). Number leaves of the operands reach the branches as tensors; number leaves of the
 * result come back as tensors.
 * @example
 * const f = ad.jit((x: ad.Tensor) => ad.cond(ad.greater(ad.sum(x), 0), (v) => v.mul(2), (v) => v.neg(), x));
 * f(ad.tensor([1, 2])).toArray(); // [2, 4]
 * f(ad.tensor([-1, -2])).toArray(); // [1, 2]
 * ad.grad((x: number) => ad.cond(ad.greater(x, 0), (v) => ad.sin(v), (v) => ad.cos(v), x))(1); // cos(1)
 */
export function cond<const A extends readonly unknown[], R>(
  pred: Pred,
  trueFn: (...operands: TracedArgs<A>) => R,
  falseFn: (...operands: TracedArgs<A>) => unknown,
  ...operands: A
): Traced<R> {
  checkFunction(trueFn, "cond");
  checkFunction(falseFn, "cond");
  const pv = predValue(pred, "cond");
  const call = (fn: (...ops: never[]) => unknown, ops: readonly unknown[]) =>
    (fn as (...o: unknown[]) => unknown)(...ops);
  if (pv !== null)
    return numbersToTensors(
      call(pv ? trueFn : falseFn, numbersToTensors(operands) as unknown[]),
    ) as Traced<R>;
  const [leaves, def] = flattenLeaves(operands, "cond: operand");
  const defs: (TreeDef | null)[] = [null, null];
  const branch = (fn: (...ops: never[]) => unknown, k: number) => (ops: Tensor[]) => {
    const [ls, d] = flatten(call(fn, unflatten(def, ops)));
    defs[k] = d;
    return ls;
  };
  const outs = condFlat(pred, branch(trueFn, 1), branch(falseFn, 0), "cond", leaves, () => {
    if (!treeDefEqual(defs[0]!, defs[1]!))
      throw new TransformError(
        `cond: the branches return different structures: trueFn gives ${showTreeDef(defs[1]!)}, falseFn gives ${showTreeDef(defs[0]!)}`,
      );
  });
  return unflatten(defs[1]!, outs);
}

/**
 * `while (condFn(carry)) carry = bodyFn(carry)`; returns the final carry (a pytree of tensors).
 * While the predicate is concrete this is a JS loop, so both forward and reverse mode see every
 * step. Under `jit`/`trace` (an abstract predicate) it becomes a `while` primitive: forward-mode
 * differentiable, but reverse mode throws a `TransformError` (the number of iterations is not
 * known: use `scan` or `fori` with fixed bounds). The carry must keep its structure, shapes and
 * dtypes.
 * @example
 * ad.whileLoop((c) => ad.less(c, 100), (c) => c.mul(2), ad.scalar(1)).item(); // 128
 * // a value-dependent loop under jit
 * const collatz = ad.jit((n: ad.Tensor) =>
 *   ad.whileLoop(([x]) => ad.greater(x, 1), ([x, k]) => [ad.where(ad.equal(ad.sub(x, ad.mul(ad.floor(ad.div(x, 2)), 2)), 0), ad.div(x, 2), ad.add(ad.mul(x, 3), 1)), ad.add(k, 1)], [n, 0])[1]);
 * collatz(ad.scalar(6)).item(); // 8
 */
export function whileLoop<const C>(
  condFn: (carry: Traced<C>) => Pred,
  bodyFn: (carry: Traced<C>) => NoInfer<Leafy<C>>,
  init: C,
): Traced<C> {
  checkFunction(condFn, "whileLoop");
  checkFunction(bodyFn, "whileLoop");
  const [leaves, def] = flattenLeaves(init, "whileLoop: init");
  const body = (c: Tensor[]): unknown[] => {
    const [ls, d] = flatten(bodyFn(unflatten(def, c)));
    if (!treeDefEqual(d, def))
      throw new TransformError(
        `whileLoop: bodyFn returned a carry with structure ${showTreeDef(d)}, but init has structure ${showTreeDef(def)}`,
      );
    return ls;
  };
  return unflatten(
    def,
    whileFlat((c) => condFn(unflatten(def, c)), body, leaves, "whileLoop"),
  );
}

/**
 * Scan `fn(carry, x) => [carry, y]` over the leading axis of `xs` (a pytree; null with
 * `{length}` for a loop without inputs): returns `[finalCarry, ys]`, the ys stacked along a new
 * axis 0. The body is staged once into a `scan` primitive, differentiable in both modes to any
 * order; reverse mode stores only the carry entering each step (O(length × carry) memory) and
 * recomputes each step's internals in the backward scan. Carry leaves keep their shapes and
 * dtypes (a JS number in `init` adopts the dtype the body gives it).
 * @example
 * const [total, partial] = ad.scan((c, x) => [ad.add(c, x), ad.add(c, x)], 0, ad.tensor([1, 2, 3]));
 * total.item(); // 6
 * partial.toArray(); // [1, 3, 6]
 * // an RNN: h ← tanh(W h + x_t), differentiable wrt W
 * const loss = (W: ad.Tensor, xs: ad.Tensor) => ad.sum(ad.scan((h, x) => { const h2 = ad.tanh(ad.add(ad.matmul(W, h), x)); return [h2, h2]; }, ad.zeros([2]), xs)[0]);
 * ad.grad(loss)(ad.eye(2), ad.ones([5, 2])).shape; // [2, 2]
 */
export function scan<const C, const X, Y>(
  fn: (carry: Traced<C>, x: Traced<X>) => readonly [NoInfer<Leafy<C>>, Y],
  init: C,
  xs: X,
  opts: ScanOptions = {},
): [Traced<C>, Traced<Y>] {
  checkFunction(fn, "scan");
  if (typeof opts !== "object" || opts === null)
    throw new TransformError("scan: options must be an object {length?, reverse?}");
  const [initLeaves, initDef] = flattenLeaves(init, "scan: init");
  const [xLeaves, xDef] = flattenLeaves(xs, "scan: xs");
  xLeaves.forEach((x, i) => {
    if (x.ndim === 0)
      throw new ShapeError(
        `scan: xs${xLeaves.length === 1 ? "" : ` (leaf ${i})`} is a scalar; xs are stacked along axis 0`,
      );
  });
  let length = opts.length;
  if (length !== undefined && (!Number.isInteger(length) || length < 0))
    throw new TransformError(`scan: length must be a non-negative integer, got ${String(length)}`);
  const lens = xLeaves.map((x) => x.shape[0]!);
  if (lens.some((n) => n !== lens[0]) || (length !== undefined && lens.length > 0 && lens[0] !== length))
    throw new ShapeError(
      `scan: the leading axes of xs differ: ${xLeaves.map((x) => fmtShape(x.shape)).join(", ")}${length !== undefined ? ` (length ${length})` : ""}`,
    );
  length ??= lens[0];
  if (length === undefined)
    throw new TransformError("scan: xs has no leaves; give the number of steps as {length}");
  let yDef: TreeDef | null = null;
  const body = (c: Tensor[], x: Tensor[]): [unknown[], unknown[]] => {
    const r = (fn as (c: unknown, x: unknown) => unknown)(unflatten(initDef, c), unflatten(xDef, x));
    if (!Array.isArray(r) || r.length !== 2)
      throw new TransformError("scan: fn must return a pair [carry, y]");
    const [cl, cd] = flatten(r[0]);
    if (!treeDefEqual(cd, initDef))
      throw new TransformError(
        `scan: fn returned a carry with structure ${showTreeDef(cd)}, but init has structure ${showTreeDef(initDef)}`,
      );
    const [yl, yd] = flatten(r[1]);
    yDef = yd;
    return [cl, yl];
  };
  const outs = scanFlat(body, initLeaves, xLeaves, {
    length,
    reverse: opts.reverse ?? false,
    saveCarries: false,
  });
  const nC = initLeaves.length;
  return [unflatten(initDef, outs.slice(0, nC)), unflatten(yDef!, outs.slice(nC))];
}

/** A loop bound whose value is known now (a JS number or a readable size-1 tensor), else null. */
function staticBound(b: unknown, what: string): number | null {
  let v: number;
  if (typeof b === "number") v = b;
  else if (b instanceof Tensor) {
    if (b.size !== 1) throw new ShapeError(`fori: ${what} must be a scalar, got shape ${fmtShape(b.shape)}`);
    if (!isConcrete(b)) return null;
    v = b._hostData()[0]!;
  } else
    throw new TransformError(`fori: ${what} must be a number or a scalar tensor, got ${describeLeaf(b)}`);
  if (!Number.isInteger(v)) throw new TransformError(`fori: ${what} must be an integer, got ${v}`);
  return v;
}

/**
 * `for (i = lo; i < hi; i++) carry = body(i, carry)`; `i` is an int32 scalar tensor. With bounds
 * known now (JS numbers, or readable tensors) this is a `scan` of hi − lo steps, differentiable
 * in both modes; with traced bounds (under `jit`) a `whileLoop` (forward mode only).
 * @example
 * ad.fori(0, 5, (i, c) => ad.add(c, i), ad.scalar(0)).item(); // 10
 * ad.grad((x: number) => ad.fori(0, 3, (_i, c) => ad.mul(c, x), 1))(2); // d x³ = 12
 */
export function fori<const C>(
  lo: number | Tensor,
  hi: number | Tensor,
  body: (i: Tensor, carry: Traced<C>) => NoInfer<Leafy<C>>,
  init: C,
): Traced<C> {
  checkFunction(body, "fori");
  const l = staticBound(lo, "lo");
  const h = staticBound(hi, "hi");
  type Carry = [Tensor, unknown];
  const step = ([i, c]: Carry): Carry => [add(i, 1), body(i, c as Traced<C>)];
  if (l !== null && h !== null) {
    const [[, c]] = scan<Carry, null, null>(
      (carry) => [step(carry), null],
      [scalarOf(l, "int32", false), init],
      null,
      {
        length: Math.max(h - l, 0),
      },
    );
    return c as Traced<C>;
  }
  const bound = (b: number | Tensor) =>
    astype(typeof b === "number" ? scalarOf(b, "int32", false) : b, "int32");
  const hiT = bound(hi);
  const [, c] = whileLoop<Carry>(([i]) => less(i, hiT), step, [bound(lo), init]);
  return c as Traced<C>;
}
