/**
 * @file What the black-box contract tests (test/contract-*.test.ts) share: reading results as
 * numbers whatever form they come in (JS numbers, tensors, nested arrays, booleans), and
 * tolerance checks with a per-file default.
 */

import assert from "node:assert/strict";
import * as ad from "adjoint";

export type T = ad.Tensor;

/** A JS number where a signature names a Tensor (the contract accepts numbers everywhere). */
export const n = (x: number) => x as unknown as T;

/** The number in a JS number or a size-1 tensor. */
export function num(v: unknown): number {
  if (typeof v === "number") return v;
  assert.ok(v instanceof ad.Tensor, `expected a number or a Tensor, got ${String(v)}`);
  return v.item();
}

/** Every number of a tensor, a nested array (of tensors too) or a boolean, row-major. */
export function flat(v: unknown): number[] {
  if (v instanceof ad.Tensor) return flat(v.toArray());
  if (Array.isArray(v)) return v.flatMap(flat);
  if (typeof v === "boolean") return [v ? 1 : 0];
  return [v as number];
}

export const f64 = (x: unknown) => ad.tensor(x as number[], { dtype: "float64" });

/**
 * `near` (relative-and-absolute: |a − e| ≤ tol·(1 + |e|); NaN and infinities exactly) and
 * `allNear` (the same element by element, equal lengths) with `defaultTol` as the default.
 */
export function checks(defaultTol: number) {
  const near = (a: number, e: number, tol = defaultTol, what = ""): void => {
    if (Number.isNaN(e)) assert.ok(Number.isNaN(a), `${what} expected NaN, got ${a}`);
    else if (!Number.isFinite(e)) assert.equal(a, e, `${what}`);
    else assert.ok(Math.abs(a - e) <= tol * (1 + Math.abs(e)), `${what} got ${a}, expected ${e}`);
  };
  const allNear = (a: unknown, e: unknown, tol = defaultTol, what = ""): void => {
    const av = flat(a);
    const ev = flat(e);
    assert.equal(av.length, ev.length, `${what} length ${av.length} vs ${ev.length}`);
    av.forEach((x, i) => near(x, ev[i]!, tol, `${what}[${i}]`));
  };
  return { near, allNear };
}
