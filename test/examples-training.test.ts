/**
 * @file The training examples at reduced settings: the MLP digit classifier (accuracy, mixed
 * precision against float32, recovery of the loss scaler from a float16 overflow, a safetensors
 * round trip), MAML and FOMAML on sine waves (the second-order meta-gradient against central
 * differences, and adaptation after meta-training), and the character transformer (causality,
 * baselines, a falling loss, sampling).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import {
  baselines,
  CharTransformer,
  loadSonnets,
  makeVocab,
  sample,
  splitText,
  trainLM,
} from "../examples/char-lm.js";
import {
  adapt,
  evaluate,
  initParams,
  metaTrain,
  mse,
  type Params,
  sampleTasks,
} from "../examples/maml-sine.js";
import {
  accuracy,
  type ClassifierResult,
  digitSplits,
  MLP,
  trainClassifier,
} from "../examples/mlp-classifier.js";
import { assertClose } from "./helpers.js";

describe("MLP classifier on synthetic digits (examples/mlp-classifier.ts)", () => {
  // 120 steps: about 72% test accuracy (97–98% at the full setting, see the example's header).
  const reduced = { trainSize: 3000, testSize: 1000, epochs: 2, hidden: 64, batchSize: 50 } as const;
  let f32: ClassifierResult | undefined;
  const float32 = () => (f32 ??= trainClassifier(reduced));

  test("float32 training learns: the loss falls from ln 10 and test accuracy is far above chance", () => {
    const r = float32();
    assert.equal(r.losses.length, 120);
    assert.ok(Math.abs(r.losses[0]! - Math.log(10)) < 0.2, `first loss ${r.losses[0]}`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(r.losses.slice(-20)) < mean(r.losses.slice(0, 20)) - 0.5);
    assert.ok(r.testAccuracy > 0.6, `test accuracy ${r.testAccuracy}`);
  });

  test("bfloat16 autocast matches float32 test accuracy within 1 point", () => {
    const r = trainClassifier({ ...reduced, precision: "bfloat16" });
    assert.ok(
      Math.abs(r.testAccuracy - float32().testAccuracy) <= 0.01,
      `${r.testAccuracy} vs ${float32().testAccuracy}`,
    );
    assert.deepEqual(r.scales, []);
  });

  test("float16 autocast with loss scaling matches float32 test accuracy within 1 point", () => {
    const r = trainClassifier({ ...reduced, precision: "float16" });
    assert.ok(
      Math.abs(r.testAccuracy - float32().testAccuracy) <= 0.01,
      `${r.testAccuracy} vs ${float32().testAccuracy}`,
    );
    assert.equal(r.skippedSteps, 0);
    assert.ok(r.scales.every((s) => s === 65536));
  });

  test("the scaler recovers from a float16 overflow: skipped steps, backoff, then training proceeds", () => {
    const r = trainClassifier({
      trainSize: 1500,
      testSize: 500,
      epochs: 2,
      hidden: 64,
      batchSize: 50,
      precision: "float16",
      initScale: 2 ** 24,
    });
    const k = r.skippedSteps;
    assert.ok(k >= 5 && k <= 15, `${k} skipped steps`);
    // The scale only ever halves (once per skipped step; no growth within 2000 clean steps)...
    let halvings = 0;
    r.scales.slice(1).forEach((s, i) => {
      if (s !== r.scales[i]) {
        assert.equal(s, r.scales[i]! / 2);
        halvings++;
      }
    });
    assert.equal(halvings, k);
    // ...and the overflows are over early: the last 40 steps all went through, and the loss fell.
    const last = r.scales[r.scales.length - 1]!;
    assert.ok(r.scales.slice(-40).every((s) => s === last));
    assert.ok(last < 2 ** 24 && last >= 2 ** 10);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(r.losses.slice(-10)) < mean(r.losses.slice(0, 10)) - 0.1);
    assert.ok(r.testAccuracy > 0.2, `${r.testAccuracy}`);
  });

  test("a safetensors checkpoint restores the same predictions", () => {
    const r = float32();
    const bytes = ad.io.saveSafetensors(r.model.stateDict());
    const fresh = new MLP(144, 64, 10, ad.random.key(99));
    fresh.loadStateDict(ad.io.loadSafetensors(bytes));
    const { test: split } = digitSplits(10, 200);
    assertClose(fresh.forward(split.x), r.model.forward(split.x), { rtol: 0, atol: 0 });
    assert.equal(accuracy(fresh, split), accuracy(r.model, split));
  });
});

describe("MAML on sine waves (examples/maml-sine.ts)", () => {
  // A tiny float64 problem for derivative checks: 2 tasks, 4 points each, 6 hidden units.
  const f64 = (t: ad.Tensor) => ad.astype(t, "float64");
  const p64 = ad.tree.map(f64, initParams(ad.random.key(1), 6)) as Params;
  const batch = sampleTasks(ad.random.key(2), 2, 4);
  const [xs, ys, xq, yq] = [batch.xs, batch.ys, batch.xq, batch.yq].map(f64) as [
    ad.Tensor,
    ad.Tensor,
    ad.Tensor,
    ad.Tensor,
  ];
  const metaLoss = (firstOrder: boolean) => (p: Params) =>
    ad.mean(
      ad.vmap((a: ad.Tensor, b: ad.Tensor, c: ad.Tensor, d: ad.Tensor) =>
        mse(adapt(p, a, b, 0.1, 1, firstOrder), c, d),
      )(xs, ys, xq, yq),
    );

  test("the MAML meta-gradient (through the inner gradient step) matches central differences", () => {
    const r = ad.gradcheck(metaLoss(false), [p64], { atol: 1e-6, rtol: 1e-5 });
    assert.ok(r.ok, `max abs error ${r.maxAbsError}`);
  });

  test("FOMAML's meta-gradient is the query gradient at the adapted parameters; MAML's differs", () => {
    const fo = ad.grad(metaLoss(true))(p64);
    // By hand: for each task, adapt without recording, then the plain gradient of the query loss.
    const byHand = [0, 1].map((t) => {
      const pick = (z: ad.Tensor) => ad.squeeze(ad.slice(z, [t, 0, 0], [1, 4, 1]), 0);
      const adapted = adapt(p64, pick(xs), pick(ys), 0.1);
      return ad.grad(mse)(adapted, pick(xq), pick(yq));
    });
    const mean = ad.tree.map((a: ad.Tensor, b: ad.Tensor) => ad.mul(ad.add(a, b), 0.5), byHand[0], byHand[1]);
    assertClose(fo, mean, { rtol: 1e-10, atol: 1e-12 });
    const so = ad.grad(metaLoss(false))(p64);
    const diff = ad.tree
      .leaves(ad.tree.map((a: ad.Tensor, b: ad.Tensor) => ad.max(ad.abs(ad.sub(a, b))), so, fo))
      .map((t) => (t as ad.Tensor).item());
    assert.ok(Math.max(...diff) > 1e-4, "the second-order term is not zero");
  });

  test("after a short meta-training, one gradient step on 10 points of a new wave cuts the error", () => {
    // 100 meta-steps (a sixth of the example's, with a larger meta learning rate): about 3.6 → 2.7.
    const p = metaTrain({ iterations: 100, metaLr: 0.01 });
    const e = evaluate(p, { tasks: 100 });
    assert.ok(e.after < 0.85 * e.before, `before ${e.before}, after ${e.after}`);
  });
});

describe("character transformer (examples/char-lm.ts)", () => {
  const text = loadSonnets();
  const vocab = makeVocab(text);

  test("the bundled text, its vocabulary, the held-out split and the baselines", () => {
    assert.ok(text.length > 5000 && text.length < 10000);
    assert.equal(vocab.decode(vocab.encode("Shall I compare thee")), "Shall I compare thee");
    const { train, heldOut } = splitText(text);
    assert.equal(train + heldOut, text);
    assert.match(heldOut, /^CXXX\n\nMy mistress' eyes/);
    const b = baselines(train, heldOut, vocab);
    assert.ok(b.uniform > b.unigram && b.unigram > b.bigram, JSON.stringify(b));
    assert.ok(Math.abs(b.uniform - Math.log(vocab.chars.length)) < 1e-12);
  });

  test("the model is causal: a later character never changes earlier predictions", () => {
    const lm = new CharTransformer(
      { vocab: vocab.chars.length, context: 16, dim: 16, heads: 2, layers: 2 },
      ad.random.key(4),
    );
    const a = vocab.encode("Shall I compare ");
    const b = Int32Array.from(a);
    b[10] = vocab.encode("Z")[0]!;
    const la = lm.forward(ad.tensor(a, { dtype: "int32", shape: [1, 16] }));
    const lb = lm.forward(ad.tensor(b, { dtype: "int32", shape: [1, 16] }));
    assertClose(
      ad.slice(lb, [0, 0, 0], [1, 10, vocab.chars.length]),
      ad.slice(la, [0, 0, 0], [1, 10, vocab.chars.length]),
      {
        rtol: 1e-6,
        atol: 1e-6,
      },
    );
    assert.ok(ad.max(ad.abs(ad.sub(la, lb))).item() > 1e-3);
  });

  test("training lowers the loss from ln |V|; sampling continues a prompt with known characters", () => {
    const r = trainLM({ steps: 30, dim: 32, batch: 8, lr: 0.01 });
    assert.ok(Math.abs(r.losses[0]! - Math.log(vocab.chars.length)) < 0.3, `first loss ${r.losses[0]}`);
    const last = r.losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
    assert.ok(last < r.losses[0]! - 0.6, `last ${last}`);
    assert.ok(r.heldOutLoss < Math.log(vocab.chars.length) - 0.5, `held-out ${r.heldOutLoss}`);
    const s = sample(r.model, r.vocab, "Shall I", 20, ad.random.key(0));
    assert.equal(s.length, 27);
    assert.ok(s.startsWith("Shall I"));
    assert.ok([...s].every((c) => vocab.chars.includes(c)));
  });
});
