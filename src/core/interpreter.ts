/**
 * @file `bind`, the one door every primitive call goes through, and the interpreter stack.
 *
 * "A transform is an interpreter" (autodidax): `bind` hands each primitive call to the current
 * interpreter. A transform interpreter unwraps the tracers it owns (identity of the owner, never
 * a level number, decides ownership), evaluates the primitive one level down by making its
 * parent current, and wraps the results. Values it does not own are constants to it. The eval
 * interpreter at the bottom runs kernels.
 */

import { getBackend } from "../backend/backend.js";
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
    for (const a of args) if (a._trace !== null) throw escapedTracer(prim.name, a);
    if (prim.evaluate !== undefined) {
      // A higher-order primitive: its body runs here with library ops, recorded and checked as usual.
      return prim.evaluate(args as Tensor[], params);
    }
    const outAvals = prim.abstractEval(args, params);
    const backend = args[0]?._backend ?? getBackend();
    const bufs = prim.impl(
      backend,
      args.map((a) => a._buf!),
      args,
      params,
      outAvals,
    );
    // 16-bit float results are computed in float32 and rounded to their format here, once.
    for (let i = 0; i < outAvals.length; i++) {
      const av = outAvals[i]!;
      if (isHalf(av.dtype) && prim.name !== "convert_element_type")
        bufs[i] = backend.cast(bufs[i]!, sizeOf(av.shape), "float32", av.dtype);
    }
    const outs = outAvals.map(
      (av, i) => new Tensor(av.shape as number[], av.dtype, av.weakType, bufs[i]!, backend, null),
    );
    if (evalHooks.length > 0) for (const h of evalHooks) h(prim as Primitive<unknown>, outs, args);
    if (isAnomalyEnabled()) checkResult(prim.name, outs, args);
    // Eager autograd: record when an input requires grad (and recording is on).
    if (isGradEnabled()) {
      for (const a of args)
        if (a._requiresGrad) {
          recordEager(prim as Primitive<unknown>, params, args, outs);
          break;
        }
    }
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

/** Apply a primitive: the only way any operation reaches a kernel or a transform. */
export function bind<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor[] {
  return current.process(prim, args, params);
}

/** `bind` for single-output primitives. */
export function bind1<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor {
  return current.process(prim, args, params)[0]!;
}
