/**
 * @file The side-by-side workloads on TensorFlow.js (tfjs-core with its cpu or wasm backend, the
 * first argument). tfjs has no float64, no forward mode and no Jacobian transforms: those rows
 * are reported as not available. Its Node build of tfjs-core ships no gradient registrations,
 * so they are bundled here from its own sources (esbuild) and registered into the shared
 * registry. Run by bench/peers.ts in a child process.
 *
 * Results are read back OUTSIDE `tf.tidy`: tidy walks whatever its callback returns, key by key,
 * looking for tensors to keep, so returning `dataSync()`'s typed array from it walked a million
 * elements per n = 1024 matmul and made tfjs-wasm look 20x slower than it is (1 GFLOP/s).
 * tfjs-wasm loads its SIMD build (`tfjs-backend-wasm-simd.wasm`, checked below); its Node build
 * has no threads (tfjs issue 3830).
 */

import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CHAIN,
  CROSSOVER,
  checksum,
  f32,
  guard,
  jacData,
  MATMUL,
  MLP,
  matmulRow,
  mlpData,
  ROSENBROCK_N,
  report,
  rosenbrockX,
  time,
} from "./common.js";

type TF = typeof import("@tensorflow/tfjs-core");
type T = import("@tensorflow/tfjs-core").Tensor;

const require = createRequire(import.meta.url);
const which = (process.argv[2] ?? "cpu") as "cpu" | "wasm";
const only = process.argv.find((a) => /^W\d$/.test(a));
const wants = (w: string) => only === undefined || only === w;
const lib = `tfjs-${which}`;

async function load(): Promise<TF> {
  const tf = require("@tensorflow/tfjs-core") as TF;
  const esbuild = (await import("esbuild")) as typeof import("esbuild");
  const out = join(mkdtempSync(join(tmpdir(), "adjoint-bench-tfjs-")), "gradients.cjs");
  await esbuild.build({
    entryPoints: [require.resolve("@tensorflow/tfjs-core/dist/register_all_gradients.js")],
    bundle: true,
    format: "cjs",
    platform: "node",
    outfile: out,
    logLevel: "error",
  });
  require(out);
  if (which === "cpu") require("@tensorflow/tfjs-backend-cpu");
  else require("@tensorflow/tfjs-backend-wasm");
  await tf.setBackend(which);
  await tf.ready();
  if (which === "wasm" && !(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")))
    throw new Error("tfjs-wasm: no WebAssembly SIMD here; its figures would not be its best");
  return tf;
}

/** Run `f` in a tidy scope, then read its results and free them (see the file comment). */
function values(f: () => T): Float32Array;
function values(f: () => T[]): Float32Array[];
function values(f: () => T | T[]): Float32Array | Float32Array[] {
  const r = tf.tidy(f);
  const list = Array.isArray(r) ? r : [r];
  const out = list.map((t) => t.dataSync() as Float32Array);
  for (const t of list) t.dispose();
  return Array.isArray(r) ? out : out[0]!;
}

const tf = await load();
const na = (row: string, note: string) => report({ row, lib, ms: null, note });

async function matmul(): Promise<void> {
  for (const { dtype, n } of MATMUL) {
    const row = matmulRow(dtype, n);
    if (dtype === "float64") {
      na(row, "no float64");
      continue;
    }
    const d = (seed: number) =>
      Float32Array.from({ length: n * n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
    const a = tf.tensor2d(d(1), [n, n]);
    const b = tf.tensor2d(d(2), [n, n]);
    const check = checksum(values(() => tf.matMul(a, b)));
    const ms = await time(() => values(() => tf.matMul(a, b)));
    report({ row, lib, ms, check });
  }
}

function mlpParams() {
  const d = mlpData();
  const p: Record<string, T> = {};
  for (const q of d.params) p[q.name] = tf.tensor(f32(q.data), q.shape);
  return {
    p,
    x: tf.tensor2d(f32(d.x), [MLP.batch, 784]),
    y: tf.tensor2d(f32(d.y), [MLP.batch, 10]),
    v: tf.tensor2d(f32(d.v), [784, 256]),
  };
}

function loss(p: Record<string, T>, x: T, y: T): T {
  const h1 = tf.relu(tf.add(tf.matMul(x as never, p.W1 as never), p.b1!));
  const h2 = tf.relu(tf.add(tf.matMul(h1 as never, p.W2 as never), p.b2!));
  const z = tf.add(tf.matMul(h2 as never, p.W3 as never), p.b3!);
  return tf.mean(tf.sub(tf.logSumExp(z, -1), tf.sum(tf.mul(z, y), -1)));
}

async function mlp(): Promise<void> {
  const { p, x, y, v } = mlpParams();
  const names = Object.keys(p);
  report({
    row: "W2 MLP forward",
    lib,
    ms: await time(() => values(() => loss(p, x, y))),
    check: [values(() => loss(p, x, y))[0]!],
  });
  // All parameters at once: tf.grads over the parameter list.
  const vg = tf.valueAndGrads((...ws: T[]) =>
    loss(Object.fromEntries(names.map((k, i) => [k, ws[i]!])), x, y),
  );
  const step = () =>
    values(() => {
      const { value, grads } = vg(names.map((k) => p[k]!) as never);
      return [value, grads[0]!];
    });
  const r = step();
  report({
    row: "W2 MLP forward+backward",
    lib,
    ms: await time(step),
    check: [r[0]![0]! + checksum(r[1]!)[0]!],
  });
  // H·v wrt W1, reverse-over-reverse (tfjs has no forward mode).
  const gW1 = tf.grad((W1: T) => loss({ ...p, W1 }, x, y));
  const hvp = tf.grad((W1: T) => tf.sum(tf.mul(gW1(W1), v)));
  const hv = () => values(() => hvp(p.W1!));
  await guard("W4 HVP of the MLP loss wrt W1", lib, async () => {
    report({ row: "W4 HVP of the MLP loss wrt W1", lib, ms: await time(hv), check: checksum(hv()) });
  });
}

async function grads(): Promise<void> {
  const rosen = (x: T) => {
    const n = x.shape[0]!;
    const head = tf.slice(x, [0], [n - 1]);
    const tail = tf.slice(x, [1], [n - 1]);
    return tf.sum(tf.add(tf.mul(100, tf.square(tf.sub(tail, tf.square(head)))), tf.square(tf.sub(1, head))));
  };
  const g = tf.grad(rosen);
  for (const n of ROSENBROCK_N) {
    const x = tf.tensor1d(f32(rosenbrockX(n)));
    const run = () => values(() => g(x));
    report({ row: `W3 Rosenbrock gradient n=${n}`, lib, ms: await time(run), check: checksum(run()) });
  }
  const chain = (v: T) => {
    let y = v;
    for (let i = 0; i < CHAIN.steps; i++) y = tf.add(tf.mul(tf.sin(y), CHAIN.a), CHAIN.b);
    return y;
  };
  const x0 = tf.scalar(CHAIN.x0);
  const gc = tf.grad(chain);
  const rowG = `W3 chain ${CHAIN.steps} steps (${3 * CHAIN.steps} ops) gradient`;
  const run = () => values(() => gc(x0))[0]!;
  report({ row: rowG, lib, ms: await time(run, { budgetMs: 3000 }), check: [run()] });
  const fwd = () => values(() => chain(x0))[0]!;
  report({
    row: `W3 chain ${CHAIN.steps} steps (${3 * CHAIN.steps} ops) forward`,
    lib,
    ms: await time(fwd),
    check: [fwd()],
  });
}

function jacobians(): void {
  void jacData;
  for (const mode of ["jacfwd", "jacrev"])
    na(`W5 200x200 Jacobian of tanh(Wx), ${mode}`, "no Jacobian transform");
  for (const { n, m } of CROSSOVER)
    for (const mode of ["jacfwd", "jacrev"])
      na(`W6 Jacobian of A·x (n=${n}, m=${m}), ${mode}`, "no Jacobian transform");
}

if (wants("W1")) await matmul();
if (wants("W2")) await mlp();
if (wants("W3")) await grads();
if (wants("W5")) jacobians();
process.exit(0);
