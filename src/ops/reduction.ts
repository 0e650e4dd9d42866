/**
 * @file Reductions: sum, mean, prod (division-free), max/min (ties split), logsumexp (stable,
 * finite gradient even when every input is -Inf), var/std, argmax/argmin.
 */

import { castForReduction } from "../amp/state.js";
import { bind1 } from "../core/interpreter.js";
import type { Tensor, TensorLike } from "../core/tensor.js";
import { inOp, ShapeError } from "../errors.js";
import * as P from "../primitives/index.js";
import { fmtShape, normAxes, normAxis, sizeOf } from "../shape.js";
import { astype, promoteArgs, toTensor } from "./convert.js";
import { ones } from "./creation.js";
import {
  add,
  div,
  equal,
  exp,
  isfinite,
  log,
  mul,
  sqrt,
  square,
  stopGradient,
  sub,
  where,
} from "./elementwise.js";
import { pad, reshape, slice, transpose } from "./shape.js";

export interface ReduceOptions {
  axis?: number | readonly number[] | null;
  keepdims?: boolean;
}

export interface VarOptions extends ReduceOptions {
  /** Delta degrees of freedom: divide by N - ddof (default 0). */
  ddof?: number;
}

export interface ArgOptions {
  axis?: number;
  keepdims?: boolean;
}

function finish(r: Tensor, x: Tensor, axes: number[], keepdims: boolean | undefined): Tensor {
  return keepdims
    ? reshape(
        r,
        x.shape.map((d, i) => (axes.includes(i) ? 1 : d)),
      )
    : r;
}

/**
 * Sum over `axis` (all axes by default).
 * @example ad.tensor([[1, 2], [3, 4]]).sum({ axis: 0 }).toArray(); // [4, 6]
 */
export function sum(x: TensorLike, opts: ReduceOptions = {}): Tensor {
  return inOp("sum", () => {
    const t = castForReduction(toTensor(x, "sum"));
    const axes = normAxes(opts.axis, t.ndim, "sum");
    if (axes.length === 0) return t.dtype === "bool" ? astype(t, "int32") : t;
    return finish(bind1(P.reduceSumP, [t], { axes }), t, axes, opts.keepdims);
  });
}

/**
 * Mean over `axis` (integers average to float32).
 * @example ad.tensor([1, 2, 3, 4]).mean().item(); // 2.5
 */
export function mean(x: TensorLike, opts: ReduceOptions = {}): Tensor {
  return inOp("mean", () => {
    const t = castForReduction(promoteArgs("mean", [x], "float")[0]!);
    const axes = normAxes(opts.axis, t.ndim, "mean");
    const n = sizeOf(axes.map((a) => t.shape[a]!));
    return div(sum(t, opts), n);
  });
}

function reduceChooser(name: string, prim: typeof P.reduceMaxP, x: TensorLike, opts: ReduceOptions): Tensor {
  const t = toTensor(x, name);
  const axes = normAxes(opts.axis, t.ndim, name);
  for (const a of axes)
    if (t.shape[a] === 0)
      throw new ShapeError(`${name}: cannot reduce over axis ${a} of size 0 in ${fmtShape(t.shape)}`);
  if (axes.length === 0) return t;
  return finish(bind1(prim, [t], { axes }), t, axes, opts.keepdims);
}

/**
 * Maximum over `axis`; tied maxima share the derivative equally.
 * @example ad.grad((x) => ad.max(x))(ad.tensor([1, 3, 3])).toArray(); // [0, 0.5, 0.5]
 */
export function max(x: TensorLike, opts: ReduceOptions = {}): Tensor {
  return inOp("max", () => {
    return reduceChooser("max", P.reduceMaxP, x, opts);
  });
}

/**
 * Minimum over `axis`; tied minima share the derivative equally.
 * @example ad.min(ad.tensor([3, 1, 2])).item(); // 1
 */
export function min(x: TensorLike, opts: ReduceOptions = {}): Tensor {
  return inOp("min", () => {
    return reduceChooser("min", P.reduceMinP, x, opts);
  });
}

/**
 * Product over `axis`, computed as a tree of multiplications: no division anywhere, so the
 * gradient is exact when entries are 0 (grad prod([2, 0, 3]) = [0, 6, 0]).
 * @example ad.prod(ad.tensor([2, 3, 4])).item(); // 24
 */
export function prod(x: TensorLike, opts: ReduceOptions = {}): Tensor {
  return inOp("prod", () => {
    const t0 = castForReduction(promoteArgs("prod", [x], "number")[0]!);
    const axes = normAxes(opts.axis, t0.ndim, "prod");
    if (axes.length === 0) return t0;
    // Move the reduced axes to the end and flatten them into one.
    const keepAxes = t0.shape.map((_, i) => i).filter((i) => !axes.includes(i));
    const keepShape = keepAxes.map((i) => t0.shape[i]!);
    const n = sizeOf(axes.map((a) => t0.shape[a]!));
    let t = reshape(transpose(t0, [...keepAxes, ...axes]), [...keepShape, n]);
    if (n === 0) return finish(ones(keepShape, { dtype: t0.dtype }), t0, axes, opts.keepdims);
    let m = n;
    while (m > 1) {
      if (m % 2 === 1) {
        t = pad(
          t,
          t.shape.map((_, i) => (i === t.ndim - 1 ? [0, 1] : [0, 0]) as [number, number]),
          1,
        );
        m += 1;
      }
      const half = m / 2;
      const lo = slice(
        t,
        t.shape.map(() => 0),
        [...keepShape, half],
      );
      const hi = slice(
        t,
        t.shape.map((_, i) => (i === t.ndim - 1 ? half : 0)),
        [...keepShape, half],
      );
      t = mul(lo, hi);
      m = half;
    }
    return finish(reshape(t, keepShape), t0, axes, opts.keepdims);
  });
}

/**
 * log(sum(exp(x))) over `axis`, stable for |x| up to any size. The max shift is guarded so that
 * all -Inf inputs give -Inf with a zero (not NaN) gradient.
 * @example ad.logsumexp(ad.tensor([1000, 1000])).item(); // 1000.693...
 */
export function logsumexp(x: TensorLike, opts: ReduceOptions = {}): Tensor {
  return inOp("logsumexp", () => {
    const t = castForReduction(promoteArgs("logsumexp", [x], "float")[0]!);
    const axes = normAxes(opts.axis, t.ndim, "logsumexp");
    const m0 = stopGradient(max(t, { axis: axes, keepdims: true }));
    const m = where(isfinite(m0), m0, 0);
    const s = sum(exp(sub(t, m)), { axis: axes, keepdims: true });
    // Double-where: the log of an empty sum is -Inf, reached without a log(0) on the gradient path.
    const empty = equal(s, 0);
    const lse = add(where(empty, -Infinity, log(where(empty, 1, s))), m);
    return opts.keepdims
      ? lse
      : reshape(
          lse,
          t.shape.filter((_, i) => !axes.includes(i)),
        );
  });
}

/**
 * Variance (population, ddof = 0, unless `ddof` says otherwise).
 * @example ad.variance(ad.tensor([1, 2, 3, 4])).item(); // 1.25
 */
export function variance(x: TensorLike, opts: VarOptions = {}): Tensor {
  return inOp("var", () => {
    const t = castForReduction(promoteArgs("var", [x], "float")[0]!);
    const axes = normAxes(opts.axis, t.ndim, "var");
    const n = sizeOf(axes.map((a) => t.shape[a]!));
    const mu = mean(t, { axis: axes, keepdims: true });
    const ss = sum(square(sub(t, mu)), { axis: axes, keepdims: opts.keepdims });
    return div(ss, n - (opts.ddof ?? 0));
  });
}

/**
 * Standard deviation: sqrt(var).
 * @example ad.std(ad.tensor([1, 3])).item(); // 1
 */
export function std(x: TensorLike, opts: VarOptions = {}): Tensor {
  return inOp("std", () => {
    return sqrt(variance(x, opts));
  });
}

function argReduce(name: string, prim: typeof P.argmaxP, x: TensorLike, opts: ArgOptions): Tensor {
  let t = toTensor(x, name);
  let axis = opts.axis;
  if (axis === undefined) {
    t = reshape(t, [-1]);
    axis = 0;
  }
  const ax = normAxis(axis, t.ndim, name);
  if (t.shape[ax] === 0) throw new ShapeError(`${name}: cannot reduce over axis ${ax} of size 0`);
  const r = bind1(prim, [t], { axis: ax });
  if (!opts.keepdims) return r;
  // keepdims without an axis keeps every axis as size 1 (NumPy >= 1.22).
  const src = toTensor(x, name);
  return reshape(
    r,
    opts.axis === undefined ? src.shape.map(() => 1) : t.shape.map((d, i) => (i === ax ? 1 : d)),
  );
}

/**
 * Index of the maximum (first on ties; of the flattened tensor when no axis), int32.
 * @example ad.argmax(ad.tensor([1, 3, 2])).item(); // 1
 */
export function argmax(x: TensorLike, opts: ArgOptions = {}): Tensor {
  return inOp("argmax", () => {
    return argReduce("argmax", P.argmaxP, x, opts);
  });
}

/**
 * Index of the minimum, int32.
 * @example ad.argmin(ad.tensor([1, 3, 0])).item(); // 2
 */
export function argmin(x: TensorLike, opts: ArgOptions = {}): Tensor {
  return inOp("argmin", () => {
    return argReduce("argmin", P.argminP, x, opts);
  });
}
