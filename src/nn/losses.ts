/**
 * @file Loss functions with PyTorch's conventions: `reduction: "mean" | "sum" | "none"` (default
 * mean), class axis 1 for batched logits, int32 class indices, `ignoreIndex` (default −100),
 * per-class `weight`, `labelSmoothing`. The log-probability paths go through `logSoftmax` and
 * `softplus`, so no loss overflows for logits of any size.
 */

import { castForReduction } from "../amp/state.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import {
  abs,
  add,
  astype,
  div,
  expandDims,
  gather,
  less,
  logSoftmax,
  mean,
  moveAxisLast,
  mul,
  neg,
  notEqual,
  softplus,
  square,
  squeeze,
  sub,
  sum,
  take,
  tensor,
  where,
} from "../ops/index.js";
import { fmtShape } from "../shape.js";

/** How a loss combines its per-element values. */
export type Reduction = "mean" | "sum" | "none";

/** Options of the regression losses. */
export interface LossOptions {
  reduction?: Reduction;
}

function asT(x: TensorLike, op: string, what: string): Tensor {
  // Losses compute in float32 under autocast (float16 squares overflow past 256).
  if (x instanceof Tensor) return castForReduction(x);
  if (typeof x === "number") return tensor(x, { dtype: "float64" });
  throw new DTypeError(`${op}: ${what} must be a Tensor or a number`);
}

function reduce(x: Tensor, reduction: Reduction | undefined, op: string): Tensor {
  switch (reduction ?? "mean") {
    case "mean":
      return mean(x);
    case "sum":
      return sum(x);
    case "none":
      return x;
    default:
      throw new ShapeError(`${op}: reduction must be "mean", "sum" or "none", got ${String(reduction)}`);
  }
}

/** Input and target: same shape when both are tensors (a broadcast here is almost always a bug). */
function pairOf(input: TensorLike, target: TensorLike, op: string): [Tensor, Tensor] {
  const a = asT(input, op, "input");
  const b = asT(target, op, "target");
  if (input instanceof Tensor && target instanceof Tensor && b.ndim > 0) {
    if (a.ndim !== b.ndim || a.shape.some((d, i) => d !== b.shape[i]))
      throw new ShapeError(
        `${op}: input ${fmtShape(a.shape)} and target ${fmtShape(b.shape)} must have the same shape`,
      );
  }
  return [a, b];
}

/**
 * Mean squared error (x − y)².
 * @example
 * ad.nn.mseLoss(ad.tensor([1, 2]), ad.tensor([1, 4])).item(); // 2
 */
export function mseLoss(input: TensorLike, target: TensorLike, opts: LossOptions = {}): Tensor {
  const [a, b] = pairOf(input, target, "mseLoss");
  return reduce(square(sub(a, b)), opts.reduction, "mseLoss");
}

/**
 * Mean absolute error |x − y|.
 * @example
 * ad.nn.l1Loss(ad.tensor([1, 2]), ad.tensor([1, 4])).item(); // 1
 */
export function l1Loss(input: TensorLike, target: TensorLike, opts: LossOptions = {}): Tensor {
  const [a, b] = pairOf(input, target, "l1Loss");
  return reduce(abs(sub(a, b)), opts.reduction, "l1Loss");
}

/**
 * Huber loss: ½d² for |d| < delta, delta·(|d| − ½delta) otherwise (default delta 1).
 * @example
 * ad.nn.huberLoss(ad.tensor([0, 3]), ad.tensor([0.5, 0])).item(); // (0.125 + 2.5) / 2
 */
export function huberLoss(
  input: TensorLike,
  target: TensorLike,
  opts: LossOptions & { delta?: number } = {},
): Tensor {
  const [a, b] = pairOf(input, target, "huberLoss");
  const delta = opts.delta ?? 1;
  const d = sub(a, b);
  const ad = abs(d);
  const l = where(less(ad, delta), mul(square(d), 0.5), mul(sub(ad, 0.5 * delta), delta));
  return reduce(l, opts.reduction, "huberLoss");
}

/** Options of `crossEntropy` and `nllLoss`. */
export interface ClassificationLossOptions extends LossOptions {
  /** Targets equal to this class index contribute nothing (default −100). */
  ignoreIndex?: number;
  /** Per-class weights `[C]`; "mean" then divides by the summed weights of the targets. */
  weight?: Tensor | null;
}

/** Options of `crossEntropy`. */
export interface CrossEntropyOptions extends ClassificationLossOptions {
  /** Mix the target with the uniform distribution: (1 − ε)·target + ε/C (default 0). */
  labelSmoothing?: number;
}

/** Class labels: a tensor as given, or JS integers (an array or one number) as int32. */
function labelsOf(target: Tensor | readonly number[] | number, op: string): Tensor {
  if (target instanceof Tensor) return target;
  const ok = (v: unknown) => typeof v === "number" && Number.isInteger(v);
  if (ok(target) || (Array.isArray(target) && target.every(ok)))
    return tensor(target as number | number[], { dtype: "int32" });
  throw new DTypeError(`${op}: the target must be a Tensor or JS integer class indices`);
}

function classAxisOf(x: Tensor, op: string): number {
  if (x.ndim === 0) throw new ShapeError(`${op}: the input needs a class axis, got a scalar`);
  if (!isFloat(x.dtype)) throw new DTypeError(`${op}: the input must be floating point, got ${x.dtype}`);
  return x.ndim === 1 ? 0 : 1;
}

/** The negative log-likelihood of class indices from log-probabilities (class axis `axis`). */
function indexLoss(
  lp: Tensor,
  axis: number,
  target: Tensor,
  opts: CrossEntropyOptions,
  op: string,
  smoothing: number,
): Tensor {
  const want = lp.shape.filter((_, i) => i !== axis);
  if (target.ndim !== want.length || target.shape.some((d, i) => d !== want[i]))
    throw new ShapeError(
      `${op}: class-index targets must have shape ${fmtShape(want)} for input ${fmtShape(lp.shape)}, got ${fmtShape(target.shape)}`,
    );
  const C = lp.shape[axis]!;
  const ignore = opts.ignoreIndex ?? -100;
  if (target._trace === null) {
    const d = target._hostData();
    for (let i = 0; i < d.length; i++)
      if (d[i] !== ignore && (d[i]! < 0 || d[i]! >= C))
        throw new ShapeError(`${op}: target ${d[i]} is out of range for ${C} classes`);
  }
  const weight = opts.weight ?? null;
  if (weight !== null && (weight.ndim !== 1 || weight.shape[0] !== C))
    throw new ShapeError(`${op}: weight must have shape [${C}], got ${fmtShape(weight.shape)}`);
  const last = moveAxisLast(lp, axis); // [..., C]
  const valid = notEqual(target, ignore);
  const safe = where(valid, target, 0);
  const nll = neg(squeeze(gather(last, -1, expandDims(safe, -1)), -1));
  const wy = weight === null ? null : take(weight, safe);
  let l = wy === null ? nll : mul(nll, wy);
  if (smoothing > 0) {
    const all = weight === null ? last : mul(last, weight);
    const smooth = neg(sum(all, { axis: -1 }));
    l = add(mul(l, 1 - smoothing), mul(smooth, smoothing / C));
  }
  l = where(valid, l, 0);
  const reduction = opts.reduction ?? "mean";
  if (reduction !== "mean") return reduce(l, reduction, op);
  const denom = wy === null ? sum(astype(valid, l.dtype)) : sum(where(valid, wy, 0));
  return div(sum(l), denom);
}

/**
 * Cross-entropy of logits `[N, C]` (or `[C]`, or `[N, C, d1, ...]`) against int32 class indices
 * `[N]` (or `[]`, `[N, d1, ...]`; JS integers are taken as int32) or class probabilities of the
 * logits' shape. Computed as −logSoftmax, so it is stable for logits of any magnitude. Mean
 * reduction by default.
 * @example
 * ad.nn.crossEntropy(ad.tensor([[0, 0]]), ad.tensor([1], { dtype: "int32" })).item(); // log 2
 */
export function crossEntropy(
  logits: Tensor,
  target: Tensor | readonly number[] | number,
  opts: CrossEntropyOptions = {},
): Tensor {
  const op = "crossEntropy";
  target = labelsOf(target, op);
  if (!(logits instanceof Tensor)) throw new DTypeError(`${op}: logits must be a Tensor`);
  const axis = classAxisOf(logits, op);
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps <= 1)) throw new ShapeError(`${op}: labelSmoothing must be in [0, 1], got ${eps}`);
  const lp = logSoftmax(castForReduction(logits), axis);
  if (target.dtype === "int32") return indexLoss(lp, axis, target, opts, op, eps);
  if (!isFloat(target.dtype) || target.ndim === logits.ndim - 1)
    throw new DTypeError(
      `${op}: targets must be int32 class indices (shape without the class axis) or float probabilities (the logits' shape), got ${target.dtype} ${fmtShape(target.shape)} for logits ${fmtShape(logits.shape)}`,
    );
  if (target.ndim !== logits.ndim || target.shape.some((d, i) => d !== logits.shape[i]))
    throw new ShapeError(
      `${op}: probability targets must have the logits' shape ${fmtShape(logits.shape)}, got ${fmtShape(target.shape)}`,
    );
  const C = logits.shape[axis]!;
  const t = eps > 0 ? add(mul(target, 1 - eps), eps / C) : target;
  let prod = mul(t, lp);
  if (opts.weight !== undefined && opts.weight !== null) {
    const shape = logits.shape.map((d, i) => (i === axis ? d : 1));
    prod = mul(prod, opts.weight.reshape(shape));
  }
  return reduce(neg(sum(prod, { axis })), opts.reduction, op);
}

/**
 * Negative log-likelihood of int32 class indices, given log-probabilities `[N, C]` (class axis 1).
 * @example
 * ad.nn.nllLoss(ad.logSoftmax(ad.tensor([[0, 0]]), 1), ad.tensor([0], { dtype: "int32" })).item(); // log 2
 */
export function nllLoss(
  logProbs: Tensor,
  target: Tensor | readonly number[] | number,
  opts: ClassificationLossOptions = {},
): Tensor {
  const op = "nllLoss";
  target = labelsOf(target, op);
  if (!(logProbs instanceof Tensor)) throw new DTypeError(`${op}: logProbs must be a Tensor`);
  if (target.dtype !== "int32")
    throw new DTypeError(`${op}: targets must be int32 class indices, got ${target.dtype}`);
  return indexLoss(castForReduction(logProbs), classAxisOf(logProbs, op), target, opts, op, 0);
}

/** Options of `binaryCrossEntropyWithLogits`. */
export interface BCEWithLogitsOptions extends LossOptions {
  /** Elementwise weight of each term (broadcast). */
  weight?: TensorLike | null;
  /** Weight of the positive term (broadcast over the last axis, as PyTorch's `pos_weight`). */
  posWeight?: TensorLike | null;
}

/**
 * Binary cross-entropy of logits x against targets y in [0, 1]:
 * −[y·log σ(x) + (1 − y)·log(1 − σ(x))] = (1 − y)·x + softplus(−x), stable for any |x|.
 * @example
 * ad.nn.binaryCrossEntropyWithLogits(ad.tensor([0]), ad.tensor([1])).item(); // log 2
 */
export function binaryCrossEntropyWithLogits(
  logits: TensorLike,
  target: TensorLike,
  opts: BCEWithLogitsOptions = {},
): Tensor {
  const op = "binaryCrossEntropyWithLogits";
  const [x, y] = pairOf(logits, target, op);
  const sp = softplus(neg(x)); // −log σ(x)
  const pw = opts.posWeight ?? null;
  const l =
    pw === null ? add(mul(sub(1, y), x), sp) : add(mul(sub(1, y), x), mul(add(mul(sub(pw, 1), y), 1), sp));
  const w = opts.weight ?? null;
  return reduce(w === null ? l : mul(l, w), opts.reduction, op);
}
