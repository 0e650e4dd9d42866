/**
 * @file Assembles the wasm backend's kernel module (matmul, elementwise, reductions, data
 * movement) and detects what the runtime supports: SIMD128 (required), relaxed-SIMD FMA (used in
 * matmul when present) and shared memory for threads. The module is emitted from TypeScript at
 * load time; compiling it synchronously is fine in Node and in workers, while a browser's main
 * thread compiles it asynchronously (`compileWasmKernels`).
 */

import { CAST_PAIRS, emitCast } from "./convert.js";
import {
  emitBinary,
  emitCompare,
  emitSelect,
  emitUnary,
  WASM_BINARY,
  WASM_COMPARE,
  WASM_UNARY,
} from "./elementwise.js";
import { type Code, ModuleBuilder } from "./emitter.js";
import { emitGemm, gemmShape } from "./gemm.js";
import { emitGemv } from "./gemv.js";
import { ELEM_SIZES, emitStridedCopy, emitTranspose2d } from "./movement.js";
import { emitExtremum, emitSum, WASM_EXTREMA } from "./reduce.js";
import { emitTranscendental, WASM_TRANSCENDENTAL } from "./transcendental.js";
import { wasmApi } from "./wasm-api.js";

/** What the runtime can do, detected once by validating tiny modules. */
export interface Features {
  readonly simd: boolean;
  /** Whether matmul uses relaxed-SIMD fused multiply-add. */
  readonly relaxedSimd: boolean;
  /**
   * How relaxed SIMD came to be available: the runtime has it ("native"), or this library
   * switched V8's flag on (Node 20: "v8-flag"); null when it is not used.
   */
  readonly relaxedSimdVia: "native" | "v8-flag" | null;
}

function tinyModule(body: (c: Code) => void): Uint8Array {
  const m = new ModuleBuilder({ shared: false, initial: 1 });
  m.func("f", [], [], body);
  return m.toBytes();
}

let features: Features | null = null;

interface NodeGlobal {
  process?: {
    env?: Record<string, string | undefined>;
    getBuiltinModule?: (name: string) => unknown;
  };
}

/**
 * Detect SIMD128 and relaxed SIMD (f32x4.relaxed_madd), which matmul uses for fused multiply-add
 * (about 1.5x faster). Relaxed SIMD is standard (WebAssembly 3.0) and on by default from V8 11.4
 * (Chrome 114, Node 22, Deno, current Firefox and Safari): there it is used as is. Node 20
 * (V8 11.3) ships it behind a V8 flag, which is switched on here before the kernels compile, so
 * Node 20 validates exactly what Node 22 does; the switch is checked by validating a probe
 * afterwards and undone when that fails. The flag is process-wide (other modules compiled later
 * may also use relaxed SIMD, as they would on Node 22), so `ADJOINT_WASM_RELAXED_SIMD=0` leaves
 * V8 alone and never uses FMA (plain multiply-add: the same rounding on every machine).
 * @example
 * detectFeatures().simd; // true in Node 20 and current browsers
 */
export function detectFeatures(): Features {
  if (features !== null) return features;
  const ok = (bytes: Uint8Array): boolean => {
    try {
      return wasmApi()?.validate(bytes) === true;
    } catch {
      return false;
    }
  };
  const simd = ok(
    tinyModule((c) => {
      c.v128const().v128const().simd("f32x4.add").op("drop");
    }),
  );
  const relaxedProbe = tinyModule((c) => {
    c.v128const().v128const().v128const().simd("f32x4.relaxed_madd").op("drop");
  });
  const proc = (globalThis as NodeGlobal).process;
  const want = proc?.env?.ADJOINT_WASM_RELAXED_SIMD;
  let via: Features["relaxedSimdVia"] = null;
  if (simd && want !== "0") {
    if (ok(relaxedProbe)) via = "native";
    else {
      const v8 = proc?.getBuiltinModule?.("node:v8") as
        | { setFlagsFromString?: (f: string) => void }
        | undefined;
      try {
        v8?.setFlagsFromString?.("--experimental-wasm-relaxed-simd");
        if (ok(relaxedProbe)) via = "v8-flag";
        else v8?.setFlagsFromString?.("--no-experimental-wasm-relaxed-simd");
      } catch {
        via = null;
      }
    }
  }
  features = { simd, relaxedSimd: via !== null, relaxedSimdVia: via };
  return features;
}

/** The module's bytes and the names of its exported kernels. */
export interface KernelModule {
  readonly bytes: Uint8Array;
  readonly names: readonly string[];
  readonly shared: boolean;
  readonly fma: boolean;
  readonly maxPages: number;
}

/**
 * Build the kernel module for a memory of `maxPages` pages, shared or not.
 * @example
 * buildKernels(true, 65535, false).names.includes("gemm_f32"); // true
 */
export function buildKernels(shared: boolean, maxPages: number, fma: boolean): KernelModule {
  const m = new ModuleBuilder({ shared, initial: 64, maximum: maxPages });
  emitGemm(m, "f32", gemmShape("f32", fma), fma);
  emitGemm(m, "f64", gemmShape("f64", fma), fma);
  emitGemv(m, "f32", fma);
  emitGemv(m, "f64", fma);
  for (const t of ["f32", "f64"] as const) {
    for (const op of WASM_BINARY) emitBinary(m, t, op);
    for (const op of WASM_UNARY) emitUnary(m, t, op);
    for (const op of WASM_COMPARE) emitCompare(m, t, op);
    emitSum(m, t);
    for (const op of WASM_EXTREMA) emitExtremum(m, t, op);
  }
  for (const op of WASM_TRANSCENDENTAL) emitTranscendental(m, op);
  for (const [from, to] of CAST_PAIRS) emitCast(m, from, to);
  for (const es of ELEM_SIZES) {
    emitStridedCopy(m, es);
    emitTranspose2d(m, es);
    emitSelect(m, es);
  }
  return { bytes: m.toBytes(), names: m.exportNames(), shared, fma, maxPages };
}
