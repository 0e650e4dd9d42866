/**
 * @file Resident memory of a 10,000-step training loop on the wasm backend, with no `dispose`
 * anywhere: a small MLP (64-128-128-10, batch 64, tanh, softmax cross-entropy, plain SGD through
 * `ad.valueAndGrad`) on a fixed synthetic batch. Every 1000 steps it prints the process RSS, the
 * JS heap, the WebAssembly.Memory size and the bytes of resident tensor buffers not yet reclaimed.
 *
 * Two loops, each in a fresh process:
 * - async: the loop yields to the event loop every step (as a UI, a server or `await`-ing data
 *   loading does): FinalizationRegistry hands dead buffers back to the size-class pool and the
 *   wasm memory stops growing after the first steps.
 * - sync: one synchronous loop that never yields. Finalizers cannot run until it ends, so
 *   resident memory grows to the budget (ADJOINT_WASM_BUDGET_MB, default 256 in Node), after which
 *   results are ordinary typed arrays reclaimed by the GC: memory stays flat at that level.
 *
 * Finalizers only run after a major GC, which V8 schedules by JS heap growth (it does not see
 * wasm memory), so the async loop also spends stretches at the budget between major GCs.
 *
 * Run: `node --import tsx bench/memory.ts` (add `quick` for 2,000 steps).
 */

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Tensor } from "adjoint";

const quick = process.argv.includes("quick");
const STEPS = quick ? 2000 : 10_000;
const EVERY = quick ? 250 : 1000;
const MB = 2 ** 20;

interface Sample {
  step: number;
  rss: number;
  heap: number;
  wasm: number;
  resident: number;
  finalized: number;
  fallbacks: number;
  loss: number;
  /** Mean wall-clock ms per step since the previous sample. */
  msPerStep: number;
}

async function child(mode: "sync" | "async"): Promise<void> {
  const ad = await import("adjoint");
  ad.setBackend("wasm");
  const key = ad.random.key(0);
  const [k1, k2, k3, kx, ky] = ad.random.split(key, 5);
  const init = (k: Tensor, i: number, o: number) => ad.mul(ad.random.normal(k, [i, o]), 1 / Math.sqrt(i));
  let params = {
    w1: init(k1!, 64, 128),
    b1: ad.zeros([128]),
    w2: init(k2!, 128, 128),
    b2: ad.zeros([128]),
    w3: init(k3!, 128, 10),
    b3: ad.zeros([10]),
  };
  const x = ad.random.normal(kx!, [64, 64]);
  const labels = ad.astype(ad.mul(ad.random.uniform(ky!, [64]), 10), "int32");
  type P = typeof params;
  const loss = (p: P) => {
    const h1 = ad.tanh(ad.add(ad.matmul(x, p.w1), p.b1));
    const h2 = ad.tanh(ad.add(ad.matmul(h1, p.w2), p.b2));
    return ad.nn.crossEntropy(ad.add(ad.matmul(h2, p.w3), p.b3), labels);
  };
  const step = ad.valueAndGrad(loss);
  const samples: Sample[] = [];
  let lastT = performance.now();
  let lastStep = 0;
  const sample = (i: number, l: number) => {
    const t = performance.now();
    const msPerStep = (t - lastT) / Math.max(1, i - lastStep);
    lastT = t;
    lastStep = i;
    const s = ad.wasmStats();
    const m = process.memoryUsage();
    samples.push({
      step: i,
      rss: m.rss / MB,
      heap: m.heapUsed / MB,
      wasm: s.memoryBytes / MB,
      resident: s.residentBytes / MB,
      finalized: s.finalized,
      fallbacks: s.hostFallbacks,
      loss: l,
      msPerStep,
    });
  };
  for (let i = 1; i <= STEPS; i++) {
    const [l, g] = step(params) as [Tensor, P];
    params = ad.tree.map((p: Tensor, d: Tensor) => ad.sub(p, ad.mul(d, 0.1)), params, g) as P;
    if (i % EVERY === 0 || i === 1) sample(i, l.item());
    if (mode === "async") await new Promise((r) => setImmediate(r));
  }
  console.log(`SAMPLES ${JSON.stringify(samples)}`);
  process.exit(0);
}

function run(mode: "sync" | "async"): void {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url), "--child", mode, ...(quick ? ["quick"] : [])],
    { encoding: "utf8", timeout: 900_000 },
  );
  const line = r.stdout?.split("\n").find((l) => l.startsWith("SAMPLES "));
  if (line === undefined) {
    console.log(`${mode}: failed\n${r.stderr}`);
    return;
  }
  const s = JSON.parse(line.slice(8)) as Sample[];
  console.log(
    `\n${mode} loop (${STEPS} steps, ${mode === "async" ? "yielding every step" : "never yielding"}):`,
  );
  console.log(
    "   step |  RSS MB | heap MB | wasm MB | resident MB | finalized | GC'd results | ms/step |   loss",
  );
  for (const x of s)
    console.log(
      `${String(x.step).padStart(7)} | ${x.rss.toFixed(1).padStart(7)} | ${x.heap.toFixed(1).padStart(7)} | ` +
        `${x.wasm.toFixed(1).padStart(7)} | ${x.resident.toFixed(1).padStart(11)} | ${String(x.finalized).padStart(9)} | ` +
        `${String(x.fallbacks).padStart(12)} | ${x.msPerStep.toFixed(3).padStart(7)} | ${x.loss.toFixed(4)}`,
    );
  // Growth over the second half of the run: flat means no leak.
  const mid = s.find((x) => x.step >= STEPS / 2)!;
  const last = s[s.length - 1]!;
  console.log(
    `growth from step ${mid.step} to ${last.step}: RSS ${(last.rss - mid.rss).toFixed(1)} MB, ` +
      `wasm memory ${(last.wasm - mid.wasm).toFixed(1)} MB`,
  );
}

const i = process.argv.indexOf("--child");
if (i >= 0) await child(process.argv[i + 1] as "sync" | "async");
else {
  console.log(
    `wasm backend memory over ${STEPS} training steps (Node ${process.version}), no dispose() calls`,
  );
  run("async");
  run("sync");
}
