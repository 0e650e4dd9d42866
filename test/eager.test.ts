/**
 * @file Eager (PyTorch-style) autograd: backward with += accumulation, the seeds' "common
 * mistakes" (double backward, in-place on a saved tensor, forgetting zeroGrad, detach, non-scalar
 * backward, createGraph for second order), hooks, autograd.grad, noGrad, and mixing with transforms.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

const close = (a: number, b: number, tol = 1e-6) =>
  assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${a} vs ${b}`);

describe("backward", () => {
  test("the seeds' example: (x1 + x2)·sin(x1) at (1, 2)", () => {
    const x1 = ad.tensor(1, { dtype: "float64", requiresGrad: true });
    const x2 = ad.tensor(2, { dtype: "float64", requiresGrad: true });
    const f = x1.add(x2).mul(x1.sin());
    assert.equal(f.gradFn, "mul");
    assert.equal(x1.isLeaf, true);
    assert.equal(f.isLeaf, false);
    f.backward();
    close(x1.grad!.item(), Math.sin(1) + 3 * Math.cos(1), 1e-12);
    close(x2.grad!.item(), Math.sin(1), 1e-12);
  });

  test("gradients accumulate with += until zeroGrad (forgetting zeroGrad accumulates)", () => {
    const x = ad.tensor([1, 2, 3], { requiresGrad: true });
    x.mul(x).sum().backward();
    assert.deepEqual(x.grad!.toArray(), [2, 4, 6]);
    x.mul(x).sum().backward();
    assert.deepEqual(x.grad!.toArray(), [4, 8, 12]);
    x.zeroGrad();
    assert.equal(x.grad, null);
    x.sum().backward();
    assert.deepEqual(x.grad!.toArray(), [1, 1, 1]);
  });

  test("a second backward through the same graph is a GraphFreedError unless retainGraph", () => {
    const x = ad.tensor(2, { requiresGrad: true });
    const y = x.mul(x);
    y.backward();
    assert.throws(() => y.backward(), ad.GraphFreedError);
    const z = x.mul(x);
    z.backward(undefined, { retainGraph: true });
    z.backward();
    assert.equal(x.grad!.item(), 4 + 4 + 4);
  });

  test("the graph's saved values are really released after backward", () => {
    const x = ad.tensor([1, 2], { requiresGrad: true });
    const y = x.exp().sum();
    y.backward();
    // The recorded nodes no longer hold their inputs or outputs.
    const ref = (y as unknown as { _ref: { node: { inputs: unknown[]; outs: unknown[]; freed: boolean } } })
      ._ref;
    assert.equal(ref.node.freed, true);
    assert.equal(ref.node.inputs.length, 0);
    assert.equal(ref.node.outs.length, 0);
  });

  test("a non-scalar backward without gradOutput is a TransformError; with one it is a VJP", () => {
    const x = ad.tensor([1, 2], { requiresGrad: true });
    assert.throws(() => x.mul(2).backward(), ad.TransformError);
    x.mul(x).backward(ad.tensor([1, 10]));
    assert.deepEqual(x.grad!.toArray(), [2, 40]);
    assert.throws(() => x.mul(2).backward(ad.ones([3])), ad.ShapeError);
  });

  test("backward of a tensor with no history is a TransformError", () => {
    assert.throws(() => ad.tensor(1).backward(), ad.TransformError);
  });

  test("broadcasting, reductions and matmul accumulate correctly into leaves", () => {
    const W = ad.tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { requiresGrad: true },
    );
    const b = ad.tensor([1, -1], { requiresGrad: true });
    const x = ad.tensor([[1, 1]]);
    ad.matmul(x, W).add(b).square().sum().backward();
    // out = [1+3+1, 2+4-1] = [5, 5]; d/dout = 2*out = [10, 10]
    assert.deepEqual(W.grad!.toArray(), [
      [10, 10],
      [10, 10],
    ]);
    assert.deepEqual(b.grad!.toArray(), [10, 10]);
  });
});

describe("in-place operations and version counters", () => {
  test("modifying a saved output in place makes backward throw InPlaceError naming the op", () => {
    const x = ad.tensor([1, 2], { requiresGrad: true });
    const a = x.sigmoid();
    a.mul_(2);
    assert.equal(a.version, 1);
    assert.throws(
      () => a.sum().backward(),
      (e: unknown) => e instanceof ad.InPlaceError && /logistic/.test((e as Error).message),
    );
  });

  test("modifying a leaf that requires grad throws at once; inside noGrad it is allowed", () => {
    const w = ad.tensor([1, 2], { requiresGrad: true });
    assert.throws(() => w.add_(1), ad.InPlaceError);
    w.mul(3).sum().backward();
    ad.noGrad(() => w.sub_(w.grad!.mul(0.1)));
    assert.deepEqual(w.toArray(), [Math.fround(0.7), Math.fround(1.7)]);
    assert.equal(w.isLeaf, true);
    assert.equal(w.requiresGrad, true);
  });

  test("in-place ops on non-leaves are recorded and differentiable", () => {
    const x = ad.tensor([1, 2], { requiresGrad: true });
    const y = x.add(1);
    y.mul_(x); // y = (x + 1)·x
    y.sub_(1);
    y.sum().backward();
    assert.deepEqual(x.grad!.toArray(), [3, 5]); // 2x + 1
  });

  test("linear ops save nothing, so changing their inputs later is fine", () => {
    const x = ad.tensor([1, 2], { requiresGrad: true });
    const y = x.add(1);
    const z = y.mul(2); // mul saves y
    const u = y.add(3); // add saves nothing
    y.fill_(0);
    u.sum().backward();
    assert.deepEqual(x.grad!.toArray(), [1, 1]);
    assert.throws(() => z.sum().backward(), ad.InPlaceError);
  });

  test("in-place methods: copy_, fill_, zero_, div_", () => {
    const t = ad.zeros([2, 2]);
    t.copy_(ad.tensor([1, 2]));
    assert.deepEqual(t.toArray(), [
      [1, 2],
      [1, 2],
    ]);
    t.div_(2).fill_(3);
    assert.deepEqual(t.toArray(), [
      [3, 3],
      [3, 3],
    ]);
    t.zero_();
    assert.deepEqual(t.toArray(), [
      [0, 0],
      [0, 0],
    ]);
    assert.equal(t.version, 4);
    assert.throws(() => ad.zeros([2]).add_(ad.zeros([3, 2])), ad.ShapeError);
  });

  test("in-place on a traced tensor inside a transform is a TransformError", () => {
    assert.throws(() => ad.grad((x: ad.Tensor) => x.mul_(2).sum())(ad.tensor([1])), ad.TransformError);
  });
});

describe("detach, noGrad, hooks, autograd.grad", () => {
  test("detach stops the gradient", () => {
    const x = ad.tensor([1, 2], { requiresGrad: true });
    const y = x.mul(x.detach());
    assert.equal(x.detach().requiresGrad, false);
    y.sum().backward();
    assert.deepEqual(x.grad!.toArray(), [1, 2]);
  });

  test("noGrad records nothing", () => {
    const x = ad.tensor([1], { requiresGrad: true });
    const y = ad.noGrad(() => x.mul(2));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
  });

  test("hooks see and may replace gradients, on leaves and non-leaves", () => {
    const x = ad.tensor([1, 2], { requiresGrad: true });
    const seen: number[][] = [];
    const m = x.mul(3);
    m.registerHook((g) => {
      seen.push(g.toArray() as number[]);
      return g.mul(10);
    });
    const remove = x.registerHook((g) => g.add(1));
    m.sum().backward();
    assert.deepEqual(seen, [[1, 1]]);
    assert.deepEqual(x.grad!.toArray(), [31, 31]);
    remove();
    x.zeroGrad();
    x.sum().backward();
    assert.deepEqual(x.grad!.toArray(), [1, 1]);
    assert.throws(() => ad.tensor([1]).registerHook((g) => g), ad.TransformError);
  });

  test("retainGrad keeps a non-leaf gradient", () => {
    const x = ad.tensor([1, 2], { requiresGrad: true });
    const m = x.mul(3);
    m.retainGrad();
    m.square().sum().backward();
    assert.deepEqual(m.grad!.toArray(), [6, 12]);
  });

  test("autograd.grad returns gradients without touching .grad; allowUnused gives null", () => {
    const x = ad.tensor(3, { requiresGrad: true });
    const y = ad.tensor(4, { requiresGrad: true });
    const [gx] = ad.autograd.grad(x.mul(x), x);
    assert.equal(gx!.item(), 6);
    assert.equal(x.grad, null);
    assert.throws(() => ad.autograd.grad(x.mul(2), [x, y]), ad.TransformError);
    const gs = ad.autograd.grad(x.mul(2), [x, y], { allowUnused: true });
    assert.equal(gs[0]!.item(), 2);
    assert.equal(gs[1], null);
  });

  test("createGraph gives differentiable gradients (second order)", () => {
    const x = ad.tensor(3, { dtype: "float64", requiresGrad: true });
    const [g] = ad.autograd.grad(x.pow(3), x, { createGraph: true });
    assert.equal(g!.item(), 27);
    assert.equal(g!.requiresGrad, true);
    g!.backward();
    assert.equal(x.grad!.item(), 18);
    // backward with createGraph: x.grad is itself differentiable
    const z = ad.tensor(2, { dtype: "float64", requiresGrad: true });
    z.pow(4).backward(undefined, { createGraph: true });
    const [h] = ad.autograd.grad(z.grad!, z);
    assert.equal(h!.item(), 48);
  });

  test("gradients of non-leaf inputs via autograd.grad", () => {
    const x = ad.tensor([1, 2], { requiresGrad: true });
    const m = x.mul(2);
    const [gm] = ad.autograd.grad(m.square().sum(), m);
    assert.deepEqual(gm!.toArray(), [4, 8]);
  });

  test("requiresGrad only on float leaves", () => {
    assert.throws(() => ad.tensor([1], { dtype: "int32", requiresGrad: true }), ad.DTypeError);
    const x = ad.tensor([1], { requiresGrad: true });
    assert.throws(() => {
      x.mul(2).requiresGrad = false;
    }, ad.TransformError);
  });

  test("a requiresGrad tensor inside a functional transform is just a value there", () => {
    const p = ad.tensor([2, 3], { requiresGrad: true });
    const g = ad.grad((z: ad.Tensor) => z.mul(p).sum())(ad.tensor([5, 7]));
    assert.deepEqual(g.toArray(), [2, 3]);
    assert.equal(p.grad, null);
    // and eager backward through a functional gradient works (grads depend on p)
    ad.grad((z: ad.Tensor) => z.mul(p).sum())(ad.tensor([5, 7]))
      .sum()
      .backward();
    assert.deepEqual(p.grad!.toArray(), [1, 1]);
  });
});

describe("private intermediates of backward and optimizer steps are released at once", () => {
  // Resident (wasm) buffers need ≥ 1024 elements; under the reference backend the checks of
  // values still run and the release counts are skipped.
  const onWasm = ad.getBackendName() === "wasm";
  const net = () => {
    const w1 = ad.tensor(
      Float64Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i) / 8),
      { shape: [64, 48], dtype: "float64", requiresGrad: true },
    );
    const w2 = ad.tensor(
      Float64Array.from({ length: 48 * 32 }, (_, i) => Math.cos(i) / 8),
      { shape: [48, 32], dtype: "float64", requiresGrad: true },
    );
    const x = ad.tensor(
      Float64Array.from({ length: 40 * 64 }, (_, i) => Math.sin(i * 0.3)),
      {
        shape: [40, 64],
        dtype: "float64",
      },
    );
    const loss = () => ad.sum(ad.square(ad.tanh(ad.matmul(ad.tanh(ad.matmul(x, w1)), w2))));
    return { w1, w2, loss };
  };

  test("backward: gradients equal the functional ones and the cotangents' buffers are released", () => {
    const { w1, w2, loss } = net();
    const [gw1, gw2] = ad.grad(
      (a: ad.Tensor, b: ad.Tensor) => {
        const n2 = net();
        void n2;
        return ad.sum(
          ad.square(
            ad.tanh(
              ad.matmul(
                ad.tanh(
                  ad.matmul(
                    ad.tensor(
                      Float64Array.from({ length: 40 * 64 }, (_, i) => Math.sin(i * 0.3)),
                      {
                        shape: [40, 64],
                        dtype: "float64",
                      },
                    ),
                    a,
                  ),
                ),
                b,
              ),
            ),
          ),
        );
      },
      { argnums: [0, 1] },
    )(w1.detach(), w2.detach()) as ad.Tensor[];
    const before = ad.wasmStats().disposed;
    loss().backward();
    if (onWasm) assert.ok(ad.wasmStats().disposed > before, "no cotangent was released");
    assert.ok(ad.allclose(w1.grad!, gw1!, { rtol: 1e-12 }));
    assert.ok(ad.allclose(w2.grad!, gw2!, { rtol: 1e-12 }));
    // The gradients stay usable (a second backward accumulates into them).
    loss().backward();
    assert.ok(ad.allclose(w1.grad!, ad.mul(gw1!, 2), { rtol: 1e-12 }));
  });

  test("hooks and createGraph keep every cotangent; autograd.grad returns live gradients", () => {
    const { w1, w2, loss } = net();
    const seen: ad.Tensor[] = [];
    w1.registerHook((g) => {
      seen.push(g);
      return g;
    });
    loss().backward();
    assert.ok(ad.allclose(seen[0]!, w1.grad!, { rtol: 0 }));
    const [g1, g2] = ad.autograd.grad(loss(), [w1, w2]);
    assert.ok(ad.allclose(g1!, w1.grad!, { rtol: 1e-12 }));
    assert.equal(ad.sum(g2!).dtype, "float64");
    const [h1] = ad.autograd.grad(loss(), [w1], { createGraph: true });
    ad.sum(h1!).backward();
    assert.ok(Number.isFinite(ad.sum(w2.grad!).item()));
  });

  test("tensors user code sees during backward stay usable (customVjp's bwd keeps its cotangent)", () => {
    const n = 3000;
    let seen: ad.Tensor | null = null;
    const f = ad.customVjp((x: ad.Tensor) => ad.tanh(x), {
      fwd: (x: ad.Tensor) => {
        const y = ad.tanh(x);
        return [y, y];
      },
      bwd: (y: ad.Tensor, ct: ad.Tensor) => {
        seen = ct;
        return [ad.mul(ct, ad.sub(1, ad.square(y)))];
      },
    });
    const x = ad.tensor(new Float64Array(n).fill(0.5), { dtype: "float64", requiresGrad: true });
    ad.sum(ad.mul(ad.exp(f(ad.mul(x, 2))), 3)).backward();
    const c = (seen as ad.Tensor | null)!.data();
    assert.ok(Math.abs(c[0]! - 3 * Math.exp(Math.tanh(1))) < 1e-12);
  });

  test("a jitted function first compiled inside backward keeps its cached constants", () => {
    const n = 3000; // large enough to live in wasm memory
    const jb = ad.jit((c: ad.Tensor) => ad.mul(c, ad.add(ad.ones([n], { dtype: "float64" }), 1)));
    const f = ad.customVjp((x: ad.Tensor) => ad.mul(x, 2), {
      fwd: (x: ad.Tensor) => [ad.mul(x, 2), null],
      bwd: (_r: unknown, ct: ad.Tensor) => [jb(ct)],
    });
    const x = ad.tensor(new Float64Array(n).fill(3), { dtype: "float64", requiresGrad: true });
    ad.sum(f(x)).backward();
    assert.equal(x.grad!.data()[0], 2);
    // The compiled program (and its folded constant 2·ones) is reused after the backward pass.
    const again = jb(ad.full([n], 5, { dtype: "float64" })).data();
    assert.deepEqual([again[0], again[n - 1]], [10, 10]);
    assert.equal(jb.traces, 1);
  });

  test("an optimizer step releases its intermediates; parameters and state match the functional Adam", () => {
    const { w1, w2, loss } = net();
    const opt = new ad.optim.Adam([w1, w2], { lr: 1e-3 });
    // The same three steps with the functional optimizer (no scopes involved).
    const f = net();
    const fopt = ad.optim.adam(1e-3);
    let params = { a: f.w1.detach(), b: f.w2.detach() };
    let fstate = fopt.init(params);
    const x = ad.tensor(
      Float64Array.from({ length: 40 * 64 }, (_, i) => Math.sin(i * 0.3)),
      {
        shape: [40, 64],
        dtype: "float64",
      },
    );
    const floss = (p: { a: ad.Tensor; b: ad.Tensor }) =>
      ad.sum(ad.square(ad.tanh(ad.matmul(ad.tanh(ad.matmul(x, p.a)), p.b))));
    for (let i = 0; i < 3; i++) {
      opt.zeroGrad();
      loss().backward();
      const before = ad.wasmStats().disposed;
      opt.step();
      if (onWasm) assert.ok(ad.wasmStats().disposed > before, "no optimizer temporary was released");
      const g = ad.grad(floss)(params) as { a: ad.Tensor; b: ad.Tensor };
      const [updates, next] = fopt.update(g, fstate, params);
      params = ad.optim.applyUpdates(params, updates) as typeof params;
      fstate = next;
    }
    assert.ok(ad.allclose(w1, params.a, { rtol: 1e-10, atol: 1e-14 }));
    assert.ok(ad.allclose(w2, params.b, { rtol: 1e-10, atol: 1e-14 }));
    for (const s of [...opt.state.values()].flatMap((st) => Object.values(st.slots)))
      assert.ok(Number.isFinite(ad.sum(s).item()));
  });
});
