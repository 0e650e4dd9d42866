/**
 * @file The side-by-side workloads on jax-js (@jax-js/jax, its wasm device), eager and under
 * `jax.jit`. jax-js arrays are reference counted with move semantics: every operation consumes
 * its operands, so an array used twice is passed as `x.ref` the first time. Its eager backward
 * pass disposes recursively, so a 1000-step chain needs a larger stack (the driver starts this
 * child with one). Run by bench/peers.ts in a child process.
 */

import {
  CHAIN,
  CROSSOVER,
  checksum,
  crossoverData,
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
  timeOnce,
} from "./common.js";

// jax-js tests `instanceof Float16Array`, which Node 20 lacks.
(globalThis as { Float16Array?: unknown }).Float16Array ??= class {};
const jax = await import("@jax-js/jax");
await jax.init("wasm");
jax.defaultDevice("wasm");
const np = jax.numpy;
type A = InstanceType<typeof np.Array>;

const only = process.argv.find((a) => /^W\d$/.test(a));
const wants = (w: string) => only === undefined || only === w;
const EAGER = "jax-js eager";
const JIT = "jax-js jit";

const arr = (d: Float64Array | Float32Array, shape: number[], dtype: "float32" | "float64" = "float32") =>
  np.array(dtype === "float32" ? f32(d as Float64Array) : Float64Array.from(d), { shape, dtype: np[dtype] });

/** Materialise a result (consuming it) and return its values. */
async function read(a: A): Promise<ArrayLike<number>> {
  return (await a.data()) as ArrayLike<number>;
}

async function matmul(): Promise<void> {
  for (const { dtype, n } of MATMUL) {
    const d = (seed: number) =>
      Float64Array.from({ length: n * n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.5);
    const a = arr(d(1), [n, n], dtype);
    const b = arr(d(2), [n, n], dtype);
    // Eager and jitted: jit lets jax-js pick its kernel for the whole call (up to 1.5x faster at
    // n = 1024 in single runs here), so both are reported and the table shows the better.
    await both(
      matmulRow(dtype, n),
      (x: A, y: A) => np.matmul(x, y),
      () => [a.ref, b.ref],
    );
  }
}

type P = Record<string, A>;

function loss(p: P, x: A, y: A): A {
  const h1 = jax.nn.relu(np.add(np.matmul(x, p.W1!), p.b1!));
  const h2 = jax.nn.relu(np.add(np.matmul(h1, p.W2!), p.b2!));
  const z = np.add(np.matmul(h2, p.W3!), p.b3!);
  return np.mean(np.subtract(jax.nn.logsumexp(z.ref, -1), np.sum(np.multiply(z, y), -1)));
}

/** Eager and jitted timings of one workload; `run` gets the function and returns the values read. */
async function both(
  row: string,
  f: (...a: A[]) => A,
  args: () => A[],
  opts: { eager?: boolean; jit?: boolean } = {},
): Promise<void> {
  if (opts.eager !== false)
    await guard(row, EAGER, async () => {
      const check = checksum(await read(f(...args())));
      report({ row, lib: EAGER, ms: await time(async () => read(f(...args()))), check });
    });
  if (opts.jit !== false)
    await guard(row, JIT, async () => {
      const jf = jax.jit(f);
      let values: ArrayLike<number> = [];
      const firstMs = await timeOnce(async () => {
        values = await read(jf(...args()));
      });
      report({
        row,
        lib: JIT,
        ms: await time(async () => read(jf(...args()))),
        firstMs,
        check: checksum(values),
      });
    });
}

async function mlpWorkloads(): Promise<void> {
  const d = mlpData();
  const p: P = {};
  for (const q of d.params) p[q.name] = arr(q.data, q.shape);
  const x = arr(d.x, [MLP.batch, 784]);
  const y = arr(d.y, [MLP.batch, 10]);
  const v = arr(d.v, [784, 256]);
  const names = Object.keys(p);
  const refs = () => [...names.map((k) => p[k]!.ref), x.ref, y.ref];
  const unpack = (a: A[]): P => Object.fromEntries(names.map((k, i) => [k, a[i]!]));
  await both("W2 MLP forward", (...a: A[]) => loss(unpack(a), a[6]!, a[7]!), refs);
  // Gradient with respect to every parameter: the first six arguments.
  const vg = (...a: A[]) => {
    const [val, g] = jax.valueAndGrad((...ws: A[]) => loss(unpack(ws), a[6]!.ref, a[7]!.ref), {
      argnums: [0, 1, 2, 3, 4, 5],
    })(...a.slice(0, 6));
    a[6]!.dispose();
    a[7]!.dispose();
    // Keep the loss and the W1 gradient (the others are dropped).
    for (const k of [1, 2, 3, 4, 5]) (g as A[])[k]!.dispose();
    return np.add(np.sum(val), np.sum((g as A[])[0]!));
  };
  await both("W2 MLP forward+backward", vg, refs);
  // H·v with respect to W1, forward-over-reverse.
  const hvp = (W1: A, dir: A, ...rest: A[]) => {
    const others = names.slice(1).map((k, i) => [k, rest[i]!] as const);
    const g = (w: A) => {
      const q: P = { W1: w };
      for (const [k, t] of others) q[k] = t.ref;
      return loss(q, rest[5]!.ref, rest[6]!.ref);
    };
    const out = jax.jvp(jax.grad(g), [W1], [dir])[1] as A;
    for (const t of rest) t.dispose();
    return out;
  };
  await both("W4 HVP of the MLP loss wrt W1", hvp, () => [
    p.W1!.ref,
    v.ref,
    ...names.slice(1).map((k) => p[k]!.ref),
    x.ref,
    y.ref,
  ]);
}

async function gradWorkloads(): Promise<void> {
  const rosen = (x: A) => {
    const head = x.ref.slice([0, -1]);
    const tail = x.slice([1]);
    const t = np.subtract(tail, np.square(head.ref));
    return np.sum(np.add(np.multiply(100, np.square(t)), np.square(np.subtract(1, head))));
  };
  for (const n of ROSENBROCK_N) {
    const x = arr(rosenbrockX(n), [n]);
    await both(`W3 Rosenbrock gradient n=${n}`, jax.grad(rosen), () => [x.ref]);
  }
  const chain = (v: A) => {
    let y = v;
    for (let i = 0; i < CHAIN.steps; i++) y = np.add(np.multiply(np.sin(y), CHAIN.a), CHAIN.b);
    return y;
  };
  const x0 = np.array(CHAIN.x0, { dtype: np.float32 });
  await both(`W3 chain ${CHAIN.steps} steps (${3 * CHAIN.steps} ops) gradient`, jax.grad(chain), () => [
    x0.ref,
  ]);
  await both(`W3 chain ${CHAIN.steps} steps (${3 * CHAIN.steps} ops) forward`, chain, () => [x0.ref]);
}

async function jacobianWorkloads(): Promise<void> {
  const d = jacData();
  const W = arr(d.W, [200, 200]);
  const x = arr(d.x, [200]);
  const f = (v: A) => np.tanh(np.matmul(W.ref, v));
  for (const [mode, jac] of [
    ["jacfwd", jax.jacfwd],
    ["jacrev", jax.jacrev],
  ] as const)
    await both(`W5 200x200 Jacobian of tanh(Wx), ${mode}`, jac(f) as (v: A) => A, () => [x.ref]);
  for (const { n, m } of CROSSOVER) {
    const c = crossoverData(n, m);
    const A = arr(c.A, [m, n]);
    const xv = arr(c.x, [n]);
    const lin = (v: A) => np.matmul(A.ref, v);
    for (const [mode, jac] of [
      ["jacfwd", jax.jacfwd],
      ["jacrev", jax.jacrev],
    ] as const)
      await both(`W6 Jacobian of A·x (n=${n}, m=${m}), ${mode}`, jac(lin) as (v: A) => A, () => [xv.ref]);
  }
}

if (wants("W1")) await matmul();
if (wants("W2")) await mlpWorkloads();
if (wants("W3")) await gradWorkloads();
if (wants("W5")) await jacobianWorkloads();
process.exit(0);
