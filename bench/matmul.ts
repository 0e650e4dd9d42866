/**
 * @file Matrix multiplication GFLOP/s of the wasm backend against the JS peers on this machine:
 * float32 n = 128, 256, 512, 1024 and float64 n = 512, square, on 1 and 2 threads, for adjoint
 * (`ad.matmul`, wasm backend), TensorFlow.js with its wasm backend (XNNPACK; no float64) and
 * jax-js (wasm device). Each library runs in its own child process (a peer failing or hanging
 * cannot take the run down), inputs are made once and each figure is the median of timed runs
 * after warm-up. adjoint runs twice: by default (relaxed-SIMD FMA: native on Node >= 22 and
 * current browsers, by V8's flag on Node 20) and with `ADJOINT_WASM_RELAXED_SIMD=0` (plain
 * multiply-add, for runtimes without relaxed SIMD). The ratio columns are adjoint's GFLOP/s over the best peer's. The load average is
 * printed before and after: other work on the machine lowers the wall-clock figures.
 *
 * Run: `node --import tsx bench/matmul.ts` (add `quick` for fewer repetitions).
 */

import { spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";

interface Row {
  /** GFLOP per second of this process's CPU time (all threads). */
  cpuGflops: number | null;
  lib: string;
  /** Threads asked for / threads the library reports using. */
  requested: number;
  threads: number;
  dtype: "float32" | "float64";
  n: number;
  gflops: number | null;
  note?: string;
  /** adjoint only: whether its matmul used relaxed-SIMD FMA, and how it came to. */
  fma?: string;
}

const SIZES: ["float32" | "float64", number][] = [
  ["float32", 128],
  ["float32", 256],
  ["float32", 512],
  ["float32", 1024],
  ["float64", 512],
];
const quick = process.argv.includes("quick");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function randomData(dtype: "float32" | "float64", n: number, seed: number): Float32Array | Float64Array {
  const a = dtype === "float32" ? new Float32Array(n * n) : new Float64Array(n * n);
  let s = seed;
  for (let i = 0; i < a.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    a[i] = s / 2147483648 - 0.5;
  }
  return a;
}

/**
 * Time `run` (returns when the product is complete): the median wall time of the timed runs, and
 * the median CPU time of this process (all its threads) per run, in ms. On a machine shared with
 * other work the CPU time of a single-threaded run is the steadier figure.
 */
async function timeIt(run: () => Promise<void> | void, n: number): Promise<{ wall: number; cpu: number }> {
  const flops = 2 * n ** 3;
  const reps = quick ? 3 : Math.max(7, Math.min(40, Math.round(4e9 / flops)));
  for (let i = 0; i < Math.max(2, reps >> 2); i++) await run();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

const gflops = (n: number, ms: number) => (2 * n ** 3) / ms / 1e6;

async function childAdjoint(threads: number): Promise<Row[]> {
  const ad = await import("adjoint");
  ad.setBackend("wasm");
  ad.setNumThreads(threads);
  const rows: Row[] = [];
  for (const [dtype, n] of SIZES) {
    const a = ad.tensor(randomData(dtype, n, 1), { shape: [n, n] });
    const b = ad.tensor(randomData(dtype, n, 2), { shape: [n, n] });
    if (threads > 1) {
      // Wait for the workers (they start on the first large product and come up asynchronously).
      const start = ad.wasmStats().parallelKernels;
      for (let i = 0; i < 300 && ad.wasmStats().parallelKernels === start; i++) {
        ad.dispose(ad.matmul(a, b));
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const ms = await timeIt(() => {
      // Results are released at once so a tight loop measures the kernel, not the budget.
      ad.dispose(ad.matmul(a, b));
    }, n);
    const s = ad.wasmStats();
    rows.push({
      lib: process.env.ADJOINT_WASM_RELAXED_SIMD === "0" ? "adjoint no-FMA" : "adjoint (wasm)",
      requested: threads,
      threads: ad.getNumThreads(),
      dtype,
      n,
      gflops: gflops(n, ms.wall),
      cpuGflops: gflops(n, ms.cpu),
      fma: s.relaxedSimd ? (s.relaxedSimdVia ?? "yes") : "no",
    });
  }
  const s = ad.wasmStats();
  if (threads > 1 && s.parallelKernels === 0) for (const r of rows) r.note = "workers never came up";
  return rows;
}

async function childTfjs(threads: number): Promise<Row[]> {
  const tf = await import("@tensorflow/tfjs-core");
  const wasm = await import("@tensorflow/tfjs-backend-wasm");
  wasm.setThreadsCount(threads);
  await tf.setBackend("wasm");
  await tf.ready();
  const rows: Row[] = [];
  for (const [dtype, n] of SIZES) {
    if (dtype === "float64") {
      rows.push({
        lib: "tfjs-wasm",
        requested: threads,
        threads,
        dtype,
        n,
        gflops: null,
        cpuGflops: null,
        note: "no float64",
      });
      continue;
    }
    const a = tf.tensor2d(randomData(dtype, n, 1) as Float32Array, [n, n]);
    const b = tf.tensor2d(randomData(dtype, n, 2) as Float32Array, [n, n]);
    // The wasm backend computes synchronously inside matMul.
    const ms = await timeIt(() => tf.matMul(a, b).dispose(), n);
    // In Node tfjs loads its single-threaded SIMD binary whatever is asked: it reports the truth.
    rows.push({
      lib: "tfjs-wasm",
      requested: threads,
      threads: wasm.getThreadsCount(),
      dtype,
      n,
      gflops: gflops(n, ms.wall),
      cpuGflops: gflops(n, ms.cpu),
    });
  }
  return rows;
}

async function childJax(): Promise<Row[]> {
  // jax-js tests `instanceof Float16Array`, which Node 20 lacks.
  const g = globalThis as { Float16Array?: unknown };
  g.Float16Array ??= class {};
  const jax = await import("@jax-js/jax");
  await jax.init("wasm");
  jax.defaultDevice("wasm");
  const rows: Row[] = [];
  for (const [dtype, n] of SIZES) {
    const a = jax.numpy.array(randomData(dtype, n, 1), { shape: [n, n] });
    const b = jax.numpy.array(randomData(dtype, n, 2), { shape: [n, n] });
    const ms = await timeIt(async () => {
      const c = jax.numpy.matmul(a.ref, b.ref);
      await c.blockUntilReady();
      c.dispose();
    }, n);
    // jax-js picks its own threads (Web Workers, absent in Node 20): reported as 1.
    rows.push({
      lib: "jax-js (wasm)",
      requested: 1,
      threads: 1,
      dtype,
      n,
      gflops: gflops(n, ms.wall),
      cpuGflops: gflops(n, ms.cpu),
    });
  }
  return rows;
}

async function child(which: string, threads: number): Promise<void> {
  const rows =
    which === "adjoint"
      ? await childAdjoint(threads)
      : which === "tfjs"
        ? await childTfjs(threads)
        : await childJax();
  console.log(`ROWS ${JSON.stringify(rows)}`);
  process.exit(0);
}

function runChild(which: string, threads: number, env: Record<string, string> = {}): Row[] {
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      fileURLToPath(import.meta.url),
      "--child",
      which,
      String(threads),
      ...(quick ? ["quick"] : []),
    ],
    { encoding: "utf8", timeout: 600_000, env: { ...process.env, ...env } },
  );
  const line = r.stdout?.split("\n").find((l) => l.startsWith("ROWS "));
  if (line === undefined) {
    const why = (r.error?.message ?? r.stderr ?? "").trim().split("\n").slice(-1)[0] ?? "failed";
    console.log(`  (${which}, ${threads} thread(s) failed: ${why})`);
    return [];
  }
  return JSON.parse(line.slice(5)) as Row[];
}

async function main(): Promise<void> {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const load = () =>
    loadavg()
      .map((x) => x.toFixed(2))
      .join(", ");
  console.log(`matmul GFLOP/s — ${cpu}, ${cpus().length} cores, Node ${process.version}`);
  console.log(`load average before: ${load()}`);
  const rows: Row[] = [];
  for (const t of [1, 2]) {
    rows.push(...runChild("adjoint", t, { ADJOINT_WASM_RELAXED_SIMD: "" }));
    rows.push(...runChild("adjoint", t, { ADJOINT_WASM_RELAXED_SIMD: "0" }));
    rows.push(...runChild("tfjs", t));
  }
  rows.push(...runChild("jax", 1));
  console.log(`load average after: ${load()}`);
  const fmt = (x: number | null | undefined) =>
    x === null || x === undefined ? "  —  " : x.toFixed(1).padStart(5);
  const ratio = (mine: number | null | undefined, best: number | null) =>
    mine !== undefined && mine !== null && best !== null
      ? `${(mine / best).toFixed(2)}x`.padStart(6)
      : "   —  ";
  const table = (metric: "gflops" | "cpuGflops", threads: number[]) => {
    console.log(
      " threads | dtype   |    n | adjoint | no FMA | tfjs-wasm | jax-js | adjoint / best peer | no FMA / best peer",
    );
    console.log(
      "---------|---------|------|---------|--------|-----------|--------|---------------------|-------------------",
    );
    for (const t of threads)
      for (const [dtype, n] of SIZES) {
        const pick = (lib: string, th?: number) =>
          rows.find(
            (r) =>
              r.lib.startsWith(lib) &&
              r.dtype === dtype &&
              r.n === n &&
              (th === undefined || r.requested === th),
          )?.[metric];
        const mine = pick("adjoint (wasm)", t);
        const plain = pick("adjoint no-FMA", t);
        const tf = pick("tfjs", t);
        const jx = pick("jax");
        const peers = [tf, jx].filter((x): x is number => typeof x === "number");
        const best = peers.length ? Math.max(...peers) : null;
        console.log(
          `       ${t} | ${dtype} | ${String(n).padStart(4)} |   ${fmt(mine)} |  ${fmt(plain)} |     ${fmt(tf)} |  ${fmt(jx)} |` +
            `              ${ratio(mine, best)} |            ${ratio(plain, best)}`,
        );
      }
  };
  console.log("\nGFLOP/s (wall clock, median):");
  table("gflops", [1, 2]);
  console.log("\nGFLOP/s per second of CPU time, single-threaded (steadier when the machine is shared):");
  table("cpuGflops", [1]);
  const used = (lib: string) =>
    [...new Set(rows.filter((r) => r.lib.startsWith(lib) && r.requested === 2).map((r) => r.threads))].join(
      "/",
    );
  const fmaOf = (lib: string) =>
    [...new Set(rows.filter((r) => r.lib.startsWith(lib)).map((r) => r.fma))].join("/");
  console.log(
    `\nRelaxed-SIMD FMA: "adjoint" ${fmaOf("adjoint (wasm)") || "?"}, "no FMA" ${fmaOf("adjoint no-FMA") || "?"} ` +
      "(native: the runtime has it; v8-flag: V8's flag switched on by adjoint, Node 20; no: ADJOINT_WASM_RELAXED_SIMD=0).",
  );
  console.log(
    `Threads actually used when 2 were asked: adjoint ${used("adjoint") || "?"}, tfjs-wasm ${used("tfjs") || "?"}` +
      " (its Node build is single-threaded); jax-js runs as configured by default (no Web Workers in Node 20).",
  );
}

const i = process.argv.indexOf("--child");
if (i >= 0) await child(process.argv[i + 1]!, Number(process.argv[i + 2]));
else await main();
