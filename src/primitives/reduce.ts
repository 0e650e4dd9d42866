/**
 * @file Reductions over a set of axes. `reduce_max`/`reduce_min` split the derivative equally
 * between tied maxima (as JAX and PyTorch do), so the gradient of max([1, 3, 3]) is [0, .5, .5].
 * Products are composed from multiplications in `ops` (division-free, exact with zeros).
 * Batching shifts the reduced axes past the batch axis, which survives every reduction.
 */

import type { Backend, DeviceBuffer, ReduceKernel } from "../backend/backend.js";
import { bind } from "../core/interpreter.js";
import {
  type Aval,
  type BatchRule,
  definePrimitive,
  type Primitive,
  type Tangent,
} from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { Zero } from "../core/zero.js";
import { type DType, isFloat } from "../dtype.js";
import { ShapeError } from "../errors.js";
import { astype, broadcastTo, div, equal, isnan, mul, reshape, sum, where } from "../ops/index.js";
import { fmtShape } from "../shape.js";
import { checkArity, onlyDim, withBatchAxis } from "./rules.js";
import { jetLinear, jetZero } from "./series.js";

export interface ReduceParams {
  /** Sorted, distinct, non-negative axes to reduce away. */
  axes: number[];
}

function reducedShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.filter((_, i) => !axes.includes(i));
}

/** The shape with reduced axes kept as size 1 (to broadcast results back against the input). */
function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Broadcast a reduced value back over the input's shape. */
function expandBack(v: Tensor, x: Aval, axes: readonly number[]): Tensor {
  return broadcastTo(reshape(v, keptShape(x.shape, axes)), x.shape);
}

function reduceEval(name: string, outDtype?: (d: DType) => DType) {
  return (avals: readonly Aval[], p: ReduceParams): Aval[] => {
    checkArity(name, avals, 1);
    const a = avals[0]!;
    for (const ax of p.axes)
      if (ax < 0 || ax >= a.shape.length)
        throw new ShapeError(`${name}: axis ${ax} out of range for shape ${fmtShape(a.shape)}`);
    const dtype = outDtype ? outDtype(a.dtype) : a.dtype;
    return [{ shape: reducedShape(a.shape, p.axes), dtype, weakType: a.weakType && dtype === a.dtype }];
  };
}

const reduceImpl =
  (kernel: ReduceKernel) =>
  (b: Backend, [x]: DeviceBuffer[], [a]: readonly Aval[], p: ReduceParams, [o]: readonly Aval[]) => [
    b.reduce(kernel, x!, a!.shape, p.axes, a!.dtype, o!.dtype),
  ];

const showAxes = (p: ReduceParams) => `axes=[${p.axes.join(",")}]`;

/**
 * Reduce the same axes of every example: shift them past the batch axis, which stays (moved left
 * by the reduced axes before it).
 */
function reduceBatcher(self: () => Primitive<ReduceParams>): BatchRule<ReduceParams> {
  return (args, dims, p) => {
    const d = onlyDim(dims);
    const axes = p.axes.map((a) => withBatchAxis(a, d));
    return [bind(self(), args, { axes }), [d - p.axes.filter((a) => a < d).length]];
  };
}

// d sum(x) = sum(dx); the cotangent broadcasts back over the reduced axes.
export const reduceSumP: Primitive<ReduceParams> = definePrimitive<ReduceParams>({
  name: "reduce_sum",
  saves: "none",
  // Sums of bool count (int32), as NumPy.
  abstractEval: reduceEval("reduce_sum", (d) => (d === "bool" ? "int32" : d)),
  impl: reduceImpl("sum"),
  jvp: (_, [t], __, p) => [sum(t as Tensor, { axis: p.axes })],
  vjp: ([ct], [x], _o, p) => [expandBack(ct!, x!, p.axes)],
  // jet: y_k = sum(x_k)
  jet: jetLinear(() => reduceSumP),
  // sum over the example axes of each example: the same axes, shifted past the batch axis
  batch: reduceBatcher(() => reduceSumP),
  showParams: showAxes,
});

/**
 * Weights that share the derivative of a max/min equally between the tied extremal entries. A
 * NaN extremum sends the derivative to the NaN entries (as PyTorch), not 0/0 everywhere.
 */
function tieWeights(x: Tensor, out: Tensor, axes: readonly number[]): Tensor {
  const o = expandBack(out, x, axes);
  const hit = astype(where(isnan(o), isnan(x), equal(x, o)), x.dtype);
  return div(hit, sum(hit, { axis: [...axes], keepdims: true }));
}

function chooser(name: string, kernel: ReduceKernel): Primitive<ReduceParams> {
  const prim: Primitive<ReduceParams> = definePrimitive<ReduceParams>({
    name,
    abstractEval: reduceEval(name),
    impl: reduceImpl(kernel),
    // d max(x) = sum(w dx) with w = 1/count on the tied maxima, 0 elsewhere
    jvp: ([x], [t], [out], p): Tangent[] =>
      isFloat(x!.dtype)
        ? [sum(mul(t as Tensor, tieWeights(x!, out!, p.axes)), { axis: p.axes })]
        : [Zero.like(out!)],
    vjp: ([ct], [x], [out], p) => [mul(expandBack(ct!, x!, p.axes), tieWeights(x!, out!, p.axes))],
    // jet: y_k = sum(w x_k) with the JVP's tie weights (the extremum's position is locally fixed)
    jet: jetLinear(() => prim),
    // max over the example axes of each example: the same axes, shifted past the batch axis
    batch: reduceBatcher(() => prim),
    showParams: showAxes,
  });
  return prim;
}

export const reduceMaxP = chooser("reduce_max", "max");
export const reduceMinP = chooser("reduce_min", "min");

export interface ArgParams {
  axis: number;
}

function argReduce(name: string, kernel: ReduceKernel): Primitive<ArgParams> {
  const prim: Primitive<ArgParams> = definePrimitive<ArgParams>({
    name,
    abstractEval: (avals, p) => reduceEval(name, () => "int32")(avals, { axes: [p.axis] }),
    impl: (b, [x], [a], p) => [b.reduce(kernel, x!, a!.shape, [p.axis], a!.dtype, "int32")],
    jvp: (_, __, [out]) => [Zero.like(out!)],
    vjp: (_, [x]) => [Zero.like(x!)],
    // int32 output: no Taylor coefficients
    jet: jetZero(),
    // argmax along the example axis, shifted past the batch axis (which it never removes)
    batch: (args, dims, p) => {
      const d = onlyDim(dims);
      return [bind(prim, args, { axis: withBatchAxis(p.axis, d) }), [p.axis < d ? d - 1 : d]];
    },
    showParams: (p) => `axis=${p.axis}`,
  });
  return prim;
}

export const argmaxP = argReduce("argmax", "argmax");
export const argminP = argReduce("argmin", "argmin");
