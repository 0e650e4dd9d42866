/**
 * @file LoRA fine-tuning with frozen parameters. A "pretrained" MLP is adapted to a new task by
 * wrapping each of its `Linear` layers in an `ad.nn.LoRALinear`: the base weights are frozen
 * (`requiresGrad = false`), and only the low-rank factors A `[rank, in]` and B `[out, rank]` are
 * trained. Because frozen parameters are not recorded, `backward()` computes and stores
 * gradients for the factors only — the gradient memory is rank·(in + out) per layer instead of
 * in·out — and the optimizer skips the frozen tensors. After training, the adapter is merged
 * into a plain `Linear` (W + (alpha/rank)·B·A) with the same outputs.
 *
 * Run: node --import tsx examples/lora.ts
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

const BYTES: Record<ad.DType, number> = {
  float32: 4,
  float64: 8,
  int32: 4,
  bool: 1,
  float16: 2,
  bfloat16: 2,
};

/**
 * A small MLP standing in for a pretrained model (its weights come from `seed`).
 * @example
 * pretrainedModel(0).forward(ad.ones([2, 16])).shape; // [2, 4]
 */
export function pretrainedModel(seed = 0, dims: readonly number[] = [16, 64, 64, 4]): ad.nn.Sequential {
  const keys = ad.random.split(ad.random.key(seed), dims.length - 1);
  const seq = new ad.nn.Sequential();
  for (let i = 0; i + 1 < dims.length; i++) {
    if (i > 0) seq.append(new ad.nn.Tanh());
    seq.append(new ad.nn.Linear(dims[i]!, dims[i + 1]!, { key: keys[i]! }));
  }
  return seq;
}

/**
 * Wrap every `Linear` of `model` in a `LoRALinear` of the given rank (in place), freezing the
 * base weights. Returns the model.
 * @example
 * const model = addLora(pretrainedModel(), 4);
 * model.parameters().filter((p) => p.requiresGrad).length; // 6: A and B of three layers
 */
export function addLora(model: ad.nn.Sequential, rank: number, alpha = rank, seed = 1): ad.nn.Sequential {
  const keys = ad.random.split(ad.random.key(seed), model.length);
  for (let i = 0; i < model.length; i++) {
    const layer = model[i];
    if (layer instanceof ad.nn.Linear) model[i] = new ad.nn.LoRALinear(layer, rank, { alpha, key: keys[i]! });
  }
  return model;
}

/**
 * Bytes of the gradients currently stored on `params`.
 * @example
 * gradientBytes(model.parameters()); // 0 before any backward
 */
export function gradientBytes(params: readonly ad.Tensor[]): number {
  return params.reduce((s, p) => s + (p.grad === null ? 0 : p.grad.size * BYTES[p.grad.dtype]), 0);
}

/**
 * Bytes the gradients of `params` would take if every one of them were trained.
 * @example
 * fullGradientBytes(pretrainedModel().parameters()); // 4 · 5508
 */
export function fullGradientBytes(params: readonly ad.Tensor[]): number {
  return params.reduce((s, p) => s + p.size * BYTES[p.dtype], 0);
}

/**
 * Merge a trained adapter into a plain `Linear`: W' = W + (alpha/rank)·B·A, same bias.
 * @example
 * const fc = mergeLora(lora); // fc.forward(x) equals lora.forward(x)
 */
export function mergeLora(lora: ad.nn.LoRALinear): ad.nn.Linear {
  const base = lora.base;
  const merged = new ad.nn.Linear(base.inFeatures, base.outFeatures, {
    bias: base.bias !== null,
    dtype: base.weight.dtype === "float64" ? "float64" : "float32",
  });
  const delta = ad.mul(ad.matmul(lora.loraB, lora.loraA), lora.scaling);
  merged.loadStateDict({
    weight: ad.add(base.weight.detach(), delta.detach()),
    ...(base.bias === null ? {} : { bias: base.bias.detach() }),
  });
  return merged;
}

/** What `fineTune` reports. */
export interface FineTuneResult {
  model: ad.nn.Sequential;
  losses: number[];
  /** Gradient bytes stored after a backward pass (the factors only). */
  gradBytes: number;
  /** Gradient bytes full fine-tuning of the pretrained model would store (every base parameter). */
  fullGradBytes: number;
  trainable: number;
  frozen: number;
}

/**
 * Fine-tune a LoRA-adapted copy of the pretrained model towards a "new task": the outputs of
 * the pretrained model with each weight shifted by a random rank-`rank` update (so the adapter
 * can represent the change exactly).
 * @example
 * const r = fineTune({ steps: 50 });
 * r.gradBytes < r.fullGradBytes; // true: only the factors have gradients
 */
export function fineTune(
  opts: { steps?: number; rank?: number; lr?: number; batch?: number } = {},
): FineTuneResult {
  const { steps = 200, rank = 4, lr = 1e-2, batch = 64 } = opts;
  const teacher = pretrainedModel(0);
  // The new task: W ← W + U·V with U, V of rank `rank`, scaled to a noticeable change.
  ad.noGrad(() => {
    teacher.namedParameters().forEach(([name, w], i) => {
      if (!name.endsWith("weight")) return;
      const [ku, kv] = ad.random.split(ad.random.key(100 + i), 2);
      const u = ad.random.normal(ku!, [w.shape[0]!, rank]);
      const v = ad.random.normal(kv!, [rank, w.shape[1]!]);
      w.add_(ad.mul(ad.matmul(u, v), 0.5 / Math.sqrt(w.shape[1]! * rank)));
    });
  });
  const model = addLora(pretrainedModel(0), rank);
  const params = model.parameters();
  const trainable = params.filter((p) => p.requiresGrad);
  const opt = new ad.optim.Adam(params, { lr });
  const X = ad.random.normal(ad.random.key(7), [batch, 16]);
  const Y = ad.noGrad(() => teacher.forward(X));
  const losses: number[] = [];
  let gradBytes = 0;
  for (let i = 0; i < steps; i++) {
    opt.zeroGrad();
    const loss = ad.nn.mseLoss(model.forward(X), Y);
    loss.backward();
    if (i === 0) gradBytes = gradientBytes(params);
    opt.step();
    losses.push(loss.item());
  }
  return {
    model,
    losses,
    gradBytes,
    fullGradBytes: fullGradientBytes(params.filter((p) => !p.requiresGrad)),
    trainable: trainable.reduce((s, p) => s + p.size, 0),
    frozen: params.filter((p) => !p.requiresGrad).reduce((s, p) => s + p.size, 0),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const r = fineTune();
  console.log(`LoRA (rank 4) on a 16-64-64-4 MLP: ${r.trainable} trainable, ${r.frozen} frozen parameters`);
  console.log(
    `gradient storage after backward: ${r.gradBytes} bytes (full fine-tuning: ${r.fullGradBytes} bytes)`,
  );
  console.log(`loss: ${r.losses[0]!.toExponential(3)} → ${r.losses[r.losses.length - 1]!.toExponential(3)}`);
  const x = ad.random.normal(ad.random.key(9), [3, 16]);
  const merged = new ad.nn.Sequential(
    ...[...r.model].map((m) => (m instanceof ad.nn.LoRALinear ? mergeLora(m) : m)),
  );
  const diff = ad.max(ad.abs(ad.sub(merged.forward(x), r.model.forward(x)))).item();
  console.log(`merged into plain Linear layers: max |Δoutput| = ${diff.toExponential(2)}`);
}
