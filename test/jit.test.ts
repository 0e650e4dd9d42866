/** @file The Program IR, ad.trace and ad.jit: printed programs (pinned), simplification, caching, composition. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

const f = (x: ad.Tensor) => ad.sum(ad.mul(ad.sin(x), x));
const x12 = () => ad.tensor([1, 2]);

describe("trace", () => {
  test("prints one typed equation per line", () => {
    assert.equal(
      ad.trace(f)(x12()).toString(),
      `{ lambda v1:float32[2] .
  v2 = sin v1 : float32[2]
  v3 = mul v2 v1 : float32[2]
  v4 = reduce_sum[axes=[0]] v3 : float32[]
  in (v4) }`,
    );
  });

  test("the trace of a gradient shows the backward pass as primitives", () => {
    assert.equal(
      ad.trace(ad.grad(f))(x12()).toString(),
      `{ lambda v1:float32[2] .
  v2 = sin v1 : float32[2]
  v3 = mul v2 v1 : float32[2]
  v4 = reduce_sum[axes=[0]] v3 : float32[]
  v5 = reshape[shape=[1]] 1:float32 : float32[1]
  v6 = broadcast_to[shape=[2]] v5 : float32[2]
  v7 = mul v6 v1 : float32[2]
  v8 = mul v2 v6 : float32[2]
  v9 = cos v1 : float32[2]
  v10 = mul v7 v9 : float32[2]
  v11 = add v8 v10 : float32[2]
  in (v11) }`,
    );
  });

  test("numbers are traced as weakly typed float64 scalars; pytrees flatten", () => {
    const p = ad.trace((a: number, t: { w: ad.Tensor }) => ad.mul(t.w, a))(2, { w: ad.zeros([3]) });
    assert.equal(
      p.toString(),
      `{ lambda v1:float64[]~ v2:float32[3] .
  v3 = convert_element_type[new_dtype=float32] v1 : float32[]
  v4 = mul v2 v3 : float32[3]
  in (v4) }`,
    );
    assert.equal(p.eqns.length, 2);
  });

  test("typecheck, evaluate, toDot and toMermaid", () => {
    const p = ad.trace(f)(x12());
    p.typecheck();
    const [y] = p.evaluate([ad.tensor([1, 2])]);
    assert.equal(y!.item(), f(x12()).item());
    assert.match(p.toDot(), /^digraph program \{[\s\S]*e0 \[shape=ellipse, label="sin"\];[\s\S]*\}$/);
    assert.match(p.toMermaid(), /^flowchart TD\n[\s\S]*e1\(\("mul"\)\)/);
  });

  test("a value-dependent JS if inside trace/jit is a TransformError pointing to ad.cond", () => {
    const g = (x: ad.Tensor) => (x.sum().item() > 0 ? x : ad.neg(x));
    assert.throws(
      () => ad.trace(g)(x12()),
      (e: unknown) => e instanceof ad.TransformError && /ad\.cond/.test((e as Error).message),
    );
    assert.throws(() => ad.jit(g)(x12()), ad.TransformError);
  });
});

describe("jit", () => {
  test("same results as the plain function; traced once per signature", () => {
    const jf = ad.jit(f);
    assert.equal(jf(x12()).item(), f(x12()).item());
    jf(ad.tensor([3, 4]));
    assert.equal(jf.traces, 1);
    jf(ad.tensor([3, 4, 5]));
    assert.equal(jf.traces, 2);
    jf(ad.tensor([3, 4], { dtype: "float64" }));
    assert.equal(jf.traces, 3);
    jf(ad.tensor([3, 4]));
    assert.equal(jf.traces, 3);
  });

  test("simplification: constant folding, CSE and DCE", () => {
    const g = (x: ad.Tensor) => {
      const c = ad.exp(ad.tensor(0)).mul(2); // folded to a literal
      const a = ad.sin(x);
      const b = ad.sin(x); // merged with a
      ad.cos(x); // dead
      return ad.add(a, b).mul(c);
    };
    const p = ad.jit(g).lower(x12());
    assert.equal(
      p.toString(),
      `{ lambda v1:float32[2] .\n  v8 = fused_program[3 ops, 1 out: mul(add(sin(#0),sin(#0)),2)] v1 : float32[2]\n  in (v8) }`,
    );
    assert.deepEqual(ad.jit(g)(x12()).toArray(), g(x12()).toArray());
  });

  test("simplification: x * 1 (a broadcast one too) is x, and add/mul operands in either order are one", () => {
    const g = (x: ad.Tensor) => {
      const one = ad.broadcastTo(ad.tensor([1]), x.shape);
      const a = ad.mul(one, x); // x
      const b = ad.mul(ad.exp(a), x);
      const c = ad.mul(x, ad.exp(x)); // the same as b
      return ad.add(ad.add(b, c), ad.add(c, b)).mul(1);
    };
    const p = ad.jit(g).lower(x12());
    assert.equal(
      p.toString(),
      `{ lambda v1:float32[2] .\n  v10 = fused_program[4 ops, 1 out: add(add(mul(#0,exp(#0)),mul(#0,exp(#0))),add(mul(#0,exp(#0)),mul(#0,exp(#0))))] v1 : float32[2]\n  in (v10) }`,
    );
    assert.deepEqual(ad.jit(g)(x12()).toArray(), g(x12()).toArray());
    // Not when the one changes the type: int32 * float32 1 is a float32 result.
    const h = (i: ad.Tensor) => ad.mul(i, ad.tensor(1, { dtype: "float32" }));
    const hp = ad.jit(h).lower(ad.tensor([1, 2], { dtype: "int32" }));
    assert.ok(hp.eqns.length >= 1);
    assert.equal(ad.jit(h)(ad.tensor([1, 2], { dtype: "int32" })).dtype, "float32");
    // The reverse pass seeds with a broadcast one: no multiplication by it is left.
    const rosen = (x: ad.Tensor) => ad.sum(ad.square(ad.sub(1, x)));
    const gp = ad.jit(ad.grad(rosen)).lower(ad.tensor([0.5, 2, 3]));
    assert.doesNotMatch(gp.toString(), /mul\([^()]*,1\)|mul\(1,/);
    // neg, abs and max of float32 values skip the redundant rounding and keep the same bits.
    const k = (x: ad.Tensor) => ad.maximum(ad.neg(ad.abs(ad.mul(x, 1.1))), ad.floor(x));
    const xs = ad.random.normal(ad.random.key(3), [4096]);
    assert.deepEqual(ad.jit(k)(xs).toArray(), k(xs).toArray());
  });

  test("fusion: elementwise chains become one kernel with bit-identical results", () => {
    const h = (x: ad.Tensor) => ad.sum(ad.tanh(ad.add(ad.mul(x, 2), 1)).mul(ad.sigmoid(x)));
    const x = ad.random.normal(ad.random.key(0), [1000]);
    const p = ad.jit(h).lower(x);
    // The chain and the sum of its result are one step.
    assert.match(
      p.toString(),
      /sum_prologue\[axes=\[0\] of 5 ops, 1 out: mul\(tanh\(add\(mul\(#0,2\),1\)\),logistic\(#0\)\)\]/,
    );
    assert.equal(p.eqns.length, 1);
    assert.equal(ad.jit(h)(x).item(), h(x).item());
    const gh = ad.jit(ad.grad(h));
    assert.ok(ad.allclose(gh(x), ad.grad(h)(x), { rtol: 0, atol: 0 }));
    assert.ok(gh.lower(x).eqns.some((e) => e.prim.name === "fused_program"));
    // float64 and integer chains round exactly as the unfused kernels do
    const k = (a: ad.Tensor) => ad.add(ad.mul(a, 3), ad.floor(ad.div(a, 7)));
    const ai = ad.arange(-20, 20);
    assert.deepEqual(ad.jit(k)(ai).toArray(), k(ai).toArray());
  });

  test("composes both ways with grad, jvp and nesting", () => {
    const x = ad.tensor([0.3, -1.2, 2], { dtype: "float64" });
    const jf = ad.jit(f);
    assert.ok(ad.allclose(ad.grad(jf)(x), ad.grad(f)(x), { rtol: 1e-12 }));
    assert.ok(ad.allclose(ad.jit(ad.grad(f))(x), ad.grad(f)(x), { rtol: 1e-12 }));
    assert.ok(ad.allclose(ad.jit(ad.jit(f))(x), f(x), { rtol: 1e-12 }));
    const [, t] = ad.jvp(jf, [x], [ad.onesLike(x)]);
    assert.ok(ad.allclose(t as ad.Tensor, ad.jvp(f, [x], [ad.onesLike(x)])[1] as ad.Tensor, { rtol: 1e-12 }));
    assert.ok(ad.allclose(ad.hessian(jf)(x), ad.hessian(f)(x), { rtol: 1e-10 }));
    assert.ok(ad.allclose(ad.jit(ad.hessian(f))(x), ad.hessian(f)(x), { rtol: 1e-10 }));
  });

  test("numbers in, numbers out; static leaves are part of the signature", () => {
    const g = ad.jit((x: number, mode: string) => (mode === "double" ? ad.mul(x, 2) : ad.mul(x, 3)));
    assert.equal((g(2, "double") as ad.Tensor).item(), 4);
    assert.equal((g(2, "triple") as ad.Tensor).item(), 6);
    assert.equal(g.traces, 2);
    assert.equal(ad.grad(ad.jit((x: number) => ad.mul(x, x)))(3), 6);
    assert.equal(ad.jit(() => 5)(), 5);
  });

  test("eager autograd sees through jit", () => {
    const w = ad.tensor([1, 2], { requiresGrad: true });
    ad.jit(f)(w).backward();
    assert.ok(ad.allclose(w.grad!, ad.grad(f)(ad.tensor([1, 2]))));
  });
});

describe("jit and captured tensors", () => {
  test("a captured tensor modified in place is read fresh (never folded into a stale constant)", () => {
    const w = ad.tensor([1, 2]);
    const f = ad.jit((x: ad.Tensor) => ad.mul(x, ad.mul(w, 2)));
    assert.deepEqual(f(ad.ones([2])).toArray(), [2, 4]);
    w.add_(1);
    assert.deepEqual(f(ad.ones([2])).toArray(), [4, 6]);
  });

  test("a captured parameter that requires grad gets its gradient through jit", () => {
    const W = ad.tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { requiresGrad: true },
    );
    const f = ad.jit((x: ad.Tensor) => ad.sum(ad.matmul(x, W)));
    f(ad.tensor([[1, 1]])).backward();
    assert.deepEqual(W.grad!.toArray(), [
      [1, 1],
      [1, 1],
    ]);
  });
});

describe("jit: memory of a run", () => {
  test("intermediates are released when a run ends; outputs, aliases of them and inputs stay valid", () => {
    const onWasm = ad.getBackendName() === "wasm";
    const n = 256;
    const a = ad.tensor(
      Float32Array.from({ length: n * n }, (_, i) => Math.sin(i) * 0.1),
      { shape: [n, n] },
    );
    const b = ad.tensor(
      Float32Array.from({ length: n }, (_, i) => Math.cos(i)),
      { shape: [n] },
    );
    // h is private; y is returned twice (once reshaped), `x` passes through.
    const f = ad.jit((x: ad.Tensor, bias: ad.Tensor) => {
      const h = ad.tanh(ad.matmul(x, x));
      const y = ad.relu(ad.add(ad.matmul(h, x), bias));
      return [y, ad.reshape(y, [n * n]), x];
    });
    const ref = () => {
      const h = ad.tanh(ad.matmul(a, a));
      return ad.relu(ad.add(ad.matmul(h, a), b)).data();
    };
    const want = ref();
    const keep: ad.Tensor[][] = [];
    const before = ad.wasmStats().disposed;
    for (let i = 0; i < 5; i++) keep.push(f(a, b) as ad.Tensor[]);
    if (onWasm) assert.ok(ad.wasmStats().disposed > before, "no intermediate was released");
    // Every kept result is still intact after later runs reused the released memory.
    for (const [y, flat, x] of keep) {
      assert.deepEqual(y!.data(), want);
      assert.deepEqual(flat!.data(), want);
      assert.equal(x, a);
    }
    assert.deepEqual(a.data()[1], Math.fround(Math.sin(1) * 0.1));
  });
});
