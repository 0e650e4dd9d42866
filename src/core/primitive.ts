/**
 * @file What a primitive is. Each primitive is ONE object holding everything every transform
 * needs: its shape rule, its kernel, its JVP rule, its VJP rule, and its batching rule.
 * Transforms never switch on primitive names; they read these fields. Rules are written with
 * library ops (which go through `bind`), so every rule can itself be differentiated.
 */

import type { Backend, DeviceBuffer } from "../backend/backend.js";
import type { DType } from "../dtype.js";
import type { Tensor } from "./tensor.js";
import type { Zero } from "./zero.js";

/** The abstract value every rule sees: shape, dtype and weak typing, no data. */
export interface Aval {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly weakType: boolean;
}

/** A tangent or cotangent: a tensor, or a symbolic zero that is never materialised. */
export type Tangent = Tensor | Zero;

/**
 * Batching rule (`vmap`): given the operands one level down and the batch axis of each (null for
 * an operand that is the same for every example; at least one is batched), apply the primitive
 * to every example at once and return the outputs with their batch axes. Written with library
 * ops, so the result batches, differentiates and stages again.
 */
export type BatchRule<P> = (
  args: Tensor[],
  dims: (number | null)[],
  params: P,
) => [Tensor[], (number | null)[]];

/**
 * Taylor rule (`jet`): given the primals, each input's K derivative coefficients `[x_1, …, x_K]`
 * of a path `x(t) = x_0 + x_1 t + x_2 t²/2! + …` (null for an input whose coefficients are all
 * zero, at least one is not), and the outputs, return each output's K derivative coefficients
 * `y_k = dᵏ/dtᵏ f(x(t)) at t = 0` (null when all are zero), shaped and typed like that output.
 * Written with library ops, so it differentiates, batches and stages again.
 */
export type JetRule<P> = (
  primals: Tensor[],
  series: (Tensor[] | null)[],
  outs: Tensor[],
  params: P,
) => (Tensor[] | null)[];

export interface Primitive<P = Record<string, never>> {
  /** The name printed in programs, JAX style (`reduce_sum`, `matmul`). */
  readonly name: string;
  /** Shape rule: validates the inputs (typed errors naming the op) and returns the output avals. */
  abstractEval(avals: readonly Aval[], params: P): Aval[];
  /** Runs the kernel(s) on a backend. */
  impl(
    backend: Backend,
    inputs: DeviceBuffer[],
    avals: readonly Aval[],
    params: P,
    outAvals: readonly Aval[],
  ): DeviceBuffer[];
  /**
   * Higher-order primitives (control flow, custom rules, checkpoints) carry sub-programs or user
   * functions: at the bottom level they run those with library ops on concrete tensors. When
   * present, the eval interpreter (and jit's direct runner) call this instead of `impl`.
   */
  evaluate?(args: Tensor[], params: P): Tensor[];
  /** Forward mode: tangents of the outputs given the primals, their tangents and the outputs. */
  jvp(primals: Tensor[], tangents: Tangent[], outs: Tensor[], params: P): Tangent[];
  /**
   * Reverse mode: cotangents of the inputs given the output cotangents (materialised: the engine
   * skips a node whose outputs all have zero cotangents). `needs[i]` says whether input i wants a
   * cotangent; a rule may return a Zero for any input it was not asked for.
   */
  vjp(cts: Tensor[], primals: Tensor[], outs: Tensor[], params: P, needs: boolean[]): Tangent[];
  /**
   * Which values the VJP reads (PyTorch's saved tensors): an in-place change to one of them
   * before the backward pass is an `InPlaceError`. Default "all"; linear ops read none.
   */
  saves?: "none" | "inputs" | "outputs" | "all";
  /**
   * Reverse mode, optional: evaluate the primitive one level down for the tape and return its
   * outputs with the params its VJP rule will receive. A higher-order primitive keeps residuals
   * there (scan saves its per-step carries) so the backward pass need not recompute them.
   */
  forwardWithResiduals?(args: Tensor[], params: P): [Tensor[], P];
  /**
   * Batching rule (`vmap`). Required: tsc rejects a primitive without one (test/vmap.test.ts
   * checks every rule against a loop over examples).
   */
  batch: BatchRule<P>;
  /**
   * Taylor mode (`jet`). Optional: a primitive without one gets the generic rule of
   * `src/transforms/jet.ts` (its coefficients by K nested JVPs along the input path), correct
   * for any primitive but exponential in K; every first-order primitive has its own.
   */
  jet?: JetRule<P>;
  /** Renders params for printing programs. */
  showParams?(params: P): string;
}

/** Helper that keeps the params type of a primitive literal. */
export function definePrimitive<P>(def: Primitive<P>): Primitive<P> {
  return def;
}
