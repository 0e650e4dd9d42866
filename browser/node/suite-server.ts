/**
 * @file Serves the test suite to a browser with Vite's dev server: a page (`browser/suite/`)
 * imports every browser-capable test file in turn, with `node:test`, `node:assert/strict` and
 * `node:url` replaced by the shims in `browser/shim/` and `adjoint` resolved to the built
 * package (`dist/`), exactly what the Node run imports. Modules are served one by one at their
 * own paths (`/dist/core/tensor.js`, `/test/anomaly.test.ts`), as a browser loads `dist/`
 * unbundled, so stack traces name real files (anomaly mode reads the library's location off its
 * own stack frames). The production bundle is exercised by the playground's end-to-end test.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Plugin } from "vite";
import { ROOT } from "./root.js";
import { selectTestFiles } from "./select.js";

const VIRTUAL = "virtual:adjoint-test-files";

/** The generated module: one lazy loader per test file (by root-relative URL), in name order. */
function filesModule(files: readonly string[]): Plugin {
  const id = `\0${VIRTUAL}`;
  return {
    name: "adjoint-test-files",
    resolveId: (s) => (s === VIRTUAL ? id : null),
    load: (s) => {
      if (s !== id) return null;
      const rows = files.map((f) => {
        const rel = f.slice(ROOT.length + 1);
        return `  [${JSON.stringify(rel)}, () => import(${JSON.stringify(`/${rel}`)})],`;
      });
      return `export const files = [\n${rows.join("\n")}\n];\n`;
    },
  };
}

/** The running suite server. */
export interface SuiteServer {
  /** The page that runs the suite (add `?backend=wasm`, `?files=a,b` as needed). */
  url: string;
  included: string[];
  excluded: { file: string; reason: string }[];
  close(): Promise<void>;
}

/**
 * Start the dev server for the browser test page on a free port of 127.0.0.1.
 * @example
 * const s = await serveSuite();
 * await page.goto(s.url);
 * await s.close();
 */
export async function serveSuite(): Promise<SuiteServer> {
  const { included, excluded } = selectTestFiles(join(ROOT, "test"));
  const cacheDir = mkdtempSync(join(tmpdir(), "adjoint-vite-"));
  const server = await createServer({
    configFile: false,
    root: ROOT,
    logLevel: "silent",
    clearScreen: false,
    plugins: [filesModule(included)],
    // Scripts guard their main() with process.argv; a page has no command line.
    define: { "process.argv": "[]" },
    resolve: {
      alias: [
        { find: /^node:test$/, replacement: join(ROOT, "browser/shim/node-test.ts") },
        { find: /^node:assert\/strict$/, replacement: join(ROOT, "browser/shim/assert.ts") },
        { find: /^node:url$/, replacement: join(ROOT, "browser/shim/url.ts") },
        { find: /^adjoint$/, replacement: join(ROOT, "dist/index.js") },
      ],
    },
    // Nothing changes during a run: no file watching, no hot reload, no dependency scan of the tree.
    server: {
      host: "127.0.0.1",
      port: 0,
      strictPort: false,
      hmr: false,
      ws: false,
      watch: null,
      // Cross-origin isolation, so SharedArrayBuffer exists and the wasm backend can run its
      // threads as Web Workers (without it the backend stays on one thread; see browser/plain).
      headers: {
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "require-corp",
      },
    },
    optimizeDeps: { noDiscovery: true, include: ["fast-check"] },
    // A cache of its own per run: two runs at once (two checkouts' npm test) must not share one.
    cacheDir,
  });
  await server.listen();
  const origin = server.resolvedUrls?.local[0]?.replace(/\/$/, "");
  if (origin === undefined) throw new Error("the Vite dev server did not report its address");
  return {
    url: `${origin}/browser/suite/index.html`,
    included,
    excluded,
    close: async () => {
      await server.close();
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}
