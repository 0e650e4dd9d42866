/** @file Comparing whole tensors on the host (not traced). */

import type { TensorLike } from "../core/tensor.js";
import { broadcastShapes } from "../shape.js";
import { toTensor } from "./convert.js";
import { broadcastTo } from "./shape.js";

export interface AllCloseOptions {
  rtol?: number;
  atol?: number;
  /** Treat NaNs in the same place as equal (default false, as NumPy). */
  equalNan?: boolean;
}

/**
 * True if |a - b| <= atol + rtol·|b| everywhere (shapes broadcast), as NumPy `allclose`.
 * @example ad.allclose(ad.tensor([1, 2]), ad.tensor([1, 2.0000001])); // true
 */
export function allclose(a: TensorLike, b: TensorLike, opts: AllCloseOptions = {}): boolean {
  const x = toTensor(a, "allclose");
  const y = toTensor(b, "allclose");
  const shape = broadcastShapes(x.shape, y.shape, "allclose");
  const xs = broadcastTo(x, shape)._hostData();
  const ys = broadcastTo(y, shape)._hostData();
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-8;
  for (let i = 0; i < xs.length; i++) {
    const u = xs[i]!;
    const v = ys[i]!;
    if (Number.isNaN(u) || Number.isNaN(v)) {
      if (opts.equalNan && Number.isNaN(u) && Number.isNaN(v)) continue;
      return false;
    }
    if (u === v) continue;
    if (!Number.isFinite(u) || !Number.isFinite(v)) return false; // ±Inf only matches itself
    if (!(Math.abs(u - v) <= atol + rtol * Math.abs(v))) return false;
  }
  return true;
}
