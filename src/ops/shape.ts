/** @file Shape operations: reshape, transpose, broadcasting, slicing, joining, indexing. */

import { bind1 } from "../core/interpreter.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { DTypeError, inOp, ShapeError } from "../errors.js";
import * as P from "../primitives/index.js";
import { checkShape, fmtShape, normAxes, normAxis, shapeEq, sizeOf } from "../shape.js";
import { describe, promoteArgs, toTensor } from "./convert.js";
import { tensor } from "./creation.js";

/**
 * A view with a new shape (one entry may be -1).
 * @example ad.arange(6).reshape([2, -1]).shape; // [2, 3]
 */
export function reshape(x: TensorLike, shape: readonly number[]): Tensor {
  const t = toTensor(x, "reshape");
  if (!Array.isArray(shape)) throw new ShapeError(`reshape: shape must be an array, got ${describe(shape)}`);
  const s = shape.slice();
  const free = s.indexOf(-1);
  if (free >= 0) {
    if (s.indexOf(-1, free + 1) >= 0)
      throw new ShapeError(`reshape: only one dimension can be -1 in ${fmtShape(s)}`);
    const rest = sizeOf(s.filter((_, i) => i !== free));
    if (rest === 0 || t.size % rest !== 0)
      throw new ShapeError(
        `reshape: cannot reshape ${fmtShape(t.shape)} (size ${t.size}) into ${fmtShape(shape)}`,
      );
    s[free] = t.size / rest;
  }
  checkShape(s, "reshape");
  if (shapeEq(s, t.shape)) return t;
  return bind1(P.reshapeP, [t], { shape: s });
}

/**
 * Permute axes (reverse them by default).
 * @example ad.zeros([2, 3]).transpose().shape; // [3, 2]
 */
export function transpose(x: TensorLike, axes?: readonly number[]): Tensor {
  const t = toTensor(x, "transpose");
  const n = t.ndim;
  const perm =
    axes === undefined
      ? Array.from({ length: n }, (_, i) => n - 1 - i)
      : axes.map((a) => (a < 0 ? a + n : a));
  if (perm.every((p, i) => p === i) && perm.length === n) return t;
  return bind1(P.transposeP, [t], { perm });
}

/** @internal Swap the last two axes. */
export function swapLastAxes(x: Tensor): Tensor {
  const n = x.ndim;
  const perm = Array.from({ length: n }, (_, i) => i);
  perm[n - 1] = n - 2;
  perm[n - 2] = n - 1;
  return transpose(x, perm);
}

/**
 * Insert size-1 axes.
 * @example ad.zeros([3]).expandDims(0).shape; // [1, 3]
 */
export function expandDims(x: TensorLike, axis: number | readonly number[]): Tensor {
  return inOp("expandDims", () => {
    const t = toTensor(x, "expandDims");
    const list = typeof axis === "number" ? [axis] : [...axis];
    const outRank = t.ndim + list.length;
    const axes = normAxes(list, outRank, "expandDims");
    const shape: number[] = [];
    let j = 0;
    for (let i = 0; i < outRank; i++) shape.push(axes.includes(i) ? 1 : t.shape[j++]!);
    return reshape(t, shape);
  });
}

/**
 * Remove size-1 axes (all of them, or the given ones).
 * @example ad.zeros([1, 3, 1]).squeeze().shape; // [3]
 */
export function squeeze(x: TensorLike, axis?: number | readonly number[]): Tensor {
  return inOp("squeeze", () => {
    const t = toTensor(x, "squeeze");
    const axes =
      axis === undefined
        ? t.shape.flatMap((d, i) => (d === 1 ? [i] : []))
        : normAxes(axis, t.ndim, "squeeze");
    for (const a of axes)
      if (t.shape[a] !== 1)
        throw new ShapeError(`squeeze: axis ${a} of ${fmtShape(t.shape)} has size ${t.shape[a]}, not 1`);
    return reshape(
      t,
      t.shape.filter((_, i) => !axes.includes(i)),
    );
  });
}

/**
 * NumPy `broadcast_to`.
 * @example ad.tensor([1, 2]).broadcastTo([3, 2]).shape; // [3, 2]
 */
export function broadcastTo(x: TensorLike, shape: readonly number[]): Tensor {
  return inOp("broadcastTo", () => {
    const t = toTensor(x, "broadcastTo");
    const s = checkShape([...shape], "broadcastTo");
    if (shapeEq(s, t.shape)) return t;
    if (s.length < t.ndim)
      throw new ShapeError(`broadcastTo: cannot broadcast ${fmtShape(t.shape)} to ${fmtShape(s)}`);
    return bind1(P.broadcastP, [t], { shape: s });
  });
}

/**
 * Join tensors along an existing axis.
 * @example ad.concat([ad.ones([2]), ad.zeros([1])]).toArray(); // [1, 1, 0]
 */
export function concat(xs: readonly TensorLike[], axis = 0): Tensor {
  return inOp("concat", () => {
    if (!Array.isArray(xs) || xs.length === 0)
      throw new ShapeError("concat: expected a non-empty array of tensors");
    const ts = promoteArgs("concat", xs);
    const first = ts[0]!;
    if (first.ndim === 0)
      throw new ShapeError("concat: zero-dimensional tensors cannot be concatenated (use stack)");
    const ax = normAxis(axis, first.ndim, "concat");
    if (ts.length === 1) return first;
    return bind1(P.concatP, ts, { axis: ax });
  });
}

/**
 * Join tensors along a new axis.
 * @example ad.stack([ad.ones([2]), ad.zeros([2])]).shape; // [2, 2]
 */
export function stack(xs: readonly TensorLike[], axis = 0): Tensor {
  return inOp("stack", () => {
    if (!Array.isArray(xs) || xs.length === 0)
      throw new ShapeError("stack: expected a non-empty array of tensors");
    const ts = promoteArgs("stack", xs);
    const s0 = ts[0]!.shape;
    for (const t of ts)
      if (!shapeEq(t.shape, s0))
        throw new ShapeError(`stack: shapes differ (${ts.map((v) => fmtShape(v.shape)).join(", ")})`);
    const ax = normAxis(axis, s0.length + 1, "stack");
    return concat(
      ts.map((t) => expandDims(t, ax)),
      ax,
    );
  });
}

/**
 * Split into equal parts (a number) or at indices (an array), as NumPy `split`.
 * @example ad.arange(6).split(3).map((t) => t.toArray()); // [[0, 1], [2, 3], [4, 5]]
 */
export function split(x: TensorLike, sections: number | readonly number[], axis = 0): Tensor[] {
  return inOp("split", () => {
    const t = toTensor(x, "split");
    const ax = normAxis(axis, t.ndim, "split");
    const n = t.shape[ax]!;
    let cuts: number[];
    if (typeof sections === "number") {
      if (!Number.isInteger(sections) || sections <= 0 || n % sections !== 0)
        throw new ShapeError(
          `split: axis ${ax} of ${fmtShape(t.shape)} (size ${n}) does not divide into ${sections} equal parts`,
        );
      cuts = Array.from({ length: sections - 1 }, (_, i) => ((i + 1) * n) / sections);
    } else cuts = sections.map((c) => Math.min(Math.max(c < 0 ? c + n : c, 0), n));
    const bounds = [0, ...cuts, n];
    const out: Tensor[] = [];
    for (let i = 0; i + 1 < bounds.length; i++) {
      const lo = bounds[i]!;
      const hi = Math.max(bounds[i + 1]!, lo);
      const begin = t.shape.map((_, j) => (j === ax ? lo : 0));
      const size = t.shape.map((d, j) => (j === ax ? hi - lo : d));
      out.push(slice(t, begin, size));
    }
    return out;
  });
}

/**
 * A contiguous block: `begin` per axis (negative counts from the end) and `size` per axis
 * (-1 or omitted = to the end).
 * @example ad.arange(5).slice([1], [3]).toArray(); // [1, 2, 3]
 */
export function slice(x: TensorLike, begin: readonly number[], size?: readonly number[]): Tensor {
  const t = toTensor(x, "slice");
  if (begin.length !== t.ndim)
    throw new ShapeError(
      `slice: begin has ${begin.length} entries for a tensor of shape ${fmtShape(t.shape)}`,
    );
  if (size !== undefined && size.length !== t.ndim)
    throw new ShapeError(`slice: size has ${size.length} entries for a tensor of shape ${fmtShape(t.shape)}`);
  const b = begin.map((v, i) => (v < 0 ? v + t.shape[i]! : v));
  const s = t.shape.map((d, i) => {
    const z = size?.[i] ?? -1;
    return z === -1 ? d - b[i]! : z;
  });
  if (shapeEq(s, t.shape)) return t;
  return bind1(P.sliceP, [t], { begin: b, size: s });
}

/**
 * Reverse the order of elements along axes (all by default).
 * @example ad.arange(3).flip().toArray(); // [2, 1, 0]
 */
export function flip(x: TensorLike, axis?: number | readonly number[]): Tensor {
  return inOp("flip", () => {
    const t = toTensor(x, "flip");
    const axes = normAxes(axis, t.ndim, "flip");
    if (axes.length === 0) return t;
    return bind1(P.flipP, [t], { axes });
  });
}

/**
 * Pad with a constant: `widths` is NumPy's `[[before, after], ...]` (one pair per axis, or a
 * single pair for every axis).
 * @example ad.tensor([1]).pad([[1, 2]]).toArray(); // [0, 1, 0, 0]
 */
export function pad(
  x: TensorLike,
  widths: readonly (readonly [number, number])[] | readonly [number, number] | number,
  value = 0,
): Tensor {
  const t = toTensor(x, "pad");
  let w: [number, number][];
  if (typeof widths === "number") w = t.shape.map(() => [widths, widths]);
  else if (widths.length === 2 && typeof widths[0] === "number")
    w = t.shape.map(() => [widths[0] as number, widths[1] as number]);
  else w = (widths as readonly (readonly [number, number])[]).map((p) => [p[0], p[1]]);
  if (w.length !== t.ndim)
    throw new ShapeError(`pad: widths has ${w.length} pairs for a tensor of shape ${fmtShape(t.shape)}`);
  if (w.every(([a, b]) => a === 0 && b === 0)) return t;
  return bind1(P.padP, [t], { widths: w, value });
}

function indexTensor(indices: TensorLike | readonly number[], op: string): Tensor {
  let it: Tensor;
  if (Array.isArray(indices)) it = tensor(indices as number[], { dtype: "int32" });
  else if (typeof indices === "number") it = tensor(indices, { dtype: "int32" });
  else if (indices instanceof Tensor) it = indices;
  else
    throw new DTypeError(
      `${op}: indices must be an int32 tensor, a number or an array, got ${describe(indices)}`,
    );
  if (it.dtype !== "int32") {
    if (it.dtype === "bool") throw new DTypeError(`${op}: indices must be int32, got bool`);
    throw new DTypeError(`${op}: indices must be int32, got ${it.dtype}`);
  }
  return it;
}

/**
 * NumPy `take`: pick entries along `axis` (the flattened tensor when omitted).
 * @example ad.tensor([10, 20, 30]).take([2, 0]).toArray(); // [30, 10]
 */
export function take(x: TensorLike, indices: TensorLike | readonly number[], axis?: number): Tensor {
  return inOp("take", () => {
    let t = toTensor(x, "take");
    const idx = indexTensor(indices, "take");
    if (axis === undefined) {
      t = reshape(t, [-1]);
      axis = 0;
    }
    const ax = normAxis(axis, t.ndim, "take");
    const pre = t.shape.slice(0, ax);
    const post = t.shape.slice(ax + 1);
    const n = t.shape[ax]!;
    const k = idx.size;
    const x3 = reshape(t, [sizeOf(pre), n, sizeOf(post)]);
    const i3 = broadcastTo(reshape(idx, [1, k, 1]), [sizeOf(pre), k, sizeOf(post)]);
    return reshape(bind1(P.gatherP, [x3, i3], { axis: 1 }), [...pre, ...idx.shape, ...post]);
  });
}

/**
 * PyTorch `gather`: `out[i][j] = x[index[i][j]][j]` along `axis` (index has x's rank).
 * @example ad.tensor([[1, 2], [3, 4]]).gather(1, ad.tensor([[1], [0]], { dtype: "int32" })).toArray(); // [[2], [3]]
 */
export function gather(x: TensorLike, axis: number, index: Tensor): Tensor {
  const t = toTensor(x, "gather");
  const idx = indexTensor(index, "gather");
  return bind1(P.gatherP, [t, idx], { axis: normAxis(axis, t.ndim, "gather") });
}

/**
 * PyTorch `scatter_add`: a copy of x with `src` added at `index` along `axis`.
 * @example ad.zeros([3]).scatterAdd(0, ad.tensor([0, 0], { dtype: "int32" }), ad.tensor([1, 2])).toArray(); // [3, 0, 0]
 */
export function scatterAdd(x: TensorLike, axis: number, index: Tensor, src: TensorLike): Tensor {
  const [t, s] = promoteArgs("scatterAdd", [x, src]);
  const idx = indexTensor(index, "scatterAdd");
  const srcT = s!.ndim === 0 ? broadcastTo(s!, idx.shape) : s!;
  return bind1(P.scatterAddP, [t!, idx, srcT], { axis: normAxis(axis, t!.ndim, "scatterAdd") });
}

/** One entry of a basic index: a position, `null` (the whole axis), or `[start, stop?]`. */
export type Index = number | null | readonly [number, number?];

/**
 * Basic indexing: integers select (and drop) an axis, `null` keeps an axis, `[start, stop]`
 * slices (negative values count from the end). Missing trailing entries keep their axes.
 * @example ad.arange(6).reshape([2, 3]).at(1, [0, 2]).toArray(); // [3, 4]
 */
export function at(x: TensorLike, ...index: Index[]): Tensor {
  const t = toTensor(x, "at");
  if (index.length > t.ndim)
    throw new ShapeError(`at: ${index.length} indices for a tensor of shape ${fmtShape(t.shape)}`);
  const begin: number[] = [];
  const size: number[] = [];
  const keep: number[] = [];
  t.shape.forEach((d, i) => {
    const e = index[i];
    if (e === undefined || e === null) {
      begin.push(0);
      size.push(d);
      keep.push(d);
    } else if (typeof e === "number") {
      if (!Number.isInteger(e) || e < -d || e >= d)
        throw new ShapeError(`at: index ${e} is out of bounds for axis ${i} with size ${d}`);
      begin.push(e < 0 ? e + d : e);
      size.push(1);
    } else {
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
      const lo = clamp(e[0]);
      const hi = Math.max(clamp(e[1] ?? d), lo);
      begin.push(lo);
      size.push(hi - lo);
      keep.push(hi - lo);
    }
  });
  return reshape(slice(t, begin, size), keep);
}

/** @internal Move `axis` to the end. */
export function moveAxisLast(x: Tensor, axis: number): Tensor {
  const perm = x.shape.map((_, i) => i).filter((i) => i !== axis);
  perm.push(axis);
  return transpose(x, perm);
}
