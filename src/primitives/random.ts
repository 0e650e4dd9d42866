/**
 * @file Counter-based random number primitives on threefry keys (int32[2] bit patterns). Keys
 * are data, not state: the same key always gives the same numbers. Nothing here has a
 * derivative (keys are integers). A batch of keys runs the kernel once per key (`loopBatcher`),
 * so `vmap` over keys gives exactly the numbers a loop over the same keys gives.
 */

import { type Aval, definePrimitive, type Primitive } from "../core/primitive.js";
import { Zero } from "../core/zero.js";
import { type DType, isFloat } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { fmtShape } from "../shape.js";
import { loopBatcher } from "./rules.js";
import { jetZero } from "./series.js";

function checkKey(op: string, k: Aval): void {
  if (k.dtype !== "int32" || k.shape.length !== 1 || k.shape[0] !== 2)
    throw new ShapeError(
      `${op}: expected a key (int32 [2] from ad.random.key), got ${k.dtype} ${fmtShape(k.shape)}`,
    );
}

export interface UniformParams {
  shape: number[];
  dtype: DType;
}
export const randomUniformP: Primitive<UniformParams> = definePrimitive<UniformParams>({
  name: "random_uniform",
  saves: "none",
  abstractEval([k], p) {
    checkKey("random.uniform", k!);
    if (!isFloat(p.dtype))
      throw new DTypeError(`random.uniform: dtype must be float32 or float64, got ${p.dtype}`);
    return [{ shape: p.shape, dtype: p.dtype, weakType: false }];
  },
  impl: (b, [k], _a, p) => [b.randomUniform(k!, p.shape, p.dtype)],
  jvp: (_, __, [out]) => [Zero.like(out!)],
  vjp: (_, [k]) => [Zero.like(k!)],
  // keys are integers: no Taylor coefficients
  jet: jetZero(),
  // out[b] = uniform(key[b]): one kernel call per key, stacked
  batch: loopBatcher(() => randomUniformP),
  showParams: (p) => `shape=${fmtShape(p.shape)} dtype=${p.dtype}`,
});

export interface SplitParams {
  num: number;
}
export const randomSplitP: Primitive<SplitParams> = definePrimitive<SplitParams>({
  name: "random_split",
  saves: "none",
  abstractEval([k], p) {
    checkKey("random.split", k!);
    return [{ shape: [p.num, 2], dtype: "int32", weakType: false }];
  },
  impl: (b, [k], _a, p) => [b.randomSplit(k!, p.num)],
  jvp: (_, __, [out]) => [Zero.like(out!)],
  vjp: (_, [k]) => [Zero.like(k!)],
  // int32 output: no Taylor coefficients
  jet: jetZero(),
  // out[b] = split(key[b]): one kernel call per key, stacked
  batch: loopBatcher(() => randomSplitP),
  showParams: (p) => `num=${p.num}`,
});
