/**
 * @file The empirical neural tangent kernel of a small MLP, Θ(x, x') = J(x)·J(x')ᵀ with
 * J = ∂f(θ, x)/∂θ, computed two ways and compared:
 *
 * - explicitly: the Jacobians of the outputs on both input sets with respect to every parameter
 *   (`ad.jacrev`), contracted over the parameters;
 * - matrix-free: Θ·v = J(x)·(J(x')ᵀ·v). `ad.vjp` gives J(x')ᵀ·v (a parameter-shaped pytree) and
 *   `ad.jvp` pushes it through f(·, x), and `ad.vmap` over the basis vectors v builds all columns
 *   in one batched pass. Nothing of size outputs × parameters is ever formed, which is what makes
 *   NTKs of large networks affordable.
 *
 * Both give the same [n₁, k, n₂, k] kernel (k outputs per input) to float64 rounding.
 *
 * Measured (float64, MLP 3 → 64 → 64 → 2, 4546 parameters, 40 × 30 inputs): the two kernels
 * agree to a largest absolute difference of 1.3e-15 (largest entry 2.77); Θ(x, x) is symmetric
 * and positive definite. The matrix-free kernel takes about half the time of the explicit one.
 *
 * Run: npx tsx examples/ntk.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** The parameters of an MLP: a list of layers. */
export type MLPParams = { w: ad.Tensor; b: ad.Tensor }[];

/**
 * MLP parameters for the layer sizes `sizes` (NTK parameterisation: standard normal weights,
 * scaled by 1/√fanIn in `mlp`).
 * @example
 * initMLP(ad.random.key(0), [3, 64, 2]).length; // 2
 */
export function initMLP(key: ad.Tensor, sizes: readonly number[]): MLPParams {
  const keys = ad.random.split(key, 2 * (sizes.length - 1));
  return sizes.slice(1).map((out, i) => ({
    w: ad.random.normal(keys[2 * i]!, [sizes[i]!, out], { dtype: "float64" }),
    b: ad.mul(ad.random.normal(keys[2 * i + 1]!, [out], { dtype: "float64" }), 0.1),
  }));
}

/** The network on `x: [n, in]`: tanh hidden layers, linear output. */
export function mlp(params: MLPParams, x: ad.Tensor): ad.Tensor {
  let h = x;
  params.forEach((layer, i) => {
    const z = ad.add(ad.div(ad.matmul(h, layer.w), Math.sqrt(layer.w.shape[0]!)), layer.b);
    h = i < params.length - 1 ? ad.tanh(z) : z;
  });
  return h;
}

/**
 * The NTK from explicit Jacobians: Σ over parameter leaves of J₁ · J₂ᵀ, shape [n₁, k, n₂, k].
 * @example
 * ntkExplicit(params, x1, x2).shape; // [40, 2, 30, 2]
 */
export function ntkExplicit(params: MLPParams, x1: ad.Tensor, x2: ad.Tensor): ad.Tensor {
  const jac = (x: ad.Tensor) => ad.tree.leaves(ad.jacrev((p: MLPParams) => mlp(p, x))(params)) as ad.Tensor[];
  const j1 = jac(x1);
  const j2 = jac(x2);
  const n1 = x1.shape[0]!;
  const n2 = x2.shape[0]!;
  const k = j1[0]!.shape[1]!;
  let theta: ad.Tensor | null = null;
  j1.forEach((a, i) => {
    // Each leaf's Jacobian is [n, k, ...leafShape]: flatten the parameter axes and contract them.
    const a2 = ad.reshape(a, [n1 * k, -1]);
    const b2 = ad.reshape(j2[i]!, [n2 * k, -1]);
    const term = ad.matmul(a2, ad.transpose(b2));
    theta = theta === null ? term : ad.add(theta, term);
  });
  return ad.reshape(theta!, [n1, k, n2, k]);
}

/**
 * The NTK matrix-free: columns Θ·eⱼ = J₁ (J₂ᵀ eⱼ) by vjp then jvp, vmapped over all basis vectors.
 * @example
 * ntkMatrixFree(params, x1, x2).shape; // [40, 2, 30, 2]
 */
export function ntkMatrixFree(params: MLPParams, x1: ad.Tensor, x2: ad.Tensor): ad.Tensor {
  const [out2, pullback] = ad.vjp((p: MLPParams) => mlp(p, x2), params);
  const [n2, k] = out2.shape as [number, number];
  const column = (v: ad.Tensor): ad.Tensor => {
    const [tangent] = pullback(v) as [MLPParams]; // J₂ᵀ v: one tangent per parameter
    return ad.jvp((p: MLPParams) => mlp(p, x1), [params], [tangent])[1];
  };
  // The basis vectors of the output space of f(·, x₂), as a batch [n₂·k, n₂, k].
  const basis = ad.reshape(ad.eye(n2 * k, { dtype: "float64" }), [n2 * k, n2, k]);
  const cols = ad.vmap(column)(basis); // [n₂·k, n₁, k]: column j of Θ for each basis vector j
  return ad.transpose(ad.reshape(cols, [n2, k, -1, k]), [2, 3, 0, 1]);
}

/** The largest |A − Aᵀ|. */
export function asymmetry(a: ad.Tensor): number {
  return ad.max(ad.abs(ad.sub(a, ad.transpose(a)))).item();
}

/** Whether a symmetric matrix has a Cholesky factorisation (all its entries finite). */
export function isPositiveDefinite(a: ad.Tensor): boolean {
  return ad.linalg
    .cholesky(a)
    .data()
    .every((v) => Number.isFinite(v));
}

/** Inputs for the demonstration: `n` points of dimension `d`. */
export function inputs(key: ad.Tensor, n: number, d = 3): ad.Tensor {
  return ad.random.normal(key, [n, d], { dtype: "float64" });
}

function main(): void {
  const [kp, k1, k2] = ad.random.split(ad.random.key(0), 3);
  const params = initMLP(kp!, [3, 64, 64, 2]);
  const count = (ad.tree.leaves(params) as ad.Tensor[]).reduce((s, t) => s + t.size, 0);
  const x1 = inputs(k1!, 40);
  const x2 = inputs(k2!, 30);
  let t0 = performance.now();
  const a = ntkExplicit(params, x1, x2);
  const tExplicit = performance.now() - t0;
  t0 = performance.now();
  const b = ntkMatrixFree(params, x1, x2);
  const tFree = performance.now() - t0;
  const diff = ad.max(ad.abs(ad.sub(a, b))).item();
  const scale = ad.max(ad.abs(a)).item();
  console.log(`MLP 3-64-64-2 with ${count} parameters; kernel shape [${a.shape.join(", ")}]`);
  console.log(
    `explicit J Jᵀ (jacrev): ${tExplicit.toFixed(0)} ms; matrix-free (vjp + jvp, vmapped): ${tFree.toFixed(0)} ms`,
  );
  console.log(`largest |difference| ${diff.toExponential(2)} (largest entry ${scale.toFixed(3)})`);
  // Θ(x, x) as an 80 × 80 matrix is a Gram matrix, so symmetric positive semi-definite (here
  // definite: 80 < 4546 parameters): its Cholesky factorisation exists (NaN otherwise).
  const kxx = ad.reshape(ntkMatrixFree(params, x1, x1), [80, 80]);
  console.log(
    `Θ(x, x): asymmetry ${asymmetry(kxx).toExponential(2)}; positive definite: ${isPositiveDefinite(kxx)}`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
