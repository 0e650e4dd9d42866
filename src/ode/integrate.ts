/**
 * @file The ODE integrators behind `ad.odeint`, on flat lists of state leaves: classic RK4 with
 * a fixed number of substeps per output interval, and Dormand–Prince 5(4) ("dopri5") with
 * adaptive steps (the error estimate of the embedded 4th-order solution, FSAL, the standard
 * step-size controller and Hairer's initial step). Every step is ordinary tensor operations,
 * so any transform that calls `integrate` differentiates through the solver (the "direct" mode).
 *
 * Adaptive steps read concrete values: the controller works on host copies of the stages (so
 * reading them records nothing), and each accepted step covers a fraction of its output interval
 * [tᵢ, tᵢ₊₁] fixed by the controller: t = tᵢ + u·(tᵢ₊₁ − tᵢ), h = du·(tᵢ₊₁ − tᵢ). Derivatives
 * therefore flow through the accepted steps and into the output times, with the step pattern
 * held fixed. Integration runs forwards or backwards in time (the adjoint pass uses both).
 *
 * Under `vmap` (also the one inside `jacrev`, `jacfwd` and `hessian`) the state is batched: the
 * controller then reads every example and the whole batch shares one step sequence, chosen from
 * the RMS error over all examples (as a batched ODE solver does). The times must be unbatched.
 */

import { currentInterpreter, type Interpreter, withInterpreter } from "../core/interpreter.js";
import { Tensor } from "../core/tensor.js";
import { allocArray } from "../dtype.js";
import { AdError, TransformError } from "../errors.js";
import { add, astype, div, mul, reshape, slice, sub } from "../ops/index.js";
import { exampleAt } from "../primitives/rules.js";
import { isConcrete } from "../transforms/control.js";
import { StagingInterpreter } from "../transforms/stage.js";
import { BatchInterpreter } from "../transforms/vmap.js";

/** Flat dynamics: state leaves and a 0-d time → derivative leaves (shaped and typed like the state). */
export type FlatDyn = (y: Tensor[], t: Tensor) => Tensor[];

/** How to integrate. */
export interface IntegrateOptions {
  readonly method: "rk4" | "dopri5";
  /** rk4: steps per output interval. */
  readonly substeps: number;
  /** dopri5: relative and absolute tolerances of the local error. */
  readonly rtol: number;
  readonly atol: number;
  /** dopri5: the most steps (accepted and rejected) of one integration. */
  readonly maxSteps: number;
  readonly op: string;
}

/** The entries of a 1-D tensor as 0-d tensors (traced like it). */
export function timesOf(ts: Tensor): Tensor[] {
  return Array.from({ length: ts.shape[0]! }, (_, i) => reshape(slice(ts, [i], [1]), []));
}

/** y + a·k per leaf (`a`: one 0-d factor per leaf). */
function axpy(y: readonly Tensor[], a: readonly Tensor[], k: readonly Tensor[]): Tensor[] {
  return y.map((v, i) => add(v, mul(a[i]!, k[i]!)));
}

/** The step h as a 0-d factor in each leaf's dtype. */
function perLeaf(h: Tensor, y: readonly Tensor[]): Tensor[] {
  return y.map((l) => (l.dtype === h.dtype ? h : astype(h, l.dtype)));
}

/** One classic Runge–Kutta step. */
function rk4Step(dyn: FlatDyn, y: Tensor[], t: Tensor, h: Tensor): Tensor[] {
  const hl = perLeaf(h, y);
  const half = hl.map((x) => mul(x, 0.5));
  const th = add(t, mul(h, 0.5));
  const k1 = dyn(y, t);
  const k2 = dyn(axpy(y, half, k1), th);
  const k3 = dyn(axpy(y, half, k2), th);
  const k4 = dyn(axpy(y, hl, k3), add(t, h));
  return y.map((v, i) => {
    const s = add(add(k1[i]!, mul(add(k2[i]!, k3[i]!), 2)), k4[i]!);
    return add(v, mul(div(hl[i]!, 6), s));
  });
}

// Dormand–Prince 5(4): nodes, the stage matrix, and the 5th-minus-4th-order error weights.
const C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1];
const A: number[][] = [
  [],
  [1 / 5],
  [3 / 40, 9 / 40],
  [44 / 45, -56 / 15, 32 / 9],
  [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
  [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
];
const E = [71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40];

/** y + h·Σⱼ coef[j]·k[j] per leaf (zero coefficients skipped). */
function combine(
  y: readonly Tensor[],
  hl: readonly Tensor[],
  ks: readonly Tensor[][],
  coef: readonly number[],
) {
  return y.map((v, i) => {
    let s: Tensor | null = null;
    for (let j = 0; j < coef.length; j++) {
      if (coef[j] === 0) continue;
      const term = mul(ks[j]![i]!, coef[j]!);
      s = s === null ? term : add(s, term);
    }
    return s === null ? v : add(v, mul(hl[i]!, s));
  });
}

/**
 * The values behind `t` for the step-size controller: its concrete value, or — under `vmap` —
 * every example's value one after the other (an unbatched value repeated), in an order that is
 * the same for every tensor, so that entries of different tensors line up. `stack` is the
 * interpreter stack from the current one down. Abstract (staged) values throw.
 */
function hostOf(t: Tensor, stack: readonly Interpreter[], op: string): ArrayLike<number> {
  if (isConcrete(t)) {
    const d = t._hostData();
    const copies = stack.reduce((n, it) => (it instanceof BatchInterpreter ? n * it.size : n), 1);
    if (copies === 1) return d;
    const out = new Float64Array(d.length * copies);
    for (let c = 0; c < copies; c++) out.set(d, c * d.length);
    return out;
  }
  let vals: Tensor[] = [t];
  for (const it of stack) {
    if (it instanceof StagingInterpreter) throw abstractError(op);
    if (it instanceof BatchInterpreter) {
      vals = vals.flatMap((v) => {
        const [val, d] = it.unwrap(v);
        if (d === null) return new Array<Tensor>(it.size).fill(val);
        return withInterpreter(it.parent, () =>
          Array.from({ length: it.size }, (_, b) => exampleAt(val, d, b)),
        );
      });
    } else vals = vals.map((v) => (v._trace !== null && v._trace.owner === it ? it.concrete(v) : v));
  }
  const parts = vals.map((v) => v._hostData());
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The interpreters from the current one down (the eval interpreter, which has no parent, left out). */
function interpreterStack(): Interpreter[] {
  const out: Interpreter[] = [];
  for (let i: Interpreter | null = currentInterpreter(); i !== null && i.parent !== null; i = i.parent)
    out.push(i);
  return out;
}

/** RMS over every entry of every leaf of val(leaf, i) (the entries of leaf l: `lengths[l]`). */
function rms(lengths: readonly number[], val: (leaf: number, i: number) => number) {
  let acc = 0;
  let n = 0;
  lengths.forEach((m, l) => {
    n += m;
    for (let i = 0; i < m; i++) {
      const v = val(l, i);
      acc += v * v;
    }
  });
  return Math.sqrt(acc / Math.max(n, 1));
}

function abstractError(op: string): TransformError {
  return new TransformError(
    `${op}: dopri5 chooses its steps from values, which are abstract under jit/trace; use {method: "rk4"} there`,
  );
}

/** Hairer's initial step size (as SciPy's select_initial_step), from concrete values. */
function initialStep(
  dyn: FlatDyn,
  y0: readonly Tensor[],
  f0: readonly Tensor[],
  t0: Tensor,
  dir: number,
  o: IntegrateOptions,
  host: (t: Tensor) => ArrayLike<number>,
) {
  const yh = y0.map(host);
  const fh = f0.map(host);
  const lengths = yh.map((a) => a.length);
  const scale = (l: number, i: number) => o.atol + Math.abs(yh[l]![i]!) * o.rtol;
  const d0 = rms(lengths, (l, i) => yh[l]![i]! / scale(l, i));
  const d1 = rms(lengths, (l, i) => fh[l]![i]! / scale(l, i));
  const h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * (d0 / d1);
  const batched = !y0.every(isConcrete) || !f0.every(isConcrete);
  // A trial Euler step; concrete values are stepped on host copies so nothing is recorded.
  const y1 = batched
    ? y0.map((l, k) => add(l, mul(f0[k]!, h0 * dir)))
    : y0.map((l, k) => {
        const a = allocArray(l.dtype, l.size);
        for (let i = 0; i < l.size; i++) a[i] = yh[k]![i]! + h0 * dir * fh[k]![i]!;
        return Tensor._fromHost(a, l.shape.slice(), l.dtype);
      });
  const t1 = add(t0._concrete(), h0 * dir);
  const f1h = dyn(y1, t1).map(host);
  const d2 = rms(lengths, (l, i) => (f1h[l]![i]! - fh[l]![i]!) / scale(l, i)) / h0;
  const h1 = Math.max(d1, d2) <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : (0.01 / Math.max(d1, d2)) ** (1 / 5);
  return Math.min(100 * h0, h1);
}

/**
 * Integrate dy/dt = dyn(y, t) from `times[0]` through every later time: the states at each time
 * (index 0 is `y0`). Times must be monotonic (either direction); equal neighbours are allowed.
 */
export function integrate(
  dyn: FlatDyn,
  y0: Tensor[],
  times: readonly Tensor[],
  o: IntegrateOptions,
): Tensor[][] {
  const out: Tensor[][] = [y0];
  if (o.method === "rk4") {
    let y = y0;
    for (let i = 1; i < times.length; i++) {
      const t0 = times[i - 1]!;
      const h = div(sub(times[i]!, t0), o.substeps);
      for (let s = 0; s < o.substeps; s++) y = rk4Step(dyn, y, s === 0 ? t0 : add(t0, mul(h, s)), h);
      out.push(y);
    }
    return out;
  }
  if (!times.every(isConcrete))
    throw new TransformError(
      `${o.op}: dopri5 chooses its steps from the times, which are abstract under jit/trace and batched under vmap; use {method: "rk4"} there`,
    );
  const tc = times.map((t) => t.item());
  const stack = interpreterStack();
  const host = (t: Tensor) => hostOf(t, stack, o.op);
  let y = y0;
  let k1: Tensor[] | null = null;
  let hAbs: number | null = null;
  let steps = 0;
  for (let i = 1; i < times.length; i++) {
    const span = tc[i]! - tc[i - 1]!;
    if (span === 0) {
      out.push(y);
      continue;
    }
    const dir = Math.sign(span);
    const ta = times[i - 1]!;
    const D = sub(times[i]!, ta);
    k1 ??= dyn(y, ta);
    hAbs ??= Math.min(initialStep(dyn, y, k1, ta, dir, o, host), Math.abs(span));
    let u = 0;
    while (u < 1) {
      let du = Math.min(hAbs / Math.abs(span), 1 - u);
      if (1 - u - du < 1e-10) du = 1 - u;
      const t = u === 0 ? ta : add(ta, mul(D, u));
      const h = mul(D, du);
      const hl = perLeaf(h, y);
      const ks: Tensor[][] = [k1];
      for (let s = 1; s < 6; s++) ks.push(dyn(combine(y, hl, ks, A[s]!), add(t, mul(h, C[s]!))));
      // The 5th-order solution; its slope (stage 7) is the next step's first stage (FSAL).
      const y5 = combine(y, hl, ks, A[6]!);
      ks.push(dyn(y5, add(t, h)));
      // The local error estimate, on host copies.
      const hc = du * span;
      const kh = ks.map((k) => k.map(host));
      const yh = y.map(host);
      const y5h = y5.map(host);
      const err = rms(
        yh.map((a) => a.length),
        (l, j) => {
          let e = 0;
          for (let s = 0; s < 7; s++) if (E[s] !== 0) e += E[s]! * kh[s]![l]![j]!;
          const sc = o.atol + o.rtol * Math.max(Math.abs(yh[l]![j]!), Math.abs(y5h[l]![j]!));
          return (hc * e) / sc;
        },
      );
      steps++;
      if (steps > o.maxSteps)
        throw new AdError(
          `${o.op}: dopri5 took more than maxSteps = ${o.maxSteps} steps; raise maxSteps or loosen rtol/atol (the problem may be stiff)`,
        );
      const ok = Number.isFinite(err) && err <= 1;
      if (ok) {
        y = y5;
        k1 = ks[6]!;
        u = du === 1 - u ? 1 : u + du;
      }
      let factor = !Number.isFinite(err)
        ? 0.2
        : err === 0
          ? 10
          : Math.min(10, Math.max(0.2, 0.9 * err ** -0.2));
      if (!ok) factor = Math.min(1, factor);
      hAbs = Math.abs(hc) * factor;
      if (hAbs <= 1e-14 * Math.max(Math.abs(tc[i - 1]!), Math.abs(tc[i]!), 1))
        throw new AdError(`${o.op}: dopri5's step size underflowed near t = ${tc[i - 1]! + u * span}`);
    }
    out.push(y);
  }
  return out;
}
