/** @file Creating tensors: from JS data, constants, ranges and identity matrices. */

import { roundBfloat16, roundFloat16 } from "../backend/half.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { type AnyTypedArray, allocArray, checkDType, DEFAULT_FLOAT, type DType } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { checkShape, fmtShape, sizeOf } from "../shape.js";
import { astype, describe } from "./convert.js";

export interface CreateOptions {
  dtype?: DType;
  /** Record operations on this tensor for eager autograd (`backward()`); float dtypes only. */
  requiresGrad?: boolean;
}

/** Apply `requiresGrad` from the options to a freshly created leaf. */
function leaf(t: Tensor, opts: CreateOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

export interface TensorOptions extends CreateOptions {
  /** Shape for TypedArray data (default: 1-D). */
  shape?: readonly number[];
}

/** Data `ad.tensor` accepts. */
export type TensorData = number | boolean | readonly TensorData[] | AnyTypedArray | Tensor;

function dtypeOfTyped(a: AnyTypedArray): DType {
  if (a instanceof Float64Array) return "float64";
  if (a instanceof Int32Array) return "int32";
  if (a instanceof Uint8Array) return "bool";
  return "float32";
}

/** Copy values into storage of dtype `d`: bool is "non-zero" (NaN too), int32 truncates toward 0. */
function copyConverted(src: ArrayLike<number>, out: AnyTypedArray, d: DType): void {
  const n = src.length;
  if (d === "bool") for (let i = 0; i < n; i++) out[i] = src[i] !== 0 ? 1 : 0;
  else if (d === "int32") for (let i = 0; i < n; i++) out[i] = Math.trunc(src[i]!);
  else if (d === "float16") for (let i = 0; i < n; i++) out[i] = roundFloat16(src[i]!);
  else if (d === "bfloat16") for (let i = 0; i < n; i++) out[i] = roundBfloat16(src[i]!);
  else out.set(src);
}

/** How a number is stored in dtype `d` (bool: non-zero; int32: truncated; 16-bit floats: rounded). */
function storeAs(d: DType): (x: number) => number {
  switch (d) {
    case "bool":
      return (x) => (x !== 0 ? 1 : 0);
    case "int32":
      return Math.trunc;
    case "float16":
      return roundFloat16;
    case "bfloat16":
      return roundBfloat16;
    default:
      return (x) => x;
  }
}

function inferShape(data: TensorData, op: string): number[] {
  const shape: number[] = [];
  let d: TensorData = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    if (d.length === 0) break;
    d = d[0] as TensorData;
  }
  return checkShape(shape, op);
}

/** Copy nested data into `out`; returns true when every element was a boolean. */
function fill(data: TensorData, shape: number[], out: AnyTypedArray, op: string): boolean {
  let i = 0;
  let allBool = true;
  const walk = (d: TensorData, dim: number): void => {
    if (dim === shape.length) {
      if (typeof d === "number") {
        out[i++] = d;
        allBool = false;
      } else if (typeof d === "boolean") out[i++] = d ? 1 : 0;
      else if (Array.isArray(d))
        throw new ShapeError(
          `${op}: ragged nested array: expected a number at depth ${dim} for shape ${fmtShape(shape)}`,
        );
      else throw new DTypeError(`${op}: expected numbers in the data, got ${describe(d)}`);
      return;
    }
    if (!Array.isArray(d) || d.length !== shape[dim])
      throw new ShapeError(
        `${op}: ragged nested array: expected length ${shape[dim]} at depth ${dim} for shape ${fmtShape(shape)}`,
      );
    for (const e of d) walk(e as TensorData, dim + 1);
  };
  walk(data, 0);
  return allBool && i > 0;
}

/**
 * A tensor from a number, nested arrays, or a TypedArray (float32 by default for JS data;
 * TypedArrays keep their type; booleans give bool).
 * @example
 * ad.tensor([[1, 2], [3, 4]]).shape; // [2, 2]
 * ad.tensor(new Float64Array([1, 2, 3, 4]), { shape: [2, 2] }).dtype; // "float64"
 */
export function tensor(data: TensorData, opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype === undefined ? undefined : checkDType(opts.dtype, "tensor");
  if (data instanceof Tensor) {
    // A new leaf over the same (immutable) storage: no history, never the caller's object.
    const c = data._concrete();
    const copy = new Tensor(c.shape, c.dtype, false, c._buf, c._backend, null);
    return leaf(dtype ? astype(copy, dtype) : copy, opts);
  }
  if (ArrayBuffer.isView(data)) {
    const src = data as AnyTypedArray;
    const shape = opts.shape ? checkShape([...opts.shape], "tensor") : [src.length];
    if (sizeOf(shape) !== src.length)
      throw new ShapeError(
        `tensor: shape ${fmtShape(shape)} needs ${sizeOf(shape)} elements, the array has ${src.length}`,
      );
    const d = dtype ?? dtypeOfTyped(src);
    const out = allocArray(d, src.length);
    copyConverted(src, out, d);
    return leaf(Tensor._fromHost(out, shape, d), opts);
  }
  const shape = inferShape(data, "tensor");
  const n = sizeOf(shape);
  const tmp = new Float64Array(n);
  const allBool = fill(data, shape, tmp, "tensor");
  const d = dtype ?? (allBool ? "bool" : DEFAULT_FLOAT);
  const out = allocArray(d, n);
  copyConverted(tmp, out, d);
  let t = Tensor._fromHost(out, shape, d);
  if (opts.shape) t = t.reshape(opts.shape);
  return leaf(t, opts);
}

/**
 * A 0-d tensor.
 * @example
 * ad.scalar(3).shape; // []
 */
export function scalar(x: number, opts: CreateOptions = {}): Tensor {
  return tensor(x, opts);
}

/**
 * A tensor filled with `value`.
 * @example
 * ad.full([2], 7).toArray(); // [7, 7]
 */
export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  const s = checkShape(shape, "full");
  const d = opts.dtype === undefined ? DEFAULT_FLOAT : checkDType(opts.dtype, "full");
  if (typeof value !== "number") throw new DTypeError(`full: value must be a number, got ${describe(value)}`);
  const a = allocArray(d, sizeOf(s));
  if (value !== 0) a.fill(storeAs(d)(value));
  return leaf(Tensor._fromHost(a, s, d), opts);
}

/**
 * @example
 * ad.zeros([2, 3]).shape; // [2, 3]
 */
export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 0, opts);
}

/**
 * @example
 * ad.ones([2]).toArray(); // [1, 1]
 */
export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}

function likeOf(t: TensorLike, op: string): { shape: number[]; dtype: DType } {
  if (t instanceof Tensor) return { shape: t.shape, dtype: t.dtype };
  if (typeof t === "number") return { shape: [], dtype: "float64" };
  throw new DTypeError(`${op}: expected a Tensor or a number, got ${describe(t)}`);
}

/**
 * Zeros with the shape and dtype of `t`.
 * @example
 * ad.zerosLike(ad.tensor([1, 2])).toArray(); // [0, 0]
 */
export function zerosLike(t: TensorLike, opts: CreateOptions = {}): Tensor {
  const l = likeOf(t, "zerosLike");
  return zeros(l.shape, { ...opts, dtype: opts.dtype ?? l.dtype });
}

/**
 * Ones with the shape and dtype of `t`.
 * @example
 * ad.onesLike(ad.tensor([1, 2])).toArray(); // [1, 1]
 */
export function onesLike(t: TensorLike, opts: CreateOptions = {}): Tensor {
  const l = likeOf(t, "onesLike");
  return ones(l.shape, { ...opts, dtype: opts.dtype ?? l.dtype });
}

/**
 * The n×n identity (or n×m with `m`).
 * @example
 * ad.eye(2).toArray(); // [[1, 0], [0, 1]]
 */
export function eye(n: number, opts: CreateOptions & { m?: number } = {}): Tensor {
  const m = opts.m ?? n;
  checkShape([n, m], "eye");
  const d = opts.dtype === undefined ? DEFAULT_FLOAT : checkDType(opts.dtype, "eye");
  const a = allocArray(d, n * m);
  for (let i = 0; i < Math.min(n, m); i++) a[i * m + i] = 1;
  return leaf(Tensor._fromHost(a, [n, m], d), opts);
}

/**
 * Evenly spaced values in [start, stop) (NumPy `arange`; int32 when all arguments are integers).
 * @example
 * ad.arange(3).toArray(); // [0, 1, 2]
 * ad.arange(1, 2, 0.5).toArray(); // [1, 1.5]
 */
export function arange(start: number, stop?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  for (const [k, v] of [
    ["start", start],
    ["stop", stop],
    ["step", step],
  ] as const)
    if (typeof v !== "number" || !Number.isFinite(v))
      throw new DTypeError(`arange: ${k} must be a finite number, got ${String(v)}`);
  if (step === 0) throw new ShapeError("arange: step must not be 0");
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const allInt = Number.isInteger(start) && Number.isInteger(stop) && Number.isInteger(step);
  const d = opts.dtype ?? (allInt ? "int32" : DEFAULT_FLOAT);
  const a = allocArray(d, n);
  const st = storeAs(d);
  for (let i = 0; i < n; i++) a[i] = st(start + i * step);
  return leaf(Tensor._fromHost(a, [n], d), opts);
}

/**
 * `n` evenly spaced values from a to b inclusive.
 * @example
 * ad.linspace(0, 1, 3).toArray(); // [0, 0.5, 1]
 */
export function linspace(a: number, b: number, n: number, opts: CreateOptions = {}): Tensor {
  if (!Number.isInteger(n) || n < 0)
    throw new ShapeError(`linspace: n must be a non-negative integer, got ${n}`);
  const d = opts.dtype ?? DEFAULT_FLOAT;
  const arr = allocArray(d, n);
  const st = storeAs(d);
  for (let i = 0; i < n; i++) arr[i] = st(n === 1 ? a : a + ((b - a) * i) / (n - 1));
  return leaf(Tensor._fromHost(arr, [n], d), opts);
}
