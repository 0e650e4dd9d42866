/**
 * @file The wasm backend's worker pool: `threads - 1` workers (worker_threads in Node, Web Workers
 * in browsers) each instantiate the same compiled kernel module over the same shared memory and
 * sleep in `Atomics.wait`. A parallel kernel writes one argument slot per worker, wakes them,
 * runs its own share on the calling thread and waits for the others, so kernels stay synchronous
 * as the Backend interface requires. Workers start lazily (the first large kernel starts them and
 * runs single-threaded until they report ready), are unref'd so a process exits promptly, and a
 * worker that fails marks the pool broken: later kernels run on the calling thread.
 *
 * No `node:` module is imported statically: Node's worker_threads is reached through
 * `process.getBuiltinModule` (Node >= 20.16) or a guarded dynamic import, so bundles for the
 * browser never see it.
 */

import type { WasmMemory, WasmModule } from "./wasm-api.js";

/** Control words (Int32Array indices) in the shared control block. */
const SEQ = 0; // bumped to wake the workers
const DONE = 1; // workers that finished the current job
const ERROR = 2; // set by a worker whose kernel threw
const JOB = 4; // JOB + 2 id: the last job number posted to worker id
const READY = 5; // READY + 2 id: 1 once worker id instantiated the module

/** Argument slot per worker: [function index, argument count, arguments...]. */
const SLOT = 16;

/** The code each worker runs: plain JS, the same text for Node and browsers. */
const WORKER_SOURCE = `"use strict";
(function () {
  function start(d) {
    var inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
    var fns = d.names.map(function (n) { return inst.exports[n]; });
    var ctrl = new Int32Array(d.ctrl);
    var args = new Float64Array(d.args);
    var id = d.id, base = id * ${SLOT}, last = 0;
    Atomics.store(ctrl, ${READY} + 2 * id, 1);
    for (;;) {
      var s = Atomics.load(ctrl, ${SEQ});
      var job = Atomics.load(ctrl, ${JOB} + 2 * id);
      if (job !== last) {
        last = job;
        try {
          var n = args[base + 1] | 0, a = [];
          for (var i = 0; i < n; i++) a.push(args[base + 2 + i]);
          fns[args[base] | 0].apply(null, a);
        } catch (e) {
          Atomics.store(ctrl, ${ERROR}, 1);
        }
        Atomics.add(ctrl, ${DONE}, 1);
        Atomics.notify(ctrl, ${DONE});
        continue;
      }
      Atomics.wait(ctrl, ${SEQ}, s);
    }
  }
  if (typeof require === "function") start(require("node:worker_threads").workerData);
  else self.onmessage = function (e) { start(e.data); };
})();
`;

interface NodeWorker {
  unref(): void;
  terminate(): Promise<number>;
  on(event: "error" | "exit", fn: (e: unknown) => void): void;
}
interface NodeWorkerThreads {
  Worker: new (src: string, opts: { eval: true; workerData: unknown }) => NodeWorker;
}
interface BrowserWorker {
  postMessage(data: unknown): void;
  terminate(): void;
  onerror: ((e: unknown) => void) | null;
}

type AnyWorker = { kind: "node"; w: NodeWorker } | { kind: "web"; w: BrowserWorker };

interface GlobalWithEnv {
  process?: {
    versions?: { node?: string };
    getBuiltinModule?: (name: string) => unknown;
  };
  Worker?: new (url: string) => BrowserWorker;
  Blob?: new (parts: string[], opts: { type: string }) => unknown;
  URL?: { createObjectURL(b: unknown): string };
  SharedArrayBuffer?: unknown;
  crossOriginIsolated?: boolean;
  navigator?: { hardwareConcurrency?: number };
  document?: unknown;
}

const G = globalThis as unknown as GlobalWithEnv;
const IS_NODE = typeof G.process?.versions?.node === "string";

let workerThreads: NodeWorkerThreads | null = null;
if (IS_NODE) {
  const get = G.process?.getBuiltinModule;
  if (typeof get === "function") workerThreads = get("node:worker_threads") as NodeWorkerThreads;
  else {
    // Older Node 20: the dynamic import resolves after the first turn of the event loop; until
    // then kernels run on one thread. The specifier is computed so bundlers leave it alone.
    const spec = ["node", "worker_threads"].join(":");
    import(/* @vite-ignore */ spec).then(
      (m: NodeWorkerThreads) => {
        workerThreads = m;
      },
      () => {},
    );
  }
}

/**
 * Whether this runtime can run kernels on several threads (shared memory plus workers).
 * @example
 * threadsSupported(); // true in Node; in a page only when cross-origin isolated
 */
export function threadsSupported(): boolean {
  if (typeof G.SharedArrayBuffer !== "function") return false;
  if (IS_NODE) return true;
  return G.crossOriginIsolated === true && typeof G.Worker === "function";
}

/** Whether `Atomics.wait` may block this thread (not on a browser's main thread). */
function canBlock(): boolean {
  return IS_NODE || G.document === undefined;
}

/**
 * The number of hardware threads, as the runtime reports it.
 * @example
 * hardwareThreads(); // e.g. 2
 */
export function hardwareThreads(): number {
  if (IS_NODE) {
    const os = G.process?.getBuiltinModule?.("node:os") as
      | { availableParallelism?: () => number; cpus?: () => unknown[] }
      | undefined;
    const n = os?.availableParallelism?.() ?? os?.cpus?.().length;
    if (typeof n === "number" && n > 0) return n;
    return 1;
  }
  return Math.max(1, G.navigator?.hardwareConcurrency ?? 1);
}

/** One share of a parallel kernel: a function name and its numeric arguments. */
export interface Task {
  readonly fn: string;
  readonly args: readonly number[];
}

/**
 * The worker pool (see the file comment).
 * @example
 * const pool = new WorkerPool(module, memory, names, run1, 2);
 * pool.run([{ fn: "gemm_f32", args: top }, { fn: "gemm_f32", args: bottom }]);
 */
export class WorkerPool {
  private readonly workers: AnyWorker[] = [];
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly jobs: number[] = [];
  private readonly fnIndex: Map<string, number>;
  private started = false;
  private broken = false;

  constructor(
    private readonly module: WasmModule,
    private readonly memory: WasmMemory,
    private readonly names: readonly string[],
    private readonly run1: (fn: string, args: readonly number[]) => void,
    readonly size: number,
  ) {
    this.ctrl = new Int32Array(new SharedArrayBuffer(4 * (JOB + 2 * size)));
    this.args = new Float64Array(new SharedArrayBuffer(8 * SLOT * size));
    this.fnIndex = new Map(names.map((n, i) => [n, i]));
  }

  /** Ids of the workers that have instantiated the module and wait for jobs. */
  private readyIds(): number[] {
    const out: number[] = [];
    if (!this.started || this.broken) return out;
    for (let id = 0; id < this.workers.length; id++)
      if (Atomics.load(this.ctrl, READY + 2 * id) === 1) out.push(id);
    return out;
  }

  private start(): void {
    this.started = true;
    for (let id = 0; id < this.size - 1; id++) {
      const data = {
        module: this.module,
        memory: this.memory,
        names: this.names,
        ctrl: this.ctrl.buffer,
        args: this.args.buffer,
        id,
      };
      try {
        if (IS_NODE) {
          if (workerThreads === null) {
            this.started = false; // worker_threads not loaded yet: try again on a later kernel
            return;
          }
          const w = new workerThreads.Worker(WORKER_SOURCE, { eval: true, workerData: data });
          w.unref();
          w.on("error", () => {
            this.broken = true;
          });
          this.workers.push({ kind: "node", w });
        } else {
          const url = G.URL!.createObjectURL(new G.Blob!([WORKER_SOURCE], { type: "text/javascript" }));
          const w = new G.Worker!(url);
          w.onerror = () => {
            this.broken = true;
          };
          w.postMessage(data);
          this.workers.push({ kind: "web", w });
        }
        this.jobs.push(0);
      } catch {
        this.broken = true;
        return;
      }
    }
  }

  /** How many tasks `run` can spread right now (1 until the workers are up). */
  available(): number {
    if (this.size <= 1 || this.broken) return 1;
    if (!this.started) this.start();
    return 1 + this.readyIds().length;
  }

  /**
   * Run `tasks` in parallel: tasks[0] on this thread, the rest on ready workers (at most
   * `available()` tasks). Returns, when all are done, how many ran on workers.
   */
  run(tasks: readonly Task[]): number {
    const ids = this.readyIds();
    const n = Math.min(tasks.length - 1, ids.length);
    if (n <= 0) {
      for (const t of tasks) this.run1(t.fn, t.args);
      return 0;
    }
    const ctrl = this.ctrl;
    Atomics.store(ctrl, DONE, 0);
    for (let j = 0; j < n; j++) {
      const t = tasks[j + 1]!;
      const w = ids[j]!;
      const base = w * SLOT;
      const fi = this.fnIndex.get(t.fn);
      if (fi === undefined || t.args.length > SLOT - 2)
        throw new Error(`wasm backend: bad parallel task ${t.fn}`);
      this.args[base] = fi;
      this.args[base + 1] = t.args.length;
      for (let i = 0; i < t.args.length; i++) this.args[base + 2 + i] = t.args[i]!;
      this.jobs[w] = (this.jobs[w]! + 1) | 0;
      Atomics.store(ctrl, JOB + 2 * w, this.jobs[w]!);
    }
    Atomics.add(ctrl, SEQ, 1);
    Atomics.notify(ctrl, SEQ);
    // Tasks beyond the ready workers also run here.
    this.run1(tasks[0]!.fn, tasks[0]!.args);
    for (let i = n + 1; i < tasks.length; i++) this.run1(tasks[i]!.fn, tasks[i]!.args);
    const block = canBlock();
    for (;;) {
      const d = Atomics.load(ctrl, DONE);
      if (d >= n) break;
      if (this.broken) throw new Error("wasm backend: a worker thread failed during a kernel");
      if (block) Atomics.wait(ctrl, DONE, d, 100);
    }
    if (Atomics.load(ctrl, ERROR) !== 0) {
      Atomics.store(ctrl, ERROR, 0);
      throw new Error("wasm backend: a kernel failed on a worker thread");
    }
    return n;
  }

  /** Stop the workers (the pool is unusable afterwards). */
  terminate(): void {
    this.broken = true;
    for (const w of this.workers) void w.w.terminate();
    this.workers.length = 0;
  }
}
