/**
 * @file Two Monte-Carlo estimators of ∇_θ E_{z∼q_θ}[f(z)] for a diagonal Gaussian q_θ = N(μ, σ²)
 * with σ = exp(s) (the encoder distribution of a VAE), checked against the exact gradient and
 * against each other:
 *
 * - reparameterisation (pathwise, as in a VAE): z = μ + σ·ε with ε ∼ N(0, I), so the sample is a
 *   differentiable function of θ and `ad.grad` of f(μ + σ·ε) is an unbiased estimate;
 * - REINFORCE (score function): E[(f(z) − b)·∇_θ log q_θ(z)], with z held constant
 *   (`ad.stopGradient`) and a leave-one-out baseline b (the mean of f over the other samples of
 *   the batch), which keeps the estimate unbiased and cuts its variance.
 *
 * The objective has a closed form: for f(z) = Σᵢ sin(zᵢ) + ½‖z‖²,
 *   E f = Σᵢ sin(μᵢ)·e^{−σᵢ²/2} + ½(μᵢ² + σᵢ²),
 *   ∂/∂μᵢ = cos(μᵢ)·e^{−σᵢ²/2} + μᵢ,   ∂/∂sᵢ = σᵢ·(σᵢ − σᵢ·sin(μᵢ)·e^{−σᵢ²/2}).
 * Per-sample gradients come from `ad.vmap` of `ad.grad`, which gives the standard error of each
 * estimate, so agreement is a statistical statement: every component within 4 standard errors.
 *
 * Measured (N = 4000 samples each): the reparameterisation estimate is within 1.57 standard
 * errors of the exact gradient in all 8 components, REINFORCE within 0.75, and the two within
 * 0.77 (combined standard errors) of each other; REINFORCE's variance is 5 to 460 times that of
 * the reparameterisation estimator, component by component. 1.3 s of CPU time.
 *
 * Run: npx tsx examples/gradient-estimators.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** Parameters of q: the mean μ and the log standard deviation s (σ = exp s). */
export interface Gaussian {
  mu: ad.Tensor;
  logSigma: ad.Tensor;
}

/** The integrand f(z) = Σ sin(zᵢ) + ½‖z‖² (over the last axis). */
export function f(z: ad.Tensor): ad.Tensor {
  return ad.add(ad.sum(ad.sin(z), { axis: -1 }), ad.mul(ad.sum(ad.square(z), { axis: -1 }), 0.5));
}

/**
 * The exact gradient of E_{z∼N(μ, σ²)} f(z) with respect to μ and s = log σ.
 * @example
 * exactGradient({ mu: ad.tensor([0]), logSigma: ad.tensor([0]) }).mu.toArray(); // [e^{-1/2}] ≈ [0.6065]
 */
export function exactGradient(q: Gaussian): Gaussian {
  const sigma = ad.exp(q.logSigma);
  const damp = ad.exp(ad.mul(ad.square(sigma), -0.5));
  return {
    mu: ad.add(ad.mul(ad.cos(q.mu), damp), q.mu),
    logSigma: ad.mul(sigma, ad.sub(sigma, ad.mul(ad.mul(sigma, ad.sin(q.mu)), damp))),
  };
}

/** log N(z; μ, σ²) summed over the last axis. */
function logDensity(q: Gaussian, z: ad.Tensor): ad.Tensor {
  const u = ad.div(ad.sub(z, q.mu), ad.exp(q.logSigma));
  const perDim = ad.sub(ad.mul(ad.square(u), -0.5), ad.add(q.logSigma, 0.5 * Math.log(2 * Math.PI)));
  return ad.sum(perDim, { axis: -1 });
}

/** An estimate: per-component mean and standard error over the samples. */
export interface Estimate {
  mean: Gaussian;
  stderr: Gaussian;
  /** Per-component sample variance of the single-sample estimates. */
  variance: Gaussian;
}

function summarise(perSample: Gaussian): Estimate {
  const n = perSample.mu.shape[0]!;
  const stat = (t: ad.Tensor) => {
    const v = ad.var(t, { axis: 0, ddof: 1 });
    return { mean: ad.mean(t, { axis: 0 }), variance: v, stderr: ad.sqrt(ad.div(v, n)) };
  };
  const m = stat(perSample.mu);
  const s = stat(perSample.logSigma);
  return {
    mean: { mu: m.mean, logSigma: s.mean },
    stderr: { mu: m.stderr, logSigma: s.stderr },
    variance: { mu: m.variance, logSigma: s.variance },
  };
}

/**
 * The reparameterisation estimator with `n` samples: per-sample gradients of f(μ + σ·ε).
 * @example
 * const est = reparameterisationEstimate(q, ad.random.key(0), 4000);
 */
export function reparameterisationEstimate(q: Gaussian, key: ad.Tensor, n: number): Estimate {
  const eps = ad.random.normal(key, [n, q.mu.shape[0]!], { dtype: q.mu.dtype });
  // The sample is a differentiable function of (μ, s): z = μ + exp(s)·ε.
  const one = (e: ad.Tensor) => ad.grad((p: Gaussian) => f(ad.add(p.mu, ad.mul(ad.exp(p.logSigma), e))))(q);
  return summarise(ad.vmap(one)(eps));
}

/**
 * The REINFORCE (score-function) estimator with `n` samples and a leave-one-out baseline.
 * @example
 * const est = reinforceEstimate(q, ad.random.key(1), 4000);
 */
export function reinforceEstimate(q: Gaussian, key: ad.Tensor, n: number): Estimate {
  const eps = ad.random.normal(key, [n, q.mu.shape[0]!], { dtype: q.mu.dtype });
  // Samples are data here: only log q(z) is differentiated.
  const z = ad.stopGradient(ad.add(q.mu, ad.mul(ad.exp(q.logSigma), eps)));
  const fz = f(z);
  // Leave-one-out baseline: bₙ = (Σ f − fₙ)/(n − 1) does not depend on zₙ, so it adds no bias.
  const baseline = ad.div(ad.sub(ad.sum(fz), fz), n - 1);
  const weight = ad.sub(fz, baseline);
  const one = (zn: ad.Tensor, wn: ad.Tensor) => ad.grad((p: Gaussian) => ad.mul(wn, logDensity(p, zn)))(q);
  return summarise(ad.vmap(one)(z, weight));
}

/** The largest |a − b| / scale over all components (in standard errors). */
export function maxZScore(a: Gaussian, b: Gaussian, scale: Gaussian): number {
  const z = (x: ad.Tensor, y: ad.Tensor, s: ad.Tensor) => ad.max(ad.div(ad.abs(ad.sub(x, y)), s)).item();
  return Math.max(z(a.mu, b.mu, scale.mu), z(a.logSigma, b.logSigma, scale.logSigma));
}

/** Combined standard error of a difference of two independent estimates. */
export function combinedStderr(a: Estimate, b: Estimate): Gaussian {
  const c = (x: ad.Tensor, y: ad.Tensor) => ad.sqrt(ad.add(ad.square(x), ad.square(y)));
  return { mu: c(a.stderr.mu, b.stderr.mu), logSigma: c(a.stderr.logSigma, b.stderr.logSigma) };
}

/** The distribution used by `main` and the tests (float64). */
export function exampleGaussian(): Gaussian {
  return {
    mu: ad.tensor([0.5, -1.0, 2.0, 0.0], { dtype: "float64" }),
    logSigma: ad.tensor([-0.5, 0.0, 0.3, -1.0], { dtype: "float64" }),
  };
}

function main(): void {
  const q = exampleGaussian();
  const n = 4000;
  const exact = exactGradient(q);
  const rep = reparameterisationEstimate(q, ad.random.key(0), n);
  const sf = reinforceEstimate(q, ad.random.key(1), n);
  const row = (name: string, t: ad.Tensor) =>
    `${name.padEnd(26)}${(t.toArray() as number[]).map((v) => v.toFixed(4).padStart(9)).join("")}`;
  for (const k of ["mu", "logSigma"] as const) {
    console.log(`∂E f/∂${k}`);
    console.log(row("  exact", exact[k]));
    console.log(row("  reparameterisation", rep.mean[k]));
    console.log(row("    ± standard error", rep.stderr[k]));
    console.log(row("  REINFORCE", sf.mean[k]));
    console.log(row("    ± standard error", sf.stderr[k]));
    console.log(row("  variance ratio RF/rep", ad.div(sf.variance[k], rep.variance[k])));
  }
  console.log(
    `reparameterisation vs exact: max ${maxZScore(rep.mean, exact, rep.stderr).toFixed(2)} standard errors`,
  );
  console.log(
    `REINFORCE vs exact:          max ${maxZScore(sf.mean, exact, sf.stderr).toFixed(2)} standard errors`,
  );
  console.log(
    `REINFORCE vs reparam.:       max ${maxZScore(sf.mean, rep.mean, combinedStderr(sf, rep)).toFixed(2)} standard errors`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
