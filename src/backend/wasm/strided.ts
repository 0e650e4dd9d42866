/**
 * @file Planning strided copies: the movement kernels (transpose, broadcast, slice, flip, pad,
 * concat) all walk a region of the output and read the input through strides. Dimensions of
 * extent 1 are dropped and neighbours that are contiguous in both source and destination are
 * merged, so most copies become one long `memory.copy` or a 2-D transpose.
 */

import { type Shape, stridesOf } from "../../shape.js";

/** One strided copy: `region` walked with source and destination strides (elements). */
export interface CopyPlan {
  readonly region: number[];
  readonly src: number[];
  readonly dst: number[];
  /** Element offsets of the region's first element. */
  readonly srcOffset: number;
  readonly dstOffset: number;
}

/**
 * Drop unit dimensions and merge neighbours that are contiguous on both sides.
 * @example
 * collapsePlan({ region: [2, 3], src: [3, 1], dst: [3, 1], srcOffset: 0, dstOffset: 0 }).region; // [6]
 */
export function collapsePlan(p: CopyPlan): CopyPlan {
  const region: number[] = [];
  const src: number[] = [];
  const dst: number[] = [];
  for (let d = 0; d < p.region.length; d++) {
    const n = p.region[d]!;
    if (n === 1) continue;
    const k = region.length - 1;
    if (k >= 0 && src[k] === p.src[d]! * n && dst[k] === p.dst[d]! * n) {
      // The previous (outer) dim steps exactly over this one: merge them.
      region[k] = region[k]! * n;
      src[k] = p.src[d]!;
      dst[k] = p.dst[d]!;
    } else {
      region.push(n);
      src.push(p.src[d]!);
      dst.push(p.dst[d]!);
    }
  }
  if (region.length === 0) return { ...p, region: [1], src: [1], dst: [1] };
  return { region, src, dst, srcOffset: p.srcOffset, dstOffset: p.dstOffset };
}

/**
 * A plan that writes `outShape` contiguously, reading source element strides `src` from `offset`.
 * @example
 * gatherPlan([3, 2], [1, 3], 0); // the transpose of a [2, 3] matrix
 */
export function gatherPlan(outShape: Shape, src: readonly number[], offset: number): CopyPlan {
  return collapsePlan({
    region: [...outShape],
    src: [...src],
    dst: stridesOf(outShape),
    srcOffset: offset,
    dstOffset: 0,
  });
}

/**
 * A plan that copies a contiguous `shape` into the region of `outShape` starting at `begin`.
 * @example
 * scatterPlan([2, 2], [4, 4], [1, 1]).dstOffset; // 5
 */
export function scatterPlan(shape: Shape, outShape: Shape, begin: readonly number[]): CopyPlan {
  const os = stridesOf(outShape);
  let off = 0;
  for (let d = 0; d < shape.length; d++) off += begin[d]! * os[d]!;
  return collapsePlan({ region: [...shape], src: stridesOf(shape), dst: os, srcOffset: 0, dstOffset: off });
}

/**
 * When the innermost two dims of a collapsed plan transpose a row-major matrix into a row-major
 * matrix, its [rows, cols] as read from the source; else null.
 * @example
 * transposeTail(gatherPlan([3, 2], [1, 3], 0)); // [2, 3]
 */
export function transposeTail(p: CopyPlan): [number, number] | null {
  const nd = p.region.length;
  if (nd < 2) return null;
  const a = p.region[nd - 2]!; // output rows = source columns
  const b = p.region[nd - 1]!; // output columns = source rows
  if (p.src[nd - 2] === 1 && p.src[nd - 1] === a && p.dst[nd - 1] === 1 && p.dst[nd - 2] === b) return [b, a];
  return null;
}
