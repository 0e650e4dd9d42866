/** @file Shape arithmetic: sizes, strides, NumPy broadcasting, axis normalisation. */

import { ShapeError } from "./errors.js";

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function fmtShape(s: Shape): string {
  return `[${s.join(", ")}]`;
}

/** NumPy broadcasting of two shapes; `op` names the operation in the error. */
export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  if (shapeEq(a, b)) return a as number[]; // shapes are never mutated, so sharing is safe
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da === db || db === 1) out[i] = da;
    else if (da === 1) out[i] = db;
    else throw new ShapeError(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast together`);
  }
  return out;
}

/** Normalise a possibly negative axis against `ndim` (valid: -ndim <= axis < ndim). */
export function normAxis(axis: number, ndim: number, op: string): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim)
    throw new ShapeError(`${op}: axis ${axis} is out of range for a tensor of rank ${ndim}`);
  return axis < 0 ? axis + ndim : axis;
}

/** Normalise an optional axis/axes argument of a reduction to a sorted list of distinct axes. */
export function normAxes(
  axis: number | readonly number[] | undefined | null,
  ndim: number,
  op: string,
): number[] {
  if (axis === undefined || axis === null) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axis === "number" ? [axis] : [...axis];
  const out: number[] = [];
  for (const a of list) {
    if (!Number.isInteger(a) || a < -ndim || a >= ndim)
      throw new ShapeError(`${op}: axis ${a} is out of range for a tensor of rank ${ndim}`);
    const na = a < 0 ? a + ndim : a;
    if (out.includes(na)) throw new ShapeError(`${op}: axis ${a} is repeated`);
    out.push(na);
  }
  return out.sort((x, y) => x - y);
}

export function checkShape(shape: unknown, op: string): number[] {
  if (typeof shape === "number")
    throw new ShapeError(
      `${op}: shape must be an array of non-negative integers, got the number ${shape} (write [${shape}])`,
    );
  if (!Array.isArray(shape))
    throw new ShapeError(`${op}: shape must be an array of non-negative integers, got ${String(shape)}`);
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0)
      throw new ShapeError(`${op}: shape must be an array of non-negative integers, got ${fmtShape(shape)}`);
  return shape.slice() as number[];
}
