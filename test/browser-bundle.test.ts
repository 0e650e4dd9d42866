/**
 * @file The browser build of the library: no Node-only module (nor any package) is reachable
 * from dist/index.js, Vite bundles it for browsers without externalizing anything, the bundle's
 * size (printed here) shrinks when an app imports little (sideEffects: false holds), and, where
 * Chromium is installed, the minified bundles compute correct gradients in a page.
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, test } from "node:test";
import { type BundleReport, bundle, kB, scanImportGraph } from "../browser/node/bundle.js";
import { chromiumMissing, launchChromium } from "../browser/node/chromium.js";
import { serveStatic } from "../browser/node/serve.js";

/** A small app: only the derivative of sin. */
const SMALL_APP = `import { grad, sin } from "adjoint";
export const run = () => grad((x) => sin(x))(1);`;

describe("the browser build", () => {
  let full: BundleReport;
  let small: BundleReport;

  test("no Node module or package is reachable from dist/index.js", (t) => {
    const g = scanImportGraph("dist/index.js");
    t.diagnostic(`${g.files} modules reachable from dist/index.js`);
    const show = (l: typeof g.nodeImports) => l.map((f) => `${f.spec} from ${f.chain.join(" -> ")}`);
    assert.deepEqual(show(g.nodeImports), [], "Node modules on the browser path");
    assert.deepEqual(
      show(g.bareImports),
      [],
      "package imports on the browser path (adjoint has no dependencies)",
    );
    assert.ok(g.files > 50, `only ${g.files} modules found: the scan is broken`);
  });

  test("the scan finds a Node import however deep, with the chain that reaches it", () => {
    const dir = mkdtempSync(join(tmpdir(), "adjoint-scan-"));
    try {
      mkdirSync(join(dir, "core"));
      writeFileSync(join(dir, "index.js"), 'export * from "./core/a.js";\nexport { x } from "./b.js";\n');
      writeFileSync(join(dir, "core/a.js"), '// import "node:os" (a comment)\nexport const a = 1;\n');
      writeFileSync(join(dir, "b.js"), 'import { c } from "./core/c.js";\nexport const x = c;\n');
      writeFileSync(join(dir, "core/c.js"), 'export const c = await import("node:worker_threads");\n');
      const g = scanImportGraph(join(dir, "index.js"));
      assert.equal(g.files, 4);
      assert.equal(g.nodeImports.length, 1);
      assert.equal(g.nodeImports[0]!.spec, "node:worker_threads");
      const name = basename(dir);
      assert.deepEqual(
        g.nodeImports[0]!.chain.map((f) => f.slice(f.indexOf(name) + name.length + 1)),
        ["index.js", "b.js", "core/c.js"],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Vite bundles the whole library for browsers; its size", async (t) => {
    full = await bundle('export * from "adjoint";');
    t.diagnostic(`whole library: ${kB(full.bytes)} minified, ${kB(full.gzipBytes)} gzipped`);
    assert.deepEqual(full.warnings, [], "bundler warnings (a Node module would be externalized)");
    assert.ok(full.gzipBytes > 20_000, `${full.gzipBytes} bytes: the bundle is missing most of the library`);
  });

  test("an app that imports little gets a smaller bundle (tree-shaking works)", async (t) => {
    small = await bundle(SMALL_APP);
    t.diagnostic(`grad and sin only: ${kB(small.bytes)} minified, ${kB(small.gzipBytes)} gzipped`);
    assert.deepEqual(small.warnings, []);
    assert.ok(small.bytes < full.bytes * 0.8, `${small.bytes} vs ${full.bytes} bytes`);
  });

  const missing = chromiumMissing();
  test("both bundles run in Chromium", { skip: missing ?? false }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "adjoint-bundles-"));
    writeFileSync(join(dir, "full.js"), full.code);
    writeFileSync(join(dir, "small.js"), small.code);
    writeFileSync(
      join(dir, "index.html"),
      `<!doctype html><meta charset="utf-8"><script type="module">
        import * as ad from "./full.js";
        import { run } from "./small.js";
        const num = (v) => (typeof v === "number" ? v : v.item());
        const f = (x) => ad.sum(ad.mul(x, ad.sin(x)));
        const g = ad.jit(ad.vmap(ad.grad(f)));
        globalThis.__bundles = { small: num(run()), batched: g(ad.tensor([[1, 2], [3, 4]], { dtype: "float64" })).toArray() };
      </script>`,
    );
    const server = await serveStatic({ "/": dir });
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => void errors.push(e.message));
      await page.goto(`${server.origin}/index.html`);
      await page.waitForFunction(() => "__bundles" in globalThis || false, null, { timeout: 30_000 });
      const r = await page.evaluate(
        () => (globalThis as unknown as { __bundles: { small: number; batched: number[][] } }).__bundles,
      );
      assert.deepEqual(errors, []);
      assert.ok(Math.abs(r.small - Math.cos(1)) < 1e-12, `d/dx sin x at 1: ${r.small}`);
      // d/dx Σ x·sin x = sin x + x·cos x, elementwise.
      const want = [1, 2, 3, 4].map((x) => Math.sin(x) + x * Math.cos(x));
      r.batched.flat().forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-12, `element ${i}: ${v}`));
    } finally {
      await browser.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
