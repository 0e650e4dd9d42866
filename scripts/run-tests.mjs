#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's built-in runner (TypeScript through tsx), once per
// backend so `npm test` proves both: ADJOINT_BACKEND=wasm (the default in Node) and then
// ADJOINT_BACKEND=reference (the oracle). Tests that drive a browser (test/browser*,
// test/playground*) do not depend on Node's backend, nor does test/backend-process (its child
// processes choose their own): they run in the first pass only.
// Node 20's --test has no glob support, so the files are collected here.
//
//   node scripts/run-tests.mjs [--backend=wasm|reference] [filter ...]
import { spawn } from "node:child_process";
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

/** Runs one pass, streaming its output and collecting its summary counts. */
function runPass(backend, these) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...these], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ADJOINT_BACKEND: backend },
    });
    const counts = {};
    let rest = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      const lines = (rest + chunk.toString()).split("\n");
      rest = lines.pop() ?? "";
      for (const line of lines) {
        const m = /^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
        if (m) counts[m[1]] = (counts[m[1]] ?? 0) + Number(m[2]);
      }
    });
    child.on("close", (code) => resolve({ code: code ?? 1, counts }));
  });
}

let status = 0;
const total = {};
for (const [i, backend] of backends.entries()) {
  const these = i === 0 ? files : files.filter((f) => !firstPassOnly(f));
  if (these.length === 0) continue;
  console.log(`\n# backend: ${backend} (${these.length} test files)`);
  const { code, counts } = await runPass(backend, these);
  for (const [k, v] of Object.entries(counts)) total[k] = (total[k] ?? 0) + v;
  if (code !== 0) {
    console.log(`# backend ${backend}: FAILED`);
    status = code;
  }
}
// One summary over every pass, last, so a failure in any pass shows in the final lines CI reads.
if (backends.length > 1) {
  console.log(`\n# all passes (${backends.join(", ")})`);
  for (const k of ["tests", "suites", "pass", "fail", "cancelled", "skipped", "todo"])
    console.log(`# ${k} ${total[k] ?? 0}`);
}
process.exit(status === 0 && (total.fail ?? 0) > 0 ? 1 : status);
