/**
 * @file Black-box contract tests for API.md §8 (nn, optim, io) and §9 (mixed precision), with the
 * §10 "nn/optim" and "io" conventions: PyTorch shapes and argument orders, sparse embedding
 * gradients, optimiser update rules against hand-computed steps, the functional optimiser form,
 * safetensors round trips, float16/bfloat16 rounding, autocast and GradScaler.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { checks, flat, num, type T } from "./contract-helpers.js";

const { near, allNear } = checks(1e-6);

/** namedParameters() as [name, tensor] pairs, whether it returns an array, an iterable or a Map. */
function named(m: ad.nn.Module): [string, T][] {
  const np = m.namedParameters() as unknown;
  if (np instanceof Map) return [...np.entries()] as [string, T][];
  if (Symbol.iterator in (np as object)) return [...(np as Iterable<[string, T]>)];
  return Object.entries(np as Record<string, T>);
}

function dictKeys(sd: unknown): string[] {
  if (sd instanceof Map) return [...sd.keys()] as string[];
  return Object.keys(sd as object);
}

const key = (n: number) => ad.random.key(n);

describe("§8 nn layers with PyTorch shapes and argument orders", () => {
  test("Linear(in, out, {bias?, key?}): weight [out, in], forward = x Wᵀ + b", () => {
    const lin = new ad.nn.Linear(3, 2, { key: key(0) });
    const ps = named(lin);
    const w = ps.find(([n]) => n === "weight")![1];
    const b = ps.find(([n]) => n === "bias")![1];
    assert.deepEqual(w.shape, [2, 3]);
    assert.deepEqual(b.shape, [2]);
    assert.equal(lin.parameters().length, 2);
    const x = ad.random.normal(key(1), [5, 3]);
    const y = lin.forward(x);
    assert.deepEqual(y.shape, [5, 2]);
    assert.ok(ad.allclose(y, ad.add(ad.matmul(x, w.transpose()), b), { atol: 1e-5 }));
    // batched leading dims
    assert.deepEqual(lin.forward(ad.zeros([4, 5, 3])).shape, [4, 5, 2]);
    const nb = new ad.nn.Linear(3, 2, { bias: false, key: key(0) });
    assert.equal(nb.parameters().length, 1);
    // deterministic given the key
    const again = new ad.nn.Linear(3, 2, { key: key(0) });
    assert.deepEqual(flat(again.parameters()[0]), flat(lin.parameters()[0]));
    // PyTorch's init bound 1/sqrt(in)
    assert.ok(flat(w).every((v) => Math.abs(v) <= 1 / Math.sqrt(3) + 1e-6));
  });

  test("Sequential, activations, a user Module subclass: parameters(), namedParameters(), stateDict()", () => {
    const seq = new ad.nn.Sequential(
      new ad.nn.Linear(4, 8, { key: key(1) }),
      new ad.nn.ReLU(),
      new ad.nn.Linear(8, 2, { key: key(2) }),
    );
    assert.equal(seq.parameters().length, 4);
    const names = named(seq).map(([n]) => n);
    assert.deepEqual(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    const out = seq.forward(ad.ones([3, 4]));
    assert.deepEqual(out.shape, [3, 2]);
    const sd = seq.stateDict();
    assert.deepEqual(dictKeys(sd).sort(), ["0.bias", "0.weight", "2.bias", "2.weight"]);

    class MLP extends ad.nn.Module {
      fc1 = new ad.nn.Linear(2, 3, { key: key(3) });
      fc2 = new ad.nn.Linear(3, 1, { key: key(4) });
      forward(x: T): T {
        return this.fc2.forward(ad.tanh(this.fc1.forward(x)));
      }
    }
    const m = new MLP();
    assert.equal(m.parameters().length, 4);
    assert.deepEqual(
      named(m)
        .map(([n]) => n)
        .sort(),
      ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"],
    );
    assert.deepEqual(m.forward(ad.ones([5, 2])).shape, [5, 1]);
  });

  test("loadStateDict restores weights (also into a fresh module)", () => {
    const a = new ad.nn.Linear(3, 2, { key: key(5) });
    const b = new ad.nn.Linear(3, 2, { key: key(6) });
    assert.notDeepEqual(flat(a.parameters()[0]), flat(b.parameters()[0]));
    b.loadStateDict(a.stateDict());
    assert.deepEqual(flat(b.parameters()[0]), flat(a.parameters()[0]));
    assert.deepEqual(flat(b.parameters()[1]), flat(a.parameters()[1]));
    const x = ad.ones([1, 3]);
    assert.deepEqual(flat(b.forward(x)), flat(a.forward(x)));
  });

  test("activation modules and functional activations agree", () => {
    const x = ad.tensor([-1, 0, 2]);
    assert.deepEqual(flat(new ad.nn.ReLU().forward(x)), [0, 0, 2]);
    allNear(new ad.nn.Tanh().forward(x), ad.tanh(x));
    allNear(new ad.nn.Sigmoid().forward(x), ad.sigmoid(x));
    allNear(new ad.nn.GELU().forward(x), ad.gelu(x));
  });

  test("Dropout: identity in eval(); in train() zeroes about p and scales by 1/(1 − p)", () => {
    const d = new ad.nn.Dropout(0.5);
    const x = ad.ones([2000]);
    d.eval();
    assert.deepEqual(flat(d.forward(x)), flat(x));
    d.train();
    const y = flat(d.forward(x));
    const zeros = y.filter((v) => v === 0).length;
    assert.ok(Math.abs(zeros / 2000 - 0.5) < 0.06, `dropped ${zeros}`);
    assert.ok(y.every((v) => v === 0 || Math.abs(v - 2) < 1e-6));
    // train()/eval() reach children through containers
    const seq = new ad.nn.Sequential(new ad.nn.Linear(4, 4, { key: key(0) }), new ad.nn.Dropout(0.9));
    seq.eval();
    const xi = ad.ones([1, 4]);
    assert.deepEqual(flat(seq.forward(xi)), flat(seq.forward(xi)));
  });

  test("Embedding(num, dim): weight [num, dim], forward of int32 indices", () => {
    const e = new ad.nn.Embedding(10, 4, { key: key(7) });
    const w = e.parameters()[0]!;
    assert.deepEqual(w.shape, [10, 4]);
    const idx = ad.tensor(
      [
        [1, 2, 3],
        [3, 0, 9],
      ],
      { dtype: "int32" },
    );
    const y = e.forward(idx);
    assert.deepEqual(y.shape, [2, 3, 4]);
    assert.deepEqual(flat(y.at(1, 2)), flat(w.at(9)));
  });

  test("Embedding({sparse: true}): the gradient is an ad.SparseTensor over the looked-up rows; SGD applies it sparsely", () => {
    const e = new ad.nn.Embedding(6, 2, { sparse: true, key: key(8) });
    const w = e.parameters()[0]!;
    const before = w.toArray() as number[][];
    const idx = ad.tensor([1, 4, 1], { dtype: "int32" });
    ad.sum(e.forward(idx)).backward();
    const g = w.grad as unknown;
    assert.ok(g instanceof ad.SparseTensor, `grad is ${String(g)}`);
    const sp = g as ad.SparseTensor;
    assert.deepEqual(sp.shape, [6, 2]);
    assert.ok(sp.indices !== undefined && sp.values !== undefined);
    const dense = sp.toDense();
    assert.deepEqual(dense.toArray(), [
      [0, 0],
      [2, 2],
      [0, 0],
      [0, 0],
      [1, 1],
      [0, 0],
    ]);
    const opt = new ad.optim.SGD(e.parameters(), { lr: 0.5 });
    opt.step();
    const after = w.toArray() as number[][];
    for (const r of [0, 2, 3, 5]) assert.deepEqual(after[r], before[r], `row ${r} untouched`);
    allNear(
      after[1],
      before[1]!.map((v) => v - 1),
    );
    allNear(
      after[4],
      before[4]!.map((v) => v - 0.5),
    );
  });

  test("Adam applies a sparse gradient only to looked-up rows", () => {
    const e = new ad.nn.Embedding(5, 3, { sparse: true, key: key(9) });
    const w = e.parameters()[0]!;
    const before = w.toArray() as number[][];
    const opt = new ad.optim.Adam(e.parameters(), { lr: 0.1 });
    ad.sum(e.forward(ad.tensor([2], { dtype: "int32" }))).backward();
    opt.step();
    const after = w.toArray() as number[][];
    for (const r of [0, 1, 3, 4]) assert.deepEqual(after[r], before[r]);
    allNear(
      after[2],
      before[2]!.map((v) => v - 0.1),
      1e-5,
    );
  });

  test("LayerNorm(normalizedShape): zero mean, unit variance over the last dim; weight and bias", () => {
    const ln = new ad.nn.LayerNorm(4);
    const ps = named(ln);
    assert.deepEqual(ps.map(([n]) => n).sort(), ["bias", "weight"]);
    const x = ad.tensor([
      [1, 2, 3, 4],
      [2, 2, 2, 10],
    ]);
    const y = ln.forward(x);
    assert.deepEqual(y.shape, [2, 4]);
    const r0 = flat(y.at(0));
    near(
      r0.reduce((s, v) => s + v, 0),
      0,
      1e-5,
    );
    near(r0.reduce((s, v) => s + v * v, 0) / 4, 1, 1e-4);
    allNear(r0, [-1.3416, -0.4472, 0.4472, 1.3416], 1e-3);
  });

  test("Conv2d(in, out, kernel, {stride?, padding?}): NCHW shapes, weight [out, in, k, k], correct values", () => {
    const c = new ad.nn.Conv2d(3, 4, 3, { key: key(10) });
    const w = named(c).find(([n]) => n === "weight")![1];
    assert.deepEqual(w.shape, [4, 3, 3, 3]);
    assert.deepEqual(c.forward(ad.zeros([2, 3, 8, 8])).shape, [2, 4, 6, 6]);
    const cp = new ad.nn.Conv2d(3, 4, 3, { padding: 1, stride: 2, key: key(10) });
    assert.deepEqual(cp.forward(ad.zeros([1, 3, 8, 8])).shape, [1, 4, 4, 4]);
    // value: a 1-channel 2x2 kernel of ones, no bias, sums windows (cross-correlation)
    const one = new ad.nn.Conv2d(1, 1, 2, { bias: false, key: key(0) });
    ad.noGrad(() => one.parameters()[0]!.fill_(1));
    const img = ad.arange(0, 9, 1, { dtype: "float32" }).reshape([1, 1, 3, 3]);
    assert.deepEqual(one.forward(img).toArray(), [
      [
        [
          [8, 12],
          [20, 24],
        ],
      ],
    ]);
  });

  test("MultiHeadAttention(embedDim, numHeads): self-attention keeps the input shape, gradients flow", () => {
    const mha = new ad.nn.MultiHeadAttention(8, 2, { key: key(11) });
    assert.ok(mha.parameters().length >= 4);
    const x = ad.random.normal(key(12), [2, 5, 8]);
    const out = mha.forward(x, x, x) as unknown;
    const y = (Array.isArray(out) ? out[0] : out) as T;
    assert.ok(y instanceof ad.Tensor);
    assert.equal(y.shape[y.shape.length - 1], 8);
    assert.equal(y.size, 2 * 5 * 8);
    ad.sum(ad.square(y)).backward();
    assert.ok(mha.parameters().every((p: T) => p.grad !== null));
  });
});

describe("§8/§10 losses", () => {
  test("mseLoss(input, target): mean of squared errors", () => {
    near(num(ad.nn.mseLoss(ad.tensor([1, 2, 3]), ad.tensor([1, 0, 0]))), (0 + 4 + 9) / 3);
    const g = ad.grad((v: T) => ad.nn.mseLoss(v, ad.tensor([0, 0], { dtype: "float64" })))(
      ad.tensor([1, 2], { dtype: "float64" }),
    );
    allNear(g, [1, 2], 1e-12);
  });

  test("crossEntropy(logits [N, C], int32 labels [N]): mean reduction; gradient softmax − onehot over N", () => {
    const logits = ad.tensor(
      [
        [1, 2, 3],
        [1, 1, 1],
      ],
      { dtype: "float64" },
    );
    const labels = ad.tensor([2, 0], { dtype: "int32" });
    const l0 = -(3 - Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)));
    const l1 = Math.log(3);
    near(num(ad.nn.crossEntropy(logits, labels)), (l0 + l1) / 2, 1e-12);
    const g = ad.grad((v: T) => ad.nn.crossEntropy(v, labels))(logits);
    const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
    allNear(
      g,
      [
        [Math.exp(1) / z / 2, Math.exp(2) / z / 2, (Math.exp(3) / z - 1) / 2],
        [(1 / 3 - 1) / 2, 1 / 6, 1 / 6],
      ],
      1e-12,
    );
  });

  test("binaryCrossEntropyWithLogits: mean, stable at |x| = 1e4", () => {
    const x = ad.tensor([0, 2, -1], { dtype: "float64" });
    const y = ad.tensor([1, 0, 1], { dtype: "float64" });
    const sp = (v: number) => Math.log1p(Math.exp(v));
    const want = (sp(-0) + sp(2) + sp(1)) / 3;
    near(num(ad.nn.binaryCrossEntropyWithLogits(x, y)), want, 1e-12);
    const big = ad.nn.binaryCrossEntropyWithLogits(ad.tensor([1e4, -1e4]), ad.tensor([0, 1]));
    near(num(big), 1e4, 1e-6);
    const g = flat(
      ad.grad((v: T) => ad.nn.binaryCrossEntropyWithLogits(v, ad.tensor([0, 1])))(ad.tensor([1e4, -1e4])),
    );
    allNear(g, [0.5, -0.5]);
  });
});

describe("§8/§10 optimisers over module.parameters()", () => {
  const setup = () => {
    const p = ad.tensor([1, -2], { dtype: "float64", requiresGrad: true });
    const grad = () => {
      ad.sum(ad.mul(p, ad.tensor([0.5, 2], { dtype: "float64" }))).backward(); // g = [0.5, 2]
    };
    return { p, grad };
  };

  test("SGD: p −= lr (g + wd p); momentum and nesterov as PyTorch; zeroGrad()", () => {
    const { p, grad } = setup();
    const opt = new ad.optim.SGD([p], { lr: 0.1 });
    grad();
    opt.step();
    allNear(p, [1 - 0.05, -2 - 0.2], 1e-12);
    opt.zeroGrad();
    assert.equal(p.grad, null);

    const s = setup();
    const om = new ad.optim.SGD([s.p], { lr: 0.1, momentum: 0.9 });
    s.grad();
    om.step(); // buf = g
    om.zeroGrad();
    s.grad();
    om.step(); // buf = 0.9 g + g
    allNear(s.p, [1 - 0.1 * (0.5 + 1.9 * 0.5), -2 - 0.1 * (2 + 1.9 * 2)], 1e-12);

    const n = setup();
    const on = new ad.optim.SGD([n.p], { lr: 0.1, momentum: 0.9, nesterov: true });
    n.grad();
    on.step(); // buf = g; update g + 0.9 buf = 1.9 g
    allNear(n.p, [1 - 0.1 * 1.9 * 0.5, -2 - 0.1 * 1.9 * 2], 1e-12);

    const w = setup();
    const ow = new ad.optim.SGD([w.p], { lr: 0.1, weightDecay: 0.5 });
    w.grad();
    ow.step();
    allNear(w.p, [1 - 0.1 * (0.5 + 0.5), -2 - 0.1 * (2 - 1)], 1e-12);
  });

  test("Adam: first step moves each parameter by lr·sign(g); AdamW decays decoupled", () => {
    const { p, grad } = setup();
    const opt = new ad.optim.Adam([p], { lr: 0.01 });
    grad();
    opt.step();
    allNear(p, [1 - 0.01, -2 - 0.01], 1e-6);
    const w = setup();
    const ow = new ad.optim.AdamW([w.p], { lr: 0.01, weightDecay: 0.1 });
    w.grad();
    ow.step();
    // PyTorch AdamW: p ← p(1 − lr·wd) − lr·m̂/(√v̂ + ε)
    allNear(w.p, [1 * (1 - 0.001) - 0.01, -2 * (1 - 0.001) - 0.01], 1e-6);
  });

  test("RMSprop: first step p −= lr g / (√(α·0 + (1−α) g²) + ε)", () => {
    const { p, grad } = setup();
    const opt = new ad.optim.RMSprop([p], { lr: 0.01 });
    grad();
    opt.step();
    // PyTorch default alpha 0.99: v = 0.01 g²; step = lr g / (0.1 |g|) = 0.1 sign(g)
    allNear(p, [1 - 0.1, -2 + -0.1], 1e-5);
  });

  test("training a Linear on a linear target converges", () => {
    const lin = new ad.nn.Linear(2, 1, { key: key(20) });
    const opt = new ad.optim.Adam(lin.parameters(), { lr: 0.05 });
    const x = ad.random.normal(key(21), [32, 2]);
    const y = ad.add(ad.matmul(x, ad.tensor([[2], [-1]])), 0.5);
    let loss = 0;
    for (let i = 0; i < 300; i++) {
      opt.zeroGrad();
      const l = ad.nn.mseLoss(lin.forward(x), y);
      l.backward();
      opt.step();
      loss = l.item();
    }
    assert.ok(loss < 1e-3, `final loss ${loss}`);
  });

  test("clipGradNorm(params, maxNorm) scales gradients and returns the total norm", () => {
    const a = ad.tensor([3, 0], { requiresGrad: true });
    const b = ad.tensor([4], { requiresGrad: true });
    ad.add(ad.sum(ad.mul(a, ad.tensor([3, 0]))), ad.sum(ad.mul(b, ad.tensor([4])))).backward();
    const total = ad.optim.clipGradNorm([a, b], 1);
    near(num(total), 5, 1e-6);
    allNear(a.grad, [0.6, 0], 1e-5);
    allNear(b.grad, [0.8], 1e-5);
    const t2 = ad.optim.clipGradNorm([a, b], 10);
    near(num(t2), 1, 1e-5);
    allNear(b.grad, [0.8], 1e-5);
  });

  test("functional adam(lr): {init, update(grads, state, params) → [updates, state]} with applyUpdates", () => {
    const opt = ad.optim.adam(0.1);
    let params = { w: ad.tensor([1, -1], { dtype: "float64" }), b: ad.tensor(2, { dtype: "float64" }) };
    let state = opt.init(params);
    const loss = (p: typeof params) => ad.add(ad.sum(ad.square(p.w)), ad.square(p.b));
    const g0 = ad.grad(loss)(params) as typeof params;
    const [u0] = opt.update(g0, state, params) as [typeof params, unknown];
    allNear(u0.w, [-0.1, 0.1], 1e-6);
    for (let i = 0; i < 200; i++) {
      const g = ad.grad(loss)(params) as typeof params;
      const [updates, s] = opt.update(g, state, params) as [typeof params, unknown];
      state = s as typeof state;
      params = ad.optim.applyUpdates(params, updates) as typeof params;
    }
    assert.ok(num(loss(params)) < 1e-2, `loss ${num(loss(params))}`);
    assert.deepEqual(Object.keys(params).sort(), ["b", "w"]);
  });
});

describe("§8/§10 io: safetensors", () => {
  test("saveSafetensors(tree) → Uint8Array in the safetensors format, names by tree path", () => {
    const tree = {
      layers: [{ weight: ad.tensor([[1, 2]]) }, { weight: ad.tensor([3], { dtype: "float64" }) }],
      step: ad.tensor([7], { dtype: "int32" }),
    };
    const bytes = ad.io.saveSafetensors(tree);
    assert.ok(bytes instanceof Uint8Array);
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    assert.deepEqual(header["layers.0.weight"]!.shape, [1, 2]);
    assert.equal(header["layers.0.weight"]!.dtype, "F32");
    assert.equal(header["layers.1.weight"]!.dtype, "F64");
    assert.equal(header["step"]!.dtype, "I32");
    const [s, e] = header["layers.0.weight"]!.data_offsets;
    const data = bytes.slice(8 + n + s, 8 + n + e);
    assert.deepEqual(Array.from(new Float32Array(data.buffer)), [1, 2]);
  });

  test("loadSafetensors restores the nesting, dtypes and values", () => {
    const tree = {
      layers: [{ weight: ad.tensor([[1, 2]]) }, { weight: ad.tensor([3], { dtype: "float64" }) }],
      step: ad.tensor([7], { dtype: "int32" }),
    };
    const back = ad.io.loadSafetensors(ad.io.saveSafetensors(tree)) as typeof tree;
    assert.ok(Array.isArray(back.layers), "numeric path segments come back as arrays");
    assert.deepEqual(back.layers[0]!.weight.toArray(), [[1, 2]]);
    assert.equal(back.layers[1]!.weight.dtype, "float64");
    assert.equal(back.step.dtype, "int32");
    assert.deepEqual(back.step.toArray(), [7]);
  });

  test("a module's stateDict round-trips through safetensors", () => {
    const lin = new ad.nn.Linear(3, 2, { key: key(30) });
    const bytes = ad.io.saveSafetensors(lin.stateDict() as never);
    const other = new ad.nn.Linear(3, 2, { key: key(31) });
    other.loadStateDict(ad.io.loadSafetensors(bytes) as never);
    assert.deepEqual(flat(other.parameters()[0]), flat(lin.parameters()[0]));
  });
});

describe("§9 mixed precision", () => {
  test("float16 rounds to nearest, ties to even; overflow to Inf", () => {
    const h = ad.tensor([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65520, 1e-8, 0.1], { dtype: "float16" });
    assert.equal(h.dtype, "float16");
    const v = flat(h);
    assert.equal(v[0], 1);
    assert.equal(v[1], 1 + 2 ** -9);
    assert.equal(v[2], 65504);
    assert.equal(v[3], Number.POSITIVE_INFINITY);
    assert.equal(v[4], 0);
    near(v[5]!, 0.0999755859375, 0);
  });

  test("bfloat16 rounds to nearest, ties to even", () => {
    const b = ad.tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8, Math.PI], { dtype: "bfloat16" });
    assert.equal(b.dtype, "bfloat16");
    const v = flat(b);
    assert.equal(v[0], 1);
    assert.equal(v[1], 1 + 2 ** -6);
    assert.equal(v[2], 3.140625);
  });

  test("low-precision arithmetic rounds each result; sums accumulate in float32 (anchors c#10 note 10)", () => {
    const a = ad.tensor([1], { dtype: "float16" });
    const s = ad.add(a, 2 ** -11);
    assert.equal(s.dtype, "float16");
    assert.equal(s.item(), 1);
    const ones = ad.ones([4096], { dtype: "float16" });
    assert.equal(ad.sum(ones).item(), 4096);
    const g = ad.grad((x: T) => ad.sum(ad.mul(x, x)))(ad.tensor([1.5, 2], { dtype: "bfloat16" })) as T;
    assert.equal(g.dtype, "bfloat16");
    assert.deepEqual(flat(g), [3, 4]);
  });

  test("amp.autocast(dtype, fn): matmul runs in low precision; reductions of low-precision inputs return float32", () => {
    const a = ad.random.normal(key(40), [4, 8]);
    const b = ad.random.normal(key(41), [8, 3]);
    const r = ad.amp.autocast("bfloat16", () => {
      const y = ad.matmul(a, b);
      assert.equal(y.dtype, "bfloat16");
      const s = ad.sum(y);
      assert.equal(s.dtype, "float32");
      const l = ad.nn.mseLoss(y, ad.zeros([4, 3]));
      assert.equal(l.dtype, "float32");
      return y;
    });
    assert.equal(r.dtype, "bfloat16");
    assert.ok(ad.allclose(ad.matmul(a, b), ad.tensor(flat(r)).reshape([4, 3]), { atol: 0.2, rtol: 0.02 }));
    const h = ad.amp.autocast("float16", () => ad.matmul(a, b));
    assert.equal(h.dtype, "float16");
    assert.equal(ad.matmul(a, b).dtype, "float32", "autocast ends when fn returns");
    const gradUnder = ad.grad((x: T) => ad.amp.autocast("float16", () => ad.sum(ad.matmul(x, b))))(a) as T;
    assert.equal(gradUnder.dtype, "float32", "the gradient keeps the parameter's dtype");
  });

  test("GradScaler: scale(loss), getScale(), skipping Inf steps with backoff, growth after growthInterval", () => {
    const p = ad.tensor([1, 1], { requiresGrad: true });
    const opt = new ad.optim.SGD([p], { lr: 0.1 });
    const scaler = new ad.amp.GradScaler({
      initScale: 1024,
      growthFactor: 2,
      backoffFactor: 0.5,
      growthInterval: 2,
    });
    assert.equal(num(scaler.getScale()), 1024);
    const loss = () => ad.sum(ad.mul(p, ad.tensor([1, 2])));
    // clean step: gradients unscaled before the update
    opt.zeroGrad();
    const scaled = scaler.scale(loss());
    near(num(scaled), 3 * 1024);
    scaled.backward();
    scaler.step(opt);
    scaler.update();
    allNear(p, [0.9, 0.8], 1e-6);
    assert.equal(num(scaler.getScale()), 1024);
    // Inf step: skipped, scale backs off
    opt.zeroGrad();
    scaler.scale(ad.mul(loss(), Number.POSITIVE_INFINITY)).backward();
    scaler.step(opt);
    scaler.update();
    allNear(p, [0.9, 0.8], 1e-6);
    assert.equal(num(scaler.getScale()), 512);
    // two clean steps → growth
    for (let i = 0; i < 2; i++) {
      opt.zeroGrad();
      scaler.scale(loss()).backward();
      scaler.step(opt);
      scaler.update();
    }
    assert.equal(num(scaler.getScale()), 1024);
    allNear(p, [0.7, 0.4], 1e-5);
  });

  test("GradScaler.unscale(optimizer) divides the gradients once, before clipping", () => {
    const p = ad.tensor([1], { requiresGrad: true });
    const opt = new ad.optim.SGD([p], { lr: 1 });
    const scaler = new ad.amp.GradScaler({ initScale: 8 });
    scaler.scale(ad.sum(ad.mul(p, 3))).backward();
    allNear(p.grad, [24]);
    scaler.unscale(opt);
    allNear(p.grad, [3]);
    scaler.step(opt);
    scaler.update();
    allNear(p, [-2]);
  });
});
