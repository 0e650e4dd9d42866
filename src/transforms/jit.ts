/**
 * @file `ad.jit`: trace once per input signature (shapes, dtypes, pytree structure and static
 * leaves), simplify the Program, cache it, and run it. Run on concrete tensors, the compiled
 * program calls the backend's kernels directly — no promotion, no shape rules, no interpreter
 * dispatch per operation. Called inside another transform (`grad(jit(f))`, `jvp`, nesting), it
 * evaluates the same program through `bind`, so that transform sees every primitive.
 */

import { getBackend } from "../backend/backend.js";
import { isAnomalyEnabled } from "../core/anomaly-mode.js";

import { type Atom, type Program, Var } from "../core/program.js";
import { Tensor } from "../core/tensor.js";
import { flatten, showTreeDef, unflatten } from "../tree.js";
import { checkFunction } from "./args.js";
import { fuse } from "./fuse.js";
import { type SimplifyStats, simplify } from "./simplify.js";
import { type Staged, stage, toInputTensor } from "./stage.js";

interface Compiled extends Staged {
  /** The simplified program, evaluated through bind under other transforms. */
  readonly optimized: Program;
  /** The same with elementwise chains fused: what runs on concrete inputs. */
  readonly fused: Program;
  readonly stats: SimplifyStats;
}

const staticIds = new WeakMap<object, number>();
let nextStaticId = 1;

function leafKey(l: unknown): string {
  if (l instanceof Tensor) return `${l.dtype}${l.weakType ? "~" : ""}[${l.shape.join(",")}]`;
  if (typeof l === "number") return "num";
  if (typeof l === "object" && l !== null) {
    let id = staticIds.get(l);
    if (id === undefined) staticIds.set(l, (id = nextStaticId++));
    return `obj#${id}`;
  }
  if (typeof l === "function") {
    let id = staticIds.get(l);
    if (id === undefined) staticIds.set(l, (id = nextStaticId++));
    return `fn#${id}`;
  }
  return `${typeof l}:${String(l)}`;
}

/** Run an optimized program on concrete tensors by calling kernels directly. */
function runDirect(p: Program, args: readonly Tensor[]): Tensor[] {
  const env = new Map<Var, Tensor>();
  p.inputs.forEach((v, i) => env.set(v, args[i]!));
  const read = (a: Atom): Tensor => (a instanceof Var ? env.get(a)! : a.value);
  const backend = args[0]?._backend ?? getBackend();
  for (const e of p.eqns) {
    const ins = e.inputs.map(read);
    if (e.prim.evaluate !== undefined) {
      const outs = e.prim.evaluate(ins, e.params);
      e.outs.forEach((v, i) => env.set(v, outs[i]!));
      continue;
    }
    const outAvals = e.outs.map((v) => v.aval);
    const bufs = e.prim.impl(
      backend,
      ins.map((t) => t._buf!),
      ins,
      e.params,
      outAvals,
    );
    e.outs.forEach((v, i) => {
      env.set(
        v,
        new Tensor(v.aval.shape as number[], v.aval.dtype, v.aval.weakType, bufs[i]!, backend, null),
      );
    });
  }
  return p.outputs.map(read);
}

export interface Jitted<A extends unknown[], R> {
  (...args: A): R;
  /** The compiled Program for these arguments, as run on concrete inputs (traces if needed). */
  lower(...args: A): Program;
  /** How many times the function has been traced. */
  readonly traces: number;
}

/**
 * Compile `f`: traced once per input signature and cached; the same results as `f`.
 * A JS number argument is traced (not baked in); other non-tensor leaves are static.
 * @example
 * const f = ad.jit((x) => ad.sum(ad.mul(ad.sin(x), x)));
 * f(ad.tensor([1, 2])); // traced and compiled on the first call
 * f(ad.tensor([3, 4])); // reuses the compiled program
 */
export function jit<A extends unknown[], R>(f: (...args: A) => R): Jitted<A, R> {
  checkFunction(f, "jit");
  const cache = new Map<string, Compiled>();
  let traces = 0;
  const compile = (args: A): Compiled => {
    const [leaves, def] = flatten(args);
    const key = `${showTreeDef(def)}|${leaves.map(leafKey).join(";")}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    traces++;
    const staged = stage(f as (...a: never[]) => unknown, args, "jit");
    const stats: SimplifyStats = { folded: 0, merged: 0, removed: 0 };
    // Only constants made while tracing are folded: captured tensors may change in place later.
    const optimized = simplify(staged.program, stats, (l) => l.value._id >= staged.firstId);
    const c: Compiled = { ...staged, optimized, fused: fuse(optimized), stats };
    if (staged.reusable) cache.set(key, c);
    return c;
  };
  const call = (...args: A): R => {
    const c = compile(args);
    const [leaves] = flatten(args);
    const ins: Tensor[] = [];
    leaves.forEach((l, i) => {
      if (c.dynamic[i]) ins.push(toInputTensor(l)!);
    });
    // Inside another transform (also when the program captured a value of one), or when eager
    // autograd/anomaly detection must see every operation, evaluate through bind; otherwise run
    // the kernels directly.
    const direct =
      c.reusable &&
      ins.every((t) => t._trace === null && !t._requiresGrad) &&
      !c.captured.some((t) => t._requiresGrad) &&
      !isAnomalyEnabled();
    const outs = direct ? runDirect(c.fused, ins) : c.optimized.evaluate(ins);
    return unflatten<R>(
      c.outDef,
      outs.map((t, i) => (c.outNumbers[i] && t._trace === null ? t.item() : t)),
    );
  };
  const jitted = call as Jitted<A, R>;
  Object.defineProperty(jitted, "traces", { get: () => traces });
  jitted.lower = (...args: A) => compile(args).fused;
  return jitted;
}
