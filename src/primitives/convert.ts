/** @file dtype conversion and stop_gradient: identity-like primitives with special derivative rules. */

import { definePrimitive, type Primitive } from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { Zero } from "../core/zero.js";
import { type DType, isFloat } from "../dtype.js";
import { astype } from "../ops/index.js";
import { sizeOf } from "../shape.js";
import { checkArity, type NoParams, unopBatcher } from "./rules.js";
import { jetLinear, jetZero } from "./series.js";

export interface ConvertParams {
  dtype: DType;
  weakType: boolean;
}

// d convert(x) = convert(dx) between float dtypes; conversions to or from int/bool are flat.
export const convertP: Primitive<ConvertParams> = definePrimitive<ConvertParams>({
  name: "convert_element_type",
  saves: "none",
  abstractEval(avals, p) {
    checkArity("convert_element_type", avals, 1);
    return [{ shape: avals[0]!.shape, dtype: p.dtype, weakType: p.weakType }];
  },
  impl: (b, [x], [a], p) => [a!.dtype === p.dtype ? x! : b.cast(x!, sizeOf(a!.shape), a!.dtype, p.dtype)],
  jvp: ([x], [t], [out]) => [
    isFloat(x!.dtype) && isFloat(out!.dtype) ? astype(t as Tensor, out!.dtype) : Zero.like(out!),
  ],
  vjp: ([ct], [x], [out]) => [
    isFloat(x!.dtype) && isFloat(out!.dtype) ? astype(ct!, x!.dtype) : Zero.like(x!),
  ],
  // jet: y_k = convert(x_k) between float dtypes, else 0
  jet: jetLinear(() => convertP),
  // elementwise: convert the whole batch, the batch axis stays put
  batch: unopBatcher(() => convertP),
  showParams: (p) => `new_dtype=${p.dtype}${p.weakType ? " weak" : ""}`,
});

// stop_gradient(x) = x with zero derivative in every mode.
export const stopGradientP: Primitive<NoParams> = definePrimitive<NoParams>({
  name: "stop_gradient",
  saves: "none",
  abstractEval(avals) {
    checkArity("stop_gradient", avals, 1);
    const a = avals[0]!;
    return [{ shape: a.shape, dtype: a.dtype, weakType: a.weakType }];
  },
  impl: (_b, [x]) => [x!],
  jvp: (_, __, [out]) => [Zero.like(out!)],
  vjp: (_, [x]) => [Zero.like(x!)],
  // jet: zero series, as every derivative
  jet: jetZero(),
  // the identity on each example: the batch axis stays put
  batch: unopBatcher(() => stopGradientP),
});
