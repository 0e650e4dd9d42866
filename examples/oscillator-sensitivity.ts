/**
 * @file Sensitivity of a damped oscillator's final state to its parameters, with `ad.odeint`.
 * x'' + 2ζω x' + ω² x = 0 as the first-order system y = (x, v), y' = (v, −2ζω v − ω² x), from
 * (x₀, v₀) at t = 0 to t = T. The Jacobian of the final state (x(T), v(T)) wrt (ω, ζ, x₀, v₀) is
 * computed three ways:
 *   - the continuous adjoint method (`odeint(..., {adjoint: true})` under `ad.jacrev`): memory
 *     independent of the number of solver steps;
 *   - differentiating through the dopri5 solver's steps (the default, "direct");
 *   - the analytic solution of the underdamped oscillator,
 *     x(t) = e^{−ζωt}(x₀ cos ω_d t + (v₀ + ζωx₀)/ω_d · sin ω_d t), ω_d = ω√(1 − ζ²),
 *     differentiated exactly (forward mode over the closed-form expression).
 *
 * Run: node --import tsx examples/oscillator-sensitivity.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** The state (position, velocity) and the parameters (natural frequency, damping ratio). */
export interface State {
  x: ad.Tensor;
  v: ad.Tensor;
}
export interface Params {
  w: ad.Tensor;
  zeta: ad.Tensor;
}

/** y' = f(y, t, params) in JAX's argument order. */
export function oscillator(y: State, _t: ad.Tensor, p: Params): State {
  return { x: y.v, v: ad.sub(ad.mul(ad.mul(-2, ad.mul(p.zeta, p.w)), y.v), ad.mul(ad.square(p.w), y.x)) };
}

/** The four inputs of the sensitivity analysis, as one vector [ω, ζ, x₀, v₀]. */
type Inputs = ad.Tensor;

/**
 * The final state [x(T), v(T)] by `odeint` (adjoint or direct), as a function of [ω, ζ, x₀, v₀].
 * @example finalState(1, { adjoint: true })(ad.tensor([2, 0.1, 1, 0], { dtype: "float64" })).shape; // [2]
 */
export function finalState(T: number, opts: ad.OdeintOptions) {
  return (q: Inputs): ad.Tensor => {
    const [w, zeta, x0, v0] = ad.split(q, 4) as ad.Tensor[];
    const s = (t: ad.Tensor) => ad.reshape(t, []);
    const ys = ad.odeint(oscillator, { x: s(x0!), v: s(v0!) }, [0, T], { w: s(w!), zeta: s(zeta!) }, opts);
    return ad.stack([ys.x.at(1), ys.v.at(1)]);
  };
}

/**
 * The final state from the closed-form underdamped solution (0 < ζ < 1).
 * @example analyticFinalState(1)(ad.tensor([2, 0.1, 1, 0], { dtype: "float64" })).shape; // [2]
 */
export function analyticFinalState(T: number) {
  return (q: Inputs): ad.Tensor => {
    const [w, zeta, x0, v0] = (ad.split(q, 4) as ad.Tensor[]).map((t) => ad.reshape(t, []));
    const sw = ad.mul(zeta!, w!);
    const wd = ad.mul(w!, ad.sqrt(ad.sub(1, ad.square(zeta!))));
    const decay = ad.exp(ad.mul(sw, -T));
    const c = ad.cos(ad.mul(wd, T));
    const s = ad.sin(ad.mul(wd, T));
    const B = ad.div(ad.add(v0!, ad.mul(sw, x0!)), wd);
    const x = ad.mul(decay, ad.add(ad.mul(x0!, c), ad.mul(B, s)));
    // v = x' = e^{−ζωt}((B ω_d − ζω x₀) cos ω_d t − (x₀ ω_d + ζω B) sin ω_d t)
    const v = ad.mul(
      decay,
      ad.sub(
        ad.mul(ad.sub(ad.mul(B, wd), ad.mul(sw, x0!)), c),
        ad.mul(ad.add(ad.mul(x0!, wd), ad.mul(sw, B)), s),
      ),
    );
    return ad.stack([x, v]);
  };
}

/** The three 2×4 Jacobians d(x(T), v(T)) / d(ω, ζ, x₀, v₀). */
export interface Sensitivities {
  adjoint: ad.Tensor;
  direct: ad.Tensor;
  analytic: ad.Tensor;
}

/**
 * The sensitivities at [ω, ζ, x₀, v₀] = `q` and final time T (dopri5 at tolerance `tol`).
 * @example
 * const s = sensitivities(ad.tensor([2, 0.1, 1, 0], { dtype: "float64" }), 3);
 * ad.allclose(s.adjoint, s.analytic, { atol: 1e-6 }); // true
 */
export function sensitivities(q: ad.Tensor, T: number, tol = 1e-10): Sensitivities {
  return {
    adjoint: ad.jacrev(finalState(T, { adjoint: true, rtol: tol, atol: tol }))(q) as ad.Tensor,
    direct: ad.jacrev(finalState(T, { rtol: tol, atol: tol }))(q) as ad.Tensor,
    analytic: ad.jacfwd(analyticFinalState(T))(q) as ad.Tensor,
  };
}

function main(): void {
  const q = ad.tensor([2, 0.1, 1, 0.5], { dtype: "float64" });
  const s = sensitivities(q, 5);
  console.log("d(x(T), v(T)) / d(ω, ζ, x₀, v₀), analytic:\n", s.analytic.toString());
  const diff = (a: ad.Tensor) =>
    ad
      .max(ad.abs(ad.sub(a, s.analytic)))
      .item()
      .toExponential(2);
  console.log("max |adjoint − analytic|:", diff(s.adjoint));
  console.log("max |direct − analytic| :", diff(s.direct));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
