/**
 * @file Which test files can run in a browser. A test file (with the local modules it imports)
 * must import nothing from Node but `node:test`, `node:assert/strict` and `node:url` (the
 * shims replace those), use only the `node:test` names the shim has, and touch no Node global
 * other than `process.argv` (an empty array in the bundle). Everything
 * else in `test/` runs in the browser; the rest is listed with the reason, never dropped
 * silently.
 */

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { parseSync } from "vite";

/** The `node:` modules the browser shims stand in for. */
export const SHIMMED = new Set(["node:test", "node:assert/strict", "node:url"]);

/** The names the `node:test` shim exports. */
const TEST_NAMES = new Set([
  "describe",
  "test",
  "it",
  "suite",
  "before",
  "after",
  "beforeEach",
  "afterEach",
  "type TestContext",
]);

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Uses of Node's globals (a word boundary keeps `processed.` and similar out). */
const NODE_GLOBALS =
  /\bprocess\.(?:env|exit|cwd|platform|stdout|stderr|versions?|hrtime|memoryUsage|nextTick|execPath|on)\b|\bBuffer\.|\b__dirname\b|\b__filename\b|\bimport\.meta\.(?:dirname|filename)\b|\brequire\(/;

/**
 * The module specifiers a JS or TS source file loads at run time, read from its syntax tree (so
 * comments and strings do not count): imports, including side-effect imports, re-exports, and
 * `import("...")` with a literal. Type-only imports are left out (they are erased).
 * @example
 * importsOf('import x from "a"; export * from "./b.js"; await import("c");'); // ["a", "./b.js", "c"]
 */
export function importsOf(source: string, filename = "module.ts"): string[] {
  const { module: m, errors } = parseSync(filename, source);
  if (errors.length > 0) throw new Error(`${filename}: ${errors[0]!.message}`);
  const out: string[] = [];
  for (const i of m.staticImports) {
    if (i.entries.length > 0 && i.entries.every((e) => e.isType)) continue;
    out.push(i.moduleRequest.value);
  }
  for (const e of m.staticExports)
    for (const entry of e.entries)
      if (entry.moduleRequest !== null && !entry.isType) out.push(entry.moduleRequest.value);
  for (const d of m.dynamicImports) {
    const text = source.slice(d.moduleRequest.start, d.moduleRequest.end);
    const lit = /^(["'])(.*)\1$/s.exec(text);
    if (lit !== null) out.push(lit[2]!);
  }
  return [...new Set(out)];
}

/**
 * Is `spec` a Node built-in module (`fs`, `node:fs`, `fs/promises`, ...)?
 * @example
 * isNodeBuiltin("worker_threads"); // true
 * isNodeBuiltin("./fs.js"); // false
 */
export function isNodeBuiltin(spec: string): boolean {
  return BUILTINS.has(spec) || spec.startsWith("node:");
}

/** A relative import's file on disk (`./x.js` written for `x.ts`), or null outside the tree. */
function localFile(from: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  const p = resolve(dirname(from), spec);
  const candidates = [p, p.replace(/\.js$/, ".ts"), `${p}.ts`, join(p, "index.ts")];
  return candidates.find((c) => existsSync(c) && !c.includes("/dist/")) ?? null;
}

/** Why `file` (or a local module it imports) cannot run in a browser, or null if it can. */
function problem(file: string, root: string, seen: Set<string>): string | null {
  if (seen.has(file)) return null;
  seen.add(file);
  const src = readFileSync(file, "utf8");
  const where = relative(root, file);
  for (const spec of importsOf(src, file)) {
    if (isNodeBuiltin(spec) && !SHIMMED.has(spec)) return `${where} imports ${spec}`;
    const local = localFile(file, spec);
    if (local !== null) {
      const p = problem(local, root, seen);
      if (p !== null) return p;
    }
  }
  const names = /import\s*\{([^}]*)\}\s*from\s*["']node:test["']/.exec(src);
  if (names !== null) {
    for (const n of names[1]!.split(",").map((s) => s.trim().replace(/\s+as\s+\w+$/, ""))) {
      if (n !== "" && !TEST_NAMES.has(n)) return `${where} uses node:test's ${n} (not in the browser shim)`;
    }
  }
  if (/from\s*["']node:assert["']/.test(src))
    return `${where} imports node:assert (only the strict form is shimmed)`;
  const g = NODE_GLOBALS.exec(src);
  if (g !== null) return `${where} uses the Node global ${g[0]}`;
  return null;
}

/**
 * The test files of `testDir`, split into those that run in a browser and the others (each
 * with the reason).
 * @example
 * const { included, excluded } = selectTestFiles("test");
 */
export function selectTestFiles(testDir: string): {
  included: string[];
  excluded: { file: string; reason: string }[];
} {
  const root = resolve(testDir, "..");
  const included: string[] = [];
  const excluded: { file: string; reason: string }[] = [];
  for (const name of readdirSync(testDir).sort()) {
    if (!name.endsWith(".test.ts")) continue;
    // The browser tests themselves drive Chromium from Node.
    if (name.startsWith("browser") || name.startsWith("playground")) continue;
    const file = join(testDir, name);
    const why = problem(file, root, new Set());
    if (why === null) included.push(file);
    else excluded.push({ file, reason: why });
  }
  return { included, excluded };
}
