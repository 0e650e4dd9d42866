/**
 * @file `ad.solvers`: matrix-free Krylov solvers, `cg` (symmetric positive-definite operators)
 * and `gmres` (any operator). The operator is a function `matvec(x)`, so a Hessian-vector product
 * (`v => ad.hvp(f, [w], [v])[0]`) or a Jacobian-vector product (`v => ad.jvp(F, [x], [v])[1]`)
 * serves without forming a matrix: Newton-CG and Jacobian-free Newton-Krylov are a few lines.
 *
 * Both are differentiable wrt `b` and anything `matvec` closes over, implicitly (the derivative of
 * the solution solves another linear system; the iterations are never unrolled or recorded). They
 * run eagerly, inside every transform, and under `jit` (the loops stage as `while`).
 */

import type { Tensor } from "../core/tensor.js";
import { AdError, TransformError } from "../errors.js";
import { linearSolveCore, type SolveFn } from "../implicit/linear-solve.js";
import { checkFunction } from "../transforms/args.js";
import type { Leafy, Traced } from "../transforms/control.js";
import { cgRaw, type GmresOptions, gmresSolve, pytreeSolve, type SolverOptions } from "./krylov.js";

export type { GmresOptions, SolverOptions } from "./krylov.js";

/**
 * A Krylov solve's result. `x` is differentiable. The diagnostics are plain JS values read from
 * the solve; they carry no derivative, and under `jit` or `vmap` (where values are abstract)
 * reading them throws a `TransformError`.
 */
export interface SolverResult<X> {
  /** The solution, structured like `b`. */
  readonly x: X;
  /** Matrix-vector products used (after the initial residual). */
  readonly iterations: number;
  /** ‖b − A x‖₂ at the end (cg: the recursively updated residual). */
  readonly residualNorm: number;
  /** Whether the tolerance was met within `maxIter`. */
  readonly converged: boolean;
}

function checkOptions(opts: unknown, op: string, keys: readonly string[]): void {
  if (opts === null || typeof opts !== "object")
    throw new TransformError(`${op}: options must be an object {${keys.join(", ")}}`);
  const o = opts as Record<string, unknown>;
  for (const k of ["tol", "atol"])
    if (o[k] !== undefined && (typeof o[k] !== "number" || !((o[k] as number) >= 0)))
      throw new TransformError(`${op}: ${k} must be a non-negative number, got ${String(o[k])}`);
  for (const k of ["maxIter", "restart"])
    if (o[k] !== undefined && (!Number.isInteger(o[k]) || (o[k] as number) < (k === "restart" ? 1 : 0)))
      throw new TransformError(
        `${op}: ${k} must be a ${k === "restart" ? "positive" : "non-negative"} integer, got ${String(o[k])}`,
      );
}

/** The public result: `x` and the diagnostics as lazily read JS values. */
function result<X>(x: X, diag: readonly Tensor[], op: string): SolverResult<X> {
  const read = (t: Tensor, name: string): number => {
    try {
      return t.item();
    } catch (e) {
      if (e instanceof AdError)
        throw new TransformError(
          `${op}: ${name} cannot be read here: values are abstract under jit and batched under vmap (use x, or read the diagnostics outside those transforms)`,
        );
      throw e;
    }
  };
  return {
    x,
    get iterations() {
      return read(diag[0]!, "iterations");
    },
    get residualNorm() {
      return read(diag[1]!, "residualNorm");
    },
    get converged() {
      return read(diag[2]!, "converged") !== 0;
    },
  };
}

function krylov<B>(
  matvec: (x: Traced<B>) => Leafy<B>,
  b: B,
  opts: SolverOptions<B>,
  op: "cg" | "gmres",
  solve: SolveFn,
): SolverResult<Traced<B>> {
  const { x, diagnostics } = linearSolveCore(matvec as (x: unknown) => unknown, b, opts.x0 ?? null, {
    op,
    solve,
    transposeSolve: null,
    symmetric: op === "cg",
  });
  return result(x as Traced<B>, diagnostics, op);
}

/**
 * Conjugate gradients: solves A x = b for a symmetric positive-definite A given as
 * `matvec(x) = A x` (a pytree `b` is fine). Differentiable wrt `b` and whatever `matvec` closes
 * over — by the implicit rule (one more CG solve), not by unrolling.
 * @example
 * const A = ad.tensor([[4, 1], [1, 3]], { dtype: "float64" });
 * const b = ad.tensor([1, 2], { dtype: "float64" });
 * const r = ad.solvers.cg((v: ad.Tensor) => ad.matmul(A, v), b);
 * r.x.toArray(); // [0.0909…, 0.6363…]
 * r.converged; // true
 * // Newton-CG step: solve H p = −g with Hessian-vector products
 * const f = (w: ad.Tensor) => ad.sum(ad.pow(w, 4));
 * const w = ad.tensor([1, 2], { dtype: "float64" });
 * const p = ad.solvers.cg((v: ad.Tensor) => ad.hvp(f, [w], [v])[0], ad.neg(ad.grad(f)(w))).x;
 */
export function cg<B>(
  matvec: (x: Traced<B>) => Leafy<B>,
  b: B,
  opts: SolverOptions<B> = {},
): SolverResult<Traced<B>> {
  checkFunction(matvec, "cg");
  checkOptions(opts, "cg", ["x0", "tol", "atol", "maxIter"]);
  return krylov(matvec, b, opts, "cg", pytreeSolve(cgRaw, opts));
}

/**
 * Restarted GMRES: solves A x = b for any nonsingular A given as `matvec(x) = A x` (a pytree `b`
 * is fine). Differentiable wrt `b` and whatever `matvec` closes over, implicitly: the reverse
 * rule solves with Aᵀ (by GMRES on the VJP of `matvec`).
 * @example
 * const A = ad.tensor([[2, 1], [-1, 3]], { dtype: "float64" });
 * const r = ad.solvers.gmres((v: ad.Tensor) => ad.matmul(A, v), ad.tensor([3, 2], { dtype: "float64" }));
 * r.x.toArray(); // [1, 1]
 * // Jacobian-free Newton-Krylov step for F(x) = 0: solve J δ = −F(x) with JVPs
 * const F = (x: ad.Tensor) => ad.sub(ad.pow(x, 3), ad.tensor([1, 8], { dtype: "float64" }));
 * const x = ad.tensor([1.5, 1.5], { dtype: "float64" });
 * const step = ad.solvers.gmres((v: ad.Tensor) => ad.jvp(F, [x], [v])[1], ad.neg(F(x))).x;
 */
export function gmres<B>(
  matvec: (x: Traced<B>) => Leafy<B>,
  b: B,
  opts: GmresOptions<B> = {},
): SolverResult<Traced<B>> {
  checkFunction(matvec, "gmres");
  checkOptions(opts, "gmres", ["x0", "tol", "atol", "maxIter", "restart"]);
  return krylov(matvec, b, opts, "gmres", gmresSolve(opts));
}
