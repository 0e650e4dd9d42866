/**
 * @file Shared plumbing of the implicit-differentiation functions, the Krylov solvers and
 * `odeint`: pytrees of tensors as flat leaf lists (JS numbers become float64 scalars), checking
 * and casting what user functions return against the structure they must keep, vector algebra
 * over leaf lists, a convergence loop that works eagerly and under `jit`, value-and-VJP on flat
 * functions, and a one-entry cache that lets a forward rule reuse the primal solution the
 * interpreter computed just before calling it.
 */

import { currentInterpreter, withInterpreter } from "../core/interpreter.js";
import type { Aval } from "../core/primitive.js";
import { backwardPass, Node, type Ref } from "../core/tape.js";
import { Tensor } from "../core/tensor.js";
import { type DType, isFloat } from "../dtype.js";
import { DTypeError, ShapeError, TransformError } from "../errors.js";
import { describe, scalarOf } from "../ops/convert.js";
import {
  add,
  astype,
  div,
  full,
  greater,
  less,
  logicalAnd,
  mul,
  sqrt,
  square,
  sub,
  sum,
  zeros,
} from "../ops/index.js";
import { fmtShape, shapeEq } from "../shape.js";
import { whileFlat } from "../transforms/control.js";
import { ReverseInterpreter } from "../transforms/reverse.js";
import { flatten, showTreeDef, type TreeDef, treeDefEqual } from "../tree.js";

export const avalOf = (a: Aval): Aval => ({ shape: a.shape, dtype: a.dtype, weakType: a.weakType });

/** A pytree whose leaves must be tensors or numbers, as tensor leaves (numbers: float64 scalars). */
export function tensorLeaves(tree: unknown, what: string, op: string, float = true): [Tensor[], TreeDef] {
  const [ls, def] = flatten(tree);
  const out = ls.map((l, i) => {
    const where = ls.length === 1 && def.kind === "leaf" ? what : `${what} (leaf ${i})`;
    let t: Tensor;
    if (typeof l === "number") t = scalarOf(l, "float64", true);
    else if (l instanceof Tensor) t = l;
    else
      throw new TransformError(
        `${op}: ${where} must be a Tensor or a number (or a pytree of them), got ${describe(l)}`,
      );
    if (float && !isFloat(t.dtype))
      throw new DTypeError(`${op}: ${where} must have a floating-point dtype, got ${t.dtype}`);
    return t;
  });
  if (out.length === 0) throw new TransformError(`${op}: ${what} has no tensor leaves`);
  return [out, def];
}

/** A pytree with its number leaves turned into float64 scalars (other leaves unchanged). */
export function numbersToTensors(tree: unknown): [unknown[], TreeDef] {
  const [ls, def] = flatten(tree);
  return [ls.map((l) => (typeof l === "number" ? scalarOf(l, "float64", true) : l)), def];
}

/**
 * What a user function returned, checked against the structure `def` and the shapes of `likes`,
 * as tensor leaves cast to the dtypes of `likes` (a number becomes a filled tensor).
 */
export function matchLeaves(
  value: unknown,
  def: TreeDef,
  likes: readonly Aval[],
  what: string,
  op: string,
): Tensor[] {
  const [ls, d] = flatten(value);
  if (!treeDefEqual(d, def))
    throw new TransformError(`${op}: ${what} has structure ${showTreeDef(d)}, expected ${showTreeDef(def)}`);
  return ls.map((l, i) => {
    const like = likes[i]!;
    const where = ls.length === 1 && def.kind === "leaf" ? what : `${what} (leaf ${i})`;
    if (typeof l === "number") return full(like.shape, l, { dtype: like.dtype });
    if (!(l instanceof Tensor))
      throw new TransformError(`${op}: ${where} must be a Tensor or a number, got ${describe(l)}`);
    if (!shapeEq(l.shape, like.shape))
      throw new ShapeError(
        `${op}: ${where} has shape ${fmtShape(l.shape)}, expected ${fmtShape(like.shape)}`,
      );
    return l.dtype === like.dtype ? l : astype(l, like.dtype);
  });
}

/** Check a staged function's output avals against the expected structure and shapes. */
export function checkOut(
  out: { def: TreeDef; avals: readonly Aval[] } | null,
  def: TreeDef,
  likes: readonly Aval[],
  what: string,
  op: string,
): void {
  if (out === null) return;
  if (!treeDefEqual(out.def, def))
    throw new TransformError(
      `${op}: ${what} has structure ${showTreeDef(out.def)}, expected ${showTreeDef(def)}`,
    );
  out.avals.forEach((a, i) => {
    const like = likes[i]!;
    if (!shapeEq(a.shape, like.shape))
      throw new ShapeError(
        `${op}: ${what}${likes.length === 1 ? "" : ` (leaf ${i})`} has shape ${fmtShape(a.shape)}, expected ${fmtShape(like.shape)}`,
      );
  });
}

// ---- vector algebra on leaf lists ------------------------------------------------------------

export const addL = (a: readonly Tensor[], b: readonly Tensor[]): Tensor[] => a.map((x, i) => add(x, b[i]!));
export const subL = (a: readonly Tensor[], b: readonly Tensor[]): Tensor[] => a.map((x, i) => sub(x, b[i]!));
export const negL = (a: readonly Tensor[]): Tensor[] => a.map((x) => mul(x, -1));
export const zerosL = (likes: readonly Aval[]): Tensor[] =>
  likes.map((l) => zeros(l.shape, { dtype: l.dtype }));

/** Σ ⟨aᵢ, bᵢ⟩ as a 0-d tensor. */
export function vdotL(a: readonly Tensor[], b: readonly Tensor[]): Tensor {
  let s: Tensor | null = null;
  a.forEach((x, i) => {
    const d = sum(mul(x, b[i]!));
    s = s === null ? d : add(s, d);
  });
  return s ?? scalarOf(0, "float64", true);
}

/** The 2-norm over all leaves, as a float64 0-d tensor. */
export function normL(a: readonly Tensor[]): Tensor {
  let s: Tensor | null = null;
  for (const x of a) {
    const d = astype(sum(square(x)), "float64");
    s = s === null ? d : add(s, d);
  }
  return sqrt(s ?? scalarOf(0, "float64", false));
}

/** A dtype-dependent default tolerance: `f64` for float64 data, `f32` otherwise. */
export function defaultTol(leaves: readonly { dtype: DType }[], f64: number, f32: number): number {
  return leaves.every((l) => l.dtype === "float64") ? f64 : f32;
}

// ---- a convergence loop ----------------------------------------------------------------------

/** The result of `iterate`: the last iterate, the number of steps and the last relative change. */
export interface Iterated {
  readonly x: Tensor[];
  readonly iterations: Tensor;
  readonly change: Tensor;
}

/**
 * `x ← step(x)` until ‖x_{k+1} − x_k‖₂ ≤ tol·(1 + ‖x_{k+1}‖₂) or `maxIter` steps. A JS loop on
 * concrete values and a staged `while` under `jit` (`whileFlat`).
 */
export function iterate(
  step: (x: Tensor[]) => Tensor[],
  x0: readonly Tensor[],
  tol: number,
  maxIter: number,
  op: string,
): Iterated {
  const n = x0.length;
  const init = [...x0, scalarOf(Number.POSITIVE_INFINITY, "float64", false), scalarOf(0, "int32", false)];
  const out = whileFlat(
    (c) => logicalAnd(less(c[n + 1]!, maxIter), greater(c[n]!, tol)),
    (c) => {
      const x = c.slice(0, n);
      const next = step(x);
      const change = div(normL(subL(next, x)), add(normL(next), 1));
      return [...next, change, add(c[n + 1]!, 1)];
    },
    init,
    op,
  );
  return { x: out.slice(0, n), change: out[n]!, iterations: out[n + 1]! };
}

// ---- derivative helpers ----------------------------------------------------------------------

/**
 * Run `fn` on `primals` under a reverse interpreter: its outputs, and a pullback from output
 * cotangents (null = zero) to cotangents of the inputs flagged in `diff` (null = zero or not
 * differentiated). The pullback may be called many times (one recording).
 */
export function recordFlat(
  fn: (xs: Tensor[]) => Tensor[],
  primals: readonly Tensor[],
  diff: readonly boolean[],
): [Tensor[], (cts: readonly (Tensor | null)[]) => (Tensor | null)[]] {
  const interp = new ReverseInterpreter(currentInterpreter());
  const leaves = primals.map((p, i) => (diff[i] && isFloat(p.dtype) ? Node.leaf(p) : null));
  const args = primals.map((p, i) => {
    const n = leaves[i];
    return n === null || n === undefined ? p : interp.lift(p, { node: n, index: 0 });
  });
  const outs = withInterpreter(interp, () => fn(args));
  const pull = (cts: readonly (Tensor | null)[]) => {
    const seeds: [Ref, Tensor][] = [];
    outs.forEach((o, i) => {
      const ct = cts[i];
      const r = interp.refOf(o);
      if (ct !== null && ct !== undefined && r !== null) seeds.push([r, ct]);
    });
    const adj = backwardPass(seeds, { order: interp.nodes });
    return leaves.map((n) => (n === null ? null : (adj.get(n)?.[0] ?? null)));
  };
  return [outs.map((o) => interp.primalOf(o)), pull];
}

/** Cotangents with nulls replaced by zeros like `likes`. */
export function fillZeros(cts: readonly (Tensor | null)[], likes: readonly Aval[]): Tensor[] {
  return likes.map((l, i) => cts[i] ?? zeros(l.shape, { dtype: l.dtype }));
}

// ---- reusing the primal solution in forward rules ----------------------------------------------

/**
 * A one-entry memo of a custom function's last plain evaluation, keyed on the identity of its
 * input tensors. The forward-mode interpreter evaluates a primitive and then calls its JVP rule
 * on the very same tensors; the rule looks the solution up here instead of solving again.
 */
export class LastCall<R> {
  #ins: readonly Tensor[] | null = null;
  #out: R | null = null;
  set(ins: readonly Tensor[], out: R): void {
    this.#ins = ins;
    this.#out = out;
  }
  get(ins: readonly Tensor[]): R | null {
    const k = this.#ins;
    if (k === null || k.length !== ins.length || k.some((t, i) => t !== ins[i])) return null;
    return this.#out;
  }
}

/** The tensor leaves of a nested argument list, in order (for `LastCall` keys). */
export function tensorsOf(args: readonly unknown[]): Tensor[] {
  return flatten(args)[0].filter((l): l is Tensor => l instanceof Tensor);
}
