/**
 * @file `ad.odeint` (API §3, §10): values against closed-form solutions (rk4 and dopri5), the
 * gradients of dy/dt = −k·y wrt y0, k and the times by differentiating through the solver and by
 * the continuous adjoint method (to 1e-6), pytree states and params, time-dependent dynamics,
 * decreasing and repeated times, every transform (jvp, vjp, jacfwd/jacrev, hessian, vmap, jit,
 * closures, eager backward), the adjoint's recorded memory not growing with the number of steps,
 * and the typed errors.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import type { Node } from "../dist/core/tape.js";
import { record } from "../dist/transforms/reverse.js";
import { assertClose } from "./helpers.js";

const f64 = (x: number | number[]) => ad.tensor(x, { dtype: "float64" });
const decay = (y: ad.Tensor, _t: ad.Tensor, k: ad.Tensor) => ad.mul(ad.neg(k), y);
type Method = "rk4" | "dopri5";
const METHODS: { method: Method; substeps?: number }[] = [
  { method: "rk4", substeps: 40 },
  { method: "dopri5" },
];

describe("values against closed forms", () => {
  test("exponential decay at every time of ts (a leading axis over ts), both methods", () => {
    const ts = [0, 0.5, 1.3, 2];
    for (const m of METHODS) {
      const ys = ad.odeint(decay, f64([1, -2]), ts, 0.7, m);
      assert.deepEqual(ys.shape, [4, 2]);
      const want = ts.map((t) => [Math.exp(-0.7 * t), -2 * Math.exp(-0.7 * t)]);
      assertClose(ys, want, { atol: 1e-8, rtol: 0 });
    }
  });

  test("rk4 with substeps: the global error falls as h⁴", () => {
    const err = (substeps: number) =>
      Math.abs(
        (ad.odeint(decay, 1, [0, 2], 1, { method: "rk4", substeps }) as ad.Tensor).at(1).item() -
          Math.exp(-2),
      );
    const ratio = err(5) / err(10);
    assert.ok(ratio > 12 && ratio < 20, `error ratio ${ratio}`);
    // the default is 10 substeps per interval
    assert.equal(
      (ad.odeint(decay, 1, [0, 2], 1, { method: "rk4" }) as ad.Tensor).at(1).item(),
      (ad.odeint(decay, 1, [0, 2], 1, { method: "rk4", substeps: 10 }) as ad.Tensor).at(1).item(),
    );
  });

  test("dopri5 meets tighter tolerances with more accuracy", () => {
    const at = (rtol: number) =>
      Math.abs(
        (ad.odeint(decay, 1, [0, 3], 1, { rtol, atol: rtol }) as ad.Tensor).at(1).item() - Math.exp(-3),
      );
    assert.ok(at(1e-4) < 1e-3);
    assert.ok(at(1e-10) < 1e-9);
    assert.ok(at(1e-10) < at(1e-4));
  });

  test("a damped oscillator with pytree state {x, v} and params {w, zeta}", () => {
    const osc = (y: { x: ad.Tensor; v: ad.Tensor }, _t: ad.Tensor, p: { w: ad.Tensor; zeta: ad.Tensor }) => ({
      x: y.v,
      v: ad.sub(ad.neg(ad.mul(ad.mul(2, ad.mul(p.zeta, p.w)), y.v)), ad.mul(ad.square(p.w), y.x)),
    });
    const [w, zeta, x0, v0] = [2, 0.1, 1, 0.5];
    const wd = w * Math.sqrt(1 - zeta * zeta);
    const exact = (t: number) =>
      Math.exp(-zeta * w * t) * (x0 * Math.cos(wd * t) + ((v0 + zeta * w * x0) / wd) * Math.sin(wd * t));
    const ts = [0, 1, 2.5];
    const ys = ad.odeint(osc, { x: x0, v: v0 }, ts, { w: f64(w), zeta: f64(zeta) });
    assert.deepEqual(Object.keys(ys), ["x", "v"]);
    assertClose(
      ys.x,
      ts.map((t) => exact(t)),
      { atol: 1e-7, rtol: 0 },
    );
  });

  test("time-dependent dynamics dy/dt = a·t·y (y = e^{a(t² − t₀²)/2}); decreasing and repeated times", () => {
    const f = (y: ad.Tensor, t: ad.Tensor, a: ad.Tensor) => ad.mul(a, ad.mul(t, y));
    const ys = ad.odeint(f, 1, [0.5, 1, 1, 1.5], 0.3);
    const y = (t: number) => Math.exp((0.3 * (t * t - 0.25)) / 2);
    assertClose(ys, [1, y(1), y(1), y(1.5)], { atol: 1e-8, rtol: 0 });
    // the time derivative: ∂y(t₁)/∂t₁ = f(y(t₁), t₁), ∂y(t₁)/∂t₀ = −f(y₀, t₀)·y(t₁)/y₀
    for (const adjoint of [false, true]) {
      const g = ad.grad((ts: ad.Tensor) => (ad.odeint(f, 1, ts, 0.3, { adjoint }) as ad.Tensor).at(1))(
        f64([0.5, 1.5]),
      );
      assertClose(g, [-0.3 * 0.5 * y(1.5), 0.3 * 1.5 * y(1.5)], { atol: 1e-6, rtol: 0 });
    }
    // backwards in time
    assertClose(ad.odeint(decay, 1, [1, 0], 1), [1, Math.E], { atol: 1e-7, rtol: 0 });
    // one time: just y0
    assertClose(ad.odeint(decay, f64([3]), [0], 1), [[3]]);
  });

  test("float32 state stays float32; a number y0 is a float64 scalar", () => {
    const y32 = ad.odeint(decay, ad.tensor([1]), [0, 1], 1);
    assert.equal(y32.dtype, "float32");
    assertClose(y32, [[1], [Math.exp(-1)]], { atol: 1e-5, rtol: 0 });
    const yn = ad.odeint(decay, 1, [0, 1], 1);
    assert.equal(yn.dtype, "float64");
    assert.deepEqual(yn.shape, [2]);
  });
});

describe("gradients of dy/dt = −k·y: direct and adjoint against the closed form (1e-6)", () => {
  const [y0, k, t0, t1] = [1.3, 0.7, 0.2, 2.1];
  const e = y0 * Math.exp(-k * (t1 - t0));
  const want = { y0: e / y0, k: -(t1 - t0) * e, t0: k * e, t1: -k * e };
  for (const m of METHODS)
    for (const adjoint of [false, true])
      test(`${m.method}, ${adjoint ? "adjoint" : "direct"}`, () => {
        const final = (y: number, kk: number, ts: ad.Tensor) =>
          (ad.odeint(decay, y, ts, kk, { ...m, adjoint }) as ad.Tensor).at(1);
        const [gy, gk, gt] = ad.grad(final, { argnums: [0, 1, 2] })(y0, k, f64([t0, t1])) as [
          number,
          number,
          ad.Tensor,
        ];
        assertClose(gy, want.y0, { atol: 1e-6, rtol: 0 });
        assertClose(gk, want.k, { atol: 1e-6, rtol: 0 });
        assertClose(gt, [want.t0, want.t1], { atol: 1e-6, rtol: 0 });
        // forward mode agrees (the adjoint option differentiates the solver there)
        const [, tk] = ad.jvp((kk: number) => final(y0, kk, f64([t0, t1])), [k], [1]);
        assertClose(tk, want.k, { atol: 1e-6, rtol: 0 });
      });
});

describe("derivatives through pytrees, transforms and closures", () => {
  const osc = (y: { x: ad.Tensor; v: ad.Tensor }, _t: ad.Tensor, p: { w: ad.Tensor; zeta: ad.Tensor }) => ({
    x: y.v,
    v: ad.sub(ad.neg(ad.mul(ad.mul(2, ad.mul(p.zeta, p.w)), y.v)), ad.mul(ad.square(p.w), y.x)),
  });
  const run = (adjoint: boolean) => (w: ad.Tensor, zeta: ad.Tensor, x0: ad.Tensor, ts: ad.Tensor) =>
    ad.odeint(osc, { x: x0, v: f64(0.3) }, ts, { w, zeta }, { adjoint, rtol: 1e-9, atol: 1e-9 });
  const args = [f64(2), f64(0.1), f64(1), f64([0, 0.5, 1.5])];

  for (const adjoint of [false, true])
    test(`gradcheck of every output wrt params, y0 and all times (${adjoint ? "adjoint" : "direct"})`, () => {
      const r = ad.gradcheck(run(adjoint), args, { rtol: 1e-5, atol: 1e-7 });
      assert.ok(r.ok, r.message);
    });

  test("adjoint and direct agree; the gradient has the params' structure", () => {
    const loss = (adjoint: boolean) => (p: { w: ad.Tensor; zeta: ad.Tensor }) =>
      ad.sum(ad.odeint(osc, { x: 1, v: 0 }, [0, 1, 2], p, { adjoint }).x);
    const p = { w: f64(2), zeta: f64(0.1) };
    const a = ad.grad(loss(true))(p);
    const d = ad.grad(loss(false))(p);
    assert.deepEqual(Object.keys(a), ["w", "zeta"]);
    assertClose(a, d, { atol: 1e-6, rtol: 0 });
  });

  test("second order: grad∘grad, hessian (jacfwd∘jacrev) and jacfwd = jacrev, both modes", () => {
    // Σ over y0 = [1, 2] of y(1) = 3e^{−k}: d²/dk² = 3e^{−k}
    const exact = 3 * Math.exp(-0.5);
    for (const adjoint of [false, true]) {
      const f = (kk: ad.Tensor) =>
        ad.sum(ad.odeint(decay, f64([1, 2]), [0, 1], kk, { adjoint }) as ad.Tensor);
      assertClose(ad.grad(ad.grad(f))(f64(0.5)), exact, { atol: 1e-6, rtol: 0 });
      assertClose(ad.hessian(f)(f64(0.5)), exact, { atol: 1e-6, rtol: 0 });
      const g = (kk: ad.Tensor) => ad.odeint(decay, f64([1, 2]), [0, 1], kk, { adjoint }) as ad.Tensor;
      assertClose(ad.jacrev(g)(f64(0.5)), ad.jacfwd(g)(f64(0.5)), { atol: 1e-7, rtol: 0 });
    }
  });

  test("vmap (the batch shares dopri5's steps), jit with rk4", () => {
    const ks = f64([0.5, 1, 2]);
    for (const adjoint of [false, true]) {
      const f = (kk: ad.Tensor) => ad.odeint(decay, f64([1, 2]), [0, 1], kk, { adjoint }) as ad.Tensor;
      const vb = ad.vmap(f)(ks);
      for (let i = 0; i < 3; i++) assertClose(vb.at(i), f(ks.at(i)), { atol: 1e-8, rtol: 0 });
      const gb = ad.vmap(ad.grad((kk: ad.Tensor) => ad.sum(f(kk))))(ks);
      assertClose(
        gb,
        [0.5, 1, 2].map((kk) => -3 * Math.exp(-kk)),
        { atol: 1e-6, rtol: 0 },
      );
    }
    const g = (kk: ad.Tensor) => ad.odeint(decay, f64([1, 2]), [0, 1], kk, { method: "rk4" }) as ad.Tensor;
    assertClose(ad.jit(g)(f64(0.5)), g(f64(0.5)), { atol: 1e-14, rtol: 0 });
    const gg = ad.grad((kk: ad.Tensor) => ad.sum(g(kk)));
    assertClose(ad.jit(gg)(f64(0.5)), gg(f64(0.5)), { atol: 1e-12, rtol: 0 });
  });

  test("values f closes over are differentiated, in both modes; eager backward()", () => {
    for (const adjoint of [false, true]) {
      const closed = (kk: ad.Tensor) =>
        ad.sum(
          ad.odeint((y: ad.Tensor) => ad.mul(ad.neg(kk), y), f64([1, 2]), [0, 1], undefined, {
            adjoint,
          }) as ad.Tensor,
        );
      assertClose(ad.grad(closed)(f64(0.5)), -3 * Math.exp(-0.5), { atol: 1e-6, rtol: 0 });
      const k = ad.tensor(0.5, { dtype: "float64", requiresGrad: true });
      ad.sum(ad.odeint(decay, f64([1, 2]), [0, 1], k, { adjoint }) as ad.Tensor).backward();
      assertClose(k.grad, -3 * Math.exp(-0.5), { atol: 1e-6, rtol: 0 });
    }
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

describe("memory: the adjoint method records the same whatever the number of steps", () => {
  test("rk4 with 10 vs 200 substeps, dopri5 at rtol 1e-4 vs 1e-10: adjoint constant, direct growing", () => {
    const stats = (opts: ad.OdeintOptions) => {
      const loss = (k: ad.Tensor) =>
        ad.sum(ad.odeint(decay, f64([1, 2, 3]), [0, 1, 2], k, opts) as ad.Tensor);
      return tapeStats(
        record(loss as (...a: never[]) => unknown, [f64(0.5)], [0], false, "test").interp.nodes,
      );
    };
    const pairs: [ad.OdeintOptions, ad.OdeintOptions][] = [
      [
        { method: "rk4", substeps: 10 },
        { method: "rk4", substeps: 200 },
      ],
      [
        { rtol: 1e-4, atol: 1e-4 },
        { rtol: 1e-10, atol: 1e-10 },
      ],
    ];
    for (const [few, many] of pairs) {
      const a1 = stats({ ...few, adjoint: true });
      const a2 = stats({ ...many, adjoint: true });
      assert.deepEqual(a1, a2);
      const d1 = stats(few);
      const d2 = stats(many);
      assert.ok(d2.nodes > 3 * d1.nodes, `direct nodes ${d1.nodes} → ${d2.nodes}`);
      assert.ok(d2.bytes > 3 * d1.bytes);
      assert.ok(a2.bytes < d1.bytes, `adjoint ${a2.bytes} B vs direct ${d1.bytes} B`);
    }
  });
});

describe("errors", () => {
  const f = (y: ad.Tensor) => ad.neg(y);
  test("ts: wrong rank, empty, not monotonic, not finite, not float, not a tensor", () => {
    assert.throws(
      () => ad.odeint(f, 1, ad.zeros([1, 2], { dtype: "float64" })),
      (e: unknown) => e instanceof ad.ShapeError && /\[1, 2\]/.test((e as Error).message),
    );
    assert.throws(() => ad.odeint(f, 1, []), ad.ShapeError);
    assert.throws(
      () => ad.odeint(f, 1, [0, 1, 0.5]),
      (e: unknown) => e instanceof ad.TransformError && /monotonic/.test((e as Error).message),
    );
    assert.throws(() => ad.odeint(f, 1, [0, Number.NaN]), ad.TransformError);
    assert.throws(() => ad.odeint(f, 1, ad.tensor([0, 1], { dtype: "int32" })), ad.DTypeError);
    assert.throws(() => ad.odeint(f, 1, "0..1" as never), ad.TransformError);
  });

  test("options: unknown method, bad tolerances and step counts", () => {
    assert.throws(
      () => ad.odeint(f, 1, [0, 1], undefined, { method: "euler" as never }),
      (e: unknown) =>
        e instanceof ad.TransformError &&
        /method/.test((e as Error).message) &&
        /euler/.test((e as Error).message),
    );
    assert.throws(() => ad.odeint(f, 1, [0, 1], undefined, { rtol: -1 }), ad.TransformError);
    assert.throws(() => ad.odeint(f, 1, [0, 1], undefined, { substeps: 0 }), ad.TransformError);
    assert.throws(() => ad.odeint(f, 1, [0, 1], undefined, { adjoint: "yes" as never }), ad.TransformError);
    assert.throws(() => ad.odeint(f, 1, [0, 1], undefined, null as never), ad.TransformError);
  });

  test("f's output shape or structure, y0's dtype, a tangent of the wrong shape", () => {
    assert.throws(
      () => ad.odeint((y: ad.Tensor) => ad.concat([y, y]), f64([1]), [0, 1]),
      (e: unknown) =>
        e instanceof ad.ShapeError &&
        (e as Error).message.startsWith("odeint: ") &&
        /\[2\]/.test((e as Error).message) &&
        /\[1\]/.test((e as Error).message),
    );
    assert.throws(() => ad.odeint((y: ad.Tensor) => [y] as never, f64([1]), [0, 1]), ad.TransformError);
    assert.throws(() => ad.odeint(f, ad.tensor([1], { dtype: "int32" }), [0, 1]), ad.DTypeError);
    assert.throws(
      () => ad.jvp((y: ad.Tensor) => ad.odeint(f, y, [0, 1]), [f64([1, 2])], [f64([1])]),
      ad.ShapeError,
    );
  });

  test("dopri5 over its step budget, and under jit (rk4 works there)", () => {
    assert.throws(
      () => ad.odeint((y: ad.Tensor) => ad.mul(-1e6, y), f64(1), [0, 10], undefined, { maxSteps: 50 }),
      (e: unknown) => e instanceof ad.AdError && /maxSteps/.test((e as Error).message),
    );
    assert.throws(
      () => ad.jit((k: ad.Tensor) => ad.odeint(decay, f64(1), [0, 1], k))(f64(1)),
      (e: unknown) => e instanceof ad.TransformError && /rk4/.test((e as Error).message),
    );
  });
});
