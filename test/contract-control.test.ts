/**
 * @file Black-box contract tests for API.md §3 "Control flow and implicit differentiation" and
 * "Higher order and Taylor mode", with the §10 conventions: cond/whileLoop/scan/fori under
 * grad/jvp/vmap/jit, fixedPoint, customLinearSolve, customRoot, solvers.cg/gmres, odeint, jet, Dual
 * and derivative — each against analytic truth.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { checks, f64, num, type T } from "./contract-helpers.js";

const { near: nearNumber, allNear } = checks(1e-9);

function near(a: ad.DualLike, e: number, tol = 1e-9, what = ""): void {
  assert.equal(typeof a, "number", `${what} expected a number`);
  nearNumber(a as number, e, tol, what);
}

const i32 = (x: number) => ad.scalar(x, { dtype: "int32" });

describe("§3 cond", () => {
  const f = (x: T) =>
    ad.cond(
      ad.greater(ad.sum(x), 0),
      (v: T) => ad.mul(ad.sin(v), 2),
      (v: T) => ad.square(v),
      x,
    ) as T;

  test("value and gradient on each branch; a JS boolean predicate", () => {
    allNear(f(f64([0.5, 0.5])), [2 * Math.sin(0.5), 2 * Math.sin(0.5)]);
    allNear(f(f64([-1, 0])), [1, 0]);
    allNear(ad.grad((v: T) => ad.sum(f(v)))(f64([0.5, 0.5])), [2 * Math.cos(0.5), 2 * Math.cos(0.5)]);
    allNear(ad.grad((v: T) => ad.sum(f(v)))(f64([-1, 0])), [-2, 0]);
    allNear(
      ad.cond(
        true,
        (a: T) => ad.add(a, 1),
        (a: T) => a,
        f64([1]),
      ),
      [2],
    );
    // several operands
    const r = ad.cond(
      false,
      (a: T, b: T) => ad.add(a, b),
      (a: T, b: T) => ad.sub(a, b),
      f64(5),
      f64(2),
    );
    near(num(r), 3);
  });

  test("cond under jvp, jit (value-dependent predicate) and vmap (batched predicate)", () => {
    const [, t] = ad.jvp(f, [f64([0.5, 0.5])], [f64([1, 0])]);
    allNear(t, [2 * Math.cos(0.5), 0]);
    const jf = ad.jit(f);
    allNear(jf(f64([0.5, 0.5])), [2 * Math.sin(0.5), 2 * Math.sin(0.5)]);
    allNear(jf(f64([-1, 0])), [1, 0], 1e-12, "jit reuses its trace for the other branch");
    const g = ad.vmap(
      (v: T) =>
        ad.cond(
          ad.greater(v, 0),
          (a: T) => ad.mul(a, 10),
          (a: T) => ad.neg(a),
          v,
        ) as T,
    )(f64([1, -2, 3]));
    allNear(g, [10, 2, 30]);
    const gj = ad.jit(ad.grad((v: T) => ad.sum(f(v))))(f64([-1, 0]));
    allNear(gj, [-2, 0]);
  });

  test("pytree operands and outputs", () => {
    const r = ad.cond(
      true,
      (p: { a: T; b: T }) => ({ s: ad.add(p.a, p.b) }),
      (p: { a: T; b: T }) => ({ s: ad.sub(p.a, p.b) }),
      { a: f64(1), b: f64(2) },
    ) as { s: T };
    near(num(r.s), 3);
  });
});

describe("§3 whileLoop (forward-mode differentiable)", () => {
  // repeated squaring-ish: v ← v·1.5 while v < 10; number of steps depends on the value
  const loop = (x: T) =>
    ad.whileLoop(
      ([, v]: [T, T]) => ad.less(v, 10),
      ([i, v]: [T, T]) => [ad.add(i, 1), ad.mul(v, 1.5)] as [T, T],
      [i32(0), x] as [T, T],
    ) as [T, T];

  test("value, iteration count, jvp", () => {
    const [n, v] = loop(f64(1));
    const steps = Math.ceil(Math.log(10) / Math.log(1.5));
    assert.equal(num(n), steps);
    near(num(v), 1.5 ** steps);
    const [, t] = ad.jvp((x: T) => loop(x)[1], [f64(1)], [f64(1)]);
    near(num(t), 1.5 ** steps);
  });

  test("under jit the trip count follows the values without retracing", () => {
    let traces = 0;
    const jf = ad.jit((x: T) => {
      traces++;
      return loop(x)[0];
    });
    assert.equal(num(jf(f64(1))), 6);
    const t0 = traces;
    assert.equal(num(jf(f64(9))), 1);
    assert.equal(num(jf(f64(20))), 0);
    assert.equal(traces, t0);
  });

  test("under vmap each element runs its own trip count", () => {
    const r = ad.vmap((x: T) => loop(x)[1])(f64([1, 9, 20]));
    allNear(r, [1.5 ** 6, 13.5, 20]);
  });
});

describe("§3 scan → [carry, ys] (both modes)", () => {
  const cumprod = (xs: T, c0: T) =>
    ad.scan(
      (c: T, x: T) => {
        const n = ad.mul(c, x);
        return [n, ad.sin(n)] as [T, T];
      },
      c0,
      xs,
    ) as [T, T];

  test("values, ys stacked on a leading axis", () => {
    const [c, ys] = cumprod(f64([1, 2, 3]), f64(0.5));
    near(num(c), 3);
    assert.deepEqual(ys.shape, [3]);
    allNear(ys, [Math.sin(0.5), Math.sin(1), Math.sin(3)]);
  });

  test("reverse and forward mode match the unrolled loop", () => {
    const loss = (xs: T, c0: T) => {
      const [c, ys] = cumprod(xs, c0);
      return ad.add(c, ad.sum(ys));
    };
    const unrolled = (xs: T, c0: T) => {
      let c = c0;
      let s: T = f64(0);
      for (let i = 0; i < xs.shape[0]!; i++) {
        c = ad.mul(c, xs.at(i));
        s = ad.add(s, ad.sin(c));
      }
      return ad.add(c, s);
    };
    const xs = f64([1.1, 0.7, 1.3]);
    const c0 = f64(0.5);
    const [g1, g2] = ad.grad(loss, { argnums: [0, 1] })(xs, c0) as [T, T];
    const [u1, u2] = ad.grad(unrolled, { argnums: [0, 1] })(xs, c0) as [T, T];
    allNear(g1, u1, 1e-12);
    allNear(g2, u2, 1e-12);
    const [, t] = ad.jvp((v: T) => loss(v, c0), [xs], [f64([1, 2, 3])]);
    const [, tu] = ad.jvp((v: T) => unrolled(v, c0), [xs], [f64([1, 2, 3])]);
    near(num(t), num(tu), 1e-12);
    allNear(ad.jit(ad.grad(loss))(xs, c0), u1, 1e-12);
    allNear(ad.hessian((v: T) => loss(v, c0))(xs), ad.hessian((v: T) => unrolled(v, c0))(xs), 1e-10);
  });

  test("pytree carry and xs; xs null with {length}", () => {
    const [c, ys] = ad.scan(
      (carry: { s: T; n: T }, x: { a: T; b: T }) =>
        [{ s: ad.add(carry.s, ad.mul(x.a, x.b)), n: ad.add(carry.n, 1) }, ad.sub(x.a, x.b)] as [
          { s: T; n: T },
          T,
        ],
      { s: f64(0), n: f64(0) },
      { a: f64([1, 2, 3]), b: f64([4, 5, 6]) },
    ) as [{ s: T; n: T }, T];
    near(num(c.s), 32);
    near(num(c.n), 3);
    allNear(ys, [-3, -3, -3]);
    const [c2, ys2] = ad.scan((k: T, _x: unknown) => [ad.mul(k, 2), k] as [T, T], f64(1), null, {
      length: 4,
    }) as [T, T];
    near(num(c2), 16);
    allNear(ys2, [1, 2, 4, 8]);
  });

  test("scan under vmap", () => {
    const r = ad.vmap((c0: T) => cumprod(f64([1, 2, 3]), c0)[0])(f64([1, 2]));
    allNear(r, [6, 12]);
  });
});

describe("§3 fori(lo, hi, body, init)", () => {
  const power = (x: T, n: number) => ad.fori(0, n, (_i: T | number, v: T) => ad.mul(v, x), f64(1)) as T;

  test("value, gradient, jvp, body sees the index", () => {
    near(num(power(f64(1.5), 4)), 1.5 ** 4);
    near(num(ad.grad((x: T) => power(x, 4))(f64(1.5))), 4 * 1.5 ** 3);
    near(num(ad.jvp((x: T) => power(x, 4), [f64(1.5)], [f64(1)])[1]), 4 * 1.5 ** 3);
    const s = ad.fori(2, 5, (i: T | number, acc: T) => ad.add(acc, i as T), f64(0)) as T;
    near(num(s), 2 + 3 + 4);
    near(num(ad.jit((x: T) => power(x, 3))(f64(2))), 8);
  });
});

describe("§3 fixedPoint (implicit function theorem)", () => {
  test("z* = a·cos(z*): value and gradient wrt params = cos z / (1 + a sin z)", () => {
    let calls = 0;
    const f = (a: T, z: T) => {
      calls++;
      return ad.mul(a, ad.cos(z));
    };
    const a = f64(0.8);
    const z = ad.fixedPoint(f, a, f64(0), { tol: 1e-12, maxIter: 500 }) as T;
    const zv = num(z);
    near(zv, 0.8 * Math.cos(zv), 1e-10);
    const g = num(ad.grad((p: T) => ad.fixedPoint(f, p, f64(0), { tol: 1e-12, maxIter: 500 }) as T)(a));
    near(g, Math.cos(zv) / (1 + 0.8 * Math.sin(zv)), 1e-8);
    assert.ok(calls > 0);
  });

  test("pytree params and vector state: z = A z + b ⇒ z* = (I − A)⁻¹ b, gradient wrt b", () => {
    const params = {
      A: f64([
        [0.2, 0.1],
        [0.0, 0.3],
      ]),
      b: f64([1, 2]),
    };
    const f = (p: typeof params, z: T) => ad.add(ad.matmul(p.A, z), p.b);
    const z = ad.fixedPoint(f, params, f64([0, 0]), { tol: 1e-13, maxIter: 1000 }) as T;
    const IA = f64([
      [0.8, -0.1],
      [0.0, 0.7],
    ]);
    allNear(z, ad.linalg.solve(IA, params.b), 1e-9);
    const g = ad.grad((p: typeof params) =>
      ad.sum(ad.fixedPoint(f, p, f64([0, 0]), { tol: 1e-13, maxIter: 1000 }) as T),
    )(params) as typeof params;
    // d sum(z)/db = (I − A)^{-T} 1
    allNear(g.b, ad.linalg.solve(IA.transpose(), f64([1, 1])), 1e-8);
    assert.deepEqual(g.A.shape, [2, 2]);
  });
});

describe("§3/§10 customLinearSolve, customRoot", () => {
  const M = f64([
    [4, 1],
    [1, 3],
  ]);

  test("customLinearSolve(matvec, b, solve, {symmetric}) with solve(matvec, b) => x: value and gradients", () => {
    const solveWith = (m: T, b: T) =>
      ad.customLinearSolve(
        (v: T) => ad.matmul(m, v),
        b,
        (mv: (v: T) => T, rhs: T) => ad.solvers.cg(mv, rhs, { tol: 1e-14 }).x,
        { symmetric: true },
      ) as T;
    const b = f64([1, 2]);
    const x = solveWith(M, b);
    allNear(ad.matmul(M, x), b, 1e-10);
    const gb = ad.grad((v: T) => ad.sum(solveWith(M, v)))(b);
    allNear(gb, ad.linalg.solve(M, f64([1, 1])), 1e-9);
    const gM = ad.grad((m: T) => ad.sum(solveWith(m, b)))(M) as T;
    // d(1ᵀ M⁻¹ b)/dM = −M⁻ᵀ 1 xᵀ
    const lam = ad.linalg.solve(M.transpose(), f64([1, 1]));
    allNear(gM, ad.neg(ad.outer(lam, x)), 1e-8);
  });

  test("customLinearSolve with transposeSolve for a non-symmetric matrix", () => {
    const N = f64([
      [3, 1],
      [0, 2],
    ]);
    const b = f64([1, 1]);
    const g = ad.grad((v: T) =>
      ad.sum(
        ad.customLinearSolve(
          (u: T) => ad.matmul(N, u),
          v,
          (_mv: (u: T) => T, rhs: T) => ad.linalg.solve(N, rhs),
          { transposeSolve: (_mv: (u: T) => T, rhs: T) => ad.linalg.solve(N.transpose(), rhs) },
        ) as T,
      ),
    )(b);
    allNear(g, ad.linalg.solve(N.transpose(), f64([1, 1])), 1e-12);
  });

  test("customRoot(f, x0, solve, tangentSolve): sqrt(a) by Newton, gradient 1/(2√a)", () => {
    const newton = (f: (x: T) => T, x0: T) => {
      let x = x0;
      for (let i = 0; i < 50; i++) {
        const [fx, d] = ad.jvp(f, [x], [ad.onesLike(x)]) as [T, T];
        x = ad.sub(x, ad.div(fx, d));
      }
      return x;
    };
    const sqrtRoot = (a: T) =>
      ad.customRoot(
        (x: T) => ad.sub(ad.mul(x, x), a),
        f64(1),
        newton,
        (g: (y: T) => T, y: T) => ad.div(y, g(f64(1))),
      ) as T;
    near(num(sqrtRoot(f64(2))), Math.SQRT2, 1e-12);
    near(num(ad.grad(sqrtRoot)(f64(2))), 1 / (2 * Math.SQRT2), 1e-10);
    near(num(ad.jvp(sqrtRoot, [f64(2)], [f64(1)])[1]), 1 / (2 * Math.SQRT2), 1e-10);
  });
});

describe("§3/§10 solvers.cg and solvers.gmres", () => {
  const A = f64([
    [4, 1, 0],
    [1, 3, 1],
    [0, 1, 2],
  ]);
  const b = f64([1, 2, 3]);

  test("cg returns {x, iterations, residualNorm, converged}", () => {
    const r = ad.solvers.cg((v: T) => ad.matmul(A, v), b, { tol: 1e-12 });
    allNear(ad.matmul(A, r.x), b, 1e-9);
    assert.equal(typeof r.converged === "boolean" ? r.converged : num(r.converged), true);
    assert.ok(num(r.iterations) >= 1 && num(r.iterations) <= 10);
    assert.ok(num(r.residualNorm) < 1e-9);
    const capped = ad.solvers.cg((v: T) => ad.matmul(A, v), b, { maxIter: 1, tol: 1e-14 });
    assert.equal(Boolean(capped.converged), false);
    const warm = ad.solvers.cg((v: T) => ad.matmul(A, v), b, { x0: r.x, tol: 1e-8 });
    assert.ok(num(warm.iterations) <= 1);
  });

  test("cg is differentiable wrt b and wrt what matvec closes over", () => {
    const gb = ad.grad((v: T) => ad.sum(ad.solvers.cg((u: T) => ad.matmul(A, u), v, { tol: 1e-14 }).x))(b);
    allNear(gb, ad.linalg.solve(A, f64([1, 1, 1])), 1e-8);
    const gA = ad.grad((m: T) => ad.sum(ad.solvers.cg((u: T) => ad.matmul(m, u), b, { tol: 1e-14 }).x))(
      A,
    ) as T;
    const x = ad.linalg.solve(A, b);
    const lam = ad.linalg.solve(A, f64([1, 1, 1]));
    allNear(gA, ad.neg(ad.outer(lam, x)), 1e-7);
  });

  test("cg with an hvp matvec solves H x = b (Newton step) matrix-free", () => {
    const f = (p: T) => ad.add(ad.sum(ad.pow(p, 4)), ad.sum(ad.square(p)));
    const p = f64([1, -1, 0.5]);
    const r = ad.solvers.cg((v: T) => ad.hvp(f, [p], [v])[0] as T, b, { tol: 1e-12 });
    // H = diag(12 p² + 2)
    allNear(r.x, [1 / 14, 2 / 14, 3 / 5], 1e-9);
  });

  test("gmres on a non-symmetric system, fields and gradient wrt b", () => {
    const N = f64([
      [3, 1, 0],
      [-1, 2, 1],
      [0, 1, 4],
    ]);
    const r = ad.solvers.gmres((v: T) => ad.matmul(N, v), b, { tol: 1e-12 });
    allNear(ad.matmul(N, r.x), b, 1e-9);
    assert.ok("iterations" in r && "residualNorm" in r && "converged" in r);
    assert.ok(num(r.residualNorm) < 1e-9);
    const gb = ad.grad((v: T) => ad.sum(ad.solvers.gmres((u: T) => ad.matmul(N, u), v, { tol: 1e-13 }).x))(b);
    allNear(gb, ad.linalg.solve(N.transpose(), f64([1, 1, 1])), 1e-7);
  });
});

describe("§3/§10 odeint(f, y0, ts, params, opts) with f(y, t, params)", () => {
  const decay = (y: T, _t: T, k: T) => ad.mul(ad.neg(k), y);
  const y0 = f64([1, 2]);
  const ts = f64([0, 0.5, 1]);
  const k = f64(0.7);

  for (const opts of [
    { method: "rk4" as const },
    { method: "rk4" as const, substeps: 20 },
    { method: "dopri5" as const, rtol: 1e-10, atol: 1e-10 },
    { method: "dopri5" as const, rtol: 1e-10, atol: 1e-10, adjoint: true },
    { method: "rk4" as const, adjoint: true },
  ]) {
    test(`decay with ${JSON.stringify(opts)}: leading axis over ts, values and gradients`, () => {
      const ys = ad.odeint(decay, y0, ts, k, opts) as T;
      assert.deepEqual(ys.shape, [3, 2]);
      const exact = [0, 0.5, 1].map((t) => [Math.exp(-0.7 * t), 2 * Math.exp(-0.7 * t)]);
      allNear(ys, exact, 1e-6);
      // d/dk sum y(1) = -(1)(y0 sum) e^{-k}; d/dy0 = e^{-k}
      const [gy0, gk] = ad.grad((a: T, kk: T) => ad.sum((ad.odeint(decay, a, ts, kk, opts) as T).at(2)), {
        argnums: [0, 1],
      })(y0, k) as [T, T];
      allNear(gy0, [Math.exp(-0.7), Math.exp(-0.7)], 1e-6);
      near(num(gk), -3 * Math.exp(-0.7), 1e-6);
    });
  }

  test("rk4 takes {substeps} per interval (default 10): y' = y is exactly the 4th-order Taylor step", () => {
    const step = (h: number) => 1 + h + h ** 2 / 2 + h ** 3 / 6 + h ** 4 / 24;
    const grow = (y: T) => y;
    const run = (opts: object) => num((ad.odeint(grow, f64(1), f64([0, 1]), f64(0), opts) as T).at(1));
    near(run({ method: "rk4", substeps: 1 }), step(1), 1e-12);
    near(run({ method: "rk4", substeps: 4 }), step(0.25) ** 4, 1e-12);
    near(run({ method: "rk4" }), step(0.1) ** 10, 1e-12);
    near(run({}), Math.E, 1e-5);
    // dopri5 honours its tolerances
    const loose = run({ method: "dopri5", rtol: 1e-3, atol: 1e-3 });
    const tight = run({ method: "dopri5", rtol: 1e-12, atol: 1e-12 });
    near(tight, Math.E, 1e-10);
    assert.ok(Math.abs(loose - Math.E) < 1e-2);
  });

  test("pytree params and the time argument (y' = a·t, y(1) = a/2)", () => {
    const f = (_y: T, t: T, p: { a: T }) => ad.mul(p.a, t);
    const ys = ad.odeint(f, f64(0), f64([0, 1]), { a: f64(3) }) as T;
    assert.deepEqual(ys.shape, [2]);
    near(num(ys.at(1)), 1.5, 1e-8);
    const g = ad.grad((p: { a: T }) => (ad.odeint(f, f64(0), f64([0, 1]), p) as T).at(1))({ a: f64(3) }) as {
      a: T;
    };
    near(num(g.a), 0.5, 1e-8);
  });
});

describe("§3/§10 jet: Taylor coefficients in JAX's convention", () => {
  test("sin along x(t) = x0 + t: derivatives cos, −sin, −cos", () => {
    const x0 = 0.7;
    const [p, s] = ad.jet((x: T) => ad.sin(x), [x0], [[1, 0, 0]]);
    near(num(p), Math.sin(x0));
    allNear(s, [Math.cos(x0), -Math.sin(x0), -Math.cos(x0)], 1e-12);
  });

  test("general path: (f∘x)'' = f''x1² + f'x2; ''' = f'''x1³ + 3f''x1x2 + f'x3", () => {
    const x0 = 0.3;
    const [x1, x2, x3] = [2, 3, 0.5];
    const [p, s] = ad.jet((x: T) => ad.exp(x), [f64(x0)], [[f64(x1), f64(x2), f64(x3)]]);
    const e = Math.exp(x0);
    near(num(p), e);
    allNear(s, [e * x1, e * x1 * x1 + e * x2, e * x1 ** 3 + 3 * e * x1 * x2 + e * x3], 1e-12);
  });

  test("multiple primals, tensors, composition (x·y then log)", () => {
    const [p, s] = ad.jet(
      (x: T, y: T) => ad.log(ad.mul(x, y)),
      [f64([1, 2]), f64([3, 4])],
      [
        [f64([1, 1]), f64([0, 0])],
        [f64([0, 0]), f64([0, 0])],
      ],
    );
    allNear(p, [Math.log(3), Math.log(8)], 1e-12);
    // log(x y) with x(t) = x0 + t: d/dt = 1/x, d²/dt² = −1/x²
    allNear(
      s,
      [
        [1, 0.5],
        [-1, -0.25],
      ],
      1e-12,
    );
  });
});

describe("§3 Dual and derivative", () => {
  test("new Dual(a, b): fields re, eps; methods add sub mul div pow neg with Duals and numbers", () => {
    const x = new ad.Dual(2, 1);
    assert.equal(x.re, 2);
    assert.equal(x.eps, 1);
    const y = x.mul(x).add(3).sub(x.div(4)).pow(2).neg();
    // g(x) = -(x² + 3 − x/4)²; g'(x) = −2(x² + 3 − x/4)(2x − 1/4)
    const inner = 4 + 3 - 0.5;
    near(y.re, -(inner ** 2));
    near(y.eps, -2 * inner * (4 - 0.25));
    const z = x.add(new ad.Dual(1, 2));
    assert.deepEqual([z.re, z.eps], [3, 3]);
    const p = x.pow(new ad.Dual(3, 0));
    near(p.eps, 3 * 4);
  });

  test("statics: Dual.sin cos exp log tanh sqrt", () => {
    const x = new ad.Dual(0.4, 1);
    near(ad.Dual.sin(x).eps, Math.cos(0.4));
    near(ad.Dual.cos(x).eps, -Math.sin(0.4));
    near(ad.Dual.exp(x).eps, Math.exp(0.4));
    near(ad.Dual.log(x).eps, 1 / 0.4);
    near(ad.Dual.tanh(x).eps, 1 - Math.tanh(0.4) ** 2);
    near(ad.Dual.sqrt(x).eps, 0.5 / Math.sqrt(0.4));
    near(ad.Dual.sin(x).re, Math.sin(0.4));
  });

  test("derivative(f)(x) for a scalar function written with Dual returns a number", () => {
    const d = ad.derivative((x: ad.Dual) => ad.Dual.exp(x.mul(x)).add(x));
    const r = d(0.5);
    assert.equal(typeof r, "number");
    near(r, 2 * 0.5 * Math.exp(0.25) + 1);
  });
});
