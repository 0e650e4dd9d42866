/** @file Turning JS numbers into tensors, dtype promotion of operands, and `astype`. */

import { getBackend } from "../backend/backend.js";
import { bind1 } from "../core/interpreter.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { allocArray, checkDType, type DType, isFloat, promote, weakDTypeOf } from "../dtype.js";
import { DTypeError } from "../errors.js";
import { convertP } from "../primitives/convert.js";

/** A 0-d concrete tensor holding `v`. */
export function scalarOf(v: number, dtype: DType, weakType: boolean): Tensor {
  const b = getBackend();
  if (b.scalar !== undefined) return new Tensor([], dtype, weakType, b.scalar(v, dtype), b, null);
  const a = allocArray(dtype, 1);
  a[0] = v;
  return Tensor._fromHost(a, [], dtype, weakType);
}

/** A tensor for a TensorLike: a JS number becomes a weakly typed float64 scalar. */
export function toTensor(x: TensorLike, op: string): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x === "number") return scalarOf(x, "float64", true);
  throw new DTypeError(`${op}: expected a Tensor or a number, got ${describe(x)}`);
}

export function describe(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array (wrap it with ad.tensor)";
  return typeof x === "object" ? (x.constructor?.name ?? "object") : typeof x;
}

/**
 * Convert operands to their common dtype (NumPy/JAX promotion; JS numbers are weak and take
 * the dtype of the tensors they meet). `minKind` lifts bool (and int, for "float") first.
 */
export function promoteArgs(
  op: string,
  xs: readonly TensorLike[],
  minKind: "any" | "number" | "float" = "any",
): Tensor[] {
  // Fast path: tensors that already share a dtype that needs no lifting.
  const x0 = xs[0];
  // Fast path: a strongly typed float tensor and a JS number (`x * 2`, `y + 0.1`): the number
  // takes the tensor's dtype (weakJoin of a float is the float), whatever `minKind` asks.
  if (xs.length === 2) {
    const x1 = xs[1];
    if (x0 instanceof Tensor && typeof x1 === "number" && !x0.weakType && isFloat(x0.dtype))
      return [x0, scalarOf(x1, x0.dtype, false)];
    if (x1 instanceof Tensor && typeof x0 === "number" && !x1.weakType && isFloat(x1.dtype))
      return [scalarOf(x0, x1.dtype, false), x1];
  }
  if (
    x0 instanceof Tensor &&
    (minKind === "any" || isFloat(x0.dtype) || (minKind === "number" && x0.dtype === "int32"))
  ) {
    let same = true;
    for (let i = 1; i < xs.length; i++) {
      const x = xs[i];
      if (!(x instanceof Tensor) || x.dtype !== x0.dtype || x.weakType !== x0.weakType) {
        same = false;
        break;
      }
    }
    if (same) return xs as Tensor[];
  }
  let dtype: DType | null = null;
  let weak = true;
  for (const x of xs) {
    let d: DType;
    let w: boolean;
    if (x instanceof Tensor) {
      d = x.dtype;
      w = x.weakType;
    } else if (typeof x === "number") {
      d = weakDTypeOf(x);
      w = true;
    } else throw new DTypeError(`${op}: expected a Tensor or a number, got ${describe(x)}`);
    dtype = dtype === null ? d : promote(dtype, weak, d, w);
    weak = weak && w;
  }
  if (dtype === null) return [];
  // Only JS numbers: float64, as the contract says.
  if (weak && xs.every((x) => typeof x === "number")) dtype = "float64";
  if (minKind !== "any" && dtype === "bool") dtype = minKind === "float" ? "float32" : "int32";
  if (minKind === "float" && !isFloat(dtype)) dtype = "float32";
  const out: Tensor[] = [];
  for (const x of xs) {
    if (typeof x === "number") out.push(scalarOf(x, dtype, weak));
    else out.push(x.dtype === dtype ? x : astype(x, dtype));
  }
  return out;
}

/**
 * Cast to another dtype (float to int truncates toward zero).
 * @example
 * ad.astype(ad.tensor([1.7, -1.7]), "int32").toArray(); // [1, -1]
 */
export function astype(x: TensorLike, dtype: DType): Tensor {
  const t = toTensor(x, "astype");
  checkDType(dtype, "astype");
  if (t.dtype === dtype && !t.weakType) return t;
  return bind1(convertP, [t], { dtype, weakType: false });
}
