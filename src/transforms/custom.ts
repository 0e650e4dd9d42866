/**
 * @file Custom derivative rules: `ad.customVjp(f, {fwd, bwd, jvp?})` and `ad.customJvp(f, {jvp})`
 * (JAX's `custom_vjp`/`custom_jvp`), and the checkpointing transforms, re-exported so that the
 * package root picks all four up from one module. The machinery is the `custom_vjp_call` and
 * `custom_jvp_call` primitives (src/primitives/custom.ts).
 *
 * Arguments: tensor leaves of the arguments are the primitive's inputs (traced and
 * differentiated); every other leaf — JS numbers included — is passed to `f`, `fwd`, `bwd`'s
 * residuals and `jvp` unchanged and gets no cotangent. The functions may close over constants, not
 * over values an enclosing transform is differentiating or tracing: pass those as arguments.
 */

import { TransformError } from "../errors.js";
import { callCustom, customJvpP, customVjpP, newCustomId, type UserFn } from "../primitives/custom.js";
import { checkFunction } from "./args.js";

export {
  type CheckpointOptions,
  type CheckpointPolicy,
  checkpoint,
  checkpointSequential,
} from "./checkpoint.js";

/** The rules of `customVjp`. */
export interface CustomVjpRules<A extends unknown[], R, Res> {
  /** The forward pass for reverse mode: `[f(...args), residuals]` (residuals: any value, e.g. a pytree of tensors). */
  fwd: (...args: A) => [R, Res];
  /**
   * The backward pass: one cotangent per argument (a pytree like the argument, a tensor for a
   * tensor, or null for zero / for a non-tensor argument), given the residuals and the output's
   * cotangent (structured like the output).
   */
  bwd: (residuals: Res, cotangent: R) => readonly unknown[];
  /** Optional forward-mode rule `(primals, tangents) => [out, tangentOut]`, as `customJvp`'s. */
  jvp?: (primals: A, tangents: A) => [unknown, unknown];
}

/** The rule of `customJvp`. */
export interface CustomJvpRules<A extends unknown[]> {
  /**
   * `(primals, tangents) => [f(...primals), tangentOut]`: `primals` is the argument list,
   * `tangents` has the same structure (null for non-tensor leaves). It must be linear in the
   * tangents (reverse mode transposes it).
   */
  jvp: (primals: A, tangents: A) => [unknown, unknown];
}

function checkRule(rules: unknown, key: string, op: string, optional = false): void {
  const v = (rules as Record<string, unknown>)[key];
  if (v === undefined && optional) return;
  if (typeof v !== "function")
    throw new TransformError(
      `${op}: ${key} must be a function, got ${v === undefined ? "undefined" : typeof v}`,
    );
}

/**
 * `f` with a user-defined reverse-mode rule. In reverse mode (`grad`, `vjp`, `jacrev`, eager
 * `backward()`) the forward pass runs `fwd` and the backward pass `bwd(residuals, cotangent)`;
 * otherwise `f` runs. Works under `jit`, nesting (`grad(grad(g))` differentiates `fwd` and `bwd`;
 * forward-over-reverse `hessian` too) and eager autograd. Forward mode (`jvp`, `jacfwd`,
 * `linearize`) needs the optional `jvp` rule and throws a `TransformError` without it.
 * @example
 * // A straight-through estimator: round in the forward pass, identity in the backward pass.
 * const ste = ad.customVjp((x: ad.Tensor) => ad.round(x), {
 *   fwd: (x) => [ad.round(x), null],
 *   bwd: (_res, g) => [g],
 * });
 * ad.grad((x: ad.Tensor) => ad.sum(ste(x)))(ad.tensor([0.3, 1.7])); // [1, 1]
 */
export function customVjp<A extends unknown[], R, Res>(
  f: (...args: A) => R,
  rules: CustomVjpRules<A, R, Res>,
): (...args: A) => R {
  checkFunction(f, "customVjp");
  if (rules === null || typeof rules !== "object")
    throw new TransformError("customVjp: expected rules { fwd, bwd, jvp? } as the second argument");
  checkRule(rules, "fwd", "customVjp");
  checkRule(rules, "bwd", "customVjp");
  checkRule(rules, "jvp", "customVjp", true);
  const def = {
    kind: "customVjp" as const,
    name: f.name,
    id: newCustomId(),
    f: f as UserFn,
    fwd: rules.fwd as UserFn,
    bwd: rules.bwd as (residuals: never, cotangent: never) => unknown,
    ...(rules.jvp === undefined ? {} : { jvp: rules.jvp as (primals: never, tangents: never) => unknown }),
  };
  return (...args: A): R => callCustom(customVjpP, def, args) as R;
}

/**
 * `f` with a user-defined forward-mode rule `jvp(primals, tangents) => [out, tangentOut]`. Forward
 * mode calls it; reverse mode transposes it (it is linear in the tangents, so one reverse sweep
 * over it gives the exact VJP); plain evaluation runs `f`. Works under `jit`, nesting and eager
 * autograd; higher derivatives differentiate the rule itself.
 * @example
 * // softplus with a stable derivative: d/dx log(1 + eˣ) = sigmoid(x).
 * const softplus = ad.customJvp((x: ad.Tensor) => ad.softplus(x), {
 *   jvp: ([x], [t]) => [ad.softplus(x), ad.mul(t, ad.sigmoid(x))],
 * });
 * ad.grad((x: ad.Tensor) => ad.sum(softplus(x)))(ad.tensor([0, 100])); // [0.5, 1]
 */
export function customJvp<A extends unknown[], R>(
  f: (...args: A) => R,
  rules: CustomJvpRules<A>,
): (...args: A) => R {
  checkFunction(f, "customJvp");
  if (rules === null || typeof rules !== "object")
    throw new TransformError("customJvp: expected rules { jvp } as the second argument");
  checkRule(rules, "jvp", "customJvp");
  const def = {
    kind: "customJvp" as const,
    name: f.name,
    id: newCustomId(),
    f: f as UserFn,
    jvp: rules.jvp as (primals: never, tangents: never) => unknown,
  };
  return (...args: A): R => callCustom(customJvpP, def, args) as R;
}
