/**
 * @file `bind`, the one door every primitive call goes through, and the interpreter stack.
 *
 * "A transform is an interpreter" (autodidax): `bind` hands each primitive call to the current
 * interpreter. A transform interpreter unwraps the tracers it owns (identity of the owner, never
 * a level number, decides ownership), evaluates the primitive one level down by making its
 * parent current, and wraps the results. Values it does not own are constants to it. The eval
 * interpreter at the bottom runs kernels.
 */

import { type DeviceBuffer, getBackend } from "../backend/backend.js";
import { isHalf } from "../dtype.js";
import { TransformError } from "../errors.js";
import { fmtShape, sizeOf } from "../shape.js";
import { checkResult, isAnomalyEnabled } from "./anomaly-mode.js";
import { isGradEnabled } from "./grad-mode.js";
import type { Primitive } from "./primitive.js";
import { recordEager } from "./tape.js";
import { Tensor } from "./tensor.js";

export interface Interpreter {
  /** The interpreter that evaluates this one's primal computations. */
  readonly parent: Interpreter | null;
  /** Apply `prim` to `args` (tracers of this interpreter, or constants). */
  process<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor[];
  /** The value one level down behind a tracer this interpreter owns (used for reading). */
  concrete(t: Tensor): Tensor;
}

/** Hooks run on every concrete primitive result (anomaly detection uses this). */
export type EvalHook = (prim: Primitive<unknown>, outs: Tensor[], args: readonly Tensor[]) => void;
const evalHooks: EvalHook[] = [];

/** @internal Register a hook called after every kernel. */
export function addEvalHook(h: EvalHook): () => void {
  evalHooks.push(h);
  return () => {
    const i = evalHooks.indexOf(h);
    if (i >= 0) evalHooks.splice(i, 1);
  };
}

/** The bottom interpreter: runs the primitive's kernel on the backend. */
class EvalInterpreter implements Interpreter {
  readonly parent = null;

  process<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor[] {
    // The hot path of every eager operation: plain indexed loops, no closures or temporary arrays
    // beyond the buffer list the kernel takes.
    const n = args.length;
    let grad = false;
    for (let i = 0; i < n; i++) {
      const a = args[i]!;
      if (a._trace !== null) throw escapedTracer(prim.name, a);
      if (a._requiresGrad) grad = true;
    }
    if (prim.evaluate !== undefined) {
      // A higher-order primitive: its body runs here with library ops, recorded and checked as usual.
      return prim.evaluate(args as Tensor[], params);
    }
    const outAvals = prim.abstractEval(args, params);
    const backend = (n > 0 ? args[0]!._backend : null) ?? getBackend();
    const ins: DeviceBuffer[] = new Array(n);
    for (let i = 0; i < n; i++) ins[i] = args[i]!._buf!;
    const bufs = prim.impl(backend, ins, args, params, outAvals);
    const m = outAvals.length;
    const outs: Tensor[] = new Array(m);
    for (let i = 0; i < m; i++) {
      const av = outAvals[i]!;
      let b = bufs[i]!;
      // 16-bit float results are computed in float32 and rounded to their format here, once.
      if (isHalf(av.dtype) && prim.name !== "convert_element_type")
        b = backend.cast(b, sizeOf(av.shape), "float32", av.dtype);
      outs[i] = new Tensor(av.shape as number[], av.dtype, av.weakType, b, backend, null);
    }
    if (evalHooks.length > 0) for (const h of evalHooks) h(prim as Primitive<unknown>, outs, args);
    if (isAnomalyEnabled()) checkResult(prim.name, outs, args);
    // Eager autograd: record when an input requires grad (and recording is on).
    if (grad && isGradEnabled()) recordEager(prim as Primitive<unknown>, params, args, outs);
    return outs;
  }

  concrete(t: Tensor): Tensor {
    return t;
  }
}

function escapedTracer(op: string, t: Tensor): TransformError {
  return new TransformError(
    `${op}: got a traced tensor (shape ${fmtShape(t.shape)}) from a transform that has already returned ` +
      "(an escaped tracer). Return values from the transformed function instead of storing them outside it.",
  );
}

export const evalInterpreter: Interpreter = new EvalInterpreter();
let current: Interpreter = evalInterpreter;

/** The interpreter that receives `bind` calls right now. */
export function currentInterpreter(): Interpreter {
  return current;
}

/** Run `fn` with `interp` current, restoring the previous one afterwards. */
export function withInterpreter<T>(interp: Interpreter, fn: () => T): T {
  const prev = current;
  current = interp;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/**
 * `bind` with `interp` current: how a transform evaluates a primitive one level down. The same as
 * `withInterpreter(interp, () => bind(prim, args, params))` without allocating a closure per
 * operation (this runs once per primitive under every transform).
 */
export function bindAt<P>(
  interp: Interpreter,
  prim: Primitive<P>,
  args: readonly Tensor[],
  params: P,
): Tensor[] {
  const prev = current;
  current = interp;
  try {
    return interp.process(prim, args, params);
  } finally {
    current = prev;
  }
}

/** Apply a primitive: the only way any operation reaches a kernel or a transform. */
export function bind<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor[] {
  return current.process(prim, args, params);
}

/** `bind` for single-output primitives. */
export function bind1<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor {
  return current.process(prim, args, params)[0]!;
}
