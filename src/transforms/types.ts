/**
 * @file Types of transform results. A gradient has the type of the argument it is taken with
 * respect to (tensors stay tensors, numbers stay numbers, pytrees keep their shape). Where a
 * JS-number input makes a 0-d result a number, the type says `Tensor | number` unless the result
 * is known to be a scalar.
 */

import type { Tensor } from "../core/tensor.js";

/** A result computed from arguments of type `X`: with a number argument a 0-d result is a number. */
export type LeafOut<R, X> = R extends Tensor ? (X extends number ? Tensor | number : Tensor) : R;

/** A scalar result (e.g. the value in `valueAndGrad`): a number when the argument is a number. */
export type ScalarOut<R, X> = R extends Tensor ? (X extends number ? number : Tensor) : R;

/** The `argnums`-selected argument types. */
export type Picked<A extends readonly unknown[], N extends readonly number[]> = {
  -readonly [K in keyof N]: A[N[K] & number];
};

/** The Jacobian of a leaf-to-leaf function: a number for number → number, else a tensor (or a number when 0-d). */
export type JacobianOf<R, X> = R extends number
  ? X extends number
    ? number
    : Tensor
  : R extends Tensor
    ? X extends number
      ? Tensor | number
      : Tensor
    : unknown;

/** `jvp` results: with only number primals, 0-d leaves come back as numbers. */
export type JvpOut<Out, P extends readonly unknown[]> = P extends readonly number[]
  ? LeafOut<Out, number>
  : Out;
