/**
 * @file Attention: `ad.nn.scaledDotProductAttention` (blocked forward pass, FlashAttention-style
 * custom VJP that recomputes the probabilities from the saved log-sum-exp) against the plain
 * composition softmax(Q·Kᵀ·scale)·V written here with ordinary ops — values, reverse-mode and
 * forward-mode derivatives, second derivatives, eager backward — and `nn.MultiHeadAttention`
 * against the same composition over its own parameters.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose } from "./helpers.js";

const randn = (seed: number, shape: number[]) =>
  ad.random.normal(ad.random.key(seed), shape, { dtype: "float64" });

/** The reference: softmax(Q·Kᵀ·scale, masked with −∞)·V by plain ops (stores the T×T matrix). */
function plainAttention(
  q: ad.Tensor,
  k: ad.Tensor,
  v: ad.Tensor,
  opts: { mask?: ad.Tensor; causal?: boolean; scale?: number } = {},
): ad.Tensor {
  const d = q.shape[q.ndim - 1]!;
  const tq = q.shape[q.ndim - 2]!;
  const tk = k.shape[k.ndim - 2]!;
  const perm = [...k.shape.keys()];
  perm.splice(-2, 2, k.ndim - 1, k.ndim - 2);
  let s = ad.mul(ad.matmul(q, ad.transpose(k, perm)), opts.scale ?? 1 / Math.sqrt(d));
  let allow: ad.Tensor | null = opts.mask ?? null;
  if (opts.causal === true) {
    const c = ad.greaterEqual(ad.arange(tq).reshape([tq, 1]), ad.arange(tk).reshape([1, tk]));
    allow = allow === null ? c : ad.logicalAnd(allow, c);
  }
  if (allow !== null) s = ad.where(allow, s, -Infinity);
  return ad.matmul(ad.softmax(s, -1), v);
}

describe("scaledDotProductAttention", () => {
  const q = randn(1, [2, 7, 4]);
  const k = randn(2, [2, 9, 4]);
  const v = randn(3, [2, 9, 3]);
  // Random, but key 0 is always allowed, so that no row is fully masked (the composition gives NaN there).
  const mask = ad.logicalOr(
    ad.greater(ad.random.uniform(ad.random.key(4), [2, 7, 9]), 0.3),
    ad.equal(ad.arange(9), 0),
  );
  const cases: { name: string; opts: ad.nn.AttentionOptions; ref: Parameters<typeof plainAttention>[3] }[] = [
    { name: "no mask", opts: {}, ref: {} },
    { name: "blocks of 2 rows", opts: { blockSize: 2 }, ref: {} },
    { name: "causal, blocks of 3", opts: { causal: true, blockSize: 3 }, ref: { causal: true } },
    { name: "bool mask, blocks of 4", opts: { mask, blockSize: 4 }, ref: { mask } },
    {
      name: "mask and causal, custom scale",
      opts: { mask, causal: true, scale: 0.3, blockSize: 5 },
      ref: { mask, causal: true, scale: 0.3 },
    },
  ];

  for (const c of cases) {
    test(`values match the plain composition: ${c.name}`, () => {
      assertClose(ad.nn.scaledDotProductAttention(q, k, v, c.opts), plainAttention(q, k, v, c.ref), {
        rtol: 1e-12,
        atol: 1e-12,
      });
    });

    test(`reverse-mode gradients (q, k, v) match the plain composition: ${c.name}`, () => {
      const w = randn(5, [2, 7, 3]); // a random cotangent direction
      const lf = (f: typeof plainAttention) => (qq: ad.Tensor, kk: ad.Tensor, vv: ad.Tensor) =>
        ad.sum(ad.mul(ad.tanh(f(qq, kk, vv, c.ref)), w));
      const flash = (qq: ad.Tensor, kk: ad.Tensor, vv: ad.Tensor) =>
        ad.nn.scaledDotProductAttention(qq, kk, vv, c.opts);
      const g1 = ad.grad(lf(flash), { argnums: [0, 1, 2] })(q, k, v);
      const g2 = ad.grad(lf(plainAttention), { argnums: [0, 1, 2] })(q, k, v);
      assertClose(g1, g2, { rtol: 1e-10, atol: 1e-12 });
    });
  }

  test("gradcheck in float64 (forward and reverse mode), causal with a mask, small blocks", () => {
    const m = ad.greater(ad.random.uniform(ad.random.key(8), [3, 5]), 0.2);
    const r = ad.gradcheck(
      (a: ad.Tensor, b: ad.Tensor, c: ad.Tensor) =>
        ad.nn.scaledDotProductAttention(a, b, c, { mask: m, causal: true, blockSize: 2 }),
      [randn(1, [3, 2]), randn(2, [5, 2]), randn(3, [5, 2])],
    );
    assert.ok(r.ok, r.message);
  });

  test("second derivatives (hessian, the backward pass differentiated) match the plain composition", () => {
    const qs = randn(11, [3, 2]);
    const ks = randn(12, [4, 2]);
    const vs = randn(13, [4, 2]);
    const loss = (f: (a: ad.Tensor) => ad.Tensor) => (a: ad.Tensor) => ad.sum(ad.square(f(a)));
    const h1 = ad.hessian(loss((a) => ad.nn.scaledDotProductAttention(a, ks, vs, { blockSize: 2 })))(qs);
    const h2 = ad.hessian(loss((a) => plainAttention(a, ks, vs)))(qs);
    assertClose(h1, h2, { rtol: 1e-9, atol: 1e-11 });
    const gg1 = ad.grad((b: ad.Tensor) =>
      ad.sum(
        ad.grad((a: ad.Tensor) => ad.sum(ad.nn.scaledDotProductAttention(a, b, vs, { causal: true })))(qs),
      ),
    )(ks);
    const gg2 = ad.grad((b: ad.Tensor) =>
      ad.sum(ad.grad((a: ad.Tensor) => ad.sum(plainAttention(a, b, vs, { causal: true })))(qs)),
    )(ks);
    assertClose(gg1, gg2, { rtol: 1e-9, atol: 1e-11 });
  });

  test("forward mode (jvp) matches the plain composition", () => {
    const tq = randn(21, [2, 7, 4]);
    const tk = randn(22, [2, 9, 4]);
    const tv = randn(23, [2, 9, 3]);
    const [o1, t1] = ad.jvp(
      (a: ad.Tensor, b: ad.Tensor, c: ad.Tensor) => ad.nn.scaledDotProductAttention(a, b, c, { mask }),
      [q, k, v],
      [tq, tk, tv],
    );
    const [o2, t2] = ad.jvp(
      (a: ad.Tensor, b: ad.Tensor, c: ad.Tensor) => plainAttention(a, b, c, { mask }),
      [q, k, v],
      [tq, tk, tv],
    );
    assertClose(o1, o2, { rtol: 1e-12, atol: 1e-12 });
    assertClose(t1, t2, { rtol: 1e-10, atol: 1e-12 });
  });

  test("eager backward (and createGraph) match the plain composition", () => {
    const grads = (f: typeof plainAttention, createGraph: boolean) => {
      const a = q.detach();
      a.requiresGrad = true;
      const out = ad.sum(ad.square(f(a, k, v, { causal: true })));
      const [g] = ad.autograd.grad([out], [a], { createGraph });
      if (!createGraph) return [g!];
      const [gg] = ad.autograd.grad([ad.sum(ad.square(g!))], [a]);
      return [g!.detach(), gg!];
    };
    const flash: typeof plainAttention = (a, b, c, o) =>
      ad.nn.scaledDotProductAttention(a, b, c, { ...o, blockSize: 3 });
    assertClose(grads(flash, false), grads(plainAttention, false), { rtol: 1e-10, atol: 1e-12 });
    assertClose(grads(flash, true), grads(plainAttention, true), { rtol: 1e-9, atol: 1e-11 });
  });

  test("a query row with no allowed key gives zeros (and finite gradients)", () => {
    const m = ad.tensor(
      [
        [true, true],
        [false, false],
      ],
      { dtype: "bool" },
    );
    const a = randn(1, [2, 3]);
    const out = ad.nn.scaledDotProductAttention(a, a, a, { mask: m });
    assert.deepEqual((out.toArray() as number[][])[1], [0, 0, 0]);
    const g = ad.grad((x: ad.Tensor) => ad.sum(ad.nn.scaledDotProductAttention(x, x, x, { mask: m })))(a);
    assert.ok(Array.from(g.data()).every(Number.isFinite));
  });

  test("float32 with large scores stays finite and close to the float64 result", () => {
    const big = ad.mul(randn(31, [16, 8]), 30);
    const o64 = ad.nn.scaledDotProductAttention(big, big, big, { blockSize: 5 });
    const b32 = ad.astype(big, "float32");
    const o32 = ad.nn.scaledDotProductAttention(b32, b32, b32, { blockSize: 5 });
    assert.ok(Array.from(o32.data()).every(Number.isFinite));
    assert.ok(ad.allclose(ad.astype(o32, "float64"), o64, { rtol: 1e-3, atol: 1e-2 }));
  });

  test("bad inputs are typed errors", () => {
    assert.throws(() => ad.nn.scaledDotProductAttention(q, randn(1, [2, 9, 5]), v), ad.ShapeError);
    assert.throws(() => ad.nn.scaledDotProductAttention(q, k, randn(1, [2, 8, 3])), ad.ShapeError);
    assert.throws(() => ad.nn.scaledDotProductAttention(q, k, v, { mask: ad.ones([7, 9]) }), ad.DTypeError);
    assert.throws(
      () => ad.nn.scaledDotProductAttention(q, k, v, { mask: ad.ones([3, 9], { dtype: "bool" }) }),
      ad.ShapeError,
    );
    assert.throws(() => ad.nn.scaledDotProductAttention(q, k, v, { blockSize: 0 }), ad.ShapeError);
    assert.throws(() => ad.nn.scaledDotProductAttention(ad.ones([4]), k, v), ad.ShapeError);
  });
});

/** Multi-head attention written out with plain ops over a parameter dict (the module's names). */
function plainMha(
  p: Record<string, ad.Tensor>,
  numHeads: number,
  query: ad.Tensor,
  key: ad.Tensor,
  value: ad.Tensor,
  allow: ad.Tensor | null,
): ad.Tensor {
  const W = p.inProjWeight!;
  const b = p.inProjBias!;
  const E = W.shape[1]!;
  const H = numHeads;
  const hd = E / H;
  const rows = (t: ad.Tensor, i: number) =>
    ad.slice(t, [i * E, ...t.shape.slice(1).map(() => 0)], [E, ...t.shape.slice(1)]);
  const proj = (x: ad.Tensor, i: number) => ad.add(ad.matmul(x, ad.transpose(rows(W, i))), rows(b, i));
  const [B, Tq] = query.shape as [number, number];
  const Tk = key.shape[1]!;
  const heads = (x: ad.Tensor, T: number) => ad.transpose(ad.reshape(x, [B, T, H, hd]), [0, 2, 1, 3]);
  const qh = heads(proj(query, 0), Tq);
  const kh = heads(proj(key, 1), Tk);
  const vh = heads(proj(value, 2), Tk);
  let s = ad.mul(ad.matmul(qh, ad.transpose(kh, [0, 1, 3, 2])), 1 / Math.sqrt(hd));
  if (allow !== null) s = ad.where(allow, s, -Infinity);
  const o = ad.matmul(ad.softmax(s, -1), vh);
  const merged = ad.reshape(ad.transpose(o, [0, 2, 1, 3]), [B, Tq, E]);
  return ad.add(ad.matmul(merged, ad.transpose(p["outProj.weight"]!)), p["outProj.bias"]!);
}

describe("MultiHeadAttention", () => {
  const E = 8;
  const mha = new ad.nn.MultiHeadAttention(E, 2, { key: ad.random.key(0), dtype: "float64", blockSize: 2 });
  // Non-zero biases, so the test sees them.
  mha.loadStateDict({ inProjBias: randn(40, [3 * E]), outProj: { bias: randn(41, [E]) } }, { strict: false });
  const x = randn(1, [2, 5, E]);
  const mem = randn(2, [2, 6, E]);

  test("parameters: PyTorch's layout and names", () => {
    assert.deepEqual(
      mha.namedParameters().map(([n, p]) => [n, p.shape]),
      [
        ["inProjWeight", [24, 8]],
        ["inProjBias", [24]],
        ["outProj.weight", [8, 8]],
        ["outProj.bias", [8]],
      ],
    );
    const fresh = new ad.nn.MultiHeadAttention(E, 2, { key: ad.random.key(0) });
    assert.deepEqual(Array.from(fresh.inProjBias!.data()), new Array(24).fill(0));
    assert.deepEqual(Array.from(fresh.outProj.bias!.data()), new Array(8).fill(0));
    assert.throws(() => new ad.nn.MultiHeadAttention(10, 3), ad.ShapeError);
  });

  test("self-attention matches the plain composition", () => {
    assertClose(mha.forward(x), plainMha(mha.stateDict(), 2, x, x, x, null), { rtol: 1e-11, atol: 1e-12 });
  });

  test("cross-attention with a causal flag and a key padding mask", () => {
    const pad = ad.tensor(
      [
        [false, false, false, false, true, true],
        [false, true, false, false, false, false],
      ],
      { dtype: "bool" },
    );
    const allowPad = ad.reshape(ad.logicalNot(pad), [2, 1, 1, 6]);
    assertClose(
      mha.forward(x, mem, mem, { keyPaddingMask: pad }),
      plainMha(mha.stateDict(), 2, x, mem, mem, allowPad),
      { rtol: 1e-11, atol: 1e-12 },
    );
    const causal = ad.greaterEqual(ad.arange(5).reshape([5, 1]), ad.arange(6).reshape([1, 6]));
    assertClose(
      mha.forward(x, mem, mem, { causal: true }),
      plainMha(mha.stateDict(), 2, x, mem, mem, causal),
      { rtol: 1e-11, atol: 1e-12 },
    );
  });

  test("sequence-first layout (batchFirst: false) and unbatched inputs", () => {
    const sf = new ad.nn.MultiHeadAttention(E, 2, { batchFirst: false, dtype: "float64" });
    sf.loadStateDict(mha.stateDict());
    const xt = ad.transpose(x, [1, 0, 2]);
    assertClose(ad.transpose(sf.forward(xt), [1, 0, 2]), mha.forward(x), { rtol: 1e-12, atol: 1e-12 });
    const x0 = ad.slice(x, [0, 0, 0], [1, 5, E]).reshape([5, E]);
    assertClose(mha.forward(x0), ad.reshape(mha.forward(ad.expandDims(x0, 0)), [5, E]), {
      rtol: 1e-12,
      atol: 1e-12,
    });
    assert.throws(() => mha.forward(ad.ones([2, 5, 4], { dtype: "float64" })), ad.ShapeError);
  });

  test("parameter gradients match the plain composition (functional and eager)", () => {
    const params = mha.stateDict();
    const loss = (fwd: (p: Record<string, ad.Tensor>) => ad.Tensor) => (p: Record<string, ad.Tensor>) =>
      ad.sum(ad.square(fwd(p)));
    const g1 = ad.grad(loss((p) => ad.nn.functionalCall(mha, p, x, mem, mem, { causal: true })))(params);
    const causal = ad.greaterEqual(ad.arange(5).reshape([5, 1]), ad.arange(6).reshape([1, 6]));
    const g2 = ad.grad(loss((p) => plainMha(p, 2, x, mem, mem, causal)))(params);
    assertClose(g1, g2, { rtol: 1e-9, atol: 1e-11 });
    mha.zeroGrad();
    ad.sum(ad.square(mha.forward(x, mem, mem, { causal: true }))).backward();
    assertClose(Object.fromEntries(mha.namedParameters().map(([n, p]) => [n, p.grad!])), g1, {
      rtol: 1e-9,
      atol: 1e-11,
    });
    mha.zeroGrad();
  });

  test("gradcheck in float64 wrt every parameter (functionalCall), and jit of the module", () => {
    const small = new ad.nn.MultiHeadAttention(4, 2, { key: ad.random.key(7), dtype: "float64" });
    const xs = randn(8, [1, 3, 4]);
    const sd = small.stateDict();
    const names = Object.keys(sd);
    const r = ad.gradcheck(
      (...ps: ad.Tensor[]) =>
        ad.nn.functionalCall(small, Object.fromEntries(names.map((n, i) => [n, ps[i]!])), xs, null, null, {
          causal: true,
        }),
      names.map((n) => sd[n]!),
      { maxDense: 0, probes: 4 }, // random directions: 80 inputs × 12 outputs
    );
    assert.ok(r.ok, r.message);
    const jitted = ad.jit((t: ad.Tensor) => small.forward(t, null, null, { causal: true }));
    assertClose(jitted(xs), small.forward(xs, null, null, { causal: true }), { rtol: 1e-12, atol: 1e-12 });
  });

  test("gradcheck in float64 of the module's input", () => {
    const small = new ad.nn.MultiHeadAttention(4, 2, { key: ad.random.key(5), dtype: "float64" });
    const r = ad.gradcheck(
      (t: ad.Tensor) => small.forward(t, null, null, { causal: true }),
      [randn(6, [1, 3, 4])],
    );
    assert.ok(r.ok, r.message);
  });
});
