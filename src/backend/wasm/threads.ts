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

/**
 * Control words (Int32Array indices) in the shared control block. Words written by different
 * threads sit on different 64-byte cache lines, so a worker spinning on its own word does not
 * slow the threads that update the others (false sharing).
 */
const LINE = 16;
const SEQ = 0; // bumped whenever jobs are posted: sleeping workers wait on it
const NEXT = LINE; // the next task index of the current job (claimed with Atomics.add)
const ERROR = 2 * LINE; // set by a participant whose kernel threw
const SLEEPERS = 2 * LINE + 1; // workers blocked in Atomics.wait (notify only when some are)
const NTASKS = 3 * LINE; // the current job: task count, function index, argument count, flags
const FN = 3 * LINE + 1;
const NARGS = 3 * LINE + 2;
const WITH_PART = 3 * LINE + 3;
/** Worker id's state word: 0 idle, J > 0 job J posted to it, -J running job J. */
const state = (id: number): number => (4 + id) * LINE;
/** Worker id's ready word: 1 once it instantiated the module. */
const ready = (id: number): number => (4 + id) * LINE + 1;

/** Argument slots per task in the shared task table. */
const SLOT = 16;
/** Tasks one job can hold; `run` splits longer lists into several jobs. */
const MAX_TASKS = 512;
/** How long an idle worker spins before it blocks (ms): back-to-back kernels find it awake. */
const WORKER_SPIN_MS = 0.2;
/** How long the caller spins on a running worker before it blocks (ms). */
const CALLER_SPIN_MS = 0.05;

/**
 * The code each worker runs: plain JS, the same text for Node and browsers. A worker claims a
 * job posted to it (compare-and-swap of its state word from J to -J), then takes task indices
 * from the shared counter until none are left, so a worker the OS scheduled late does less of
 * the job (or none: the caller cancels a job nobody claimed) instead of holding up the caller.
 */
const WORKER_SOURCE = `"use strict";
(function () {
  function start(d) {
    var inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
    var fns = d.names.map(function (n) { return inst.exports[n]; });
    var ctrl = new Int32Array(d.ctrl);
    var table = new Float64Array(d.table);
    var id = d.id, me = ${4 * LINE} + id * ${LINE}, part = id + 1;
    var now = typeof performance === "object" ? function () { return performance.now(); } : Date.now;
    Atomics.store(ctrl, me + 1, 1);
    for (;;) {
      var s = Atomics.load(ctrl, ${SEQ});
      var job = Atomics.load(ctrl, me);
      if (job > 0) {
        if (Atomics.compareExchange(ctrl, me, job, -job) === job) {
          var n = ctrl[${NTASKS}], f = fns[ctrl[${FN}]], na = ctrl[${NARGS}], wp = ctrl[${WITH_PART}];
          var a = new Array(na + wp);
          if (wp) a[0] = part;
          for (;;) {
            var i = Atomics.add(ctrl, ${NEXT}, 1);
            if (i >= n) break;
            for (var j = 0; j < na; j++) a[wp + j] = table[i * ${SLOT} + j];
            try {
              f.apply(null, a);
            } catch (e) {
              Atomics.store(ctrl, ${ERROR}, 1);
            }
          }
          Atomics.store(ctrl, me, 0);
          Atomics.notify(ctrl, me);
        }
        continue;
      }
      var t0 = now();
      for (var k = 1; ; k++) {
        if (Atomics.load(ctrl, me) > 0) break;
        if ((k & 127) === 0 && now() - t0 > ${WORKER_SPIN_MS}) {
          Atomics.add(ctrl, ${SLEEPERS}, 1);
          Atomics.wait(ctrl, ${SEQ}, s);
          Atomics.sub(ctrl, ${SLEEPERS}, 1);
          break;
        }
      }
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

/** Options of one `run`. */
export interface RunOptions {
  /**
   * Pass the participant's index (0 for the calling thread, 1.. for the workers, below `size`)
   * as the kernel's first argument, so that it can pick its own scratch memory.
   */
  readonly withParticipant?: boolean;
}

const perf = (globalThis as { performance?: { now(): number } }).performance;
const now: () => number = typeof perf?.now === "function" ? () => perf.now() : () => Date.now();

/**
 * The worker pool (see the file comment). A job is a list of tasks of one kernel; the calling
 * thread and every worker it was posted to take tasks from a shared counter until none are left.
 * @example
 * const pool = new WorkerPool(module, memory, names, run1, 2);
 * pool.run([{ fn: "gemm_f32", args: top }, { fn: "gemm_f32", args: bottom }]);
 */
export class WorkerPool {
  private readonly workers: AnyWorker[] = [];
  private readonly ctrl: Int32Array;
  private readonly table: Float64Array;
  private readonly fnIndex: Map<string, number>;
  private started = false;
  private broken = false;
  private job = 0;
  /** Counters for tests and benchmarks. */
  readonly stats = { jobs: 0, tasksOnWorkers: 0, cancelled: 0 };

  constructor(
    private readonly module: WasmModule,
    private readonly memory: WasmMemory,
    private readonly names: readonly string[],
    private readonly run1: (fn: string, args: readonly number[]) => void,
    readonly size: number,
  ) {
    this.ctrl = new Int32Array(new SharedArrayBuffer(4 * state(size)));
    this.table = new Float64Array(new SharedArrayBuffer(8 * SLOT * MAX_TASKS));
    this.fnIndex = new Map(names.map((n, i) => [n, i]));
  }

  /** Ids of the workers that have instantiated the module and wait for jobs. */
  private readyIds(): number[] {
    const out: number[] = [];
    if (!this.started || this.broken) return out;
    for (let id = 0; id < this.workers.length; id++)
      if (Atomics.load(this.ctrl, ready(id)) === 1) out.push(id);
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
        table: this.table.buffer,
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
      } catch {
        this.broken = true;
        return;
      }
    }
  }

  /** How many threads can take part in a job right now (1 until the workers are up). */
  available(): number {
    if (this.size <= 1 || this.broken) return 1;
    if (!this.started) this.start();
    return 1 + this.readyIds().length;
  }

  /**
   * Run `tasks` (independent of each other, in any order, on any thread) on this thread and the
   * ready workers; returns when all are done, with how many ran on workers. A worker that has
   * not picked the job up by the time this thread has run out of tasks is left out of it.
   */
  run(tasks: readonly Task[], opts: RunOptions = {}): number {
    const part = opts.withParticipant === true;
    const ids = this.readyIds();
    if (tasks.length <= 1 || ids.length === 0) {
      for (const t of tasks) this.run1(t.fn, part ? [0, ...t.args] : t.args);
      return 0;
    }
    let onWorkers = 0;
    for (let s = 0; s < tasks.length; s += MAX_TASKS)
      onWorkers += this.runJob(tasks.slice(s, s + MAX_TASKS), ids, part);
    return onWorkers;
  }

  private runJob(tasks: readonly Task[], ids: readonly number[], part: boolean): number {
    const ctrl = this.ctrl;
    const n = tasks.length;
    const fn = tasks[0]!.fn;
    const fi = this.fnIndex.get(fn);
    const na = tasks[0]!.args.length;
    if (fi === undefined || na > SLOT) throw new Error(`wasm backend: bad parallel task ${fn}`);
    for (let i = 0; i < n; i++) {
      const t = tasks[i]!;
      if (t.fn !== fn || t.args.length !== na) throw new Error("wasm backend: mixed tasks in one job");
      const base = i * SLOT;
      for (let j = 0; j < na; j++) this.table[base + j] = t.args[j]!;
    }
    ctrl[NTASKS] = n;
    ctrl[FN] = fi;
    ctrl[NARGS] = na;
    ctrl[WITH_PART] = part ? 1 : 0;
    Atomics.store(ctrl, NEXT, 0);
    this.job = this.job >= 0x3fffffff ? 1 : this.job + 1;
    const job = this.job;
    const posted = ids.slice(0, n - 1);
    for (const w of posted) Atomics.store(ctrl, state(w), job);
    Atomics.add(ctrl, SEQ, 1);
    if (Atomics.load(ctrl, SLEEPERS) > 0) Atomics.notify(ctrl, SEQ);
    this.stats.jobs++;
    // This thread takes tasks like any worker; the workers are joined even if a task throws
    // (the next job must not start while one of them still runs this one).
    let mine = 0;
    let joined = 0;
    try {
      for (;;) {
        const i = Atomics.add(ctrl, NEXT, 1);
        if (i >= n) break;
        mine++;
        this.run1(fn, part ? [0, ...tasks[i]!.args] : tasks[i]!.args);
      }
    } finally {
      Atomics.store(ctrl, NEXT, n); // no task is left for anyone once this thread stops
      joined = this.join(posted, job);
    }
    if (Atomics.load(ctrl, ERROR) !== 0) {
      Atomics.store(ctrl, ERROR, 0);
      throw new Error("wasm backend: a kernel failed on a worker thread");
    }
    const onWorkers = n - mine;
    this.stats.tasksOnWorkers += onWorkers;
    return joined > 0 ? onWorkers : 0;
  }

  /**
   * Cancel job `job` for the posted workers that have not claimed it and wait for those running
   * it; returns how many ran it.
   */
  private join(posted: readonly number[], job: number): number {
    const ctrl = this.ctrl;
    const block = canBlock();
    let joined = 0;
    for (const w of posted) {
      const at = state(w);
      if (Atomics.compareExchange(ctrl, at, job, 0) === job) {
        this.stats.cancelled++;
        continue;
      }
      joined++;
      const t0 = now();
      let k = 0;
      while (Atomics.load(ctrl, at) === -job) {
        if (this.broken) throw new Error("wasm backend: a worker thread failed during a kernel");
        if (block && (++k & 63) === 0 && now() - t0 > CALLER_SPIN_MS) Atomics.wait(ctrl, at, -job, 50);
      }
    }
    return joined;
  }

  /** Stop the workers (the pool is unusable afterwards). */
  terminate(): void {
    this.broken = true;
    for (const w of this.workers) void w.w.terminate();
    this.workers.length = 0;
  }
}
