#!/usr/bin/env node
// The browser build: checks that no Node-only module is reachable from dist/index.js, bundles
// the whole library into one minified ES module (dist/adjoint.browser.js, for a page or a CDN
// without a bundler) and prints its size and gzipped size, and the size of a small tree-shaken
// app. Run after `npm run build` (npm run build:browser does both). The work is in
// browser/node/bundle.ts (TypeScript, loaded through tsx).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tsImport } from "tsx/esm/api";

const { bundle, kB, scanImportGraph } = await tsImport("../browser/node/bundle.ts", import.meta.url);
const { ROOT } = await tsImport("../browser/node/root.ts", import.meta.url);

const graph = scanImportGraph("dist/index.js");
if (graph.nodeImports.length > 0 || graph.bareImports.length > 0) {
  for (const f of [...graph.nodeImports, ...graph.bareImports])
    console.error(`${f.from} imports ${f.spec}\n  reached by ${f.chain.join(" -> ")}`);
  console.error("the browser path of adjoint must not import Node modules or packages");
  process.exit(1);
}

const full = await bundle('export * from "adjoint";');
if (full.warnings.length > 0) console.warn(full.warnings.join("\n"));
const out = join(ROOT, "dist/adjoint.browser.js");
writeFileSync(out, full.code);
const small = await bundle('import { grad, sin } from "adjoint";\nexport const dsin = grad((x) => sin(x));');
console.log(`${graph.files} modules reachable from dist/index.js, none from Node`);
console.log(`dist/adjoint.browser.js  ${kB(full.bytes)} minified, ${kB(full.gzipBytes)} gzipped`);
console.log(
  `an app importing only grad and sin: ${kB(small.bytes)} minified, ${kB(small.gzipBytes)} gzipped`,
);
