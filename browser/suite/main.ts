/**
 * @file The page that runs adjoint's test suite inside a browser. Each test file is imported
 * in turn (its `describe`/`test` calls register into the `node:test` shim) and its tests run in
 * order. Progress and results live on `globalThis.__adjointSuite`, which the Node process that
 * drives the browser polls; `done` turns true when every file has run.
 *
 * Query parameters: `backend=wasm` runs the tests on the wasm backend (`await ad.ready()`
 * compiles it; on a browser's main thread the default is the reference backend), and
 * `files=a,b` runs only the test files whose names contain one of the given strings.
 */

import { files as allFiles } from "virtual:adjoint-test-files";
import * as ad from "adjoint";
import { beginFile, runFile, type TestResult } from "../shim/node-test.js";

/** The results of one test file. */
interface FileReport {
  file: string;
  ms: number;
  /** Set when importing the file failed (no test ran). */
  loadError?: string;
  results: TestResult[];
}

/** What the driver reads. */
interface SuiteState {
  done: boolean;
  /** The backend the tests ran on, its thread count, and whether the page is cross-origin isolated. */
  backend: string;
  threads: number;
  isolated: boolean;
  /** The test running now: "file > suite > test" (names a hung test). */
  current: string | null;
  files: FileReport[];
  /** Errors thrown outside any test (uncaught exceptions, unhandled rejections). */
  stray: string[];
  /** After a wasm run: a large matmul until a kernel ran on Web Workers, checked against the reference backend. */
  threadCheck?: { parallelKernels: number; maxAbsDiff: number; tries: number };
}

const params = new URLSearchParams(location.search);
const only = params.get("files")?.split(",") ?? null;
const files = allFiles.filter(([f]) => only === null || only.some((s) => f.includes(s)));
const state: SuiteState = {
  done: false,
  backend: "",
  threads: 1,
  isolated: globalThis.crossOriginIsolated,
  current: null,
  files: [],
  stray: [],
};
(globalThis as { __adjointSuite?: SuiteState }).__adjointSuite = state;

const statusEl = document.getElementById("status")!;
const logEl = document.getElementById("log")!;
const log = (text: string, cls?: string): void => {
  const line = document.createElement("div");
  line.textContent = text;
  if (cls !== undefined) line.className = cls;
  logEl.append(line);
};

const errText = (e: unknown): string =>
  e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
addEventListener("error", (ev) => void state.stray.push(errText(ev.error ?? ev.message)));
addEventListener("unhandledrejection", (ev) => void state.stray.push(errText(ev.reason)));

async function run(): Promise<void> {
  const wanted = params.get("backend");
  if (wanted === "wasm") await ad.ready();
  else if (wanted !== null) ad.setBackend(wanted as ad.BackendName);
  state.backend = ad.getBackendName();
  state.threads = ad.getNumThreads();
  log(`backend ${state.backend}, ${state.threads} thread(s), cross-origin isolated: ${state.isolated}`);
  for (const [file, load] of files) {
    const report: FileReport = { file, ms: 0, results: [] };
    state.files.push(report);
    statusEl.textContent = `Running ${file} (${state.files.length} of ${files.length})…`;
    const start = performance.now();
    beginFile();
    try {
      await load();
      report.results = await runFile({
        onStart: (path) => void (state.current = [file, ...path].join(" > ")),
        onResult: (r) => {
          if (r.status === "fail") log(`✗ ${file} > ${r.path.join(" > ")}\n  ${r.error}`, "fail");
        },
      });
    } catch (e) {
      report.loadError = errText(e);
      log(`✗ ${file}: could not load\n  ${report.loadError}`, "fail");
    }
    report.ms = performance.now() - start;
    const failed = report.results.filter((r) => r.status === "fail").length;
    log(
      `${failed > 0 || report.loadError ? "✗" : "✓"} ${file}: ${report.results.length} tests, ${failed} failed, ${Math.round(report.ms)} ms`,
    );
  }
  state.current = null;
  if (state.backend === "wasm" && state.threads > 1) state.threadCheck = await threadCheck();
  const all = state.files.flatMap((f) => f.results);
  const failed = all.filter((r) => r.status === "fail").length;
  statusEl.textContent = `Done: ${all.length} tests in ${files.length} files, ${failed} failed.`;
  state.done = true;
}

/**
 * Multiply two 192×192 matrices on the wasm backend until one product has run on the Web Worker
 * threads (they start on the first large kernel and join once they have instantiated the
 * module, which takes a few turns of the event loop), then compare with the reference backend.
 */
async function threadCheck(): Promise<SuiteState["threadCheck"]> {
  const n = 192;
  const key = ad.random.key(0);
  const [k1, k2] = ad.random.split(key);
  const a = ad.random.normal(k1!, [n, n]);
  const b = ad.random.normal(k2!, [n, n]);
  let tries = 0;
  let product = ad.matmul(a, b);
  // A deadline rather than a count: on a loaded machine the workers can take seconds to start.
  const deadline = performance.now() + 30_000;
  while (ad.wasmStats().parallelKernels === 0 && performance.now() < deadline) {
    tries++;
    await new Promise((r) => setTimeout(r, 20));
    product = ad.matmul(a, b);
  }
  const got = product.toArray() as number[][];
  ad.setBackend("reference");
  const want = ad.matmul(ad.tensor(a.toArray()), ad.tensor(b.toArray())).toArray() as number[][];
  ad.setBackend("wasm");
  let maxAbsDiff = 0;
  got.forEach((row, i) =>
    row.forEach((v, j) => (maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - want[i]![j]!)))),
  );
  return { parallelKernels: ad.wasmStats().parallelKernels, maxAbsDiff, tries };
}

void run();
