/**
 * @file Sparse embedding gradients: `ad.SparseTensor` (indices, values, shape, toDense,
 * coalesce), `nn.Embedding({sparse: true})` whose eager gradient holds only the looked-up rows,
 * and the optimizers' lazy sparse updates (SGD and Adam touch only those rows, Adam with
 * `SparseAdam` semantics) against a plain-JS reference; clipping and loss scaling keep gradients
 * sparse.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose } from "./helpers.js";

const i32 = (x: ad.TensorData) => ad.tensor(x, { dtype: "int32" });
const rows = (t: ad.Tensor) => t.toArray() as number[][];

describe("SparseTensor", () => {
  const s = new ad.SparseTensor(
    i32([2, 0, 2]),
    ad.tensor([
      [1, 1],
      [5, 5],
      [2, 3],
    ]),
    [4, 2],
  );

  test("indices, values, shape, toDense (duplicates add up), dense reads", () => {
    assert.deepEqual(s.shape, [4, 2]);
    assert.equal(s.nnz, 3);
    assert.deepEqual(s.indices.toArray(), [2, 0, 2]);
    assert.deepEqual(s.values.toArray(), [
      [1, 1],
      [5, 5],
      [2, 3],
    ]);
    assert.deepEqual(s.toDense().toArray(), [
      [5, 5],
      [0, 0],
      [3, 4],
      [0, 0],
    ]);
    assert.ok(s instanceof ad.Tensor);
    assert.deepEqual(s.toArray(), s.toDense().toArray());
    assert.deepEqual(ad.add(s, 1).toArray(), [
      [6, 6],
      [1, 1],
      [4, 5],
      [1, 1],
    ]);
    assert.equal(s.sum().item(), 17);
  });

  test("coalesce sorts and sums duplicates; addSparse concatenates; mapValues", () => {
    const c = s.coalesce();
    assert.deepEqual(c.indices.toArray(), [0, 2]);
    assert.deepEqual(c.values.toArray(), [
      [5, 5],
      [3, 4],
    ]);
    const t = s.addSparse(new ad.SparseTensor(i32([1]), ad.tensor([[7, 7]]), [4, 2]));
    assert.deepEqual(t.indices.toArray(), [2, 0, 2, 1]);
    assert.deepEqual(t.toDense().toArray(), [
      [5, 5],
      [7, 7],
      [3, 4],
      [0, 0],
    ]);
    assert.deepEqual(
      s
        .mapValues((v) => v.mul(2))
        .toDense()
        .toArray(),
      [
        [10, 10],
        [0, 0],
        [6, 8],
        [0, 0],
      ],
    );
  });

  test("indices as a JS array or in PyTorch's [1, nnz] COO layout", () => {
    const a = new ad.SparseTensor(
      [2, 0],
      ad.tensor([
        [1, 1],
        [5, 5],
      ]),
      [3, 2],
    );
    const b = new ad.SparseTensor(
      i32([[2, 0]]),
      ad.tensor([
        [1, 1],
        [5, 5],
      ]),
      [3, 2],
    );
    assert.deepEqual(a.indices.shape, [2]);
    assert.deepEqual(b.indices.toArray(), [2, 0]);
    assert.deepEqual(a.toDense().toArray(), b.toDense().toArray());
  });

  test("validation and immutability", () => {
    assert.throws(() => new ad.SparseTensor(i32([4]), ad.ones([1, 2]), [4, 2]), ad.ShapeError);
    assert.throws(() => new ad.SparseTensor(i32([0]), ad.ones([1, 3]), [4, 2]), ad.ShapeError);
    assert.throws(() => new ad.SparseTensor(ad.tensor([0]), ad.ones([1, 2]), [4, 2]), ad.DTypeError);
    assert.throws(() => s.add_(1), ad.AdError);
  });
});

describe("nn.Embedding({sparse: true})", () => {
  test("the gradient is a SparseTensor with only the looked-up rows (and equals the dense one)", () => {
    const sparse = new ad.nn.Embedding(10, 3, { sparse: true, key: ad.random.key(0) });
    const dense = new ad.nn.Embedding(10, 3, { key: ad.random.key(0) });
    const idx = i32([
      [1, 5],
      [1, 7],
    ]);
    const up = ad.random.normal(ad.random.key(1), [2, 2, 3]);
    ad.sum(ad.mul(sparse.forward(idx), up)).backward();
    ad.sum(ad.mul(dense.forward(idx), up)).backward();
    const g = sparse.weight.grad;
    assert.ok(g instanceof ad.SparseTensor);
    assert.deepEqual(g.shape, [10, 3]);
    assert.deepEqual(g.indices.toArray(), [1, 5, 1, 7]);
    assert.deepEqual(g.values.toArray(), rows(up.reshape([4, 3])));
    assert.ok(!(dense.weight.grad instanceof ad.SparseTensor));
    assert.deepEqual(g.toDense().toArray(), dense.weight.grad!.toArray());
    assert.deepEqual(g.coalesce().indices.toArray(), [1, 5, 7]);
  });

  test("a second backward accumulates sparsely (indices and values concatenated)", () => {
    const emb = new ad.nn.Embedding(6, 2, { sparse: true });
    emb
      .forward(i32([1]))
      .sum()
      .backward();
    emb
      .forward(i32([3, 1]))
      .sum()
      .backward();
    const g = emb.weight.grad as ad.SparseTensor;
    assert.ok(g instanceof ad.SparseTensor);
    assert.deepEqual(g.indices.toArray(), [1, 3, 1]);
    assert.deepEqual(g.toDense().toArray(), [
      [0, 0],
      [2, 2],
      [0, 0],
      [1, 1],
      [0, 0],
      [0, 0],
    ]);
    emb.zeroGrad();
    assert.equal(emb.weight.grad, null);
  });

  test("several lookups in one graph keep the gradient sparse; a dense use of the table makes it dense", () => {
    const emb = new ad.nn.Embedding(6, 2, { sparse: true });
    const a = emb.forward(i32([1, 2]));
    const b = emb.forward(i32([2, 4]));
    ad.sum(ad.mul(a, 2)).add(ad.sum(b)).backward();
    const g = emb.weight.grad as ad.SparseTensor;
    assert.ok(g instanceof ad.SparseTensor);
    assert.deepEqual(g.coalesce().indices.toArray(), [1, 2, 4]);
    assert.deepEqual(g.toDense().toArray(), [
      [0, 0],
      [2, 2],
      [3, 3],
      [0, 0],
      [1, 1],
      [0, 0],
    ]);
    // tied weights: the lookup's sparse part plus the dense matmul's gradient
    emb.zeroGrad();
    const h = emb.forward(i32([0]));
    ad.sum(ad.matmul(h, ad.transpose(emb.weight))).backward();
    assert.ok(!(emb.weight.grad instanceof ad.SparseTensor));
    // d/dW_i Σ_k h·W_k = h = W_0 for every row i (dense), plus Σ_k W_k at the looked-up row 0 (sparse)
    const w = emb.weight.toArray() as number[][];
    const colSum = [0, 1].map((j) => w.reduce((acc, r) => acc + r[j]!, 0));
    const want = w.map((_, i) => [0, 1].map((j) => w[0]![j]! + (i === 0 ? colSum[j]! : 0)));
    assertClose(emb.weight.grad!, want, { rtol: 1e-6, atol: 1e-6 });
  });

  test("autograd.grad returns the sparse gradient without touching .grad", () => {
    const emb = new ad.nn.Embedding(6, 2, { sparse: true });
    const [g] = ad.autograd.grad([emb.forward(i32([5, 5])).sum()], [emb.weight]);
    assert.ok(g instanceof ad.SparseTensor);
    assert.deepEqual(g.indices.toArray(), [5, 5]);
    assert.equal(emb.weight.grad, null);
  });

  test("under functional transforms the lookup is dense (ad.grad gives a dense gradient)", () => {
    const emb = new ad.nn.Embedding(4, 2, { sparse: true });
    const g = ad.grad((p: Record<string, ad.Tensor>) => ad.nn.functionalCall(emb, p, i32([0, 0, 3])).sum())(
      emb.stateDict(),
    );
    assert.ok(!(g.weight instanceof ad.SparseTensor));
    assert.deepEqual(g.weight!.toArray(), [
      [2, 2],
      [0, 0],
      [0, 0],
      [1, 1],
    ]);
  });
});

/** A float64 sparse embedding and a loss on rows `idx` with upstream gradient `up` rows. */
function sparseStep(emb: ad.nn.Embedding, idx: number[], up: number[][]): void {
  ad.sum(ad.mul(emb.forward(i32(idx)), ad.tensor(up, { dtype: "float64" }))).backward();
}

describe("sparse optimizer updates touch only the looked-up rows", () => {
  const N = 5;
  const D = 2;
  const make = () => new ad.nn.Embedding(N, D, { sparse: true, key: ad.random.key(3), dtype: "float64" });
  // Two steps: rows 1 and 3 (row 3 twice: its gradients add up), then rows 3 and 4.
  const steps: { idx: number[]; up: number[][] }[] = [
    {
      idx: [1, 3, 3],
      up: [
        [0.5, -1],
        [0.2, 0.1],
        [0.3, -0.4],
      ],
    },
    {
      idx: [3, 4],
      up: [
        [-0.6, 0.2],
        [1, 1],
      ],
    },
  ];
  /** The summed gradient of each row at each step, in plain JS. */
  const rowGrads = steps.map(({ idx, up }) => {
    const g = new Map<number, number[]>();
    idx.forEach((r, k) => {
      const prev = g.get(r) ?? [0, 0];
      g.set(
        r,
        prev.map((v, j) => v + up[k]![j]!),
      );
    });
    return g;
  });

  test("SGD without momentum: looked-up rows move by −lr·g, the rest is bit-identical", () => {
    const emb = make();
    const w0 = rows(emb.weight);
    const opt = new ad.optim.SGD(emb.parameters(), { lr: 0.1 });
    const want = w0.map((r) => [...r]);
    steps.forEach(({ idx, up }, s) => {
      opt.zeroGrad();
      sparseStep(emb, idx, up);
      opt.step();
      for (const [r, g] of rowGrads[s]!) want[r] = want[r]!.map((v, j) => v - 0.1 * g[j]!);
      assertClose(emb.weight, want, { rtol: 1e-15, atol: 1e-16 });
    });
    assert.deepEqual(rows(emb.weight)[0], w0[0]);
    assert.deepEqual(rows(emb.weight)[2], w0[2]);
  });

  test("SGD with momentum: lazy (untouched rows keep their values and their momentum)", () => {
    const emb = make();
    const w0 = rows(emb.weight);
    const opt = new ad.optim.SGD(emb.parameters(), { lr: 0.1, momentum: 0.9 });
    const want = w0.map((r) => [...r]);
    const buf = w0.map(() => [0, 0]);
    steps.forEach(({ idx, up }, s) => {
      opt.zeroGrad();
      sparseStep(emb, idx, up);
      opt.step();
      for (const [r, g] of rowGrads[s]!) {
        // the momentum buffer starts as the first gradient (PyTorch); 0.9·0 + g at step 1 is the same
        buf[r] = buf[r]!.map((b, j) => 0.9 * b + g[j]!);
        want[r] = want[r]!.map((v, j) => v - 0.1 * buf[r]![j]!);
      }
      assertClose(emb.weight, want, { rtol: 1e-14, atol: 1e-16 });
    });
    const m = opt.state.get(emb.weight)!.slots.momentumBuffer!;
    assertClose(m, buf, { rtol: 1e-14, atol: 1e-16 });
    assert.deepEqual(rows(m)[0], [0, 0]);
  });

  test("Adam: lazy moments on the looked-up rows, bias correction by the parameter's step count (SparseAdam)", () => {
    const emb = make();
    const w0 = rows(emb.weight);
    const opt = new ad.optim.Adam(emb.parameters(), { lr: 0.1 });
    const want = w0.map((r) => [...r]);
    const m = w0.map(() => [0, 0]);
    const v = w0.map(() => [0, 0]);
    steps.forEach(({ idx, up }, s) => {
      const t = s + 1;
      opt.zeroGrad();
      sparseStep(emb, idx, up);
      opt.step();
      for (const [r, g] of rowGrads[s]!)
        for (let j = 0; j < D; j++) {
          m[r]![j] = 0.9 * m[r]![j]! + 0.1 * g[j]!;
          v[r]![j] = 0.999 * v[r]![j]! + 0.001 * g[j]! ** 2;
          const denom = Math.sqrt(v[r]![j]!) / Math.sqrt(1 - 0.999 ** t) + 1e-8;
          want[r]![j] = want[r]![j]! - (0.1 / (1 - 0.9 ** t)) * (m[r]![j]! / denom);
        }
      assertClose(emb.weight, want, { rtol: 1e-13, atol: 1e-15 });
    });
    // Row 1 was not looked up at step 2: unchanged since step 1, moments untouched (a dense
    // Adam step would have moved it by its momentum).
    const st = opt.state.get(emb.weight)!;
    assert.equal(st.step, 2);
    assertClose(st.slots.expAvg!, m, { rtol: 1e-14, atol: 1e-16 });
    assertClose(st.slots.expAvgSq!, v, { rtol: 1e-14, atol: 1e-18 });
    assert.deepEqual(rows(emb.weight)[0], w0[0]);
    assert.deepEqual(rows(emb.weight)[2], w0[2]);
  });

  test("clipGradNorm and GradScaler keep the gradient sparse", () => {
    const emb = make();
    sparseStep(
      emb,
      [1, 1, 2],
      [
        [3, 0],
        [0, 0],
        [0, 4],
      ],
    );
    const norm = ad.optim.clipGradNorm(emb.parameters(), 1);
    assertClose(norm, 5, { rtol: 1e-12 });
    const g = emb.weight.grad as ad.SparseTensor;
    assert.ok(g instanceof ad.SparseTensor);
    assertClose(
      g.toDense(),
      [
        [0, 0],
        [0.6, 0],
        [0, 0.8],
        [0, 0],
        [0, 0],
      ],
      { rtol: 1e-6 },
    );

    const emb2 = make();
    const opt = new ad.optim.SGD(emb2.parameters(), { lr: 1 });
    const w0 = rows(emb2.weight);
    const scaler = new ad.amp.GradScaler({ initScale: 8 });
    scaler.scale(ad.sum(emb2.forward(i32([2])))).backward();
    assert.ok(scaler.step(opt));
    assert.ok(emb2.weight.grad instanceof ad.SparseTensor);
    assertClose(emb2.weight.grad.values, [[1, 1]]);
    const w1 = rows(emb2.weight);
    assert.deepEqual(w1[2], [w0[2]![0]! - 1, w0[2]![1]! - 1]);
    assert.deepEqual(w1[0], w0[0]);
  });
});
