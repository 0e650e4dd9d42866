/**
 * @file The side-by-side workloads on adjoint, on one backend (`wasm` or `reference`, the first
 * argument), eager and under `ad.jit`. Run by bench/peers.ts in a child process.
 */

import * as ad from "adjoint";
import {
  CHAIN,
  CROSSOVER,
  checksum,
  crossoverData,
  f32,
  jacData,
  MATMUL,
  matmulRow,
  mlpData,
  QUICK,
  ROSENBROCK_N,
  report,
  rosenbrockX,
  time,
  timeOnce,
} from "./common.js";

const backend = (process.argv[2] ?? "wasm") as "wasm" | "reference";
ad.setBackend(backend);
const lib = `adjoint ${backend}`;
const only = process.argv.find((a) => /^W\d$/.test(a));
const wants = (w: string) => only === undefined || only === w;

const tensor32 = (d: Float64Array, shape: number[]) => ad.tensor(f32(d), { shape });

async function matmul(): Promise<void> {
  for (const { dtype, n } of MATMUL) {
    if (backend === "reference" && n > 512 && QUICK) continue;
    const mk = (seed: number) => {
      const d = new Float64Array(n * n).map((_, i) => Math.sin(i * 0.37 + seed) * 0.5);
      return dtype === "float32" ? ad.tensor(f32(d), { shape: [n, n] }) : ad.tensor(d, { shape: [n, n] });
    };
    const a = mk(1);
    const b = mk(2);
    const check = checksum(ad.matmul(a, b).data());
    const ms = await time(() => ad.dispose(ad.matmul(a, b)), {
      budgetMs: backend === "reference" ? 3000 : 1500,
      maxReps: n >= 1024 && backend === "reference" ? 3 : 60,
      minReps: n >= 1024 && backend === "reference" ? 2 : 5,
      warm: n >= 1024 && backend === "reference" ? 1 : 3,
    });
    report({ row: matmulRow(dtype, n), lib: `${lib} eager`, ms, check });
  }
}

type Params = Record<string, ad.Tensor>;

function mlp(): { p: Params; x: ad.Tensor; y: ad.Tensor; v: ad.Tensor } {
  const d = mlpData();
  const p: Params = {};
  for (const q of d.params) p[q.name] = tensor32(q.data, q.shape);
  const x = tensor32(d.x, [128, 784]);
  const y = tensor32(d.y, [128, 10]);
  return { p, x, y, v: tensor32(d.v, [784, 256]) };
}

/** Mean softmax cross-entropy of the 784-256-256-10 relu MLP. */
function loss(p: Params, x: ad.Tensor, y: ad.Tensor): ad.Tensor {
  const h1 = ad.relu(ad.add(ad.matmul(x, p.W1!), p.b1!));
  const h2 = ad.relu(ad.add(ad.matmul(h1, p.W2!), p.b2!));
  const z = ad.add(ad.matmul(h2, p.W3!), p.b3!);
  return ad.mean(ad.sub(ad.logsumexp(z, { axis: -1 }), ad.sum(ad.mul(z, y), { axis: -1 })));
}

async function both(
  row: string,
  fn: () => unknown,
  jitted: () => unknown,
  check: (r: unknown) => number[],
): Promise<void> {
  report({ row, lib: `${lib} eager`, ms: await time(fn), check: check(fn()) });
  const firstMs = await timeOnce(jitted);
  report({ row, lib: `${lib} jit`, ms: await time(jitted), firstMs, check: check(jitted()) });
}

async function mlpWorkloads(): Promise<void> {
  const { p, x, y, v } = mlp();
  const vg = ad.valueAndGrad(loss);
  const jloss = ad.jit(loss);
  const jvg = ad.jit(vg);
  await both(
    "W2 MLP forward",
    () => loss(p, x, y).item(),
    () => jloss(p, x, y).item(),
    (r) => [r as number],
  );
  // The check is the loss plus the sum of the W1 gradient (as every library reports it).
  const gradCheck = (r: unknown) => {
    const [val, g] = r as [ad.Tensor, Params];
    return [val.item() + checksum(g.W1!.data())[0]!];
  };
  await both(
    "W2 MLP forward+backward",
    () => {
      const [val, g] = vg(p, x, y);
      val.item();
      return [val, g];
    },
    () => {
      const [val, g] = jvg(p, x, y);
      val.item();
      return [val, g];
    },
    gradCheck,
  );
  // W4: H·v with respect to W1 (forward-over-reverse)
  const lossW1 = (W1: ad.Tensor) => loss({ ...p, W1 }, x, y);
  const hv = () => {
    const r = ad.hvp(lossW1, [p.W1!], [v])[0];
    r.data();
    return r;
  };
  const jhv = ad.jit((W1: ad.Tensor, dir: ad.Tensor) => ad.hvp(lossW1, [W1], [dir])[0]);
  await both(
    "W4 HVP of the MLP loss wrt W1",
    hv,
    () => {
      const r = jhv(p.W1!, v);
      r.data();
      return r;
    },
    (r) => checksum((r as ad.Tensor).data()),
  );
}

function rosenbrock(x: ad.Tensor): ad.Tensor {
  const n = x.shape[0]!;
  const head = ad.slice(x, [0], [n - 1]);
  const tail = ad.slice(x, [1], [n - 1]);
  return ad.sum(ad.add(ad.mul(100, ad.square(ad.sub(tail, ad.square(head)))), ad.square(ad.sub(1, head))));
}

function chain(v: ad.Tensor): ad.Tensor {
  let y = v;
  for (let i = 0; i < CHAIN.steps; i++) y = ad.add(ad.mul(ad.sin(y), CHAIN.a), CHAIN.b);
  return y;
}

async function gradWorkloads(): Promise<void> {
  const g = ad.grad(rosenbrock);
  for (const n of ROSENBROCK_N) {
    const x = tensor32(rosenbrockX(n), [n]);
    const jg = ad.jit(g);
    await both(
      `W3 Rosenbrock gradient n=${n}`,
      () => g(x).data(),
      () => jg(x).data(),
      (r) => checksum(r as Float32Array),
    );
  }
  const x0 = ad.scalar(CHAIN.x0);
  const gc = ad.grad(chain);
  // A different function is compiled first, so the figure is a first call with the jit machinery
  // warm (as in a running program), not the process's cold start.
  ad.jit(ad.grad((v: ad.Tensor) => ad.mul(ad.sin(v), 3)))(x0);
  const jc = ad.jit(ad.grad(chain));
  await both(
    `W3 chain ${CHAIN.steps} steps (${3 * CHAIN.steps} ops) gradient`,
    () => gc(x0).item(),
    () => jc(x0).item(),
    (r) => [r as number],
  );
  const jf = ad.jit(chain);
  await both(
    `W3 chain ${CHAIN.steps} steps (${3 * CHAIN.steps} ops) forward`,
    () => chain(x0).item(),
    () => jf(x0).item(),
    (r) => [r as number],
  );
}

async function jacobianWorkloads(): Promise<void> {
  const d = jacData();
  const W = tensor32(d.W, [200, 200]);
  const x = tensor32(d.x, [200]);
  const f = (v: ad.Tensor) => ad.tanh(ad.matmul(W, v));
  for (const [mode, jac] of [
    ["jacfwd", ad.jacfwd],
    ["jacrev", ad.jacrev],
  ] as const) {
    const J = jac(f);
    const jJ = ad.jit(J);
    await both(
      `W5 200x200 Jacobian of tanh(Wx), ${mode}`,
      () => J(x).data(),
      () => jJ(x).data(),
      (r) => checksum(r as Float32Array),
    );
  }
  for (const { n, m } of CROSSOVER) {
    const c = crossoverData(n, m);
    const A = tensor32(c.A, [m, n]);
    const xv = tensor32(c.x, [n]);
    const lin = (v: ad.Tensor) => ad.matmul(A, v);
    for (const [mode, jac] of [
      ["jacfwd", ad.jacfwd],
      ["jacrev", ad.jacrev],
    ] as const) {
      const J = jac(lin);
      const jJ = ad.jit(J);
      await both(
        `W6 Jacobian of A·x (n=${n}, m=${m}), ${mode}`,
        () => J(xv).data(),
        () => jJ(xv).data(),
        (r) => checksum(r as Float32Array),
      );
    }
  }
}

if (wants("W1")) await matmul();
if (wants("W2")) await mlpWorkloads();
if (wants("W3")) await gradWorkloads();
if (wants("W5")) await jacobianWorkloads();
process.exit(0);
