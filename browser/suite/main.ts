/**
 * @file The page that runs adjoint's test suite inside a browser. Each test file is imported
 * in turn (its `describe`/`test` calls register into the `node:test` shim) and its tests run in
 * order. Progress and results live on `globalThis.__adjointSuite`, which the Node process that
 * drives the browser polls; `done` turns true when every file has run.
 */

import { files } from "virtual:adjoint-test-files";
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
  /** The test running now: "file > suite > test" (names a hung test). */
  current: string | null;
  files: FileReport[];
  /** Errors thrown outside any test (uncaught exceptions, unhandled rejections). */
  stray: string[];
}

const state: SuiteState = { done: false, current: null, files: [], stray: [] };
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
  const all = state.files.flatMap((f) => f.results);
  const failed = all.filter((r) => r.status === "fail").length;
  statusEl.textContent = `Done: ${all.length} tests in ${files.length} files, ${failed} failed.`;
  state.done = true;
}

void run();
