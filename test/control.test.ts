/**
 * @file Structured control flow (API §3): cond, whileLoop, scan and fori — eagerly and under jit
 * against plain JS references; derivatives in both modes (where the contract allows) against
 * analytic values, unrolled loops and gradcheck; second order; pytrees; batching; the staged
 * programs; the errors; and the memory structure of scan's reverse mode (only the carries are
 * stored, the body is staged once).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose, plain } from "./helpers.js";

const f64 = (x: number | number[] | number[][]) => ad.tensor(x, { dtype: "float64" });
const close = (a: unknown, e: unknown, rtol = 1e-9, atol = 1e-12) => assertClose(a, e, { rtol, atol });
const names = (p: ad.Program) => p.eqns.map((e) => e.prim.name);

describe("cond", () => {
  const branchy = (x: ad.Tensor) =>
    ad.cond(
      ad.greater(ad.sum(x), 0),
      (v) => ad.mul(ad.sin(v), v),
      (v) => ad.cos(v),
      x,
    );
  const ref = (x: number) => (x > 0 ? Math.sin(x) * x : Math.cos(x));

  test("a concrete predicate runs only the chosen branch", () => {
    let calls = [0, 0];
    const g = (p: boolean | number | ad.Tensor) =>
      ad.cond(
        p,
        (a) => {
          calls[1]!++;
          return ad.add(a, 1);
        },
        (a) => {
          calls[0]!++;
          return ad.sub(a, 1);
        },
        3,
      );
    assert.equal(g(true).item(), 4);
    assert.equal(g(0).item(), 2);
    assert.equal(g(ad.tensor(true)).item(), 4);
    assert.equal(g(ad.tensor([0])).item(), 2);
    assert.deepEqual(calls, [2, 2]);
    // inside grad the predicate is still concrete: no cond primitive, the branch is taped
    calls = [0, 0];
    assert.equal(
      ad.grad((x: number) =>
        ad.cond(
          ad.greater(x, 0),
          (v) => ad.square(v),
          (v) => v,
          x,
        ),
      )(3),
      6,
    );
    assert.deepEqual(
      names(
        ad.trace((x: ad.Tensor) =>
          ad.cond(
            true,
            (v) => ad.exp(v),
            (v) => v,
            x,
          ),
        )(ad.scalar(1)),
      ),
      ["exp"],
    );
  });

  test("eager and jit agree with the JS reference on both sides", () => {
    const j = ad.jit(branchy);
    for (const x of [-2, -0.5, 0.7, 3]) {
      close(branchy(f64(x)).item(), ref(x));
      close(j(f64(x)).item(), ref(x));
    }
    assert.equal(j.traces, 1);
  });

  test("under jit the program holds one cond equation with both branches", () => {
    const p = ad.jit(branchy).lower(ad.scalar(1));
    assert.deepEqual(names(p), ["gt", "cond"]);
    assert.match(p.toString(), /cond\[true=\{sin mul\} false=\{cos\}\] v\d+ v1/);
    p.typecheck();
  });

  test("derivatives through a staged cond: grad, jvp, second order, both sides", () => {
    const d1 = (x: number) => (x > 0 ? Math.cos(x) * x + Math.sin(x) : -Math.sin(x));
    const d2 = (x: number) => (x > 0 ? 2 * Math.cos(x) - x * Math.sin(x) : -Math.cos(x));
    const j = ad.jit(branchy);
    for (const x of [-1.3, 0.9]) {
      close(ad.grad(j)(f64(x)).item(), d1(x));
      close(ad.jit(ad.grad(branchy))(f64(x)).item(), d1(x));
      close((ad.jvp(j, [f64(x)], [f64(1)])[1] as ad.Tensor).item(), d1(x));
      close(ad.grad(ad.grad(j))(f64(x)).item(), d2(x));
      close(ad.hessian(j)(f64(x)).item(), d2(x));
      close(ad.jit(ad.hessian(branchy))(f64(x)).item(), d2(x));
      close(ad.jvp(ad.grad(j), [f64(x)], [f64(1)])[1].item(), d2(x));
      assert.ok(ad.gradcheck(j, [f64([x, 0.4])]).ok);
      assert.ok(ad.gradgradcheck(j, [f64([x, 0.4])]).ok);
    }
  });

  test("values captured from outer transforms are differentiated (closure conversion)", () => {
    // d/dw cond(x > 0, v => v * w, v => v + w)(x) at x = 2: x; at x = -2: 1
    const h = (w: ad.Tensor, x: ad.Tensor) =>
      ad.jit((xx: ad.Tensor) =>
        ad.cond(
          ad.greater(xx, 0),
          (v) => ad.mul(v, w),
          (v) => ad.add(v, w),
          xx,
        ),
      )(x);
    close(ad.grad(h)(f64(3), f64(2)).item(), 2);
    close(ad.grad(h)(f64(3), f64(-2)).item(), 1);
    const both = ad.grad(
      (w: ad.Tensor, x: ad.Tensor) =>
        ad.jit((xx: ad.Tensor) =>
          ad.cond(
            ad.greater(xx, 0),
            (v) => ad.mul(ad.mul(v, w), w),
            (v) => v,
            xx,
          ),
        )(x),
      { argnums: [0, 1] },
    )(f64(3), f64(2));
    close(plain(both), [12, 9]);
  });

  test("pytrees of operands and results; numbers adopt the other branch's dtype", () => {
    const g = ad.jit((p: { a: ad.Tensor; b: ad.Tensor }, k: ad.Tensor) =>
      ad.cond(
        ad.greater(k, 0),
        (q, kk) => ({ s: ad.add(q.a, q.b), t: [ad.sum(ad.mul(q.a, kk))] }),
        (q) => ({ s: ad.sub(q.a, q.b), t: [0] }),
        p,
        k,
      ),
    );
    const p = { a: ad.tensor([1, 2]), b: ad.tensor([10, 20]) };
    const pos = g(p, ad.scalar(2));
    const neg = g(p, ad.scalar(-1));
    close(plain(pos), { s: [11, 22], t: [6] });
    close(plain(neg), { s: [-9, -18], t: [0] });
    assert.equal((neg.t[0] as ad.Tensor).dtype, "float32");
  });

  test("mismatched branches are typed errors", () => {
    const x = ad.scalar(1);
    const run = (t: (v: ad.Tensor) => unknown, f: (v: ad.Tensor) => unknown) =>
      ad.jit((v: ad.Tensor) => ad.cond(ad.greater(v, 0), t, f, v))(x);
    assert.throws(
      () =>
        run(
          (v) => v,
          (v) => ad.stack([v, v]),
        ),
      ad.ShapeError,
    );
    assert.throws(
      () =>
        run(
          (v) => [v],
          (v) => v,
        ),
      ad.TransformError,
    );
    assert.throws(
      () =>
        run(
          (v) => ({ a: v }),
          (v) => ({ b: v }),
        ),
      /different structures/,
    );
    assert.throws(
      () =>
        run(
          (v) => v,
          (v) => ad.astype(v, "int32"),
        ),
      (e: unknown) => e instanceof ad.DTypeError && /different dtypes/.test((e as Error).message),
    );
    assert.throws(
      () =>
        ad.cond(
          ad.tensor([true, false]),
          (v) => v,
          (v) => v,
          1,
        ),
      ad.ShapeError,
    );
    assert.throws(
      () =>
        ad.cond(
          "yes" as never,
          (v) => v,
          (v) => v,
          1,
        ),
      ad.TransformError,
    );
  });

  test("eager autograd through a jitted cond; vmap with a batched predicate", () => {
    const x = ad.tensor([0.5, 2], { requiresGrad: true });
    ad.jit(branchy)(x).sum().backward();
    close(
      plain(x.grad),
      [0.5, 2].map((v) => Math.cos(v) * v + Math.sin(v)),
      1e-6,
    );
    const vx = ad.vmap((v: ad.Tensor) =>
      ad.cond(
        ad.greater(v, 0),
        (a) => ad.mul(a, 10),
        (a) => ad.neg(a),
        v,
      ),
    );
    close(plain(vx(ad.tensor([1, -2, 3]))), [10, 2, 30]);
    close(plain(ad.jit(vx)(ad.tensor([-1, 2]))), [1, 20]);
    // per-example gradients of a branchy function
    close(plain(ad.vmap(ad.grad(ad.jit((v: ad.Tensor) => branchy(v))))(f64([-1, 0.5]))), [
      Math.sin(1),
      Math.cos(0.5) * 0.5 + Math.sin(0.5),
    ]);
  });
});

describe("whileLoop", () => {
  // y ← y·x until k = 5: y = x⁵
  const pow5 = (x: ad.Tensor) =>
    ad.whileLoop(
      ([, k]) => ad.less(k, 5),
      ([y, k]) => [ad.mul(y, x), ad.add(k, 1)],
      [ad.onesLike(x), ad.scalar(0, { dtype: "int32" })],
    )[0];
  // value-dependent trip count: double until ≥ 100
  const doubling = (x: ad.Tensor) =>
    ad.whileLoop(
      (c) => ad.less(c, 100),
      (c) => ad.mul(c, 2),
      x,
    );
  const doublingRef = (x: number) => {
    let c = x;
    while (c < 100) c *= 2;
    return c;
  };

  test("eagerly a JS loop: values, and both modes of differentiation", () => {
    for (const x of [1, 3, 7, 150]) close(doubling(f64(x)).item(), doublingRef(x));
    close(ad.grad(pow5)(f64(1.5)).item(), 5 * 1.5 ** 4);
    close((ad.jvp(pow5, [f64(1.5)], [f64(1)])[1] as ad.Tensor).item(), 5 * 1.5 ** 4);
    close(ad.hessian(pow5)(f64(1.5)).item(), 20 * 1.5 ** 3);
    // under trace every value is abstract (even the counter): a while primitive
    assert.deepEqual(names(ad.trace(pow5)(ad.scalar(2))), ["while"]);
  });

  test("under jit a while primitive with value-dependent trip counts", () => {
    const j = ad.jit(doubling);
    for (const x of [1, 3, 7, 150]) close(j(f64(x)).item(), doublingRef(x));
    assert.equal(j.traces, 1);
    const p = j.lower(ad.scalar(1));
    assert.deepEqual(names(p), ["while"]);
    assert.match(p.toString(), /while\[cond=\{lt\} body=\{mul\}\]/);
  });

  test("forward mode under jit; reverse mode is a TransformError", () => {
    const j = ad.jit(pow5);
    close(j(f64(1.5)).item(), 1.5 ** 5);
    close((ad.jvp(j, [f64(1.5)], [f64(1)])[1] as ad.Tensor).item(), 5 * 1.5 ** 4);
    close((ad.jvp(j, [f64([1.5, 2])], [f64([1, 0])])[1] as ad.Tensor).toArray(), [5 * 1.5 ** 4, 0]);
    // d/dx (x ↦ doubling(x)) = 2^n with n the trip count
    close((ad.jvp(ad.jit(doubling), [f64(3)], [f64(1)])[1] as ad.Tensor).item(), 64);
    assert.ok(ad.gradcheck(j, [f64([1.2, -0.7])], { modes: ["fwd"] }).ok);
    // forward over forward
    close(
      ad.jvp((x: ad.Tensor) => ad.jvp(j, [x], [f64(1)])[1] as ad.Tensor, [f64(1.5)], [f64(1)])[1].item(),
      20 * 1.5 ** 3,
    );
    const msg =
      /reverse-mode differentiation of whileLoop is not supported \(the number of iterations is unknown\); use scan or fori with fixed bounds/;
    assert.throws(
      () => ad.grad(j)(f64(1.5)),
      (e: unknown) => e instanceof ad.TransformError && msg.test((e as Error).message),
    );
    assert.throws(() => ad.jit(ad.grad(pow5))(f64(1.5)), ad.TransformError);
  });

  test("captured values get tangents; the carry may be a pytree", () => {
    const j = ad.jit((x: ad.Tensor, w: ad.Tensor) =>
      ad.whileLoop(
        (s: { v: ad.Tensor; n: ad.Tensor }) => ad.less(s.n, 3),
        (s) => ({ v: ad.add(ad.mul(s.v, w), 1), n: ad.add(s.n, 1) }),
        { v: x, n: 0 },
      ),
    );
    // v3 = x w³ + w² + w + 1
    const out = j(f64(2), f64(3));
    close(out.v.item(), 2 * 27 + 9 + 3 + 1);
    close(out.n.item(), 3);
    const [, t] = ad.jvp((w: ad.Tensor) => j(f64(2), w).v, [f64(3)], [f64(1)]);
    close((t as ad.Tensor).item(), 2 * 3 * 9 + 2 * 3 + 1);
  });

  test("errors: shape or structure changes, non-scalar predicates", () => {
    assert.throws(
      () =>
        ad.whileLoop(
          (c) => ad.less(ad.sum(c), 10),
          (c) => ad.concat([c, c]),
          ad.ones([1]),
        ),
      ad.ShapeError,
    );
    assert.throws(
      () =>
        ad.jit((x: ad.Tensor) =>
          ad.whileLoop(
            (c) => ad.less(ad.sum(c), 10),
            (c) => ad.concat([c, c]),
            x,
          ),
        )(ad.ones([1])),
      ad.ShapeError,
    );
    assert.throws(
      () =>
        ad.whileLoop(
          (c) => ad.less(c[0], 3),
          (c) => [c[0]] as never,
          [ad.scalar(0), ad.scalar(1)],
        ),
      ad.TransformError,
    );
    assert.throws(
      () =>
        ad.jit((x: ad.Tensor) =>
          ad.whileLoop(
            (c) => ad.less(c, 3),
            (c) => ad.add(c, 1),
            x,
          ),
        )(ad.zeros([2])),
      ad.ShapeError,
    );
  });

  test("eager autograd through a jitted while sees every iteration; vmap runs per-example trip counts", () => {
    const x = ad.tensor(1.5, { requiresGrad: true, dtype: "float64" });
    ad.jit(pow5)(x).backward();
    close(x.grad!.item(), 5 * 1.5 ** 4);
    close(plain(ad.vmap(doubling)(ad.tensor([1, 3, 200]))), [128, 192, 200]);
    close(plain(ad.jit(ad.vmap(doubling))(ad.tensor([1, 3, 200]))), [128, 192, 200]);
  });
});

describe("scan", () => {
  const cumsum = (xs: ad.Tensor) => ad.scan((c, x) => [ad.add(c, x), ad.add(c, x)], 0, xs);

  test("eager and jit agree with the JS loop; numbers adopt the dtype of the body", () => {
    const [tot, part] = cumsum(ad.tensor([1, 2, 3, 4]));
    assert.equal(tot.item(), 10);
    assert.deepEqual(part.toArray(), [1, 3, 6, 10]);
    assert.equal(tot.dtype, "float32");
    const j = ad.jit(cumsum);
    assert.deepEqual(plain(j(ad.tensor([1, 2, 3, 4]))), [10, [1, 3, 6, 10]]);
    const p = j.lower(ad.tensor([1, 2, 3, 4]));
    assert.deepEqual(names(p), ["scan"]);
    assert.match(p.toString(), /scan\[length=4 consts=0 carry=1 body=\{add\}\] 0:float32 v1/);
  });

  test("pytrees of carry, xs and ys; xs null with length; reverse; zero length", () => {
    const [c, ys] = ad.scan(
      (s: { a: ad.Tensor; b: ad.Tensor[] }, x: { u: ad.Tensor; v: ad.Tensor }) => [
        { a: ad.add(s.a, x.u), b: [ad.mul(s.b[0]!, x.v)] },
        { prev: s.a, pair: [x.u, ad.sum(x.v)] },
      ],
      { a: ad.scalar(0), b: [ad.ones([2])] },
      {
        u: ad.tensor([1, 2, 3]),
        v: ad.tensor([
          [1, 2],
          [3, 4],
          [5, 6],
        ]),
      },
    );
    assert.deepEqual(plain(c), { a: 6, b: [[15, 48]] });
    assert.deepEqual(plain(ys), {
      prev: [0, 1, 3],
      pair: [
        [1, 2, 3],
        [3, 7, 11],
      ],
    });

    const [n, seq] = ad.scan((k, _x: null) => [ad.mul(k, 2), k], ad.scalar(1), null, { length: 5 });
    assert.equal(n.item(), 32);
    assert.deepEqual(seq.toArray(), [1, 2, 4, 8, 16]);

    const [rt, rp] = ad.scan((cc, x) => [ad.add(cc, x), cc], ad.scalar(0), ad.tensor([1, 2, 3]), {
      reverse: true,
    });
    assert.equal(rt.item(), 6);
    assert.deepEqual(rp.toArray(), [5, 3, 0]);

    const [z, zy] = ad.scan((cc, x) => [ad.add(cc, ad.sum(x)), ad.mul(x, 2)], ad.scalar(7), ad.zeros([0, 2]));
    assert.equal(plain(z), 7);
    assert.deepEqual(zy.shape, [0, 2]);
    const [gz] = ad.grad((a: ad.Tensor) =>
      ad.sum(ad.scan((cc, x) => [ad.mul(cc, x), cc], a, ad.zeros([0]))[0]),
    )(ad.scalar(2)).shape;
    assert.equal(gz, undefined);
  });

  // An RNN cell: h ← tanh(W h + U x_t + b); loss = Σ_t Σ h_t + Σ h_T²
  const W = f64([
    [0.5, -0.3, 0.1],
    [0.2, 0.4, -0.6],
    [-0.1, 0.3, 0.2],
  ]);
  const U = f64([
    [0.7, -0.2],
    [0.1, 0.5],
    [-0.4, 0.3],
  ]);
  const b = f64([0.05, -0.1, 0.2]);
  const xs = f64([
    [1, 0.5],
    [-0.3, 0.8],
    [0.6, -1],
    [0.2, 0.1],
    [-0.7, 0.4],
  ]);
  const cell = (p: { W: ad.Tensor; U: ad.Tensor; b: ad.Tensor }, h: ad.Tensor, x: ad.Tensor) =>
    ad.tanh(ad.add(ad.add(ad.matmul(p.W, h), ad.matmul(p.U, x)), p.b));
  const rnnScan = (p: { W: ad.Tensor; U: ad.Tensor; b: ad.Tensor }, seq: ad.Tensor) => {
    const [h, hs] = ad.scan(
      (hh, x) => {
        const h2 = cell(p, hh, x);
        return [h2, h2];
      },
      ad.zeros([3], { dtype: "float64" }),
      seq,
    );
    return ad.add(ad.sum(hs), ad.sum(ad.square(h)));
  };
  const rnnLoop = (p: { W: ad.Tensor; U: ad.Tensor; b: ad.Tensor }, seq: ad.Tensor) => {
    let h = ad.zeros([3], { dtype: "float64" });
    let s = ad.scalar(0, { dtype: "float64" });
    for (let t = 0; t < seq.shape[0]!; t++) {
      h = cell(p, h, seq.at(t));
      s = ad.add(s, ad.sum(h));
    }
    return ad.add(s, ad.sum(ad.square(h)));
  };
  const params = { W, U, b };

  test("an RNN-like scan: value and gradients match the unrolled loop (eager, jit, both orders)", () => {
    close(rnnScan(params, xs).item(), rnnLoop(params, xs).item());
    const gLoop = plain(ad.grad(rnnLoop, { argnums: [0, 1] })(params, xs));
    close(plain(ad.grad(rnnScan, { argnums: [0, 1] })(params, xs)), gLoop);
    close(plain(ad.jit(ad.grad(rnnScan, { argnums: [0, 1] }))(params, xs)), gLoop);
    close(plain(ad.grad(ad.jit(rnnScan), { argnums: [0, 1] })(params, xs)), gLoop);
    // forward mode: the directional derivative along a perturbation of W
    const dW = f64([
      [1, 0, -1],
      [0, 2, 0],
      [0.5, 0, 0],
    ]);
    const fw = (Wv: ad.Tensor) => rnnScan({ W: Wv, U, b }, xs);
    const fl = (Wv: ad.Tensor) => rnnLoop({ W: Wv, U, b }, xs);
    close((ad.jvp(fw, [W], [dW])[1] as ad.Tensor).item(), (ad.jvp(fl, [W], [dW])[1] as ad.Tensor).item());
    // second order: Hessian wrt b, and an hvp wrt W
    close(
      plain(ad.hessian((bb: ad.Tensor) => rnnScan({ W, U, b: bb }, xs))(b)),
      plain(ad.hessian((bb: ad.Tensor) => rnnLoop({ W, U, b: bb }, xs))(b)),
    );
    close(plain(ad.hvp(fw, [W], [dW])), plain(ad.hvp(fl, [W], [dW])));
    // reverse over reverse
    const gg = (rnn: typeof rnnScan) => (bb: ad.Tensor) =>
      ad.sum(ad.square(ad.grad((c: ad.Tensor) => rnn({ W, U, b: c }, xs))(bb)));
    close(plain(ad.grad(gg(rnnScan))(b)), plain(ad.grad(gg(rnnLoop))(b)));
  });

  test("gradcheck and gradgradcheck, every input (consts, carry, xs)", () => {
    const f = (w: ad.Tensor, h0: ad.Tensor, seq: ad.Tensor) =>
      ad.scan(
        (h, x) => {
          const h2 = ad.add(ad.mul(ad.sin(ad.mul(h, w)), x), ad.mul(h, 0.5));
          return [h2, ad.mul(h2, x)];
        },
        h0,
        seq,
      );
    const args = [
      f64([0.7, -1.1]),
      f64([0.3, 0.9]),
      f64([
        [1, 2],
        [0.5, -1],
        [2, 0.3],
      ]),
    ];
    assert.ok(ad.gradcheck(f, args).ok);
    assert.ok(ad.gradgradcheck(f, args).ok);
    assert.ok(ad.gradcheck(ad.jit(f), args).ok);
    const rev = (w: ad.Tensor, h0: ad.Tensor, seq: ad.Tensor) =>
      ad.scan((h, x) => [ad.mul(ad.cos(h), x), ad.mul(h, w)], h0, seq, { reverse: true });
    assert.ok(ad.gradcheck(rev, args).ok);
    assert.ok(ad.gradgradcheck(rev, args).ok);
  });

  test("integer carries ride along; values captured from outer transforms are differentiated", () => {
    // carry (counter, value): value ← value · w + counter
    const f = (w: ad.Tensor) =>
      ad.scan(
        ([k, v], _x: null) => [[ad.add(k, 1), ad.add(ad.mul(v, w), ad.astype(k, "float64"))], v],
        [ad.scalar(0, { dtype: "int32" }), ad.scalar(1, { dtype: "float64" })],
        null,
        { length: 4 },
      )[0][1];
    // v4 = w⁴ + w² + 2w + 3
    const w = 1.3;
    close(f(f64(w)).item(), w ** 4 + w ** 2 + 2 * w + 3);
    close(ad.grad(f)(f64(w)).item(), 4 * w ** 3 + 2 * w + 2);
    close((ad.jvp(f, [f64(w)], [f64(1)])[1] as ad.Tensor).item(), 4 * w ** 3 + 2 * w + 2);
    close(ad.hessian(f)(f64(w)).item(), 12 * w ** 2 + 2);
    close(ad.jit(ad.grad(f))(f64(w)).item(), 4 * w ** 3 + 2 * w + 2);
  });

  test("reverse mode stores only the carries and stages the body once", () => {
    let calls = 0;
    const make = (T: number) => {
      const seq = ad.ones([T, 4]);
      return (w: ad.Tensor) =>
        ad.sum(
          ad.scan(
            (h: ad.Tensor, x: ad.Tensor) => {
              calls++;
              // several intermediates per step, none of which may be stored
              const a = ad.mul(h, w);
              const z = ad.sin(ad.add(ad.exp(ad.mul(a, 0.1)), x));
              return [ad.tanh(z), null];
            },
            ad.zeros([4]),
            seq,
          )[0],
        );
    };
    const w = ad.tensor([0.1, 0.2, 0.3, 0.4]);
    const progs = [5, 50].map((T) => {
      calls = 0;
      const p = ad.trace(ad.grad(make(T)))(w);
      // one staging of the body, whatever the length and despite the derivative
      assert.equal(calls, 1);
      return { T, p };
    });
    // the backward program does not grow with the length: no per-step equations
    assert.equal(progs[0]!.p.eqns.length, progs[1]!.p.eqns.length);
    for (const { T, p } of progs) {
      const scans = p.eqns.filter((e) => e.prim.name === "scan");
      assert.equal(scans.length, 2);
      const [fwd, bwd] = scans as [ad.Eqn, ad.Eqn];
      // the forward scan also outputs the carry entering each step: [T, 4], nothing per intermediate
      assert.match(p.toString(), new RegExp(`scan\\[length=${T} save_carries consts=1 carry=1`));
      const saved = fwd.outs.slice(1);
      assert.deepEqual(
        saved.map((v) => v.aval.shape),
        [[T, 4]],
      );
      // the reverse scan reads them (and xs), and runs backward
      assert.ok(bwd.inputs.includes(saved[0]!));
      assert.match(p.toString(), new RegExp(`scan\\[length=${T} reverse consts=1 carry=2`));
    }
    // and the gradient is right
    calls = 0;
    const g = ad.grad(make(5))(w);
    const loop = (wv: ad.Tensor) => {
      let h = ad.zeros([4]);
      for (let t = 0; t < 5; t++) h = ad.tanh(ad.sin(ad.add(ad.exp(ad.mul(ad.mul(h, wv), 0.1)), 1)));
      return ad.sum(h);
    };
    close(plain(g), plain(ad.grad(loop)(w)), 1e-5, 1e-6);
    assert.equal(calls, 1);
  });

  test("eager autograd with requiresGrad tensors, and vmap", () => {
    const w = ad.tensor([0.3, -0.2], { requiresGrad: true, dtype: "float64" });
    const seq = f64([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const f = (wv: ad.Tensor) =>
      ad.sum(
        ad.scan(
          (c, x) => [ad.tanh(ad.add(ad.mul(c, wv), x)), null],
          ad.zeros([2], { dtype: "float64" }),
          seq,
        )[0],
      );
    f(w).backward();
    close(plain(w.grad), plain(ad.grad(f)(f64([0.3, -0.2]))));
    // vmap over sequences, and per-example gradients
    const batch = f64([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const [totals, partials] = ad.vmap((s: ad.Tensor) =>
      ad.scan((c, x) => [ad.add(ad.mul(c, 2), x), c], 0, s),
    )(batch);
    close(plain(totals), [11, 32]);
    close(plain(partials), [
      [0, 1, 4],
      [0, 4, 13],
    ]);
    const g = (k: ad.Tensor, s: ad.Tensor) =>
      ad.scan((c, x) => [ad.add(ad.mul(c, k), x), null], ad.scalar(0, { dtype: "float64" }), s)[0];
    // c3 = x0 k² + x1 k + x2: d/dk = 2 k x0 + x1
    close(plain(ad.vmap(ad.grad(g), { inAxes: [null, 0] })(f64(2), batch)), [2 * 2 * 1 + 2, 2 * 2 * 4 + 5]);
    close(plain(ad.jit(ad.vmap(ad.grad(g), { inAxes: [null, 0] }))(f64(2), batch)), [6, 21]);
  });

  test("errors: carry changes, mismatched xs, missing length, bad body", () => {
    assert.throws(
      () => ad.scan((c, x) => [ad.stack([c, x]), null], ad.scalar(0), ad.tensor([1, 2])),
      ad.ShapeError,
    );
    assert.throws(
      () => ad.scan((c, x) => [ad.astype(ad.add(c, x), "int32"), null], ad.scalar(0), ad.tensor([1, 2])),
      ad.DTypeError,
    );
    assert.throws(
      () => ad.scan((c, _x) => [c, null], ad.scalar(0), [ad.zeros([2]), ad.zeros([3])]),
      ad.ShapeError,
    );
    assert.throws(
      () => ad.scan((c, _x) => [c, null], ad.scalar(0), ad.zeros([2]), { length: 3 }),
      ad.ShapeError,
    );
    assert.throws(() => ad.scan((c, _x) => [c, null], ad.scalar(0), null), ad.TransformError);
    assert.throws(() => ad.scan((c, _x) => [c, null], ad.scalar(0), ad.scalar(1)), ad.ShapeError);
    assert.throws(() => ad.scan((c) => c as never, ad.scalar(0), ad.zeros([2])), /must return a pair/);
    assert.throws(() => ad.scan((c, x) => [[c, x], null] as never, ad.scalar(0), ad.zeros([2])), /structure/);
  });
});

describe("fori", () => {
  test("equals the JS loop; reverse mode with concrete bounds", () => {
    assert.equal(ad.fori(0, 5, (i, c) => ad.add(c, i), ad.scalar(0)).item(), 10);
    assert.equal(ad.fori(3, 3, (i, c) => ad.add(c, i), ad.scalar(1)).item(), 1);
    assert.equal(
      ad.fori(ad.scalar(2, { dtype: "int32" }), 5, (i, c) => ad.mul(c, i), ad.scalar(1)).item(),
      24,
    );
    close(ad.grad((x: number) => ad.fori(0, 3, (_i, c) => ad.mul(c, x), 1))(2), 12);
    // Σ_i sin(i x): d/dx = Σ i cos(i x)
    const f = (x: ad.Tensor) =>
      ad.fori(1, 4, (i, c) => ad.add(c, ad.sin(ad.mul(i, x))), ad.scalar(0, { dtype: "float64" }));
    const x = 0.7;
    close(f(f64(x)).item(), Math.sin(x) + Math.sin(2 * x) + Math.sin(3 * x));
    close(ad.grad(f)(f64(x)).item(), Math.cos(x) + 2 * Math.cos(2 * x) + 3 * Math.cos(3 * x));
    close(ad.hessian(f)(f64(x)).item(), -Math.sin(x) - 4 * Math.sin(2 * x) - 9 * Math.sin(3 * x));
    assert.deepEqual(names(ad.jit(f).lower(f64(x))), ["scan"]);
    assert.throws(() => ad.fori(0, 2.5, (_i, c) => c, 0), ad.TransformError);
  });

  test("traced bounds under jit become a while loop (forward mode only)", () => {
    const f = ad.jit((x: ad.Tensor, n: ad.Tensor) => ad.fori(0, n, (_i, c) => ad.mul(c, x), ad.onesLike(x)));
    const n = ad.scalar(4, { dtype: "int32" });
    close(f(f64(1.5), n).item(), 1.5 ** 4);
    close(f(f64(1.5), ad.scalar(2, { dtype: "int32" })).item(), 1.5 ** 2);
    assert.equal(f.traces, 1);
    assert.deepEqual(names(f.lower(f64(1.5), n)), ["while"]);
    close((ad.jvp((x: ad.Tensor) => f(x, n), [f64(1.5)], [f64(1)])[1] as ad.Tensor).item(), 4 * 1.5 ** 3);
    assert.throws(() => ad.grad((x: ad.Tensor) => f(x, n))(f64(1.5)), ad.TransformError);
  });
});

describe("control flow in programs", () => {
  test("jit simplification handles sub-program params; nested control flow", () => {
    const big = ad.ones([200000]);
    const g = ad.jit((x: ad.Tensor) => {
      const a = ad.scan((c, _x: null) => [ad.add(c, ad.sum(ad.mul(big, x))), null], ad.scalar(0), null, {
        length: 2,
      })[0];
      const b = ad.cond(
        ad.greater(x, 0),
        (v) => ad.mul(v, 2),
        (v) => v,
        x,
      );
      return ad.add(a, b);
    });
    const t0 = Date.now();
    close(g(ad.scalar(1)).item(), 400002);
    assert.ok(Date.now() - t0 < 5000);
    // scan inside cond inside scan, differentiated in both modes
    const nested = (x: ad.Tensor) =>
      ad.scan(
        (c, xi) => {
          const inner = ad.cond(
            ad.greater(xi, 0),
            (v) => ad.scan((cc, _z: null) => [ad.mul(cc, v), null], c, null, { length: 2 })[0],
            (v) => ad.add(c, v),
            xi,
          );
          return [inner, inner];
        },
        x,
        f64([1.5, -1, 2]),
      )[0];
    const ref = (x: number) => (x * 1.5 * 1.5 - 1) * 2 * 2;
    const j = ad.jit(nested);
    close(j(f64(0.8)).item(), ref(0.8));
    close(ad.grad(j)(f64(0.8)).item(), 9);
    close((ad.jvp(j, [f64(0.8)], [f64(1)])[1] as ad.Tensor).item(), 9);
    assert.ok(ad.gradgradcheck(j, [f64(0.8)]).ok);
  });
});
