/**
 * @file PyTorch-style eager autograd on the one tape: `backward()` with `+=` accumulation into
 * `.grad`, `autograd.grad`, hooks, `detach`, and in-place methods guarded by version counters.
 * Operations on tensors that require grad are recorded by the eval interpreter as `Node`s (the
 * same Wengert list the functional transforms use); here the graph is walked backward with the
 * same `backwardPass` and VJP rules, and freed afterwards unless retained.
 */

import { isGradEnabled, withGradMode } from "../core/grad-mode.js";
import { openScratch, type ScratchScope } from "../core/scratch.js";
import { backwardPass, type GradHook, type Node, type Ref, refOf, runHooks, topoSort } from "../core/tape.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { DTypeError, GraphFreedError, InPlaceError, ShapeError, TransformError } from "../errors.js";
import { toTensor } from "../ops/convert.js";
import { add, astype, broadcastTo, div, full, mul, onesLike, stopGradient, sub } from "../ops/index.js";
import { fmtShape, shapeEq } from "../shape.js";

export interface BackwardOptions {
  /** Keep the graph (its saved values) for another backward pass (default: `createGraph`, as PyTorch). */
  retainGraph?: boolean;
  /** Record the backward pass itself, so the gradients can be differentiated again. */
  createGraph?: boolean;
}

export interface AutogradGradOptions extends BackwardOptions {
  /** Cotangents of the outputs (default: 1 for scalar outputs). */
  gradOutputs?: TensorLike | readonly TensorLike[];
  /** Give `null` (instead of an error) for an input the outputs do not depend on. */
  allowUnused?: boolean;
}

function checkEager(t: Tensor, op: string): void {
  if (t._trace !== null)
    throw new TransformError(
      `${op}: not available on a traced tensor inside a transform; use the functional API (ad.grad, ad.vjp) there`,
    );
}

function seedFor(out: Tensor, g: TensorLike | undefined, op: string, i: number): Tensor {
  if (g === undefined) {
    if (out.size !== 1)
      throw new TransformError(
        `${op}: output ${i} has shape ${fmtShape(out.shape)}; a non-scalar output needs a gradOutput of that shape`,
      );
    return onesLike(out);
  }
  const t = toTensor(g, op);
  if (!shapeEq(t.shape, out.shape))
    throw new ShapeError(
      `${op}: gradOutput ${i} has shape ${fmtShape(t.shape)} but the output has shape ${fmtShape(out.shape)}`,
    );
  return t.dtype === out.dtype ? t : astype(t, out.dtype);
}

/**
 * Primitives whose name differs from the op a user called (JAX names): InPlaceError names both,
 * so `x.sigmoid()` then `mul_` reports "sigmoid", not only the primitive "logistic".
 */
const USER_OP: Readonly<Record<string, string>> = {
  logistic: "sigmoid",
  select: "where",
  rev: "flip",
  concatenate: "concat",
  reduce_sum: "sum",
  reduce_max: "max",
  reduce_min: "min",
  convert_element_type: "astype",
};

/** Fail on a freed graph or on a saved value modified in place since it was recorded. */
function checkNode(node: Node): void {
  const name = node.prim?.name ?? "input";
  if (node.freed)
    throw new GraphFreedError(
      `backward: trying to go through the graph a second time (at ${name}): its saved values were freed by the first backward; pass { retainGraph: true } to the first call`,
    );
  const v = node.savedVersions;
  if (v === null) return;
  const vals = [...node.inputs, ...node.outs];
  for (let k = 0; k < vals.length; k++) {
    const want = v[k]!;
    const t = vals[k]!;
    if (want >= 0 && t._version !== want) {
      const what = k < node.inputs.length ? `input ${k}` : `output ${k - node.inputs.length}`;
      const op = USER_OP[name] === undefined ? name : `${USER_OP[name]} (primitive ${name})`;
      throw new InPlaceError(
        `backward: ${what} of ${op} (shape ${fmtShape(t.shape)}) was modified by an in-place operation after ${name} saved it for the backward pass (version ${t._version}, expected ${want}); use an out-of-place operation, or clone() before modifying`,
      );
    }
  }
}

/** Run one eager backward pass from `outs` with cotangents `seeds`; returns the adjoints. */
function run(
  outs: readonly Tensor[],
  seeds: readonly Tensor[],
  opts: BackwardOptions,
  onGrad?: (node: Node, index: number, g: Tensor) => Tensor,
): { adj: Map<Node, (Tensor | undefined)[]>; order: Node[]; scope: ScratchScope } {
  const refs: [Ref, Tensor][] = outs.map((o, i) => [refOf(o), seeds[i]!]);
  const order = topoSort(refs.map(([r]) => r.node));
  const hooks = (node: Node, k: number, g: Tensor) => {
    const h = runHooks(node.hooks?.[k], g);
    return onGrad ? onGrad(node, k, h) : h;
  };
  // The pass's cotangents are private, and their buffers are released when the caller closes the
  // scope, unless the pass is itself recorded (createGraph) or user code sees them: a hook, or a
  // higher-order primitive (customVjp's bwd, a checkpointed or control-flow body, a solver's
  // callback) that may keep a tensor it was given.
  const scope =
    (opts.createGraph ?? false) || order.some(seenByUserCode)
      ? openScratch(null)
      : openScratch(outs[0]!._backend);
  let adj: Map<Node, (Tensor | undefined)[]>;
  try {
    adj = withGradMode(opts.createGraph ?? false, () =>
      backwardPass(refs, { order, before: checkNode, onGrad: hooks }),
    );
  } catch (e) {
    scope.close(null);
    throw e;
  }
  // As PyTorch: a recorded backward reuses the saved values, so it keeps the graph by default.
  if (!(opts.retainGraph ?? opts.createGraph ?? false)) for (const n of order) n.free();
  return { adj, order, scope };
}

function seenByUserCode(n: Node): boolean {
  if (n.prim?.evaluate !== undefined) return true;
  return n.hooks?.some((h) => h !== undefined && h.length > 0) ?? false;
}

/**
 * `y.backward()`: accumulate (`+=`) d(y)/d(leaf) into `.grad` of every leaf that requires grad.
 * @example
 * const x = ad.tensor([1, 2], { requiresGrad: true });
 * x.mul(x).sum().backward();
 * x.grad!.toArray(); // [2, 4]
 */
export function backward(y: Tensor, gradOutput?: TensorLike, opts: BackwardOptions = {}): void {
  checkEager(y, "backward");
  if (!y._requiresGrad)
    throw new TransformError(
      "backward: this tensor does not require grad and has no recorded history; create its inputs with { requiresGrad: true }",
    );
  const seed = seedFor(y, gradOutput, "backward", 0);
  const { adj, scope } = run([y], [seed], opts);
  const kept: Tensor[] = [];
  try {
    withGradMode(opts.createGraph ?? false, () => {
      for (const [node, slot] of adj) {
        if (node.prim !== null) continue;
        const g0 = slot[0];
        if (g0 === undefined) continue;
        const leaf = node.outs[0]!;
        const g = runHooks(node.hooks?.[0], g0);
        leaf.grad = leaf.grad === null ? g : add(leaf.grad, g);
        kept.push(leaf.grad);
      }
    });
  } catch (e) {
    scope.close(null);
    throw e;
  }
  scope.close(kept);
}

/**
 * Gradients of `outputs` with respect to `inputs` (tensors that require grad), without touching
 * `.grad`. Frees the graph unless `retainGraph`.
 * @example
 * const x = ad.tensor(3, { requiresGrad: true });
 * const [g] = ad.autograd.grad(x.mul(x), x); // g = 6
 */
export function grad(
  outputs: Tensor | readonly Tensor[],
  inputs: Tensor | readonly Tensor[],
  opts: AutogradGradOptions = {},
): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? [...outputs] : [outputs as Tensor];
  const ins = Array.isArray(inputs) ? [...inputs] : [inputs as Tensor];
  const gos =
    opts.gradOutputs === undefined
      ? []
      : Array.isArray(opts.gradOutputs)
        ? opts.gradOutputs
        : [opts.gradOutputs as TensorLike];
  outs.forEach((o, i) => {
    if (!(o instanceof Tensor)) throw new TransformError(`autograd.grad: output ${i} is not a Tensor`);
    checkEager(o, "autograd.grad");
    if (!o._requiresGrad)
      throw new TransformError(
        `autograd.grad: output ${i} does not require grad (it has no recorded history)`,
      );
  });
  ins.forEach((t, i) => {
    if (!(t instanceof Tensor) || !t._requiresGrad)
      throw new TransformError(
        `autograd.grad: input ${i} does not require grad; create it with { requiresGrad: true }`,
      );
  });
  const seeds = outs.map((o, i) => seedFor(o, gos[i], "autograd.grad", i));
  const want = ins.map((t) => refOf(t));
  const found: (Tensor | null)[] = ins.map(() => null);
  const { adj, scope } = run(outs, seeds, opts, (node, k, g) => {
    want.forEach((r, i) => {
      if (r.node === node && r.index === k) found[i] = g;
    });
    return g;
  });
  const grads = ins.map((_, i) => {
    const r = want[i]!;
    return r.node.prim === null ? (adj.get(r.node)?.[0] ?? null) : found[i]!;
  });
  scope.close(grads);
  grads.forEach((g, i) => {
    if (g === null && !opts.allowUnused)
      throw new TransformError(
        `autograd.grad: input ${i} (shape ${fmtShape(ins[i]!.shape)}) was not used to compute the outputs; pass { allowUnused: true } to get null`,
      );
  });
  return grads;
}

/**
 * Register a hook that sees (and may replace) this tensor's gradient during backward.
 * Returns a function that removes the hook.
 * @example
 * const x = ad.tensor([1, 2], { requiresGrad: true });
 * x.registerHook((g) => g.mul(2));
 */
export function registerHook(t: Tensor, hook: GradHook): HookHandle {
  checkEager(t, "registerHook");
  if (typeof hook !== "function") throw new TransformError("registerHook: expected a function");
  if (!t._requiresGrad)
    throw new TransformError("registerHook: cannot register a hook on a tensor that does not require grad");
  const r = refOf(t);
  const remove = r.node.addHook(r.index, hook);
  return Object.assign(() => remove(), { remove });
}

/**
 * What `registerHook` returns: call it, or call its `remove()` (PyTorch's `RemovableHandle`), to
 * unregister the hook.
 * @example
 * const h = x.registerHook((g) => g.mul(2));
 * h.remove(); // or h()
 */
export type HookHandle = (() => void) & { remove(): void };

/** Make a non-leaf tensor keep its gradient in `.grad` during backward (as PyTorch `retain_grad`). */
export function retainGrad(t: Tensor): void {
  if (t.isLeaf) return;
  registerHook(t, (g) => {
    t.grad = t.grad === null ? g : add(t.grad, g);
  });
}

/** A tensor with the same values and no history; inside a transform, `stopGradient`. */
export function detach(t: Tensor): Tensor {
  if (t._trace !== null) return stopGradient(t);
  return new Tensor(t.shape, t.dtype, t.weakType, t._buf, t._backend, null);
}

/** Set `requiresGrad` on a leaf. */
export function setRequiresGrad(t: Tensor, on: boolean): void {
  checkEager(t, "requiresGrad");
  if (!t.isLeaf)
    throw new TransformError(
      "requiresGrad: can only be changed on a leaf tensor (use detach() for a non-leaf)",
    );
  if (on && !isFloat(t.dtype))
    throw new DTypeError(`requiresGrad: only floating-point tensors can require gradients, got ${t.dtype}`);
  t._requiresGrad = on;
  if (!on) t._ref = null;
}

/**
 * The shared body of the in-place methods: compute the new value from a snapshot of the old
 * one (so the recorded operation sees the old value), then rebind this tensor to it and bump
 * its version counter.
 */
function inPlace(t: Tensor, op: string, compute: (old: Tensor) => Tensor): Tensor {
  checkEager(t, op);
  const leafParam = t._requiresGrad && t.isLeaf;
  if (leafParam && isGradEnabled())
    throw new InPlaceError(
      `${op}: a leaf tensor that requires grad cannot be modified in place while gradients are recorded; wrap parameter updates in ad.noGrad(() => ...)`,
    );
  const old = new Tensor(t.shape, t.dtype, t.weakType, t._buf, t._backend, null);
  old._requiresGrad = t._requiresGrad;
  old._ref = t._ref;
  old._version = t._version;
  let r = compute(old);
  if (!shapeEq(r.shape, t.shape))
    throw new ShapeError(
      `${op}: the result has shape ${fmtShape(r.shape)} but the tensor has shape ${fmtShape(t.shape)}`,
    );
  if (r.dtype !== t.dtype) r = astype(r, t.dtype);
  t._buf = r._buf;
  t._backend = r._backend;
  t._version++;
  if (!leafParam) {
    t._requiresGrad = r._requiresGrad;
    t._ref = r._ref;
    const ref = r._ref;
    if (ref !== null) {
      // The recorded node's output is now this tensor, at its new version.
      const node = ref.node;
      (node.outs as Tensor[])[ref.index] = t;
      const slot = node.inputs.length + ref.index;
      if (node.savedVersions !== null && node.savedVersions[slot]! >= 0)
        node.savedVersions[slot] = t._version;
    }
  }
  return t;
}

export const addInPlace = (t: Tensor, y: TensorLike) => inPlace(t, "add_", (o) => add(o, y));
export const subInPlace = (t: Tensor, y: TensorLike) => inPlace(t, "sub_", (o) => sub(o, y));
export const mulInPlace = (t: Tensor, y: TensorLike) => inPlace(t, "mul_", (o) => mul(o, y));
export const divInPlace = (t: Tensor, y: TensorLike) => inPlace(t, "div_", (o) => div(o, y));
export const copyInPlace = (t: Tensor, src: TensorLike) =>
  inPlace(t, "copy_", () => broadcastTo(astype(toTensor(src, "copy_"), t.dtype), t.shape));
export const fillInPlace = (t: Tensor, v: number) => {
  if (typeof v !== "number") throw new DTypeError(`fill_: expected a number, got ${typeof v}`);
  return inPlace(t, "fill_", () => full(t.shape, v, { dtype: t.dtype }));
};
