/**
 * @file `fused` and `fused_program`: elementwise operations run as one kernel. Only `jit`'s
 * fusion pass creates them, for the programs it runs on concrete inputs; transforms always see the unfused
 * program, so this primitive has no derivative, Taylor or batching rules of its own (they throw).
 */

import type { Backend, DeviceBuffer, FusedReuse } from "../backend/backend.js";
import {
  arrayKernel,
  exprSize,
  type FusedExpr,
  type FusedProgram,
  scalarKernel,
  showExpr,
  showProgram,
} from "../backend/kernel.js";
import { type Aval, definePrimitive } from "../core/primitive.js";
import { allocArray } from "../dtype.js";
import { TransformError } from "../errors.js";
import { sizeOf } from "../shape.js";

export interface FusedParams {
  expr: FusedExpr;
  out: Aval;
}

const notTransformable = (): never => {
  throw new TransformError(
    "fused: fused kernels only run inside jit's compiled programs; transforms see the unfused program",
  );
};

export const fusedP = definePrimitive<FusedParams>({
  name: "fused",
  saves: "none",
  abstractEval: (_avals, p) => [p.out],
  impl(b, inputs, avals, p) {
    const n = sizeOf(p.out.shape);
    // Inputs of other shapes are broadcast to the output first (scalars are read as they are).
    const ins = inputs.map((x, i) => {
      const a = avals[i]!;
      const size = sizeOf(a.shape);
      return size === n || size === 1 ? x : b.broadcast(x, a.shape, p.out.shape, a.dtype);
    });
    return [b.fused(p.expr, ins, n, p.out.dtype)];
  },
  jvp: notTransformable,
  vjp: notTransformable,
  jet: notTransformable,
  batch: notTransformable,
  showParams: (p) => `${exprSize(p.expr)} ops: ${showExpr(p.expr)}`,
});

export interface FusedProgramParams {
  prog: FusedProgram;
  /** The results' avals (all of one size, `size`). */
  outs: Aval[];
  size: number;
}

/**
 * `fused_program`: an elementwise DAG with several results run as one kernel (jit compiles the
 * straight-line scalar parts of a program, forward and backward passes together, to one).
 * Backends without `fusedProgram` run its compiled kernel on host copies of the inputs.
 */
export const fusedProgramP = definePrimitive<FusedProgramParams>({
  name: "fused_program",
  saves: "none",
  abstractEval: (_avals, p) => p.outs,
  impl: (b, inputs, avals, p) => runFusedProgram(b, inputs, avals, p),
  jvp: notTransformable,
  vjp: notTransformable,
  jet: notTransformable,
  batch: notTransformable,
  showParams: (p) => showProgram(p.prog),
});

/** Run a fused program's kernel on the backend (or its compiled JS kernel on host copies). */
function runFusedProgram(
  b: Backend,
  inputs: readonly DeviceBuffer[],
  avals: readonly Aval[],
  p: FusedProgramParams,
  reuse?: FusedReuse,
): DeviceBuffer[] {
  const n = p.size;
  const dtypes = p.outs.map((o) => o.dtype);
  const views = p.prog.views;
  // Inputs read through a view are passed as they are; others of another size are broadcast.
  const ins = inputs.map((x, i) => {
    const a = avals[i]!;
    const size = sizeOf(a.shape);
    return size === n || size === 1 || views?.[i] ? x : b.broadcast(x, a.shape, p.outs[0]!.shape, a.dtype);
  });
  if (b.fusedProgram !== undefined) return b.fusedProgram(p.prog, ins, n, dtypes, reuse);
  const hosts = ins.map((x, i) =>
    b.toHost(
      x,
      avals[i]!.dtype,
      views?.[i] ? sizeOf(avals[i]!.shape) : sizeOf(avals[i]!.shape) === 1 ? 1 : n,
    ),
  );
  if (n === 1) {
    const outs = new Float64Array(dtypes.length);
    scalarKernel(p.prog)(
      hosts.map((h) => h[0]!),
      outs,
    );
    return dtypes.map((d, j) => {
      if (b.scalar !== undefined) return b.scalar(outs[j]!, d);
      const a = allocArray(d, 1);
      a[0] = outs[j]!;
      return b.fromHost(a);
    });
  }
  const outs = dtypes.map((d) => allocArray(d, n));
  arrayKernel(
    p.prog,
    hosts.map((h) => h.length === 1),
  )(hosts, outs, n);
  return outs.map((o) => b.fromHost(o));
}

/** An operand of a product read transposed in its last two axes (as `matmul`'s params). */
export interface TransposeFlags {
  transA: boolean;
  transB: boolean;
}

/** `op(A) @ op(B)` on the backend: [product, its aval]. */
function product(
  bk: Backend,
  [x, y]: readonly DeviceBuffer[],
  [a, b]: readonly Aval[],
  p: TransposeFlags,
): [DeviceBuffer, Aval] {
  const sa = a!.shape;
  const sb = b!.shape;
  const r = sa.length;
  const m = p.transA ? sa[r - 1]! : sa[r - 2]!;
  const k = p.transA ? sa[r - 2]! : sa[r - 1]!;
  const n = p.transB ? sb[r - 2]! : sb[r - 1]!;
  const trans = p.transA || p.transB ? { a: p.transA, b: p.transB } : undefined;
  const buf = bk.matmul(x!, y!, sizeOf(sa.slice(0, -2)), m, k, n, a!.dtype, trans);
  return [buf, { shape: [...sa.slice(0, -2), m, n], dtype: a!.dtype, weakType: a!.weakType && b!.weakType }];
}

export interface MatmulEpilogueParams extends TransposeFlags, FusedProgramParams {
  /** Where the product sits among the program's inputs (the equation's inputs are A, B, then the others). */
  acc: number;
  /** The program's result that may overwrite the product (same dtype and size), or -1. */
  into: number;
}

/**
 * `matmul_epilogue`: a product and the elementwise program that consumes it (a bias, an
 * activation, a relu mask in a reverse pass), as one step: the program runs over the product
 * right after it is made, while it is still in cache, and writes one of its results over it where
 * the backend can (the wasm backend does), so no second array of the product's size is made. jit
 * makes it only where nothing else reads the product.
 */
export const matmulEpilogueP = definePrimitive<MatmulEpilogueParams>({
  name: "matmul_epilogue",
  saves: "none",
  abstractEval: (_avals, p) => p.outs,
  impl(bk, inputs, avals, p) {
    const [prod, prodAval] = product(bk, inputs.slice(0, 2), avals.slice(0, 2), p);
    const ins = inputs.slice(2);
    const insAvals = avals.slice(2);
    ins.splice(p.acc, 0, prod);
    insAvals.splice(p.acc, 0, prodAval);
    const outs = runFusedProgram(
      bk,
      ins,
      insAvals,
      p,
      p.into >= 0 ? { output: p.into, input: p.acc } : undefined,
    );
    // The product is private: give its memory back now unless a result took it over.
    if (!outs.includes(prod)) bk.dispose?.(prod);
    return outs;
  },
  jvp: notTransformable,
  vjp: notTransformable,
  jet: notTransformable,
  batch: notTransformable,
  showParams: (p) => {
    const t = [p.transA ? "transA" : "", p.transB ? "transB" : ""].filter((x) => x !== "").join(",");
    return `${t === "" ? "" : `${t}, `}then ${showProgram(p.prog)}`;
  },
});

export interface SumPrologueParams extends FusedProgramParams {
  /** The axes the sum reduces (of the program's results' shape). */
  axes: number[];
  /** The sum's aval. */
  sum: Aval;
  /** Which of the program's results is summed (only by this sum); the others are returned too. */
  sumOutput: number;
}

/**
 * `sum_prologue`: a `reduce_sum` of a fused program's result that nothing else reads (a squared
 * error, a sum of squares, a LayerNorm's squared deviations), with the program's other results:
 * the backend evaluates the program where its sum kernel loads each element (the wasm backend
 * does), so the summed result is never stored; elsewhere the program runs and is summed, with the
 * same bits. Results: the sum, then the program's other results in order.
 */
export const sumPrologueP = definePrimitive<SumPrologueParams>({
  name: "sum_prologue",
  saves: "none",
  abstractEval: (_avals, p) => [p.sum, ...p.outs.filter((_, j) => j !== p.sumOutput)],
  impl(bk, inputs, avals, p) {
    const shape = p.outs[0]!.shape;
    const dtypes = p.outs.map((o) => o.dtype);
    // The backend checks how it can read each input (and declines otherwise).
    const r = bk.fusedSum?.(p.prog, inputs, shape, p.axes, dtypes, p.sumOutput) ?? null;
    if (r !== null) return r;
    const ys = runFusedProgram(bk, inputs, avals, p);
    const y = ys[p.sumOutput]!;
    const sum = bk.reduce("sum", y, shape, p.axes, dtypes[p.sumOutput]!, p.sum.dtype);
    bk.dispose?.(y);
    return [sum, ...ys.filter((_, j) => j !== p.sumOutput)];
  },
  jvp: notTransformable,
  vjp: notTransformable,
  jet: notTransformable,
  batch: notTransformable,
  showParams: (p) =>
    `axes=[${p.axes.join(",")}] of ${p.outs.length > 1 ? `result ${p.sumOutput} of ` : ""}${showProgram(p.prog)}`,
});
