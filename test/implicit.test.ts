/**
 * @file Implicit differentiation (API §3): `ad.fixedPoint`, `ad.customLinearSolve` and
 * `ad.customRoot`. Derivatives against closed forms from the implicit function theorem (to 1e-8
 * in float64), gradcheck/gradgradcheck in both modes, pytree and number arguments, values the
 * functions close over, every transform (grad, jvp, vjp, jacfwd/jacrev, hessian, vmap, jit,
 * eager backward), the recorded memory of fixedPoint not growing with the iteration count, and
 * the typed errors.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
// Internals of the built package (the same module instances as "adjoint"), to count what the tape keeps.
import { addEvalHook } from "../dist/core/interpreter.js";
import type { Node } from "../dist/core/tape.js";
import { pullback, record } from "../dist/transforms/reverse.js";
import { assertClose } from "./helpers.js";

const f64 = (x: number | number[] | number[][]) => ad.tensor(x, { dtype: "float64" });
const I3 = ad.eye(3, { dtype: "float64" });
const mT = (m: ad.Tensor) => ad.transpose(m);

/** z ← cos(z)/2 + θ: a contraction (|∂f/∂z| ≤ 1/2) whose fixed point has known derivatives. */
const cosMap = (theta: ad.Tensor, z: ad.Tensor) => ad.add(ad.mul(ad.cos(z), 0.5), theta);

/** The fixed point of cosMap by plain JS iteration (the reference). */
function cosFixedPoint(theta: number): number {
  let z = 0;
  for (let i = 0; i < 200; i++) z = Math.cos(z) / 2 + theta;
  return z;
}

/** A matrix with spectral norm < 1 (so z ← A z + c contracts). */
const A0 = ad.mul(
  f64([
    [0.5, -0.3, 0.2],
    [0.1, 0.4, -0.25],
    [-0.2, 0.15, 0.3],
  ]),
  1,
);
const c0 = f64([1, -2, 0.5]);
const w0 = f64([0.7, -1.1, 0.4]);
const linearMap = (p: { A: ad.Tensor; c: ad.Tensor }, z: ad.Tensor) => ad.add(ad.matmul(p.A, z), p.c);

/** A deep-equilibrium layer z = tanh(W z + x). */
const W0 = ad.mul(ad.random.normal(ad.random.key(3), [3, 3], { dtype: "float64" }), 0.3);
const x0 = f64([0.5, -0.2, 0.1]);
const deq = (W: ad.Tensor, x: ad.Tensor) =>
  ad.fixedPoint(
    (p: { W: ad.Tensor; x: ad.Tensor }, z: ad.Tensor) => ad.tanh(ad.add(ad.matmul(p.W, z), p.x)),
    { W, x },
    ad.zerosLike(x),
  );

describe("fixedPoint: values and derivatives against the implicit function theorem", () => {
  test("scalar z = cos(z)/2 + θ: z*, dz*/dθ = 1/(1 + sin z*/2) and d²z*/dθ² to 1e-8", () => {
    const solve = (t: number) => ad.fixedPoint(cosMap, t, 0);
    for (const theta of [0.3, 1, 2.2]) {
      const zs = cosFixedPoint(theta);
      const z = solve(theta);
      assert.ok(z instanceof ad.Tensor);
      assert.equal(z.dtype, "float64");
      assertClose(z, zs, { atol: 1e-10, rtol: 0 });
      const d1 = 1 / (1 + Math.sin(zs) / 2);
      const d2 = -(Math.cos(zs) / 2) * d1 ** 3;
      const g = ad.grad(solve)(theta);
      assert.equal(typeof g, "number");
      assertClose(g, d1, { atol: 1e-8, rtol: 0 });
      // forward mode: one tangent solve
      const [, t] = ad.jvp(solve, [theta], [1]);
      assertClose(t, d1, { atol: 1e-8, rtol: 0 });
      // second order: the adjoint solve is itself implicit
      assertClose(ad.grad(ad.grad(solve))(theta), d2, { atol: 1e-8, rtol: 0 });
      const [, t2] = ad.jvp(ad.grad(solve), [theta], [1]);
      assertClose(t2, d2, { atol: 1e-8, rtol: 0 });
    }
  });

  test("linear z = A z + c with pytree params: ∂(w·z*)/∂c = (I − A)⁻ᵀw, ∂/∂A = u z*ᵀ, ż = (I − A)⁻¹(Ȧ z* + ċ)", () => {
    const loss = (p: { A: ad.Tensor; c: ad.Tensor }) =>
      ad.sum(ad.mul(w0, ad.fixedPoint(linearMap, p, ad.zerosLike(p.c)) as ad.Tensor));
    const IA = ad.sub(I3, A0);
    const zs = ad.linalg.solve(IA, c0);
    assertClose(ad.fixedPoint(linearMap, { A: A0, c: c0 }, ad.zerosLike(c0)), zs, { atol: 1e-9, rtol: 0 });
    const u = ad.linalg.solve(mT(IA), w0);
    const g = ad.grad(loss)({ A: A0, c: c0 });
    assert.deepEqual(Object.keys(g), ["A", "c"]);
    assertClose(g.c, u, { atol: 1e-8, rtol: 0 });
    assertClose(g.A, ad.outer(u, zs), { atol: 1e-8, rtol: 0 });
    const dA = ad.random.normal(ad.random.key(7), [3, 3], { dtype: "float64" });
    const dc = f64([0.3, 0.2, -0.1]);
    const [, zdot] = ad.jvp(
      (A: ad.Tensor, c: ad.Tensor) => ad.fixedPoint(linearMap, { A, c }, ad.zerosLike(c)),
      [A0, c0],
      [dA, dc],
    );
    assertClose(zdot, ad.linalg.solve(IA, ad.add(ad.matmul(dA, zs), dc)), { atol: 1e-8, rtol: 0 });
    // vjp returns one cotangent per primal, the params' structure kept
    const [, back] = ad.vjp(
      (p: { A: ad.Tensor; c: ad.Tensor }) => ad.fixedPoint(linearMap, p, ad.zerosLike(c0)),
      {
        A: A0,
        c: c0,
      },
    );
    const [ct] = back(w0) as [{ A: ad.Tensor; c: ad.Tensor }];
    assertClose(ct.c, u, { atol: 1e-8, rtol: 0 });
  });

  test("a deep-equilibrium layer: gradcheck and gradgradcheck in float64, both modes", () => {
    const r1 = ad.gradcheck(deq, [W0, x0], { rtol: 1e-6, atol: 1e-8 });
    assert.ok(r1.ok, r1.message);
    // second order wrt x (W fixed) keeps the dense check small
    const r2 = ad.gradgradcheck((x: ad.Tensor) => deq(W0, x), [x0], { rtol: 1e-5, atol: 1e-7 });
    assert.ok(r2.ok, r2.message);
  });

  test("adjointSolver: 'gmres' agrees with the default fixed-point iteration", () => {
    const loss = (x: ad.Tensor, solver: "iterate" | "gmres") =>
      ad.sum(
        ad.fixedPoint(
          (p: ad.Tensor, z: ad.Tensor) => ad.tanh(ad.add(ad.matmul(W0, z), p)),
          x,
          ad.zerosLike(x),
          { adjointSolver: solver },
        ) as ad.Tensor,
      );
    const a = ad.grad((x: ad.Tensor) => loss(x, "iterate"))(x0);
    const b = ad.grad((x: ad.Tensor) => loss(x, "gmres"))(x0);
    assertClose(a, b, { atol: 1e-9, rtol: 0 });
  });

  test("pytree z: a coupled pair, with number leaves", () => {
    // a = cos(b)/2 + θ, b = sin(a)/2: differentiate the sum a* + b* and compare with central differences
    const solve = (t: number) => {
      const r = ad.fixedPoint(
        (th: ad.Tensor, z: { a: ad.Tensor; b: ad.Tensor }) => ({
          a: ad.add(ad.mul(ad.cos(z.b), 0.5), th),
          b: ad.mul(ad.sin(z.a), 0.5),
        }),
        t,
        { a: 0, b: 0 },
      );
      return ad.add(r.a, r.b);
    };
    const h = 1e-5;
    const fd = (solve(1 + h).item() - solve(1 - h).item()) / (2 * h);
    assertClose(ad.grad(solve)(1), fd, { atol: 1e-8, rtol: 0 });
    const r = ad.gradcheck(solve, [0.4], { rtol: 1e-6 });
    assert.ok(r.ok, r.message);
  });

  test("float32 z stays float32 (a JS-number z0 adopts the dtype f returns)", () => {
    const z = ad.fixedPoint(
      (t: ad.Tensor, z: ad.Tensor) => ad.add(ad.mul(ad.cos(z), 0.5), t),
      ad.tensor(1),
      0,
    );
    assert.equal(z.dtype, "float32");
    assertClose(z, cosFixedPoint(1), { atol: 1e-5, rtol: 0 });
    const g = ad.grad((t: ad.Tensor) => ad.fixedPoint(cosMap, t, ad.tensor(0)))(ad.tensor(1));
    assert.equal(g.dtype, "float32");
    assertClose(g, 1 / (1 + Math.sin(cosFixedPoint(1)) / 2), { atol: 1e-5, rtol: 0 });
  });

  test("z0 gets no derivative; maxIter bounds the iterations", () => {
    // dz*/dz0 = 0: the fixed point does not depend on where the iteration starts
    assertClose(ad.grad((z0: number) => ad.fixedPoint(cosMap, 1, z0))(0.2), 0);
    // tol 0 and 3 steps from 0: exactly three applications of f
    let z = 0;
    for (let i = 0; i < 3; i++) z = Math.cos(z) / 2 + 1;
    assertClose(ad.fixedPoint(cosMap, 1, 0, { tol: 0, maxIter: 3 }), z, { atol: 1e-15, rtol: 0 });
  });
});

describe("fixedPoint: closures and transforms", () => {
  const byArg = (x: ad.Tensor) => ad.sum(deq(W0, x) as ad.Tensor);

  test("a value f closes over gets the same gradient as the same value passed in params", () => {
    const closed = (x: ad.Tensor) =>
      ad.sum(
        ad.fixedPoint(
          (_p: null, z: ad.Tensor) => ad.tanh(ad.add(ad.matmul(W0, z), x)),
          null,
          ad.zerosLike(x),
        ) as ad.Tensor,
      );
    assertClose(ad.grad(closed)(x0), ad.grad(byArg)(x0), { atol: 1e-12, rtol: 0 });
    const [, t1] = ad.jvp(closed, [x0], [f64([1, 0.5, -1])]);
    const [, t2] = ad.jvp(byArg, [x0], [f64([1, 0.5, -1])]);
    assertClose(t1, t2, { atol: 1e-12, rtol: 0 });
  });

  test("jacfwd = jacrev, hessian symmetric and equal to forward-over-forward", () => {
    const f = (x: ad.Tensor) => deq(W0, x) as ad.Tensor;
    assertClose(ad.jacfwd(f)(x0), ad.jacrev(f)(x0), { atol: 1e-9, rtol: 0 });
    const H = ad.hessian(byArg)(x0) as ad.Tensor;
    assertClose(H, mT(H), { atol: 1e-9, rtol: 0 });
    assertClose(H, ad.jacfwd(ad.jacfwd(byArg))(x0), { atol: 1e-9, rtol: 0 });
  });

  test("vmap equals a loop, also of the gradient; jit equals eager", () => {
    const xs = ad.stack([x0, ad.mul(x0, 2), ad.neg(x0)]);
    const f = (x: ad.Tensor) => deq(W0, x) as ad.Tensor;
    const batched = ad.vmap(f)(xs);
    for (let i = 0; i < 3; i++) assertClose(batched.at(i), f(xs.at(i)), { atol: 1e-14, rtol: 0 });
    const gb = ad.vmap(ad.grad(byArg))(xs);
    for (let i = 0; i < 3; i++) assertClose(gb.at(i), ad.grad(byArg)(xs.at(i)), { atol: 1e-14, rtol: 0 });
    assertClose(ad.jit(f)(x0), f(x0), { atol: 1e-14, rtol: 0 });
    assertClose(ad.jit(ad.grad(byArg))(x0), ad.grad(byArg)(x0), { atol: 1e-12, rtol: 0 });
  });

  test("eager backward() reaches leaves in params and leaves f closes over", () => {
    const want = ad.grad(byArg)(x0);
    const x = ad.tensor(x0.toArray() as number[], { dtype: "float64", requiresGrad: true });
    ad.sum(deq(W0, x) as ad.Tensor).backward();
    assertClose(x.grad, want, { atol: 1e-12, rtol: 0 });
    const y = ad.tensor(x0.toArray() as number[], { dtype: "float64", requiresGrad: true });
    const z = ad.fixedPoint(
      (_p: null, z: ad.Tensor) => ad.tanh(ad.add(ad.matmul(W0, z), y)),
      null,
      ad.zerosLike(y),
    );
    ad.sum(z as ad.Tensor).backward();
    assertClose(y.grad, want, { atol: 1e-12, rtol: 0 });
  });
});

// ---- memory --------------------------------------------------------------------------------------

const BYTES: Record<string, number> = { float64: 8, float32: 4, int32: 4, bool: 1, float16: 2, bfloat16: 2 };

/** Nodes and bytes (distinct buffers: inputs, outputs, custom residuals) a recorded tape keeps. */
function tapeStats(nodes: readonly Node[]): { nodes: number; bytes: number } {
  const seen = new Set<unknown>();
  let bytes = 0;
  const count = (t: unknown) => {
    if (!(t instanceof ad.Tensor)) return;
    const c = t._concrete();
    if (seen.has(c._buf)) return;
    seen.add(c._buf);
    bytes += c.size * BYTES[c.dtype]!;
  };
  for (const n of nodes) {
    for (const t of n.inputs) count(t);
    for (const t of n.outs) count(t);
    const res = (n.params as { residuals?: unknown } | null)?.residuals;
    if (res !== undefined) for (const t of ad.tree.leaves(res)) count(t);
  }
  return { nodes: nodes.length, bytes };
}

describe("fixedPoint: memory does not grow with the number of iterations", () => {
  // z ← 0.995·sin(z) + θ converges slowly: with tol 0 every one of maxIter steps runs.
  const slow = (t: ad.Tensor, z: ad.Tensor) => ad.add(ad.mul(ad.sin(z), 0.995), t);
  const theta = f64([0.01, -0.02, 0.015, 0.005]);
  const measure = (maxIter: number, unrolled: boolean) => {
    const loss = (t: ad.Tensor) => {
      if (!unrolled) return ad.sum(ad.fixedPoint(slow, t, ad.zerosLike(t), { tol: 0, maxIter }) as ad.Tensor);
      let z = ad.zerosLike(t);
      for (let i = 0; i < maxIter; i++) z = slow(t, z);
      return ad.sum(z);
    };
    let evals = 0;
    const off = addEvalHook(() => evals++);
    try {
      const rec = record(loss as (...a: never[]) => unknown, [theta], [0], false, "test");
      const stats = tapeStats(rec.interp.nodes);
      const forwardEvals = evals;
      const out = rec.interp.primalOf(rec.outLeaves[0] as ad.Tensor);
      const g = pullback(rec, [ad.onesLike(out)])[0]![0]!;
      return { ...stats, forwardEvals, grad: g };
    } finally {
      off();
    }
  };

  test("the tape keeps the same nodes and bytes for maxIter 10, 100 and 1000; unrolling grows linearly", () => {
    const runs = [10, 100, 1000].map((m) => measure(m, false));
    for (const r of runs.slice(1)) {
      assert.equal(r.nodes, runs[0]!.nodes);
      assert.equal(r.bytes, runs[0]!.bytes);
    }
    // the iterations did run (kernel evaluations grow with maxIter), they just left nothing behind
    assert.ok(runs[2]!.forwardEvals > 50 * runs[0]!.forwardEvals);
    // θ in, z* out and the residuals (θ, z*): a handful of small tensors, independent of maxIter
    assert.ok(runs[0]!.bytes <= 4 * theta.size * 8, `bytes ${runs[0]!.bytes}`);
    const u10 = measure(10, true);
    const u100 = measure(100, true);
    assert.ok(u100.nodes >= 10 * u10.nodes - 10, `${u10.nodes} → ${u100.nodes}`);
    assert.ok(u100.bytes > 5 * u10.bytes);
  });

  test("after 1000 iterations the implicit gradient matches the converged unrolled one", () => {
    // at convergence the unrolled derivative tends to the implicit one: (1 − 0.995 cos z*)⁻¹
    const g = measure(1000, false).grad;
    const z = ad.fixedPoint(slow, theta, ad.zerosLike(theta), { tol: 0, maxIter: 1000 }) as ad.Tensor;
    const want = ad.reciprocal(ad.sub(1, ad.mul(0.995, ad.cos(z))));
    assertClose(g, want, { rtol: 1e-6, atol: 0 });
  });
});

// ---- customLinearSolve ------------------------------------------------------------------------------

describe("customLinearSolve", () => {
  const d0 = f64([1, 2, 4]);
  const b0 = f64([2, 3, -1]);
  /** A diagonal system whose solve closes over d (the value being differentiated). */
  const solveDiag = (d: ad.Tensor, b: ad.Tensor) =>
    ad.customLinearSolve(
      (x: ad.Tensor) => ad.mul(d, x),
      b,
      (_mv, r) => ad.div(r, d),
      { symmetric: true },
    );

  test("diagonal: value, ∂/∂d = −x ⊙ A⁻ᵀ1, ∂/∂b = A⁻ᵀ1, jvp and hessian", () => {
    assertClose(solveDiag(d0, b0), ad.div(b0, d0));
    const gd = ad.grad((d: ad.Tensor) => ad.sum(solveDiag(d, b0)))(d0);
    assertClose(gd, ad.neg(ad.div(b0, ad.square(d0))), { atol: 1e-14 });
    const gb = ad.grad((b: ad.Tensor) => ad.sum(solveDiag(d0, b)))(b0);
    assertClose(gb, ad.reciprocal(d0), { atol: 1e-14 });
    const [, t] = ad.jvp((d: ad.Tensor) => solveDiag(d, b0), [d0], [f64([1, 1, 1])]);
    assertClose(t, ad.neg(ad.div(b0, ad.square(d0))), { atol: 1e-14 });
    // ∂²(Σ bᵢ/dᵢ)/∂dᵢ² = 2bᵢ/dᵢ³
    const H = ad.hessian((d: ad.Tensor) => ad.sum(solveDiag(d, b0)))(d0) as ad.Tensor;
    const diag = ad.div(ad.mul(2, b0), ad.pow(d0, 3));
    assertClose(H, ad.mul(I3, diag), { atol: 1e-13 });
  });

  test("dense non-symmetric A with transposeSolve: gradcheck and gradgradcheck against linalg.solve", () => {
    const M = f64([
      [3, 1, 0.2],
      [0.5, 2, -0.4],
      [0.1, 0.3, 1.5],
    ]);
    const f = (A: ad.Tensor, b: ad.Tensor) =>
      ad.customLinearSolve(
        (x: ad.Tensor) => ad.matmul(A, x),
        b,
        (_mv, r) => ad.linalg.solve(A, r),
        { transposeSolve: (_mvT, r) => ad.linalg.solve(mT(A), r) },
      );
    assertClose(f(M, b0), ad.linalg.solve(M, b0), { atol: 1e-14 });
    const g1 = ad.grad((A: ad.Tensor) => ad.sum(ad.mul(w0, f(A, b0))))(M);
    const g2 = ad.grad((A: ad.Tensor) => ad.sum(ad.mul(w0, ad.linalg.solve(A, b0))))(M);
    assertClose(g1, g2, { atol: 1e-13 });
    const r1 = ad.gradcheck(f, [M, b0], { rtol: 1e-6, atol: 1e-9 });
    assert.ok(r1.ok, r1.message);
    const r2 = ad.gradgradcheck(f, [M, b0], { rtol: 1e-6, atol: 1e-9 });
    assert.ok(r2.ok, r2.message);
  });

  test("a solve that uses its matvec (no transposeSolve needed: it is applied to Aᵀ), also one that reads values", () => {
    const M = f64([
      [3, 1, 0.2],
      [0.5, 2, -0.4],
      [0.1, 0.3, 1.5],
    ]);
    const viaGmres = (A: ad.Tensor, b: ad.Tensor) =>
      ad.customLinearSolve(
        (x: ad.Tensor) => ad.matmul(A, x),
        b,
        (mv, r) => ad.solvers.gmres(mv, r).x,
      );
    const r = ad.gradcheck(viaGmres, [M, b0], { rtol: 1e-6, atol: 1e-9 });
    assert.ok(r.ok, r.message);
    // Richardson iteration that stops by reading the residual (so it cannot be staged)
    const readingSolve = (mv: (x: ad.Tensor) => ad.Tensor, rhs: ad.Tensor) => {
      let x = ad.zerosLike(rhs);
      for (let i = 0; i < 500; i++) {
        const res = ad.sub(rhs, mv(x));
        if (ad.max(ad.abs(res)).item() < 1e-15) break;
        x = ad.add(x, ad.mul(0.3, res));
      }
      return x;
    };
    const viaReading = (A: ad.Tensor, b: ad.Tensor) =>
      ad.customLinearSolve((x: ad.Tensor) => ad.matmul(A, x), b, readingSolve);
    const g1 = ad.grad((A: ad.Tensor) => ad.sum(ad.mul(w0, viaReading(A, b0))))(M);
    const g2 = ad.grad((A: ad.Tensor) => ad.sum(ad.mul(w0, ad.linalg.solve(A, b0))))(M);
    assertClose(g1, g2, { atol: 1e-12 });
  });

  test("pytree b; jit and vmap", () => {
    const solvePair = (s: ad.Tensor, b: { u: ad.Tensor; v: number }) =>
      ad.customLinearSolve(
        (x: { u: ad.Tensor; v: ad.Tensor }) => ({ u: ad.mul(s, x.u), v: ad.mul(3, x.v) }),
        b,
        (_mv, r) => ({ u: ad.div(r.u, s), v: ad.div(r.v, 3) }),
        { symmetric: true },
      );
    const x = solvePair(f64(2), { u: f64([2, 4]), v: 6 });
    assertClose(x, { u: [1, 2], v: 2 });
    const g = ad.grad((s: ad.Tensor) => ad.sum(solvePair(s, { u: f64([2, 4]), v: 6 }).u))(f64(2));
    assertClose(g, -6 / 4);
    const f = (d: ad.Tensor) => solveDiag(d, b0);
    assertClose(
      ad.jit(ad.grad((d: ad.Tensor) => ad.sum(f(d))))(d0),
      ad.grad((d: ad.Tensor) => ad.sum(f(d)))(d0),
    );
    const ds = ad.stack([d0, ad.mul(d0, 2)]);
    const vb = ad.vmap(f)(ds);
    assertClose(vb.at(1), f(ad.mul(d0, 2)));
  });

  test("errors: matvec's output shape, solve's output, bad options", () => {
    assert.throws(
      () =>
        ad.customLinearSolve(
          (x: ad.Tensor) => ad.concat([x, x]),
          b0,
          (_mv, r) => r,
        ),
      (e: unknown) =>
        e instanceof ad.ShapeError &&
        /customLinearSolve/.test((e as Error).message) &&
        /\[6\]/.test((e as Error).message) &&
        /\[3\]/.test((e as Error).message),
    );
    assert.throws(
      () =>
        ad.customLinearSolve(
          (x: ad.Tensor) => x,
          b0,
          (_mv, r) => ad.concat([r, r]),
        ),
      (e: unknown) => e instanceof ad.ShapeError && /customLinearSolve/.test((e as Error).message),
    );
    assert.throws(() => ad.customLinearSolve((x: ad.Tensor) => x, b0, 3 as never), ad.TransformError);
    assert.throws(
      () =>
        ad.customLinearSolve(
          (x: ad.Tensor) => x,
          b0,
          (_mv, r) => r,
          null as never,
        ),
      ad.TransformError,
    );
    assert.throws(
      () =>
        ad.customLinearSolve(
          (x: ad.Tensor) => x,
          ad.tensor([1, 2], { dtype: "int32" }),
          (_mv, r) => r,
        ),
      ad.DTypeError,
    );
  });
});

// ---- customRoot ---------------------------------------------------------------------------------------

describe("customRoot", () => {
  /** Newton's method with the derivative by grad; never differentiated itself. */
  const newton = (f: (x: ad.Tensor) => ad.Tensor, x0: ad.Tensor) => {
    let x = x0;
    for (let i = 0; i < 30; i++) x = ad.sub(x, ad.div(f(x), ad.grad(f)(x)));
    return x;
  };
  const scalarSolve = (g: (x: ad.Tensor) => ad.Tensor, y: ad.Tensor) => ad.div(y, g(ad.onesLike(y)));
  const sqrt = (a: number) =>
    ad.customRoot((x: ad.Tensor) => ad.sub(ad.mul(x, x), a), 1, newton, scalarSolve);

  test("√a as the root of x² − a: value, first and second derivatives, forward mode", () => {
    for (const a of [4, 2, 0.5]) {
      assertClose(sqrt(a), Math.sqrt(a), { atol: 1e-14 });
      assertClose(ad.grad(sqrt)(a), 0.5 / Math.sqrt(a), { atol: 1e-12 });
      assertClose(ad.grad(ad.grad(sqrt))(a), -0.25 * a ** -1.5, { atol: 1e-12 });
      const [, t] = ad.jvp(sqrt, [a], [1]);
      assertClose(t, 0.5 / Math.sqrt(a), { atol: 1e-12 });
    }
  });

  test("a solver that closes over the differentiated value, and one that reads values (bisection)", () => {
    const heron = (a: ad.Tensor) =>
      ad.customRoot(
        (x: ad.Tensor) => ad.sub(ad.mul(x, x), a),
        1,
        (_f, x0) => {
          let x = x0;
          for (let i = 0; i < 40; i++) x = ad.mul(0.5, ad.add(x, ad.div(a, x)));
          return x;
        },
        scalarSolve,
      );
    assertClose(ad.grad(heron)(f64(9)), 1 / 6, { atol: 1e-12 });
    assertClose(ad.grad(ad.grad(heron))(f64(9)), -0.25 / 27, { atol: 1e-12 });
    const bisect = (f: (x: ad.Tensor) => ad.Tensor) => {
      let lo = 0;
      let hi = 10;
      for (let i = 0; i < 60; i++) {
        const m = (lo + hi) / 2;
        if (f(f64(m)).item() > 0) hi = m;
        else lo = m;
      }
      return f64((lo + hi) / 2);
    };
    const cbrt = (a: number) =>
      ad.customRoot((x: ad.Tensor) => ad.sub(ad.pow(x, 3), a), 1, bisect, scalarSolve);
    assertClose(cbrt(8), 2, { atol: 1e-12 });
    assertClose(ad.grad(cbrt)(8), 1 / 12, { atol: 1e-10 });
  });

  test("a vector root with a Krylov tangentSolve: gradcheck and gradgradcheck, vmap", () => {
    const M = f64([
      [3, 1],
      [0.5, 2],
    ]);
    const root = (th: ad.Tensor) =>
      ad.customRoot(
        (x: ad.Tensor) => ad.sub(ad.add(ad.matmul(M, x), ad.pow(x, 3)), ad.mul(th, f64([1, 2]))),
        f64([0, 0]),
        (F, x0) => {
          let x = x0;
          for (let i = 0; i < 12; i++) x = ad.sub(x, ad.linalg.solve(ad.jacfwd(F)(x) as ad.Tensor, F(x)));
          return x;
        },
        (g, y) => ad.solvers.gmres(g, y).x,
      );
    const x = root(f64(0.7));
    assertClose(ad.add(ad.matmul(M, x), ad.pow(x, 3)), ad.mul(0.7, f64([1, 2])), { atol: 1e-12 });
    const r1 = ad.gradcheck(root, [f64(0.7)], { rtol: 1e-6, atol: 1e-9 });
    assert.ok(r1.ok, r1.message);
    const r2 = ad.gradgradcheck(root, [f64(0.7)], { rtol: 1e-5, atol: 1e-8 });
    assert.ok(r2.ok, r2.message);
    const vb = ad.vmap(root)(f64([0.7, -0.3]));
    assertClose(vb.at(1), root(f64(-0.3)), { atol: 1e-14 });
  });

  test("errors: f's output shape, a non-function solver, a bad x0", () => {
    const ok = (g: (x: ad.Tensor) => ad.Tensor, y: ad.Tensor) => ad.div(y, g(ad.onesLike(y)));
    assert.throws(
      () =>
        ad.customRoot(
          (x: ad.Tensor) => ad.concat([x, x]),
          f64([1]),
          (_f, x0) => x0,
          ok,
        ),
      (e: unknown) => e instanceof ad.ShapeError && /customRoot/.test((e as Error).message),
    );
    assert.throws(() => ad.customRoot((x: ad.Tensor) => x, 1, null as never, ok), ad.TransformError);
    assert.throws(
      () =>
        ad.customRoot(
          ((x: ad.Tensor) => x) as never,
          "a" as never,
          (_f: unknown, x0: never) => x0,
          ok as never,
        ),
      ad.TransformError,
    );
  });
});

describe("fixedPoint: errors", () => {
  test("f's output shape or structure differs from z0's", () => {
    assert.throws(
      () => ad.fixedPoint((_p: ad.Tensor, z: ad.Tensor) => ad.concat([z, z]), 1, f64([1, 2])),
      (e: unknown) =>
        e instanceof ad.ShapeError &&
        (e as Error).message.startsWith("fixedPoint: ") &&
        /\[4\]/.test((e as Error).message) &&
        /\[2\]/.test((e as Error).message),
    );
    assert.throws(
      () => ad.fixedPoint((_p: ad.Tensor, z: ad.Tensor) => [z] as never, 1, f64([1, 2])),
      ad.TransformError,
    );
  });

  test("bad options, a non-function f, an int z0, a tangent whose shape does not match", () => {
    assert.throws(() => ad.fixedPoint(cosMap, 1, 0, { tol: -1 }), ad.TransformError);
    assert.throws(() => ad.fixedPoint(cosMap, 1, 0, { maxIter: 1.5 }), ad.TransformError);
    assert.throws(() => ad.fixedPoint(cosMap, 1, 0, { adjointSolver: "lu" as never }), ad.TransformError);
    assert.throws(() => ad.fixedPoint(3 as never, 1, 0), ad.TransformError);
    assert.throws(() => ad.fixedPoint(cosMap, 1, ad.tensor([1], { dtype: "int32" })), ad.DTypeError);
    assert.throws(
      () => ad.jvp((x: ad.Tensor) => deq(W0, x), [x0], [f64([1, 2])]),
      (e: unknown) => e instanceof ad.ShapeError,
    );
  });
});
