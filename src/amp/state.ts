/**
 * @file The autocast policy (read by the ops): inside `ad.amp.autocast(dtype, fn)` the
 * matmul family computes in the low-precision dtype, while reductions, softmax and losses of
 * low-precision inputs compute in float32 (as PyTorch's autocast lists).
 */

import type { Tensor } from "../core/tensor.js";
import { type DType, isHalf } from "../dtype.js";
import { astype } from "../ops/convert.js";

let lowDtype: DType | null = null;

/** @internal The active autocast dtype, or null. */
export function autocastDtype(): DType | null {
  return lowDtype;
}

/** @internal Run `fn` with autocast set to `dtype` (null turns it off), restoring the previous state. */
export function withAutocast<T>(dtype: DType | null, fn: () => T): T {
  const prev = lowDtype;
  lowDtype = dtype;
  try {
    return fn();
  } finally {
    lowDtype = prev;
  }
}

/** @internal Operands of a matmul-family op: float32 ones are cast to the autocast dtype. */
export function castForMatmul(xs: Tensor[]): Tensor[] {
  const d = lowDtype;
  if (d === null) return xs;
  return xs.map((x) => (x.dtype === "float32" ? astype(x, d) : x));
}

/** @internal A reduction's operand: a low-precision one is computed in float32 under autocast. */
export function castForReduction(x: Tensor): Tensor {
  return lowDtype !== null && isHalf(x.dtype) ? astype(x, "float32") : x;
}
