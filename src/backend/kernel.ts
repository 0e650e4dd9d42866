/**
 * @file The small expression IR of fused elementwise kernels: what `jit`'s fusion pass hands a
 * backend instead of a chain of separate kernels. Leaves are kernel inputs (already broadcast to
 * the output shape, or scalars) and constants; nodes are the unary/binary kernels, select and
 * casts. Every node carries its dtype so a backend rounds exactly as the unfused chain would.
 */

import type { DType } from "../dtype.js";
import type { BinaryKernel, UnaryKernel } from "./backend.js";

export type FusedExpr =
  | { readonly kind: "input"; readonly index: number; readonly dtype: DType }
  | { readonly kind: "const"; readonly value: number; readonly dtype: DType }
  | { readonly kind: "unary"; readonly op: UnaryKernel; readonly arg: FusedExpr; readonly dtype: DType }
  | {
      readonly kind: "binary";
      readonly op: BinaryKernel;
      readonly a: FusedExpr;
      readonly b: FusedExpr;
      readonly dtype: DType;
    }
  | {
      readonly kind: "select";
      readonly c: FusedExpr;
      readonly a: FusedExpr;
      readonly b: FusedExpr;
      readonly dtype: DType;
    }
  | { readonly kind: "cast"; readonly arg: FusedExpr; readonly dtype: DType };

/** A compact one-line rendering (for printed programs). */
export function showExpr(e: FusedExpr): string {
  switch (e.kind) {
    case "input":
      return `#${e.index}`;
    case "const":
      return String(e.value);
    case "unary":
      return `${e.op}(${showExpr(e.arg)})`;
    case "binary":
      return `${e.op}(${showExpr(e.a)},${showExpr(e.b)})`;
    case "select":
      return `select(${showExpr(e.c)},${showExpr(e.a)},${showExpr(e.b)})`;
    case "cast":
      return `${e.dtype}(${showExpr(e.arg)})`;
  }
}

/** Number of operation nodes (not leaves). */
export function exprSize(e: FusedExpr): number {
  switch (e.kind) {
    case "input":
    case "const":
      return 0;
    case "unary":
    case "cast":
      return 1 + exprSize(e.arg);
    case "binary":
      return 1 + exprSize(e.a) + exprSize(e.b);
    case "select":
      return 1 + exprSize(e.c) + exprSize(e.a) + exprSize(e.b);
  }
}
