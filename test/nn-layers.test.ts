/**
 * @file `ad.nn` layers: outputs against values computed by hand or by naive loops written here
 * (Linear, Conv2d, LayerNorm, Embedding, Dropout, activations), and derivatives of every layer
 * by `ad.gradcheck` in float64 (forward and reverse mode against central differences).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose } from "./helpers.js";

const f64 = (x: ad.TensorData) => ad.tensor(x, { dtype: "float64" });
const i32 = (x: ad.TensorData) => ad.tensor(x, { dtype: "int32" });
const randn = (seed: number, shape: number[]) =>
  ad.random.normal(ad.random.key(seed), shape, { dtype: "float64" });

/** gradcheck that reports its message on failure. */
function checkGrad(f: (...a: never[]) => unknown, args: unknown[], opts: ad.GradcheckOptions = {}): void {
  const r = ad.gradcheck(f, args, opts);
  assert.ok(r.ok, r.message);
}

describe("Linear", () => {
  test("y = x·Wᵀ + b with weight [out, in], by hand", () => {
    const fc = new ad.nn.Linear(3, 2, { key: ad.random.key(0) });
    assert.deepEqual(fc.weight.shape, [2, 3]);
    assert.deepEqual(fc.bias!.shape, [2]);
    fc.loadStateDict({
      weight: ad.tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      bias: ad.tensor([0.5, -1]),
    });
    const y = fc.forward(
      ad.tensor([
        [1, 0, -1],
        [2, 1, 0],
      ]),
    );
    assert.deepEqual(y.toArray(), [
      [1 - 3 + 0.5, 4 - 6 - 1],
      [2 + 2 + 0.5, 8 + 5 - 1],
    ]);
    // any leading axes
    assert.deepEqual(fc.forward(ad.ones([4, 5, 3])).shape, [4, 5, 2]);
  });

  test("initialisation: U(−1/√in, 1/√in), reproducible from the key, no bias on request", () => {
    const a = new ad.nn.Linear(16, 8, { key: ad.random.key(3) });
    const b = new ad.nn.Linear(16, 8, { key: ad.random.key(3) });
    assert.deepEqual(a.weight.toArray(), b.weight.toArray());
    const w = Array.from(a.weight.data());
    assert.ok(w.every((v) => Math.abs(v) <= 0.25));
    assert.ok(Math.max(...w.map(Math.abs)) > 0.2, "fills the range");
    assert.equal(new ad.nn.Linear(2, 2, { bias: false }).bias, null);
    assert.equal(new ad.nn.Linear(2, 2, { dtype: "float64" }).weight.dtype, "float64");
  });

  test("eager backward fills the parameters' grads (hand values)", () => {
    const fc = new ad.nn.Linear(2, 1);
    fc.loadStateDict({ weight: ad.tensor([[2, -1]]), bias: ad.tensor([0.5]) });
    const x = ad.tensor([
      [1, 2],
      [3, 4],
    ]);
    fc.forward(x).sum().backward();
    assert.deepEqual(fc.weight.grad!.toArray(), [[4, 6]]);
    assert.deepEqual(fc.bias!.grad!.toArray(), [2]);
  });

  test("gradcheck in float64 (input, weight, bias)", () => {
    checkGrad(
      (x: ad.Tensor, w: ad.Tensor, b: ad.Tensor) => ad.nn.linear(x, w, b),
      [randn(1, [2, 3]), randn(2, [4, 3]), randn(3, [4])],
    );
  });

  test("shape errors name the sizes", () => {
    const fc = new ad.nn.Linear(3, 2);
    assert.throws(
      () => fc.forward(ad.ones([2, 4])),
      (e: Error) => e instanceof ad.ShapeError && /\[2, 4\]|3/.test(e.message),
    );
    assert.throws(() => new ad.nn.Linear(0, 2), ad.ShapeError);
    assert.throws(() => new ad.nn.Linear(2.5, 2), ad.ShapeError);
  });
});

/** Naive cross-correlation in float64 on nested arrays: x [N][C][H][W], w [O][C/g][kh][kw]. */
function naiveConv(
  x: number[][][][],
  w: number[][][][],
  b: number[] | null,
  stride: [number, number],
  padding: [number, number],
  dilation: [number, number],
  groups: number,
): number[][][][] {
  const N = x.length;
  const C = x[0]!.length;
  const H = x[0]![0]!.length;
  const W = x[0]![0]![0]!.length;
  const O = w.length;
  const Cg = w[0]!.length;
  const kh = w[0]![0]!.length;
  const kw = w[0]![0]![0]!.length;
  const Ho = Math.floor((H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0]) + 1;
  const Wo = Math.floor((W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1]) + 1;
  const og = O / groups;
  assert.equal(Cg * groups, C);
  const out: number[][][][] = [];
  for (let n = 0; n < N; n++) {
    const on: number[][][] = [];
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / og);
      const plane: number[][] = [];
      for (let i = 0; i < Ho; i++) {
        const row: number[] = [];
        for (let j = 0; j < Wo; j++) {
          let s = b === null ? 0 : b[o]!;
          for (let c = 0; c < Cg; c++)
            for (let a = 0; a < kh; a++)
              for (let e = 0; e < kw; e++) {
                const r = i * stride[0] - padding[0] + a * dilation[0];
                const q = j * stride[1] - padding[1] + e * dilation[1];
                if (r < 0 || r >= H || q < 0 || q >= W) continue;
                s += w[o]![c]![a]![e]! * x[n]![g * Cg + c]![r]![q]!;
              }
          row.push(s);
        }
        plane.push(row);
      }
      on.push(plane);
    }
    out.push(on);
  }
  return out;
}

describe("Conv2d", () => {
  test("a 2×2 box filter by hand", () => {
    const x = ad.tensor([
      [
        [
          [1, 2, 3],
          [4, 5, 6],
          [7, 8, 9],
        ],
      ],
    ]);
    assert.deepEqual(ad.nn.conv2d(x, ad.ones([1, 1, 2, 2])).toArray(), [
      [
        [
          [12, 16],
          [24, 28],
        ],
      ],
    ]);
  });

  const configs: { name: string; C: number; O: number; k: [number, number]; opts: ad.nn.Conv2dOptions }[] = [
    { name: "plain 3×3", C: 2, O: 3, k: [3, 3], opts: {} },
    { name: "stride 2, padding 1", C: 2, O: 2, k: [3, 3], opts: { stride: 2, padding: 1 } },
    {
      name: "rectangular kernel, stride [1, 2], padding [2, 0]",
      C: 1,
      O: 2,
      k: [2, 3],
      opts: { stride: [1, 2], padding: [2, 0] },
    },
    { name: "dilation 2", C: 2, O: 1, k: [2, 2], opts: { dilation: 2, padding: 1 } },
    { name: "groups 2", C: 4, O: 6, k: [2, 2], opts: { groups: 2, stride: 2 } },
    { name: "depthwise (groups = C)", C: 3, O: 3, k: [3, 3], opts: { groups: 3, padding: 1 } },
  ];
  for (const cfg of configs)
    test(`matches a naive loop: ${cfg.name}`, () => {
      const conv = new ad.nn.Conv2d(cfg.C, cfg.O, cfg.k, {
        ...cfg.opts,
        key: ad.random.key(7),
        dtype: "float64",
      });
      const x = randn(8, [2, cfg.C, 6, 7]);
      const got = conv.forward(x);
      const norm = (p: number | readonly [number, number] | undefined, d: number): [number, number] =>
        p === undefined ? [d, d] : typeof p === "number" ? [p, p] : [p[0], p[1]];
      const want = naiveConv(
        x.toArray() as number[][][][],
        conv.weight.toArray() as number[][][][],
        conv.bias!.toArray() as number[],
        norm(cfg.opts.stride, 1),
        norm(cfg.opts.padding, 0),
        norm(cfg.opts.dilation, 1),
        cfg.opts.groups ?? 1,
      );
      assertClose(got, want, { rtol: 1e-12, atol: 1e-12 });
    });

  test("unbatched input [C, H, W]; weight [out, in/groups, kh, kw]; PyTorch's bound 1/√fanIn", () => {
    const conv = new ad.nn.Conv2d(4, 6, 3, { groups: 2, key: ad.random.key(1) });
    assert.deepEqual(conv.weight.shape, [6, 2, 3, 3]);
    assert.deepEqual(conv.forward(ad.ones([4, 5, 5])).shape, [6, 3, 3]);
    const bound = 1 / Math.sqrt(2 * 9);
    assert.ok(Array.from(conv.weight.data()).every((v) => Math.abs(v) <= bound));
    assert.ok(Array.from(conv.bias!.data()).every((v) => Math.abs(v) <= bound));
  });

  test("gradcheck in float64 (input, weight, bias) with stride, padding, dilation and groups", () => {
    checkGrad(
      (x: ad.Tensor, w: ad.Tensor, b: ad.Tensor) =>
        ad.nn.conv2d(x, w, b, { stride: [2, 1], padding: 1, dilation: [1, 2], groups: 2 }),
      [randn(1, [1, 2, 5, 5]), randn(2, [2, 1, 2, 2]), randn(3, [2])],
    );
  });

  test("bad shapes are ShapeErrors", () => {
    const w = ad.ones([2, 3, 3, 3]);
    assert.throws(() => ad.nn.conv2d(ad.ones([1, 2, 5, 5]), w), ad.ShapeError);
    assert.throws(() => ad.nn.conv2d(ad.ones([1, 3, 2, 2]), w), ad.ShapeError);
    assert.throws(() => ad.nn.conv2d(ad.ones([3, 5]), w), ad.ShapeError);
    assert.throws(() => new ad.nn.Conv2d(3, 4, 3, { groups: 2 }), ad.ShapeError);
    assert.throws(() => ad.nn.conv2d(ad.ones([1, 3, 5, 5]), w, ad.ones([3])), ad.ShapeError);
  });
});

describe("LayerNorm", () => {
  test("(x − mean)/√(var + eps)·weight + bias with the biased variance, by hand", () => {
    const ln = new ad.nn.LayerNorm(3, { dtype: "float64" });
    assert.deepEqual(ln.weight!.toArray(), [1, 1, 1]);
    assert.deepEqual(ln.bias!.toArray(), [0, 0, 0]);
    const s = Math.sqrt(2 / 3 + 1e-5);
    assertClose(ln.forward(f64([[1, 2, 3]])), [[-1 / s, 0, 1 / s]]);
    ln.loadStateDict({ weight: f64([2, 1, -1]), bias: f64([0, 1, 1]) });
    assertClose(
      ln.forward(
        f64([
          [1, 2, 3],
          [4, 4, 4],
        ]),
      ),
      [
        [-2 / s, 1, 1 - 1 / s],
        [0, 1, 1],
      ],
    );
  });

  test("several normalised axes; no affine parameters on request", () => {
    const ln = new ad.nn.LayerNorm([2, 2], { elementwiseAffine: false, eps: 0 });
    assert.equal(ln.parameters().length, 0);
    const y = ln.forward(
      ad.tensor([
        [
          [1, 3],
          [5, 7],
        ],
      ]),
    );
    const s = Math.sqrt(5); // mean 4, biased variance (9 + 1 + 1 + 9) / 4 = 5
    assertClose(
      y,
      [
        [
          [-3 / s, -1 / s],
          [1 / s, 3 / s],
        ],
      ],
      { rtol: 1e-6 },
    );
    assert.throws(() => ln.forward(ad.ones([2, 3])), ad.ShapeError);
  });

  test("gradcheck in float64 (input, weight, bias)", () => {
    checkGrad(
      (x: ad.Tensor, w: ad.Tensor, b: ad.Tensor) => ad.nn.layerNorm(x, [4], w, b),
      [randn(1, [3, 4]), randn(2, [4]), randn(3, [4])],
    );
  });
});

describe("Embedding", () => {
  test("rows of the table for int32 indices of any shape", () => {
    const emb = new ad.nn.Embedding(4, 2, { key: ad.random.key(0) });
    assert.deepEqual(emb.weight.shape, [4, 2]);
    emb.loadStateDict({
      weight: ad.tensor([
        [0, 0],
        [1, 10],
        [2, 20],
        [3, 30],
      ]),
    });
    assert.deepEqual(
      emb
        .forward(
          i32([
            [3, 0],
            [1, 1],
          ]),
        )
        .toArray(),
      [
        [
          [3, 30],
          [0, 0],
        ],
        [
          [1, 10],
          [1, 10],
        ],
      ],
    );
    assert.deepEqual(emb.forward([2]).toArray(), [[2, 20]]);
    assert.throws(() => emb.forward(i32([4])), ad.ShapeError);
    assert.throws(() => emb.forward(ad.tensor([1])), ad.DTypeError);
  });

  test("N(0, 1) initialisation", () => {
    const w = Array.from(new ad.nn.Embedding(1000, 4, { key: ad.random.key(2) }).weight.data());
    const mean = w.reduce((a, b) => a + b, 0) / w.length;
    const sd = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
    assert.ok(Math.abs(mean) < 0.05 && Math.abs(sd - 1) < 0.05, `mean ${mean}, sd ${sd}`);
  });

  test("dense gradient (eager): counts of each row, by hand", () => {
    const emb = new ad.nn.Embedding(4, 2);
    emb
      .forward(i32([1, 3, 1]))
      .sum()
      .backward();
    assert.ok(!(emb.weight.grad instanceof ad.SparseTensor));
    assert.deepEqual(emb.weight.grad!.toArray(), [
      [0, 0],
      [2, 2],
      [0, 0],
      [1, 1],
    ]);
  });

  test("gradcheck in float64 of the lookup wrt the table", () => {
    const idx = i32([
      [2, 0],
      [2, 1],
    ]);
    checkGrad((w: ad.Tensor) => ad.nn.embedding(w, idx).mul(w.sum()), [randn(1, [3, 2])]);
  });
});

describe("Dropout", () => {
  test("training: zeros with probability p, survivors scaled by 1/(1 − p); eval: identity", () => {
    const drop = new ad.nn.Dropout(0.25, { key: ad.random.key(0) });
    const y = Array.from(drop.forward(ad.ones([4000])).data());
    const zeros = y.filter((v) => v === 0).length;
    assert.ok(y.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
    assert.ok(Math.abs(zeros / 4000 - 0.25) < 0.03, `dropped ${zeros / 4000}`);
    drop.eval();
    const x = ad.ones([10]);
    assert.equal(drop.forward(x), x);
    drop.train();
    assert.notDeepEqual(drop.forward(ad.ones([50])).toArray(), ad.ones([50]).toArray());
  });

  test("keyed: a given key reproduces the mask; the module's own stream advances per call", () => {
    const drop = new ad.nn.Dropout(0.5, { key: ad.random.key(1) });
    const k = ad.random.key(9);
    const x = ad.ones([64]);
    assert.deepEqual(drop.forward(x, k).toArray(), drop.forward(x, k).toArray());
    const a = drop.forward(x).toArray();
    const b = drop.forward(x).toArray();
    assert.notDeepEqual(a, b);
    const again = new ad.nn.Dropout(0.5, { key: ad.random.key(1) });
    assert.deepEqual(again.forward(x).toArray(), a);
    assert.deepEqual(ad.nn.dropout(x, 0.5, k).toArray(), drop.forward(x, k).toArray());
  });

  test("p = 0 and p = 1; bad p", () => {
    const x = ad.ones([5]);
    assert.equal(new ad.nn.Dropout(0).forward(x), x);
    assert.deepEqual(new ad.nn.Dropout(1).forward(x).toArray(), [0, 0, 0, 0, 0]);
    assert.throws(() => new ad.nn.Dropout(1.5), ad.ShapeError);
    assert.throws(() => new ad.nn.Dropout({ p: -0.1 }), ad.ShapeError);
  });

  test("an options object {p, key} works as the positional form", () => {
    const x = ad.ones([64]);
    const a = new ad.nn.Dropout({ p: 0.5, key: ad.random.key(7) }).forward(x);
    const b = new ad.nn.Dropout(0.5, { key: ad.random.key(7) }).forward(x);
    assert.deepEqual(a.toArray(), b.toArray());
    assert.equal(new ad.nn.Dropout({}).p, 0.5);
  });

  test("gradcheck in float64 with a fixed key (the mask is a constant)", () => {
    const k = ad.random.key(3);
    checkGrad((x: ad.Tensor) => ad.nn.dropout(x, 0.3, k).mul(x), [randn(1, [12])]);
  });
});

describe("Sequential and activations", () => {
  test("chains its layers in order", () => {
    const seq = new ad.nn.Sequential(new ad.nn.Linear(2, 2), new ad.nn.ReLU(), new ad.nn.Identity());
    seq[0]!.loadStateDict({
      weight: ad.tensor([
        [1, 0],
        [0, -1],
      ]),
      bias: ad.tensor([0, 0]),
    });
    assert.deepEqual(seq.forward(ad.tensor([[3, 4]])).toArray(), [[3, 0]]);
    assert.equal(seq.length, 3);
    assert.equal([...seq].length, 3);
    seq.append(new ad.nn.Tanh());
    assert.equal(seq.length, 4);
  });

  test("activation modules and functions, by hand", () => {
    const x = f64([-2, 0, 1.5]);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    assertClose(new ad.nn.ReLU().forward(x), [0, 0, 1.5]);
    assertClose(new ad.nn.LeakyReLU(0.1).forward(x), [-0.2, 0, 1.5]);
    assertClose(new ad.nn.Sigmoid().forward(x), [-2, 0, 1.5].map(sig));
    assertClose(new ad.nn.Tanh().forward(x), [-2, 0, 1.5].map(Math.tanh));
    assertClose(
      new ad.nn.SiLU().forward(x),
      [-2, 0, 1.5].map((v) => v * sig(v)),
    );
    assertClose(
      new ad.nn.Softplus().forward(x),
      [-2, 0, 1.5].map((v) => Math.log1p(Math.exp(v))),
    );
    assertClose(ad.nn.elu(x), [Math.expm1(-2), 0, 1.5]);
    assertClose(ad.nn.elu(x, 0.5), [0.5 * Math.expm1(-2), 0, 1.5]);
    const erf1 = 0.8427007929497149; // erf(1)
    assertClose(new ad.nn.GELU().forward(f64([Math.SQRT2])), [Math.SQRT2 * 0.5 * (1 + erf1)]);
    assertClose(new ad.nn.Softmax().forward(f64([0, Math.log(3)])), [0.25, 0.75]);
    assertClose(new ad.nn.LogSoftmax().forward(f64([0, Math.log(3)])), [Math.log(0.25), Math.log(0.75)]);
    assert.deepEqual(new ad.nn.Flatten().forward(ad.zeros([2, 3, 4])).shape, [2, 12]);
    assert.deepEqual(ad.nn.flatten(ad.zeros([2, 3, 4]), 0, 1).shape, [6, 4]);
  });

  test("gradcheck in float64 of the activations (away from kinks)", () => {
    const x = f64([-1.3, -0.4, 0.7, 2.1]);
    for (const f of [ad.nn.elu, ad.nn.silu, (t: ad.Tensor) => ad.nn.leakyRelu(t, 0.2), ad.nn.gelu] as ((
      t: ad.Tensor,
    ) => ad.Tensor)[])
      checkGrad(f, [x]);
    checkGrad((t: ad.Tensor) => new ad.nn.Sequential(new ad.nn.Softplus(), new ad.nn.Tanh()).forward(t), [x]);
  });
});

describe("nn.init and transforms over layers", () => {
  test("fans and the initialisers' bounds (PyTorch's formulas)", () => {
    assert.deepEqual(ad.nn.init.fans([8, 3, 5, 5]), [75, 200]);
    assert.deepEqual(ad.nn.init.fans([16, 4]), [4, 16]);
    const k = ad.random.key(0);
    const within = (t: ad.Tensor, b: number) => {
      const d = Array.from(t.data());
      assert.ok(
        d.every((v) => Math.abs(v) <= b),
        `bound ${b}`,
      );
      assert.ok(Math.max(...d.map(Math.abs)) > 0.8 * b, "fills the range");
    };
    within(ad.nn.init.kaimingUniform(k, [64, 32]), 1 / Math.sqrt(32)); // a = √5
    within(ad.nn.init.kaimingUniform(k, [64, 32], { a: 0 }), Math.sqrt(6 / 32));
    within(ad.nn.init.xavierUniform(k, [64, 32]), Math.sqrt(6 / 96));
    within(ad.nn.init.uniform(k, [100], -0.3, 0.3), 0.3);
    const n = Array.from(ad.nn.init.normal(k, [4000], 2, 0.5).data());
    const mean = n.reduce((a, b) => a + b, 0) / n.length;
    assert.ok(Math.abs(mean - 2) < 0.03);
    assert.equal(ad.nn.init.zeros([2], { dtype: "float64" }).dtype, "float64");
    assert.throws(() => ad.nn.init.ones([2], { dtype: "int32" }), ad.DTypeError);
  });

  test("jit and vmap of a Conv2d layer agree with the eager forward", () => {
    const conv = new ad.nn.Conv2d(2, 3, 3, {
      padding: 1,
      stride: 2,
      key: ad.random.key(0),
      dtype: "float64",
    });
    const x = randn(1, [4, 2, 5, 5]);
    assertClose(ad.jit((t: ad.Tensor) => conv.forward(t))(x), conv.forward(x), { rtol: 1e-12, atol: 1e-12 });
    assertClose(ad.vmap((t: ad.Tensor) => conv.forward(t))(x), conv.forward(x), { rtol: 1e-12, atol: 1e-12 });
  });
});
