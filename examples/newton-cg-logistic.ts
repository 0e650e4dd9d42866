/**
 * @file Newton-CG for L2-regularised logistic regression, matrix-free. Each Newton step solves
 * H p = −∇f with conjugate gradients (`ad.solvers.cg`), where the operator is the Hessian-vector
 * product `v ↦ ad.hvp(f, [w], [v])` (forward-over-reverse): the d×d Hessian is never formed.
 * The result is checked against a reference optimum found independently, by Newton's method
 * with the dense Hessian (`ad.hessian`) and a direct solve (`ad.linalg.solve`).
 *
 * Run: node --import tsx examples/newton-cg-logistic.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** A binary classification problem: features X [n, d], labels y ∈ {0, 1} [n], and the L2 weight. */
export interface LogisticProblem {
  X: ad.Tensor;
  y: ad.Tensor;
  lambda: number;
}

/**
 * Random separable-ish data: labels drawn from a logistic model with random true weights.
 * @example makeLogisticProblem(100, 5, 0).X.shape; // [100, 5]
 */
export function makeLogisticProblem(n: number, d: number, seed: number, lambda = 0.1): LogisticProblem {
  const [k1, k2, k3] = ad.random.split(ad.random.key(seed), 3) as ad.Tensor[];
  const X = ad.random.normal(k1!, [n, d], { dtype: "float64" });
  const wTrue = ad.mul(ad.random.normal(k2!, [d], { dtype: "float64" }), 2);
  const p = ad.sigmoid(ad.matmul(X, wTrue));
  const y = ad.astype(ad.less(ad.random.uniform(k3!, [n], { dtype: "float64" }), p), "float64");
  return { X, y, lambda };
}

/**
 * The objective: mean binary cross-entropy of sigmoid(X w) plus ½λ‖w‖² (strictly convex).
 * @example logisticLoss(makeLogisticProblem(10, 2, 0), ad.zeros([2], { dtype: "float64" })).item(); // log 2 ≈ 0.693
 */
export function logisticLoss(p: LogisticProblem, w: ad.Tensor): ad.Tensor {
  const logits = ad.matmul(p.X, w);
  const bce = ad.mean(ad.nn.binaryCrossEntropyWithLogits(logits, p.y));
  return ad.add(bce, ad.mul(0.5 * p.lambda, ad.sum(ad.square(w))));
}

/** One Newton-CG run: the iterates' gradient norms and CG iteration counts, and the solution. */
export interface NewtonResult {
  w: ad.Tensor;
  gradNorms: number[];
  cgIterations: number[];
}

const norm2 = (t: ad.Tensor) => ad.sqrt(ad.sum(ad.square(t))).item();

/**
 * Minimise `logisticLoss` by Newton-CG from w = 0 until ‖∇f‖ ≤ `gtol` (at most `maxNewton` steps).
 * @example newtonCG(makeLogisticProblem(100, 5, 0)).gradNorms.at(-1)! <= 1e-12; // true
 */
export function newtonCG(p: LogisticProblem, gtol = 1e-12, maxNewton = 20): NewtonResult {
  const f = (w: ad.Tensor) => logisticLoss(p, w);
  let w = ad.zeros([p.X.shape[1]!], { dtype: "float64" });
  const gradNorms: number[] = [];
  const cgIterations: number[] = [];
  for (let k = 0; k < maxNewton; k++) {
    const g = ad.grad(f)(w);
    gradNorms.push(norm2(g));
    if (gradNorms[k]! <= gtol) break;
    // the Newton direction from Hessian-vector products only
    const step = ad.solvers.cg((v: ad.Tensor) => ad.hvp(f, [w], [v])[0] as ad.Tensor, ad.neg(g));
    cgIterations.push(step.iterations);
    w = ad.add(w, step.x);
  }
  return { w, gradNorms, cgIterations };
}

/**
 * The reference: Newton's method with the dense Hessian and a direct solve.
 * @example denseNewton(makeLogisticProblem(100, 5, 0)).shape; // [5]
 */
export function denseNewton(p: LogisticProblem, steps = 30): ad.Tensor {
  const f = (w: ad.Tensor) => logisticLoss(p, w);
  let w = ad.zeros([p.X.shape[1]!], { dtype: "float64" });
  for (let k = 0; k < steps; k++)
    w = ad.sub(w, ad.linalg.solve(ad.hessian(f)(w) as ad.Tensor, ad.grad(f)(w)));
  return w;
}

function main(): void {
  const p = makeLogisticProblem(200, 8, 0);
  const r = newtonCG(p);
  console.log("‖∇f‖ per Newton step:", r.gradNorms.map((g) => g.toExponential(2)).join(", "));
  console.log("CG iterations per step:", r.cgIterations.join(", "));
  const ref = denseNewton(p);
  console.log(
    "max |w_newtonCG − w_reference|:",
    ad
      .max(ad.abs(ad.sub(r.w, ref)))
      .item()
      .toExponential(2),
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
