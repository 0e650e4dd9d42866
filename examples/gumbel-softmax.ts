/**
 * @file Gumbel-softmax (Jang, Gu & Poole 2017; Maddison, Mnih & Teh 2017): a differentiable
 * stand-in for sampling from a categorical distribution. Adding Gumbel noise to the logits and
 * taking the argmax samples the categorical exactly (the Gumbel-max trick); replacing the argmax
 * by a softmax at temperature τ gives a sample on the simplex that is differentiable in the
 * logits. The straight-through variant (`hard: true`) returns the exact one-hot sample in the
 * forward pass and the softmax's gradient in the backward pass.
 *
 * Three checks, printed by `main`:
 * 1. Gumbel-max frequencies match softmax(logits) within 4 binomial standard errors.
 * 2. As τ → 0 the relaxed samples become one-hot (mean largest coordinate → 1).
 * 3. Learning a categorical that minimises an expected cost E_c[cost_c] with the straight-through
 *    estimator: its average gradient points along the exact gradient π ⊙ (cost − π·cost)
 *    (cosine similarity reported), and 300 Adam steps put almost all the mass on the cheapest
 *    category.
 *
 * Measured (seed 0): Gumbel-max frequencies within 1.23 standard errors of softmax(logits)
 * (20000 samples); mean largest coordinate 0.673 at τ = 1, 0.818 at τ = 0.5, 0.960 at τ = 0.1;
 * the straight-through gradient (20000 samples) has cosine similarity 0.9985 with the exact one
 * (it is biased: about 0.75× its length); P(cheapest) = 0.998 after 300 steps. 2 s of CPU time.
 *
 * Run: npx tsx examples/gumbel-softmax.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** Options of `gumbelSoftmax`. */
export interface GumbelSoftmaxOptions {
  /** Temperature τ > 0 (default 1): small τ gives nearly one-hot samples and noisier gradients. */
  tau?: number;
  /** Straight-through: one-hot values, softmax gradients (default false). */
  hard?: boolean;
}

/**
 * A relaxed (or, with `hard`, straight-through one-hot) sample of softmax(logits) along the last
 * axis; leading axes are independent distributions.
 * @example
 * gumbelSoftmax(ad.tensor([[1, 2, 3]]), ad.random.key(0), { hard: true }).toArray(); // e.g. [[0, 0, 1]]
 */
export function gumbelSoftmax(logits: ad.Tensor, key: ad.Tensor, opts: GumbelSoftmaxOptions = {}): ad.Tensor {
  const tau = opts.tau ?? 1;
  const g = ad.random.gumbel(key, logits.shape, { dtype: logits.dtype });
  const soft = ad.softmax(ad.div(ad.add(logits, g), tau), -1);
  if (opts.hard !== true) return soft;
  const k = logits.shape[logits.ndim - 1]!;
  const index = ad.argmax(soft, { axis: -1, keepdims: true });
  const oneHot = ad.astype(ad.equal(index, ad.arange(0, k, 1, { dtype: "int32" })), soft.dtype);
  // Value: oneHot. Derivative: soft's (the other two terms cancel in value, not in gradient).
  return ad.add(ad.sub(oneHot, ad.stopGradient(soft)), soft);
}

/**
 * Category frequencies of `n` Gumbel-max samples (argmax of logits + Gumbel noise).
 * @example
 * gumbelMaxFrequencies(ad.tensor([0, 1]), ad.random.key(0), 10000); // ≈ [0.27, 0.73]
 */
export function gumbelMaxFrequencies(logits: ad.Tensor, key: ad.Tensor, n: number): number[] {
  const k = logits.shape[0]!;
  const g = ad.random.gumbel(key, [n, k], { dtype: logits.dtype });
  const idx = ad.argmax(ad.add(g, logits), { axis: -1 }).data();
  const counts = new Array<number>(k).fill(0);
  for (const i of idx) counts[i]! += 1;
  return counts.map((c) => c / n);
}

/** Mean of the largest coordinate of `n` relaxed samples at temperature `tau`. */
export function meanLargestCoordinate(logits: ad.Tensor, key: ad.Tensor, n: number, tau: number): number {
  const batch = ad.broadcastTo(logits, [n, logits.shape[0]!]);
  return ad.mean(ad.max(gumbelSoftmax(batch, key, { tau }), { axis: -1 })).item();
}

/** Expected cost Σ πᶜ·costᶜ of the categorical softmax(θ), and its exact gradient π ⊙ (cost − E cost). */
export function exactObjective(theta: ad.Tensor, cost: ad.Tensor): { value: number; grad: ad.Tensor } {
  const [v, g] = ad.valueAndGrad((t: ad.Tensor) => ad.sum(ad.mul(ad.softmax(t, -1), cost)))(theta);
  return { value: v.item(), grad: g };
}

/** The straight-through Gumbel-softmax estimate of ∇θ E[cost] from `n` samples. */
export function straightThroughGradient(
  theta: ad.Tensor,
  cost: ad.Tensor,
  key: ad.Tensor,
  n: number,
  tau = 1,
): ad.Tensor {
  return ad.grad((t: ad.Tensor) => {
    const y = gumbelSoftmax(ad.broadcastTo(t, [n, t.shape[0]!]), key, { tau, hard: true });
    return ad.mean(ad.sum(ad.mul(y, cost), { axis: -1 }));
  })(theta);
}

/** Cosine similarity of two vectors. */
export function cosine(a: ad.Tensor, b: ad.Tensor): number {
  return ad.div(ad.sum(ad.mul(a, b)), ad.mul(ad.linalg.norm(a), ad.linalg.norm(b))).item();
}

/**
 * Learn logits θ minimising E_{c∼softmax(θ)}[cost_c] with straight-through Gumbel-softmax
 * gradients (batch of `batch` samples per step, Adam). Returns softmax(θ).
 * @example
 * learnCategorical(ad.tensor([3, 1, 4, 1.5, 5]), { steps: 300 }); // mass on index 1
 */
export function learnCategorical(
  cost: ad.Tensor,
  opts: { steps?: number; batch?: number; lr?: number; tau?: number; seed?: number } = {},
): ad.Tensor {
  let theta = ad.zerosLike(cost);
  const tx = ad.optim.adam(opts.lr ?? 0.05);
  let state = tx.init(theta);
  const keys = ad.random.split(ad.random.key(opts.seed ?? 0), opts.steps ?? 300);
  for (const key of keys) {
    const g = straightThroughGradient(theta, cost, key, opts.batch ?? 32, opts.tau ?? 1);
    const [u, next] = tx.update(g, state, theta);
    theta = ad.optim.applyUpdates(theta, u);
    state = next;
  }
  return ad.softmax(theta, -1);
}

function main(): void {
  const logits = ad.tensor([1.0, 0.0, 2.0, -1.0], { dtype: "float64" });
  const n = 20000;
  const p = ad.softmax(logits, -1).toArray() as number[];
  const freq = gumbelMaxFrequencies(logits, ad.random.key(0), n);
  const z = Math.max(...p.map((pi, i) => Math.abs(freq[i]! - pi) / Math.sqrt((pi * (1 - pi)) / n)));
  console.log(`softmax(logits)       ${p.map((v) => v.toFixed(4)).join(" ")}`);
  console.log(
    `Gumbel-max frequency  ${freq.map((v) => v.toFixed(4)).join(" ")}  (max ${z.toFixed(2)} std. errors)`,
  );
  for (const tau of [1, 0.5, 0.1])
    console.log(
      `τ = ${tau}: mean largest coordinate of relaxed samples ${meanLargestCoordinate(logits, ad.random.key(1), 4000, tau).toFixed(3)}`,
    );
  const cost = ad.tensor([3, 1, 4, 1.5, 5], { dtype: "float64" });
  const theta = ad.tensor([0.2, -0.3, 0.5, 0.0, 0.1], { dtype: "float64" });
  const exact = exactObjective(theta, cost).grad;
  const st = straightThroughGradient(theta, cost, ad.random.key(2), 20000);
  console.log(
    `exact gradient            ${(exact.toArray() as number[]).map((v) => v.toFixed(4)).join(" ")}`,
  );
  console.log(`straight-through estimate ${(st.toArray() as number[]).map((v) => v.toFixed(4)).join(" ")}`);
  console.log(`cosine similarity ${cosine(st, exact).toFixed(4)}`);
  const learned = learnCategorical(cost);
  console.log(`learned distribution ${(learned.toArray() as number[]).map((v) => v.toFixed(3)).join(" ")}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
