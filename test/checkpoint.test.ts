/**
 * @file Gradient checkpointing: `ad.checkpoint` (every policy) and `ad.checkpointSequential` give
 * the same values and bit-identical gradients as the unchecked functions — on a tanh chain and an
 * MLP with pytree parameters (passed as arguments or captured by closures) — under grad, vjp,
 * jit in both orders, vmap (a checkpoint of the batched body), nesting (hessian, jacrev∘grad, jvp, linearize) and eager autograd (one
 * recorded node; createGraph); plus the recomputation visible in traces and the typed errors.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose, plain } from "./helpers.js";

const f64 = (data: ad.TensorData) => ad.tensor(data, { dtype: "float64" });

/** Deterministic pseudo-random values in (-1, 1). */
function seq(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9);
}
function mat(rows: number, cols: number, seed: number): ad.Tensor {
  return ad.tensor(seq(rows * cols, seed), { dtype: "float64" }).reshape([rows, cols]);
}

// A chain of L layers v_k = tanh(W_k v_{k-1}).
const L = 6;
const Ws = Array.from({ length: L }, (_, k) => mat(4, 4, k + 1));
const x0 = f64(seq(4, 99));
const layer = (w: ad.Tensor) => (v: ad.Tensor) => ad.tanh(ad.matmul(w, v));
const chain = (ws: ad.Tensor[], v: ad.Tensor) => {
  for (const w of ws) v = layer(w)(v);
  return v;
};
const loss = (ws: ad.Tensor[], v: ad.Tensor) => ad.sum(ad.square(chain(ws, v)));

/** The same chain with its middle checkpointed (weights captured by the closure). */
const ckLoss =
  (opts: ad.CheckpointOptions = {}) =>
  (ws: ad.Tensor[], v: ad.Tensor) => {
    const h = layer(ws[0]!)(v);
    const mid = ad.checkpoint((u: ad.Tensor) => chain(ws.slice(1, L - 1), u), opts)(h);
    return ad.sum(ad.square(layer(ws[L - 1]!)(mid)));
  };
const seqLoss = (segments: number) => (ws: ad.Tensor[], v: ad.Tensor) =>
  ad.sum(ad.square(ad.checkpointSequential(ws.map(layer), segments, v)));

const gradBoth = (f: (ws: ad.Tensor[], v: ad.Tensor) => ad.Tensor) => ad.grad(f, { argnums: [0, 1] });

/** Bit-identical pytrees (0 ulp). */
function assertSame(actual: unknown, expected: unknown): void {
  assert.deepStrictEqual(plain(actual), plain(expected));
}

describe("checkpoint on a tanh chain", () => {
  const want = gradBoth(loss)(Ws, x0);
  test("values and gradients are bit-identical for every policy", () => {
    for (const policy of ["nothingSaveable", "dotsSaveable", "everythingSaveable"] as const) {
      assert.equal(ckLoss({ policy })(Ws, x0).item(), loss(Ws, x0).item());
      assertSame(gradBoth(ckLoss({ policy }))(Ws, x0), want);
    }
    assertSame(gradBoth(ckLoss({ policy: (name) => name === "tanh" }))(Ws, x0), want);
    assertSame(gradBoth(ckLoss())(Ws, x0), want);
  });
  test("checkpointSequential with any number of segments", () => {
    for (const segments of [1, 2, 3, 4, L, L + 5]) assertSame(gradBoth(seqLoss(segments))(Ws, x0), want);
    assertSame(
      gradBoth((ws, v) =>
        ad.sum(ad.square(ad.checkpointSequential(ws.map(layer), 3, v, { policy: "dotsSaveable" }))),
      )(Ws, x0),
      want,
    );
    assert.equal(ad.checkpointSequential([], 2, 5), 5);
  });
  test("vjp with a non-trivial cotangent; value of the checkpointed chain", () => {
    const f = (v: ad.Tensor) => ad.checkpoint((u: ad.Tensor) => chain(Ws, u))(v);
    const [y, back] = ad.vjp(f, x0);
    const [y0, back0] = ad.vjp((v: ad.Tensor) => chain(Ws, v), x0);
    assertSame(y, y0);
    const ct = f64([1, -2, 0.5, 3]);
    assertSame(back(ct), back0(ct));
  });
  test("under jit, in both orders", () => {
    for (const f of [ckLoss(), ckLoss({ policy: "dotsSaveable" }), seqLoss(3)]) {
      assertClose(ad.jit(gradBoth(f))(Ws, x0), want);
      assertClose(gradBoth(ad.jit(f))(Ws, x0), want);
      assertClose(ad.jit(f)(Ws, x0), loss(Ws, x0));
    }
  });
  test("nested: hessian (forward over reverse), jacrev∘grad, jvp, linearize, grad∘grad", () => {
    const lx = (v: ad.Tensor) => loss(Ws, v);
    const H = ad.hessian(lx)(x0);
    for (const policy of ["nothingSaveable", "dotsSaveable"] as const) {
      const cx = (v: ad.Tensor) => ckLoss({ policy })(Ws, v);
      assertClose(ad.hessian(cx)(x0), H);
      assertClose(ad.jacrev(ad.grad(cx))(x0), H);
      assertClose(ad.jvp(cx, [x0], [f64([1, 2, 3, 4])])[1], ad.jvp(lx, [x0], [f64([1, 2, 3, 4])])[1]);
      assertClose(ad.linearize(cx, x0)[1](f64([1, 0, 0, 0])), ad.linearize(lx, x0)[1](f64([1, 0, 0, 0])));
    }
    const sx = (v: ad.Tensor) => seqLoss(3)(Ws, v);
    assertClose(ad.hessian(sx)(x0), H);
    // A checkpoint inside a checkpoint.
    const nested = (v: ad.Tensor) =>
      ad.sum(ad.square(ad.checkpoint((u: ad.Tensor) => ad.checkpoint((z: ad.Tensor) => chain(Ws, z))(u))(v)));
    assertSame(ad.grad(nested)(x0), ad.grad(lx)(x0));
    assertClose(ad.hessian(nested)(x0), H);
  });
  test("eager: one recorded node, gradients identical, createGraph differentiates again", () => {
    const run = (f: (ws: ad.Tensor[], v: ad.Tensor) => ad.Tensor) => {
      const ws = Ws.map((w) => f64(w.toArray() as number[][]));
      for (const w of ws) w.requiresGrad = true;
      const v = f64(x0.toArray() as number[]);
      v.requiresGrad = true;
      f(ws, v).backward();
      return [ws.map((w) => w.grad), v.grad];
    };
    assertSame(run(ckLoss()), want);
    assertSame(run(ckLoss({ policy: "dotsSaveable" })), want);
    assertSame(run(seqLoss(2)), want);
    const v = f64([0.5, -0.5, 1, 0]);
    v.requiresGrad = true;
    const y = ad.checkpoint((u: ad.Tensor) => chain(Ws, u))(v);
    assert.equal(y.gradFn, "checkpoint");
    for (const policy of ["nothingSaveable", "dotsSaveable"] as const) {
      const u = f64([0.5, -0.5, 1, 0]);
      u.requiresGrad = true;
      const [g] = ad.autograd.grad(ckLoss({ policy })(Ws, u), u, { createGraph: true });
      ad.sum(g!).backward();
      const H = ad.hessian((z: ad.Tensor) => loss(Ws, z))(f64([0.5, -0.5, 1, 0]));
      assertClose(u.grad!, ad.sum(H, { axis: 0 }));
    }
  });
});

describe("checkpoint under vmap", () => {
  const X = mat(3, 4, 31);
  const lx = (v: ad.Tensor) => loss(Ws, v);
  test("vmap, vmap∘grad, grad∘vmap on another axis, vmap∘hessian; one checkpoint equation", () => {
    for (const policy of ["nothingSaveable", "dotsSaveable"] as const) {
      const cx = (v: ad.Tensor) => ckLoss({ policy })(Ws, v);
      assertClose(ad.vmap(cx)(X), ad.vmap(lx)(X));
      assertClose(ad.vmap(ad.grad(cx))(X), ad.vmap(ad.grad(lx))(X));
      const gT = (f: (v: ad.Tensor) => ad.Tensor) =>
        ad.grad((x: ad.Tensor) => ad.sum(ad.vmap(f, { inAxes: 1 })(x)));
      assertClose(gT(cx)(X.transpose()), gT(lx)(X.transpose()));
      assertClose(ad.vmap(ad.hessian(cx))(X), ad.vmap(ad.hessian(lx))(X));
    }
    const chainOnly = ad.checkpoint((u: ad.Tensor) => chain(Ws, u));
    const text = ad.trace(ad.vmap(chainOnly))(X).toString();
    assert.equal(text.split("\n").length, 3);
    assert.match(text, /checkpoint\[policy=nothingSaveable/);
  });
});

describe("checkpoint on an MLP", () => {
  const params = {
    l1: { w: mat(3, 5, 11), b: f64(seq(5, 12)) },
    l2: { w: mat(5, 5, 13), b: f64(seq(5, 14)) },
    out: { w: mat(5, 2, 15), b: f64(seq(2, 16)) },
  };
  type Params = typeof params;
  const xb = mat(4, 3, 17);
  const yb = mat(4, 2, 18);
  const block = (p: { w: ad.Tensor; b: ad.Tensor }, h: ad.Tensor) => ad.tanh(ad.add(ad.matmul(h, p.w), p.b));
  const mlp = (p: Params, x: ad.Tensor) => ad.add(ad.matmul(block(p.l2, block(p.l1, x)), p.out.w), p.out.b);
  const mse = (p: Params, x: ad.Tensor) => ad.mean(ad.square(ad.sub(mlp(p, x), yb)));
  // Parameters passed as arguments (a pytree) to the checkpointed hidden blocks.
  const ckArgs = (p: Params, x: ad.Tensor) => {
    const hidden = ad.checkpoint((q: Params, h: ad.Tensor) => block(q.l2, block(q.l1, h)));
    return ad.mean(ad.square(ad.sub(ad.add(ad.matmul(hidden(p, x), p.out.w), p.out.b), yb)));
  };
  // Parameters captured by the closure; the whole loss checkpointed, returning a pytree.
  const ckClosure = (p: Params, x: ad.Tensor) => {
    const r = ad.checkpoint((h: ad.Tensor) => ({ loss: mse(p, h), unused: ad.sum(h) }), {
      policy: "dotsSaveable",
    })(x);
    return r.loss;
  };
  const want = ad.grad(mse)(params, xb);
  test("gradients with respect to a parameter pytree are bit-identical", () => {
    assertSame(ad.grad(ckArgs)(params, xb), want);
    assertSame(ad.grad(ckClosure)(params, xb), want);
    assertSame(ad.grad(ckArgs, { argnums: 1 })(params, xb), ad.grad(mse, { argnums: 1 })(params, xb));
  });
  test("jit and eager", () => {
    assertClose(ad.jit(ad.grad(ckArgs))(params, xb), want);
    assertClose(ad.grad(ad.jit(ckClosure))(params, xb), want);
    const p = ad.tree.map((t: ad.Tensor) => {
      const c = f64(t.toArray() as number[]);
      c.requiresGrad = true;
      return c;
    }, params) as Params;
    ckClosure(p, xb).backward();
    assertSame(
      ad.tree.map((t: ad.Tensor) => t.grad, p),
      want,
    );
  });
});

describe("checkpoint: recomputation, arguments and errors", () => {
  test("the backward pass recomputes the body (visible in the trace of the gradient)", () => {
    const f = (v: ad.Tensor) => ad.sum(ad.checkpoint((u: ad.Tensor) => ad.tanh(ad.sin(u)))(v));
    const text = ad.trace(ad.grad(f))(x0).toString();
    assert.match(text, /checkpoint\[policy=nothingSaveable, body=2 eqns\]/);
    // sin is evaluated inside the checkpoint and once more, recomputed, outside it.
    assert.equal(text.split("\n").filter((l) => / = sin /.test(l)).length, 1);
    const dots = ad
      .trace(ad.grad((v: ad.Tensor) => ckLoss({ policy: "dotsSaveable" })(Ws, v)))(x0)
      .toString();
    const nothing = ad
      .trace(ad.grad((v: ad.Tensor) => ckLoss()(Ws, v)))(x0)
      .toString();
    const count = (t: string) => t.split("\n").filter((l) => / = matmul /.test(l)).length;
    // dotsSaveable keeps the L-2 inner products instead of recomputing them.
    assert.equal(count(nothing) - count(dots), L - 2);
  });
  test("non-tensor arguments are static (JS control flow on them works); int tensors are fine", () => {
    const power = ad.checkpoint((v: ad.Tensor, n: number) => {
      let r = v;
      for (let i = 1; i < n; i++) r = ad.mul(r, v);
      return r;
    });
    assertClose(ad.grad((v: ad.Tensor) => ad.sum(power(v, 3)))(f64([1, 2])), [3, 12]);
    const pick = ad.checkpoint((v: ad.Tensor, idx: ad.Tensor) => ad.take(ad.exp(v), idx));
    const idx = ad.tensor([1, 1, 0], { dtype: "int32" });
    assertClose(ad.grad((v: ad.Tensor) => ad.sum(pick(v, idx)))(f64([0, 1])), [1, 2 * Math.E]);
    assert.equal(ad.checkpoint((v: number) => v * 2)(3), 6);
  });
  test("typed errors", () => {
    const isTE = (re: RegExp) => (e: unknown) =>
      e instanceof ad.TransformError && re.test((e as Error).message);
    assert.throws(
      () => ad.checkpoint((v: ad.Tensor) => v, { policy: "sometimes" as never }),
      isTE(/unknown policy/),
    );
    assert.throws(() => ad.checkpoint(3 as never), isTE(/expected a function/));
    assert.throws(() => ad.checkpointSequential([layer(Ws[0]!)], 0, x0), isTE(/positive integer/));
    assert.throws(() => ad.checkpointSequential([3 as never], 1, x0), isTE(/array of functions/));
    // The body is traced: a JS if on a tensor value points to ad.cond.
    const branchy = ad.checkpoint((v: ad.Tensor) => (ad.sum(v).item() > 0 ? v : ad.neg(v)));
    assert.throws(() => branchy(x0), isTE(/ad\.cond/));
    assert.ok(ad.checkpoint(loss, { policy: "everythingSaveable" }) === loss);
  });
});
