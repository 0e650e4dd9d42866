/**
 * @file Matrix-free Krylov solvers (API §3, §10): `ad.solvers.cg` and `ad.solvers.gmres`. Their
 * solutions against `ad.linalg.solve`, the diagnostics `{iterations, residualNorm, converged}`,
 * warm starts and budgets, pytree right-hand sides, float32; implicit derivatives wrt `b` and
 * wrt values the matvec closes over (a matrix, an `hvp`, a `jvp`) by gradcheck/gradgradcheck in
 * both modes; jit and vmap; Newton-CG and Jacobian-free Newton-Krylov in a few lines; errors.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose } from "./helpers.js";

const f64 = (x: number | number[] | number[][]) => ad.tensor(x, { dtype: "float64" });
const mT = (m: ad.Tensor) => ad.transpose(m);
const normOf = (t: ad.Tensor) => ad.sqrt(ad.sum(ad.square(t))).item();

/** A random SPD matrix M Mᵀ + n·I/4 and a random non-symmetric one M/√n + I. */
function matrices(n: number, seed: number) {
  const [k1, k2, k3] = ad.random.split(ad.random.key(seed), 3) as [ad.Tensor, ad.Tensor, ad.Tensor];
  const m = ad.random.normal(k1, [n, n], { dtype: "float64" });
  const spd = ad.add(ad.matmul(m, mT(m)), ad.mul(n / 4, ad.eye(n, { dtype: "float64" })));
  const gen = ad.add(
    ad.mul(ad.random.normal(k2, [n, n], { dtype: "float64" }), 1 / Math.sqrt(n)),
    ad.eye(n, { dtype: "float64" }),
  );
  const b = ad.random.normal(k3, [n], { dtype: "float64" });
  return { spd, gen, b };
}

describe("solutions and diagnostics", () => {
  test("cg on an SPD system agrees with linalg.solve; diagnostics are numbers", () => {
    const { spd, b } = matrices(12, 1);
    const r = ad.solvers.cg((v: ad.Tensor) => ad.matmul(spd, v), b);
    assertClose(r.x, ad.linalg.solve(spd, b), { atol: 1e-8, rtol: 1e-8 });
    assert.equal(typeof r.iterations, "number");
    assert.ok(r.converged);
    assert.ok(r.iterations >= 1 && r.iterations <= 40, `iterations ${r.iterations}`);
    // the residual it reports is the true one (to rounding) and meets the default tolerance 1e-10·‖b‖
    const trueRes = normOf(ad.sub(b, ad.matmul(spd, r.x)));
    assert.ok(r.residualNorm <= 1e-10 * normOf(b), `${r.residualNorm}`);
    assert.ok(Math.abs(trueRes - r.residualNorm) <= 1e-9 * normOf(b));
  });

  test("gmres on a non-symmetric system, with and without restarts", () => {
    const { gen, b } = matrices(20, 2);
    const want = ad.linalg.solve(gen, b);
    for (const restart of [20, 8]) {
      const r = ad.solvers.gmres((v: ad.Tensor) => ad.matmul(gen, v), b, { restart, maxIter: 2000 });
      assert.ok(r.converged, `restart ${restart}`);
      assertClose(r.x, want, { atol: 1e-8, rtol: 1e-8 });
      assert.ok(r.residualNorm <= 1e-10 * normOf(b) * 1.0001);
      assertClose(r.residualNorm, normOf(ad.sub(b, ad.matmul(gen, r.x))), { atol: 1e-12, rtol: 1e-3 });
    }
    // without restarts, GMRES needs at most n products in exact arithmetic
    const full = ad.solvers.gmres((v: ad.Tensor) => ad.matmul(gen, v), b, { restart: 20 });
    assert.ok(full.iterations <= 20, `${full.iterations}`);
  });

  test("a warm start x0 at the solution takes 0 iterations; maxIter bounds them (converged false)", () => {
    const { spd, b } = matrices(6, 3);
    const mv = (v: ad.Tensor) => ad.matmul(spd, v);
    const exact = ad.linalg.solve(spd, b);
    for (const solver of [ad.solvers.cg, ad.solvers.gmres]) {
      const warm = solver(mv, b, { x0: exact });
      assert.equal(warm.iterations, 0);
      assert.ok(warm.converged);
      const cut = solver(mv, b, { maxIter: 1 });
      assert.equal(cut.iterations, 1);
      assert.equal(cut.converged, false);
      assert.ok(cut.residualNorm > 0);
      // atol: stop as soon as ‖r‖ ≤ atol
      const loose = solver(mv, b, { tol: 0, atol: 0.5 * normOf(b) });
      assert.ok(loose.converged && loose.residualNorm <= 0.5 * normOf(b));
      assert.ok(loose.iterations < 6);
    }
  });

  test("pytree right-hand sides with number leaves; float32 stays float32", () => {
    const r = ad.solvers.cg(
      (v: { a: ad.Tensor; b: ad.Tensor }) => ({ a: ad.mul(2, v.a), b: ad.mul(3, v.b) }),
      {
        a: f64([1, 2]),
        b: 3,
      },
    );
    assertClose(r.x, { a: [0.5, 1], b: 1 }, { atol: 1e-12 });
    const { spd, b } = matrices(5, 4);
    const r32 = ad.solvers.gmres(
      (v: ad.Tensor) => ad.matmul(ad.astype(spd, "float32"), v),
      ad.astype(b, "float32"),
    );
    assert.equal(r32.x.dtype, "float32");
    assert.ok(r32.converged);
    assertClose(r32.x, ad.linalg.solve(spd, b), { atol: 1e-4, rtol: 1e-4 });
  });
});

describe("implicit derivatives", () => {
  const { spd, gen, b } = matrices(4, 5);
  const w = f64([0.3, -1, 0.5, 2]);

  test("cg: ∂/∂b = A⁻¹w and ∂/∂A = −A⁻¹w xᵀ; gradcheck and gradgradcheck through A = M Mᵀ + I", () => {
    const x = ad.linalg.solve(spd, b);
    const u = ad.linalg.solve(spd, w);
    const gb = ad.grad((bb: ad.Tensor) =>
      ad.sum(ad.mul(w, ad.solvers.cg((v: ad.Tensor) => ad.matmul(spd, v), bb).x)),
    )(b);
    assertClose(gb, u, { atol: 1e-9 });
    const gA = ad.grad((A: ad.Tensor) =>
      ad.sum(ad.mul(w, ad.solvers.cg((v: ad.Tensor) => ad.matmul(A, v), b).x)),
    )(spd);
    assertClose(gA, ad.neg(ad.outer(u, x)), { atol: 1e-9 });
    // SPD by construction from a free matrix M: A = M Mᵀ + I
    const viaM = (M: ad.Tensor, bb: ad.Tensor) => {
      const A = ad.add(ad.matmul(M, mT(M)), ad.eye(3, { dtype: "float64" }));
      return ad.solvers.cg((v: ad.Tensor) => ad.matmul(A, v), bb).x;
    };
    const small = matrices(3, 8);
    const M = ad.mul(small.gen, 0.5);
    const r1 = ad.gradcheck(viaM, [M, small.b], { rtol: 1e-6, atol: 1e-9 });
    assert.ok(r1.ok, r1.message);
    const r2 = ad.gradgradcheck(viaM, [M, small.b], { rtol: 1e-5, atol: 1e-8 });
    assert.ok(r2.ok, r2.message);
  });

  test("gmres: gradcheck and gradgradcheck wrt the matrix and b, jvp against linalg.solve", () => {
    const f = (A: ad.Tensor, bb: ad.Tensor) => ad.solvers.gmres((v: ad.Tensor) => ad.matmul(A, v), bb).x;
    const small = matrices(3, 10);
    const r1 = ad.gradcheck(f, [small.gen, small.b], { rtol: 1e-6, atol: 1e-9 });
    assert.ok(r1.ok, r1.message);
    const r2 = ad.gradgradcheck(f, [small.gen, small.b], { rtol: 1e-5, atol: 1e-8 });
    assert.ok(r2.ok, r2.message);
    const dA = ad.random.normal(ad.random.key(9), [4, 4], { dtype: "float64" });
    const [, t1] = ad.jvp(f, [gen, b], [dA, w]);
    const [, t2] = ad.jvp((A: ad.Tensor, bb: ad.Tensor) => ad.linalg.solve(A, bb), [gen, b], [dA, w]);
    assertClose(t1, t2, { atol: 1e-9 });
  });

  test("an hvp matvec: the solution's derivative wrt a parameter of the Hessian's function", () => {
    // f_θ(w) = ½ wᵀA w + θ Σ wᵢ⁴: the Newton system H(θ) p = b at w₀, differentiated in θ
    const w0 = f64([0.3, -0.2, 0.5, 0.1]);
    const fθ = (th: ad.Tensor) => (v: ad.Tensor) =>
      ad.add(ad.mul(0.5, ad.sum(ad.mul(v, ad.matmul(spd, v)))), ad.sum(ad.mul(th, ad.pow(v, 4))));
    const p = (th: ad.Tensor) =>
      ad.solvers.cg((v: ad.Tensor) => ad.hvp(fθ(th), [w0], [v])[0] as ad.Tensor, b).x;
    // closed form: H = A + 12θ diag(w₀²), dp/dθ = −H⁻¹ (12 diag(w₀²)) p
    const th = f64(0.8);
    const D = ad.mul(ad.eye(4, { dtype: "float64" }), ad.mul(12, ad.square(w0)));
    const H = ad.add(spd, ad.mul(th, D));
    const pp = ad.linalg.solve(H, b);
    assertClose(p(th), pp, { atol: 1e-9 });
    const [, dp] = ad.jvp(p, [th], [f64(1)]);
    assertClose(dp, ad.neg(ad.linalg.solve(H, ad.matmul(D, pp))), { atol: 1e-9 });
    const r = ad.gradcheck(p, [th], { rtol: 1e-6, atol: 1e-9 });
    assert.ok(r.ok, r.message);
  });

  test("a jvp matvec (Jacobian-free): gradcheck and gradgradcheck in the parameter", () => {
    const x0 = f64([0.4, 0.3, -0.2, 0.6]);
    const F = (th: ad.Tensor) => (x: ad.Tensor) =>
      ad.sub(ad.add(ad.matmul(gen, x), ad.mul(th, ad.pow(x, 3))), b);
    const g = (th: ad.Tensor) =>
      ad.solvers.gmres((v: ad.Tensor) => ad.jvp(F(th), [x0], [v])[1] as ad.Tensor, b).x;
    const r1 = ad.gradcheck(g, [f64(1.5)], { rtol: 1e-6, atol: 1e-9 });
    assert.ok(r1.ok, r1.message);
    const r2 = ad.gradgradcheck(g, [f64(1.5)], { rtol: 1e-5, atol: 1e-8 });
    assert.ok(r2.ok, r2.message);
  });

  test("pytree b: the gradient has b's structure", () => {
    const g = ad.grad((bb: { a: ad.Tensor; b: number }) => {
      const x = ad.solvers.cg(
        (v: { a: ad.Tensor; b: ad.Tensor }) => ({ a: ad.mul(2, v.a), b: ad.mul(3, v.b) }),
        bb,
      ).x;
      return ad.add(ad.sum(x.a), x.b);
    })({ a: f64([1, 2]), b: 3 });
    assertClose(g, { a: [0.5, 0.5], b: 1 / 3 }, { atol: 1e-12 });
  });

  test("jit and vmap; the diagnostics cannot be read under jit (TransformError)", () => {
    const f = (bb: ad.Tensor) => ad.solvers.cg((v: ad.Tensor) => ad.matmul(spd, v), bb).x;
    assertClose(ad.jit(f)(b), f(b), { atol: 1e-12 });
    const gj = ad.jit(
      ad.grad((A: ad.Tensor) => ad.sum(ad.solvers.gmres((v: ad.Tensor) => ad.matmul(A, v), b).x)),
    );
    const ge = ad.grad((A: ad.Tensor) => ad.sum(ad.solvers.gmres((v: ad.Tensor) => ad.matmul(A, v), b).x));
    assertClose(gj(gen), ge(gen), { atol: 1e-10 });
    const bs = ad.stack([b, ad.mul(b, -2), w]);
    for (const solver of [ad.solvers.cg, ad.solvers.gmres]) {
      const vb = ad.vmap((bb: ad.Tensor) => solver((v: ad.Tensor) => ad.matmul(spd, v), bb).x)(bs);
      for (let i = 0; i < 3; i++) assertClose(vb.at(i), ad.linalg.solve(spd, bs.at(i)), { atol: 1e-9 });
    }
    assert.throws(
      () => ad.jit((bb: ad.Tensor) => ad.solvers.cg((v: ad.Tensor) => ad.matmul(spd, v), bb).iterations)(b),
      ad.TransformError,
    );
  });
});

describe("Newton-CG and Jacobian-free Newton-Krylov in a few lines", () => {
  test("Newton-CG minimises a smooth convex function with hvp matvecs", () => {
    const { spd, b } = matrices(5, 6);
    // f(w) = ½ wᵀA w − bᵀw + Σ softplus(w): strictly convex
    const f = (w: ad.Tensor) =>
      ad.add(
        ad.sub(ad.mul(0.5, ad.sum(ad.mul(w, ad.matmul(spd, w)))), ad.sum(ad.mul(b, w))),
        ad.sum(ad.softplus(w)),
      );
    let w = ad.zeros([5], { dtype: "float64" });
    for (let k = 0; k < 8; k++) {
      const g = ad.grad(f)(w);
      w = ad.add(w, ad.solvers.cg((v: ad.Tensor) => ad.hvp(f, [w], [v])[0] as ad.Tensor, ad.neg(g)).x);
    }
    assert.ok(normOf(ad.grad(f)(w)) < 1e-12, `‖∇f‖ = ${normOf(ad.grad(f)(w))}`);
  });

  test("JFNK solves F(x) = x³ + A x − c = 0 with jvp matvecs", () => {
    const { gen } = matrices(4, 7);
    const c = f64([1, 8, -2, 0.5]);
    const F = (x: ad.Tensor) => ad.sub(ad.add(ad.pow(x, 3), ad.matmul(gen, x)), c);
    let x = ad.zeros([4], { dtype: "float64" });
    for (let k = 0; k < 30 && normOf(F(x)) > 1e-13; k++)
      x = ad.add(x, ad.solvers.gmres((v: ad.Tensor) => ad.jvp(F, [x], [v])[1] as ad.Tensor, ad.neg(F(x))).x);
    assert.ok(normOf(F(x)) < 1e-12, `‖F‖ = ${normOf(F(x))}`);
  });
});

describe("errors", () => {
  const b = f64([1, 2, 3]);
  test("matvec's output shape differs from b's: ShapeError naming both shapes", () => {
    for (const [name, solver] of [
      ["cg", ad.solvers.cg],
      ["gmres", ad.solvers.gmres],
    ] as const)
      assert.throws(
        () => solver((v: ad.Tensor) => ad.concat([v, v]), b),
        (e: unknown) =>
          e instanceof ad.ShapeError &&
          (e as Error).message.startsWith(`${name}: `) &&
          (e as Error).message.includes("[6]") &&
          (e as Error).message.includes("[3]"),
      );
  });

  test("structure, options, x0 and b errors", () => {
    assert.throws(() => ad.solvers.cg((v: ad.Tensor) => [v] as never, b), ad.TransformError);
    assert.throws(() => ad.solvers.cg(3 as never, b), ad.TransformError);
    assert.throws(() => ad.solvers.cg((v: ad.Tensor) => v, b, { tol: -1 }), ad.TransformError);
    assert.throws(() => ad.solvers.cg((v: ad.Tensor) => v, b, { maxIter: 2.5 }), ad.TransformError);
    assert.throws(() => ad.solvers.gmres((v: ad.Tensor) => v, b, { restart: 0 }), ad.TransformError);
    assert.throws(() => ad.solvers.cg((v: ad.Tensor) => v, b, { x0: f64([1]) }), ad.ShapeError);
    assert.throws(
      () => ad.solvers.cg((v: ad.Tensor) => v, ad.tensor([1, 2], { dtype: "int32" })),
      ad.DTypeError,
    );
    assert.throws(() => ad.solvers.gmres(((v: ad.Tensor) => v) as never, "b" as never), ad.TransformError);
  });
});
