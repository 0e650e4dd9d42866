/**
 * @file The activation functions under `ad.nn` (as `torch.nn.functional`): the core operations
 * re-exported, plus `elu`.
 */

import type { Tensor, TensorLike } from "../core/tensor.js";
import { expm1, greater, mul, toTensor, where } from "../ops/index.js";

export { gelu, logSoftmax, relu, sigmoid, softmax, softplus, tanh } from "../ops/index.js";

/**
 * ELU: x for x > 0, alpha·(eˣ − 1) otherwise (default alpha 1).
 * @example
 * ad.nn.elu(ad.tensor([-1, 2])).toArray(); // [-0.632..., 2]
 */
export function elu(x: TensorLike, alpha = 1): Tensor {
  const t = toTensor(x, "elu");
  return where(greater(t, 0), t, mul(expm1(where(greater(t, 0), 0, t)), alpha));
}
