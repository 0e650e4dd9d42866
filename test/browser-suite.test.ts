/**
 * @file The test suite in a real browser: every test file that needs nothing from Node is
 * served by Vite (node:test and node:assert/strict replaced by browser shims, `adjoint` the
 * built package) to headless Chromium on a cross-origin isolated page, where it runs on the
 * page's default backend (wasm, with its threads as Web Workers); each file becomes a subtest
 * here that fails with the browser's failures. Also loads the unbundled `dist/` as a plain ES
 * module through an import map on a page without isolation (wasm on one thread). Skipped, with
 * a printed notice, where Chromium is not installed.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, type TestContext, test } from "node:test";
import { type Browser, chromiumMissing, launchChromium } from "../browser/node/chromium.js";
import { ROOT } from "../browser/node/root.js";
import { type StaticServer, serveStatic } from "../browser/node/serve.js";
import { type SuiteServer, serveSuite } from "../browser/node/suite-server.js";
import type { TestResult } from "../browser/shim/node-test.js";

/** The shape of `globalThis.__adjointSuite` on the page (see browser/suite/main.ts). */
interface SuiteState {
  done: boolean;
  backend: string;
  threads: number;
  isolated: boolean;
  threadCheck?: { parallelKernels: number; maxAbsDiff: number; tries: number };
  current: string | null;
  files: { file: string; ms: number; loadError?: string; results: TestResult[] }[];
  stray: string[];
}

/** Test files that must be part of the browser run: every transform and every primitive's gradients. */
const REQUIRED = [
  "ops-grad",
  "transforms",
  "vmap",
  "jit",
  "control",
  "custom",
  "checkpoint",
  "jet",
  "dual",
  "eager",
  "explain",
  "linalg",
];

/** The whole run may take this long (the suite takes ~30 s on a 2-core machine). */
const RUN_TIMEOUT_MS = 240_000;

const missing = chromiumMissing();
if (missing !== null) console.log(missing);

describe("the test suite in headless Chromium", { skip: missing ?? false }, () => {
  let suite: SuiteServer;
  let server: StaticServer;
  let browser: Browser;
  const pageErrors: string[] = [];

  /** Open `url`, wait for the run to end, and report each test file as a subtest of `t`. */
  async function runInPage(url: string, t: TestContext): Promise<SuiteState> {
    const page = await browser.context.newPage();
    page.on("pageerror", (e) => void pageErrors.push(e.stack ?? e.message));
    await page.goto(url);
    const start = Date.now();
    try {
      await page.waitForFunction(
        () => (globalThis as { __adjointSuite?: { done: boolean } }).__adjointSuite?.done === true,
        null,
        { timeout: RUN_TIMEOUT_MS, polling: 250 },
      );
    } catch (e) {
      const now = await page.evaluate(
        () => (globalThis as { __adjointSuite?: SuiteState }).__adjointSuite?.current,
      );
      throw new Error(`the browser run did not finish in ${RUN_TIMEOUT_MS / 1000} s; running: ${now}`, {
        cause: e,
      });
    }
    const state = await page.evaluate(
      () => (globalThis as unknown as { __adjointSuite: SuiteState }).__adjointSuite,
    );
    await page.close();
    const all = state.files.flatMap((f) => f.results);
    const count = (s: string) => all.filter((r) => r.status === s).length;
    t.diagnostic(
      `${all.length} tests in ${state.files.length} files on the ${state.backend} backend: ${count("pass")} passed, ` +
        `${count("fail")} failed, ${count("skip")} skipped, ${count("todo")} todo, ${((Date.now() - start) / 1000).toFixed(1)} s`,
    );
    assert.deepEqual(state.stray, [], "errors thrown outside any test");
    for (const f of state.files) {
      await t.test(`${f.file} (${f.results.length} tests, ${Math.round(f.ms)} ms)`, () => {
        if (f.loadError !== undefined)
          assert.fail(`${f.file} could not be loaded in the browser:\n${f.loadError}`);
        assert.ok(f.results.length > 0, `${f.file} registered no tests`);
        const failed = f.results.filter((r) => r.status === "fail");
        if (failed.length > 0)
          assert.fail(
            `${failed.length} failed in the browser:\n` +
              failed.map((r) => `- ${r.path.join(" > ")}: ${r.error}\n${r.stack ?? ""}`).join("\n"),
          );
      });
    }
    return state;
  }

  before(async () => {
    suite = await serveSuite();
    server = await serveStatic({
      "/dist/": join(ROOT, "dist"),
      "/plain/": join(ROOT, "browser/plain"),
    });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await suite?.close();
  });

  test("every required test file runs in the browser", (t) => {
    t.diagnostic(`${suite.included.length} test files run in the browser`);
    for (const e of suite.excluded) t.diagnostic(`not run in the browser: ${e.reason}`);
    const names = suite.included.map((f) => f.slice(f.lastIndexOf("/") + 1));
    for (const r of REQUIRED)
      assert.ok(names.includes(`${r}.test.ts`), `${r}.test.ts is not in the browser run`);
  });

  test("the whole suite on the page's default backend; wasm threads as Web Workers", async (t) => {
    const state = await runInPage(suite.url, t);
    assert.equal(state.files.length, suite.included.length, "every test file reported");
    // The Node run of the same files has well over a thousand tests; an empty run means a broken harness.
    const passed = state.files.flatMap((f) => f.results).filter((r) => r.status === "pass").length;
    assert.ok(passed > 1000, `only ${passed} tests passed`);
    assert.equal(state.isolated, true, "the suite page is cross-origin isolated");
    t.diagnostic(
      `${state.backend} backend, ${state.threads} threads; ${JSON.stringify(state.threadCheck ?? null)}`,
    );
    // Chromium compiles the wasm kernels synchronously on the main thread, so wasm is the default.
    if (state.backend === "wasm" && state.threads > 1) {
      const c = state.threadCheck!;
      assert.ok(c.parallelKernels > 0, "no kernel ran on the Web Worker threads");
      assert.ok(c.maxAbsDiff < 1e-3, `threaded matmul differs from the reference backend by ${c.maxAbsDiff}`);
    }
  });

  test("nothing was thrown outside a test", () => {
    assert.deepEqual(pageErrors, []);
  });

  test("dist/ loads unbundled as a plain ES module through an import map; wasm on one thread there", async () => {
    const page = await browser.context.newPage();
    page.on("pageerror", (e) => void pageErrors.push(e.stack ?? e.message));
    await page.goto(`${server.origin}/plain/index.html`);
    await page.waitForFunction(() => (globalThis as { __plain?: unknown }).__plain !== undefined, null, {
      timeout: 30_000,
    });
    const r = await page.evaluate(
      () =>
        (
          globalThis as unknown as {
            __plain: {
              value: number;
              grads: number[];
              backend: string;
              threads: number;
              isolated: boolean;
              wasmGrad: number[][];
            };
          }
        ).__plain,
    );
    await page.close();
    // f = (x1 + x2)·sin x1 at (1, 2): f = 3 sin 1, ∂f/∂x1 = sin 1 + 3 cos 1, ∂f/∂x2 = sin 1 (float64).
    assert.ok(Math.abs(r.value - 3 * Math.sin(1)) < 1e-12, `value ${r.value}`);
    assert.ok(Math.abs(r.grads[0]! - (Math.sin(1) + 3 * Math.cos(1))) < 1e-12, `df/dx1 ${r.grads[0]}`);
    assert.ok(Math.abs(r.grads[1]! - Math.sin(1)) < 1e-12, `df/dx2 ${r.grads[1]}`);
    // Without cross-origin isolation the wasm backend still runs, on one thread.
    assert.equal(r.backend, "wasm");
    assert.equal(r.isolated, false);
    assert.equal(r.threads, 1);
    // d/dM Σ(M·M) = 1·Mᵀ + Mᵀ·1 (1 the all-ones matrix): [[7, 11], [9, 13]] at M = [[1, 2], [3, 4]].
    assert.deepEqual(r.wasmGrad, [
      [7, 11],
      [9, 13],
    ]);
  });
});
