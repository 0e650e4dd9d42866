/**
 * @file The side-by-side benchmark: the same workloads on adjoint (wasm and reference backends,
 * eager and jit), TensorFlow.js (cpu and wasm backends), jax-js (wasm; eager and jit) and NumPy
 * as the native reference, in one run on this machine. Every library runs in its own child
 * process with a time limit, so one failing, hanging or running out of memory leaves the others'
 * figures (its finished figures too). Each figure is a median after warm-up; the tables print
 * milliseconds, each library's fraction of the native figure, adjoint's time over each peer's
 * (below 1: adjoint is faster), the first-call (trace + compile) times of the jitted functions,
 * and where forward and reverse mode each win for full Jacobians. Results are checked across
 * libraries: a figure whose numbers disagree with adjoint's is marked `≠`.
 *
 * Workloads: W1 matmul; W2 an MLP 784-256-256-10 step on a batch of 128; W3 Rosenbrock
 * gradients and a 1000-step scalar chain; W4 a Hessian-vector product of the W2 loss; W5 the
 * 200x200 Jacobian of tanh(Wx); W6 full Jacobians of A·x across shapes (the fwd/rev crossover).
 *
 * Run: `node --import tsx bench/peers.ts [quick] [W1|W2|W3|W5]` (W2 includes W4, W5 includes W6).
 */

import { spawnSync } from "node:child_process";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Result } from "./peers/common.js";
import { CHAIN, CROSSOVER, MATMUL, matmulRow, ROSENBROCK_N } from "./peers/common.js";

const here = dirname(fileURLToPath(import.meta.url));
const quick = process.argv.includes("quick");
const only = process.argv.find((a) => /^W\d$/.test(a));
const extra = [...(only ? [only] : []), ...(quick ? ["quick"] : [])];

interface Child {
  readonly name: string;
  readonly cmd: string;
  readonly args: string[];
  readonly timeoutS: number;
}

const node = (script: string, args: string[], nodeFlags: string[] = []): [string, string[]] => [
  process.execPath,
  [...nodeFlags, "--import", "tsx", join(here, "peers", script), ...args],
];

const children: Child[] = [
  { name: "adjoint wasm", ...cmd(node("adjoint.ts", ["wasm", ...extra])), timeoutS: 900 },
  { name: "adjoint reference", ...cmd(node("adjoint.ts", ["reference", ...extra])), timeoutS: 900 },
  { name: "tfjs-cpu", ...cmd(node("tfjs.ts", ["cpu", ...extra])), timeoutS: 600 },
  { name: "tfjs-wasm", ...cmd(node("tfjs.ts", ["wasm", ...extra])), timeoutS: 600 },
  // jax-js's eager backward pass recurses once per recorded operation: a larger stack.
  { name: "jax-js", ...cmd(node("jax.ts", extra, ["--stack-size=7800"])), timeoutS: 1200 },
  { name: "numpy", cmd: "python3", args: [join(here, "peers", "numpy_ref.py"), ...extra], timeoutS: 600 },
];
/**
 * NumPy runs OpenBLAS on one thread: its worker threads spin-wait for each other, and on a machine
 * shared with other work a multi-threaded product then takes whole scheduler quanta (medians
 * of exactly 16, 24, 48 ms were seen), which says nothing about the kernels.
 */
const NATIVE_ENV = { OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" };

function cmd([c, a]: [string, string[]]): { cmd: string; args: string[] } {
  return { cmd: c, args: a };
}

/** Column order of the tables. */
const LIBS = [
  "adjoint wasm eager",
  "adjoint wasm jit",
  "adjoint reference eager",
  "adjoint reference jit",
  "tfjs-cpu",
  "tfjs-wasm",
  "jax-js eager",
  "jax-js jit",
  "numpy (native)",
];
const SHORT: Record<string, string> = {
  "adjoint wasm eager": "adj wasm",
  "adjoint wasm jit": "adj wasm jit",
  "adjoint reference eager": "adj ref",
  "adjoint reference jit": "adj ref jit",
  "tfjs-cpu": "tfjs-cpu",
  "tfjs-wasm": "tfjs-wasm",
  "jax-js eager": "jax-js",
  "jax-js jit": "jax-js jit",
  "numpy (native)": "numpy",
};

const chainRow = (what: string) => `W3 chain ${CHAIN.steps} steps (${3 * CHAIN.steps} ops) ${what}`;
const ROWS: string[] = [
  ...MATMUL.map((m) => matmulRow(m.dtype, m.n)),
  "W2 MLP forward",
  "W2 MLP forward+backward",
  ...ROSENBROCK_N.map((n) => `W3 Rosenbrock gradient n=${n}`),
  chainRow("forward"),
  chainRow("gradient"),
  "W4 HVP of the MLP loss wrt W1",
  "W5 200x200 Jacobian of tanh(Wx), jacfwd",
  "W5 200x200 Jacobian of tanh(Wx), jacrev",
  ...CROSSOVER.flatMap(({ n, m }) =>
    ["jacfwd", "jacrev"].map((mode) => `W6 Jacobian of A·x (n=${n}, m=${m}), ${mode}`),
  ),
];

function runChild(c: Child): Result[] {
  const t0 = performance.now();
  process.stderr.write(`  running ${c.name} ...`);
  const r = spawnSync(c.cmd, c.args, {
    encoding: "utf8",
    timeout: c.timeoutS * 1000,
    maxBuffer: 64 * 2 ** 20,
    env: { ...process.env, ...(c.name === "numpy" ? NATIVE_ENV : {}) },
  });
  const results: Result[] = [];
  for (const line of (r.stdout ?? "").split("\n"))
    if (line.startsWith("RESULT ")) results.push(JSON.parse(line.slice(7)) as Result);
  const secs = ((performance.now() - t0) / 1000).toFixed(0);
  if (r.status !== 0) {
    const why = r.error
      ? r.error.message
      : ((r.stderr ?? "")
          .trim()
          .split("\n")
          .filter((l) => /Error|error/.test(l))[0] ?? `exit ${r.status}`);
    process.stderr.write(` stopped after ${secs} s (${why.slice(0, 160)}); kept ${results.length} figures\n`);
  } else process.stderr.write(` ${results.length} figures in ${secs} s\n`);
  return results;
}

const fmtMs = (ms: number): string =>
  ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);

/** A fraction of the native speed, with two significant digits when small. */
const fraction = (x: number): string => (x >= 0.1 ? x.toFixed(2) : x.toPrecision(2));

/** Do two check values agree (float32 arithmetic in different orders)? */
function agree(a: number, b: number): boolean {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Object.is(a, b);
  return Math.abs(a - b) <= 2e-3 * (1 + Math.max(Math.abs(a), Math.abs(b)));
}

function main(): void {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  console.log("# adjoint side by side");
  console.log(
    `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ` +
      `load average at start ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}${quick ? " (quick settings)" : ""}`,
  );
  process.stderr.write("Each library runs in its own process:\n");
  const all: Result[] = children.flatMap(runChild);
  const get = (row: string, lib: string) => all.find((r) => r.row === row && r.lib === lib);
  const rows = ROWS.filter((row) => all.some((r) => r.row === row));
  const reference = (row: string) =>
    ["adjoint wasm eager", "adjoint reference eager", "numpy (native)"]
      .map((l) => get(row, l)?.check?.[0])
      .find((c) => c !== undefined);

  // ---- times, with each figure's fraction of the native one --------------------------------
  console.log(
    "\n## Milliseconds (median after warm-up); in brackets the fraction of NumPy's speed (native time / this time)\n",
  );
  console.log(`| workload | ${LIBS.map((l) => SHORT[l]).join(" | ")} |`);
  console.log(`|---|${LIBS.map(() => "---:").join("|")}|`);
  const notes: string[] = [];
  const footnote = (note: string) => {
    let k = notes.indexOf(note);
    if (k < 0) k = notes.push(note) - 1;
    return `n/a [${k + 1}]`;
  };
  for (const row of rows) {
    const native = get(row, "numpy (native)")?.ms ?? null;
    const want = reference(row);
    const cells = LIBS.map((lib) => {
      const r = get(row, lib);
      if (r === undefined) return "";
      if (r.ms === null) return r.note ? footnote(r.note) : "n/a";
      let s = fmtMs(r.ms);
      if (native !== null && lib !== "numpy (native)") s += ` (${fraction(native / r.ms)})`;
      const got = r.check?.[0];
      if (want !== undefined && got !== undefined && !agree(want, got)) s += " ≠";
      return s;
    });
    console.log(`| ${row} | ${cells.join(" | ")} |`);
  }
  if (notes.length) console.log(`\n${notes.map((n, i) => `[${i + 1}] ${n}`).join("; ")}`);
  const gf = MATMUL.map(({ dtype, n }) => {
    const row = matmulRow(dtype, n);
    // Each library at its best: jax-js eager or jitted, whichever is faster.
    const cell = (lib: string) => {
      const times = (lib === "jax-js" ? ["jax-js eager", "jax-js jit"] : [lib])
        .map((l) => get(row, l)?.ms)
        .filter((ms): ms is number => typeof ms === "number");
      return times.length ? ((2 * n ** 3) / Math.min(...times) / 1e6).toFixed(1) : "—";
    };
    return `| ${row} | ${["adjoint wasm eager", "adjoint reference eager", "tfjs-cpu", "tfjs-wasm", "jax-js", "numpy (native)"].map(cell).join(" | ")} |`;
  });
  if (rows.some((r) => r.startsWith("W1"))) {
    console.log("\n## W1 as GFLOP/s\n");
    console.log("| workload | adj wasm | adj ref | tfjs-cpu | tfjs-wasm | jax-js (eager or jit) | numpy |");
    console.log("|---|---:|---:|---:|---:|---:|---:|");
    for (const l of gf) console.log(l);
  }

  // ---- adjoint over each peer --------------------------------------------------------------
  console.log(
    "\n## adjoint / peer (time ratio; below 1 adjoint is faster). adjoint's best variant on each row, named\n",
  );
  const peers = ["tfjs-cpu", "tfjs-wasm", "jax-js eager", "jax-js jit", "numpy (native)"];
  console.log(
    `| workload | adjoint best | ${peers.map((p) => SHORT[p]).join(" | ")} | best eager adj / best eager peer |`,
  );
  console.log(`|---|---|${peers.map(() => "---:").join("|")}|---:|`);
  for (const row of rows) {
    const mine = LIBS.slice(0, 4)
      .map((lib) => ({ lib, ms: get(row, lib)?.ms ?? null }))
      .filter((x): x is { lib: string; ms: number } => x.ms !== null);
    if (mine.length === 0) continue;
    const best = mine.reduce((a, b) => (b.ms < a.ms ? b : a));
    const cells = peers.map((p) => {
      const ms = get(row, p)?.ms;
      return ms ? (best.ms / ms).toFixed(2) : "—";
    });
    const eagerMine = mine.filter((m) => m.lib.endsWith("eager"));
    const eagerPeers = ["tfjs-cpu", "tfjs-wasm", "jax-js eager"]
      .map((p) => get(row, p)?.ms ?? null)
      .filter((x): x is number => x !== null);
    const eagerRatio =
      eagerMine.length && eagerPeers.length
        ? (Math.min(...eagerMine.map((m) => m.ms)) / Math.min(...eagerPeers)).toFixed(2)
        : "—";
    console.log(
      `| ${row} | ${fmtMs(best.ms)} ms (${SHORT[best.lib]}) | ${cells.join(" | ")} | ${eagerRatio} |`,
    );
  }

  // ---- first calls -------------------------------------------------------------------------
  console.log("\n## First call of a jitted function (trace + compile + run), ms\n");
  console.log("| workload | adj wasm jit | adj ref jit | jax-js jit |");
  console.log("|---|---:|---:|---:|");
  for (const row of rows) {
    const f = (lib: string) => {
      const r = get(row, lib);
      return r?.firstMs !== undefined ? fmtMs(r.firstMs) : "—";
    };
    if (
      ["adjoint wasm jit", "adjoint reference jit", "jax-js jit"].some(
        (l) => get(row, l)?.firstMs !== undefined,
      )
    )
      console.log(
        `| ${row} | ${f("adjoint wasm jit")} | ${f("adjoint reference jit")} | ${f("jax-js jit")} |`,
      );
  }

  // ---- the forward/reverse crossover ---------------------------------------------------------
  if (rows.some((r) => r.startsWith("W6"))) {
    console.log(
      "\n## W6: full Jacobian of A·x (A is m x n) — which mode wins (jacfwd needs n JVPs, jacrev m VJPs)\n",
    );
    console.log(
      "| n | m | adj jacfwd | adj jacrev | adj winner | adj jit fwd | adj jit rev | jax-js fwd | jax-js rev | jax-js winner |",
    );
    console.log("|---:|---:|---:|---:|---|---:|---:|---:|---:|---|");
    for (const { n, m } of CROSSOVER) {
      const at = (lib: string, mode: string) =>
        get(`W6 Jacobian of A·x (n=${n}, m=${m}), ${mode}`, lib)?.ms ?? null;
      const cell = (x: number | null) => (x === null ? "—" : fmtMs(x));
      const win = (f: number | null, r: number | null) =>
        f === null || r === null
          ? "—"
          : f < r
            ? `fwd (${(r / f).toFixed(1)}x)`
            : `rev (${(f / r).toFixed(1)}x)`;
      const af = at("adjoint wasm eager", "jacfwd");
      const ar = at("adjoint wasm eager", "jacrev");
      const jf = at("jax-js eager", "jacfwd");
      const jr = at("jax-js eager", "jacrev");
      console.log(
        `| ${n} | ${m} | ${cell(af)} | ${cell(ar)} | ${win(af, ar)} | ${cell(at("adjoint wasm jit", "jacfwd"))} | ${cell(at("adjoint wasm jit", "jacrev"))} | ${cell(jf)} | ${cell(jr)} | ${win(jf, jr)} |`,
      );
    }
  }
  console.log(
    "\nThreads: adjoint's wasm backend uses its default thread count (the machine's cores) for large kernels; tfjs-wasm's Node build and jax-js run on one thread; NumPy runs OpenBLAS on one thread.",
  );
}

main();
