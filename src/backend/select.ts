/**
 * @file Which backend new tensors go to: chosen by name (`ad.setBackend`), by the environment
 * variable `ADJOINT_BACKEND=wasm|reference` in Node (read once, at the first tensor), or by
 * default: the wasm backend wherever WebAssembly SIMD exists, else the reference backend. The wasm
 * backend compiles its kernels on the first kernel that needs them; where that cannot be done
 * synchronously (old browsers refused modules over 4 KB on the main thread) its kernels run the
 * reference backend's JS until `await ad.ready()` has compiled them asynchronously.
 *
 * Tensors keep the backend that made them; both backends read each other's buffers, so tensors
 * made before a switch keep working after it.
 */

import { AdError } from "../errors.js";
import type { Backend } from "./backend.js";
import { InteropReferenceBackend } from "./interop.js";
import { WasmBackend, type WasmBackendOptions } from "./wasm/backend.js";
import { WasmBuffer } from "./wasm/heap.js";
import { detectFeatures } from "./wasm/kernels.js";

/** The backends `setBackend` knows. */
export type BackendName = "wasm" | "reference";

interface Env {
  process?: { env?: Record<string, string | undefined> };
}

function env(name: string): string | undefined {
  const v = (globalThis as Env).process?.env?.[name];
  return v === undefined || v === "" ? undefined : v;
}

let current: Backend | null = null;
/** True once the user named a backend (setBackend or ADJOINT_BACKEND): `ready()` keeps it. */
let chosen = false;
let reference: Backend | null = null;
let wasm: WasmBackend | null = null;
let wasmFailure: unknown = null;
let threadRequest: number | null = null;

function referenceBackend(): Backend {
  reference ??= new InteropReferenceBackend();
  return reference;
}

function wasmOptions(): WasmBackendOptions {
  const t = Number(env("ADJOINT_THREADS"));
  const threads = threadRequest ?? (Number.isInteger(t) && t > 0 ? t : undefined);
  const mib = Number(env("ADJOINT_WASM_BUDGET_MB"));
  return {
    ...(threads !== undefined ? { threads } : {}),
    ...(mib > 0 ? { budget: mib * 2 ** 20 } : {}),
  };
}

/**
 * The wasm backend, created on first use (it compiles its kernels only when a kernel needs them).
 * Throws where WebAssembly SIMD is missing.
 */
function wasmBackendSync(): WasmBackend {
  if (wasm !== null) return wasm;
  if (wasmFailure !== null) throw wasmFailure;
  try {
    if (!detectFeatures().simd) throw new Error("this runtime has no WebAssembly SIMD128");
    wasm = new WasmBackend(wasmOptions());
  } catch (e) {
    wasmFailure = e;
    throw e;
  }
  return wasm;
}

function initialBackend(): Backend {
  const name = env("ADJOINT_BACKEND");
  if (name === "reference") {
    chosen = true;
    return referenceBackend();
  }
  if (name === "wasm") {
    chosen = true;
    return wasmBackendSync();
  }
  if (name !== undefined)
    throw new AdError(
      `ADJOINT_BACKEND=${JSON.stringify(name)} is not a backend; expected "wasm" or "reference"`,
    );
  try {
    return wasmBackendSync();
  } catch {
    return referenceBackend();
  }
}

/**
 * @internal The backend new tensors are created on.
 * @example
 * getBackend().name; // "wasm" in Node
 */
export function getBackend(): Backend {
  current ??= initialBackend();
  return current;
}

/**
 * @internal Make `b` the backend for new tensors (tests of custom backends).
 * @example
 * useBackend(new InteropReferenceBackend());
 */
export function useBackend(b: Backend): void {
  current = b;
  chosen = true;
}

/**
 * Select the backend new tensors are created on: `"wasm"` (WebAssembly SIMD kernels, threads for
 * large work; the default in Node) or `"reference"` (plain TypeScript, the test oracle). Existing
 * tensors keep working. In a browser, `await ad.ready()` once at start-up makes sure the kernels are
 * compiled.
 * @example
 * ad.setBackend("reference");
 * ad.getBackendName(); // "reference"
 * ad.setBackend("wasm");
 */
export function setBackend(name: BackendName): void {
  if (name === "reference") current = referenceBackend();
  else if (name === "wasm") {
    try {
      current = wasmBackendSync();
    } catch (e) {
      throw new AdError(
        `setBackend("wasm"): the wasm backend is unavailable here (${e instanceof Error ? e.message : String(e)}); use "reference"`,
      );
    }
  } else
    throw new AdError(`setBackend: unknown backend ${JSON.stringify(name)}; expected "wasm" or "reference"`);
  chosen = true;
}

/**
 * The name of the backend new tensors are created on (`"wasm"` or `"reference"`).
 * @example
 * ad.getBackendName(); // "wasm" in Node
 */
export function getBackendName(): string {
  return getBackend().name;
}

/**
 * Prepare the wasm backend: compile its kernels now (asynchronously, which every browser allows on
 * its main thread) instead of on the first large kernel. Unless a backend was chosen explicitly,
 * new tensors use wasm afterwards. Resolves to the selected backend's name; never rejects (without
 * WebAssembly SIMD the reference backend stays). Harmless in Node.
 * @example
 * await ad.ready(); // "wasm"
 */
export async function ready(): Promise<string> {
  let ok = false;
  try {
    ok = await wasmBackendSync().prepare();
  } catch {
    ok = false;
  }
  if (!chosen && ok) current = wasm;
  return getBackend().name;
}

/**
 * The same as `ready()`.
 * @example
 * await ad.init();
 */
export const init: () => Promise<string> = ready;

/**
 * Threads the wasm backend uses for large kernels (the calling thread included). Without shared
 * memory (a browser page that is not cross-origin isolated) it stays 1.
 * @example
 * ad.setNumThreads(1); // single-threaded kernels
 */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1)
    throw new AdError(`setNumThreads: expected a positive integer, got ${String(n)}`);
  threadRequest = n;
  wasm?.setThreads(n);
}

/**
 * Threads the wasm backend uses for large kernels (1 before it exists or without shared memory).
 * @example
 * ad.getNumThreads(); // e.g. 2
 */
export function getNumThreads(): number {
  return wasm?.threads ?? 1;
}

/** The slice of a tensor `dispose` needs (kept structural to avoid an import cycle with Tensor). */
interface Disposable {
  readonly _buf: unknown;
  readonly _backend: Backend | null;
}

function isDisposable(x: unknown): x is Disposable {
  return typeof x === "object" && x !== null && "_buf" in x && "_backend" in x;
}

/**
 * Release the wasm memory of tensors now, instead of when the garbage collector finds them: an
 * optional optimisation, never required. Takes a tensor or any pytree of tensors. A disposed
 * tensor (or another sharing its storage, like a reshape of it) throws on use.
 * @example
 * const t = ad.ones([1000, 1000]).mul(2);
 * ad.dispose(t); // its 4 MB go back to the pool at once
 */
export function dispose(tree: unknown): void {
  const seen = new Set<unknown>();
  const walk = (x: unknown): void => {
    if (x === null || typeof x !== "object" || seen.has(x)) return;
    seen.add(x);
    if (isDisposable(x)) {
      const b = x._buf;
      if (b instanceof WasmBuffer) b.heap.dispose(b);
      return;
    }
    if (ArrayBuffer.isView(x)) return;
    for (const v of Array.isArray(x) ? x : Object.values(x)) walk(v);
  };
  walk(tree);
}

/** Figures of the wasm backend (for benchmarks and tests; zeros when it was never created). */
export interface WasmStats {
  /** Threads used by large kernels. */
  readonly threads: number;
  /** Kernels that ran on more than one thread so far. */
  readonly parallelKernels: number;
  /** Runs of jit's fused elementwise programs as compiled wasm loops (SIMD where they allow). */
  readonly fusedKernels: number;
  /** Whether relaxed-SIMD FMA is in use. */
  readonly relaxedSimd: boolean;
  /**
   * Where relaxed SIMD came from: "native" (the runtime has it), "v8-flag" (Node 20, where
   * V8 has it behind a flag that adjoint switches on), or null (not in use, or
   * `ADJOINT_WASM_RELAXED_SIMD=0`).
   */
  readonly relaxedSimdVia: "native" | "v8-flag" | null;
  /** Whether the memory is shared (threads possible). */
  readonly sharedMemory: boolean;
  /** Bytes of the WebAssembly.Memory (it grows and never shrinks). */
  readonly memoryBytes: number;
  /** Bytes of resident tensor buffers not yet reclaimed. */
  readonly residentBytes: number;
  readonly residentAllocs: number;
  readonly finalized: number;
  readonly disposed: number;
  /** Results returned as ordinary typed arrays because the resident budget was spent. */
  readonly hostFallbacks: number;
  /** Times the heap asked V8 for a garbage collection (half the budget held, nothing freed). */
  readonly pressureSignals: number;
}

/**
 * Figures of the wasm backend: threads, memory, reclaimed buffers.
 * @example
 * ad.wasmStats().memoryBytes; // e.g. 4194304
 */
export function wasmStats(): WasmStats {
  if (wasm === null)
    return {
      threads: 1,
      parallelKernels: 0,
      fusedKernels: 0,
      relaxedSimd: false,
      relaxedSimdVia: null,
      sharedMemory: false,
      memoryBytes: 0,
      residentBytes: 0,
      residentAllocs: 0,
      finalized: 0,
      disposed: 0,
      hostFallbacks: 0,
      pressureSignals: 0,
    };
  const threads = wasm.threads; // (this compiles the kernels if they are not yet)
  const h = wasm.heap;
  return {
    threads,
    parallelKernels: wasm.stats.parallelKernels,
    fusedKernels: wasm.stats.fusedKernels,
    relaxedSimd: wasm.features.relaxedSimd,
    relaxedSimdVia: wasm.features.relaxedSimd ? detectFeatures().relaxedSimdVia : null,
    sharedMemory: wasm.features.sharedMemory,
    memoryBytes: h?.memoryBytes ?? 0,
    residentBytes: h?.residentBytes ?? 0,
    residentAllocs: h?.stats.residentAllocs ?? 0,
    finalized: h?.stats.finalized ?? 0,
    disposed: h?.stats.disposed ?? 0,
    hostFallbacks: h?.stats.hostFallbacks ?? 0,
    pressureSignals: h?.stats.pressureSignals ?? 0,
  };
}
