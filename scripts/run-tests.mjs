#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's built-in runner (TypeScript through tsx), once per
// backend so `npm test` proves both: ADJOINT_BACKEND=wasm (the default in Node) and then
// ADJOINT_BACKEND=reference (the oracle). Tests that drive a browser (test/browser*,
// test/playground*) do not depend on Node's backend, nor does test/backend-process (its child
// processes choose their own): they run in the first pass only.
// Node 20's --test has no glob support, so the files are collected here.
//
//   node scripts/run-tests.mjs [--backend=wasm|reference] [filter ...]
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const only = args.find((a) => a.startsWith("--backend="))?.slice("--backend=".length);
const filter = args.filter((a) => !a.startsWith("--backend="));
let files = collect("test");
if (filter.length) files = files.filter((f) => filter.some((s) => f.includes(s)));
const firstPassOnly = (f) => /^(browser|playground|backend-process)/.test(basename(f));

const backends = only ? [only] : ["wasm", "reference"];
let status = 0;
backends.forEach((backend, i) => {
  const these = i === 0 ? files : files.filter((f) => !firstPassOnly(f));
  if (these.length === 0) return;
  console.log(`\n# backend: ${backend} (${these.length} test files)`);
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...these], {
    stdio: "inherit",
    env: { ...process.env, ADJOINT_BACKEND: backend },
  });
  if ((r.status ?? 1) !== 0) {
    console.log(`# backend ${backend}: FAILED`);
    status = r.status ?? 1;
  }
});
process.exit(status);
