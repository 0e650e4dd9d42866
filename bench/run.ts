/**
 * @file Core-engine benchmark on the default backend: the cost of `grad` relative to the forward
 * pass on (a) an elementwise function of 100k elements and (b) a 3000-op scalar chain, per-op
 * overhead (also with a large live heap), `jit` first calls (in this process and in fresh ones)
 * and steady states, and jit against eager on the programs issue 6 reported (an elementwise
 * chain, relu, an MLP's valueAndGrad, an Adam step, Rosenbrock). Medians after warm-up. Run with
 * `npm run bench` (the peer comparison is bench/peers.ts).
 */

import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
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
// function is compiled first, so the figure is a first call with the jit machinery warm). Steady
// state after an ordinary warm-up (as bench/peers.ts: 800 ms or 3000 calls) and after a long one.
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
    const w0 = performance.now();
    for (let i = 0; i < 3000 && performance.now() - w0 < 800; i++) j(s0);
    const ordinary = time(() => j(s0), 200, 0);
    const steady = time(() => j(s0), 200, 2000);
    report(
      `scalar chain 3000 ops: jit ${name}`,
      ordinary,
      ` (${((ordinary * 1000) / ops).toFixed(3)} us/op; after 2000 more calls ${steady.toFixed(3)} ms; first call ${first.toFixed(0)} ms)`,
    );
  }
}
jitChain();

// (f) the first call of the jitted chain in fresh processes (nothing compiled before it)
{
  const here = dirname(fileURLToPath(import.meta.url));
  const runs = process.argv.includes("quick") ? 3 : 7;
  for (const mode of ["forward", "grad"]) {
    const walls: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i < runs; i++) {
      const r = spawnSync(process.execPath, ["--import", "tsx", join(here, "first-call.ts"), mode], {
        encoding: "utf8",
      });
      const line = (r.stdout ?? "").trim().split("\n").pop() ?? "";
      try {
        const { wall, cpu } = JSON.parse(line) as { wall: number; cpu: number };
        walls.push(wall);
        cpus.push(cpu);
      } catch {
        // a failed child is left out of the figures
      }
    }
    if (walls.length > 0)
      report(
        `scalar chain 3000 ops: jit ${mode} first call, fresh process`,
        median(walls),
        ` (median of ${walls.length}; min ${Math.min(...walls).toFixed(0)} ms; CPU time incl. compiler threads ${median(cpus).toFixed(0)} ms)`,
      );
  }
}

// (g) jit against eager on the programs issue 6 reported as slower under jit
{
  const slow = (fn: () => unknown) => time(fn, 25, 10);
  const x18 = ad.random.normal(ad.random.key(7), [18000]);
  const five = (v: ad.Tensor) => ad.mul(ad.add(ad.tanh(ad.mul(ad.exp(ad.neg(v)), 0.5)), 1), v);
  const j5 = ad.jit(five);
  const e5 = slow(() => five(x18).data());
  const f5 = slow(() => j5(x18).data());
  report("5-op elementwise chain, 18k: eager", e5);
  report("5-op elementwise chain, 18k: jit", f5, ` (${(e5 / f5).toFixed(2)}x eager)`);
  const x1m = ad.random.normal(ad.random.key(8), [1 << 20]);
  const relu = slow(() => ad.relu(x1m).data());
  const max0 = slow(() => ad.maximum(x1m, 0).data());
  report(
    "relu 1M eager",
    relu,
    ` (${((relu * 1e6) / (1 << 20)).toFixed(1)} ns/element; maximum(x, 0): ${((max0 * 1e6) / (1 << 20)).toFixed(1)})`,
  );
  const k = ad.random.split(ad.random.key(9), 4);
  const p: Record<string, ad.Tensor> = {
    W1: ad.mul(ad.random.normal(k[0]!, [784, 256]), 0.05),
    b1: ad.zeros([256]),
    W2: ad.mul(ad.random.normal(k[1]!, [256, 256]), 0.05),
    b2: ad.zeros([256]),
    W3: ad.mul(ad.random.normal(k[2]!, [256, 10]), 0.05),
    b3: ad.zeros([10]),
  };
  const xb = ad.random.normal(k[3]!, [128, 784]);
  const yb = ad.tensor(
    Array.from({ length: 128 * 10 }, (_, i) => (i % 10 === Math.floor(i / 10) % 10 ? 1 : 0)),
    { shape: [128, 10] },
  );
  type P = typeof p;
  const loss = (q: P, x: ad.Tensor, y: ad.Tensor) => {
    const h1 = ad.relu(ad.add(ad.matmul(x, q.W1!), q.b1!));
    const h2 = ad.relu(ad.add(ad.matmul(h1, q.W2!), q.b2!));
    const z = ad.add(ad.matmul(h2, q.W3!), q.b3!);
    return ad.mean(ad.sub(ad.logsumexp(z, { axis: -1 }), ad.sum(ad.mul(z, y), { axis: -1 })));
  };
  const vg = ad.valueAndGrad(loss);
  const jvg = ad.jit(vg);
  const read = (r: [ad.Tensor, P]) => r[0].item();
  const ev = slow(() => read(vg(p, xb, yb) as [ad.Tensor, P]));
  const jv = slow(() => read(jvg(p, xb, yb) as [ad.Tensor, P]));
  report("MLP 784-256-256-10 valueAndGrad (batch 128): eager", ev);
  report("MLP 784-256-256-10 valueAndGrad (batch 128): jit", jv, ` (${(ev / jv).toFixed(2)}x eager)`);
  const names = Object.keys(p);
  const adam = (q: P, m: P, v: P, t: number, x: ad.Tensor, y: ad.Tensor) => {
    const [l, g] = vg(q, x, y) as [ad.Tensor, P];
    const nq: P = {};
    const nm: P = {};
    const nv: P = {};
    for (const n of names) {
      nm[n] = ad.add(ad.mul(m[n]!, 0.9), ad.mul(g[n]!, 0.1));
      nv[n] = ad.add(ad.mul(v[n]!, 0.999), ad.mul(ad.square(g[n]!), 0.001));
      const mh = ad.div(nm[n]!, ad.sub(1, ad.pow(0.9, t)));
      const vh = ad.div(nv[n]!, ad.sub(1, ad.pow(0.999, t)));
      nq[n] = ad.sub(q[n]!, ad.mul(1e-3, ad.div(mh, ad.add(ad.sqrt(vh), 1e-8))));
    }
    return [l, nq, nm, nv] as const;
  };
  const zeros = () => Object.fromEntries(names.map((n) => [n, ad.zerosLike(p[n]!)]));
  const m0 = zeros();
  const v0 = zeros();
  const jadam = ad.jit(adam);
  const ea = slow(() => adam(p, m0, v0, 3, xb, yb)[0].item());
  const ja = slow(() => jadam(p, m0, v0, 3, xb, yb)[0].item());
  report("Adam step on that MLP: eager", ea, ` (the gradient alone ${ev.toFixed(3)} ms)`);
  report("Adam step on that MLP: jit", ja, ` (${(ea / ja).toFixed(2)}x eager)`);
  const n = 100_000;
  const xr = ad.tensor(Float32Array.from({ length: n }, (_, i) => 1 + Math.sin(i * 0.37) / 2));
  const rosen = (x: ad.Tensor) => {
    const head = ad.slice(x, [0], [n - 1]);
    const tail = ad.slice(x, [1], [n - 1]);
    return ad.sum(ad.add(ad.mul(100, ad.square(ad.sub(tail, ad.square(head)))), ad.square(ad.sub(1, head))));
  };
  const gr = ad.grad(rosen);
  const jgr = ad.jit(gr);
  const er = slow(() => gr(xr).data());
  const jr = slow(() => jgr(xr).data());
  report("Rosenbrock gradient n=1e5: eager", er);
  report(
    "Rosenbrock gradient n=1e5: jit",
    jr,
    ` (${(er / jr).toFixed(2)}x eager; ${jgr.lower(xr).eqns.length} kernels)`,
  );
}

// (h) eager gradient per primitive with a large live heap (young-generation collections then
// scan more: issue 6 saw the figure rise after other workloads grew the heap)
{
  const keep: unknown[] = [];
  for (let i = 0; i < 1_500_000; i++) keep.push({ i, a: [i, i + 1], s: `k${i}` });
  const g = ad.grad(chain);
  const gradBig = time(() => g(s0), 60, 20);
  report(
    "scalar chain 3000 ops: grad, 200+ MB live heap",
    gradBig,
    ` (${((gradBig * 1000) / ops).toFixed(2)} us/op; live objects: ${keep.length})`,
  );
}

const w = Math.max(...rows.map((r) => r[0].length));
console.log(`adjoint ${process.version}, ${ad.getBackendName()} backend — medians after warm-up`);
for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
