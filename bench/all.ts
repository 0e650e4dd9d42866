/**
 * @file `npm run bench`: every benchmark in turn, each in its own process (one failing does not
 * stop the others): the core engine (run.ts), the side-by-side comparison with the JS peers and
 * NumPy (peers.ts), checkpointing (checkpoint.ts), and those other areas add (matmul.ts,
 * memory.ts, attention.ts, implicit-memory.ts) when present. Extra arguments (`quick`) are passed on.
 */

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const files = [
  "run.ts",
  "peers.ts",
  "checkpoint.ts",
  "matmul.ts",
  "memory.ts",
  "attention.ts",
  "implicit-memory.ts",
];
const failed: string[] = [];
for (const f of files) {
  const path = join(here, f);
  if (!existsSync(path)) continue;
  console.log(`\n===== bench/${f} =====\n`);
  const r = spawnSync(process.execPath, ["--import", "tsx", path, ...args], { stdio: "inherit" });
  if (r.status !== 0) failed.push(f);
}
if (failed.length) {
  console.log(`\nbench: ${failed.join(", ")} did not finish cleanly`);
  process.exitCode = 1;
}
