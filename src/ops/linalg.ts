/** @file matmul (NumPy semantics, batched and broadcasting), dot, outer and einsum. */

import { castForMatmul } from "../amp/state.js";
import { bind1 } from "../core/interpreter.js";
import type { Tensor, TensorLike } from "../core/tensor.js";
import { inOp, ShapeError } from "../errors.js";
import * as P from "../primitives/index.js";
import { broadcastShapes, fmtShape, sizeOf } from "../shape.js";
import { promoteArgs } from "./convert.js";
import { eye } from "./creation.js";
import { mul } from "./elementwise.js";
import { sum } from "./reduction.js";
import { broadcastTo, reshape, transpose } from "./shape.js";

/**
 * Matrix product with NumPy `matmul` semantics: 1-D operands are promoted to matrices and the
 * added axis removed; leading (batch) axes broadcast.
 * @example ad.matmul(ad.ones([2, 3]), ad.ones([3, 4])).shape; // [2, 4]
 */
export function matmul(a: TensorLike, b: TensorLike): Tensor {
  let [x, y] = castForMatmul(promoteArgs("matmul", [a, b], "number")) as [Tensor, Tensor];
  const sa = x.shape;
  const sb = y.shape;
  if (x.ndim === 0 || y.ndim === 0)
    throw new ShapeError(
      `matmul: operands must have rank >= 1, got ${fmtShape(x.shape)} and ${fmtShape(y.shape)}`,
    );
  const vecA = x.ndim === 1;
  const vecB = y.ndim === 1;
  if (vecA) x = reshape(x, [1, x.shape[0]!]);
  if (vecB) y = reshape(y, [y.shape[0]!, 1]);
  const k1 = x.shape[x.ndim - 1]!;
  const k2 = y.shape[y.ndim - 2]!;
  if (k1 !== k2)
    throw new ShapeError(
      `matmul: contracting dimensions differ: ${fmtShape(sa)} has ${k1} ${vecA ? "entries" : "columns"}, ${fmtShape(sb)} has ${k2} ${vecB ? "entries" : "rows"}`,
    );
  let batch: number[];
  try {
    batch = broadcastShapes(x.shape.slice(0, -2), y.shape.slice(0, -2), "matmul");
  } catch {
    throw new ShapeError(
      `matmul: the batch dimensions of ${fmtShape(sa)} and ${fmtShape(sb)} cannot be broadcast together`,
    );
  }
  x = broadcastTo(x, [...batch, ...x.shape.slice(-2)]);
  y = broadcastTo(y, [...batch, ...y.shape.slice(-2)]);
  let out = bind1(P.matmulP, [x, y], {});
  if (vecA || vecB) {
    const s = out.shape.slice();
    if (vecB) s.pop();
    if (vecA) s.splice(s.length - (vecB ? 1 : 2), 1);
    out = reshape(out, s);
  }
  return out;
}

/**
 * NumPy `dot`: the inner product of vectors, matrix product of matrices, and in general a sum
 * over the last axis of `a` and the second-to-last of `b` (a scalar operand multiplies).
 * @example ad.dot(ad.tensor([1, 2]), ad.tensor([3, 4])).item(); // 11
 */
export function dot(a: TensorLike, b: TensorLike): Tensor {
  return inOp("dot", () => {
    const [x, y] = promoteArgs("dot", [a, b], "number") as [Tensor, Tensor];
    if (x.ndim === 0 || y.ndim === 0) return mul(x, y);
    if (y.ndim <= 2) return matmul(x, y);
    // a[..., k] · b[..., k, n]: contract into shape a[:-1] + b[:-2] + b[-1:].
    const k = x.shape[x.ndim - 1]!;
    const yk = y.shape[y.ndim - 2]!;
    if (k !== yk)
      throw new ShapeError(
        `dot: shapes ${fmtShape(x.shape)} and ${fmtShape(y.shape)} are not aligned (${k} != ${yk})`,
      );
    const perm = [y.ndim - 2, ...y.shape.map((_, i) => i).filter((i) => i !== y.ndim - 2)];
    const yt = transpose(y, perm);
    const r = matmul(reshape(x, [-1, k]), reshape(yt, [k, -1]));
    return reshape(r, [...x.shape.slice(0, -1), ...y.shape.slice(0, -2), y.shape[y.ndim - 1]!]);
  });
}

/**
 * Outer product of the flattened operands.
 * @example ad.outer(ad.tensor([1, 2]), ad.tensor([3, 4, 5])).shape; // [2, 3]
 */
export function outer(a: TensorLike, b: TensorLike): Tensor {
  return inOp("outer", () => {
    const [x, y] = promoteArgs("outer", [a, b], "number") as [Tensor, Tensor];
    return mul(reshape(x, [-1, 1]), reshape(y, [1, -1]));
  });
}

/** One operand during einsum evaluation: the tensor and the label of each axis. */
interface Term {
  t: Tensor;
  labels: string[];
}

/** Split one einsum term into its labels; `...` becomes the marker "…". */
function termLabels(term: string, spec: string): string[] {
  const parts = term.split("...");
  if (parts.length > 2) throw new ShapeError(`einsum: more than one ellipsis in "${term}" of "${spec}"`);
  const labels = parts.map((p) => [...p]);
  for (const l of labels.flat())
    if (!/[a-zA-Z]/.test(l)) throw new ShapeError(`einsum: bad label "${l}" in "${spec}"`);
  return parts.length === 2 ? [...labels[0]!, "…", ...labels[1]!] : labels[0]!;
}

/**
 * Parse a spec against the operands' ranks. An ellipsis stands for the leading axes the named
 * labels leave over; as in NumPy those axes broadcast right-aligned across operands, and an
 * implicit output puts them first. Each ellipsis axis gets a private label (outside a–z, A–Z),
 * so the contraction below treats it like any other batch axis.
 */
function parseEinsum(spec: string, ndims: readonly number[]): { inputs: string[][]; output: string[] } {
  const clean = spec.replace(/\s+/g, "");
  const [lhs, rhs] = clean.split("->") as [string, string | undefined];
  const raw = lhs.split(",").map((s) => termLabels(s, spec));
  if (raw.length !== ndims.length)
    throw new ShapeError(`einsum: "${spec}" names ${raw.length} operands, got ${ndims.length}`);
  // The ellipsis of operand i covers ndim − (named labels) axes; the widest one sets the labels.
  const ellRank = raw.map((r, i) => (r.includes("…") ? Math.max(0, ndims[i]! - (r.length - 1)) : 0));
  const width = Math.max(0, ...ellRank);
  const ell = Array.from({ length: width }, (_, k) => String.fromCharCode(0x100 + k));
  const expand = (r: string[], k: number) => {
    const at = r.indexOf("…");
    return at < 0 ? r : [...r.slice(0, at), ...ell.slice(width - k), ...r.slice(at + 1)];
  };
  const inputs = raw.map((r, i) => expand(r, ellRank[i]!));
  let output: string[];
  if (rhs === undefined) {
    // Implicit output: the ellipsis axes, then labels that appear exactly once, alphabetically.
    const counts = new Map<string, number>();
    for (const l of raw.flat()) if (l !== "…") counts.set(l, (counts.get(l) ?? 0) + 1);
    output = [...ell, ...[...counts.keys()].filter((l) => counts.get(l) === 1).sort()];
  } else {
    const out = termLabels(rhs, spec);
    if (out.includes("…") && !raw.some((r) => r.includes("…")))
      throw new ShapeError(`einsum: the output of "${spec}" has an ellipsis but no input does`);
    output = expand(out, width);
    for (const l of out) {
      if (l === "…") continue;
      if (!inputs.some((i) => i.includes(l)))
        throw new ShapeError(`einsum: output label "${l}" is not in any input of "${spec}"`);
      if (out.indexOf(l) !== out.lastIndexOf(l))
        throw new ShapeError(`einsum: output label "${l}" repeats in "${spec}"`);
    }
  }
  return { inputs, output };
}

/** Take the diagonal of repeated labels within one operand (x_ii -> d_i). */
function dedupe(term: Term): Term {
  let { t, labels } = term;
  for (;;) {
    const dup = labels.findIndex((l, i) => labels.indexOf(l) !== i);
    if (dup < 0) return { t, labels };
    const first = labels.indexOf(labels[dup]!);
    const n = t.shape[first]!;
    if (t.shape[dup] !== n)
      throw new ShapeError(`einsum: label "${labels[dup]}" has sizes ${n} and ${t.shape[dup]}`);
    // Multiply by the identity on the two axes and sum one away: the diagonal, differentiably.
    const eshape = t.shape.map((_, i) => (i === first || i === dup ? n : 1));
    t = sum(mul(t, reshape(eye(n, { dtype: t.dtype }), eshape)), { axis: dup });
    labels = labels.filter((_, i) => i !== dup);
  }
}

/** Sum away labels no one else needs. */
function sumUnneeded(term: Term, needed: Set<string>): Term {
  const drop = term.labels.flatMap((l, i) => (needed.has(l) ? [] : [i]));
  if (drop.length === 0) return term;
  return { t: sum(term.t, { axis: drop }), labels: term.labels.filter((l) => needed.has(l)) };
}

/** Contract two terms with one batched matmul: [batch, free_a, contract] x [batch, contract, free_b]. */
function contract(a: Term, b: Term, keep: Set<string>): Term {
  const inB = new Set(b.labels);
  const inA = new Set(a.labels);
  const batch = a.labels.filter((l) => inB.has(l) && keep.has(l));
  const con = a.labels.filter((l) => inB.has(l) && !keep.has(l));
  const freeA = a.labels.filter((l) => !inB.has(l));
  const freeB = b.labels.filter((l) => !inA.has(l));
  const size = new Map<string, number>();
  for (const t of [a, b])
    t.labels.forEach((l, i) => {
      const d = t.t.shape[i]!;
      const prev = size.get(l);
      if (prev !== undefined && prev !== d && prev !== 1 && d !== 1)
        throw new ShapeError(`einsum: label "${l}" has sizes ${prev} and ${d}`);
      size.set(l, Math.max(prev ?? 1, d));
    });
  const dims = (ls: string[]) => ls.map((l) => size.get(l)!);
  const arrange = (t: Term, order: string[], shape: number[]) => {
    const perm = order.map((l) => t.labels.indexOf(l));
    const full = order.map((l) => size.get(l)!);
    return reshape(broadcastTo(transpose(t.t, perm), full), shape);
  };
  const nb = sizeOf(dims(batch));
  const nc = sizeOf(dims(con));
  const xa = arrange(a, [...batch, ...freeA, ...con], [nb, sizeOf(dims(freeA)), nc]);
  const xb = arrange(b, [...batch, ...con, ...freeB], [nb, nc, sizeOf(dims(freeB))]);
  const r = bind1(P.matmulP, [xa, xb], {});
  return {
    t: reshape(r, [...dims(batch), ...dims(freeA), ...dims(freeB)]),
    labels: [...batch, ...freeA, ...freeB],
  };
}

/**
 * Einstein summation, e.g. `"ij,jk->ik"`, `"bij,bjk->bik"`, `"ii->i"`, `"i,i->"`,
 * `"...ij,...jk->...ik"` (an ellipsis broadcasts leading axes as in NumPy). Operands are
 * contracted pairwise with batched matmuls; repeated labels take diagonals.
 * @example ad.einsum("ij,jk->ik", ad.ones([2, 3]), ad.ones([3, 4])).shape; // [2, 4]
 */
export function einsum(spec: string, ...xs: TensorLike[]): Tensor {
  return inOp("einsum", () => {
    if (typeof spec !== "string")
      throw new ShapeError("einsum: the first argument must be a spec string like 'ij,jk->ik'");
    const ts = castForMatmul(promoteArgs("einsum", xs, "number"));
    const { inputs, output } = parseEinsum(
      spec,
      ts.map((t) => t.ndim),
    );
    const terms: Term[] = ts.map((t, i) => {
      if (inputs[i]!.length !== t.ndim)
        throw new ShapeError(
          `einsum: operand ${i} has shape ${fmtShape(t.shape)} but term ${i} of "${spec}" names ${inputs[i]!.length} axes`,
        );
      return dedupe({ t, labels: inputs[i]! });
    });
    const neededAfter = (k: number, extra: Term[]) => {
      const s = new Set(output);
      for (const t of [...terms.slice(k), ...extra]) for (const l of t.labels) s.add(l);
      return s;
    };
    let acc = sumUnneeded(terms[0]!, neededAfter(1, []));
    for (let k = 1; k < terms.length; k++) {
      const next = sumUnneeded(terms[k]!, neededAfter(k + 1, [acc]));
      acc = contract(acc, next, neededAfter(k + 1, []));
    }
    acc = sumUnneeded(acc, new Set(output));
    return transpose(
      acc.t,
      output.map((l) => acc.labels.indexOf(l)),
    );
  });
}
