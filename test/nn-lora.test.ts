/**
 * @file The LoRA example (examples/lora.ts) and `nn.LoRALinear`: frozen base parameters get no
 * gradient (the stored gradients are exactly the low-rank factors'), the adapter starts as the
 * identity change, its factor gradients pass gradcheck, fine-tuning fits the new task, and the
 * merged `Linear` reproduces the adapted outputs.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { addLora, fineTune, gradientBytes, mergeLora, pretrainedModel } from "../examples/lora.js";
import { assertClose } from "./helpers.js";

describe("nn.LoRALinear", () => {
  test("factor shapes, frozen base, identity at initialisation", () => {
    const base = new ad.nn.Linear(6, 5, { key: ad.random.key(0) });
    const lora = new ad.nn.LoRALinear(base, 2, { alpha: 4, key: ad.random.key(1) });
    assert.deepEqual(lora.loraA.shape, [2, 6]);
    assert.deepEqual(lora.loraB.shape, [5, 2]);
    assert.equal(lora.scaling, 2);
    assert.deepEqual(
      lora.namedParameters().map(([n, p]) => [n, p.requiresGrad]),
      [
        ["base.weight", false],
        ["base.bias", false],
        ["loraA", true],
        ["loraB", true],
      ],
    );
    const x = ad.random.normal(ad.random.key(2), [3, 6]);
    assert.deepEqual(lora.forward(x).toArray(), base.forward(x).toArray());
  });

  test("backward stores gradients for the factors only; values by the formula", () => {
    const base = new ad.nn.Linear(3, 2, { key: ad.random.key(0), dtype: "float64" });
    const lora = new ad.nn.LoRALinear(base, 1, { alpha: 2, key: ad.random.key(1) });
    lora.loadStateDict({ loraB: ad.tensor([[1], [-1]], { dtype: "float64" }) }, { strict: false });
    const x = ad.tensor([[1, 2, 3]], { dtype: "float64" });
    lora.forward(x).sum().backward();
    assert.equal(base.weight.grad, null);
    assert.equal(base.bias!.grad, null);
    // y = base(x) + 2·x·Aᵀ·Bᵀ; d/dA sum(y) = 2·(Σ_o B[o])·x = 0; d/dB[o] = 2·(x·Aᵀ)
    const xa = (lora.loraA.toArray() as number[][])[0]!.reduce((s, a, i) => s + a * [1, 2, 3][i]!, 0);
    assertClose(lora.loraA.grad!, [[0, 0, 0]], { atol: 1e-12 });
    assertClose(lora.loraB.grad!, [[2 * xa], [2 * xa]], { rtol: 1e-12 });
    assert.equal(gradientBytes(lora.parameters()), (3 + 2) * 8);
  });

  test("gradcheck in float64 wrt the factors and the input (functional form)", () => {
    const base = new ad.nn.Linear(3, 2, { key: ad.random.key(0), dtype: "float64" });
    const lora = new ad.nn.LoRALinear(base, 2, { key: ad.random.key(1) });
    const x = ad.random.normal(ad.random.key(3), [2, 3], { dtype: "float64" });
    const B = ad.random.normal(ad.random.key(4), [2, 2], { dtype: "float64" });
    const r = ad.gradcheck(
      (a: ad.Tensor, b: ad.Tensor, xx: ad.Tensor) => ad.nn.functionalCall(lora, { loraA: a, loraB: b }, xx),
      [lora.loraA.detach(), B, x],
    );
    assert.ok(r.ok, r.message);
  });
});

describe("examples/lora.ts", () => {
  test("adapting a pretrained MLP: only A and B are trainable; the gradient storage is theirs", () => {
    const model = addLora(pretrainedModel(0), 4);
    const trainable = model.namedParameters().filter(([, p]) => p.requiresGrad);
    assert.deepEqual(
      trainable.map(([n, p]) => [n, p.shape]),
      [
        ["0.loraA", [4, 16]],
        ["0.loraB", [64, 4]],
        ["2.loraA", [4, 64]],
        ["2.loraB", [64, 4]],
        ["4.loraA", [4, 64]],
        ["4.loraB", [4, 4]],
      ],
    );
    ad.sum(model.forward(ad.ones([2, 16]))).backward();
    assert.ok(model.parameters().every((p) => (p.grad !== null) === p.requiresGrad));
    const factorBytes = 4 * 4 * (16 + 64 + 64 + 64 + 64 + 4);
    assert.equal(gradientBytes(model.parameters()), factorBytes);
  });

  test("fine-tuning fits the new task and the merged layers reproduce the adapted model", () => {
    const r = fineTune({ steps: 40, lr: 3e-2 });
    assert.equal(r.trainable, 4 * (16 + 64 + 64 + 64 + 64 + 4));
    assert.equal(r.gradBytes, 4 * r.trainable);
    assert.equal(r.fullGradBytes, 4 * r.frozen);
    assert.ok(r.gradBytes * 4 < r.fullGradBytes);
    const first = r.losses[0]!;
    const last = r.losses[r.losses.length - 1]!;
    assert.ok(last < first / 20, `loss ${first} → ${last}`);
    const x = ad.random.normal(ad.random.key(9), [5, 16]);
    const merged = new ad.nn.Sequential(
      ...[...r.model].map((m) => (m instanceof ad.nn.LoRALinear ? mergeLora(m) : m)),
    );
    assert.ok(merged.parameters().every((p) => p.requiresGrad));
    assert.ok(ad.allclose(merged.forward(x), r.model.forward(x), { rtol: 1e-5, atol: 1e-6 }));
  });
});
