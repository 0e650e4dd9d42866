/** @file `ad.amp`: mixed precision — autocast and dynamic loss scaling. */

import { type DType, isHalf } from "../dtype.js";
import { DTypeError, TransformError } from "../errors.js";
import { withAutocast } from "./state.js";

/**
 * Run `fn` with automatic mixed precision: matmuls (and the layers built on them) compute in
 * `dtype` ("float16" or "bfloat16"), while reductions, softmax and losses of low-precision values
 * compute in float32. Returns `fn`'s result.
 * @example
 * const y = ad.amp.autocast("bfloat16", () => ad.matmul(a, b)); // y.dtype === "bfloat16"
 */
export function autocast<T>(dtype: DType, fn: () => T): T {
  if (!isHalf(dtype))
    throw new DTypeError(`autocast: dtype must be "float16" or "bfloat16", got ${JSON.stringify(dtype)}`);
  if (typeof fn !== "function") throw new TransformError("autocast: expected a function");
  return withAutocast(dtype, fn);
}

export { GradScaler, type GradScalerOptions, type ScalableOptimizer } from "./grad-scaler.js";
