/** @file The typed errors of adjoint. Every error a user can trigger extends `AdError`. */

/**
 * Base class of every error adjoint throws on purpose.
 * @example
 * try { ad.grad((x) => x)(ad.tensor([1, 2])); } catch (e) { e instanceof ad.AdError; } // true
 */
export class AdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Incompatible shapes: the message names the operation, the argument(s) and the shapes.
 * @example
 * ad.add(ad.zeros([2, 3]), ad.zeros([4])); // throws ShapeError
 */
export class ShapeError extends AdError {}

/**
 * A dtype an operation cannot take, e.g. `grad` with respect to an int32 input.
 * @example
 * ad.grad((x) => x.sum())(ad.tensor([1, 2], { dtype: "int32" })); // throws DTypeError
 */
export class DTypeError extends AdError {}

/**
 * Misuse of a transform: `grad` of a non-scalar output, a bad `argnums`, an escaped tracer.
 * @example
 * ad.grad((x) => x)(ad.tensor([1, 2])); // throws TransformError
 */
export class TransformError extends AdError {}

/**
 * A NaN or Inf appeared while anomaly detection was on.
 * @example
 * ad.detectAnomaly(() => ad.log(ad.tensor([-1]))); // throws AnomalyError
 */
export class AnomalyError extends AdError {}

/**
 * A tensor saved for the backward pass was modified in place afterwards.
 * @example
 * const a = ad.tensor([1], { requiresGrad: true }).sigmoid(); a.mul_(2); // backward later throws InPlaceError
 */
export class InPlaceError extends AdError {}

/**
 * A second backward pass through a graph that was already freed.
 * @example
 * const y = ad.tensor(2, { requiresGrad: true }).mul(3); y.backward(); y.backward(); // throws GraphFreedError
 */
export class GraphFreedError extends AdError {}

/**
 * @internal Give an error raised inside a public operation's own machinery the name of that
 * operation (`maximum: ...` rather than the primitive's `max: ...`). Only used around code that
 * never calls back into user functions, so user errors are never re-labelled.
 */
export function relabel(e: unknown, op: string): unknown {
  // Anomaly errors name the primitive that produced the NaN on purpose.
  if (!(e instanceof AdError) || e instanceof AnomalyError) return e;
  const m = /^[A-Za-z_][\w.]*: /.exec(e.message);
  const prefix = `${op}: `;
  if (m !== null && m[0] !== prefix) {
    const old = e.message;
    e.message = prefix + old.slice(m[0].length);
    if (e.stack !== undefined) e.stack = e.stack.replace(old, e.message);
  }
  return e;
}

/** @internal Run `fn` as the public operation `op` (see `relabel`). */
export function inOp<T>(op: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw relabel(e, op);
  }
}
