/**
 * @file Shared plumbing of the transforms: validating `argnums`, flattening the differentiated
 * arguments (pytrees) to tensor leaves (JS numbers become float64 scalars), and rebuilding
 * results with the same structure (numbers come back as numbers).
 */

import { Tensor } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { DTypeError, TransformError } from "../errors.js";
import { scalarOf } from "../ops/convert.js";
import { flatten, type TreeDef, unflatten } from "../tree.js";

/** Normalised `argnums`: the list, and whether the user gave a single index. */
export interface ArgNums {
  readonly list: number[];
  readonly single: boolean;
}

export function parseArgnums(
  argnums: number | readonly number[] | undefined,
  nargs: number,
  op: string,
): ArgNums {
  if (argnums !== undefined && typeof argnums !== "number" && !Array.isArray(argnums))
    throw new TransformError(
      `${op}: argnums must be an integer or an array of integers, got ${JSON.stringify(argnums) ?? typeof argnums}`,
    );
  const single = !Array.isArray(argnums);
  const list =
    argnums === undefined ? [0] : typeof argnums === "number" ? [argnums] : [...(argnums as number[])];
  if (!single && list.length === 0) throw new TransformError(`${op}: argnums must not be empty`);
  for (const a of list) {
    if (typeof a !== "number" || !Number.isInteger(a))
      throw new TransformError(
        `${op}: argnums must be integers, got ${typeof a === "string" ? JSON.stringify(a) : String(a)}`,
      );
    if (a < -nargs || a >= nargs)
      throw new TransformError(
        `${op}: argnums ${a} is out of range for a function called with ${nargs} argument(s)`,
      );
  }
  const norm = list.map((a) => (a < 0 ? a + nargs : a));
  if (new Set(norm).size !== norm.length)
    throw new TransformError(`${op}: argnums [${list.join(", ")}] repeats an argument`);
  return { list: norm, single };
}

/** One differentiated argument, flattened. */
export interface FlatArg {
  readonly def: TreeDef;
  /** Leaves as tensors (numbers converted to float64 scalars). */
  readonly leaves: Tensor[];
  /** Which leaves were JS numbers (their results come back as numbers). */
  readonly wasNumber: boolean[];
}

/** Flatten a differentiated argument; every leaf must be a floating-point tensor or a number. */
export function flattenDiffArg(arg: unknown, argIndex: number, op: string): FlatArg {
  const [ls, def] = flatten(arg);
  const leaves: Tensor[] = [];
  const wasNumber: boolean[] = [];
  ls.forEach((l, j) => {
    const where =
      ls.length === 1 && def.kind === "leaf" ? `argument ${argIndex}` : `leaf ${j} of argument ${argIndex}`;
    if (typeof l === "number") {
      leaves.push(scalarOf(l, "float64", true));
      wasNumber.push(true);
    } else if (l instanceof Tensor) {
      if (!isFloat(l.dtype))
        throw new DTypeError(
          `${op}: cannot differentiate with respect to ${where}: it has dtype ${l.dtype}; only float32/float64 are differentiable`,
        );
      leaves.push(l);
      wasNumber.push(false);
    } else
      throw new TransformError(
        `${op}: ${where} must be a Tensor or a number (or a pytree of them), got ${l === undefined || l === null ? String(l) : typeof l === "object" ? (l.constructor?.name ?? "object") : typeof l}`,
      );
  });
  return { def, leaves, wasNumber };
}

/** A result leaf for an input leaf: a JS number if the input was one and the value is concrete. */
export function outLeaf(t: Tensor, asNumber: boolean): Tensor | number {
  return asNumber && t._trace === null && t.size === 1 ? t.item() : t;
}

/** Rebuild a flattened argument's structure from per-leaf results. */
export function rebuildArg(arg: FlatArg, values: readonly Tensor[]): unknown {
  return unflatten(
    arg.def,
    values.map((v, i) => outLeaf(v, arg.wasNumber[i]!)),
  );
}

/** Flatten a function's output: leaves must be tensors or numbers. */
export function flattenOutput(out: unknown, op: string): { leaves: (Tensor | number)[]; def: TreeDef } {
  const [ls, def] = flatten(out);
  for (const l of ls)
    if (!(l instanceof Tensor) && typeof l !== "number")
      throw new TransformError(
        `${op}: the function must return Tensors or numbers (or pytrees of them), got ${l === undefined ? "undefined" : typeof l}`,
      );
  return { leaves: ls as (Tensor | number)[], def };
}

export function checkFunction(f: unknown, op: string): void {
  if (typeof f !== "function") throw new TransformError(`${op}: expected a function, got ${typeof f}`);
}
