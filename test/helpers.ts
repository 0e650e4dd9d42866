/** @file Shared assertions for the tests: approximate comparison of nested results. */

import assert from "node:assert/strict";
import * as ad from "adjoint";

/** Tensors become nested arrays (numbers for 0-d), containers are walked, other values kept. */
export function plain(v: unknown): unknown {
  if (v instanceof ad.Tensor) return v.toArray();
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

export interface Tol {
  rtol?: number;
  atol?: number;
}

function closeRec(a: unknown, e: unknown, rtol: number, atol: number, path: string): void {
  if (typeof e === "number") {
    assert.equal(typeof a, "number", `${path}: expected a number, got ${JSON.stringify(a)}`);
    const x = a as number;
    if (Number.isNaN(e)) assert.ok(Number.isNaN(x), `${path}: expected NaN, got ${x}`);
    else if (!Number.isFinite(e)) assert.equal(x, e, `${path}: expected ${e}, got ${x}`);
    else assert.ok(Math.abs(x - e) <= atol + rtol * Math.abs(e), `${path}: got ${x}, expected ${e}`);
    return;
  }
  if (Array.isArray(e)) {
    assert.ok(Array.isArray(a), `${path}: expected an array, got ${JSON.stringify(a)}`);
    assert.equal(a.length, e.length, `${path}: length ${a.length}, expected ${e.length}`);
    e.forEach((ei, i) => closeRec(a[i], ei, rtol, atol, `${path}[${i}]`));
    return;
  }
  if (e !== null && typeof e === "object") {
    assert.ok(a !== null && typeof a === "object" && !Array.isArray(a), `${path}: expected an object`);
    const ao = a as Record<string, unknown>;
    const eo = e as Record<string, unknown>;
    assert.deepEqual(Object.keys(ao), Object.keys(eo), `${path}: keys differ`);
    for (const k of Object.keys(eo)) closeRec(ao[k], eo[k], rtol, atol, `${path}.${k}`);
    return;
  }
  assert.equal(a, e, `${path}`);
}

/** Approximate equality of nested arrays / pytrees of tensors and numbers. */
export function assertClose(actual: unknown, expected: unknown, tol: Tol = {}): void {
  closeRec(plain(actual), plain(expected), tol.rtol ?? 1e-9, tol.atol ?? 1e-12, "$");
}

/** The structure of a pytree: tensors as `T<dtype>[shape]`, numbers as `number`. */

/** The same dtype, shape and bits in every element (NaN payloads aside; -0 apart from 0). */
export function sameBits(a: ad.Tensor, b: ad.Tensor, what = ""): void {
  assert.equal(a.dtype, b.dtype, what);
  assert.deepEqual(a.shape, b.shape, what);
  const x = a.data();
  const y = b.data();
  for (let i = 0; i < x.length; i++)
    assert.ok(Object.is(x[i], y[i]), `${what} element ${i}: ${x[i]} vs ${y[i]} (${a.dtype})`);
}
