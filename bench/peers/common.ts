/**
 * @file What every side-by-side child shares: the workloads' sizes and data (the same numbers in
 * every library, from one seeded generator), the timing rule (median wall time after warm-up,
 * with repetitions chosen from a time budget) and the line protocol a child reports with (one
 * `RESULT {json}` line per figure, flushed as soon as it is measured, so a child that times out
 * or crashes still leaves the figures it finished).
 */

/** One measured figure. `ms` is null when the library cannot run the workload (`note` says why). */
export interface Result {
  /** Workload row, e.g. "W1 matmul f32 n=256". */
  readonly row: string;
  /** Library column, e.g. "adjoint (wasm)", "jax-js jit". */
  readonly lib: string;
  readonly ms: number | null;
  /** First call (trace + compile + run) for jitted functions, in ms. */
  readonly firstMs?: number;
  readonly note?: string;
  /** A few numbers of the result, compared across libraries to catch wrong answers. */
  readonly check?: number[];
}

export const QUICK = process.argv.includes("quick") || process.env.BENCH_QUICK === "1";

/** Report one figure on stdout (the driver parses these lines). */
export function report(r: Result): void {
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

/** Run one workload; if the library throws, report the row as failed with the error's first line. */
export async function guard(row: string, lib: string, fn: () => Promise<void> | void): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0]!.slice(0, 120);
    report({ row, lib, ms: null, note: `failed: ${msg}` });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Median wall time of `fn` in ms: warm-up runs (at least `warm`, and until `warmMs` have passed,
 * at most 3000: JS engines optimize a function after it has run for a while, in a background
 * thread, so a figure taken after three calls measures unoptimized code), then timed runs until `budgetMs` is
 * spent (at least `minReps`, at most `maxReps`). `fn` must finish its work (read back or block)
 * before it returns or resolves.
 */
export async function time(
  fn: () => unknown,
  opts: { warm?: number; warmMs?: number; minReps?: number; maxReps?: number; budgetMs?: number } = {},
): Promise<number> {
  const warm = opts.warm ?? (QUICK ? 1 : 3);
  const warmMs = opts.warmMs ?? (QUICK ? 100 : 800);
  const minReps = opts.minReps ?? (QUICK ? 3 : 5);
  const maxReps = opts.maxReps ?? (QUICK ? 10 : 60);
  const budget = opts.budgetMs ?? (QUICK ? 300 : 1500);
  const w0 = performance.now();
  for (let i = 0; i < 3000 && (i < warm || performance.now() - w0 < warmMs); i++) await fn();
  const ts: number[] = [];
  const start = performance.now();
  while (ts.length < minReps || (ts.length < maxReps && performance.now() - start < budget)) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/** Time a first call (trace + compile + run), once. */
export async function timeOnce(fn: () => unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** `n` numbers in [-0.5, 0.5) from a seeded linear congruential generator (identical everywhere). */
export function data(n: number, seed: number, scale = 1): Float64Array {
  const a = new Float64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296 - 0.5) * scale;
  }
  return a;
}

export const f32 = (a: Float64Array): Float32Array => Float32Array.from(a);

// ---- the workloads ---------------------------------------------------------------------------

/** W1: square matrix products. */
export const MATMUL: readonly { dtype: "float32" | "float64"; n: number }[] = [
  { dtype: "float32", n: 128 },
  { dtype: "float32", n: 256 },
  { dtype: "float32", n: 512 },
  { dtype: "float32", n: 1024 },
  { dtype: "float64", n: 512 },
];
export const matmulRow = (dtype: string, n: number) =>
  `W1 matmul ${dtype === "float32" ? "f32" : "f64"} n=${n}`;

/** W2/W4: the MLP 784-256-256-10 (relu, softmax cross-entropy) on a batch of 128, float32. */
export const MLP = { sizes: [784, 256, 256, 10], batch: 128 } as const;

/** The MLP's parameters, input batch and one-hot labels, as flat float64 data with shapes. */
export function mlpData(): {
  params: { name: string; shape: number[]; data: Float64Array }[];
  x: Float64Array;
  y: Float64Array;
  /** The HVP direction (shape of W1). */
  v: Float64Array;
} {
  const [a, b, c, d] = MLP.sizes;
  const params = [
    { name: "W1", shape: [a, b], data: data(a * b, 11, 2 / Math.sqrt(a)) },
    { name: "b1", shape: [b], data: data(b, 12, 0.1) },
    { name: "W2", shape: [b, c], data: data(b * c, 13, 2 / Math.sqrt(b)) },
    { name: "b2", shape: [c], data: data(c, 14, 0.1) },
    { name: "W3", shape: [c, d], data: data(c * d, 15, 2 / Math.sqrt(c)) },
    { name: "b3", shape: [d], data: data(d, 16, 0.1) },
  ];
  const x = data(MLP.batch * a, 17, 2);
  const y = new Float64Array(MLP.batch * d);
  for (let i = 0; i < MLP.batch; i++) y[i * d + ((i * 7) % d)] = 1;
  return { params, x, y, v: data(a * b, 18, 1) };
}

/** W3: Rosenbrock sizes, and the scalar chain (its length and point). */
export const ROSENBROCK_N: readonly number[] = [10, 100_000];
export const rosenbrockX = (n: number) => Float64Array.from(data(n, 21, 1), (v) => 1 + v);
export const CHAIN = { steps: 1000, x0: 0.5, a: 1.0001, b: 0.1 } as const;

/** W5: the Jacobian of tanh(W x) for a 200 x 200 W. */
export const JAC = { n: 200 } as const;
export const jacData = () => ({ W: data(JAC.n * JAC.n, 31, 2 / Math.sqrt(JAC.n)), x: data(JAC.n, 32, 2) });

/** W6: the full Jacobian of f(x) = A x (A is m x n) by forward and reverse mode. */
export const CROSSOVER: readonly { n: number; m: number }[] = [
  { n: 10, m: 100 },
  { n: 100, m: 10 },
  { n: 50, m: 50 },
  { n: 1000, m: 1 },
];
export const crossoverData = (n: number, m: number) => ({ A: data(m * n, 41 + n, 1), x: data(n, 42 + m, 1) });

/** A few entries and the sum of a result (for the cross-library check). */
export function checksum(a: ArrayLike<number>): number[] {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return [s, a[0] ?? 0, a[a.length - 1] ?? 0];
}
