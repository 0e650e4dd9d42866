/**
 * @file The small examples, each at a reduced setting, against independent truth: the empirical
 * NTK two ways (matrix-free vjp/jvp against explicit jacrev Jacobians), the reparameterisation
 * and REINFORCE gradient estimators against the closed-form gradient (statistically, in standard
 * errors), Gumbel-softmax (Gumbel-max frequencies, straight-through values and gradients, learning
 * a categorical) and straight-through quantisation-aware training.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import {
  combinedStderr,
  exactGradient,
  exampleGaussian,
  type Gaussian,
  maxZScore,
  reinforceEstimate,
  reparameterisationEstimate,
} from "../examples/gradient-estimators.js";
import {
  cosine,
  exactObjective,
  gumbelMaxFrequencies,
  gumbelSoftmax,
  learnCategorical,
  meanLargestCoordinate,
  straightThroughGradient,
} from "../examples/gumbel-softmax.js";
import {
  asymmetry,
  initMLP,
  inputs,
  isPositiveDefinite,
  type MLPParams,
  mlp,
  ntkExplicit,
  ntkMatrixFree,
} from "../examples/ntk.js";
import { quantisationAwareRegression } from "../examples/straight-through.js";
import { assertClose } from "./helpers.js";

describe("empirical NTK (examples/ntk.ts)", () => {
  const [kp, k1, k2] = ad.random.split(ad.random.key(3), 3);
  const params = initMLP(kp!, [3, 16, 16, 2]);
  const x1 = inputs(k1!, 6);
  const x2 = inputs(k2!, 5);

  test("matrix-free (vjp then jvp, vmapped) equals the explicit J Jᵀ from jacrev", () => {
    const a = ntkExplicit(params, x1, x2);
    const b = ntkMatrixFree(params, x1, x2);
    assert.deepEqual(a.shape, [6, 2, 5, 2]);
    assert.deepEqual(b.shape, [6, 2, 5, 2]);
    assertClose(b, a, { rtol: 1e-10, atol: 1e-12 });
  });

  test("one entry by hand: Θ(x₁ᵢ, x₂ⱼ)[a, b] = ⟨∇θ f_a(x₁ᵢ), ∇θ f_b(x₂ⱼ)⟩", () => {
    const gradOf = (x: ad.Tensor, i: number, out: number) =>
      ad.tree.leaves(
        ad.grad((p: MLPParams) => ad.reshape(ad.slice(mlp(p, x), [i, out], [1, 1]), []))(params),
      ) as ad.Tensor[];
    const g1 = gradOf(x1, 4, 1);
    const g2 = gradOf(x2, 2, 0);
    const dot = g1.reduce((s, t, i) => s + ad.sum(ad.mul(t, g2[i]!)).item(), 0);
    const entry = ad.reshape(ad.slice(ntkMatrixFree(params, x1, x2), [4, 1, 2, 0], [1, 1, 1, 1]), []).item();
    assert.ok(Math.abs(entry - dot) <= 1e-10 * Math.abs(dot), `${entry} vs ${dot}`);
  });

  test("Θ(x, x) is symmetric and positive definite", () => {
    const k = ad.reshape(ntkMatrixFree(params, x1, x1), [12, 12]);
    assert.ok(asymmetry(k) < 1e-12);
    assert.ok(isPositiveDefinite(k));
    // A matrix with a negative eigenvalue is rejected (so the check above can fail).
    assert.ok(!isPositiveDefinite(ad.sub(k, ad.mul(ad.eye(12, { dtype: "float64" }), 1e3))));
  });
});

describe("reparameterisation and REINFORCE (examples/gradient-estimators.ts)", () => {
  const q = exampleGaussian();
  const exact = exactGradient(q);

  test("the closed-form gradient matches ad.grad of the closed-form expectation", () => {
    const expectation = (p: Gaussian) => {
      const s = ad.exp(p.logSigma);
      const damp = ad.exp(ad.mul(ad.square(s), -0.5));
      return ad.sum(ad.add(ad.mul(ad.sin(p.mu), damp), ad.mul(ad.add(ad.square(p.mu), ad.square(s)), 0.5)));
    };
    assertClose(ad.grad(expectation)(q), exact, { rtol: 1e-12, atol: 1e-14 });
  });

  const rep = reparameterisationEstimate(q, ad.random.key(10), 2000);
  const sf = reinforceEstimate(q, ad.random.key(11), 2000);

  test("both estimates are within 4 standard errors of the exact gradient, and of each other", () => {
    assert.ok(
      maxZScore(rep.mean, exact, rep.stderr) < 4,
      `reparameterisation ${maxZScore(rep.mean, exact, rep.stderr)}`,
    );
    assert.ok(maxZScore(sf.mean, exact, sf.stderr) < 4, `REINFORCE ${maxZScore(sf.mean, exact, sf.stderr)}`);
    assert.ok(maxZScore(sf.mean, rep.mean, combinedStderr(sf, rep)) < 4);
    // The standard errors are small enough for this to mean something: a 10% error in any
    // component of the exact gradient would be detected.
    const wrong: Gaussian = { mu: ad.mul(exact.mu, 1.1), logSigma: exact.logSigma };
    assert.ok(maxZScore(rep.mean, wrong, rep.stderr) > 4);
  });

  test("REINFORCE has larger variance in every component", () => {
    for (const k of ["mu", "logSigma"] as const) {
      const ratio = ad.div(sf.variance[k], rep.variance[k]).data();
      assert.ok(
        ratio.every((r) => r > 2),
        `${k}: ${Array.from(ratio)}`,
      );
    }
  });
});

describe("Gumbel-softmax (examples/gumbel-softmax.ts)", () => {
  const logits = ad.tensor([1.0, 0.0, 2.0, -1.0], { dtype: "float64" });

  test("Gumbel-max frequencies match softmax(logits) within 4 binomial standard errors", () => {
    const n = 5000;
    const p = ad.softmax(logits, -1).data();
    const freq = gumbelMaxFrequencies(logits, ad.random.key(5), n);
    p.forEach((pi, i) => {
      const se = Math.sqrt((pi * (1 - pi)) / n);
      assert.ok(Math.abs(freq[i]! - pi) < 4 * se, `category ${i}: ${freq[i]} vs ${pi}`);
    });
  });

  test("relaxed samples lie on the simplex and sharpen as τ → 0", () => {
    const y = gumbelSoftmax(ad.broadcastTo(logits, [100, 4]), ad.random.key(6), { tau: 0.5 });
    assertClose(ad.sum(y, { axis: -1 }), ad.ones([100], { dtype: "float64" }), { rtol: 1e-12 });
    const m1 = meanLargestCoordinate(logits, ad.random.key(7), 1000, 1);
    const m01 = meanLargestCoordinate(logits, ad.random.key(7), 1000, 0.1);
    assert.ok(m01 > m1 && m01 > 0.9, `${m1} ${m01}`);
  });

  test("hard samples are one-hot at the relaxed sample's argmax, with the relaxed sample's gradient", () => {
    const key = ad.random.key(8);
    const cost = ad.tensor([3, 1, 4, 1.5], { dtype: "float64" });
    const hard = gumbelSoftmax(ad.broadcastTo(logits, [50, 4]), key, { hard: true });
    const soft = gumbelSoftmax(ad.broadcastTo(logits, [50, 4]), key);
    const h = hard.toArray() as number[][];
    const s = soft.toArray() as number[][];
    h.forEach((row, i) => {
      assert.deepEqual(row.toSorted(), [0, 0, 0, 1]);
      assert.equal(row.indexOf(1), s[i]!.indexOf(Math.max(...s[i]!)));
    });
    const objective = (hardMode: boolean) => (l: ad.Tensor) =>
      ad.sum(ad.mul(gumbelSoftmax(ad.broadcastTo(l, [50, 4]), key, { hard: hardMode }), cost));
    assertClose(ad.grad(objective(true))(logits), ad.grad(objective(false))(logits), {
      rtol: 1e-12,
      atol: 1e-14,
    });
  });

  test("the straight-through gradient points along the exact gradient; learning finds the cheapest category", () => {
    const cost = ad.tensor([3, 1, 4, 1.5, 5], { dtype: "float64" });
    const theta = ad.tensor([0.2, -0.3, 0.5, 0.0, 0.1], { dtype: "float64" });
    const exact = exactObjective(theta, cost);
    assertClose(exact.grad, ad.mul(ad.softmax(theta, -1), ad.sub(cost, exact.value)), {
      rtol: 1e-12,
      atol: 1e-14,
    });
    assert.ok(cosine(straightThroughGradient(theta, cost, ad.random.key(9), 5000), exact.grad) > 0.97);
    const p = learnCategorical(cost, { steps: 150 }).data();
    assert.ok(p[1]! > 0.9, `P(cheapest) = ${p[1]}`);
  });
});

describe("straight-through quantisation-aware training (examples/straight-through.ts)", () => {
  test("fine-tuning through roundSTE beats rounding; plain round cannot move", () => {
    const r = quantisationAwareRegression({ steps: 200 });
    assert.ok(r.floatLoss < 0.02, `float ${r.floatLoss}`);
    assert.ok(r.steLoss < 0.7 * r.roundedLoss, `STE ${r.steLoss} vs rounded ${r.roundedLoss}`);
    assert.ok(r.steLoss > r.floatLoss);
    assert.equal(r.plainRoundLoss, r.roundedLoss);
  });
});
