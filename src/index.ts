/**
 * @file adjoint: automatic differentiation for TypeScript and JavaScript. The public surface
 * only: everything here is re-exported from the modules that define it.
 *
 * @example
 * import * as ad from "adjoint";
 * ad.grad((x) => ad.mul(x, ad.sin(x)))(1); // sin 1 + cos 1
 */

export * as amp from "./amp/index.js";
export {
  type BackendName,
  dispose,
  getBackendName,
  getNumThreads,
  init,
  ready,
  setBackend,
  setNumThreads,
  type WasmStats,
  wasmStats,
} from "./backend/select.js";
export { noGrad } from "./core/grad-mode.js";
export type { Aval } from "./core/primitive.js";
export { type Atom, type Eqn, Lit, Program, Var } from "./core/program.js";
export { type NestedArray, Tensor, type TensorLike } from "./core/tensor.js";
export { detectAnomaly, setDetectAnomaly } from "./debug/anomaly.js";
export { type ExplainOptions, type ExplainRow, Explanation, explain } from "./debug/explain.js";
export { type GradcheckOptions, type GradcheckResult, gradcheck, gradgradcheck } from "./debug/gradcheck.js";
export type { DType } from "./dtype.js";
export { Dual, type DualLike, derivative, nthDerivative } from "./dual.js";
export * as autograd from "./eager/index.js";
export {
  AdError,
  AnomalyError,
  DTypeError,
  GraphFreedError,
  InPlaceError,
  ShapeError,
  TransformError,
} from "./errors.js";
export {
  customLinearSolve,
  customRoot,
  type FixedPointOptions,
  fixedPoint,
  type LinearSolveOptions,
} from "./implicit/index.js";
export * as io from "./io/index.js";
export * as linalg from "./linalg/index.js";
export * as nn from "./nn/index.js";
export { type OdeintOptions, odeint } from "./ode/odeint.js";
export {
  type AllCloseOptions,
  type ArgOptions,
  abs,
  acos,
  add,
  allclose,
  arange,
  argmax,
  argmin,
  asin,
  astype,
  at,
  atan,
  atan2,
  broadcastTo,
  type CreateOptions,
  ceil,
  concat,
  cos,
  cosh,
  div,
  dot,
  einsum,
  equal,
  erf,
  exp,
  expandDims,
  expm1,
  eye,
  flip,
  floor,
  full,
  gather,
  gelu,
  greater,
  greaterEqual,
  type Index,
  isfinite,
  isnan,
  less,
  lessEqual,
  linspace,
  log,
  log1p,
  logicalAnd,
  logicalNot,
  logicalOr,
  logSoftmax,
  logsumexp,
  matmul,
  max,
  maximum,
  mean,
  min,
  minimum,
  mul,
  type NormalizeOptions,
  neg,
  normalize,
  notEqual,
  ones,
  onesLike,
  outer,
  pad,
  pow,
  prod,
  type ReduceOptions,
  reciprocal,
  relu,
  reshape,
  round,
  rsqrt,
  scalar,
  scatterAdd,
  sigmoid,
  sign,
  sin,
  sinh,
  slice,
  softmax,
  softplus,
  split,
  sqrt,
  square,
  squeeze,
  stack,
  std,
  stopGradient,
  sub,
  sum,
  type TensorData,
  type TensorOptions,
  take,
  tan,
  tanh,
  tensor,
  transpose,
  type VarOptions,
  variance,
  variance as var,
  where,
  zeros,
  zerosLike,
} from "./ops/index.js";
export * as optim from "./optim/index.js";
export * as random from "./random/index.js";
export * as solvers from "./solvers/index.js";
export { SparseTensor } from "./sparse.js";
export { cond, fori, type ScanOptions, scan, whileLoop } from "./transforms/control.js";
export * from "./transforms/custom.js";
export { hessian, hvp, type JacobianOptions, jacfwd, jacobian, jacrev } from "./transforms/jacobian.js";
export { jet } from "./transforms/jet.js";
export { type Jitted, jit } from "./transforms/jit.js";
export { jvp } from "./transforms/jvp.js";
export { type GradOptions, grad, linearize, valueAndGrad, vjp } from "./transforms/reverse.js";
export { trace } from "./transforms/stage.js";
export { type AxisSpec, type VmapOptions, type Vmapped, vmap } from "./transforms/vmap.js";
export type { TreeDef } from "./tree.js";
export * as tree from "./tree.js";
