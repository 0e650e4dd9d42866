/**
 * @file The scientific-computing examples run as tests on small settings: the ridge-regression
 * hypergradient (implicit vs unrolled vs closed form), a deep-equilibrium layer that trains,
 * Newton-CG on logistic regression with hvp matvecs, and the damped oscillator's sensitivities
 * by odeint's adjoint method, by differentiating the solver, and from the analytic solution.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { deqForward, initDeq, trainDeq } from "../examples/deq-layer.js";
import { denseNewton, logisticLoss, makeLogisticProblem, newtonCG } from "../examples/newton-cg-logistic.js";
import { analyticFinalState, finalState, sensitivities } from "../examples/oscillator-sensitivity.js";
import { closedForm, makeRidgeProblem, ridgeHypergradients } from "../examples/ridge-hypergradient.js";
import { assertClose } from "./helpers.js";

const maxAbs = (a: ad.Tensor, b: ad.Tensor) => ad.max(ad.abs(ad.sub(a, b))).item();

describe("ridge regression hypergradient (examples/ridge-hypergradient.ts)", () => {
  test("dz⋆/dθ by fixedPoint, customRoot and 200 unrolled steps all equal −(AᵀA + θI)⁻¹z⋆", () => {
    const p = makeRidgeProblem(30, 4, 1);
    const theta = 0.5;
    const h = ridgeHypergradients(p, theta, 200);
    assert.ok(maxAbs(h.fixedPoint, h.closedForm) < 1e-8, `fixedPoint ${maxAbs(h.fixedPoint, h.closedForm)}`);
    assert.ok(maxAbs(h.root, h.closedForm) < 1e-12, `customRoot ${maxAbs(h.root, h.closedForm)}`);
    assert.ok(maxAbs(h.unrolled, h.closedForm) < 1e-10, `unrolled ${maxAbs(h.unrolled, h.closedForm)}`);
    // the validation-loss hypergradient: ∇_z L_val · dz⋆/dθ
    const H = ad.add(ad.matmul(ad.transpose(p.A), p.A), ad.mul(theta, ad.eye(4, { dtype: "float64" })));
    const z = ad.linalg.solve(H, ad.matmul(ad.transpose(p.A), p.y));
    const gz = ad.matmul(ad.transpose(p.Av), ad.sub(ad.matmul(p.Av, z), p.yv));
    const want = ad.sum(ad.mul(gz, closedForm(p, theta))).item();
    assertClose(h.validationIft, want, { atol: 1e-8, rtol: 0 });
    assertClose(h.validationUnrolled, want, { atol: 1e-10, rtol: 0 });
  });

  test("with few unrolled steps the unrolled derivative is off, the implicit one is not", () => {
    const p = makeRidgeProblem(30, 4, 1);
    const h = ridgeHypergradients(p, 0.5, 3);
    assert.ok(maxAbs(h.unrolled, h.closedForm) > 1e-3);
    assert.ok(maxAbs(h.fixedPoint, h.closedForm) < 1e-8);
  });
});

describe("deep-equilibrium layer (examples/deq-layer.ts)", () => {
  test("the output is an equilibrium z = tanh(W z + U x + b)", () => {
    const p = initDeq(6, 2, 3);
    const X = ad.random.normal(ad.random.key(4), [2, 5], { dtype: "float64" });
    const Z = deqForward(p, X);
    assertClose(Z, ad.tanh(ad.add(ad.matmul(p.W, Z), ad.add(ad.matmul(p.U, X), p.b))), {
      atol: 1e-9,
      rtol: 0,
    });
  });

  test("a few gradient steps through the fixed point lower the loss", () => {
    const losses = trainDeq({ steps: 6, hidden: 6, batch: 16 });
    assert.equal(losses.length, 7);
    for (let k = 1; k < losses.length; k++)
      assert.ok(losses[k]! <= losses[k - 1]!, `step ${k}: ${losses[k - 1]} → ${losses[k]}`);
    assert.ok(losses[6]! < 0.5 * losses[0]!, `${losses[0]} → ${losses[6]}`);
  });
});

describe("Newton-CG on logistic regression (examples/newton-cg-logistic.ts)", () => {
  test("converges quadratically with hvp matvecs and matches the dense-Newton optimum", () => {
    const p = makeLogisticProblem(80, 4, 2);
    const r = newtonCG(p);
    const g = r.gradNorms;
    assert.ok(g.at(-1)! <= 1e-12, `final ‖∇f‖ ${g.at(-1)}`);
    assert.ok(g.length <= 10, `${g.length} Newton steps`);
    // quadratic convergence near the optimum: ‖g_{k+1}‖ ≲ C‖g_k‖²
    const k = g.findIndex((x) => x < 1e-3);
    assert.ok(k >= 0 && g[k + 1]! < 10 * g[k]! ** 2, g.join(", "));
    // CG solves each 4×4 system in at most a few more than 4 products
    assert.ok(
      r.cgIterations.every((it) => it <= 8),
      r.cgIterations.join(", "),
    );
    const ref = denseNewton(p);
    assert.ok(maxAbs(r.w, ref) < 1e-9, `${maxAbs(r.w, ref)}`);
    assert.ok(logisticLoss(p, r.w).item() <= logisticLoss(p, ad.add(r.w, 1e-3)).item());
  });
});

describe("damped oscillator sensitivities (examples/oscillator-sensitivity.ts)", () => {
  test("adjoint, direct and analytic Jacobians of the final state agree", () => {
    const q = ad.tensor([2, 0.15, 1, 0.5], { dtype: "float64" });
    // the closed form itself against the solver
    assertClose(finalState(2, { rtol: 1e-10, atol: 1e-10 })(q), analyticFinalState(2)(q), {
      atol: 1e-9,
      rtol: 0,
    });
    const s = sensitivities(q, 2, 1e-8);
    assert.deepEqual(s.analytic.shape, [2, 4]);
    assert.ok(maxAbs(s.adjoint, s.analytic) < 1e-6, `adjoint ${maxAbs(s.adjoint, s.analytic)}`);
    assert.ok(maxAbs(s.direct, s.analytic) < 1e-6, `direct ${maxAbs(s.direct, s.analytic)}`);
  });
});
