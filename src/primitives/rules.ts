/**
 * @file The small vocabulary most rules are written in: symbolic-zero helpers, `unbroadcast`
 * (the transpose of NumPy broadcasting), shape-rule checks, and the batching-rule builders
 * (`unopBatcher`, `broadcastBatcher`, `loopBatcher`) with their axis helpers. Everything here
 * uses library ops, so rules built from it differentiate (and batch) again.
 */

import { bind } from "../core/interpreter.js";
import type { Aval, BatchRule, Primitive, Tangent } from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { type DType, isFloat } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { add, astype, broadcastTo, concat, reshape, slice, sum, transpose, zeros } from "../ops/index.js";
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
  const a0 = avals[0]!;
  let shape: readonly number[] = a0.shape;
  let weakType = a0.weakType;
  for (let i = 1; i < avals.length; i++) {
    const a = avals[i]!;
    shape = broadcastShapes(shape, a.shape, op);
    if (!a.weakType) weakType = false;
  }
  const d = dtype ?? a0.dtype;
  // The common case (same shapes, one dtype): the first operand already is the result's aval.
  if (shape === a0.shape && d === a0.dtype && weakType === a0.weakType) return a0;
  return { shape, dtype: d, weakType };
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

// ---- batching (vmap) ------------------------------------------------------------------------
// A batching rule sees the values one level down (each with its batch axis, or null when it is
// the same for every example) and returns the outputs with theirs. `vmap` only calls a rule when
// at least one operand is batched, so a rule always finds one.

/** The batch axes of a rule's operands: an axis of the value, or null for an unbatched one. */
export type BatchDims = (number | null)[];

/** The size of the mapped axis, read from the first batched operand. */
export function batchSize(args: readonly Tensor[], dims: readonly (number | null)[]): number {
  for (let i = 0; i < args.length; i++) {
    const d = dims[i];
    if (d !== null && d !== undefined) return args[i]!.shape[d]!;
  }
  throw new Error("adjoint internal error: a batching rule was called without a batched operand");
}

/** The batch axis of the only operand of a one-operand primitive (always batched when its rule runs). */
export function onlyDim(dims: readonly (number | null)[]): number {
  const d = dims[0];
  if (d === null || d === undefined)
    throw new Error("adjoint internal error: a batching rule was called without a batched operand");
  return d;
}

/** Move axis `from` of `x` to position `to`, keeping the order of the others. */
export function moveAxis(x: Tensor, from: number, to: number): Tensor {
  if (from === to) return x;
  const perm = x.shape.map((_, i) => i).filter((i) => i !== from);
  perm.splice(to, 0, from);
  return transpose(x, perm);
}

/** `x` with its batch axis first; an unbatched `x` gets a leading axis of `size` copies. */
export function batchFirst(x: Tensor, d: number | null, size: number): Tensor {
  if (d !== null) return moveAxis(x, d, 0);
  return broadcastTo(reshape(x, [1, ...x.shape]), [size, ...x.shape]);
}

/** A per-example axis `a` as an axis of the batched value whose batch axis is `d`. */
export function withBatchAxis(a: number, d: number): number {
  return a >= d ? a + 1 : a;
}

/** Example `i` of `x` along its batch axis `d` (the per-example value). */
export function exampleAt(x: Tensor, d: number, i: number): Tensor {
  const begin = x.shape.map((_, k) => (k === d ? i : 0));
  const size = x.shape.map((n, k) => (k === d ? 1 : n));
  return reshape(
    slice(x, begin, size),
    x.shape.filter((_, k) => k !== d),
  );
}

/**
 * The rule of an op that maps every axis of its operand to the same axis of its result
 * (elementwise unary ops, conversions): the batch axis stays where it is.
 */
export function unopBatcher<P>(self: () => Primitive<P>): BatchRule<P> {
  // f(x)[.., b, ..] = f(x[.., b, ..]): apply f to the whole batch
  return (args, dims, p) => {
    const outs = bind(self(), args, p);
    return [outs, outs.map(() => dims[0] ?? null)];
  };
}

/**
 * The rule of an elementwise op whose operands broadcast as in NumPy (binary arithmetic,
 * comparisons, select). When every batched operand has the same batch axis and the full rank,
 * and no unbatched operand reaches that axis (broadcasting aligns on the right), the op applies
 * as it is. Otherwise each batched operand's batch axis moves to the front and size-1 axes are
 * inserted after it up to the rank of the result, so that its example axes stay right-aligned
 * with those of the unbatched operands (which never reach the new leading axis).
 */
export function broadcastBatcher<P>(self: () => Primitive<P>): BatchRule<P> {
  return (args, dims, p) => {
    const ranks = args.map((a, i) => a.ndim - (dims[i] === null ? 0 : 1));
    const rank = Math.max(...ranks);
    let shared = -1;
    let inPlace = true;
    for (let i = 0; i < args.length; i++) {
      const d = dims[i] ?? null;
      if (d === null) continue;
      if (ranks[i] !== rank || (shared >= 0 && shared !== d)) inPlace = false;
      shared = d;
    }
    for (let i = 0; i < args.length && inPlace; i++)
      if ((dims[i] ?? null) === null && ranks[i]! > rank - shared) inPlace = false;
    if (inPlace) {
      const outs = bind(self(), args, p);
      return [outs, outs.map(() => shared)];
    }
    const xs = args.map((a, i) => {
      const d = dims[i] ?? null;
      if (d === null) return a;
      const front = moveAxis(a, d, 0);
      const ex = front.shape.slice(1);
      return reshape(front, [front.shape[0]!, ...new Array<number>(rank - ex.length).fill(1), ...ex]);
    });
    const outs = bind(self(), xs, p);
    return [outs, outs.map(() => 0)];
  };
}

/**
 * The fallback rule: run the primitive once per example and stack the results along a new
 * leading axis. Correct for any primitive (higher-order ones included), but a loop: primitives
 * that can batch natively should.
 */
export function loopBatcher<P>(self: () => Primitive<P>): BatchRule<P> {
  // out[b] = prim(args[b]) for each example b
  return (args, dims, p) => {
    const prim = self();
    const n = batchSize(args, dims);
    const perExample = (i: number) =>
      args.map((a, k) => {
        const d = dims[k] ?? null;
        return d === null ? a : exampleAt(a, d, i);
      });
    if (n === 0) {
      const avals = args.map((a, k) => {
        const d = dims[k] ?? null;
        return d === null
          ? a
          : { shape: a.shape.filter((_, j) => j !== d), dtype: a.dtype, weakType: a.weakType };
      });
      const outs = prim.abstractEval(avals, p).map((av) => zeros([0, ...av.shape], { dtype: av.dtype }));
      return [outs, outs.map(() => 0)];
    }
    const results: Tensor[][] = [];
    for (let i = 0; i < n; i++) results.push(bind(prim, perExample(i), p));
    const outs = results[0]!.map((_, o) =>
      concat(
        results.map((r) => reshape(r[o]!, [1, ...r[o]!.shape])),
        0,
      ),
    );
    return [outs, outs.map(() => 0)];
  };
}
