/**
 * @file `ad.random`: functional, reproducible random numbers. A key is data (an int32 [2]
 * tensor), never hidden state: the same key always gives the same numbers, and `split` derives
 * independent keys (threefry-2x32, bit-compatible with JAX's keys and uniform bits).
 */

import { bind1 } from "../core/interpreter.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { checkDType, DEFAULT_FLOAT, type DType, isFloat } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import {
  add,
  argmax,
  cos,
  less,
  log,
  maximum,
  moveAxisLast,
  mul,
  neg,
  sqrt,
  sub,
  toTensor,
} from "../ops/index.js";
import { randomSplitP, randomUniformP } from "../primitives/random.js";
import { broadcastShapes, checkShape, fmtShape, normAxis } from "../shape.js";
import { keyFromSeed } from "./threefry.js";

/** A PRNG key: an int32 tensor of shape [2]. */
export type Key = Tensor;

export interface RandomOptions {
  dtype?: DType;
}

/**
 * A key from an integer seed (as `jax.random.key(seed)`).
 * @example
 * const k = ad.random.key(0);
 */
export function key(seed: number): Key {
  if (typeof seed !== "number" || !Number.isInteger(seed))
    throw new DTypeError(`random.key: seed must be an integer, got ${String(seed)}`);
  const [a, b] = keyFromSeed(seed);
  return Tensor._fromHost(Int32Array.of(a | 0, b | 0), [2], "int32");
}

/**
 * `n` (default 2) new independent keys.
 * @example
 * const [k1, k2] = ad.random.split(ad.random.key(0));
 */
export function split(k: Key, n = 2): Key[] {
  if (!Number.isInteger(n) || n < 1)
    throw new ShapeError(`random.split: n must be a positive integer, got ${n}`);
  const all = bind1(randomSplitP, [checkKeyArg(k, "random.split")], { num: n });
  return Array.from({ length: n }, (_, i) => all.at(i));
}

/**
 * Check the key argument of `op` up front, so a wrong one (a JS array from `split`, a number, a
 * float tensor) gets a typed error naming the function the user called.
 */
function checkKeyArg(k: unknown, op: string): Key {
  if (!(k instanceof Tensor)) {
    const what = Array.isArray(k)
      ? `a JS array of ${k.length} values (split returns an array of keys: pass one key, or ad.stack(keys) to vmap over keys)`
      : typeof k;
    throw new ShapeError(`${op}: expected a key (int32 [2] from ad.random.key), got ${what}`);
  }
  if (k.dtype !== "int32" || k.ndim !== 1 || k.shape[0] !== 2)
    throw new ShapeError(
      `${op}: expected a key (int32 [2] from ad.random.key), got ${k.dtype} ${fmtShape(k.shape)}`,
    );
  return k;
}

function floatDType(opts: RandomOptions, op: string): DType {
  const d = opts.dtype === undefined ? DEFAULT_FLOAT : checkDType(opts.dtype, op);
  if (!isFloat(d)) throw new DTypeError(`${op}: dtype must be float32 or float64, got ${d}`);
  return d;
}

/**
 * Uniform numbers in [minval, maxval) (default [0, 1)).
 * @example
 * ad.random.uniform(ad.random.key(0), [3]).shape; // [3]
 */
export function uniform(
  k: Key,
  shape: readonly number[] = [],
  opts: RandomOptions & { minval?: number; maxval?: number } = {},
): Tensor {
  const dtype = floatDType(opts, "random.uniform");
  const u = bind1(randomUniformP, [checkKeyArg(k, "random.uniform")], {
    shape: checkShape(shape, "random.uniform"),
    dtype,
  });
  const lo = opts.minval ?? 0;
  const hi = opts.maxval ?? 1;
  return lo === 0 && hi === 1 ? u : add(mul(u, hi - lo), lo);
}

/**
 * Standard normal numbers (Box-Muller on two uniform streams).
 * @example
 * ad.random.normal(ad.random.key(0), [2, 2]).shape; // [2, 2]
 */
export function normal(k: Key, shape: readonly number[] = [], opts: RandomOptions = {}): Tensor {
  const dtype = floatDType(opts, "random.normal");
  const s = checkShape(shape, "random.normal");
  const [k1, k2] = split(checkKeyArg(k, "random.normal"));
  const u1 = uniform(k1!, s, { dtype });
  const u2 = uniform(k2!, s, { dtype });
  // 1 - u1 lies in (0, 1], so the log is finite.
  return mul(sqrt(mul(log(sub(1, u1)), -2)), cos(mul(u2, 2 * Math.PI)));
}

/**
 * Standard Gumbel numbers, -log(-log(u)).
 * @example
 * ad.random.gumbel(ad.random.key(0), [3]).shape; // [3]
 */
export function gumbel(k: Key, shape: readonly number[] = [], opts: RandomOptions = {}): Tensor {
  const dtype = floatDType(opts, "random.gumbel");
  // The smallest positive normal number of the dtype, so -log(-log(u)) stays finite.
  const tiny =
    dtype === "float64" ? 2.2250738585072014e-308 : dtype === "float16" ? 6.103515625e-5 : 1.1754944e-38;
  const u = maximum(
    uniform(checkKeyArg(k, "random.gumbel"), checkShape(shape, "random.gumbel"), { dtype }),
    tiny,
  );
  return neg(log(neg(log(u))));
}

/**
 * True with probability `p` (broadcast to `shape`, default p's shape).
 * @example
 * ad.random.bernoulli(ad.random.key(0), 0.5, [4]).dtype; // "bool"
 */
export function bernoulli(k: Key, p: TensorLike = 0.5, shape?: readonly number[]): Tensor {
  checkKeyArg(k, "random.bernoulli");
  const pt = toTensor(p, "random.bernoulli");
  const s = shape === undefined ? pt.shape : checkShape(shape, "random.bernoulli");
  if (shape !== undefined) broadcastShapes(pt.shape, s, "random.bernoulli");
  const dtype = isFloat(pt.dtype) && !pt.weakType ? pt.dtype : "float32";
  return less(uniform(k, s, { dtype }), p);
}

/**
 * Samples class indices from unnormalised log-probabilities along `axis` (Gumbel-max trick).
 * `shape` is the batch shape of the samples (default: logits' shape without `axis`).
 * @example
 * ad.random.categorical(ad.random.key(0), ad.tensor([0, 0, 10])).item(); // 2 (almost surely)
 */
export function categorical(
  k: Key,
  logits: TensorLike,
  opts: { axis?: number; shape?: readonly number[] } = {},
): Tensor {
  checkKeyArg(k, "random.categorical");
  const l = toTensor(logits, "random.categorical");
  if (l.ndim === 0) throw new ShapeError("random.categorical: logits must have at least one axis");
  const ax = normAxis(opts.axis ?? -1, l.ndim, "random.categorical");
  const last = moveAxisLast(l, ax);
  const batch = last.shape.slice(0, -1);
  const n = last.shape[last.ndim - 1]!;
  const outShape = opts.shape === undefined ? batch : checkShape(opts.shape, "random.categorical");
  const b = broadcastShapes(batch, outShape, "random.categorical");
  if (b.length !== outShape.length || b.some((d, i) => d !== outShape[i]))
    throw new ShapeError(
      `random.categorical: shape ${fmtShape(outShape)} does not fit logits batch shape ${fmtShape(batch)}`,
    );
  const dtype = isFloat(l.dtype) ? l.dtype : "float32";
  const g = gumbel(k, [...outShape, n], { dtype });
  return argmax(add(g, last), { axis: -1 });
}
