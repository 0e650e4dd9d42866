/**
 * @file `ad.jit`: trace once per input signature (shapes, dtypes, pytree structure and static
 * leaves), simplify the Program, cache it, and run it. Run on concrete tensors, the compiled
 * program calls the backend's kernels directly — no promotion, no shape rules, no interpreter
 * dispatch per operation. Called inside another transform (`grad(jit(f))`, `jvp`, nesting), it
 * evaluates the same program through `bind`, so that transform sees every primitive.
 */

import { type Backend, type DeviceBuffer, getBackend } from "../backend/backend.js";
import { isAnomalyEnabled } from "../core/anomaly-mode.js";
import type { Aval, Primitive } from "../core/primitive.js";
import { type Atom, type Program, Var } from "../core/program.js";
import { openScratch, withoutScratch } from "../core/scratch.js";
import { Tensor } from "../core/tensor.js";
import { isFloat, isHalf } from "../dtype.js";
import { AnomalyError } from "../errors.js";
import { sizeOf } from "../shape.js";
import { flatten, showTreeDef, unflatten } from "../tree.js";
import { checkFunction } from "./args.js";
import { type Barrier, fuse } from "./fuse.js";
import { type SimplifyStats, simplify } from "./simplify.js";
import { type Staged, stage, toInputTensor } from "./stage.js";

interface Compiled extends Staged {
  /** The simplified program, evaluated through bind under other transforms. */
  readonly optimized: Program;
  /** The same with elementwise chains fused: what runs on concrete inputs. */
  readonly fused: Program;
  /** `fused`, prepared for direct execution. */
  readonly plan: Plan;
  readonly stats: SimplifyStats;
}

/**
 * Evaluate a compiled program through bind. When anomaly detection finds a NaN/Inf there, re-run
 * the user's function op by op first (as JAX's debug_nans): the staged program has lost the call
 * sites, and the eager re-run names the primitive and the user's line of the forward operation.
 */
function evaluateChecked(program: Program, ins: Tensor[], eager: () => unknown): Tensor[] {
  try {
    return program.evaluate(ins);
  } catch (e) {
    if (e instanceof AnomalyError && isAnomalyEnabled()) eager();
    throw e;
  }
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

/** One step of a compiled program: where its operands are, where its results go. */
interface Step {
  readonly prim: Primitive<unknown>;
  readonly params: unknown;
  /** Per operand: an environment slot, or the literal tensor (read at run time: it may be rebound in place). */
  readonly ins: readonly (number | Tensor)[];
  readonly outs: readonly number[];
  readonly outAvals: readonly Aval[];
  /** Slots whose last reader is this step (released after it, so peak memory stays low). */
  readonly frees: readonly number[];
  /** 16-bit float results to round after the kernel (as the eval interpreter does). */
  readonly roundHalf: boolean;
}

/** A program prepared for direct execution: variables become slots of a flat environment. */
interface Plan {
  readonly slots: number;
  readonly inputs: readonly number[];
  readonly steps: readonly Step[];
  readonly outputs: readonly (number | Tensor)[];
  /** No step runs other code (no higher-order primitive): the intermediates are private. */
  readonly private: boolean;
}

/** Kernels that round their 16-bit float results themselves. */
const SELF_ROUNDING = new Set([
  "convert_element_type",
  "fused",
  "fused_program",
  "matmul_epilogue",
  "sum_prologue",
]);

function planOf(p: Program): Plan {
  const slot = new Map<Var, number>();
  const slotOf = (v: Var): number => {
    let k = slot.get(v);
    if (k === undefined) slot.set(v, (k = slot.size));
    return k;
  };
  const ref = (a: Atom): number | Tensor => (a instanceof Var ? slotOf(a) : a.value);
  const inputs = p.inputs.map(slotOf);
  const steps = p.eqns.map((e) => ({
    prim: e.prim,
    params: e.params,
    ins: e.inputs.map(ref),
    outs: e.outs.map(slotOf),
    outAvals: e.outs.map((v) => v.aval),
    frees: [] as number[],
    roundHalf: !SELF_ROUNDING.has(e.prim.name) && e.outs.some((v) => isHalf(v.aval.dtype)),
  }));
  const outputs = p.outputs.map(ref);
  // Release each slot after its last reader (never the program's outputs).
  const kept = new Set(outputs.filter((o): o is number => typeof o === "number"));
  const seen = new Set<number>();
  for (let i = steps.length - 1; i >= 0; i--)
    for (const x of steps[i]!.ins)
      if (typeof x === "number" && !seen.has(x)) {
        seen.add(x);
        if (!kept.has(x)) steps[i]!.frees.push(x);
      }
  const priv = steps.every((st) => st.prim.evaluate === undefined);
  return { slots: slot.size, inputs, steps, outputs, private: priv };
}

/**
 * Run a planned program on concrete tensors by calling kernels directly. Its intermediates never
 * reach the caller, so a scratch scope gives their memory back as soon as the run ends (wasm
 * blocks otherwise wait for finalizers, which a synchronous loop never lets run): the next call
 * reuses them. Programs with higher-order steps (which may run other code) skip it.
 */
function runDirect(plan: Plan, args: readonly Tensor[]): Tensor[] {
  const backend = args[0]?._backend ?? getBackend();
  if (!plan.private) return runSteps(plan, args, backend);
  const scope = openScratch(backend);
  let outs: Tensor[] | null = null;
  try {
    outs = runSteps(plan, args, backend);
  } finally {
    scope.close(outs);
  }
  return outs;
}

function runSteps(plan: Plan, args: readonly Tensor[], backend: Backend): Tensor[] {
  const env: (Tensor | null)[] = new Array(plan.slots).fill(null);
  for (let i = 0; i < plan.inputs.length; i++) env[plan.inputs[i]!] = args[i]!;
  for (const st of plan.steps) {
    const n = st.ins.length;
    const ins: Tensor[] = new Array(n);
    for (let k = 0; k < n; k++) {
      const x = st.ins[k]!;
      ins[k] = typeof x === "number" ? env[x]! : x;
    }
    if (st.prim.evaluate !== undefined) {
      const outs = st.prim.evaluate(ins, st.params);
      for (let j = 0; j < st.outs.length; j++) env[st.outs[j]!] = outs[j]!;
    } else {
      const bufs: DeviceBuffer[] = new Array(n);
      for (let k = 0; k < n; k++) bufs[k] = ins[k]!._buf!;
      const res = st.prim.impl(backend, bufs, ins, st.params, st.outAvals);
      for (let j = 0; j < st.outs.length; j++) {
        const av = st.outAvals[j]!;
        let b = res[j]!;
        if (st.roundHalf && isHalf(av.dtype)) b = backend.cast(b, sizeOf(av.shape), "float32", av.dtype);
        env[st.outs[j]!] = new Tensor(av.shape as number[], av.dtype, av.weakType, b, backend, null);
      }
    }
    for (const k of st.frees) env[k] = null;
  }
  return plan.outputs.map((o) => (typeof o === "number" ? env[o]! : o));
}

/** The backend a call runs on: its first tensor argument's, else the current one. */
function backendOf(leaves: readonly unknown[]): Backend {
  for (const l of leaves) if (l instanceof Tensor && l._backend !== null) return l._backend;
  return getBackend();
}

/** Unary kernels the wasm backend runs as SIMD polynomials on large float32-stored arrays. */
const WASM_TRANSCENDENTAL = new Set(["exp", "log", "tanh", "logistic"]);
/**
 * Kernels that branch on the data in JS (a select, a comparison, max/min, logic, sign). On random
 * data half the branches mispredict: a fused JS loop of relu's `x > 0 ? x : 0` costs ~25 ns per
 * element, the wasm backend's branch-free kernels a tenth of that. Its compiled fused loops are
 * branch-free too (`select`, SIMD bit-selects) for float32, float64 and bool values, so only the
 * choices it cannot compile (int32 and 16-bit floats, `sign`) stay out of fused kernels.
 */
const WASM_BRANCH_FREE = new Set([
  "select",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
  "max",
  "min",
  "and",
  "or",
  "not",
  "sign",
]);
const WASM_LOOP_TYPES = new Set<string>(["float32", "float64", "bool"]);

/**
 * What to keep out of fused kernels on `backend`. Over large arrays the wasm backend runs float32
 * exp, log, tanh and sigmoid as SIMD polynomials an order of magnitude faster than `Math` (tanh
 * costs ~60 ns per element in V8), so those stay its own kernels there, as do data-dependent
 * choices its fused loops do not compile. Arithmetic still fuses.
 */
function barrierOf(backend: Backend): Barrier | undefined {
  if (backend.name !== "wasm") return undefined;
  const min = (backend as { thresholds?: { elementwise?: number } }).thresholds?.elementwise ?? 2048;
  return (e) => {
    const op = e.prim.name;
    const out = e.outs[0]!;
    if (sizeOf(out.shape) < min) return false;
    if (WASM_BRANCH_FREE.has(op))
      return (
        op === "sign" ||
        !WASM_LOOP_TYPES.has(out.dtype) ||
        e.inputs.some((a) => !WASM_LOOP_TYPES.has(a.aval.dtype))
      );
    return WASM_TRANSCENDENTAL.has(op) && out.dtype !== "float64" && isFloat(out.dtype);
  };
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
  const compile = (args: A, [leaves, def] = flatten(args)): Compiled => {
    const backend = backendOf(leaves);
    const key = `${backend.name}|${showTreeDef(def)}|${leaves.map(leafKey).join(";")}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    traces++;
    // The compiled program and its constants live in the cache: never released by a scratch
    // scope that happens to be open (a jitted function first called inside a backward pass).
    return withoutScratch(backend, () => {
      const staged = stage(f as (...a: never[]) => unknown, args, "jit");
      const stats: SimplifyStats = { folded: 0, merged: 0, removed: 0 };
      // Only constants made while tracing are folded: captured tensors may change in place later.
      const optimized = simplify(staged.program, stats, (l) => l.value._id >= staged.firstId);
      // Only literals made while tracing become kernel constants (captured ones may change in place).
      const fused = fuse(optimized, (l) => l.value._id >= staged.firstId, barrierOf(backend));
      const c: Compiled = { ...staged, optimized, fused, plan: planOf(fused), stats };
      if (staged.reusable) cache.set(key, c);
      return c;
    });
  };
  const call = (...args: A): R => {
    const flat = flatten(args);
    const c = compile(args, flat);
    const leaves = flat[0];
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
    const outs = direct ? runDirect(c.plan, ins) : evaluateChecked(c.optimized, ins, () => f(...args));
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
