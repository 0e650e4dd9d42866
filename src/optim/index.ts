/**
 * @file `ad.optim`: stateful optimizers over eager parameters (`SGD`, `Adam`, `AdamW`,
 * `RMSprop`, applied in place, sparse gradients lazily), gradient clipping and accumulation, an
 * EMA of parameters, learning-rate schedules, and the functional optax-style transformations
 * (`sgd`, `adam`, `adamw`, `rmsprop`, `chain`, `clipByGlobalNorm`, `multiSteps`, `applyUpdates`)
 * over pytrees.
 *
 * @example
 * const opt = new ad.optim.AdamW(model.parameters(), { lr: 1e-3 });
 * loss.backward();
 * ad.optim.clipGradNorm(model.parameters(), 1.0);
 * opt.step();
 * opt.zeroGrad();
 */

export {
  type AdamTransformOptions,
  adam,
  adamw,
  applyUpdates,
  chain,
  clipByGlobalNorm,
  type GradientTransformation,
  type LearningRate,
  type MultiStepsState,
  multiSteps,
  type RMSpropTransformOptions,
  type RuleState,
  rmsprop,
  type SGDTransformOptions,
  sgd,
} from "./functional.js";
export {
  Adam,
  type AdamOptions,
  AdamW,
  Optimizer,
  type ParamGroup,
  type ParamState,
  type ParamsArg,
  RMSprop,
  type RMSpropOptions,
  SGD,
  type SGDOptions,
} from "./optimizers.js";
export {
  CosineAnnealingLR,
  constantSchedule,
  cosineSchedule,
  ExponentialLR,
  GroupScheduler,
  LambdaLR,
  LinearLR,
  LRScheduler,
  type Schedule,
  StepLR,
  stepSchedule,
  warmupCosineSchedule,
  warmupSchedule,
} from "./schedules.js";
export {
  type ClipGradNormOptions,
  clipGradNorm,
  clipGradValue,
  EMA,
  type EMAOptions,
  emaUpdate,
  GradientAccumulator,
} from "./utils.js";
