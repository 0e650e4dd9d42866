/**
 * @file `ad.fixedPoint(f, params, z0, opts)`: z* = f(params, z*) by iteration, differentiated by
 * the implicit function theorem.
 *
 * Math: z* = f(θ, z*) ⇒ (I − ∂f/∂z) dz* = ∂f/∂θ dθ, so
 *   reverse  u = (I − ∂f/∂z)⁻ᵀ z̄ (solved matrix-free: u ← z̄ + (∂f/∂z)ᵀu, or GMRES), θ̄ = (∂f/∂θ)ᵀu
 *   forward  ż = (I − ∂f/∂z)⁻¹ (∂f/∂θ θ̇)
 * with every Jacobian product a VJP/JVP of f at the fixed point. The forward iterations run one
 * interpreter level below the transforms (inside a custom-VJP rule), so nothing of them is
 * recorded: the backward pass keeps θ and z* only, and its memory does not depend on `maxIter`.
 * The adjoint solve is a custom linear solve, so higher derivatives stay implicit too.
 */

import { noGrad } from "../core/grad-mode.js";
import { Tensor } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { TransformError } from "../errors.js";
import { astype } from "../ops/index.js";
import { gmresSolve } from "../solvers/krylov.js";
import { checkFunction } from "../transforms/args.js";
import { jvpFlat, type Leafy, type Traced } from "../transforms/control.js";
import { customVjp } from "../transforms/custom.js";
import { pushforward, record } from "../transforms/reverse.js";
import { flatten, type TreeDef, unflatten } from "../tree.js";
import { closureConvert } from "./closure.js";
import {
  addL,
  avalOf,
  checkOut,
  defaultTol,
  fillZeros,
  iterate,
  LastCall,
  matchLeaves,
  numbersToTensors,
  recordFlat,
  subL,
  tensorLeaves,
  tensorsOf,
} from "./common.js";
import { linearSolveCore, type SolveFn, type SolveSpec } from "./linear-solve.js";

/** Options of `fixedPoint`. */
export interface FixedPointOptions {
  /**
   * Stop when ‖z_{k+1} − z_k‖₂ ≤ tol·(1 + ‖z_{k+1}‖₂). Default 1e-10 for float64 `z`, 1e-6
   * otherwise. The adjoint and tangent solves use the same tolerance.
   */
  tol?: number;
  /** The most iterations (default 1000); also the budget of the adjoint solve. */
  maxIter?: number;
  /**
   * How the linear systems of the derivatives are solved: `"iterate"` (default) repeats the
   * fixed-point iteration on them (u ← z̄ + (∂f/∂z)ᵀu, converging whenever the forward iteration
   * does), `"gmres"` uses restarted GMRES (fewer products of ∂f/∂z when the contraction is weak).
   */
  adjointSolver?: "iterate" | "gmres";
}

/** Richardson iteration x ← x + (b − A x) as a `SolveFn` (the fixed-point iteration of the adjoint). */
function richardson(tol: number, maxIter: number, op: string): SolveFn {
  return (matvec, b, guess) => {
    const [bl, def] = flatten<Tensor>(b);
    const x0 = guess === null ? bl : flatten<Tensor>(guess)[0];
    const step = (x: Tensor[]) => addL(x, subL(bl, flatten<Tensor>(matvec(unflatten(def, x)))[0]));
    return [unflatten(def, iterate(step, x0, tol, maxIter, op).x), []];
  };
}

function checkOptions(opts: unknown, op: string): void {
  if (opts === null || typeof opts !== "object")
    throw new TransformError(`${op}: options must be an object {tol?, maxIter?, adjointSolver?}`);
  const o = opts as FixedPointOptions;
  if (o.tol !== undefined && (typeof o.tol !== "number" || !(o.tol >= 0)))
    throw new TransformError(`${op}: tol must be a non-negative number, got ${String(o.tol)}`);
  if (o.maxIter !== undefined && (!Number.isInteger(o.maxIter) || o.maxIter < 0))
    throw new TransformError(`${op}: maxIter must be a non-negative integer, got ${String(o.maxIter)}`);
  if (o.adjointSolver !== undefined && o.adjointSolver !== "iterate" && o.adjointSolver !== "gmres")
    throw new TransformError(
      `${op}: adjointSolver must be "iterate" or "gmres", got ${JSON.stringify(o.adjointSolver)}`,
    );
}

/**
 * The fixed point z* = f(params, z*), found by iterating z ← f(params, z) from `z0` until the
 * relative change is below `tol` (or `maxIter` steps). Its derivatives wrt `params` (a pytree)
 * and anything `f` closes over come from the implicit function theorem — one adjoint linear
 * solve, matrix-free with VJPs of f at z* — never from unrolling the iterations, so a gradient
 * costs about one more fixed-point solve and its memory does not grow with the iteration count.
 * `z0` gets no derivative (z* does not depend on it). `z` may be a pytree; it keeps z0's dtypes
 * (a JS number adopts the dtype f returns). Works under `grad`, `jvp`, `vmap`, `jit`, to any order.
 * @example
 * // z = cos(z)/2 + θ, whose solution has derivative 1 / (1 + sin(z⋆)/2) wrt θ
 * const solve = (theta: number) => ad.fixedPoint((t, z) => ad.add(ad.mul(ad.cos(z), 0.5), t), theta, 0);
 * solve(1).item(); // 1.18715…
 * ad.grad((t: number) => solve(t))(1); // 0.68322… = 1 / (1 + sin(1.18715…)/2)
 * // a deep-equilibrium layer z = tanh(W z + x), differentiable wrt W and x
 * const deq = (p: { W: ad.Tensor; x: ad.Tensor }) =>
 *   ad.fixedPoint((q, z: ad.Tensor) => ad.tanh(ad.add(ad.matmul(q.W, z), q.x)), p, ad.zerosLike(p.x));
 */
export function fixedPoint<P, Z>(
  f: (params: Traced<P>, z: Traced<Z>) => Leafy<Z>,
  params: P,
  z0: Z,
  opts: FixedPointOptions = {},
): Traced<Z> {
  const op = "fixedPoint";
  checkFunction(f, op);
  checkOptions(opts, op);
  let [zl, zDef] = tensorLeaves(z0, "z0", op);
  const [pl, pDef] = numbersToTensors(params);
  const conv = closureConvert(
    f as (...a: never[]) => unknown,
    [unflatten(pDef, pl), unflatten(zDef, zl)],
    op,
  );
  if (conv.out !== null) {
    checkOut(conv.out, zDef, zl.map(avalOf), "f's output", op);
    // A weakly typed z0 (a JS number) adopts the dtype f returns.
    const outs = conv.out.avals;
    zl = zl.map((z, i) => {
      const d = outs[i]!.dtype;
      return z.weakType && d !== z.dtype && isFloat(d) ? astype(z, d) : z;
    });
  }
  const likes = zl.map(avalOf);
  const tol = opts.tol ?? defaultTol(zl, 1e-10, 1e-6);
  const maxIter = opts.maxIter ?? 1000;
  const solve = opts.adjointSolver === "gmres" ? gmresSolve({ tol, maxIter }) : richardson(tol, maxIter, op);
  const spec: SolveSpec = { op, solve, transposeSolve: null, symmetric: false };

  /** f on flat leaves: consts, params leaves (tensors and statics), z leaves. */
  const fz = (cs: readonly Tensor[], ps: readonly unknown[], zs: readonly Tensor[]): Tensor[] =>
    matchLeaves(
      conv.call(cs, [unflatten(pDef, ps), unflatten(zDef, zs)]),
      zDef,
      likes,
      "the output of f",
      op,
    );
  const tree = (def: TreeDef, g: (x: Tensor[]) => Tensor[]) => (x: unknown) =>
    unflatten(def, g(matchLeaves(x, def, likes, "the argument of the adjoint matvec", op)));
  /** The differentiable inputs: consts then the tensor leaves of params. */
  const dynOf = (cs: readonly Tensor[], ps: readonly unknown[]): Tensor[] => [
    ...cs,
    ...ps.filter((p): p is Tensor => p instanceof Tensor),
  ];
  /** Put new values of the tensor leaves back into the params leaf list. */
  const withDyn = (ps: readonly unknown[], vals: readonly unknown[]): unknown[] => {
    let k = 0;
    return ps.map((p) => (p instanceof Tensor ? vals[k++] : p));
  };

  const last = new LastCall<Tensor[]>();
  const primal = (cs: Tensor[], ps: unknown[], zs: Tensor[]): Tensor[] => {
    const z = iterate((x) => fz(cs, ps, x), zs, tol, maxIter, op).x;
    last.set(tensorsOf([cs, ps, zs]), z);
    return z;
  };

  const call: (cs: Tensor[], ps: unknown[], zs: Tensor[]) => Tensor[] = customVjp(primal, {
    fwd: (cs, ps, zs) => {
      const z = noGrad(() => call(cs, ps, zs));
      return [z, { cs, ps, z }];
    },
    bwd: (res: { cs: Tensor[]; ps: unknown[]; z: Tensor[] }, zbar: Tensor[]) => {
      if (zbar === null || zbar.every((t) => t === null || t === undefined)) return [null, null, null];
      // u = (I − ∂f/∂z)⁻ᵀ z̄, with (∂f/∂z)ᵀ from one recording of f at z*.
      const [, pullZ] = recordFlat(
        (z) => fz(res.cs, res.ps, z),
        res.z,
        res.z.map(() => true),
      );
      const mv = (u: Tensor[]) => subL(u, fillZeros(pullZ(u), likes));
      const u = matchLeaves(
        linearSolveCore(tree(zDef, mv), unflatten(zDef, fillZeros(zbar, likes)), null, spec).x,
        zDef,
        likes,
        "the adjoint",
        op,
      );
      // θ̄ = (∂f/∂θ)ᵀ u
      const dyn = dynOf(res.cs, res.ps);
      const nc = res.cs.length;
      const [, pull] = recordFlat(
        (xs) => fz(xs.slice(0, nc), withDyn(res.ps, xs.slice(nc)), res.z),
        dyn,
        dyn.map((t) => isFloat(t.dtype)),
      );
      const g = pull(u);
      return [
        g.slice(0, nc),
        withDyn(res.ps, g.slice(nc)).map((v) => (v instanceof Tensor ? v : null)),
        null,
      ];
    },
    jvp: ([cs, ps, zs], [dcs, dps]) => {
      const z = last.get(tensorsOf([cs, ps, zs])) ?? call(cs, ps, zs);
      const dyn = dynOf(cs, ps);
      const nc = cs.length;
      const tangents = [
        ...(dcs as (Tensor | null)[]),
        ...(dps as unknown[]).filter((_, i) => ps[i] instanceof Tensor),
      ].map((t, i) => (t instanceof Tensor && isFloat(dyn[i]!.dtype) ? t : null));
      const [, rhs] = jvpFlat((xs) => fz(xs.slice(0, nc), withDyn(ps, xs.slice(nc)), z), dyn, tangents);
      if (rhs.every((t) => t === null)) return [null, null];
      // ż = (I − ∂f/∂z)⁻¹ rhs, with ∂f/∂z·v pushed along one recording of f at z*.
      const rec = record((zz: Tensor[]) => fz(cs, ps, zz), [z], [0], false, op);
      const mv = (v: Tensor[]) => subL(v, pushforward(rec, [v]));
      const zdot = linearSolveCore(tree(zDef, mv), unflatten(zDef, fillZeros(rhs, likes)), null, spec).x;
      return [null, matchLeaves(zdot, zDef, likes, "ż", op)];
    },
  });

  return unflatten(zDef, call(conv.consts, pl, zl)) as Traced<Z>;
}
