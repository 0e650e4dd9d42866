#!/usr/bin/env node
// Runs every test/**/*.test.ts with Node's built-in runner (TypeScript through tsx).
// Node 20's --test has no glob support, so the files are collected here.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}
const filter = process.argv.slice(2);
let files = collect("test");
if (filter.length) files = files.filter((f) => filter.some((s) => f.includes(s)));
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=2", ...files], {
  stdio: "inherit",
});
process.exit(r.status ?? 1);
