/**
 * @file The hypergradient of ridge regression, three ways. The solution
 * z⋆(θ) = argmin_z ½‖A z − y‖² + ½θ‖z‖² satisfies (AᵀA + θI) z⋆ = Aᵀy, so
 * dz⋆/dθ = −(AᵀA + θI)⁻¹ z⋆ (the closed form). We get the same vector
 *   1. by implicit differentiation: z⋆ as the fixed point of a gradient step (`ad.fixedPoint`),
 *      and as the root of the optimality condition (`ad.customRoot`), differentiated by the
 *      implicit function theorem (one linear solve, no unrolling);
 *   2. by unrolling 200 gradient-descent steps and differentiating through all of them;
 * and then the hypergradient of a validation loss, d/dθ ½‖A_val z⋆(θ) − y_val‖², by `ad.grad`.
 *
 * Run: node --import tsx examples/ridge-hypergradient.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** A ridge problem: training data (A, y) and validation data (Av, yv), float64. */
export interface RidgeProblem {
  A: ad.Tensor;
  y: ad.Tensor;
  Av: ad.Tensor;
  yv: ad.Tensor;
}

/**
 * A random problem with n training rows, d features (columns scaled by 1/√n so AᵀA ≈ I).
 * @example makeRidgeProblem(40, 5, 0).A.shape; // [40, 5]
 */
export function makeRidgeProblem(n: number, d: number, seed: number): RidgeProblem {
  const [k1, k2, k3, k4, k5] = ad.random.split(ad.random.key(seed), 5) as ad.Tensor[];
  const A = ad.mul(ad.random.normal(k1!, [n, d], { dtype: "float64" }), 1 / Math.sqrt(n));
  const zTrue = ad.random.normal(k2!, [d], { dtype: "float64" });
  const y = ad.add(ad.matmul(A, zTrue), ad.mul(ad.random.normal(k3!, [n], { dtype: "float64" }), 0.1));
  const Av = ad.mul(ad.random.normal(k4!, [n, d], { dtype: "float64" }), 1 / Math.sqrt(n));
  const yv = ad.add(ad.matmul(Av, zTrue), ad.mul(ad.random.normal(k5!, [n], { dtype: "float64" }), 0.1));
  return { A, y, Av, yv };
}

/** ∇_z of the training objective: Aᵀ(A z − y) + θ z. */
function gradient(p: RidgeProblem, theta: ad.Tensor | number, z: ad.Tensor): ad.Tensor {
  return ad.add(ad.matmul(ad.transpose(p.A), ad.sub(ad.matmul(p.A, z), p.y)), ad.mul(theta, z));
}

/** A step size 1/L with L ≥ the largest eigenvalue of AᵀA + θI (so gradient descent contracts). */
function stepSize(p: RidgeProblem, theta: ad.Tensor | number): number {
  const gram = ad.matmul(ad.transpose(p.A), p.A);
  // a bound read from values: the step size is a constant of the iteration, not differentiated
  return (
    1 / (ad.linalg.norm(gram, { ord: Infinity }).item() + (typeof theta === "number" ? theta : theta.item()))
  );
}

/**
 * z⋆(θ) as the fixed point of one gradient step z ↦ z − η∇(z): differentiable in θ implicitly.
 * @example ridgeByFixedPoint(makeRidgeProblem(40, 5, 0), 0.5).shape; // [5]
 */
export function ridgeByFixedPoint(p: RidgeProblem, theta: number | ad.Tensor): ad.Tensor {
  const eta = stepSize(p, theta);
  return ad.fixedPoint(
    (th: ad.Tensor, z: ad.Tensor) => ad.sub(z, ad.mul(eta, gradient(p, th, z))),
    theta,
    ad.zeros([p.A.shape[1]!], { dtype: "float64" }),
  ) as ad.Tensor;
}

/**
 * z⋆(θ) as the root of ∇(z) = 0, found by an exact Newton step (a linear solve) and
 * differentiated by `customRoot` with a CG tangent solve (the Hessian is SPD).
 * @example ridgeByRoot(makeRidgeProblem(40, 5, 0), 0.5).shape; // [5]
 */
export function ridgeByRoot(p: RidgeProblem, theta: number | ad.Tensor): ad.Tensor {
  return ad.customRoot(
    (z: ad.Tensor) => gradient(p, theta, z),
    ad.zeros([p.A.shape[1]!], { dtype: "float64" }),
    // the objective is quadratic: one Newton step from z0 lands on the root
    (F, z0) => ad.sub(z0, ad.linalg.solve(ad.jacfwd(F)(z0) as ad.Tensor, F(z0))),
    (g, r) => ad.solvers.cg(g, r).x,
  ) as ad.Tensor;
}

/**
 * z after `steps` gradient-descent steps from 0, every step recorded by the transforms.
 * @example ridgeByUnrolling(makeRidgeProblem(40, 5, 0), 0.5, 200).shape; // [5]
 */
export function ridgeByUnrolling(p: RidgeProblem, theta: number | ad.Tensor, steps: number): ad.Tensor {
  const eta = stepSize(p, theta);
  let z = ad.zeros([p.A.shape[1]!], { dtype: "float64" });
  for (let k = 0; k < steps; k++) z = ad.sub(z, ad.mul(eta, gradient(p, theta, z)));
  return z;
}

/** The closed form dz⋆/dθ = −(AᵀA + θI)⁻¹ z⋆. */
export function closedForm(p: RidgeProblem, theta: number): ad.Tensor {
  const d = p.A.shape[1]!;
  const H = ad.add(ad.matmul(ad.transpose(p.A), p.A), ad.mul(theta, ad.eye(d, { dtype: "float64" })));
  const z = ad.linalg.solve(H, ad.matmul(ad.transpose(p.A), p.y));
  return ad.neg(ad.linalg.solve(H, z));
}

/** The four dz⋆/dθ vectors and the validation-loss hypergradients by IFT and by unrolling. */
export interface Hypergradients {
  fixedPoint: ad.Tensor;
  root: ad.Tensor;
  unrolled: ad.Tensor;
  closedForm: ad.Tensor;
  validationIft: number;
  validationUnrolled: number;
}

/**
 * dz⋆/dθ by `fixedPoint` (forward mode), `customRoot` (forward mode), unrolling `steps`
 * gradient steps, and the closed form; and d/dθ of the validation loss by reverse mode.
 * @example
 * const h = ridgeHypergradients(makeRidgeProblem(40, 5, 0), 0.5, 200);
 * ad.allclose(h.fixedPoint, h.closedForm, { atol: 1e-8 }); // true
 */
export function ridgeHypergradients(p: RidgeProblem, theta: number, steps = 200): Hypergradients {
  const tangent = (f: (t: number) => ad.Tensor) => ad.jvp(f, [theta], [1])[1] as ad.Tensor;
  const validation = (z: ad.Tensor) => ad.mul(0.5, ad.sum(ad.square(ad.sub(ad.matmul(p.Av, z), p.yv))));
  return {
    fixedPoint: tangent((t) => ridgeByFixedPoint(p, t)),
    root: tangent((t) => ridgeByRoot(p, t)),
    unrolled: tangent((t) => ridgeByUnrolling(p, t, steps)),
    closedForm: closedForm(p, theta),
    validationIft: ad.grad((t: number) => validation(ridgeByFixedPoint(p, t)))(theta),
    validationUnrolled: ad.grad((t: number) => validation(ridgeByUnrolling(p, t, steps)))(theta),
  };
}

function main(): void {
  const p = makeRidgeProblem(50, 6, 0);
  const h = ridgeHypergradients(p, 0.5, 200);
  const diff = (a: ad.Tensor) =>
    ad
      .max(ad.abs(ad.sub(a, h.closedForm)))
      .item()
      .toExponential(2);
  console.log("dz⋆/dθ, closed form −(AᵀA + θI)⁻¹z⋆:", h.closedForm.toString());
  console.log("max |IFT (fixedPoint) − closed form| :", diff(h.fixedPoint));
  console.log("max |IFT (customRoot) − closed form| :", diff(h.root));
  console.log("max |unrolled 200 steps − closed form|:", diff(h.unrolled));
  console.log(
    `validation-loss hypergradient: IFT ${h.validationIft.toFixed(10)}, unrolled ${h.validationUnrolled.toFixed(10)}`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
