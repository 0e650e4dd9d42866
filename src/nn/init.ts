/**
 * @file `ad.nn.init`: PyTorch's weight initialisations with functional keys. Each function
 * returns a fresh tensor (not a parameter); layers wrap them. Fan-in/fan-out follow
 * `torch.nn.init._calculate_fan_in_and_fan_out`: for a weight `[out, in, ...kernel]`,
 * fanIn = in · prod(kernel) and fanOut = out · prod(kernel).
 */

import type { Tensor } from "../core/tensor.js";
import { DEFAULT_FLOAT, type DType, isFloat } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { add, mul, ones as onesOp, zeros as zerosOp } from "../ops/index.js";
import { type Key, normal as normalRng, uniform as uniformRng } from "../random/index.js";

/** Options shared by the initialisers. */
export interface InitOptions {
  /** Floating dtype of the result (default float32). */
  dtype?: DType;
}

function floatDType(d: DType | undefined, op: string): DType {
  const r = d ?? DEFAULT_FLOAT;
  if (!isFloat(r)) throw new DTypeError(`${op}: dtype must be a floating-point dtype, got ${r}`);
  return r;
}

/**
 * `[fanIn, fanOut]` of a weight shape (`[out, in, ...kernel]`; a 1-d shape has fanIn = fanOut = its size).
 * @example
 * ad.nn.init.fans([8, 3, 5, 5]); // [75, 200]
 */
export function fans(shape: readonly number[]): [number, number] {
  if (shape.length === 0) throw new ShapeError("nn.init: fan-in/fan-out need a shape with at least one axis");
  if (shape.length === 1) return [shape[0]!, shape[0]!];
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1]! * receptive, shape[0]! * receptive];
}

/**
 * Uniform numbers in [low, high).
 * @example
 * ad.nn.init.uniform(ad.random.key(0), [2, 2], -0.1, 0.1);
 */
export function uniform(
  key: Key,
  shape: readonly number[],
  low = 0,
  high = 1,
  opts: InitOptions = {},
): Tensor {
  return uniformRng(key, shape, {
    dtype: floatDType(opts.dtype, "nn.init.uniform"),
    minval: low,
    maxval: high,
  });
}

/**
 * Normal numbers with the given mean and standard deviation.
 * @example
 * ad.nn.init.normal(ad.random.key(0), [4], 0, 0.02);
 */
export function normal(
  key: Key,
  shape: readonly number[],
  mean = 0,
  std = 1,
  opts: InitOptions = {},
): Tensor {
  const z = normalRng(key, shape, { dtype: floatDType(opts.dtype, "nn.init.normal") });
  return mean === 0 && std === 1 ? z : add(mul(z, std), mean);
}

/**
 * Kaiming (He) uniform: U(−b, b) with b = gain·√(3 / fanIn), gain = √(2 / (1 + a²)). With the
 * default a = √5 (PyTorch's `Linear`/`Conv2d` default) b = 1/√fanIn.
 * @example
 * ad.nn.init.kaimingUniform(ad.random.key(0), [16, 8]); // bound 1/√8
 */
export function kaimingUniform(
  key: Key,
  shape: readonly number[],
  opts: InitOptions & { a?: number; fanIn?: number } = {},
): Tensor {
  const a = opts.a ?? Math.sqrt(5);
  const fanIn = opts.fanIn ?? fans(shape)[0];
  const bound = fanIn === 0 ? 0 : Math.sqrt(2 / (1 + a * a)) * Math.sqrt(3 / fanIn);
  return uniform(key, shape, -bound, bound, opts);
}

/**
 * Xavier (Glorot) uniform: U(−b, b) with b = gain·√(6 / (fanIn + fanOut)).
 * @example
 * ad.nn.init.xavierUniform(ad.random.key(0), [24, 8]);
 */
export function xavierUniform(
  key: Key,
  shape: readonly number[],
  opts: InitOptions & { gain?: number } = {},
): Tensor {
  const [fi, fo] = fans(shape);
  const bound = (opts.gain ?? 1) * Math.sqrt(6 / Math.max(fi + fo, 1));
  return uniform(key, shape, -bound, bound, opts);
}

/** Zeros of a floating dtype. @example ad.nn.init.zeros([3]) */
export function zeros(shape: readonly number[], opts: InitOptions = {}): Tensor {
  return zerosOp(shape, { dtype: floatDType(opts.dtype, "nn.init.zeros") });
}

/** Ones of a floating dtype. @example ad.nn.init.ones([3]) */
export function ones(shape: readonly number[], opts: InitOptions = {}): Tensor {
  return onesOp(shape, { dtype: floatDType(opts.dtype, "nn.init.ones") });
}

/** @internal Shape check for layer constructors: positive integers. */
export function checkDims(op: string, dims: Record<string, number>): void {
  for (const [name, v] of Object.entries(dims))
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
      throw new ShapeError(`${op}: ${name} must be a positive integer, got ${String(v)}`);
}
