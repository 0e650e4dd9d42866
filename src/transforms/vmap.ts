/**
 * @file Vectorisation: the batching interpreter and `vmap`. Each `vmap` call gets a fresh
 * interpreter; its tracers carry a value one level down with one extra axis (the batch axis,
 * which can sit anywhere) and show users the shape of one example. A primitive with a batched
 * operand runs its batching rule (`prim.batch`, defined with the primitive) one level down;
 * one with no batched operand runs one level down untouched and its results stay unbatched.
 * Reading a batched value (`item()`, `toArray()`, a JS `if`) is a `TransformError`: it has a
 * different value for each example.
 */

import { bind, currentInterpreter, type Interpreter, withInterpreter } from "../core/interpreter.js";
import type { Primitive } from "../core/primitive.js";
import { Tensor, type TraceState } from "../core/tensor.js";
import { ShapeError, TransformError } from "../errors.js";
import { scalarOf } from "../ops/convert.js";
import { broadcastTo, reshape } from "../ops/index.js";
import { moveAxis } from "../primitives/rules.js";
import { fmtShape } from "../shape.js";
import { flatten, showTreeDef, type TreeDef, unflatten } from "../tree.js";
import { checkFunction, flattenOutput } from "./args.js";

interface BatchState extends TraceState {
  /** The value one level down: every example, stacked along `bdim`. */
  readonly val: Tensor;
  /** The batch axis of `val` (null: the same value for every example). */
  readonly bdim: number | null;
}

export class BatchInterpreter implements Interpreter {
  constructor(
    readonly parent: Interpreter,
    /** The size of the mapped axis. */
    readonly size: number,
  ) {}

  /** Wrap a value one level down whose axis `bdim` runs over the examples (null: returned as is). */
  lift(val: Tensor, bdim: number | null): Tensor {
    if (bdim === null) return val;
    const state: BatchState = { owner: this, val, bdim };
    return new Tensor(
      val.shape.filter((_, i) => i !== bdim),
      val.dtype,
      val.weakType,
      null,
      null,
      state,
    );
  }

  /** The value one level down behind `t` and its batch axis (anything not ours is unbatched). */
  unwrap(t: Tensor): [Tensor, number | null] {
    const s = t._trace;
    return s !== null && s.owner === this ? [(s as BatchState).val, (s as BatchState).bdim] : [t, null];
  }

  process<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor[] {
    let any = false;
    const vals: Tensor[] = new Array(args.length);
    const dims: (number | null)[] = new Array(args.length);
    for (let i = 0; i < args.length; i++) {
      const [v, d] = this.unwrap(args[i]!);
      vals[i] = v;
      dims[i] = d;
      if (d !== null) any = true;
    }
    return withInterpreter(this.parent, () => {
      if (!any) return bind(prim, vals, params);
      const rule = prim.batch;
      if (rule === undefined)
        throw new TransformError(`vmap: the primitive ${prim.name} has no batching rule`);
      const [outs, outDims] = rule(vals, dims, params);
      return outs.map((o, i) => {
        const d = outDims[i] ?? null;
        if (d !== null && o.shape[d] !== this.size)
          throw new Error(
            `adjoint internal error: the batching rule of ${prim.name} gave shape ${fmtShape(o.shape)} with batch axis ${d}, expected size ${this.size} there`,
          );
        return this.lift(o, d);
      });
    });
  }

  concrete(t: Tensor): Tensor {
    throw new TransformError(
      `vmap: a batched value (one example of shape ${fmtShape(t.shape)}) was read, e.g. by item(), toArray() or a JS if on it; it has a different value for each example. Use ad.where for value-dependent choices, or read the values outside vmap`,
    );
  }
}

/**
 * An axis specification: a number (the mapped axis; negative counts from the end), `null` (not
 * mapped), or a pytree prefix of the value (an array or plain object whose entries are specs).
 */
export type AxisSpec = number | null | undefined | readonly AxisSpec[] | { readonly [key: string]: AxisSpec };

export interface VmapOptions {
  /**
   * Which axis of each argument is mapped (default 0). A number or null applies to every
   * argument; an array gives one spec per argument, each a pytree prefix of its argument.
   * JS numbers are never mapped (they have no axis).
   */
  inAxes?: AxisSpec;
  /**
   * Where the mapped axis goes in each output leaf (default 0), as a pytree prefix of the output;
   * null only for outputs that are the same for every example.
   */
  outAxes?: AxisSpec;
}

/** A vmapped result: every tensor or number leaf becomes a tensor with the mapped axis. */
export type Vmapped<R> = R extends Tensor
  ? Tensor
  : R extends number
    ? Tensor
    : R extends readonly unknown[]
      ? { -readonly [K in keyof R]: Vmapped<R[K]> }
      : R extends (...a: never[]) => unknown
        ? R
        : R extends object
          ? { [K in keyof R]: Vmapped<R[K]> }
          : R;

/** One leaf's axis: the number (or null) and whether the spec named this leaf itself. */
interface LeafAxis {
  readonly axis: number | null;
  readonly exact: boolean;
}

function showSpec(spec: unknown): string {
  if (spec === undefined) return "undefined";
  try {
    return JSON.stringify(spec) ?? String(spec);
  } catch {
    return String(spec);
  }
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** Broadcast an axis spec (a pytree prefix) over a structure: one entry per leaf. */
function axesFor(spec: unknown, def: TreeDef, what: string, option: string, exact: boolean): LeafAxis[] {
  const out: LeafAxis[] = [];
  const fill = (d: TreeDef, axis: number | null, ex: boolean) => {
    if (d.kind === "leaf") out.push({ axis, exact: ex });
    else if (d.kind === "array" || d.kind === "object") for (const c of d.children) fill(c, axis, false);
  };
  const walk = (s: unknown, d: TreeDef, path: string, ex: boolean) => {
    if (s === null || s === undefined) return fill(d, null, ex);
    if (typeof s === "number") {
      if (!Number.isInteger(s))
        throw new TransformError(`vmap: ${option} for ${path} must be an integer or null, got ${s}`);
      return fill(d, s, ex && d.kind === "leaf");
    }
    if (Array.isArray(s)) {
      if (d.kind !== "array" || d.children.length !== s.length)
        throw new TransformError(
          `vmap: ${option} for ${path} is an array of ${s.length} entries, but the value has structure ${showTreeDef(d)}`,
        );
      d.children.forEach((c, i) => walk(s[i], c, `${path}[${i}]`, true));
      return;
    }
    if (isPlainObject(s)) {
      const keys = Object.keys(s);
      if (d.kind !== "object" || keys.length !== d.keys.length || keys.some((k) => !d.keys.includes(k)))
        throw new TransformError(
          `vmap: ${option} for ${path} has keys {${keys.join(", ")}}, but the value has structure ${showTreeDef(d)}`,
        );
      d.keys.forEach((k, i) => walk(s[k], d.children[i]!, `${path}.${k}`, true));
      return;
    }
    throw new TransformError(
      `vmap: ${option} must be a number, null, or an array/object of them matching the structure, got ${showSpec(s)} for ${path}`,
    );
  };
  walk(spec, def, what, exact);
  return out;
}

/** Where a leaf sits, for error messages: `argument 1` or `leaf 2 of argument 1`. */
function leafName(kind: string, i: number, j: number, def: TreeDef): string {
  return def.kind === "leaf" ? `${kind} ${i}` : `leaf ${j} of ${kind} ${i}`;
}

function normAxisFor(
  axis: number,
  rank: number,
  what: string,
  shape: readonly number[],
  option: string,
): number {
  if (axis < -rank || axis >= rank)
    throw new ShapeError(
      `vmap: ${option} ${axis} is out of range for ${what} of shape ${fmtShape(shape)} (${rank === 0 ? "a 0-d value has no axis to map" : `valid axes are ${-rank}..${rank - 1}`})`,
    );
  return axis < 0 ? axis + rank : axis;
}

/** A mapped input leaf: where it is and its mapped axis. */
interface Mapped {
  readonly arg: number;
  readonly leaf: number;
  readonly axis: number;
}

function vmapCall(
  f: (...a: unknown[]) => unknown,
  args: unknown[],
  inAxes: unknown,
  outAxes: unknown,
): unknown {
  // Per-argument specs: an array names one per argument, a number or null applies to all.
  let perArg: { spec: unknown; exact: boolean }[];
  if (Array.isArray(inAxes)) {
    if (inAxes.length !== args.length)
      throw new TransformError(
        `vmap: inAxes has ${inAxes.length} entries but the function was called with ${args.length} argument(s)`,
      );
    perArg = inAxes.map((spec) => ({ spec, exact: true }));
  } else if (inAxes === null || typeof inAxes === "number")
    perArg = args.map(() => ({ spec: inAxes, exact: false }));
  else
    throw new TransformError(
      `vmap: inAxes must be a number, null, or an array with one entry per argument, got ${showSpec(inAxes)}`,
    );

  const flat = args.map((a) => flatten(a));
  const mapped: Mapped[] = [];
  let size = -1;
  const sizes: string[] = [];
  flat.forEach(([leaves, def], i) => {
    const axes = axesFor(perArg[i]!.spec, def, `argument ${i}`, "inAxes", perArg[i]!.exact);
    leaves.forEach((l, j) => {
      const { axis, exact } = axes[j]!;
      if (axis === null) return;
      const where = leafName("argument", i, j, def);
      if (l instanceof Tensor) {
        const ax = normAxisFor(axis, l.ndim, where, l.shape, "inAxes");
        mapped.push({ arg: i, leaf: j, axis: ax });
        const n = l.shape[ax]!;
        sizes.push(`${where} has size ${n} on axis ${ax}`);
        if (size < 0) size = n;
        else if (size !== n) size = -2;
      } else if (exact) {
        if (typeof l === "number")
          throw new ShapeError(
            `vmap: inAxes ${axis} for ${where}, a JS number: a number is a scalar with no axis to map (give it inAxes null)`,
          );
        throw new TransformError(
          `vmap: inAxes ${axis} for ${where}, which is not a Tensor (${typeof l}); only tensors can be mapped`,
        );
      }
      // Other leaves (numbers, static values) are the same for every example.
    });
  });
  if (mapped.length === 0)
    throw new TransformError(
      `vmap: no argument is mapped (inAxes ${showSpec(inAxes)} selects no tensor of the ${args.length} argument(s)); there is nothing to vectorise`,
    );
  if (size === -2) throw new ShapeError(`vmap: the mapped axes have different sizes: ${sizes.join(", ")}`);

  const interp = new BatchInterpreter(currentInterpreter(), size);
  const lifted = flat.map(([leaves, def], i) => {
    const ls = leaves.slice();
    for (const m of mapped) if (m.arg === i) ls[m.leaf] = interp.lift(leaves[m.leaf] as Tensor, m.axis);
    return unflatten(def, ls);
  });
  const out = withInterpreter(interp, () => f(...lifted));

  const { leaves, def } = flattenOutput(out, "vmap");
  const axes = axesFor(outAxes, def, "the output", "outAxes", false);
  const results = leaves.map((l, j) => {
    const { axis } = axes[j]!;
    const where = def.kind === "leaf" ? "the output" : `output leaf ${j}`;
    if (typeof l === "number") {
      if (axis === null) return l;
      const t = scalarOf(l, "float64", false);
      normAxisFor(axis, 1, where, [size], "outAxes");
      return broadcastTo(t, [size]);
    }
    const [val, d] = interp.unwrap(l);
    if (d === null) {
      if (axis === null) return val;
      // The same value for every example: repeat it along the new axis.
      const a = normAxisFor(axis, val.ndim + 1, where, [...val.shape, size], "outAxes");
      const s = val.shape.slice();
      s.splice(a, 0, 1);
      const full = val.shape.slice();
      full.splice(a, 0, size);
      return broadcastTo(reshape(val, s), full);
    }
    if (axis === null)
      throw new TransformError(
        `vmap: outAxes is null for ${where}, but it varies along the mapped axis (shape ${fmtShape(l.shape)} per example); only outputs that are the same for every example can have outAxes null`,
      );
    return moveAxis(val, d, normAxisFor(axis, val.ndim, where, val.shape, "outAxes"));
  });
  return unflatten(def, results);
}

/**
 * Vectorise `f`: map it over an axis of its arguments (`inAxes`, default 0) and stack the
 * results along `outAxes` (default 0), in one pass of batched primitives rather than a loop.
 * Composes with every transform: `vmap(grad(f))` gives per-example gradients, `vmap(vmap(f))`
 * maps two axes, and `jit`, `jvp`, `grad` apply on either side.
 * @example
 * const xs = ad.tensor([[1, 2], [3, 4], [5, 6]]);
 * ad.vmap((x: ad.Tensor) => ad.dot(x, x))(xs).toArray(); // [5, 25, 61]
 * ad.vmap((x: ad.Tensor, w: ad.Tensor) => ad.matmul(w, x), { inAxes: [1, null] })(xs.transpose(), ad.eye(2)).shape; // [3, 2]
 * // per-example gradients: d/dw sum(w x) = x for each row x
 * ad.vmap(ad.grad((w: ad.Tensor, x: ad.Tensor) => ad.sum(ad.mul(w, x))), { inAxes: [null, 0] })(ad.ones([2]), xs).toArray(); // [[1, 2], [3, 4], [5, 6]]
 */
export function vmap<A extends unknown[], R>(
  f: (...args: A) => R,
  opts: VmapOptions = {},
): (...args: A) => Vmapped<R> {
  checkFunction(f, "vmap");
  if (typeof opts !== "object" || opts === null)
    throw new TransformError(`vmap: options must be an object {inAxes?, outAxes?}, got ${showSpec(opts)}`);
  const inAxes = opts.inAxes === undefined ? 0 : opts.inAxes;
  const outAxes = opts.outAxes === undefined ? 0 : opts.outAxes;
  return (...args: A) => vmapCall(f as (...a: unknown[]) => unknown, args, inAxes, outAxes) as Vmapped<R>;
}

/**
 * @internal Map `fn` over axis `inDims[i]` of each `args[i]` (null: unbatched) and return its
 * tensor results with the mapped axis first (unbatched results are repeated). The Jacobians use
 * this to push a batch of basis vectors through one sweep.
 */
export function batchCall(
  fn: (...xs: Tensor[]) => Tensor[],
  args: readonly Tensor[],
  inDims: readonly (number | null)[],
  size: number,
): Tensor[] {
  const interp = new BatchInterpreter(currentInterpreter(), size);
  const outs = withInterpreter(interp, () => fn(...args.map((a, i) => interp.lift(a, inDims[i] ?? null))));
  return outs.map((o) => {
    const [val, d] = interp.unwrap(o);
    if (d !== null) return moveAxis(val, d, 0);
    return broadcastTo(reshape(val, [1, ...val.shape]), [size, ...val.shape]);
  });
}
