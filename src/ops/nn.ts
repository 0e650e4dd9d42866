/** @file Neural-network functions: softmax, logSoftmax (stable), normalize (finite gradient at 0). */

import { castForReduction } from "../amp/state.js";
import type { Tensor, TensorLike } from "../core/tensor.js";
import { inOp } from "../errors.js";
import { promoteArgs } from "./convert.js";
import { div, equal, exp, isfinite, maximum, sqrt, square, stopGradient, sub, where } from "./elementwise.js";
import { logsumexp, max, sum } from "./reduction.js";

/**
 * Softmax along `axis` (default -1); stable for any magnitude.
 * @example ad.softmax(ad.tensor([0, 0])).toArray(); // [0.5, 0.5]
 */
export function softmax(x: TensorLike, axis = -1): Tensor {
  return inOp("softmax", () => {
    const z = exp(shifted(x, axis, "softmax"));
    return div(z, sum(z, { axis, keepdims: true }));
  });
}

/** x - max(x) along `axis`, with the max held constant (and 0 where it is infinite). */
function shifted(x: TensorLike, axis: number, op: string): Tensor {
  const t = castForReduction(promoteArgs(op, [x], "float")[0]!);
  const m = stopGradient(max(t, { axis, keepdims: true }));
  return sub(t, where(isfinite(m), m, 0));
}

/**
 * log(softmax(x)) computed as x - logsumexp(x): no overflow, no log(0).
 * @example ad.logSoftmax(ad.tensor([0, 1000])).toArray(); // [-1000, 0]
 */
export function logSoftmax(x: TensorLike, axis = -1): Tensor {
  return inOp("logSoftmax", () => {
    // Subtracting the max first keeps full precision where x - logsumexp(x) would round at |x| ~ 1e4.
    const s = shifted(x, axis, "logSoftmax");
    return sub(s, logsumexp(s, { axis, keepdims: true }));
  });
}

/** @internal The L2 norm over `axis` with gradient 0 (a subgradient) at the origin. */
export function safeNorm(x: Tensor, axis: number | readonly number[] | undefined, keepdims: boolean): Tensor {
  const s = sum(square(x), { axis, keepdims });
  const zero = equal(s, 0);
  // Double-where: sqrt is only differentiated where s > 0.
  return where(zero, 0, sqrt(where(zero, 1, s)));
}

export interface NormalizeOptions {
  axis?: number;
  eps?: number;
}

/**
 * x / max(‖x‖₂, eps) along `axis` (default -1, eps 1e-12).
 * @example ad.normalize(ad.tensor([3, 4])).toArray(); // [0.6, 0.8]
 */
export function normalize(x: TensorLike, opts: NormalizeOptions = {}): Tensor {
  return inOp("normalize", () => {
    const t = promoteArgs("normalize", [x], "float")[0]!;
    return div(t, maximum(safeNorm(t, opts.axis ?? -1, true), opts.eps ?? 1e-12));
  });
}
