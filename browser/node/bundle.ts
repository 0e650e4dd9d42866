/**
 * @file The browser build of the library: the import graph of `dist/` checked for Node-only
 * modules, and a single-file minified ES module bundled with Vite (what a page or a CDN would
 * load), with its gzipped size. `scripts/browser-build.mjs` prints the sizes and writes the
 * bundle; `test/browser-bundle.test.ts` checks both.
 */

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "vite";
import { ROOT } from "./root.js";
import { importsOf, isNodeBuiltin } from "./select.js";

/** One import found while walking the graph. */
export interface FoundImport {
  /** The importing file, relative to the repository root. */
  from: string;
  spec: string;
  /** The chain of files from the entry to `from`. */
  chain: string[];
}

/**
 * Walk the static and literal dynamic imports from `entry` (a built `.js` file) and report the
 * imports of Node built-ins and of bare package names, with the chain of files that reaches
 * each. The library has no runtime dependencies, so both lists should be empty.
 * @example
 * const { nodeImports } = scanImportGraph("dist/index.js"); // [] when the browser path is clean
 */
export function scanImportGraph(entry: string): {
  files: number;
  nodeImports: FoundImport[];
  bareImports: FoundImport[];
} {
  const nodeImports: FoundImport[] = [];
  const bareImports: FoundImport[] = [];
  const seen = new Set<string>();
  const walk = (file: string, chain: string[]): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const here = [...chain, relative(ROOT, file)];
    for (const spec of importsOf(readFileSync(file, "utf8"), file)) {
      const found = { from: relative(ROOT, file), spec, chain: here };
      if (isNodeBuiltin(spec)) nodeImports.push(found);
      else if (!spec.startsWith(".") && !spec.startsWith("/")) bareImports.push(found);
      else {
        const target = resolve(dirname(file), spec);
        if (existsSync(target)) walk(target, here);
        else nodeImports.push({ ...found, spec: `${spec} (missing file)` });
      }
    }
  };
  walk(resolve(ROOT, entry), []);
  return { files: seen.size, nodeImports, bareImports };
}

/** A bundle and its sizes in bytes. */
export interface BundleReport {
  code: string;
  bytes: number;
  gzipBytes: number;
  /** Warnings from the bundler (a Node module externalized for the browser shows up here). */
  warnings: string[];
}

/**
 * Bundle `source` (a module that imports "adjoint", resolved to the built `dist/`) for browsers
 * with Vite: one minified ES module, as an app's production build would contain it.
 * @example
 * const all = await bundle('export * from "adjoint";');
 * const small = await bundle('import { grad, sin } from "adjoint"; export const d = grad(sin);');
 */
export async function bundle(source: string): Promise<BundleReport> {
  const warnings: string[] = [];
  // Library mode wants an entry file on disk: the source goes into a temporary folder.
  const dir = mkdtempSync(join(tmpdir(), "adjoint-bundle-"));
  const entry = join(dir, "entry.js");
  writeFileSync(entry, source);
  const out = await build({
    configFile: false,
    root: ROOT,
    logLevel: "silent",
    resolve: { alias: [{ find: /^adjoint$/, replacement: join(ROOT, "dist/index.js") }] },
    build: {
      write: false,
      target: "es2022",
      minify: true,
      reportCompressedSize: false,
      lib: { entry, formats: ["es"], fileName: "adjoint" },
      rolldownOptions: { onwarn: (w) => void warnings.push(w.message) },
    },
  }).finally(() => rmSync(dir, { recursive: true, force: true }));
  const results = Array.isArray(out) ? out : [out];
  const chunks = results.flatMap((r) => ("output" in r ? r.output : [])).filter((o) => o.type === "chunk");
  if (chunks.length !== 1) throw new Error(`expected one chunk, got ${chunks.length}`);
  const code = chunks[0]!.code;
  return { code, bytes: Buffer.byteLength(code), gzipBytes: gzipSync(code, { level: 9 }).length, warnings };
}

/**
 * A size as bundlers print it (1 kB = 1000 bytes).
 * @example
 * kB(90_300); // "90.3 kB"
 */
export function kB(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} kB`;
}
