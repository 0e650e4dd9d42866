/**
 * @file Types of transform results. A gradient has the type of the argument it is taken with
 * respect to (tensors stay tensors, numbers stay numbers, pytrees keep their shape).
 */

import type { Tensor } from "../core/tensor.js";

/** What a leaf-valued result is when computed from arguments of type `X`: numbers stay numbers. */
export type LeafOut<R, X> = R extends Tensor
  ? X extends number
    ? number
    : Tensor
  : R extends number
    ? X extends number
      ? number
      : Tensor
    : R;

/** The `argnums`-selected argument types. */
export type Picked<A extends readonly unknown[], N extends readonly number[]> = {
  -readonly [K in keyof N]: A[N[K] & number];
};

/** The Jacobian of a leaf-to-leaf function: a number only for number → number. */
export type JacobianOf<R, X> = R extends number | Tensor
  ? X extends number
    ? R extends number
      ? number
      : LeafOut<R, X>
    : Tensor
  : unknown;
