/**
 * @file Core-engine benchmark: the cost of `grad` relative to the forward pass on (a) an
 * elementwise function of 100k elements and (b) a 3000-op scalar chain, plus per-op overhead,
 * eager and under `jit` (first call and steady state), on the default backend. Medians after
 * warm-up. Run with `npm run bench` (the peer comparison is bench/peers.ts).
 */

import * as ad from "adjoint";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => unknown, reps: number, warm = 3): number {
  for (let i = 0; i < warm; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

const rows: [string, string][] = [];
function report(name: string, ms: number, extra = ""): void {
  rows.push([name, `${ms.toFixed(3)} ms${extra}`]);
}

// (b) a 1000-step scalar chain of 3 ops each: v <- sin(v) * 1.01 + 0.1
const steps = 1000;
const chain = (v: ad.Tensor | number) => {
  let y: ad.Tensor | number = v;
  for (let i = 0; i < steps; i++) y = ad.add(ad.mul(ad.sin(y), 1.01), 0.1);
  return y;
};
const s0 = ad.scalar(0.5, { dtype: "float64" });
const fwdB = time(() => chain(s0), 60, 20);
const gradB = time(() => ad.grad(chain)(s0), 60, 20);
const jvpB = time(() => ad.jvp(chain, [s0], [1]), 60, 20);
const ops = 3 * steps;
report("scalar chain 3000 ops: forward", fwdB, ` (${((fwdB * 1000) / ops).toFixed(2)} us/op)`);
report(
  "scalar chain 3000 ops: grad",
  gradB,
  ` (${(gradB / fwdB).toFixed(2)}x forward, ${((gradB * 1000) / ops).toFixed(2)} us/op)`,
);
report("scalar chain 3000 ops: jvp", jvpB, ` (${(jvpB / fwdB).toFixed(2)}x forward)`);

// (a) elementwise on 100k elements: f(x) = sum(sin(x) * x + exp(-x^2))
const n = 100_000;
const x = ad.random.normal(ad.random.key(0), [n]);
const elem = (v: ad.Tensor) => ad.sum(ad.add(ad.mul(ad.sin(v), v), ad.exp(ad.neg(ad.square(v)))));
const fwdA = time(() => elem(x), 15);
const gradA = time(() => ad.grad(elem)(x), 15);
const jvpA = time(() => ad.jvp(elem, [x], [x]), 15);
report("elementwise 100k: forward", fwdA);
report("elementwise 100k: grad", gradA, ` (${(gradA / fwdA).toFixed(2)}x forward)`);
report("elementwise 100k: jvp", jvpA, ` (${(jvpA / fwdA).toFixed(2)}x forward)`);

// (c) scalar Dual forward mode on the same chain (no tensors)
const dualChain = (v: ad.Dual) => {
  let y: ad.DualLike = v;
  for (let i = 0; i < steps; i++)
    y = ad.Dual.sin(y as ad.Dual)
      .mul(1.01)
      .add(0.1);
  return y;
};
const dualB = time(() => ad.derivative(dualChain)(0.5), 50);
report("scalar chain 3000 ops: ad.derivative (Dual)", dualB, ` (${((dualB * 1000) / ops).toFixed(3)} us/op)`);

// (d) jit: gradient of a small 2-layer MLP loss, eager vs compiled
{
  const k = ad.random.split(ad.random.key(1), 4);
  const params = {
    W1: ad.random.normal(k[0]!, [8, 16]),
    b1: ad.zeros([16]),
    W2: ad.random.normal(k[1]!, [16, 4]),
    b2: ad.zeros([4]),
  };
  const xb = ad.random.normal(k[2]!, [4, 8]);
  const yb = ad.random.normal(k[3]!, [4, 4]);
  type P = typeof params;
  const loss = (p: P, x: ad.Tensor, y: ad.Tensor) => {
    const h = ad.tanh(ad.add(ad.matmul(x, p.W1), p.b1));
    return ad.mean(ad.square(ad.sub(ad.add(ad.matmul(h, p.W2), p.b2), y)));
  };
  const g = ad.grad(loss);
  const jg = ad.jit(ad.grad(loss));
  const eager = time(() => g(params, xb, yb), 50);
  const compiled = time(() => jg(params, xb, yb), 50);
  report("MLP 8-16-4 grad (batch 4): eager", eager);
  report(
    "MLP 8-16-4 grad (batch 4): jit",
    compiled,
    ` (${(eager / compiled).toFixed(2)}x faster than eager)`,
  );
}

// (e) jit: the chain and its gradient compiled (first call traces and compiles; a different
// function is compiled first, so the figure is a first call with the jit machinery warm)
function jitChain(): void {
  ad.jit(ad.grad((v: ad.Tensor) => ad.mul(ad.sin(v), 3)))(s0);
  for (const [name, f] of [
    ["forward", chain],
    ["grad", ad.grad(chain)],
  ] as const) {
    const j = ad.jit(f as (v: ad.Tensor) => ad.Tensor);
    const t0 = performance.now();
    j(s0);
    const first = performance.now() - t0;
    const steady = time(() => j(s0), 200, 2000); // long warm-up: V8 optimizes the kernels after a while
    report(
      `scalar chain 3000 ops: jit ${name}`,
      steady,
      ` (${((steady * 1000) / ops).toFixed(3)} us/op; first call ${first.toFixed(0)} ms)`,
    );
  }
}
jitChain();

const w = Math.max(...rows.map((r) => r[0].length));
console.log(`adjoint ${process.version}, ${ad.getBackendName()} backend — medians after warm-up`);
for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
