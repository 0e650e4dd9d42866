/**
 * @file `fused`: a chain of elementwise operations run as one kernel. Only `jit`'s fusion pass
 * creates it, for the programs it runs on concrete inputs; transforms always see the unfused
 * program, so this primitive has no derivative, Taylor or batching rules of its own (they throw).
 */

import { exprSize, type FusedExpr, showExpr } from "../backend/kernel.js";
import { type Aval, definePrimitive } from "../core/primitive.js";
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
