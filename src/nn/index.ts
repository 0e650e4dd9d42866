/**
 * @file `ad.nn`: PyTorch-style modules (`Module`, `Linear`, `Embedding`, `LayerNorm`, `Dropout`,
 * `Sequential`, `MultiHeadAttention`, `Conv2d`, `LoRALinear`, activations), their functional
 * forms, losses, initialisers (`ad.nn.init`), and `functionalCall` for using module parameters
 * with the functional transforms.
 *
 * @example
 * const model = new ad.nn.Sequential(new ad.nn.Linear(4, 16), new ad.nn.ReLU(), new ad.nn.Linear(16, 3));
 * const loss = ad.nn.crossEntropy(model.forward(x), labels);
 * loss.backward();
 */

export { elu, gelu, logSoftmax, relu, sigmoid, softmax, softplus, tanh } from "./activations.js";
export {
  type AttentionOptions,
  MultiHeadAttention,
  type MultiHeadAttentionCallOptions,
  type MultiHeadAttentionOptions,
  scaledDotProductAttention,
} from "./attention.js";
export { Conv2d, type Conv2dLayerOptions, type Conv2dOptions, conv2d, type Pair } from "./conv.js";
export { dropout, embedding, flatten, layerNorm, leakyRelu, linear, silu } from "./functional.js";
export * as init from "./init.js";
export {
  Dropout,
  Embedding,
  type EmbeddingOptions,
  Flatten,
  GELU,
  Identity,
  LayerNorm,
  type LayerNormOptions,
  LeakyReLU,
  Linear,
  type LinearOptions,
  LogSoftmax,
  LoRALinear,
  type LoRAOptions,
  type ParamDType,
  ReLU,
  Sequential,
  Sigmoid,
  SiLU,
  Softmax,
  Softplus,
  Tanh,
  type TensorModule,
} from "./layers.js";
export {
  type BCEWithLogitsOptions,
  binaryCrossEntropyWithLogits,
  type ClassificationLossOptions,
  type CrossEntropyOptions,
  crossEntropy,
  huberLoss,
  type LossOptions,
  l1Loss,
  mseLoss,
  nllLoss,
  type Reduction,
} from "./losses.js";
export {
  type AnyModule,
  functionalCall,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  Module,
  manualSeed,
  StateDictError,
} from "./module.js";
