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

  test("relaxed SIMD: on by default (V8's flag switched on where the runtime lacks it), V8 left alone with =0", () => {
    // A module using f32x4.relaxed_madd: whether it validates is what the V8 flag changes for
    // every module in the process. Checked before adjoint loads and after it ran a kernel.
    const zeros = "0,".repeat(16);
    const probe = `[0,97,115,109,1,0,0,0,1,4,1,96,0,0,3,2,1,0,10,62,1,60,0,${`253,12,${zeros}`.repeat(3)}253,133,2,26,11]`;
    const run = (env: Record<string, string>, args: string[] = []) => {
      const r = spawnSync(
        process.execPath,
        [
          ...args,
          "--input-type=module",
          "-e",
          `const probe = new Uint8Array(${probe});
           const before = WebAssembly.validate(probe);
           const ad = await import("adjoint");
           ad.setBackend("wasm");
           const a = ad.random.normal(ad.random.key(1), [70, 90]), b = ad.random.normal(ad.random.key(2), [90, 50]);
           const w = ad.matmul(a, b).data();
           ad.setBackend("reference");
           const r = ad.matmul(ad.tensor(a.data(), { shape: [70, 90] }), ad.tensor(b.data(), { shape: [90, 50] })).data();
           let e = 0; for (let i = 0; i < r.length; i++) e = Math.max(e, Math.abs(w[i] - r[i]));
           const s = ad.wasmStats();
           console.log(JSON.stringify({ before, after: WebAssembly.validate(probe), fma: s.relaxedSimd, via: s.relaxedSimdVia, e }));`,
        ],
        { encoding: "utf8", timeout: 20000, env: { ...process.env, ...env } },
      );
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout.trim()) as {
        before: boolean;
        after: boolean;
        fma: boolean;
        via: string | null;
        e: number;
      };
    };
    // By default: available on every Node >= 20, natively or by V8's flag (Node 20), reported as such.
    const dflt = run({ ADJOINT_WASM_RELAXED_SIMD: "" });
    assert.equal(dflt.fma, true);
    assert.equal(dflt.via, dflt.before ? "native" : "v8-flag");
    assert.equal(dflt.after, true);
    // "1" asks for the same.
    const asked = run({ ADJOINT_WASM_RELAXED_SIMD: "1" });
    assert.equal(asked.fma, true);
    assert.equal(asked.via, dflt.via);
    // The runtime's own flag makes it native (nothing for adjoint to switch).
    const flagged = run({ ADJOINT_WASM_RELAXED_SIMD: "" }, ["--experimental-wasm-relaxed-simd"]);
    assert.equal(flagged.via, "native");
    // "0": V8 is left alone and matmul uses plain multiply-add.
    const off = run({ ADJOINT_WASM_RELAXED_SIMD: "0" });
    assert.equal(off.fma, false);
    assert.equal(off.after, off.before);
    for (const r of [dflt, asked, flagged, off]) assert.ok(r.e < 1e-4, `error ${r.e}`);
  });
  test("a loop that yields gets its dead tensors' blocks back without a GC hint from the user", () => {
    // No --expose-gc: the heap's memory-pressure signal makes V8 collect, the finalizers run at
    // the next turn of the event loop, and results keep living in wasm memory.
    const r = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import * as ad from "adjoint";
         ad.setBackend("wasm");
         const x = ad.ones([256, 256]);
         for (let i = 0; i < 300; i++) {
           ad.mul(ad.add(x, i), 2); // two 256 KiB results, dead at once
           await new Promise((r) => setImmediate(r));
         }
         console.log(JSON.stringify(ad.wasmStats()));`,
      ],
      { encoding: "utf8", timeout: 30000, env: { ...process.env, ADJOINT_WASM_BUDGET_MB: "16" } },
    );
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout.trim()) as ad.WasmStats;
    assert.ok(s.pressureSignals > 0, "no memory pressure was signalled");
    assert.ok(s.finalized > 300, `only ${s.finalized} blocks came back`);
    assert.ok(s.hostFallbacks < 150, `${s.hostFallbacks} of 600 results fell back to typed arrays`);
    assert.ok(s.memoryBytes < 40 * 2 ** 20, `memory ${s.memoryBytes}`);
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
