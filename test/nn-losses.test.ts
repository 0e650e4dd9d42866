/**
 * @file `ad.nn` losses: values against formulas evaluated here in plain JS float64 (PyTorch's
 * conventions: mean reduction, class axis 1, int32 labels, ignoreIndex, class weights, label
 * smoothing, posWeight), gradients by `ad.gradcheck`, and numerical stability for logits of
 * magnitude 1e4 (finite values and gradients, equal to the exact limits).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose } from "./helpers.js";

const f64 = (x: ad.TensorData) => ad.tensor(x, { dtype: "float64" });
const i32 = (x: ad.TensorData) => ad.tensor(x, { dtype: "int32" });
const randn = (seed: number, shape: number[]) =>
  ad.random.normal(ad.random.key(seed), shape, { dtype: "float64" });

/** log Σ exp, the exact way for small inputs. */
const lse = (xs: number[]) => {
  const m = Math.max(...xs);
  return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0));
};

function checkGrad(f: (...a: never[]) => unknown, args: unknown[]): void {
  const r = ad.gradcheck(f, args);
  assert.ok(r.ok, r.message);
}

describe("regression losses", () => {
  test("mseLoss, l1Loss, huberLoss: mean, sum and none, by hand", () => {
    const a = f64([1, 2, -1, 0.5]);
    const b = f64([1, 4, 1, 0]);
    assertClose(ad.nn.mseLoss(a, b), (0 + 4 + 4 + 0.25) / 4);
    assertClose(ad.nn.mseLoss(a, b, { reduction: "sum" }), 8.25);
    assertClose(ad.nn.mseLoss(a, b, { reduction: "none" }), [0, 4, 4, 0.25]);
    assertClose(ad.nn.l1Loss(a, b), (0 + 2 + 2 + 0.5) / 4);
    // huber (delta 1): |d| < 1 → d²/2, else |d| − 1/2
    assertClose(ad.nn.huberLoss(a, b), (0 + 1.5 + 1.5 + 0.125) / 4);
    assertClose(ad.nn.huberLoss(a, b, { delta: 2.5, reduction: "none" }), [0, 2, 2, 0.125]);
    assert.throws(() => ad.nn.mseLoss(f64([1, 2]), f64([1, 2, 3])), ad.ShapeError);
    assert.throws(() => ad.nn.mseLoss(a, b, { reduction: "avg" as "mean" }), ad.ShapeError);
  });

  test("gradcheck in float64 wrt input and target", () => {
    const a = randn(1, [3, 2]);
    const b = randn(2, [3, 2]);
    checkGrad((x: ad.Tensor, y: ad.Tensor) => ad.nn.mseLoss(x, y), [a, b]);
    checkGrad((x: ad.Tensor, y: ad.Tensor) => ad.nn.l1Loss(x, y), [a, b]);
    checkGrad((x: ad.Tensor, y: ad.Tensor) => ad.nn.huberLoss(x, y, { delta: 0.7 }), [a, b]);
  });
});

describe("crossEntropy", () => {
  const logits = [
    [1, 2, 3],
    [1, 1, 1],
    [-2, 0.5, 4],
  ];
  const labels = [2, 0, 1];
  const nll = logits.map((row, i) => lse(row) - row[labels[i]!]!);

  test("int32 class indices, mean reduction by default (hand values)", () => {
    const x = f64(logits);
    assertClose(ad.nn.crossEntropy(x, i32(labels)), (nll[0]! + nll[1]! + nll[2]!) / 3, { rtol: 1e-14 });
    assertClose(ad.nn.crossEntropy(x, i32(labels), { reduction: "sum" }), nll[0]! + nll[1]! + nll[2]!, {
      rtol: 1e-14,
    });
    assertClose(ad.nn.crossEntropy(x, i32(labels), { reduction: "none" }), nll, { rtol: 1e-14 });
    assertClose(ad.nn.crossEntropy(f64([0, 0]), i32(1)), Math.LN2, { rtol: 1e-14 });
    // JS integers are class indices too
    assertClose(ad.nn.crossEntropy(x, labels), ad.nn.crossEntropy(x, i32(labels)), { rtol: 1e-15 });
    assertClose(ad.nn.nllLoss(ad.logSoftmax(x, 1), labels), ad.nn.crossEntropy(x, i32(labels)), {
      rtol: 1e-14,
    });
    assert.equal(ad.nn.crossEntropy(ad.tensor(logits), i32(labels)).dtype, "float32");
  });

  test("class weights (mean divides by the summed weights of the targets) and ignoreIndex", () => {
    const w = [0.5, 2, 1];
    const wy = labels.map((c) => w[c]!);
    const x = f64(logits);
    assertClose(
      ad.nn.crossEntropy(x, i32(labels), { weight: f64(w) }),
      (wy[0]! * nll[0]! + wy[1]! * nll[1]! + wy[2]! * nll[2]!) / (wy[0]! + wy[1]! + wy[2]!),
      { rtol: 1e-14 },
    );
    assertClose(ad.nn.crossEntropy(x, i32([2, -100, 1])), (nll[0]! + nll[2]!) / 2, { rtol: 1e-14 });
    assertClose(
      ad.nn.crossEntropy(x, i32([2, 7, 1]), { ignoreIndex: 7, reduction: "none" }),
      [nll[0]!, 0, nll[2]!],
      { rtol: 1e-14 },
    );
  });

  test("label smoothing: (1 − ε)·nll + ε·mean over classes of −log p", () => {
    const eps = 0.1;
    const per = logits.map((row, i) => {
      const lp = row.map((v) => v - lse(row));
      return (1 - eps) * -lp[labels[i]!]! + (eps / 3) * -lp.reduce((s, v) => s + v, 0);
    });
    assertClose(
      ad.nn.crossEntropy(f64(logits), i32(labels), { labelSmoothing: eps }),
      (per[0]! + per[1]! + per[2]!) / 3,
      { rtol: 1e-13 },
    );
  });

  test("probability targets of the logits' shape", () => {
    const p = [
      [0.2, 0.3, 0.5],
      [1, 0, 0],
      [0, 0.5, 0.5],
    ];
    const per = logits.map((row, i) => -row.reduce((s, v, c) => s + p[i]![c]! * (v - lse(row)), 0));
    assertClose(ad.nn.crossEntropy(f64(logits), f64(p)), (per[0]! + per[1]! + per[2]!) / 3, { rtol: 1e-13 });
  });

  test("class axis 1 for [N, C, d…] inputs (per-position labels)", () => {
    const x = randn(5, [2, 3, 4]);
    const y = i32([
      [0, 2, 1, 1],
      [2, 2, 0, 1],
    ]);
    const xs = x.toArray() as number[][][];
    const ys = y.toArray() as number[][];
    let total = 0;
    for (let n = 0; n < 2; n++)
      for (let d = 0; d < 4; d++) {
        const row = [0, 1, 2].map((c) => xs[n]![c]![d]!);
        total += lse(row) - row[ys[n]![d]!]!;
      }
    assertClose(ad.nn.crossEntropy(x, y), total / 8, { rtol: 1e-13 });
  });

  test("nllLoss of logSoftmax equals crossEntropy; gradcheck of nllLoss with weights and ignoreIndex", () => {
    checkGrad(
      (lp: ad.Tensor) => ad.nn.nllLoss(lp, i32([1, -100, 0]), { weight: f64([2, 0.5, 1]) }),
      [randn(10, [3, 3])],
    );
    const x = f64(logits);
    assertClose(ad.nn.nllLoss(ad.logSoftmax(x, 1), i32(labels)), ad.nn.crossEntropy(x, i32(labels)), {
      rtol: 1e-14,
    });
  });

  test("gradient: (softmax − onehot)/N by hand, and gradcheck in float64", () => {
    const g = ad.grad((x: ad.Tensor) => ad.nn.crossEntropy(x, i32(labels)))(f64(logits));
    const want = logits.map((row, i) =>
      row.map((v, c) => (Math.exp(v - lse(row)) - (c === labels[i] ? 1 : 0)) / 3),
    );
    assertClose(g, want, { rtol: 1e-13, atol: 1e-15 });
    checkGrad(
      (x: ad.Tensor) => ad.nn.crossEntropy(x, i32(labels), { weight: f64([0.5, 2, 1]), labelSmoothing: 0.2 }),
      [randn(6, [3, 3])],
    );
    checkGrad(
      (x: ad.Tensor, t: ad.Tensor) => ad.nn.crossEntropy(x, t),
      [randn(7, [2, 3]), ad.softmax(randn(8, [2, 3]), -1)],
    );
  });

  test("errors: out-of-range labels, wrong label shape, integer logits", () => {
    assert.throws(
      () => ad.nn.crossEntropy(f64(logits), i32([0, 3, 1])),
      (e: Error) => e instanceof ad.ShapeError && /3/.test(e.message),
    );
    assert.throws(() => ad.nn.crossEntropy(f64(logits), i32([0, 1])), ad.ShapeError);
    assert.throws(() => ad.nn.crossEntropy(i32(logits), i32(labels)), ad.DTypeError);
    assert.throws(
      () => ad.nn.crossEntropy(f64(logits), f64(labels)),
      (e: Error) => e instanceof ad.DTypeError && /int32/.test(e.message),
    );
    assert.throws(() => ad.nn.crossEntropy(f64(logits), [0.5, 1, 2]), ad.DTypeError);
    assert.throws(
      () => ad.nn.crossEntropy(f64(logits), ad.tensor([true, false, true], { dtype: "bool" })),
      ad.DTypeError,
    );
  });
});

describe("binaryCrossEntropyWithLogits", () => {
  // −[y log σ(x) + (1 − y) log(1 − σ(x))] = max(x, 0) − x·y + log(1 + e^−|x|)
  const ref = (x: number, y: number) => Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));
  const xs = [-3, -0.5, 0, 0.25, 4];
  const ys = [0, 1, 0.5, 1, 0.2];

  test("values by hand; weight and posWeight as PyTorch", () => {
    const per = xs.map((x, i) => ref(x, ys[i]!));
    assertClose(ad.nn.binaryCrossEntropyWithLogits(f64(xs), f64(ys), { reduction: "none" }), per, {
      rtol: 1e-14,
    });
    assertClose(ad.nn.binaryCrossEntropyWithLogits(f64(xs), f64(ys)), per.reduce((a, b) => a + b) / 5, {
      rtol: 1e-14,
    });
    // posWeight p: −[p·y·log σ(x) + (1 − y)·log(1 − σ(x))]
    const logSig = (x: number) => -(Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x))));
    const pw = 3;
    const perPw = xs.map((x, i) => -(pw * ys[i]! * logSig(x) + (1 - ys[i]!) * logSig(-x)));
    assertClose(
      ad.nn.binaryCrossEntropyWithLogits(f64(xs), f64(ys), { posWeight: pw, reduction: "none" }),
      perPw,
      { rtol: 1e-13 },
    );
    const w = [1, 2, 0, 1, 0.5];
    assertClose(
      ad.nn.binaryCrossEntropyWithLogits(f64(xs), f64(ys), { weight: f64(w), reduction: "sum" }),
      per.reduce((s, v, i) => s + v * w[i]!, 0),
      { rtol: 1e-14 },
    );
  });

  test("gradient σ(x) − y by hand, and gradcheck in float64", () => {
    const g = ad.grad((x: ad.Tensor) => ad.nn.binaryCrossEntropyWithLogits(x, f64(ys), { reduction: "sum" }))(
      f64(xs),
    );
    assertClose(
      g,
      xs.map((x, i) => 1 / (1 + Math.exp(-x)) - ys[i]!),
      { rtol: 1e-13, atol: 1e-15 },
    );
    checkGrad(
      (x: ad.Tensor, y: ad.Tensor) =>
        ad.nn.binaryCrossEntropyWithLogits(x, y, { posWeight: f64([2, 0.5, 1, 1, 3]) }),
      [randn(9, [5]), f64(ys)],
    );
  });
});

describe("stability for logits of magnitude 1e4", () => {
  for (const dtype of ["float32", "float64"] as const) {
    test(`crossEntropy (${dtype}): exact finite values and gradients`, () => {
      const x = ad.tensor(
        [
          [1e4, -1e4, 0],
          [-1e4, 1e4, 5],
          [1e4, 1e4, -1e4],
        ],
        { dtype },
      );
      const y = i32([0, 2, 1]);
      const per = ad.nn.crossEntropy(x, y, { reduction: "none" });
      assertClose(per, [0, 1e4 - 5, Math.LN2], { rtol: 1e-6 });
      const g = ad.grad((t: ad.Tensor) => ad.nn.crossEntropy(t, y))(x);
      assertClose(
        g,
        [
          [0, 0, 0],
          [0, 1 / 3, -1 / 3],
          [0.5 / 3, -0.5 / 3, 0],
        ],
        { rtol: 1e-6, atol: 1e-7 },
      );
      const s = ad.nn.crossEntropy(x, y, { labelSmoothing: 0.1 });
      assert.ok(Number.isFinite(s.item()));
    });

    test(`binaryCrossEntropyWithLogits (${dtype}): exact finite values and gradients`, () => {
      const x = ad.tensor([1e4, -1e4, 1e4, -1e4], { dtype });
      const y = ad.tensor([1, 0, 0, 1], { dtype });
      assertClose(ad.nn.binaryCrossEntropyWithLogits(x, y, { reduction: "none" }), [0, 0, 1e4, 1e4]);
      const g = ad.grad((t: ad.Tensor) =>
        ad.nn.binaryCrossEntropyWithLogits(t, y, { reduction: "sum", posWeight: 2 }),
      )(x);
      assertClose(g, [0, 0, 1, -2]);
    });
  }

  test("softplus, logSoftmax and logsumexp at ±1e4 (what the losses build on)", () => {
    assertClose(ad.softplus(ad.tensor([1e4, -1e4])), [1e4, 0]);
    assertClose(ad.logSoftmax(ad.tensor([1e4, 0])), [0, -1e4]);
    assertClose(ad.logsumexp(ad.tensor([1e4, 1e4])), 1e4 + Math.LN2, { rtol: 1e-7 });
  });
});
