/** @file Data types, their typed-array storage, and NumPy/JAX-style promotion with weak-typed JS numbers. */

import { DTypeError } from "./errors.js";

/** The element types a tensor can hold. */
export type DType = "float32" | "float64" | "int32" | "bool" | "float16" | "bfloat16";

/** The 16-bit float dtypes (mixed precision). Their values are stored in float32 containers, always rounded to the 16-bit format. */
export function isHalf(d: DType): boolean {
  return d === "float16" || d === "bfloat16";
}

/** The typed array that stores each dtype (bool is one byte per element, 0 or 1). */
/** The typed array that stores each dtype (bool: one byte per element; 16-bit floats: float32 containers). */
export type TypedArrayFor<D extends DType> = D extends "float64"
  ? Float64Array
  : D extends "int32"
    ? Int32Array
    : D extends "bool"
      ? Uint8Array
      : Float32Array;

export type AnyTypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;

export const DTYPES: readonly DType[] = ["bool", "int32", "float16", "bfloat16", "float32", "float64"];

/** The default dtype of `ad.tensor` for JS data, as in PyTorch and JAX. */
export const DEFAULT_FLOAT: DType = "float32";

export function isFloat(d: DType): boolean {
  return d === "float32" || d === "float64" || d === "float16" || d === "bfloat16";
}

export function isDType(x: unknown): x is DType {
  return typeof x === "string" && (DTYPES as readonly string[]).includes(x);
}

export function checkDType(x: unknown, where: string): DType {
  if (!isDType(x))
    throw new DTypeError(
      `${where}: unknown dtype ${JSON.stringify(x)}; expected one of ${DTYPES.join(", ")}`,
    );
  return x;
}

/** Allocate zeroed storage for `n` elements of `dtype`. */
export function allocArray(dtype: DType, n: number): AnyTypedArray {
  switch (dtype) {
    case "float32":
    case "float16":
    case "bfloat16":
      return new Float32Array(n);
    case "float64":
      return new Float64Array(n);
    case "int32":
      return new Int32Array(n);
    case "bool":
      return new Uint8Array(n);
  }
}

const rank: Record<DType, number> = { bool: 0, int32: 1, float16: 2, bfloat16: 2, float32: 3, float64: 4 };

/**
 * The result dtype of combining two operands. A weak operand (a JS number) takes the other's
 * dtype, except that a non-integer number with an integer/bool tensor gives float32 (JAX's rule).
 */
export function promote(a: DType, aWeak: boolean, b: DType, bWeak: boolean): DType {
  if (aWeak && !bWeak) return weakJoin(b, a);
  if (bWeak && !aWeak) return weakJoin(a, b);
  // float16 with bfloat16 has no common 16-bit format: float32, as JAX and PyTorch.
  if ((a === "float16" && b === "bfloat16") || (a === "bfloat16" && b === "float16")) return "float32";
  return rank[a] >= rank[b] ? a : b;
}

function weakJoin(strong: DType, weak: DType): DType {
  if (isFloat(strong)) return strong;
  if (weak === "float32" || weak === "float64") return DEFAULT_FLOAT;
  return rank[strong] >= rank[weak] ? strong : weak;
}

/** The dtype a JS number gets as a weak value: int32 for integers, float64 otherwise. */
export function weakDTypeOf(x: number): DType {
  return Number.isInteger(x) && Math.abs(x) <= 0x7fffffff ? "int32" : "float64";
}
