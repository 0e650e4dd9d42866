/**
 * @file The custom-rule primitives behind `ad.customVjp` and `ad.customJvp`. Each call of a
 * custom function binds ONE higher-order primitive whose params carry the user's functions:
 *
 * - `custom_vjp_call`: evaluated, it runs `f`. The reverse interpreter instead runs `fwd` one
 *   level down (`forwardWithResiduals`) and keeps its residuals in the recorded node; the VJP
 *   rule calls `bwd(residuals, cotangent)`. Because `fwd` and `bwd` run with library ops at the
 *   level below the transform, enclosing transforms differentiate them like any other code, so
 *   `grad(grad(g))` and `hessian(g)` (forward over reverse) work whenever `bwd` is differentiable.
 *   Forward mode needs a `jvp` rule (a clear `TransformError` otherwise).
 * - `custom_jvp_call`: evaluated, it runs `f`; the JVP rule calls the user's `jvp`. The VJP rule
 *   transposes that rule: the tangent map t ↦ jvp(x, t)[1] is linear in t, so its VJP at t = 0
 *   (taken with one reverse sweep over the rule) is exactly Jᵀ·ct.
 *
 * Taylor mode (`jet`): a function with a forward rule (every `customJvp`, a `customVjp` given
 * `jvp`) gets its series by nesting that rule K times (`jetViaJvp`), so jet agrees with nested
 * `jvp`; a `customVjp` without one is expanded through `f` itself, as JAX does.
 *
 * With eager `requiresGrad` inputs both record one eager node (the body is not recorded op by op).
 * Under staging (`jit`, `trace`) a call is one equation; its output avals come from tracing `f`.
 */

import { isGradEnabled, withGradMode } from "../core/grad-mode.js";
import { bind, withInterpreter } from "../core/interpreter.js";
import { type Aval, definePrimitive, type Primitive, type Tangent } from "../core/primitive.js";
import { recordEager } from "../core/tape.js";
import { Tensor } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { isFloat } from "../dtype.js";
import { ShapeError, TransformError } from "../errors.js";
import { describe, scalarOf } from "../ops/convert.js";
import { astype, full, zeros } from "../ops/index.js";
import { fmtShape, shapeEq } from "../shape.js";
import { jetFlat, jetViaJvp } from "../transforms/jet.js";
import { pullback, record } from "../transforms/reverse.js";
import { StagingInterpreter } from "../transforms/stage.js";
import { flatten, showTreeDef, type TreeDef, treeDefEqual, unflatten } from "../tree.js";
import { instantiate, loopBatcher } from "./rules.js";

/**
 * The `TransformError` forward mode throws for a customVjp function without a `jvp` rule. A
 * subclass so that `gradcheck` can tell "no forward rule" from a real failure and check reverse
 * mode only; users see (and catch) a plain `TransformError`.
 * @example
 * const f = ad.customVjp((x) => ad.sin(x), { fwd: (x) => [ad.sin(x), x], bwd: (x, g) => [ad.mul(g, ad.cos(x))] });
 * try { ad.jvp(f, [1], [1]); } catch (e) { e instanceof ad.TransformError; } // true
 */
export class NoForwardRuleError extends TransformError {
  constructor(message: string) {
    super(message);
    this.name = "TransformError";
  }
}

/** A user function with any arguments. */
export type UserFn = (...args: never[]) => unknown;

/** One custom function (`ad.customVjp(f, ...)` / `ad.customJvp(f, ...)`): shared by all its calls. */
export interface CustomDef {
  readonly kind: "customVjp" | "customJvp";
  /** For messages and printed programs. */
  readonly name: string;
  /** Distinguishes custom functions in CSE keys. */
  readonly id: number;
  readonly f: UserFn;
  readonly fwd?: UserFn;
  readonly bwd?: (residuals: never, cotangent: never) => unknown;
  readonly jvp?: (primals: never, tangents: never) => unknown;
}

/** The params of one call: the definition, how the arguments map onto tensor inputs, and the output structure. */
export interface CustomParams {
  readonly def: CustomDef;
  /** Structure of the argument list. */
  readonly inDef: TreeDef;
  /** Per argument leaf: true for a tensor (a primitive input); other leaves are static. */
  readonly dynamic: readonly boolean[];
  /** Per argument leaf: the static value (unused for tensors). */
  readonly statics: readonly unknown[];
  /** The structure of `f`'s output, learnt by whichever evaluation runs first. */
  readonly cell: { def: TreeDef | null };
  /** custom_vjp nodes: `fwd`'s residuals, exactly as it returned them. */
  readonly residuals?: unknown;
  readonly hasResiduals?: boolean;
  /** CSE key: two calls merge only if they are the same custom function on the same statics. */
  toJSON(): string;
}

let nextDefId = 1;
let nextCallId = 1;

/** @internal A fresh definition id. */
export function newCustomId(): number {
  return nextDefId++;
}

function label(p: CustomParams): string {
  return p.def.name === "" ? p.def.kind : `${p.def.kind}(${p.def.name})`;
}

/** The argument list of the user's functions, from the primitive's tensor inputs and the statics. */
function rebuild(p: CustomParams, args: readonly unknown[]): unknown[] {
  let k = 0;
  return unflatten<unknown[]>(
    p.inDef,
    p.dynamic.map((d, i) => (d ? args[k++] : p.statics[i])),
  );
}

/** Call a user function, turning an escaped-tracer error into advice about closures. */
function callUser<T>(p: CustomParams, who: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TransformError && e.message.includes("escaped tracer"))
      throw new TransformError(
        `${label(p)}: ${who} used a traced value captured from an enclosing transform (a closure over a value being differentiated or jit-traced); pass it to the custom function as an argument instead`,
      );
    throw e;
  }
}

/** Flatten an output of `f`/`fwd`, checking its structure against the one learnt first. */
function outLeaves(p: CustomParams, out: unknown, who: string): Tensor[] {
  const [leaves, def] = flatten(out);
  if (p.cell.def === null) p.cell.def = def;
  else if (!treeDefEqual(def, p.cell.def))
    throw new TransformError(
      `${label(p)}: ${who} returned an output with structure ${showTreeDef(def)}, but f returns ${showTreeDef(p.cell.def)}`,
    );
  return leaves.map((l, i) => {
    if (l instanceof Tensor) return l;
    if (typeof l === "number") return scalarOf(l, "float64", true);
    throw new TransformError(
      `${label(p)}: ${who} must return Tensors or numbers (or pytrees of them); output leaf ${i} is ${describe(l)}`,
    );
  });
}

/** Walk a pytree `v` along the structure `def`; a null/undefined subtree stands for zeros. */
function walkLike(def: TreeDef, v: unknown, leaf: (x: unknown) => void, where: () => string): void {
  switch (def.kind) {
    case "leaf":
      leaf(v);
      return;
    case "none":
      return;
    case "array":
      if (v === null || v === undefined) {
        for (const c of def.children) walkLike(c, null, leaf, where);
        return;
      }
      if (!Array.isArray(v) || v.length !== def.children.length)
        throw new TransformError(`${where()}: expected an array of ${def.children.length} entries`);
      def.children.forEach((c, i) => walkLike(c, v[i], leaf, where));
      return;
    case "object": {
      if (v === null || v === undefined) {
        for (const c of def.children) walkLike(c, null, leaf, where);
        return;
      }
      if (typeof v !== "object" || Array.isArray(v))
        throw new TransformError(`${where()}: expected an object with keys ${def.keys.join(", ")}`);
      const o = v as Record<string, unknown>;
      def.keys.forEach((k, i) => walkLike(def.children[i]!, o[k], leaf, where));
    }
  }
}

/** A user tangent/cotangent leaf as a Tangent like `like` (null: zero; a number: filled). */
function asTangent(v: unknown, like: Tensor, what: string): Tangent {
  if (v === null || v === undefined || !isFloat(like.dtype)) return Zero.like(like);
  if (typeof v === "number") return full(like.shape, v, { dtype: like.dtype });
  if (!(v instanceof Tensor))
    throw new TransformError(`${what} must be a Tensor, a number or null, got ${describe(v)}`);
  if (!shapeEq(v.shape, like.shape))
    throw new ShapeError(`${what} has shape ${fmtShape(v.shape)}, expected ${fmtShape(like.shape)}`);
  return v.dtype === like.dtype ? v : astype(v, like.dtype);
}

/** The user's tangent pytree for the outputs, as one Tangent per output leaf. */
function outTangents(p: CustomParams, t: unknown, outs: readonly Tensor[], who: string): Tangent[] {
  const res: Tangent[] = [];
  walkLike(
    p.cell.def!,
    t,
    (x) => {
      const k = res.length;
      res.push(asTangent(x, outs[k]!, `${label(p)}: the tangent ${who} returned (output leaf ${k})`));
    },
    () =>
      `${label(p)}: the tangent ${who} returned does not match the output structure ${showTreeDef(p.cell.def!)}`,
  );
  return res;
}

/** `bwd`'s result (one cotangent pytree per argument) as one Tangent per primitive input. */
function argCotangents(p: CustomParams, r: unknown, primals: readonly Tensor[]): Tangent[] {
  const kids = p.inDef.kind === "array" ? p.inDef.children : [];
  if (!Array.isArray(r))
    throw new TransformError(
      `${label(p)}: bwd must return an array with one cotangent per argument (null for none), got ${describe(r)}`,
    );
  if (r.length !== kids.length)
    throw new TransformError(
      `${label(p)}: bwd returned ${r.length} cotangent(s) for ${kids.length} argument(s); return one per argument (null for none)`,
    );
  const res: Tangent[] = [];
  let j = 0;
  kids.forEach((def, i) => {
    walkLike(
      def,
      r[i],
      (x) => {
        if (p.dynamic[j++]) {
          const k = res.length;
          res.push(asTangent(x, primals[k]!, `${label(p)}: the cotangent bwd returned for argument ${i}`));
        }
      },
      () =>
        `${label(p)}: the cotangent bwd returned for argument ${i} does not match its structure ${showTreeDef(def)}`,
    );
  });
  return res;
}

/** Run `f` on the primitive's inputs. */
function runF(p: CustomParams, args: readonly Tensor[]): Tensor[] {
  return outLeaves(
    p,
    callUser(p, "f", () => (p.def.f as (...a: unknown[]) => unknown)(...rebuild(p, args))),
    "f",
  );
}

/** Run `fwd`: the outputs and the node params holding its residuals. */
function runFwd(p: CustomParams, args: readonly Tensor[]): [Tensor[], CustomParams] {
  const r = callUser(p, "fwd", () => (p.def.fwd as (...a: unknown[]) => unknown)(...rebuild(p, args)));
  if (!Array.isArray(r) || r.length !== 2)
    throw new TransformError(`${label(p)}: fwd must return a pair [output, residuals], got ${describe(r)}`);
  return [outLeaves(p, r[0], "fwd"), { ...p, residuals: r[1], hasResiduals: true }];
}

/** Run the user's jvp rule: output tangents (one per output leaf). */
function runJvp(
  p: CustomParams,
  primals: readonly Tensor[],
  tangents: readonly Tangent[],
  outs: readonly Tensor[],
) {
  const jvp = p.def.jvp as (primals: unknown[], tangents: unknown[]) => unknown;
  let k = 0;
  const ts = unflatten<unknown[]>(
    p.inDef,
    p.dynamic.map((d) => (d ? instantiate(tangents[k++]!) : null)),
  );
  const r = callUser(p, "jvp", () => jvp(rebuild(p, primals), ts));
  if (!Array.isArray(r) || r.length !== 2)
    throw new TransformError(`${label(p)}: jvp must return a pair [output, tangentOut], got ${describe(r)}`);
  return outTangents(p, r[1], outs, "jvp");
}

/** Output avals by tracing `f` on the input avals (staging only). */
function abstractOuts(avals: readonly Aval[], p: CustomParams): Aval[] {
  const interp = new StagingInterpreter(label(p));
  const tracers = avals.map((a) => interp.tracer(interp.newVar(a)));
  const out = withInterpreter(interp, () => runF(p, tracers));
  return out.map((t) => ({ shape: t.shape, dtype: t.dtype, weakType: t.weakType }));
}

/** Eager autograd: operations on tensors that require grad are recorded as one custom node. */
function wantsEager(args: readonly Tensor[]): boolean {
  return isGradEnabled() && args.some((a) => a._requiresGrad);
}

/** A new tensor object on the same buffer, without history (a node's outputs must be its own). */
function fresh(t: Tensor): Tensor {
  return new Tensor(t.shape, t.dtype, t.weakType, t._buf, t._backend, null);
}

function noImpl(name: string): never {
  throw new Error(`adjoint internal error: ${name} runs its body through evaluate, it has no kernel`);
}

/**
 * `custom_vjp_call`: a function with a user-defined VJP.
 * Math: y = f(x); reverse x̄ = bwd(residuals of fwd(x), ȳ); forward ẏ = jvp(x, ẋ) if given.
 */
export const customVjpP: Primitive<CustomParams> = definePrimitive<CustomParams>({
  name: "custom_vjp_call",
  abstractEval: abstractOuts,
  impl: () => noImpl("custom_vjp_call"),
  evaluate(args, p) {
    if (!wantsEager(args)) return runF(p, args);
    // fwd runs with recording on, so residuals keep their history (createGraph differentiates bwd).
    const [outs0, saved] = runFwd(p, args);
    const outs = outs0.map(fresh);
    recordEager(customVjpP as Primitive<unknown>, saved, args, outs);
    return outs;
  },
  forwardWithResiduals: (args, p) => runFwd(p, args),
  jvp(primals, tangents, outs, p) {
    if (p.def.jvp === undefined)
      throw new NoForwardRuleError(
        `${label(p)}: a customVjp function under forward mode (jvp, jacfwd, linearize) needs a forward rule: pass a jvp rule, ad.customVjp(f, { fwd, bwd, jvp })`,
      );
    return runJvp(p, primals, tangents, outs);
  },
  // jet: K nested applications of the jvp rule when there is one, else jet through f
  jet: (primals, series, _outs, p) =>
    p.def.jvp !== undefined
      ? jetViaJvp(customVjpP, primals, series, p)
      : jetFlat((xs) => runF(p, xs), primals, series)[1],
  vjp(cts, primals, _outs, p) {
    const q = p.hasResiduals ? p : runFwd(p, primals)[1];
    const ct = unflatten(p.cell.def!, cts);
    const bwd = p.def.bwd as (residuals: unknown, cotangent: unknown) => unknown;
    return argCotangents(
      p,
      callUser(p, "bwd", () => bwd(q.residuals, ct)),
      primals,
    );
  },
  saves: "inputs",
  // vmap: once per example (each call keeps every custom rule).
  batch: loopBatcher(() => customVjpP),
  showParams: (p) => `name=${p.def.name === "" ? "anonymous" : p.def.name}`,
});

/**
 * `custom_jvp_call`: a function with a user-defined JVP.
 * Math: y = f(x); forward ẏ = jvp(x, ẋ); reverse x̄ = (ẋ ↦ jvp(x, ẋ))ᵀ ȳ (the rule is linear in ẋ).
 */
export const customJvpP: Primitive<CustomParams> = definePrimitive<CustomParams>({
  name: "custom_jvp_call",
  abstractEval: abstractOuts,
  impl: () => noImpl("custom_jvp_call"),
  evaluate(args, p) {
    if (!wantsEager(args)) return runF(p, args);
    const outs = withGradMode(false, () => runF(p, args)).map(fresh);
    recordEager(customJvpP as Primitive<unknown>, p, args, outs);
    return outs;
  },
  jvp: (primals, tangents, outs, p) => runJvp(p, primals, tangents, outs),
  // jet: K nested applications of the user's jvp rule (jetViaJvp)
  jet: (primals, series, _outs, p) => jetViaJvp(customJvpP, primals, series, p),
  vjp(cts, primals, outs, p, needs) {
    const idx: number[] = [];
    primals.forEach((x, i) => {
      if (needs[i] && isFloat(x.dtype)) idx.push(i);
    });
    const res: Tangent[] = primals.map((x) => Zero.like(x));
    if (idx.length === 0) return res;
    // One reverse sweep over the tangent map of the user's rule, linearised at t = 0.
    const lin = (...ts: Tensor[]): Tensor[] => {
      const all: Tangent[] = primals.map((x) => Zero.like(x));
      idx.forEach((i, k) => (all[i] = ts[k]!));
      return runJvp(p, primals, all, outs).map((t) => (isZero(t) ? zeros(t.shape, { dtype: t.dtype }) : t));
    };
    const rec = record(
      lin as (...a: never[]) => unknown,
      idx.map((i) => zeros(primals[i]!.shape, { dtype: primals[i]!.dtype })),
      idx.map((_, k) => k),
      false,
      label(p),
    );
    const g = pullback(rec, cts);
    idx.forEach((i, k) => (res[i] = g[k]![0]!));
    return res;
  },
  saves: "inputs",
  // vmap: once per example (each call keeps every custom rule).
  batch: loopBatcher(() => customJvpP),
  showParams: (p) => `name=${p.def.name === "" ? "anonymous" : p.def.name}`,
});

/** Whether a static leaf can be part of a CSE key by value. */
function plainStatic(s: unknown): boolean {
  return s === null || s === undefined || ["number", "string", "boolean"].includes(typeof s);
}

/**
 * @internal Call a custom function: tensor leaves of `args` become the primitive's inputs, every
 * other leaf (JS numbers included) is passed through unchanged; the result has `f`'s structure.
 */
export function callCustom(prim: Primitive<CustomParams>, def: CustomDef, args: readonly unknown[]): unknown {
  const [leaves, inDef] = flatten(args);
  const dynamic = leaves.map((l) => l instanceof Tensor);
  const statics = leaves.map((l) => (l instanceof Tensor ? undefined : l));
  const ins = leaves.filter((l): l is Tensor => l instanceof Tensor);
  const key = statics.every(plainStatic)
    ? `${def.kind}#${def.id}|${showTreeDef(inDef)}|${statics.map((s) => `${typeof s}:${String(s)}`).join(",")}`
    : `${def.kind}#${def.id}|call#${nextCallId++}`;
  const params: CustomParams = { def, inDef, dynamic, statics, cell: { def: null }, toJSON: () => key };
  const outs = bind(prim, ins, params);
  if (params.cell.def === null)
    throw new Error(`adjoint internal error: ${label(params)} ran without learning its output structure`);
  return unflatten(params.cell.def, outs);
}
