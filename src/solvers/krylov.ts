/**
 * @file The raw Krylov iterations behind `ad.solvers.cg` and `ad.solvers.gmres`, on one flat
 * vector (pytrees are raveled around them). They are written with tensor operations and
 * `whileFlat`, so they run as JS loops on concrete values and as staged `while` loops under
 * `jit`. They are never differentiated themselves: the public solvers wrap them in an implicit
 * linear solve (src/implicit/linear-solve.ts).
 */

import type { Tensor } from "../core/tensor.js";
import { promote } from "../dtype.js";
import { defaultTol } from "../implicit/common.js";
import type { SolveFn } from "../implicit/linear-solve.js";
import {
  abs,
  add,
  astype,
  concat,
  div,
  dot,
  greater,
  less,
  lessEqual,
  logicalAnd,
  maximum,
  mul,
  neg,
  reshape,
  slice,
  sqrt,
  sub,
  where,
  zeros,
} from "../ops/index.js";
import { isConcrete, whileFlat } from "../transforms/control.js";
import { flatten, unflatten } from "../tree.js";

/** Options of `cg` and `gmres`. */
export interface SolverOptions<B = unknown> {
  /** Initial guess (structured like `b`; default zeros). It gets no derivative. */
  x0?: B;
  /** Relative tolerance: stop when ‖b − A x‖ ≤ max(tol·‖b‖, atol). Default 1e-10 for float64 data, 1e-5 otherwise. */
  tol?: number;
  /** Absolute tolerance (default 0). */
  atol?: number;
  /** The most iterations (matrix-vector products). Default 10 × the number of unknowns. */
  maxIter?: number;
}

/** Options of `gmres`. */
export interface GmresOptions<B = unknown> extends SolverOptions<B> {
  /** Krylov subspace size before a restart (default 20, at most the number of unknowns). */
  restart?: number;
}

/** A linear operator on flat vectors. */
export type FlatMatvec = (x: Tensor) => Tensor;

/** Stopping rule and budget of a raw solve. */
export interface RawOptions {
  /** Relative tolerance: stop when ‖r‖ ≤ max(tol·‖b‖, atol). */
  readonly tol: number;
  readonly atol: number;
  /** The most iterations (matrix-vector products after the first residual). */
  readonly maxIter: number;
}

/** A raw solve's result; the diagnostics are 0-d tensors. */
export interface RawResult {
  readonly x: Tensor;
  readonly iterations: Tensor;
  readonly residualNorm: Tensor;
  readonly converged: Tensor;
}

/** Leaves as one flat vector (in their common float dtype) and the way back. */
export function ravel(leaves: readonly Tensor[]): { vec: Tensor; unravel: (v: Tensor) => Tensor[] } {
  const dtype = leaves.map((l) => l.dtype).reduce((a, b) => promote(a, false, b, false));
  const flat = leaves.map((l) => astype(reshape(l, [l.size]), dtype));
  const vec = flat.length === 1 ? flat[0]! : concat(flat, 0);
  const unravel = (v: Tensor): Tensor[] => {
    if (leaves.length === 1) {
      const l = leaves[0]!;
      return [astype(reshape(v, l.shape), l.dtype)];
    }
    let off = 0;
    return leaves.map((l) => {
      const part = slice(v, [off], [l.size]);
      off += l.size;
      return astype(reshape(part, l.shape), l.dtype);
    });
  };
  return { vec, unravel };
}

/**
 * Conjugate gradients for a symmetric positive-definite operator.
 * Math: r₀ = b − A x₀, p₀ = r₀; αₖ = rₖᵀrₖ / pₖᵀApₖ, xₖ₊₁ = xₖ + αₖpₖ, rₖ₊₁ = rₖ − αₖApₖ,
 * pₖ₊₁ = rₖ₊₁ + (rₖ₊₁ᵀrₖ₊₁ / rₖᵀrₖ) pₖ.
 */
export function cgRaw(A: FlatMatvec, b: Tensor, x0: Tensor | null, o: RawOptions): RawResult {
  const x = x0 ?? zeros(b.shape, { dtype: b.dtype });
  const r = x0 === null ? b : sub(b, A(x0));
  const thr2 = maximum(mul(dot(b, b), o.tol * o.tol), o.atol * o.atol);
  const rs = dot(r, r);
  const [xf, , , rsf, k] = whileFlat(
    (c) => logicalAnd(less(c[4]!, o.maxIter), greater(c[3]!, thr2)),
    ([xk, rk, pk, rsk, kk]) => {
      const Ap = A(pk!);
      const pAp = dot(pk!, Ap);
      const alpha = where(greater(abs(pAp), 0), div(rsk!, pAp), 0);
      const xn = add(xk!, mul(alpha, pk!));
      const rn = sub(rk!, mul(alpha, Ap));
      const rsn = dot(rn, rn);
      const beta = where(greater(rsk!, 0), div(rsn, rsk!), 0);
      return [xn, rn, add(rn, mul(beta, pk!)), rsn, add(kk!, 1)];
    },
    [x, r, r, rs, zeros([], { dtype: "int32" })],
    "cg",
  );
  return { x: xf!, iterations: k!, residualNorm: sqrt(rsf!), converged: lessEqual(rsf!, thr2) };
}

/** Whether a 0-d tensor's value can be read now (eagerly, not under jit/vmap). */
const readable = (t: Tensor): boolean => isConcrete(t);

/**
 * Restarted GMRES(m) for a general operator: Arnoldi with modified Gram–Schmidt, Givens
 * rotations for the small least-squares problem, and a restart every `restart` steps.
 * Math: xₘ = x₀ + Vₘyₘ with yₘ = argmin ‖βe₁ − H̄ₘy‖ over the Krylov space of r₀.
 * On concrete values a cycle stops as soon as the rotated residual estimate meets the tolerance;
 * staged (under `jit`) every cycle runs its `restart` steps.
 */
export function gmresRaw(
  A: FlatMatvec,
  b: Tensor,
  x0: Tensor | null,
  o: RawOptions & { restart: number },
): RawResult {
  const n = b.size;
  const m = Math.max(1, Math.min(o.restart, n));
  const x = x0 ?? zeros(b.shape, { dtype: b.dtype });
  const norm = (v: Tensor) => sqrt(dot(v, v));
  const thr = maximum(mul(norm(b), o.tol), o.atol);
  const r0 = x0 === null ? b : sub(b, A(x0));
  const [xf, , betaf, k] = whileFlat(
    (c) => logicalAnd(less(c[3]!, o.maxIter), greater(c[2]!, thr)),
    ([xk, r, beta, kk]) => {
      const safe = (num: Tensor, den: Tensor) =>
        where(greater(abs(den), 0), div(num, where(greater(abs(den), 0), den, 1)), 0);
      const V: Tensor[] = [safe(r!, beta!)];
      const g: Tensor[] = [beta!];
      const R: Tensor[][] = [];
      const cs: Tensor[] = [];
      const sn: Tensor[] = [];
      const concrete = readable(beta!);
      const k0 = concrete ? kk!.item() : 0;
      let steps = 0;
      for (let j = 0; j < m; j++) {
        let w = A(V[j]!);
        const h: Tensor[] = [];
        for (let i = 0; i <= j; i++) {
          const hij = dot(w, V[i]!);
          w = sub(w, mul(hij, V[i]!));
          h.push(hij);
        }
        const hn = norm(w);
        h.push(hn);
        V.push(safe(w, hn));
        for (let i = 0; i < j; i++) {
          const a = h[i]!;
          const c = h[i + 1]!;
          h[i] = add(mul(cs[i]!, a), mul(sn[i]!, c));
          h[i + 1] = sub(mul(cs[i]!, c), mul(sn[i]!, a));
        }
        const d = sqrt(add(mul(h[j]!, h[j]!), mul(h[j + 1]!, h[j + 1]!)));
        const cj = where(greater(d, 0), safe(h[j]!, d), 1);
        const sj = safe(h[j + 1]!, d);
        cs.push(cj);
        sn.push(sj);
        h[j] = d;
        g.push(neg(mul(sj, g[j]!)));
        g[j] = mul(cj, g[j]!);
        R.push(h.slice(0, j + 1));
        steps++;
        if (concrete) {
          const est = Math.abs(g[j + 1]!.item());
          if (est <= thr.item() || k0 + steps >= o.maxIter) break;
        }
      }
      // Back substitution R y = g (R upper triangular, column l holds R[0..l][l]).
      const y: Tensor[] = new Array(steps);
      for (let i = steps - 1; i >= 0; i--) {
        let s = g[i]!;
        for (let l = i + 1; l < steps; l++) s = sub(s, mul(R[l]![i]!, y[l]!));
        y[i] = safe(s, R[i]![i]!);
      }
      let xn = xk!;
      for (let i = 0; i < steps; i++) xn = add(xn, mul(y[i]!, V[i]!));
      const rn = sub(b, A(xn));
      return [xn, rn, norm(rn), add(kk!, steps)];
    },
    [x, r0, norm(r0), zeros([], { dtype: "int32" })],
    "gmres",
  );
  return { x: xf!, iterations: k!, residualNorm: betaf!, converged: lessEqual(betaf!, thr) };
}

/**
 * A raw flat-vector solver as a pytree `SolveFn` (raveling b, the guess and matvec around it).
 * @internal
 */
export function pytreeSolve(
  raw: (A: FlatMatvec, b: Tensor, x0: Tensor | null, o: RawOptions) => RawResult,
  opts: SolverOptions,
): SolveFn {
  return (matvec, b, guess) => {
    const [bl, bDef] = flatten<Tensor>(b);
    const { vec, unravel } = ravel(bl);
    const A: FlatMatvec = (v) => ravel(flatten<Tensor>(matvec(unflatten(bDef, unravel(v))))[0]).vec;
    const x0 = guess === null ? null : ravel(flatten<Tensor>(guess)[0]).vec;
    const r = raw(A, vec, x0, {
      tol: opts.tol ?? defaultTol(bl, 1e-10, 1e-5),
      atol: opts.atol ?? 0,
      maxIter: opts.maxIter ?? 10 * vec.size,
    });
    return [unflatten(bDef, unravel(r.x)), [r.iterations, r.residualNorm, r.converged]];
  };
}

/** @internal GMRES as a `SolveFn` (used by `fixedPoint({adjointSolver: "gmres"})`). */
export function gmresSolve(opts: GmresOptions): SolveFn {
  const restart = opts.restart ?? 20;
  return pytreeSolve((A, v, x0, o) => gmresRaw(A, v, x0, { ...o, restart }), opts);
}
