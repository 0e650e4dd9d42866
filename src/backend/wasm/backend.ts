/**
 * @file The wasm backend: the Backend interface over WebAssembly SIMD kernels, a worker pool and a
 * garbage-collected heap. Buffers are either resident in wasm memory (`WasmBuffer`, produced by
 * the wasm kernels) or plain typed arrays (what the reference backend uses, and what small
 * results are), so reference buffers are valid here and small tensors never cross into wasm.
 *
 * Each kernel picks its path: small sizes run the reference backend's JS loops directly; large
 * float32/float64 (and float16/bfloat16, stored as float32) matmuls, elementwise arithmetic and
 * sums run in wasm, with host inputs copied into scratch blocks and the result resident (or
 * copied out when the resident budget is spent); every other kernel runs the reference
 * backend's algorithm over zero-copy views of resident inputs.
 */

import { type AnyTypedArray, allocArray, type DType } from "../../dtype.js";
import { type Shape, sizeOf, stridesOf } from "../../shape.js";
import type {
  Backend,
  BinaryKernel,
  DeviceBuffer,
  FusedReuse,
  LuBuffers,
  MatmulTranspose,
  ReduceKernel,
  TriangularSolveOptions,
  UnaryKernel,
} from "../backend.js";
import { type FusedExpr, type FusedProgram, fusedBackendKernelsAllowed, isOffsetView } from "../kernel.js";
import { ReferenceBackend, scalarValue } from "../reference.js";
import type { CastTo } from "./convert.js";
import {
  WASM_BINARY,
  WASM_COMPARE,
  WASM_UNARY,
  type WasmBinary,
  type WasmCompare,
  type WasmUnary,
} from "./elementwise.js";
import type { MemorySpec } from "./emitter.js";
import { emitFusedArray } from "./fused-array.js";
import { emitFusedSum, type SumRead } from "./fused-sum.js";
import { type GemmShape, gemmScratchBytes, gemmShape } from "./gemm.js";
import { BYTES, Heap, type Storage, storageOf, WasmBuffer } from "./heap.js";
import { buildKernels, detectFeatures, type Features } from "./kernels.js";
import type { ElemSize } from "./movement.js";
import { type CopyPlan, gatherPlan, scatterPlan, transposeTail } from "./strided.js";
import { hardwareThreads, type Task, threadsSupported, WorkerPool } from "./threads.js";
import { WASM_TRANSCENDENTAL, type WasmTranscendental } from "./transcendental.js";
import { type WasmModule, wasmApi } from "./wasm-api.js";

type Arr = AnyTypedArray;
type Kernel = (...args: number[]) => void;

/** Tuning thresholds (element or flop counts) below which work stays in plain JS or on one thread. */
export interface Thresholds {
  /** Elementwise kernels and sums with fewer output (or input) elements run as JS loops. */
  elementwise: number;
  /** Matmuls with fewer multiply-adds (batch·m·k·n) run as JS loops. */
  matmul: number;
  /** Matmuls with fewer multiply-adds per batch item run on one thread. */
  matmulThreads: number;
  /** Transcendental kernels with fewer elements run on one thread. */
  transcendentalThreads: number;
  /** Other elementwise kernels (memory-bound) with fewer elements run on one thread. */
  elementwiseThreads: number;
  /** Results with fewer elements are returned as ordinary typed arrays even from wasm kernels. */
  resident: number;
}

/** The thresholds a new wasm backend starts with (`backend.thresholds` can be tuned per instance). */
export const DEFAULT_THRESHOLDS: Thresholds = {
  elementwise: 2048,
  matmul: 4096,
  // Measured: two threads overtake one at about n = 200 for square float32 products (waking and
  // joining a worker costs more than a smaller product gains).
  matmulThreads: 1 << 23,
  transcendentalThreads: 1 << 15,
  elementwiseThreads: 1 << 18,
  resident: 1024,
};

/**
 * Per-participant gemm scratch: `parts` packed-A blocks, packed-B panels (-1 until a kernel needs
 * them) and tiles (addresses).
 */
interface GemmScratch {
  readonly parts: number;
  readonly pA: number;
  readonly pB: number;
  readonly tile: number;
}

/** Bytes of packed B that threads share in a parallel product (one panel at a time). */
const PANEL_BYTES = 4 * 2 ** 20;
/** Blocks of C per thread in a parallel product (more balance the load, fewer cost less). */
const TASKS_PER_THREAD = 6;
/** Fewest register tiles (rows) and columns in one block of a parallel product. */
const MIN_TILES = 8;
const MIN_COLS = 64;
/** Shared B panels up to this size are packed by the calling thread alone. */
const SMALL_PANEL_BYTES = 128 * 1024;
/**
 * Products with at most this many rows (or one column) run the unpacked kernels of gemv.ts; from
 * about 12 rows on, packing B pays for itself (measured, float32: 8 x 512 @ 512 x 512 took
 * 0.23 ms unpacked and 0.29 packed, 16 rows 0.45 unpacked, 17 rows 0.36 packed).
 */
const GEMV_ROWS = 8;

/** Options of `createWasmBackend`. */
export interface WasmBackendOptions {
  /** Threads for large kernels (the calling one included); default: the hardware's. */
  readonly threads?: number;
  /** Bytes of resident memory not yet reclaimed before results fall back to GC'd arrays. */
  readonly budget?: number;
  /** A precompiled kernel module (from `compileWasmKernels`), for the asynchronous path. */
  readonly compiled?: CompiledKernels;
}

/** A compiled kernel module and the memory shape it was built for. */
export interface CompiledKernels {
  readonly module: WasmModule;
  readonly names: readonly string[];
  readonly shared: boolean;
  readonly fma: boolean;
  readonly maxPages: number;
}

const isNode =
  typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";

/** Largest memory: 4 GiB in Node; 1 GiB in browsers, where address space is tighter. */
function maxPages(): number {
  return isNode ? 65535 : 16384;
}

function kernelPlan(): { shared: boolean; fma: boolean; features: Features } {
  const features = detectFeatures();
  if (!features.simd)
    throw new Error("wasm backend: this runtime has no WebAssembly SIMD128; use the reference backend");
  return { shared: threadsSupported(), fma: features.relaxedSimd, features };
}

/**
 * Compile the kernel module synchronously (Node, workers, current browsers; old Chrome refused
 * modules over 4 KB on the main thread).
 * @example
 * const backend = new WasmBackend({ compiled: compileWasmKernelsSync() });
 */
export function compileWasmKernelsSync(): CompiledKernels {
  const api = wasmApi();
  if (api === null) throw new Error("wasm backend: this runtime has no WebAssembly");
  const { shared, fma } = kernelPlan();
  const k = buildKernels(shared, maxPages(), fma);
  return { module: new api.Module(k.bytes), names: k.names, shared, fma, maxPages: k.maxPages };
}

/**
 * Compile the kernel module asynchronously (what a browser's main thread may have to do).
 * @example
 * const backend = new WasmBackend({ compiled: await compileWasmKernels() });
 */
export async function compileWasmKernels(): Promise<CompiledKernels> {
  const api = wasmApi();
  if (api === null) throw new Error("wasm backend: this runtime has no WebAssembly");
  const { shared, fma } = kernelPlan();
  const k = buildKernels(shared, maxPages(), fma);
  return { module: await api.compile(k.bytes), names: k.names, shared, fma, maxPages: k.maxPages };
}

/** The 2-D broadcast pattern of an elementwise kernel after collapsing dimensions. */
interface Pattern2D {
  /** Leading collapsed groups, walked in JS: their sizes and each operand's element stride. */
  readonly outer: readonly { readonly size: number; readonly strides: readonly number[] }[];
  readonly rows: number;
  readonly cols: number;
  /** Per operand: element stride between rows and between columns (0 where broadcast). */
  readonly row: readonly number[];
  readonly col: readonly number[];
}

/**
 * Collapse `outShape` and operands broadcast to it into groups of adjacent dimensions in which
 * each operand is either fully present or broadcast; the last two groups become the kernel's
 * rows and columns.
 */
function collapse(shapes: readonly Shape[], outShape: Shape): Pattern2D {
  const R = outShape.length;
  const k = shapes.length;
  const groups: { size: number; present: boolean[] }[] = [];
  for (let d = 0; d < R; d++) {
    const size = outShape[d]!;
    if (size === 1) continue;
    const present = shapes.map((sh) => (sh[d - (R - sh.length)] ?? 1) !== 1);
    const last = groups[groups.length - 1];
    if (last?.present.every((p, i) => p === present[i])) last.size *= size;
    else groups.push({ size, present });
  }
  // Element strides of each group for each operand (0 where broadcast).
  const acc = new Array<number>(k).fill(1);
  const strides: number[][] = new Array(groups.length);
  for (let g = groups.length - 1; g >= 0; g--) {
    const gr = groups[g]!;
    strides[g] = gr.present.map((p, i) => (p ? acc[i]! : 0));
    gr.present.forEach((p, i) => {
      if (p) acc[i]! *= gr.size;
    });
  }
  const n = groups.length;
  const zeros = new Array<number>(k).fill(0);
  return {
    outer: groups.slice(0, Math.max(0, n - 2)).map((g, i) => ({ size: g.size, strides: strides[i]! })),
    rows: n >= 2 ? groups[n - 2]!.size : 1,
    cols: n >= 1 ? groups[n - 1]!.size : 1,
    row: n >= 2 ? strides[n - 2]! : zeros,
    col: n >= 1 ? strides[n - 1]! : zeros,
  };
}

/**
 * Call `kernel(ptrs, out)` once per combination of the leading groups of `pat`, with operand and
 * output addresses advanced (operands of `sizes[i]` bytes per element, output of `outSize`).
 */
function eachBlock(
  pat: Pattern2D,
  ptrs: readonly number[],
  sizes: readonly number[],
  out: number,
  outSize: number,
  kernel: (ptrs: number[], out: number) => void,
): void {
  const dims = pat.outer;
  const idx = new Array<number>(dims.length).fill(0);
  const off = new Array<number>(ptrs.length).fill(0);
  const block = pat.rows * pat.cols;
  let o = 0;
  for (;;) {
    kernel(
      ptrs.map((p, i) => p + off[i]! * sizes[i]!),
      out + o * outSize,
    );
    o += block;
    let d = dims.length - 1;
    for (; d >= 0; d--) {
      const { size, strides } = dims[d]!;
      idx[d]!++;
      for (let i = 0; i < off.length; i++) off[i]! += strides[i]!;
      if (idx[d]! < size) break;
      for (let i = 0; i < off.length; i++) off[i]! -= strides[i]! * size;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

function isFloatStorage(d: DType): boolean {
  return d !== "int32" && d !== "bool";
}

/**
 * What exists once wasm is in use: the compiled module, its instance over the heap's memory, the
 * worker pool, and scratch kept for the backend's lifetime.
 */
class Core {
  readonly heap: Heap;
  readonly fns: Record<string, Kernel> = {};
  pool: WorkerPool | null = null;
  threads = 1;
  /**
   * Packing scratch for gemm by element type, one element per participant (the calling thread
   * is 0): arrays of packed-A blocks, packed-B panels and edge tiles, kept for the backend's
   * lifetime (remade when the thread count grows).
   */
  readonly gemmScratch: Record<"f32" | "f64", GemmScratch | null> = { f32: null, f64: null };
  /** A permanent block for copy descriptors (kernels run one at a time on this thread). */
  descPtr = -1;

  constructor(
    readonly compiled: CompiledKernels,
    budget: number | undefined,
    threads: number,
  ) {
    const api = wasmApi()!;
    this.heap = new Heap({
      shared: compiled.shared,
      maxBytes: compiled.maxPages * 65536,
      ...(budget !== undefined ? { budget } : {}),
    });
    const inst = new api.Instance(compiled.module, { env: { memory: this.heap.memory } });
    for (const n of compiled.names) this.fns[n] = inst.exports[n] as Kernel;
    this.setThreads(threads);
  }

  setThreads(n: number): void {
    const want = Math.max(1, Math.min(64, Math.floor(n)));
    const can = this.compiled.shared && threadsSupported() ? want : 1;
    if (can === this.threads) return;
    this.pool?.terminate();
    this.pool = null;
    this.threads = can;
    if (can > 1)
      this.pool = new WorkerPool(
        this.compiled.module,
        this.heap.memory,
        this.compiled.names,
        (fn, args) => this.fns[fn]!(...args),
        can,
      );
  }
}

/**
 * The wasm backend (see the file comment). The kernel module is emitted and compiled on the first
 * kernel that needs it (about 30 KB, tens of milliseconds), so a program that only ever touches
 * small tensors never pays for it; where it cannot be compiled synchronously every kernel runs the
 * reference backend's JS until `prepare()` compiles it asynchronously. The library makes a single
 * instance (`ad.setBackend("wasm")` or the default).
 * @example
 * const wasm = new WasmBackend({ threads: 2 });
 * wasm.threads; // 2 where shared memory exists
 */
export class WasmBackend implements Backend {
  readonly name = "wasm";
  readonly thresholds: Thresholds = { ...DEFAULT_THRESHOLDS };
  /** Kernels that ran on more than one thread; jit's fused programs run as compiled wasm loops. */
  readonly stats = { parallelKernels: 0, fusedKernels: 0 };
  /** The oracle, typed as the interface: its algorithms serve every kernel without a wasm one. */
  private readonly ref: Backend = new ReferenceBackend();
  private k: Core | null = null;
  /** Why synchronous compilation failed, if it did (then only `prepare()` can bring wasm in). */
  private failure: unknown = null;
  private wantThreads: number;
  /**
   * jit's multi-result fused kernels: the reference backend's compiled kernel run over views of
   * the inputs (present when the reference backend has it; otherwise the frontend copies).
   */
  readonly fusedProgram?: (
    prog: FusedProgram,
    inputs: readonly DeviceBuffer[],
    size: number,
    outDtypes: readonly DType[],
    reuse?: FusedReuse,
  ) => DeviceBuffer[];

  constructor(private readonly opts: WasmBackendOptions = {}) {
    if (wasmApi() === null) throw new Error("wasm backend: this runtime has no WebAssembly");
    const ref = this.ref;
    if (ref.fusedProgram !== undefined)
      this.fusedProgram = (prog, inputs, size, outDtypes, reuse) => {
        if (size >= this.thresholds.elementwise && fusedBackendKernelsAllowed() && this.core()) {
          const res = this.fusedArray(prog, inputs, size, outDtypes, reuse);
          if (res !== null) return res;
        }
        return ref.fusedProgram!(prog, this.hosts(inputs), size, outDtypes);
      };
    this.wantThreads = opts.threads ?? hardwareThreads();
    if (opts.compiled !== undefined) this.k = new Core(opts.compiled, opts.budget, this.wantThreads);
  }

  /** Compiled fused programs by input mask ("1" where an input is one element); null: not covered. */
  private readonly fusedKernels = new WeakMap<FusedProgram, Map<string, Kernel | null>>();

  /**
   * jit's fused program as one wasm loop (`fused-array.ts`) over the inputs in wasm memory (host
   * inputs copied in); null when the program is not covered (the generated JS kernel runs it).
   */
  private fusedArray(
    prog: FusedProgram,
    inputs: readonly DeviceBuffer[],
    size: number,
    outDtypes: readonly DType[],
    reuse?: FusedReuse,
  ): DeviceBuffer[] | null {
    // Each input: resident here (an address), or host values to copy in.
    const hosts: (Arr | null)[] = [];
    const lengths: number[] = [];
    for (const b of inputs) {
      const x = b as unknown as WasmBuffer;
      if (x instanceof WasmBuffer && x.heap === this.heap) {
        hosts.push(null);
        lengths.push(x.length);
      } else {
        const v = scalarValue(b);
        const h =
          v !== null ? Float64Array.of(v) : x instanceof WasmBuffer ? x.toHostArray() : (b as unknown as Arr);
        hosts.push(h);
        lengths.push(h.length);
      }
    }
    const scalar = lengths.map((l) => l === 1);
    const kernel = this.programKernel(
      this.fusedKernels,
      prog,
      scalar.map((b) => (b ? "1" : "0")).join(""),
      (memory) => emitFusedArray(prog, scalar, outDtypes, memory),
    );
    if (kernel === null) return null;
    const heap = this.c.heap;
    const temps: number[] = [];
    try {
      const args: number[] = [size];
      inputs.forEach((b, k) => {
        const h = hosts[k]!;
        if (h === null) {
          const x = b as unknown as WasmBuffer;
          x.check();
          args.push(x.ptr);
          return;
        }
        const st = storageOf(prog.inputs[k]!);
        const p = heap.scratch(h.length * BYTES[st]);
        temps.push(p);
        heap.view(st, p, h.length).set(h);
        args.push(p);
      });
      const outs: (WasmBuffer | number)[] = outDtypes.map((d, j) => {
        const st = storageOf(d);
        if (reuse !== undefined && reuse.output === j && hosts[reuse.input] === null) {
          // Written over the caller's private input (each element is read before it is written).
          const x = inputs[reuse.input] as unknown as WasmBuffer;
          if (x.storage === st && x.length === size) return x;
        }
        const r = size >= this.thresholds.resident ? heap.allocResident(st, size) : null;
        if (r !== null) return r;
        const p = heap.scratch(size * BYTES[st]);
        temps.push(p);
        return p;
      });
      for (const o of outs) args.push(typeof o === "number" ? o : o.ptr);
      kernel(...args);
      this.stats.fusedKernels++;
      return outs.map((o, j) =>
        typeof o === "number"
          ? (heap.view(storageOf(outDtypes[j]!), o, size).slice() as unknown as DeviceBuffer)
          : (o as unknown as DeviceBuffer),
      );
    } finally {
      for (const p of temps) heap.release(p);
    }
  }

  /**
   * The `kernel` export of the module `emit` makes for `prog` with these input lengths (one-element
   * inputs read once), compiled on first use and cached by program and input mask; null where it
   * is not covered or wasm cannot be compiled here (a Content-Security-Policy).
   */
  private programKernel(
    cache: WeakMap<FusedProgram, Map<string, Kernel | null>>,
    prog: FusedProgram,
    key: string,
    emit: (memory: MemorySpec) => Uint8Array | null,
  ): Kernel | null {
    let perKey = cache.get(prog);
    if (perKey === undefined) cache.set(prog, (perKey = new Map()));
    let kernel = perKey.get(key);
    if (kernel !== undefined) return kernel;
    kernel = null;
    const c = this.c.compiled;
    const bytes = emit({ shared: c.shared, initial: 1, maximum: c.maxPages });
    if (bytes !== null) {
      try {
        const api = wasmApi()!;
        const inst = new api.Instance(new api.Module(bytes), { env: { memory: this.c.heap.memory } });
        kernel = inst.exports.kernel as Kernel;
      } catch {
        kernel = null;
      }
    }
    perKey.set(key, kernel);
    return kernel;
  }

  /** Compiled fused sums (`fused-sum.ts`) by input mask; null: not covered. */
  private readonly fusedSums = new WeakMap<FusedProgram, Map<string, Kernel | null>>();

  /**
   * Σ over `axes` of a fused program's one result at `shape`, in one pass (see `fused-sum.ts`);
   * null where the unfused pair would not run the wasm sum kernel (small, several runs of axes,
   * a program or input it does not cover), so the caller's fallback gives the same bits.
   */
  fusedSum(
    prog: FusedProgram,
    inputs: readonly DeviceBuffer[],
    shape: Shape,
    axes: readonly number[],
    outDtypes: readonly DType[],
    sumOutput: number,
  ): DeviceBuffer[] | null {
    const n = sizeOf(shape);
    const dtype = outDtypes[sumOutput]!;
    const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1]! + 1);
    if (
      n < this.thresholds.elementwise ||
      (dtype !== "float32" && dtype !== "float64") ||
      outDtypes.some((d) => d !== dtype) ||
      axes.length === 0 ||
      !contiguous ||
      !fusedBackendKernelsAllowed() ||
      !this.core()
    )
      return null;
    const first = axes[0]!;
    const last = axes[axes.length - 1]!;
    const outer = sizeOf(shape.slice(0, first));
    const red = sizeOf(shape.slice(first, last + 1));
    const inner = sizeOf(shape.slice(last + 1));
    const lengths = inputs.map((b) => {
      const x = b as unknown as WasmBuffer;
      if (x instanceof WasmBuffer) return x.length;
      return scalarValue(b) !== null ? 1 : (b as unknown as Arr).length;
    });
    // How each input is read (fused-sum.ts): plainly (slices: from a moved address), once, one
    // element per contiguous run, or the same run in each (the last two when inner = 1).
    const offsets = inputs.map(() => 0);
    const reads: SumRead[] = [];
    for (let k = 0; k < inputs.length; k++) {
      const l = lengths[k]!;
      const v = prog.views?.[k] ?? null;
      if (v === null) {
        if (l !== 1 && l !== n) return null;
        reads.push(l === 1 ? "scalar" : "plain");
      } else if (isOffsetView(v)) {
        if (l < n + v.offset) return null;
        offsets[k] = v.offset;
        reads.push("plain");
      } else if (inner === 1 && v.start <= 0 && v.end < 0 && v.div === red) reads.push("row");
      else if (inner === 1 && v.start <= 0 && v.end < 0 && v.div === 1 && v.mod === red) reads.push("run");
      else return null;
    }
    const kernel = this.programKernel(this.fusedSums, prog, `${sumOutput}:${reads.join(",")}`, (memory) =>
      emitFusedSum(prog, reads, sumOutput, dtype, memory),
    );
    if (kernel === null) return null;
    const st = storageOf(dtype);
    const es = BYTES[st];
    const heap = this.c.heap;
    const temps: number[] = [];
    try {
      const args: number[] = [];
      inputs.forEach((b, k) => {
        const x = b as unknown as WasmBuffer;
        if (x instanceof WasmBuffer && x.heap === heap) {
          x.check();
          args.push(x.ptr + offsets[k]! * es);
          return;
        }
        const src =
          x instanceof WasmBuffer ? x.toHostArray() : this.ref.toHost(b, prog.inputs[k]!, lengths[k]!);
        const q = heap.scratch(lengths[k]! * es);
        temps.push(q);
        heap.view(st, q, lengths[k]!).set(src);
        args.push(q + offsets[k]! * es);
      });
      // The sum, then each kept result: resident where the heap allows, else copied out.
      const sizes = outDtypes.map((_, j) => (j === sumOutput ? outer * inner : n));
      const order = [sumOutput, ...outDtypes.map((_, j) => j).filter((j) => j !== sumOutput)];
      const outs = order.map((j) => {
        const size = sizes[j]!;
        const r = size >= this.thresholds.resident ? heap.allocResident(st, size) : null;
        if (r !== null) return { r, p: r.ptr, size };
        const q = heap.scratch(size * es);
        temps.push(q);
        return { r: null, p: q, size };
      });
      kernel(...args, outs[0]!.p, outer, red, inner, inner, ...outs.slice(1).map((o) => o.p));
      this.stats.fusedKernels++;
      return outs.map((o) =>
        o.r !== null
          ? (o.r as unknown as DeviceBuffer)
          : (heap.view(st, o.p, o.size).slice() as unknown as DeviceBuffer),
      );
    } finally {
      for (const q of temps) heap.release(q);
    }
  }

  /** The wasm machinery, made on first use; null where the module cannot be compiled here. */
  private core(): Core | null {
    if (this.k !== null || this.failure !== null) return this.k;
    try {
      this.k = new Core(compileWasmKernelsSync(), this.opts.budget, this.wantThreads);
    } catch (e) {
      this.failure = e;
    }
    return this.k;
  }

  /** The machinery, for helpers that only run once `core()` succeeded. */
  private get c(): Core {
    return this.k!;
  }

  /** Whether the kernels are compiled and instantiated. */
  get ready(): boolean {
    return this.k !== null;
  }

  /**
   * Make sure wasm is usable, compiling the module asynchronously where synchronous compilation is
   * refused; resolves to false where it cannot be (no WebAssembly SIMD).
   */
  async prepare(): Promise<boolean> {
    if (this.k !== null) return true;
    try {
      this.k = new Core(await compileWasmKernels(), this.opts.budget, this.wantThreads);
      this.failure = null;
    } catch (e) {
      this.failure = e;
    }
    return this.k !== null;
  }

  /** The heap, once wasm is in use. */
  get heap(): Heap | null {
    return this.k?.heap ?? null;
  }

  get features(): { readonly relaxedSimd: boolean; readonly sharedMemory: boolean } {
    const k = this.core();
    return { relaxedSimd: k?.compiled.fma ?? false, sharedMemory: k?.compiled.shared ?? false };
  }

  /** Threads used by large kernels (1 where shared memory is unavailable). */
  get threads(): number {
    return this.core()?.threads ?? 1;
  }

  /** Set the number of threads (the calling one included) for large kernels. */
  setThreads(n: number): void {
    this.wantThreads = n;
    this.k?.setThreads(n);
  }

  // ---- buffers ----

  fromHost(data: Arr): DeviceBuffer {
    // Large host data moves into wasm memory at once: it is about to feed kernels.
    if (data.length >= this.thresholds.elementwise && !(data instanceof Uint8Array) && this.core() !== null) {
      const storage: Storage =
        data instanceof Float64Array ? "f64" : data instanceof Int32Array ? "i32" : "f32";
      const r = this.c.heap.allocResident(storage, data.length);
      if (r !== null) {
        this.c.heap.view(storage, r.ptr, data.length).set(data);
        return r as unknown as DeviceBuffer;
      }
    }
    return data as unknown as DeviceBuffer;
  }

  scalar(value: number, dtype: DType): DeviceBuffer {
    // Scalars stay in the reference backend's cheap representation (every kernel here accepts it).
    if (this.ref.scalar !== undefined) return this.ref.scalar(value, dtype);
    const a = allocArray(dtype, 1);
    a[0] = value;
    return a as unknown as DeviceBuffer;
  }

  toHost(b: DeviceBuffer, dtype: DType, size: number): Arr {
    const x = b as unknown as Arr | WasmBuffer;
    if (x instanceof WasmBuffer) return x.toHostArray();
    return this.ref.toHost(b, dtype, size);
  }

  transientView(b: DeviceBuffer, dtype: DType, size: number): Arr {
    const x = b as unknown as Arr | WasmBuffer;
    if (x instanceof WasmBuffer && x.heap === this.heap) {
      x.check();
      return x.heap.view(x.storage, x.ptr, x.length);
    }
    return this.toHost(b, dtype, size);
  }

  /** Per open scope: whether the heap records it (the heap may not exist yet when it opens). */
  private readonly scopeFlags: boolean[] = [];

  openScope(record = true): void {
    const on = this.k !== null;
    this.scopeFlags.push(on);
    if (on) this.k!.heap.openScope(record);
  }

  closeScope(keep: readonly DeviceBuffer[] | null): void {
    if (this.scopeFlags.pop() !== true) return;
    let set: Set<WasmBuffer> | null = null;
    if (keep !== null) {
      set = new Set();
      for (const b of keep) if ((b as unknown) instanceof WasmBuffer) set.add(b as unknown as WasmBuffer);
    }
    this.k!.heap.closeScope(set);
  }

  /** Give a resident buffer's memory back now (optional; the GC does it otherwise). */
  dispose(b: DeviceBuffer): void {
    const x = b as unknown as Arr | WasmBuffer;
    if (x instanceof WasmBuffer) x.heap.dispose(x);
  }

  /**
   * What the reference backend can read: a resident buffer becomes a zero-copy view of its
   * elements (used within one kernel call only), anything else passes unchanged.
   */
  private host(b: DeviceBuffer): DeviceBuffer {
    const x = b as unknown as WasmBuffer;
    if (x instanceof WasmBuffer) {
      x.check();
      const v = x.heap === this.heap ? x.heap.view(x.storage, x.ptr, x.length) : x.toHostArray();
      return v as unknown as DeviceBuffer;
    }
    return b;
  }

  private hosts(bs: readonly DeviceBuffer[]): DeviceBuffer[] {
    return bs.map((b) => this.host(b));
  }

  /**
   * Run a wasm kernel: inputs become addresses (resident ones as they are, host ones copied into
   * scratch), the output is a fresh resident buffer (or scratch copied out to a typed array when
   * small or over budget), and scratch is released whatever happens.
   */
  private runKernel(
    inputs: readonly { buf: DeviceBuffer; dtype: DType; length: number }[],
    outStorage: Storage,
    outLength: number,
    body: (ptrs: number[], out: number) => void,
  ): DeviceBuffer {
    const temps: number[] = [];
    try {
      const ptrs: number[] = [];
      for (const inp of inputs) {
        const x = inp.buf as unknown as Arr | WasmBuffer;
        if (x instanceof WasmBuffer && x.heap === this.heap) {
          x.check();
          ptrs.push(x.ptr);
        } else {
          // Host data (a typed array, or another representation the reference backend reads).
          const src =
            x instanceof WasmBuffer ? x.toHostArray() : this.ref.toHost(inp.buf, inp.dtype, inp.length);
          const st = storageOf(inp.dtype);
          const p = this.c.heap.scratch(inp.length * BYTES[st]);
          temps.push(p);
          this.c.heap.view(st, p, inp.length).set(src);
          ptrs.push(p);
        }
      }
      const resident =
        outLength >= this.thresholds.resident ? this.c.heap.allocResident(outStorage, outLength) : null;
      if (resident !== null) {
        body(ptrs, resident.ptr);
        return resident as unknown as DeviceBuffer;
      }
      const p = this.c.heap.scratch(outLength * BYTES[outStorage]);
      temps.push(p);
      body(ptrs, p);
      return this.c.heap.view(outStorage, p, outLength).slice() as unknown as DeviceBuffer;
    } finally {
      for (const p of temps) this.c.heap.release(p);
    }
  }

  // ---- elementwise ----

  unary(op: UnaryKernel, x: DeviceBuffer, size: number, dtype: DType): DeviceBuffer {
    const st = storageOf(dtype);
    const exact = WASM_UNARY.includes(op as WasmUnary);
    // Transcendentals: float32 storage only (float64 keeps JS Math, which is within an ulp).
    const approx = st === "f32" && WASM_TRANSCENDENTAL.includes(op as WasmTranscendental);
    if (size < this.thresholds.elementwise || !isFloatStorage(dtype) || !(exact || approx) || !this.core())
      return this.ref.unary(op, this.host(x), size, dtype);
    const name = exact ? `un_${op}_${st}` : `tr_${op}_f32`;
    const es = BYTES[st];
    const min = exact ? this.thresholds.elementwiseThreads : this.thresholds.transcendentalThreads;
    return this.runKernel([{ buf: x, dtype, length: size }], st, size, ([px], out) =>
      // Contiguous chunks, one per thread (a multiple of 16 elements each).
      this.parallel(size, min, 16, (s, e) => ({ fn: name, args: [px! + s * es, out + s * es, e - s] })),
    );
  }

  /**
   * Split `total` units of independent work into one chunk per available thread (chunks are
   * multiples of `unit`; fewer threads when chunks would drop below `min / threads` units) and run
   * `task(start, end)` for each, the first on this thread. Below `min` units: one call here.
   */
  private parallel(
    total: number,
    min: number,
    unit: number,
    task: (start: number, end: number) => Task,
  ): void {
    let parts = 1;
    if (this.c.pool !== null && total >= min) parts = Math.min(this.c.pool.available(), this.c.threads);
    if (parts <= 1) {
      const t = task(0, total);
      this.c.fns[t.fn]!(...t.args);
      return;
    }
    const chunk = Math.ceil(Math.ceil(total / parts) / unit) * unit;
    const tasks: Task[] = [];
    for (let s = 0; s < total; s += chunk) tasks.push(task(s, Math.min(total, s + chunk)));
    if (tasks.length === 1) this.c.fns[tasks[0]!.fn]!(...tasks[0]!.args);
    else if (this.c.pool!.run(tasks) > 0) this.stats.parallelKernels++;
  }

  binary(
    op: BinaryKernel,
    a: DeviceBuffer,
    aShape: Shape,
    b: DeviceBuffer,
    bShape: Shape,
    outShape: Shape,
    inDtype: DType,
    outDtype: DType,
  ): DeviceBuffer {
    const n = sizeOf(outShape);
    const arith = WASM_BINARY.includes(op as WasmBinary) && inDtype === outDtype;
    const compare = WASM_COMPARE.includes(op as WasmCompare) && outDtype === "bool";
    if (n < this.thresholds.elementwise || !isFloatStorage(inDtype) || !(arith || compare) || !this.core())
      return this.ref.binary(op, this.host(a), aShape, this.host(b), bShape, outShape, inDtype, outDtype);
    const pat = collapse([aShape, bShape], outShape);
    if (pat.rows * pat.cols < 256)
      return this.ref.binary(op, this.host(a), aShape, this.host(b), bShape, outShape, inDtype, outDtype);
    const st = storageOf(inDtype);
    const es = BYTES[st];
    const name = arith ? `bin_${op}_${st}` : `cmp_${op}_${st}`;
    const oes = arith ? es : 1;
    const { rows, cols, row, col } = pat;
    const min = this.thresholds.elementwiseThreads;
    return this.runKernel(
      [
        { buf: a, dtype: inDtype, length: sizeOf(aShape) },
        { buf: b, dtype: inDtype, length: sizeOf(bShape) },
      ],
      storageOf(outDtype),
      n,
      (ptrs, out) =>
        eachBlock(pat, ptrs, [es, es], out, oes, ([pa, pb], o) => {
          // Large blocks are split across threads by rows, or by columns when there is one row.
          if (rows > 1)
            this.parallel(rows, min / cols, 1, (r0, r1) => ({
              fn: name,
              args: [
                pa! + r0 * row[0]! * es,
                pb! + r0 * row[1]! * es,
                o + r0 * cols * oes,
                r1 - r0,
                cols,
              ].concat([row[0]!, col[0]!, row[1]!, col[1]!]),
            }));
          else
            this.parallel(cols, min, 16, (c0, c1) => ({
              fn: name,
              args: [pa! + c0 * col[0]! * es, pb! + c0 * col[1]! * es, o + c0 * oes, 1, c1 - c0].concat([
                row[0]!,
                col[0]!,
                row[1]!,
                col[1]!,
              ]),
            }));
        }),
    );
  }

  select(
    c: DeviceBuffer,
    cShape: Shape,
    a: DeviceBuffer,
    aShape: Shape,
    b: DeviceBuffer,
    bShape: Shape,
    outShape: Shape,
    dtype: DType,
  ): DeviceBuffer {
    const n = sizeOf(outShape);
    if (n < this.thresholds.elementwise || !this.core())
      return this.ref.select(
        this.host(c),
        cShape,
        this.host(a),
        aShape,
        this.host(b),
        bShape,
        outShape,
        dtype,
      );
    const pat = collapse([cShape, aShape, bShape], outShape);
    const st = storageOf(dtype);
    const es = BYTES[st];
    const fn = this.c.fns[`sel_${es}`]!;
    const { rows, cols, row, col } = pat;
    return this.runKernel(
      [
        { buf: c, dtype: "bool", length: sizeOf(cShape) },
        { buf: a, dtype, length: sizeOf(aShape) },
        { buf: b, dtype, length: sizeOf(bShape) },
      ],
      st,
      n,
      (ptrs, out) =>
        eachBlock(pat, ptrs, [1, es, es], out, es, ([pc, pa, pb], o) =>
          fn(pc!, pa!, pb!, o, rows, cols, row[0]!, col[0]!, row[1]!, col[1]!, row[2]!, col[2]!),
        ),
    );
  }

  cast(x: DeviceBuffer, size: number, from: DType, to: DType): DeviceBuffer {
    if (size < this.thresholds.elementwise || !this.core())
      return this.ref.cast(this.host(x), size, from, to);
    const src = storageOf(from);
    // float16/bfloat16 are rounded float32 values: only a change of format rounds them again.
    const dst: CastTo =
      to === "float16" && from !== "float16"
        ? "f16"
        : to === "bfloat16" && from !== "bfloat16"
          ? "bf16"
          : storageOf(to);
    const outStorage = dst === "f16" || dst === "bf16" ? "f32" : dst;
    const se = BYTES[src];
    const de = BYTES[outStorage];
    return this.runKernel([{ buf: x, dtype: from, length: size }], outStorage, size, ([px], out) => {
      if (dst === src) {
        this.c.heap.view(outStorage, out, size).set(this.c.heap.view(src, px!, size));
        return;
      }
      this.parallel(size, this.thresholds.elementwiseThreads, 16, (s, e) => ({
        fn: `cast_${src}_${dst}`,
        args: [px! + s * se, out + s * de, e - s],
      }));
    });
  }

  fused(expr: FusedExpr, inputs: readonly DeviceBuffer[], size: number, dtype: DType): DeviceBuffer {
    return this.ref.fused(expr, this.hosts(inputs), size, dtype);
  }

  // ---- reductions ----

  reduce(
    op: ReduceKernel,
    x: DeviceBuffer,
    shape: Shape,
    axes: readonly number[],
    inDtype: DType,
    outDtype: DType,
  ): DeviceBuffer {
    const n = sizeOf(shape);
    const contiguous = axes.every((a, i) => i === 0 || a === axes[i - 1]! + 1);
    const isArg = op === "argmax" || op === "argmin";
    if (
      !contiguous &&
      !isArg &&
      n >= this.thresholds.elementwise &&
      isFloatStorage(inDtype) &&
      inDtype === outDtype
    ) {
      // Axes in several runs (a conv bias gradient sums [N, C, H, W] over N, H and W): reduce the
      // last run, then the earlier ones on the smaller result. Extrema come out exactly as in one
      // pass (the first extreme met in row-major order stays first); sums differ by order only.
      const runs: number[][] = [];
      for (const a of axes) {
        const run = runs[runs.length - 1];
        if (run !== undefined && run[run.length - 1] === a - 1) run.push(a);
        else runs.push([a]);
      }
      let buf = x;
      let cur = [...shape];
      for (let r = runs.length - 1; r >= 0; r--) {
        const run = runs[r]!;
        buf = this.reduce(op, buf, cur, run, inDtype, outDtype);
        cur = cur.filter((_, i) => !run.includes(i));
      }
      return buf;
    }
    if (
      n < this.thresholds.elementwise ||
      !isFloatStorage(inDtype) ||
      (isArg ? outDtype !== "int32" : inDtype !== outDtype) ||
      axes.length === 0 ||
      !contiguous ||
      !this.core()
    )
      return this.ref.reduce(op, this.host(x), shape, axes, inDtype, outDtype);
    const first = axes[0]!;
    const last = axes[axes.length - 1]!;
    const outer = sizeOf(shape.slice(0, first));
    const red = sizeOf(shape.slice(first, last + 1));
    const inner = sizeOf(shape.slice(last + 1));
    const st = storageOf(inDtype);
    const es = BYTES[st];
    const oes = isArg ? 4 : es;
    const fn = op === "sum" ? `rsum_${st}` : `r${op}_${st}`;
    const min = this.thresholds.elementwiseThreads;
    const pool = this.c.pool;
    return this.runKernel(
      [{ buf: x, dtype: inDtype, length: n }],
      isArg ? "i32" : st,
      outer * inner,
      ([px], out) => {
        // Independent outputs: outer rows split across threads, or the columns when there are
        // fewer outer rows than threads (a bias gradient: [N, D] summed over N).
        if (inner >= 32 && pool !== null && outer < this.c.threads)
          this.parallel(inner, min / (outer * red), 16, (j0, j1) => ({
            fn,
            args: [px! + j0 * es, out + j0 * oes, outer, red, inner, j1 - j0],
          }));
        else
          this.parallel(outer, min / (red * inner), 1, (o0, o1) => ({
            fn,
            args: [px! + o0 * red * inner * es, out + o0 * inner * oes, o1 - o0, red, inner, inner],
          }));
      },
    );
  }

  // ---- matmul ----

  /**
   * Gemm scratch for `parts` participants (see `Core.gemmScratch`), with packed-B panels too when
   * `withB` (the shared-panel product packs B elsewhere). A parallel kernel may run on any of the
   * pool's workers, so callers ask for the pool's size, not for the workers ready now.
   */
  private scratchFor(t: "f32" | "f64", parts: number, s: GemmShape, withB: boolean): GemmScratch {
    const have = this.c.gemmScratch[t];
    if (have !== null && have.parts >= parts && (have.pB >= 0 || !withB)) return have;
    const heap = this.c.heap;
    if (have !== null) for (const p of [have.pA, have.pB, have.tile]) if (p >= 0) heap.release(p);
    const sz = gemmScratchBytes(s, t === "f32" ? 4 : 8);
    const n = Math.max(parts, have?.parts ?? 1);
    const made = {
      parts: n,
      pA: heap.scratch(sz.a * n),
      pB: withB || (have !== null && have.pB >= 0) ? heap.scratch(sz.b * n) : -1,
      tile: heap.scratch(sz.tile * n),
    };
    this.c.gemmScratch[t] = made;
    return made;
  }

  matmul(
    a: DeviceBuffer,
    b: DeviceBuffer,
    batch: number,
    m: number,
    k: number,
    n: number,
    dtype: DType,
    trans?: MatmulTranspose,
  ): DeviceBuffer {
    const work = batch * m * k * n;
    if (!isFloatStorage(dtype) || work < this.thresholds.matmul || k === 0 || !this.core())
      return this.ref.matmul(this.host(a), this.host(b), batch, m, k, n, dtype, trans);
    const st = storageOf(dtype) as "f32" | "f64";
    const es = BYTES[st];
    const ta = trans?.a === true;
    const tb = trans?.b === true;
    if ((ta || tb) && (m <= GEMV_ROWS || n === 1)) {
      // The matrix-vector kernels read row-major operands: transpose first (a small copy here).
      const at = ta ? this.transpose(a, [batch, k, m], [0, 2, 1], dtype) : a;
      const bt = tb ? this.transpose(b, [batch, n, k], [0, 2, 1], dtype) : b;
      try {
        return this.matmul(at, bt, batch, m, k, n, dtype);
      } finally {
        if (ta) this.dispose(at);
        if (tb) this.dispose(bt);
      }
    }
    // Element strides of the operands (a transposed one is read down its columns by the packing).
    const [rsA, csA] = ta ? [1, m] : [k, 1];
    const [rsB, csB] = tb ? [1, k] : [n, 1];
    const operands = [
      { buf: a, dtype, length: batch * m * k },
      { buf: b, dtype, length: batch * k * n },
    ];
    if (m <= GEMV_ROWS || n === 1) {
      // Matrix-vector shapes and a few rows: read in place (packing B would cost a large share of
      // the product). Groups of four rows share each load of B; the rest go one at a time.
      const fns = this.c.fns;
      const one = fns[`gemv_${st}`]!;
      const four = fns[`gemv4_${st}`]!;
      const dot = fns[`gemvt_${st}`]!;
      const m4 = m >= 3 ? m - (m % 4) : 0;
      return this.runKernel(operands, st, batch * m * n, ([pa, pb], pc) => {
        for (let p = 0; p < batch; p++) {
          const A = pa! + p * m * k * es;
          const B = pb! + p * k * n * es;
          const C = pc + p * m * n * es;
          if (n === 1 && m > GEMV_ROWS) dot(A, B, C, m, k);
          else {
            if (m4 > 0) four(A, B, C, m4, k, n);
            if (m4 < m) one(A + m4 * k * es, B, C + m4 * n * es, m - m4, k, n);
          }
        }
      });
    }
    const shape = gemmShape(st, this.c.compiled.fma);
    const per = m * k * n;
    const pool = this.c.pool;
    let parts = 1;
    if (pool !== null && work >= this.thresholds.matmulThreads)
      parts = Math.min(pool.available(), this.c.threads);
    // Packed-B scratch per participant unless one large product shares a packed panel.
    const sc = this.scratchFor(
      st,
      parts > 1 ? pool!.size : 1,
      shape,
      parts <= 1 || per < this.thresholds.matmulThreads,
    );
    return this.runKernel(operands, st, batch * m * n, ([pa, pb], pc) => {
      const item = (p: number): number[] => [
        pa! + p * m * k * es,
        pb! + p * k * n * es,
        pc + p * m * n * es,
        m,
        k,
        n,
        rsA,
        csA,
        rsB,
        csB,
        n,
      ];
      if (parts <= 1 || pool === null) {
        const gemm = this.c.fns[`gemm_${st}`]!;
        for (let p = 0; p < batch; p++) gemm(...item(p), sc.pA, sc.pB, sc.tile);
      } else if (per < this.thresholds.matmulThreads) {
        // Many small products: whole items are the tasks.
        const tasks: Task[] = [];
        for (let p = 0; p < batch; p++)
          tasks.push({ fn: `gemmp_${st}`, args: [...item(p), sc.pA, sc.pB, sc.tile] });
        if (pool.run(tasks, { withParticipant: true }) > 0) this.stats.parallelKernels++;
      } else
        for (let p = 0; p < batch; p++) {
          const [A, B, C] = item(p) as [number, number, number];
          this.parallelGemm(st, shape, sc, parts, A, B, C, m, k, n, [rsA, csA, rsB, csB]);
        }
    });
  }

  /**
   * One large product on `parts` threads: for each panel of B (all of its columns up to the
   * blocking width, and as deep as fits a few MiB), the threads first pack it together into a
   * shared buffer, then share out blocks of C (rows, and columns when there are few rows), each
   * block's thread packing its own rows of A. Threads take blocks from a shared counter, so a
   * thread the OS runs late does fewer of them rather than holding up the others.
   */
  private parallelGemm(
    st: "f32" | "f64",
    s: GemmShape,
    sc: GemmScratch,
    parts: number,
    A: number,
    B: number,
    C: number,
    m: number,
    k: number,
    n: number,
    [rsA, csA, rsB, csB]: readonly [number, number, number, number],
  ): void {
    const es = BYTES[st];
    const pool = this.c.pool!;
    const heap = this.c.heap;
    const ncMax = Math.min(s.nc, Math.ceil(n / s.nr) * s.nr);
    // Depth of a shared panel: whole depth panels, at most PANEL_BYTES of packed B.
    const kb = Math.max(s.kc, Math.floor(PANEL_BYTES / (ncMax * es) / s.kc) * s.kc);
    const pB = heap.scratch(Math.min(kb, Math.ceil(k / s.kc) * s.kc) * ncMax * es);
    // Blocks of C: about TASKS_PER_THREAD per thread, rows in whole register tiles and at least
    // MIN_TILES of them (so each packed B strip serves several tiles), columns when rows run out.
    const target = TASKS_PER_THREAD * parts;
    const mb = Math.min(s.mc, Math.max(MIN_TILES * s.mr, Math.ceil(m / target / s.mr) * s.mr));
    const rowBlocks = Math.ceil(m / mb);
    let any = false;
    try {
      for (let jc = 0; jc < n; jc += s.nc) {
        const nc = Math.min(s.nc, n - jc);
        const ncp = Math.ceil(nc / s.nr) * s.nr;
        const strips = ncp / s.nr;
        const colBlocks = Math.max(1, Math.min(Math.ceil(target / rowBlocks), Math.floor(nc / MIN_COLS)));
        const nb = Math.ceil(strips / colBlocks) * s.nr;
        for (let k0 = 0; k0 < k; k0 += kb) {
          const kk = Math.min(kb, k - k0);
          // 1. Pack B[k0:k0+kk, jc:jc+nc] together, by depth panel and groups of strips.
          const panels = Math.ceil(kk / s.kc);
          const groups = Math.max(1, Math.ceil((2 * parts) / panels));
          const gs = Math.ceil(strips / groups) * s.nr;
          const pack: Task[] = [];
          for (let p = 0; p < panels; p++) {
            const kc = Math.min(s.kc, kk - p * s.kc);
            for (let j0 = 0; j0 < nc; j0 += gs)
              pack.push({
                fn: `packB_${st}`,
                args: [
                  B + ((k0 + p * s.kc) * rsB + (jc + j0) * csB) * es,
                  rsB,
                  csB,
                  kc,
                  Math.min(gs, nc - j0),
                  pB + (p * s.kc * ncp + j0 * kc) * es,
                ],
              });
          }
          // A small panel packs faster on this thread than a job can be handed out.
          if (kk * ncp * es <= SMALL_PANEL_BYTES) for (const t of pack) this.c.fns[t.fn]!(...t.args);
          else if (pool.run(pack) > 0) any = true;
          // 2. The blocks of C.
          const blocks: Task[] = [];
          for (let i0 = 0; i0 < m; i0 += mb)
            for (let j0 = 0; j0 < nc; j0 += nb)
              blocks.push({
                fn: `gemmblk_${st}`,
                args: [
                  A + (i0 * rsA + k0 * csA) * es,
                  rsA,
                  csA,
                  C + (i0 * n + jc + j0) * es,
                  n,
                  Math.min(mb, m - i0),
                  kk,
                  Math.min(nb, nc - j0),
                  pB,
                  ncp,
                  j0,
                  k0 > 0 ? 1 : 0,
                  sc.pA,
                  sc.tile,
                ],
              });
          if (pool.run(blocks, { withParticipant: true }) > 0) any = true;
        }
      }
    } finally {
      heap.release(pB);
    }
    if (any) this.stats.parallelKernels++;
  }

  // ---- linear algebra, movement, indexing, random: the reference algorithms over views ----

  cholesky(a: DeviceBuffer, batch: number, n: number, dtype: DType): DeviceBuffer {
    return this.ref.cholesky(this.host(a), batch, n, dtype);
  }

  triangularSolve(
    a: DeviceBuffer,
    b: DeviceBuffer,
    batch: number,
    n: number,
    m: number,
    opts: TriangularSolveOptions,
    dtype: DType,
  ): DeviceBuffer {
    return this.ref.triangularSolve(this.host(a), this.host(b), batch, n, m, opts, dtype);
  }

  lu(a: DeviceBuffer, batch: number, n: number, dtype: DType): LuBuffers {
    return this.ref.lu(this.host(a), batch, n, dtype);
  }

  eigh(
    a: DeviceBuffer,
    batch: number,
    n: number,
    dtype: DType,
  ): { values: DeviceBuffer; vectors: DeviceBuffer } {
    return this.ref.eigh(this.host(a), batch, n, dtype);
  }

  det(a: DeviceBuffer, batch: number, n: number, dtype: DType): DeviceBuffer {
    return this.ref.det(this.host(a), batch, n, dtype);
  }

  // ---- data movement: strided copies in wasm (large outputs), the reference's loops otherwise ----

  /** Run one collapsed copy plan from the buffer at `src` into the buffer at `dst`. */
  private runCopy(p: CopyPlan, src: number, dst: number, es: ElemSize): void {
    const nd = p.region.length;
    const tail = transposeTail(p);
    if (tail !== null) {
      // Matrices transposed in the innermost two dims: blocked 2-D transposes, one per matrix.
      const [rows, cols] = tail;
      const t2 = this.c.fns[`transpose2d_${es}`]!;
      const outer = p.region.slice(0, nd - 2);
      const idx = new Array<number>(outer.length).fill(0);
      let so = p.srcOffset;
      let dOff = p.dstOffset;
      for (;;) {
        t2(src + so * es, dst + dOff * es, rows, cols);
        let d = outer.length - 1;
        for (; d >= 0; d--) {
          idx[d]!++;
          so += p.src[d]!;
          dOff += p.dst[d]!;
          if (idx[d]! < outer[d]!) break;
          so -= p.src[d]! * outer[d]!;
          dOff -= p.dst[d]! * outer[d]!;
          idx[d] = 0;
        }
        if (d < 0) return;
      }
    }
    if (nd > 64) throw new Error("wasm backend: too many dimensions for a strided copy");
    if (this.c.descPtr < 0) this.c.descPtr = this.c.heap.scratch(4 * 4 * 64);
    const w = new Int32Array(this.c.heap.memory.buffer, this.c.descPtr, 3 * nd);
    for (let d = 0; d < nd; d++) {
      w[d] = p.region[d]!;
      w[nd + d] = p.src[d]!;
      w[2 * nd + d] = p.dst[d]!;
    }
    this.c.fns[`copy_${es}`]!(src + p.srcOffset * es, dst + p.dstOffset * es, nd, this.c.descPtr);
  }

  /** A gather-style movement: the output is `outShape`, read from x through `plan`. */
  private moveKernel(x: DeviceBuffer, length: number, dtype: DType, n: number, plan: CopyPlan): DeviceBuffer {
    const st = storageOf(dtype);
    const es = BYTES[st] as ElemSize;
    return this.runKernel([{ buf: x, dtype, length }], st, n, ([px], out) =>
      this.runCopy(plan, px!, out, es),
    );
  }

  transpose(x: DeviceBuffer, shape: Shape, perm: readonly number[], dtype: DType): DeviceBuffer {
    const n = sizeOf(shape);
    if (n < this.thresholds.elementwise || !this.core())
      return this.ref.transpose(this.host(x), shape, perm, dtype);
    const s = stridesOf(shape);
    const outShape = perm.map((p) => shape[p]!);
    return this.moveKernel(
      x,
      n,
      dtype,
      n,
      gatherPlan(
        outShape,
        perm.map((p) => s[p]!),
        0,
      ),
    );
  }

  broadcast(x: DeviceBuffer, shape: Shape, outShape: Shape, dtype: DType): DeviceBuffer {
    const n = sizeOf(outShape);
    if (n < this.thresholds.elementwise || !this.core())
      return this.ref.broadcast(this.host(x), shape, outShape, dtype);
    const s = stridesOf(shape);
    const off = outShape.length - shape.length;
    const src = outShape.map((_, d) => (d < off || shape[d - off] === 1 ? 0 : s[d - off]!));
    return this.moveKernel(x, sizeOf(shape), dtype, n, gatherPlan(outShape, src, 0));
  }

  slice(
    x: DeviceBuffer,
    shape: Shape,
    begin: readonly number[],
    size: readonly number[],
    dtype: DType,
  ): DeviceBuffer {
    const n = sizeOf(size);
    if (n < this.thresholds.elementwise || !this.core())
      return this.ref.slice(this.host(x), shape, begin, size, dtype);
    const s = stridesOf(shape);
    let off = 0;
    for (let d = 0; d < shape.length; d++) off += begin[d]! * s[d]!;
    return this.moveKernel(x, sizeOf(shape), dtype, n, gatherPlan(size, s, off));
  }

  flip(x: DeviceBuffer, shape: Shape, axes: readonly number[], dtype: DType): DeviceBuffer {
    const n = sizeOf(shape);
    if (n < this.thresholds.elementwise || !this.core())
      return this.ref.flip(this.host(x), shape, axes, dtype);
    const s = stridesOf(shape);
    let off = 0;
    const src = s.map((v, d) => {
      if (!axes.includes(d)) return v;
      off += (shape[d]! - 1) * v;
      return -v;
    });
    return this.moveKernel(x, n, dtype, n, gatherPlan(shape, src, off));
  }

  pad(
    x: DeviceBuffer,
    shape: Shape,
    widths: readonly (readonly [number, number])[],
    value: number,
    dtype: DType,
  ): DeviceBuffer {
    const outShape = shape.map((d, i) => d + widths[i]![0] + widths[i]![1]);
    const n = sizeOf(outShape);
    if (n < this.thresholds.elementwise || widths.some(([a, b]) => a < 0 || b < 0) || !this.core())
      return this.ref.pad(this.host(x), shape, widths, value, dtype);
    const st = storageOf(dtype);
    const es = BYTES[st] as ElemSize;
    const plan = scatterPlan(
      shape,
      outShape,
      widths.map((w) => w[0]),
    );
    return this.runKernel([{ buf: x, dtype, length: sizeOf(shape) }], st, n, ([px], out) => {
      this.c.heap.view(st, out, n).fill(value);
      if (sizeOf(shape) > 0) this.runCopy(plan, px!, out, es);
    });
  }

  concat(xs: readonly DeviceBuffer[], shapes: readonly Shape[], axis: number, dtype: DType): DeviceBuffer {
    const first = shapes[0]!;
    const total = shapes.reduce((t, s) => t + s[axis]!, 0);
    const outShape = first.map((d, i) => (i === axis ? total : d));
    const n = sizeOf(outShape);
    if (n < this.thresholds.elementwise || !this.core())
      return this.ref.concat(this.hosts(xs), shapes, axis, dtype);
    const st = storageOf(dtype);
    const es = BYTES[st] as ElemSize;
    return this.runKernel(
      xs.map((buf, j) => ({ buf, dtype, length: sizeOf(shapes[j]!) })),
      st,
      n,
      (ptrs, out) => {
        let at = 0;
        shapes.forEach((sh, j) => {
          const begin = sh.map((_, d) => (d === axis ? at : 0));
          if (sizeOf(sh) > 0) this.runCopy(scatterPlan(sh, outShape, begin), ptrs[j]!, out, es);
          at += sh[axis]!;
        });
      },
    );
  }

  gather(
    x: DeviceBuffer,
    shape: Shape,
    axis: number,
    index: DeviceBuffer,
    indexShape: Shape,
    dtype: DType,
  ): DeviceBuffer {
    return this.ref.gather(this.host(x), shape, axis, this.host(index), indexShape, dtype);
  }

  scatterAdd(
    x: DeviceBuffer,
    shape: Shape,
    axis: number,
    index: DeviceBuffer,
    indexShape: Shape,
    src: DeviceBuffer,
    dtype: DType,
  ): DeviceBuffer {
    return this.ref.scatterAdd(
      this.host(x),
      shape,
      axis,
      this.host(index),
      indexShape,
      this.host(src),
      dtype,
    );
  }

  randomUniform(key: DeviceBuffer, shape: Shape, dtype: DType): DeviceBuffer {
    return this.ref.randomUniform(this.host(key), shape, dtype);
  }

  randomSplit(key: DeviceBuffer, n: number): DeviceBuffer {
    return this.ref.randomSplit(this.host(key), n);
  }
}
