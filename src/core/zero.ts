/** @file Symbolic zeros: an absent tangent or cotangent, known only by its shape and dtype. */

import type { DType } from "../dtype.js";
import type { Aval, Tangent } from "./primitive.js";

/** A zero tangent/cotangent that is never materialised; rules skip work when they see one. */
export class Zero implements Aval {
  readonly weakType = false;
  constructor(
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {}
  static like(a: Aval): Zero {
    return new Zero(a.shape, a.dtype);
  }
}

export function isZero(t: Tangent | undefined | null): t is Zero {
  return t instanceof Zero;
}
