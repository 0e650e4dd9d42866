/**
 * @file The one generic gradient checker. It compares forward mode (the JVP interpreter),
 * reverse mode (the tape) and central finite differences in float64, through the identity
 * ⟨u, J v⟩ = ⟨Jᵀu, v⟩: dense (every basis direction) for small problems, random directions for
 * large ones. Order 2 re-runs the check on x ↦ Jᵀ(x)u and x ↦ J(x)v, covering reverse-over-
 * reverse, forward-over-reverse, reverse-over-forward and forward-over-forward.
 */

import { Tensor } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { TransformError } from "../errors.js";
import { astype, concat, reshape, tensor, zeros } from "../ops/index.js";
import { NoForwardRuleError } from "../primitives/custom.js";
import { jvp } from "../transforms/jvp.js";
import { vjp } from "../transforms/reverse.js";
import { flatten, unflatten } from "../tree.js";

export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Relative tolerance (default 1e-3). */
  rtol?: number;
  /** Which modes to check (default both; reverse only for a customVjp function without a jvp rule). */
  modes?: readonly ("fwd" | "rev")[];
  /** Dense check (every basis direction) when inputs × outputs ≤ this (default 4096); else random probes. */
  maxDense?: number;
  /** Number of random probes in the random-direction check (default 3). */
  probes?: number;
  /** Seed of the random directions (default 0). */
  seed?: number;
}

export interface GradcheckResult {
  ok: boolean;
  maxAbsError: number;
  maxRelError: number;
  /** The analytic derivatives: the Jacobian [outputs, inputs] (dense), or ⟨u, J v⟩ per probe. */
  analytic: Tensor;
  /** The same quantities from central finite differences in float64. */
  numeric: Tensor;
  /** Which check failed, in words (empty when ok). */
  message: string;
}

type Fn = (...args: never[]) => unknown;

/** A float64 copy of the arguments; every float leaf becomes differentiable. */
interface Problem {
  /** Call f on a flat float64 input vector; returns the flat float64 output vector. */
  eval(x: Float64Array): Float64Array;
  /** The same as a function of tensors (so transforms can trace it). */
  traced(x: Tensor): Tensor;
  x0: Float64Array;
  nOut: number;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function setup(f: Fn, args: readonly unknown[]): Problem {
  if (typeof f !== "function") throw new TransformError("gradcheck: expected a function");
  if (!Array.isArray(args)) throw new TransformError("gradcheck: args must be an array of arguments");
  const [leaves, def] = flatten(args);
  // Which leaves are differentiated (float tensors and numbers), and their sizes.
  const slots: { i: number; shape: number[]; number: boolean }[] = [];
  leaves.forEach((l, i) => {
    if (typeof l === "number") slots.push({ i, shape: [], number: true });
    else if (l instanceof Tensor && isFloat(l.dtype)) slots.push({ i, shape: l.shape, number: false });
  });
  if (slots.length === 0) throw new TransformError("gradcheck: no floating-point argument to differentiate");
  const sizes = slots.map((s) => s.shape.reduce((p, d) => p * d, 1));
  const n = sizes.reduce((a, b) => a + b, 0);
  const x0 = new Float64Array(n);
  let off = 0;
  slots.forEach((s, k) => {
    const l = leaves[s.i];
    if (typeof l === "number") x0[off] = l;
    else x0.set((l as Tensor)._hostData(), off);
    off += sizes[k]!;
  });
  const call = (x: Tensor): Tensor => {
    const ls = leaves.slice();
    let o = 0;
    slots.forEach((s, k) => {
      const part = reshape(x.slice([o], [sizes[k]!]), s.shape);
      ls[s.i] = part;
      o += sizes[k]!;
    });
    const out = (f as (...a: unknown[]) => unknown)(...(unflatten(def, ls) as unknown[]));
    const [ol] = flatten(out);
    const parts = ol
      .filter((v): v is Tensor | number => typeof v === "number" || (v instanceof Tensor && isFloat(v.dtype)))
      .map((v) =>
        reshape(astype(typeof v === "number" ? tensor(v, { dtype: "float64" }) : v, "float64"), [-1]),
      );
    if (parts.length === 0) return zeros([0], { dtype: "float64" });
    return parts.length === 1 ? parts[0]! : concat(parts, 0);
  };
  const evalAt = (x: Float64Array) => call(tensor(x, { dtype: "float64" }))._hostData() as Float64Array;
  return { eval: evalAt, traced: call, x0, nOut: evalAt(x0).length };
}

interface Directional {
  fwd: (v: Float64Array) => Float64Array;
  rev: (u: Float64Array) => Float64Array;
  num: (v: Float64Array) => Float64Array;
}

function directional(p: Problem, eps: number): Directional {
  const x = tensor(p.x0, { dtype: "float64" });
  const [, back] = vjp(p.traced, x);
  return {
    fwd: (v) =>
      (jvp(p.traced, [x], [tensor(v, { dtype: "float64" })])[1] as Tensor)._hostData() as Float64Array,
    rev: (u) => (back(tensor(u, { dtype: "float64" }))[0] as Tensor)._hostData() as Float64Array,
    num: (v) => {
      const xp = p.x0.map((xi, i) => xi + eps * v[i]!);
      const xm = p.x0.map((xi, i) => xi - eps * v[i]!);
      const fp = p.eval(xp);
      const fm = p.eval(xm);
      return fp.map((a, i) => (a - fm[i]!) / (2 * eps));
    },
  };
}

const dotv = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/**
 * Check every derivative of `f` at `args` against central finite differences in float64, in
 * forward and reverse mode (reverse only when `f` calls a customVjp function without a jvp rule,
 * unless `modes` asks for forward mode). Float tensors are checked in float64 (arguments are cast).
 * @example
 * ad.gradcheck((x) => ad.sum(ad.sin(x)), [ad.tensor([0.5, 1.5])]).ok; // true
 */
export function gradcheck(f: Fn, args: readonly unknown[], opts: GradcheckOptions = {}): GradcheckResult {
  const p = setup(f, castArgs(args));
  return checkProblem(p, opts);
}

function castArgs(args: readonly unknown[]): unknown[] {
  const [leaves, def] = flatten(args);
  return unflatten(
    def,
    leaves.map((l) =>
      l instanceof Tensor && isFloat(l.dtype) && l.dtype !== "float64" ? astype(l, "float64") : l,
    ),
  );
}

/**
 * Whether forward mode can run: false only for a customVjp function without a jvp rule (as in
 * JAX, such a function is reverse-only), so the default modes then check reverse mode alone
 * instead of failing; any other error propagates.
 */
function forwardAvailable(probe: () => unknown): boolean {
  try {
    probe();
    return true;
  } catch (e) {
    if (e instanceof NoForwardRuleError) return false;
    throw e;
  }
}

function checkProblem(p: Problem, opts: GradcheckOptions): GradcheckResult {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-5;
  const rtol = opts.rtol ?? 1e-3;
  const n = p.x0.length;
  const m = p.nOut;
  const d = directional(p, eps);
  const modes = opts.modes ?? (forwardAvailable(() => d.fwd(new Float64Array(n))) ? ["fwd", "rev"] : ["rev"]);
  let maxAbs = 0;
  let maxRel = 0;
  let message = "";
  const compare = (a: number, b: number, what: string) => {
    const err = Math.abs(a - b);
    const bad = !(err <= atol + rtol * Math.abs(b));
    if (Number.isFinite(err)) {
      maxAbs = Math.max(maxAbs, err);
      maxRel = Math.max(maxRel, err / Math.max(Math.abs(b), 1e-300));
    } else if (!(Number.isNaN(a) && Number.isNaN(b)) && a !== b) {
      maxAbs = Number.POSITIVE_INFINITY;
      maxRel = Number.POSITIVE_INFINITY;
    }
    if (bad && !(Number.isNaN(a) && Number.isNaN(b)) && a !== b && message === "")
      message = `${what}: analytic ${a}, numeric ${b}`;
  };
  let analytic: Tensor;
  let numeric: Tensor;
  if (n * m <= (opts.maxDense ?? 4096)) {
    // Dense: column j of J by fwd and numerically; row i by rev.
    const A = new Float64Array(m * n);
    const N = new Float64Array(m * n);
    const e = new Float64Array(n);
    for (let j = 0; j < n; j++) {
      e.fill(0);
      e[j] = 1;
      const col = d.num(e);
      for (let i = 0; i < m; i++) N[i * n + j] = col[i]!;
      if (modes.includes("fwd")) {
        const c = d.fwd(e);
        for (let i = 0; i < m; i++) compare(c[i]!, col[i]!, `forward-mode d(out ${i})/d(in ${j})`);
        for (let i = 0; i < m; i++) A[i * n + j] = c[i]!;
      }
    }
    if (modes.includes("rev")) {
      const u = new Float64Array(m);
      for (let i = 0; i < m; i++) {
        u.fill(0);
        u[i] = 1;
        const row = d.rev(u);
        for (let j = 0; j < n; j++) {
          compare(row[j]!, N[i * n + j]!, `reverse-mode d(out ${i})/d(in ${j})`);
          A[i * n + j] = row[j]!;
        }
      }
    }
    analytic = Tensor._fromHost(A, [m, n], "float64");
    numeric = Tensor._fromHost(N, [m, n], "float64");
  } else {
    const rand = mulberry32(opts.seed ?? 0);
    const probes = opts.probes ?? 3;
    const an: number[] = [];
    const nu: number[] = [];
    for (let k = 0; k < probes; k++) {
      const v = Float64Array.from({ length: n }, () => rand() * 2 - 1);
      const u = Float64Array.from({ length: m }, () => rand() * 2 - 1);
      const ref = dotv(u, d.num(v));
      nu.push(ref);
      if (modes.includes("fwd")) {
        const a = dotv(u, d.fwd(v));
        compare(a, ref, `forward-mode <u, J v> (probe ${k})`);
        an.push(a);
      }
      if (modes.includes("rev")) {
        const a = dotv(d.rev(u), v);
        compare(a, ref, `reverse-mode <J^T u, v> (probe ${k})`);
        if (!modes.includes("fwd")) an.push(a);
      }
    }
    analytic = Tensor._fromHost(Float64Array.from(an), [an.length], "float64");
    numeric = Tensor._fromHost(Float64Array.from(nu), [nu.length], "float64");
  }
  return { ok: message === "", maxAbsError: maxAbs, maxRelError: maxRel, analytic, numeric, message };
}

/**
 * Check second derivatives: runs `gradcheck` on x ↦ Jᵀ(x)·u (reverse) and x ↦ J(x)·v (forward)
 * for fixed random u and v, so every combination of modes is differentiated once more.
 * @example
 * ad.gradgradcheck((x) => ad.sum(ad.tanh(x)), [ad.tensor([0.3, -0.7])]).ok; // true
 */
export function gradgradcheck(f: Fn, args: readonly unknown[], opts: GradcheckOptions = {}): GradcheckResult {
  const p = setup(f, castArgs(args));
  const rand = mulberry32((opts.seed ?? 0) + 1);
  const u = tensor(
    Float64Array.from({ length: p.nOut }, () => rand() * 2 - 1),
    { dtype: "float64" },
  );
  const v = tensor(
    Float64Array.from({ length: p.x0.length }, () => rand() * 2 - 1),
    { dtype: "float64" },
  );
  const x = tensor(p.x0, { dtype: "float64" });
  const results: GradcheckResult[] = [];
  const modes = opts.modes ?? ["fwd", "rev"];
  if (modes.includes("rev")) {
    const g = (z: Tensor) => vjp(p.traced, z)[1](u)[0] as Tensor;
    results.push(checkProblem(setup(g as Fn, [x]), opts));
  }
  const h = (z: Tensor) => jvp(p.traced, [z], [v])[1] as Tensor;
  if (opts.modes === undefined ? forwardAvailable(() => h(x)) : modes.includes("fwd"))
    results.push(checkProblem(setup(h as Fn, [x]), opts));
  const bad = results.find((r) => !r.ok);
  const worst = results.reduce((a, b) => (b.maxAbsError > a.maxAbsError ? b : a));
  return {
    ...(bad ?? worst),
    ok: bad === undefined,
    maxAbsError: Math.max(...results.map((r) => r.maxAbsError)),
    maxRelError: Math.max(...results.map((r) => r.maxRelError)),
  };
}
