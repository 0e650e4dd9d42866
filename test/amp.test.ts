/** @file Mixed precision: float16/bfloat16 rounding, promotion, float32 accumulation, autocast. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

/** Every float16 value, as float64 (finite and infinite; NaN patterns skipped). */
function allHalfValues(): number[] {
  const out: number[] = [];
  for (let h = 0; h < 0x10000; h++) {
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    const s = h & 0x8000 ? -1 : 1;
    if (e === 31 && m !== 0) continue;
    out.push(e === 0 ? s * m * 2 ** -24 : e === 31 ? s * Infinity : s * (1 + m / 1024) * 2 ** (e - 15));
  }
  return out;
}

describe("float16 and bfloat16", () => {
  test("every float16 value converts to itself; midpoints round to even", () => {
    const vals = allHalfValues();
    const back = ad.astype(ad.tensor(Float64Array.from(vals)), "float16").data();
    let bad = 0;
    vals.forEach((v, i) => {
      if (!Object.is(back[i], v)) bad++;
    });
    assert.equal(bad, 0);
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to the even mantissa (1)
    assert.deepEqual(
      ad.tensor([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2049, 2051], { dtype: "float16" }).toArray(),
      [1, 1 + 2 ** -9, 2048, 2052],
    );
  });

  test("range: 65504 is the largest float16; larger values overflow to Infinity; subnormals exist", () => {
    const t = ad.tensor([65504, 65519, 65520, -70000, 2 ** -24, 2 ** -26], { dtype: "float16" });
    assert.deepEqual(t.toArray(), [65504, 65504, Infinity, -Infinity, 2 ** -24, 0]);
    assert.equal(ad.mul(ad.tensor([300], { dtype: "float16" }), 300).item(), Infinity);
  });

  test("bfloat16 keeps float32's range with 8 bits of precision", () => {
    const [a, b, big, tenth] = ad
      .tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1e38, 0.1], { dtype: "bfloat16" })
      .toArray() as number[];
    assert.equal(a, 1); // halfway: ties to even
    assert.equal(b, 1 + 2 ** -6);
    assert.ok(Math.abs(big! - 1e38) / 1e38 < 2 ** -8); // finite: float32's range
    assert.equal(tenth, 0.10009765625);
  });

  test("arithmetic rounds every result to the format; sums accumulate in float32 or better", () => {
    const a = ad.tensor([0.1], { dtype: "float16" });
    assert.equal(ad.add(a, a).item(), 0.199951171875);
    // 4096 ones: a naive float16 accumulator stalls at 2048
    assert.equal(ad.ones([4096], { dtype: "float16" }).sum().item(), 4096);
    assert.equal(ad.ones([3000], { dtype: "float16" }).mean().item(), 1);
  });

  test("promotion: half with float32 is float32; float16 with bfloat16 is float32; numbers are weak", () => {
    const h = ad.tensor([1], { dtype: "float16" });
    const b = ad.tensor([1], { dtype: "bfloat16" });
    assert.equal(ad.add(h, 0.5).dtype, "float16");
    assert.equal(ad.add(h, ad.tensor([1])).dtype, "float32");
    assert.equal(ad.add(h, b).dtype, "float32");
    assert.equal(ad.add(ad.tensor([1], { dtype: "int32" }), h).dtype, "float16");
  });

  test("gradients flow through low-precision values (and come back in the parameter's dtype)", () => {
    const g = ad.grad((x: ad.Tensor) => ad.sum(ad.mul(x, x)))(ad.tensor([0.1, 3], { dtype: "float16" }));
    assert.equal(g.dtype, "float16");
    assert.deepEqual(g.toArray(), [0.199951171875, 6]);
    const w = ad.tensor([1, 2]);
    const gw = ad.grad((v: ad.Tensor) => ad.sum(ad.astype(v, "bfloat16").mul(3)))(w);
    assert.equal(gw.dtype, "float32");
    assert.deepEqual(gw.toArray(), [3, 3]);
  });
});

describe("autocast", () => {
  const a = ad.random.normal(ad.random.key(0), [4, 8]);
  const b = ad.random.normal(ad.random.key(1), [8, 3]);

  test("matmuls run in the low-precision dtype; reductions and softmax return float32", () => {
    assert.equal(ad.amp.autocast("float16", () => ad.matmul(a, b)).dtype, "float16");
    assert.equal(ad.amp.autocast("bfloat16", () => ad.einsum("ij,jk->ik", a, b)).dtype, "bfloat16");
    assert.equal(ad.amp.autocast("float16", () => ad.sum(ad.matmul(a, b))).dtype, "float32");
    assert.equal(ad.amp.autocast("float16", () => ad.softmax(ad.matmul(a, b))).dtype, "float32");
    assert.equal(ad.amp.autocast("float16", () => ad.logsumexp(ad.matmul(a, b))).dtype, "float32");
    assert.equal(ad.matmul(a, b).dtype, "float32"); // off outside
  });

  test("results are close to float32 and gradients of float32 parameters are float32", () => {
    const full = ad.matmul(a, b);
    const low = ad.amp.autocast("float16", () => ad.matmul(a, b));
    assert.ok(ad.allclose(ad.astype(low, "float32"), full, { rtol: 1e-2, atol: 1e-2 }));
    const g = ad.grad((w: ad.Tensor) => ad.amp.autocast("float16", () => ad.sum(ad.matmul(a, w))))(b);
    assert.equal(g.dtype, "float32");
    assert.ok(
      ad.allclose(g, ad.grad((w: ad.Tensor) => ad.sum(ad.matmul(a, w)))(b), { rtol: 1e-2, atol: 1e-2 }),
    );
  });

  test("bad dtype is a DTypeError", () => {
    assert.throws(() => ad.amp.autocast("float32", () => 1), ad.DTypeError);
  });
});

describe("GradScaler", () => {
  /** A minimal SGD over eager parameters (the scaler needs only `params` and `step()`). */
  const sgd = (params: ad.Tensor[], lr: number) => ({
    params,
    steps: 0,
    step() {
      this.steps++;
      ad.noGrad(() => {
        for (const p of params) if (p.grad !== null) p.sub_(p.grad.mul(lr));
      });
    },
  });

  test("scale, unscale, step and update on clean gradients", () => {
    const w = ad.tensor([1, 2], { requiresGrad: true });
    const opt = sgd([w], 0.1);
    const scaler = new ad.amp.GradScaler({ initScale: 1024, growthInterval: 2 });
    const loss = ad.sum(ad.square(w));
    scaler.scale(loss).backward();
    assert.deepEqual(w.grad!.toArray(), [2048, 4096]);
    assert.equal(scaler.step(opt), true);
    assert.deepEqual(w.grad!.toArray(), [2, 4]); // unscaled in place before the step
    assert.deepEqual(w.toArray(), [Math.fround(0.8), Math.fround(1.6)]);
    scaler.update();
    assert.equal(scaler.getScale(), 1024);
    w.zeroGrad();
    scaler.scale(ad.sum(ad.square(w))).backward();
    scaler.step(opt);
    scaler.update();
    assert.equal(scaler.getScale(), 2048); // grew after growthInterval clean steps
  });

  test("recovers from an overflow: skips the step, backs off, then trains on", () => {
    const w = ad.tensor([3, 4], { dtype: "float16", requiresGrad: true });
    const opt = sgd([w], 0.01);
    const scaler = new ad.amp.GradScaler({ initScale: 2 ** 16 });
    const losses: number[] = [];
    let skipped = 0;
    for (let i = 0; i < 12; i++) {
      w.zeroGrad();
      const loss = ad.sum(ad.square(w));
      losses.push(loss.item());
      scaler.scale(loss).backward(); // 2^16 · 8 overflows float16 at first
      if (!scaler.step(opt)) skipped++;
      scaler.update();
    }
    assert.ok(skipped >= 1, "the first steps overflow and are skipped");
    assert.ok(scaler.getScale() < 2 ** 16, "the scale backed off");
    assert.ok(losses[losses.length - 1]! < losses[0]!, "training went on after the overflow");
    assert.equal(opt.steps, 12 - skipped);
  });

  test("functional form: unscale a gradient pytree", () => {
    const scaler = new ad.amp.GradScaler({ initScale: 8 });
    const g = scaler.unscale({ a: ad.tensor([8, 16]), b: [ad.tensor([Infinity])] }) as {
      a: ad.Tensor;
      b: ad.Tensor[];
    };
    assert.deepEqual(g.a.toArray(), [1, 2]);
    assert.equal(scaler.foundInfinite, true);
    scaler.update();
    assert.equal(scaler.getScale(), 4);
    assert.throws(() => new ad.amp.GradScaler({ backoffFactor: 2 }), ad.TransformError);
  });
});

describe("mixed precision with the nn and optim classes", () => {
  const x = ad.random.normal(ad.random.key(2), [2, 3, 6, 6]);

  test("Conv2d and Linear under autocast: low-precision outputs close to float32, float32 parameter gradients", () => {
    const conv = new ad.nn.Conv2d(3, 4, 3, { padding: 1, key: ad.random.key(3) });
    const full = conv.forward(x);
    for (const dtype of ["float16", "bfloat16"] as const) {
      const low = ad.amp.autocast(dtype, () => conv.forward(x));
      assert.equal(low.dtype, dtype);
      assert.ok(ad.allclose(ad.astype(low, "float32"), full, { rtol: 3e-2, atol: 3e-2 }));
    }
    const fc = new ad.nn.Linear(6, 2, { key: ad.random.key(4) });
    assert.equal(ad.amp.autocast("float16", () => fc.forward(ad.ones([3, 6]))).dtype, "float16");
    // eager backward through autocast: parameter gradients in the parameters' dtype, close to float32's
    const loss = () => ad.amp.autocast("float16", () => ad.mean(ad.square(conv.forward(x))));
    const l = loss();
    assert.equal(l.dtype, "float32"); // a reduction of float16 values
    l.backward();
    const g16 = conv.weight.grad!;
    assert.equal(g16.dtype, "float32");
    conv.zeroGrad();
    ad.mean(ad.square(conv.forward(x))).backward();
    assert.ok(ad.allclose(g16, conv.weight.grad!, { rtol: 5e-2, atol: 5e-3 }));
  });

  test("losses of low-precision values are computed and returned in float32", () => {
    const logits = ad.astype(ad.tensor([[300, 0, -300]]), "float16");
    const ce = ad.amp.autocast("float16", () =>
      ad.nn.crossEntropy(logits, ad.tensor([1], { dtype: "int32" })),
    );
    assert.equal(ce.dtype, "float32");
    assert.equal(ce.item(), 300);
    // (300 − 0)² overflows float16 (max 65504); under autocast mseLoss computes in float32
    const a = ad.tensor([300], { dtype: "float16" });
    const mse = ad.amp.autocast("float16", () => ad.nn.mseLoss(a, ad.zeros([1], { dtype: "float16" })));
    assert.equal(mse.dtype, "float32");
    assert.equal(mse.item(), 90000);
  });

  test("GradScaler.step(optimizer) with ad.optim: skips on Inf (parameters and state untouched), steps otherwise", () => {
    const w = ad.tensor([1, 2], { requiresGrad: true });
    const opt = new ad.optim.Adam([w], { lr: 0.1 });
    const scaler = new ad.amp.GradScaler({ initScale: 4, growthInterval: 1 });
    w.grad = ad.tensor([Infinity, 1]);
    assert.equal(scaler.step(opt), false);
    assert.deepEqual(w.toArray(), [1, 2]);
    assert.equal(opt.state.size, 0, "the optimizer never ran");
    scaler.update();
    assert.equal(scaler.getScale(), 2);
    opt.zeroGrad();
    scaler.scale(ad.sum(ad.mul(w, ad.tensor([1, -1])))).backward();
    assert.deepEqual(w.grad!.toArray(), [2, -2]);
    assert.equal(scaler.step(opt), true);
    assert.deepEqual(w.grad!.toArray(), [1, -1]); // unscaled before the step
    assert.ok(ad.allclose(w, ad.tensor([0.9, 2.1]), { rtol: 1e-6 }));
    scaler.update();
    assert.equal(scaler.getScale(), 4); // grew after growthInterval = 1 clean step
  });

  test("two optimizers: an overflow skips only the optimizer whose gradients overflowed; the scale backs off", () => {
    const a = ad.tensor([1], { requiresGrad: true });
    const b = ad.tensor([1], { requiresGrad: true });
    const optA = new ad.optim.SGD([a], { lr: 1 });
    const optB = new ad.optim.SGD([b], { lr: 1 });
    const scaler = new ad.amp.GradScaler({ initScale: 2 });
    a.grad = ad.tensor([Number.NaN]);
    b.grad = ad.tensor([2]);
    assert.equal(scaler.step(optA), false);
    assert.equal(scaler.step(optB), true);
    assert.deepEqual([a.item(), b.item()], [1, 0]);
    scaler.update();
    assert.equal(scaler.getScale(), 1);
  });

  test("unscale(optimizer) before clipGradNorm, then step (the PyTorch recipe); twice is an error", () => {
    const w = ad.tensor([0, 0], { requiresGrad: true });
    const opt = new ad.optim.SGD([w], { lr: 1 });
    const scaler = new ad.amp.GradScaler({ initScale: 1024 });
    scaler.scale(ad.sum(ad.mul(w, ad.tensor([3, 4])))).backward();
    scaler.unscale(opt);
    assert.throws(() => scaler.unscale(opt), ad.TransformError);
    assert.equal(ad.optim.clipGradNorm([w], 1), 5);
    assert.equal(scaler.step(opt), true);
    assert.ok(ad.allclose(w, ad.tensor([-0.6, -0.8]), { rtol: 1e-5 }));
    scaler.update();
  });

  test("a float16 training loop (autocast + GradScaler + Adam) converges like float32", () => {
    const X = ad.random.normal(ad.random.key(5), [64, 4]);
    const Y = ad.matmul(X, ad.tensor([[1], [-1], [2], [0.5]]));
    const model = new ad.nn.Sequential(
      new ad.nn.Linear(4, 16, { key: ad.random.key(6) }),
      new ad.nn.Tanh(),
      new ad.nn.Linear(16, 1, { key: ad.random.key(7) }),
    );
    const opt = new ad.optim.Adam(model.parameters(), { lr: 0.05 });
    const scaler = new ad.amp.GradScaler({ initScale: 2 ** 20 });
    let first = 0;
    let last = 0;
    for (let i = 0; i < 60; i++) {
      opt.zeroGrad();
      const loss = ad.amp.autocast("float16", () => ad.nn.mseLoss(model.forward(X), Y));
      if (i === 0) first = loss.item();
      last = loss.item();
      scaler.scale(loss).backward();
      scaler.step(opt);
      scaler.update();
    }
    assert.ok(model.parameters().every((p) => p.dtype === "float32"));
    assert.ok(last < first / 20, `loss ${first} → ${last}`);
  });
});
