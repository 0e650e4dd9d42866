/**
 * @file The wasm backend in fresh Node processes: selection by ADJOINT_BACKEND, prompt exit after
 * using worker threads, relaxed-SIMD FMA on and off, and memory reclaimed by finalization with the
 * resident budget holding in a synchronous loop.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import type * as ad from "adjoint";

describe("the wasm backend in fresh processes", () => {
  test("ADJOINT_BACKEND selects the backend in a fresh process; a bad value is an AdError", () => {
    const run = (value: string) =>
      spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          'import * as ad from "adjoint"; try { ad.tensor([1]); console.log(ad.getBackendName()); } catch (e) { console.log(e.name); }',
        ],
        { env: { ...process.env, ADJOINT_BACKEND: value }, encoding: "utf8" },
      ).stdout.trim();
    assert.equal(run("reference"), "reference");
    assert.equal(run("wasm"), "wasm");
    assert.equal(run("cuda"), "AdError");
  });
  test("a process that used threads exits promptly", () => {
    const t0 = Date.now();
    const r = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import * as ad from "adjoint";
         ad.setBackend("wasm"); ad.setNumThreads(2);
         const a = ad.ones([300, 300]);
         for (let i = 0; i < 5; i++) { ad.matmul(a, a); await new Promise((r) => setTimeout(r, 20)); }
         console.log(ad.wasmStats().threads);`,
      ],
      { encoding: "utf8", timeout: 20000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "2");
    assert.ok(Date.now() - t0 < 15000);
  });

  test("relaxed-SIMD FMA is used where available, can be turned off, and matches the reference either way", () => {
    const run = (env: Record<string, string>) => {
      const r = spawnSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import * as ad from "adjoint";
           ad.setBackend("wasm");
           const a = ad.random.normal(ad.random.key(1), [70, 90]), b = ad.random.normal(ad.random.key(2), [90, 50]);
           const w = ad.matmul(a, b).data();
           ad.setBackend("reference");
           const r = ad.matmul(ad.tensor(a.data(), { shape: [70, 90] }), ad.tensor(b.data(), { shape: [90, 50] })).data();
           let e = 0; for (let i = 0; i < r.length; i++) e = Math.max(e, Math.abs(w[i] - r[i]));
           console.log(JSON.stringify({ fma: ad.wasmStats().relaxedSimd, e }));`,
        ],
        { encoding: "utf8", timeout: 20000, env: { ...process.env, ...env } },
      );
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim()) as { fma: boolean; e: number };
    };
    const on = run({});
    const off = run({ ADJOINT_WASM_RELAXED_SIMD: "0" });
    assert.equal(off.fma, false);
    // Node >= 20.16 can switch relaxed SIMD on (V8 flag) or has it by default.
    assert.equal(on.fma, true);
    assert.ok(on.e < 1e-4 && off.e < 1e-4, `errors ${on.e}, ${off.e}`);
  });
  test("garbage is reclaimed through finalization; a synchronous loop stays within the budget", () => {
    const r = spawnSync(
      process.execPath,
      [
        "--expose-gc",
        "--input-type=module",
        "-e",
        `import * as ad from "adjoint";
         ad.setBackend("wasm");
         const x = ad.ones([256, 256]);
         // Synchronous: nothing is finalized while it runs; past the 16 MiB budget results are GC'd arrays.
         for (let i = 0; i < 200; i++) ad.mul(ad.add(x, i), 2);
         const sync = ad.wasmStats();
         // Asynchronous: the GC and the event loop hand the blocks back; memory stops growing.
         const sizes = [];
         for (let round = 0; round < 4; round++) {
           for (let i = 0; i < 50; i++) ad.mul(ad.add(x, i), 2);
           globalThis.gc(); await new Promise((r) => setTimeout(r, 10));
           sizes.push(ad.wasmStats().memoryBytes);
         }
         console.log(JSON.stringify({ sync, after: ad.wasmStats(), sizes }));`,
      ],
      { encoding: "utf8", timeout: 30000, env: { ...process.env, ADJOINT_WASM_BUDGET_MB: "16" } },
    );
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as {
      sync: ad.WasmStats;
      after: ad.WasmStats;
      sizes: number[];
    };
    assert.ok(out.sync.hostFallbacks > 0, "the budget never kicked in");
    assert.ok(out.sync.memoryBytes < 40 * 2 ** 20, `memory ${out.sync.memoryBytes}`);
    assert.ok(out.after.finalized > 0, "nothing was finalized");
    assert.equal(out.sizes[3], out.sizes[1], `memory kept growing: ${out.sizes}`);
  });
});
