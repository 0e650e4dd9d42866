/**
 * @file `ad.odeint(f, y0, ts, params, opts)`: the solution of dy/dt = f(y, t, params) at the
 * times `ts`, differentiable wrt `y0`, `params`, `ts` and anything `f` closes over.
 *
 * Two ways to differentiate:
 * - direct (default): the solver's steps are ordinary operations, so every transform
 *   differentiates through them (dopri5: through the accepted steps, see integrate.ts). Exact
 *   derivatives of the discrete solution; reverse-mode memory grows with the number of steps.
 * - `adjoint: true`: the continuous adjoint method (Chen et al. 2018, as JAX's odeint). The
 *   forward solve runs below the transforms and records nothing; the backward pass integrates
 *   the augmented system backwards in time, interval by interval,
 *     dy/dt = f,   da/dt = −aᵀ∂f/∂y,   dθ̄/dt = −aᵀ∂f/∂θ,
 *   from a(t_N) = ȳ_N, adding ȳᵢ at each output time. Choice: y is integrated backwards together
 *   with the adjoint, but restarted at each interval from the forward solution stored at tᵢ (the
 *   outputs, which exist anyway) — no backward drift across intervals, and memory independent of
 *   the number of steps. Time cotangents: t̄ᵢ = ȳᵢ·f(yᵢ, tᵢ) for i ≥ 1 and t̄₀ = −a(t₀⁺)·f(y₀, t₀).
 *   Forward mode (`jvp`) differentiates the direct solver.
 */

import { noGrad } from "../core/grad-mode.js";
import { Tensor } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { DTypeError, ShapeError, TransformError } from "../errors.js";
import { closureConvert } from "../implicit/closure.js";
import {
  addL,
  avalOf,
  checkOut,
  defaultTol,
  fillZeros,
  matchLeaves,
  negL,
  numbersToTensors,
  recordFlat,
  tensorLeaves,
  vdotL,
  zerosL,
} from "../implicit/common.js";
import { astype, neg, reshape, slice, stack, tensor, zeros } from "../ops/index.js";
import { fmtShape } from "../shape.js";
import { checkFunction } from "../transforms/args.js";
import { isConcrete, jvpFlat, type Leafy, type Traced } from "../transforms/control.js";
import { customVjp } from "../transforms/custom.js";
import { type TreeDef, unflatten } from "../tree.js";
import { type FlatDyn, type IntegrateOptions, integrate, timesOf } from "./integrate.js";

/** Options of `odeint`. */
export interface OdeintOptions {
  /** `"dopri5"` (default): adaptive Dormand–Prince 5(4); `"rk4"`: classic RK4, `substeps` steps per interval of `ts`. */
  method?: "rk4" | "dopri5";
  /** dopri5's relative tolerance (default 1.4e-8 for a float64 state, 1e-6 otherwise). */
  rtol?: number;
  /** dopri5's absolute tolerance (default as rtol). */
  atol?: number;
  /** rk4's steps per interval of `ts` (default 10). */
  substeps?: number;
  /** Gradients by the continuous adjoint method (memory independent of the number of steps). */
  adjoint?: boolean;
  /** dopri5's budget of steps per integration (default 10000); exceeding it throws. */
  maxSteps?: number;
}

const OPT_KEYS = "{method?, rtol?, atol?, substeps?, adjoint?, maxSteps?}";

function checkOptions(opts: unknown, op: string): void {
  if (opts === null || typeof opts !== "object")
    throw new TransformError(`${op}: options must be an object ${OPT_KEYS}`);
  const o = opts as OdeintOptions;
  if (o.method !== undefined && o.method !== "rk4" && o.method !== "dopri5")
    throw new TransformError(`${op}: method must be "rk4" or "dopri5", got ${JSON.stringify(o.method)}`);
  for (const k of ["rtol", "atol"] as const)
    if (o[k] !== undefined && (typeof o[k] !== "number" || !(o[k] >= 0)))
      throw new TransformError(`${op}: ${k} must be a non-negative number, got ${String(o[k])}`);
  for (const k of ["substeps", "maxSteps"] as const)
    if (o[k] !== undefined && (!Number.isInteger(o[k]) || (o[k] as number) < 1))
      throw new TransformError(`${op}: ${k} must be a positive integer, got ${String(o[k])}`);
  if (o.adjoint !== undefined && typeof o.adjoint !== "boolean")
    throw new TransformError(`${op}: adjoint must be a boolean, got ${String(o.adjoint)}`);
}

/** `ts` as a 1-D float tensor, checked (monotonic when its values can be read). */
function timesTensor(ts: unknown, op: string): Tensor {
  let t: Tensor;
  if (ts instanceof Tensor) t = ts;
  else if (Array.isArray(ts) && ts.every((x) => typeof x === "number"))
    t = tensor(ts as number[], { dtype: "float64" });
  else throw new TransformError(`${op}: ts must be a 1-D Tensor or an array of numbers`);
  if (t.ndim !== 1 || t.shape[0] === 0)
    throw new ShapeError(`${op}: ts must be a non-empty 1-D tensor of times, got shape ${fmtShape(t.shape)}`);
  if (!isFloat(t.dtype)) throw new DTypeError(`${op}: ts must have a floating-point dtype, got ${t.dtype}`);
  if (isConcrete(t)) {
    const v = Array.from(t._hostData());
    if (v.some((x) => !Number.isFinite(x))) throw new TransformError(`${op}: ts must be finite`);
    const up = v.every((x, i) => i === 0 || x >= v[i - 1]!);
    const down = v.every((x, i) => i === 0 || x <= v[i - 1]!);
    if (!up && !down) throw new TransformError(`${op}: ts must be monotonic (increasing or decreasing)`);
  }
  return t;
}

/** Row i of a stacked leaf. */
function row(t: Tensor, i: number): Tensor {
  return reshape(slice(t, [i, ...t.shape.slice(1).map(() => 0)], [1, ...t.shape.slice(1)]), t.shape.slice(1));
}

/** States per time → one leaf per state leaf with a leading time axis. */
function stackStates(states: readonly Tensor[][]): Tensor[] {
  return states[0]!.map((_, j) =>
    stack(
      states.map((s) => s[j]!),
      0,
    ),
  );
}

/**
 * Solve dy/dt = f(y, t, params) from y(ts[0]) = y0 and return y at every time of `ts`: a pytree
 * like `y0` whose leaves have a leading axis over `ts` (the first entry is y0). `f` takes JAX's
 * argument order `(y, t, params)` and returns the derivative structured like `y`; `y0` and
 * `params` may be pytrees; `ts` is a 1-D tensor or an array of numbers, increasing or decreasing.
 * Differentiable wrt `y0`, `params`, `ts` and anything `f` closes over: through the solver's
 * steps (default) or, with `{adjoint: true}`, by the continuous adjoint method, whose memory does
 * not depend on the number of steps. `method: "dopri5"` (default, adaptive, `{rtol, atol}`) reads
 * values to choose its steps, so under `jit` use `"rk4"` (`{substeps}` per interval); under `vmap`
 * (and `jacfwd`, `jacrev`, `hessian`) the examples share one step sequence, and `ts` must not be
 * batched.
 * @example
 * // exponential decay dy/dt = −k·y: y(t) = y0·e^{−kt}
 * const decay = (y: ad.Tensor, _t: ad.Tensor, k: ad.Tensor) => ad.mul(ad.neg(k), y);
 * const ys = ad.odeint(decay, 1, [0, 1, 2], 0.5); // [1, 0.6065…, 0.3678…]
 * // d y(2) / dk = −2·e^{−1}, by the adjoint method
 * ad.grad((k: number) => ad.odeint(decay, 1, [0, 2], k, { adjoint: true }).at(1))(0.5); // −0.7357…
 */
export function odeint<Y, P = undefined>(
  f: (y: Traced<Y>, t: Tensor, params: Traced<P>) => Leafy<Y>,
  y0: Y,
  ts: Tensor | readonly number[],
  params?: P,
  opts: OdeintOptions = {},
): Traced<Y> {
  const op = "odeint";
  checkFunction(f, op);
  checkOptions(opts, op);
  const tsT = timesTensor(ts, op);
  const [yl, yDef] = tensorLeaves(y0, "y0", op);
  const likes = yl.map(avalOf);
  const [pl, pDef] = numbersToTensors(params);
  const tol = defaultTol(yl, 1.4e-8, 1e-6);
  const o: IntegrateOptions = {
    method: opts.method ?? "dopri5",
    substeps: opts.substeps ?? 10,
    rtol: opts.rtol ?? tol,
    atol: opts.atol ?? opts.rtol ?? tol,
    maxSteps: opts.maxSteps ?? 10000,
    op,
  };
  const fOut = (v: unknown) => matchLeaves(v, yDef, likes, "the output of f", op);
  const result = (leaves: readonly Tensor[]) => unflatten(yDef, leaves) as Traced<Y>;
  if (!opts.adjoint) {
    const p = unflatten(pDef, pl);
    const call = f as (y: unknown, t: Tensor, p: unknown) => unknown;
    const dyn: FlatDyn = (y, t) => fOut(call(unflatten(yDef, y), t, p));
    return result(stackStates(integrate(dyn, yl, timesOf(tsT), o)));
  }
  return result(adjointSolve(f as (...a: never[]) => unknown, yl, yDef, pl, pDef, tsT, o));
}

/** The adjoint-mode solve: a custom-VJP function of (consts, params leaves, y0 leaves, ts). */
function adjointSolve(
  f: (...a: never[]) => unknown,
  yl: Tensor[],
  yDef: TreeDef,
  pl: unknown[],
  pDef: TreeDef,
  tsT: Tensor,
  o: IntegrateOptions,
): Tensor[] {
  const op = o.op;
  const likes = yl.map(avalOf);
  const conv = closureConvert(f, [unflatten(yDef, yl), timesOf(tsT)[0]!, unflatten(pDef, pl)], op);
  checkOut(conv.out, yDef, likes, "the output of f", op);
  const nY = yl.length;
  const fFlat = (cs: readonly Tensor[], ps: readonly unknown[], y: readonly Tensor[], t: Tensor): Tensor[] =>
    matchLeaves(
      conv.call(cs, [unflatten(yDef, y), t, unflatten(pDef, ps)]),
      yDef,
      likes,
      "the output of f",
      op,
    );
  const dynOf = (cs: readonly Tensor[], ps: readonly unknown[]): Tensor[] => [
    ...cs,
    ...ps.filter((p): p is Tensor => p instanceof Tensor),
  ];
  const withDyn = (ps: readonly unknown[], vals: readonly unknown[]): unknown[] => {
    let k = 0;
    return ps.map((p) => (p instanceof Tensor ? vals[k++] : p));
  };
  const solveDirect = (cs: Tensor[], ps: unknown[], ys: Tensor[], ts: Tensor): Tensor[] =>
    stackStates(integrate((y, t) => fFlat(cs, ps, y, t), ys, timesOf(ts), o));

  type Res = { cs: Tensor[]; ps: unknown[]; ts: Tensor; out: Tensor[] };
  const call: (cs: Tensor[], ps: unknown[], ys: Tensor[], ts: Tensor) => Tensor[] = customVjp(solveDirect, {
    fwd: (cs, ps, ys, ts) => {
      const out = noGrad(() => call(cs, ps, ys, ts));
      return [out, { cs, ps, ts, out }];
    },
    bwd: (res: Res, ybar: Tensor[]) => {
      if (ybar === null || ybar.every((t) => t === null || t === undefined)) return [null, null, null, null];
      const { cs, ps } = res;
      const times = timesOf(res.ts);
      const T = times.length;
      const dyn = dynOf(cs, ps);
      const nc = cs.length;
      const mask = dyn.map((t) => isFloat(t.dtype));
      const gLikes = dyn.filter((_, i) => mask[i]).map(avalOf);
      const yAt = (i: number) => res.out.map((l) => row(l, i));
      const barAt = (i: number) =>
        likes.map((l, j) => {
          const g = ybar[j];
          return g === null || g === undefined ? zeros(l.shape, { dtype: l.dtype }) : row(g, i);
        });
      /** The augmented dynamics on [y, a, θ̄] (θ̄ only for float consts/params). */
      const aug: FlatDyn = (s, t) => {
        const y = s.slice(0, nY);
        const a = s.slice(nY, 2 * nY);
        const [fy, pull] = recordFlat(
          (xs) => fFlat(xs.slice(nY, nY + nc), withDyn(ps, xs.slice(nY + nc)), xs.slice(0, nY), t),
          [...y, ...dyn],
          [...y.map(() => true), ...mask],
        );
        const g = pull(a);
        return [
          ...fy,
          ...negL(fillZeros(g.slice(0, nY), likes)),
          ...negL(
            fillZeros(
              g.slice(nY).filter((_, i) => mask[i]),
              gLikes,
            ),
          ),
        ];
      };
      let a = barAt(T - 1);
      let g = zerosL(gLikes);
      const tbar: Tensor[] = new Array(T);
      tbar[0] = zeros([], { dtype: res.ts.dtype });
      for (let i = T - 1; i >= 1; i--) {
        const yi = yAt(i);
        tbar[i] = astype(vdotL(barAt(i), fFlat(cs, ps, yi, times[i]!)), res.ts.dtype);
        const s = integrate(aug, [...yi, ...a, ...g], [times[i]!, times[i - 1]!], o)[1]!;
        const aMinus = s.slice(nY, 2 * nY);
        g = s.slice(2 * nY);
        if (i === 1) tbar[0] = astype(neg(vdotL(aMinus, fFlat(cs, ps, yAt(0), times[0]!))), res.ts.dtype);
        a = addL(aMinus, barAt(i - 1));
      }
      // Scatter θ̄ back over (consts, params); non-float entries get none.
      let k = 0;
      const dbar = mask.map((m) => (m ? g[k++]! : null));
      const pbar = withDyn(ps, dbar.slice(nc)).map((v, i) => (ps[i] instanceof Tensor ? v : null));
      return [dbar.slice(0, nc), pbar, a, stack(tbar, 0)];
    },
    jvp: ([cs, ps, ys, ts], [dcs, dps, dys, dts]) => {
      const dyn = dynOf(cs, ps);
      const nc = cs.length;
      const dDyn = [...(dcs as unknown[]), ...(dps as unknown[]).filter((_, i) => ps[i] instanceof Tensor)];
      const prim = [...dyn, ...ys, ts];
      const tans = [...dDyn, ...(dys as unknown[]), dts].map((t, i) =>
        t instanceof Tensor && isFloat(prim[i]!.dtype) ? t : null,
      );
      const nd = dyn.length;
      const [, touts] = jvpFlat(
        (xs) =>
          solveDirect(xs.slice(0, nc), withDyn(ps, xs.slice(nc, nd)), xs.slice(nd, nd + nY), xs[nd + nY]!),
        prim,
        tans,
      );
      return [null, touts];
    },
  });
  return call(conv.consts, pl, yl, tsT);
}
