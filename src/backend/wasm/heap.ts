/**
 * @file The wasm backend's memory: one WebAssembly.Memory (shared when threads are possible)
 * carved into 64-byte-aligned blocks by size class. Tensor buffers living in it ("resident")
 * are handed back to their class's free list when the garbage collector finalizes their
 * owner (FinalizationRegistry), or at once by `dispose()`; kernels' scratch blocks are freed
 * as soon as the kernel returns. Nothing ever needs to be disposed by the user.
 *
 * Finalization callbacks only run when the JS event loop turns, so a long synchronous loop
 * cannot get blocks back while it runs. The heap therefore keeps a budget for resident bytes
 * not yet finalized: past it, new results are returned as ordinary typed arrays (collected by
 * the GC like the reference backend's) and resident memory stops growing.
 *
 * V8 does not count wasm memory when it decides to run a major GC (the only kind that clears
 * finalization targets), so with a small JS heap dead tensors' blocks could wait for a GC long
 * after the budget is spent. When half of the budget is held (and nothing was finalized since
 * the last time), the heap reports memory pressure the one way JS can: it allocates a transient
 * 128 MiB ArrayBuffer, which V8 counts as external memory and answers with a major GC. The
 * buffer is never written, so its zero pages are never touched (it costs address space, not
 * resident memory), and it is dropped at the next allocation. A loop that yields to the event
 * loop then gets dead tensors' blocks back long before the budget is spent.
 */

import type { AnyTypedArray, DType } from "../../dtype.js";
import { TransformError } from "../../errors.js";
import { type WasmMemory, wasmApi } from "./wasm-api.js";

/** How a dtype is stored: float16/bfloat16 live in float32 containers (see dtype.ts). */
export type Storage = "f32" | "f64" | "i32" | "u8";

/**
 * The storage of a dtype.
 * @example
 * storageOf("bfloat16"); // "f32"
 */
export function storageOf(d: DType): Storage {
  switch (d) {
    case "float64":
      return "f64";
    case "int32":
      return "i32";
    case "bool":
      return "u8";
    default:
      return "f32";
  }
}

/** Bytes per element of each storage. */
export const BYTES: Record<Storage, number> = { f32: 4, f64: 8, i32: 4, u8: 1 };

const PAGE = 65536;
/**
 * Bytes of the transient buffer that signals memory pressure. V8 starts a major GC when external
 * memory has grown past a soft limit, 64 MiB above what the last GC left; a buffer of exactly
 * that size is not always noticed (measured on V8 11.3), twice that reliably is.
 */
const PRESSURE_BYTES = 128 * 2 ** 20;

const isNode =
  typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";

/**
 * Resident bytes not yet reclaimed before results fall back to GC'd typed arrays: 256 MiB in
 * Node, 128 MiB in browsers. Measured on an eager Adam step over a 270k-parameter MLP (15 MB of
 * temporaries per step): with 64 MiB a loop that yields every step still fell back on one result
 * in five (finalization lags a major GC) and ran 2.2x slower; with 256 MiB, on under one in 100.
 */
export const DEFAULT_BUDGET = (isNode ? 256 : 128) * 2 ** 20;
const ALIGN = 64;
/** Bytes below this address are reserved (a null guard). */
const HEAP_BASE = 1024;

/** The size class of a request: 64 B granules up to 1 KiB, then four classes per power of two. */
function classOf(bytes: number): { index: number; size: number } {
  if (bytes <= 1024) {
    const g = Math.max(1, Math.ceil(bytes / ALIGN));
    return { index: g - 1, size: g * ALIGN };
  }
  const e = Math.floor(Math.log2(bytes - 1)); // 2^e < bytes <= 2^(e+1)
  const quarter = 2 ** (e - 2);
  const q = Math.ceil((bytes - 2 ** e) / quarter); // 1..4
  return { index: 16 + (e - 10) * 4 + (q - 1), size: 2 ** e + q * quarter };
}

/**
 * A tensor buffer resident in wasm memory. Immutable once written; several tensors may share it
 * (a reshape shares storage), so disposal marks this object and every later use throws.
 * @example
 * const b = heap.allocResident("f32", 1024); // null when the budget is spent
 */
export class WasmBuffer {
  /** False once the memory was given back by `dispose`. */
  live = true;

  constructor(
    readonly heap: Heap,
    readonly ptr: number,
    readonly length: number,
    readonly storage: Storage,
    readonly classIndex: number,
  ) {}

  get byteLength(): number {
    return this.length * BYTES[this.storage];
  }

  /** A fresh host copy (what a backend that cannot read wasm memory gets). */
  toHostArray(): AnyTypedArray {
    this.check();
    return this.heap.view(this.storage, this.ptr, this.length).slice();
  }

  check(): void {
    if (!this.live)
      throw new TransformError(
        "wasm backend: this tensor's memory was released by dispose(); it can no longer be used",
      );
  }
}

/** Options of the heap (all optional; see `docs/backends.md`). */
export interface HeapOptions {
  readonly shared: boolean;
  /** Resident bytes allowed before results fall back to GC-managed arrays. */
  readonly budget?: number;
  /** Hard limit of the memory in bytes (a shared memory must declare it). */
  readonly maxBytes?: number;
}

/**
 * The memory and its allocator (see the file comment).
 * @example
 * const heap = new Heap({ shared: false });
 * const p = heap.scratch(4096); // a kernel's scratch block
 * heap.release(p);
 */
export class Heap {
  readonly memory: WasmMemory;
  readonly shared: boolean;
  readonly maxPages: number;
  budget: number;
  private top = HEAP_BASE;
  private readonly free: number[][] = [];
  /** Class-rounded bytes of resident tensor buffers not yet finalized or disposed. */
  residentBytes = 0;
  /** Class-rounded bytes of scratch blocks currently held by kernels. */
  scratchBytes = 0;
  private readonly registry: FinalizationRegistry<number>;
  /** Counters for benchmarks and tests. */
  readonly stats = {
    residentAllocs: 0,
    hostFallbacks: 0,
    finalized: 0,
    disposed: 0,
    pressureSignals: 0,
    /** Buffers released when a library routine's scope closed (included in `disposed`). */
    scopeReleased: 0,
  };
  /** Whether memory pressure was signalled and nothing was finalized since. */
  private signalled = false;
  /**
   * The transient pressure buffer, held until the next allocation so that no compiler can drop
   * the allocation as unused (see the file comment); null otherwise.
   */
  pressure: ArrayBuffer | null = null;

  constructor(opts: HeapOptions) {
    this.shared = opts.shared;
    this.maxPages = Math.floor((opts.maxBytes ?? 2 ** 32 - PAGE) / PAGE);
    this.budget = opts.budget ?? DEFAULT_BUDGET;
    const initial = 64; // 4 MiB
    this.memory = new (wasmApi()!.Memory)(
      this.shared ? { initial, maximum: this.maxPages, shared: true } : { initial, maximum: this.maxPages },
    );
    // The held value packs the block address and its size class (< 128) in one number.
    this.registry = new FinalizationRegistry<number>((token) => {
      const cls = token % 128;
      const ptr = (token - cls) / 128;
      this.stats.finalized++;
      this.signalled = false;
      this.residentBytes -= this.classSize(cls);
      this.push(cls, ptr);
    });
  }

  private classSize(index: number): number {
    if (index < 16) return (index + 1) * ALIGN;
    const e = Math.floor((index - 16) / 4) + 10;
    const q = ((index - 16) % 4) + 1;
    return 2 ** e + q * 2 ** (e - 2);
  }

  private push(cls: number, ptr: number): void {
    let list = this.free[cls];
    if (list === undefined) list = this.free[cls] = [];
    list.push(ptr);
  }

  /** A block of at least `bytes`; null when the memory cannot grow that far. */
  private take(bytes: number): { ptr: number; cls: number; size: number } | null {
    const { index, size } = classOf(bytes);
    const list = this.free[index];
    if (list !== undefined && list.length > 0) return { ptr: list.pop()!, cls: index, size };
    const ptr = this.top;
    const end = ptr + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const need = Math.ceil((end - have) / PAGE);
      const pages = have / PAGE;
      // Grow geometrically (at least 1/8 of the current size) so growth is rare.
      const want = Math.min(this.maxPages - pages, Math.max(need, Math.ceil(pages / 8)));
      if (want < need) return null;
      try {
        this.memory.grow(want);
      } catch {
        return null;
      }
    }
    this.top = end;
    return { ptr, cls: index, size };
  }

  /** A scratch block for the duration of one kernel; give it back with `release`. */
  scratch(bytes: number): number {
    const b = this.take(Math.max(bytes, 1));
    if (b === null)
      throw new RangeError(`wasm backend: out of memory allocating ${bytes} bytes of scratch space`);
    this.scratchBytes += b.size;
    return this.tag(b.ptr, b.cls);
  }

  /** Scratch addresses carry their class in a side table (addresses are kept plain numbers). */
  private readonly scratchClass = new Map<number, number>();

  private tag(ptr: number, cls: number): number {
    this.scratchClass.set(ptr, cls);
    return ptr;
  }

  release(ptr: number): void {
    const cls = this.scratchClass.get(ptr);
    if (cls === undefined) throw new Error("wasm backend: release of an unknown scratch block");
    this.scratchClass.delete(ptr);
    this.scratchBytes -= this.classSize(cls);
    this.push(cls, ptr);
  }

  /**
   * A resident buffer for `length` elements, registered for finalization; null when the budget
   * of not-yet-finalized resident memory is spent or the memory is full (the caller then
   * produces an ordinary typed array instead).
   */
  allocResident(storage: Storage, length: number): WasmBuffer | null {
    const bytes = Math.max(length * BYTES[storage], 1);
    this.pressure = null;
    if (!this.signalled && this.residentBytes + bytes > this.budget / 2) {
      this.signalled = true;
      this.stats.pressureSignals++;
      try {
        this.pressure = new ArrayBuffer(PRESSURE_BYTES);
      } catch {
        // No address space for it: the budget still bounds resident memory.
      }
    }
    if (this.residentBytes + bytes > this.budget) {
      this.stats.hostFallbacks++;
      return null;
    }
    const b = this.take(bytes);
    if (b === null) {
      this.stats.hostFallbacks++;
      return null;
    }
    this.residentBytes += b.size;
    this.stats.residentAllocs++;
    const buf = new WasmBuffer(this, b.ptr, length, storage, b.cls);
    this.registry.register(buf, b.ptr * 128 + b.cls, buf);
    this.scopes[this.scopes.length - 1]?.push(buf);
    return buf;
  }

  /** Buffers made inside each open scope, innermost last (null: a level that records nothing). */
  private readonly scopes: (WasmBuffer[] | null)[] = [];

  /**
   * Record the resident buffers made from now on (a backward pass, an optimizer step); with
   * `record` false, open a level under which nothing is recorded (so nothing is released).
   */
  openScope(record = true): void {
    this.scopes.push(record ? [] : null);
  }

  /**
   * Close the innermost scope: dispose its buffers except those in `keep` (null: keep all), which
   * join the enclosing scope. Returns how many were disposed.
   */
  closeScope(keep: ReadonlySet<WasmBuffer> | null): number {
    const list = this.scopes.pop();
    if (list === undefined || list === null) return 0;
    const parent = this.scopes[this.scopes.length - 1];
    let n = 0;
    for (const b of list) {
      if (keep === null || keep.has(b)) parent?.push(b);
      else if (b.live) {
        this.dispose(b);
        n++;
      }
    }
    this.stats.scopeReleased += n;
    return n;
  }

  /** Give a resident buffer's memory back now; later uses of it throw. */
  dispose(buf: WasmBuffer): void {
    if (!buf.live) return;
    buf.live = false;
    this.registry.unregister(buf);
    this.residentBytes -= this.classSize(buf.classIndex);
    this.stats.disposed++;
    this.push(buf.classIndex, buf.ptr);
  }

  /** A typed-array view of `length` elements at `ptr` (valid until the memory next grows, if unshared). */
  view(storage: Storage, ptr: number, length: number): AnyTypedArray {
    const ab = this.memory.buffer;
    switch (storage) {
      case "f32":
        return new Float32Array(ab, ptr, length);
      case "f64":
        return new Float64Array(ab, ptr, length);
      case "i32":
        return new Int32Array(ab, ptr, length);
      case "u8":
        return new Uint8Array(ab, ptr, length);
    }
  }

  /** Bytes of the memory (it never shrinks). */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }
}
