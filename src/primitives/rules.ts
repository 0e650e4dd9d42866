/**
 * @file The small vocabulary most rules are written in: symbolic-zero helpers, `unbroadcast`
 * (the transpose of NumPy broadcasting) and shape-rule checks. Everything here uses library
 * ops, so rules built from it differentiate again.
 */

import type { Aval, Tangent } from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { type DType, isFloat } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { add, astype, broadcastTo, reshape, sum, zeros } from "../ops/index.js";
import { broadcastShapes, fmtShape, shapeEq } from "../shape.js";

export type NoParams = Record<string, never>;

/** A materialised zero for a symbolic one. */
export function instantiate(t: Tangent): Tensor {
  return isZero(t) ? zeros(t.shape, { dtype: t.dtype }) : t;
}

/** Apply `f` to a tangent unless it is a symbolic zero. */
export function nz(t: Tangent, f: (t: Tensor) => Tensor): Tensor | null {
  return isZero(t) ? null : f(t);
}

/** Sum the non-null terms, shaped and typed like `out`; a Zero if there are none. */
export function sumTerms(out: Aval, ...terms: (Tensor | null)[]): Tangent {
  let acc: Tensor | null = null;
  for (const t of terms) if (t !== null) acc = acc === null ? t : add(acc, t);
  if (acc === null) return Zero.like(out);
  if (!shapeEq(acc.shape, out.shape)) acc = broadcastTo(acc, out.shape);
  if (acc.dtype !== out.dtype) acc = astype(acc, out.dtype);
  return acc;
}

/** Sum `g` down to `shape`: the transpose of broadcasting `shape` up to `g.shape`. */
export function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  if (shapeEq(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  const s = axes.length > 0 ? sum(g, { axis: axes, keepdims: true }) : g;
  return reshape(s, shape);
}

/** A vjp entry: `f()` if the input wants a cotangent, else a Zero like it. */
export function need(needs: boolean[], i: number, like: Aval, f: () => Tensor): Tangent {
  return needs[i] ? f() : Zero.like(like);
}

/** The aval of an elementwise result: broadcast shape, the common dtype, weak iff all inputs are. */
export function elementwiseAval(op: string, avals: readonly Aval[], dtype?: DType): Aval {
  let shape: readonly number[] = avals[0]!.shape;
  for (let i = 1; i < avals.length; i++) shape = broadcastShapes(shape, avals[i]!.shape, op);
  return { shape, dtype: dtype ?? avals[0]!.dtype, weakType: avals.every((a) => a.weakType) };
}

export function checkSameDType(op: string, avals: readonly Aval[]): void {
  for (let i = 1; i < avals.length; i++)
    if (avals[i]!.dtype !== avals[0]!.dtype)
      throw new DTypeError(`${op}: operand dtypes differ (${avals.map((a) => a.dtype).join(", ")})`);
}

export function checkFloat(op: string, a: Aval): void {
  if (!isFloat(a.dtype)) throw new DTypeError(`${op}: expected a floating-point tensor, got ${a.dtype}`);
}

export function checkArity(op: string, avals: readonly Aval[], n: number): void {
  if (avals.length !== n) throw new ShapeError(`${op}: expected ${n} operand(s), got ${avals.length}`);
}

export function checkRank(op: string, what: string, a: Aval, min: number): void {
  if (a.shape.length < min)
    throw new ShapeError(`${op}: ${what} must have rank >= ${min}, got shape ${fmtShape(a.shape)}`);
}
