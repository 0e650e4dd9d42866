/**
 * @file The closed set of primitives. Everything else in adjoint is composed from these, so it
 * inherits every derivative and batching rule (and jit's fusion) for free.
 */

import type { Primitive } from "../core/primitive.js";
import * as binary from "./binary.js";
import * as compare from "./compare.js";
import * as convert from "./convert.js";
import * as linalg from "./linalg.js";
import * as linalgDecomp from "./linalg-decomp.js";
import * as movement from "./movement.js";
import * as random from "./random.js";
import * as reduce from "./reduce.js";
import * as unary from "./unary.js";

export * from "./binary.js";
export * from "./compare.js";
export * from "./convert.js";
export * from "./linalg.js";
export * from "./linalg-decomp.js";
export * from "./movement.js";
export * from "./random.js";
export * from "./reduce.js";
export * from "./unary.js";

/** Every primitive, by its printed name. */
export function allPrimitives(): Map<string, Primitive<never>> {
  const out = new Map<string, Primitive<never>>();
  for (const mod of [unary, binary, compare, convert, reduce, movement, linalg, linalgDecomp, random])
    for (const v of Object.values(mod))
      if (typeof v === "object" && v !== null && "abstractEval" in v)
        out.set((v as Primitive<never>).name, v as Primitive<never>);
  return out;
}
