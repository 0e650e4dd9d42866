/**
 * @file An MLP classifier trained on synthetic digits: the training API end to end (a `Module`,
 * `crossEntropy`, `backward`, an optimizer with a learning-rate schedule, evaluation under
 * `noGrad`, a safetensors checkpoint), optionally in mixed precision (`ad.amp.autocast` with a
 * `GradScaler`). `npx adjoint train` runs the same model on the same data with a progress bar.
 *
 * The data (src/cli/digits.ts) are 12×12 renderings of ten bitmap glyphs under random rotation,
 * scale, shear, translation, stroke thickness and contrast, half of them inverted, with Gaussian
 * noise: 16000 training and 2000 held-out test images from different seeds. Inversion makes the
 * problem non-linear: softmax regression stays at 17% (chance is 10%), a hidden layer solves it.
 *
 * Measured (full run, default settings: 5 epochs, 800 Adam steps with cosine decay from 5e-3):
 * float32 97.15% test accuracy (train 98.36%) in 9 s of CPU time (26 s wall-clock on a shared
 * 2-core machine); bfloat16 autocast 97.35%; float16 autocast with dynamic loss scaling 97.00%
 * (no step skipped; 41 s of CPU, the float16 rounding being emulated in software). With
 * `--init-scale 1e12` the float16 gradients overflow: the scaler skips 23 steps, halving its
 * scale each time (to 1.2e5), and the run still reaches 96.85%.
 *
 * Run: npx tsx examples/mlp-classifier.ts [--precision float16|bfloat16] [--init-scale 1e12]
 */

import { pathToFileURL } from "node:url";
import * as ad from "adjoint";
import { makeDigits, NUM_CLASSES, uniformSource } from "../src/cli/digits.js";

/** A labelled split as tensors: images `[n, features]` (float32) and labels `[n]` (int32). */
export interface Split {
  readonly x: ad.Tensor;
  readonly y: ad.Tensor;
}

/**
 * Generate the training and test splits (different seeds, so no image is shared).
 * @example
 * const { train, test } = digitSplits(1000, 500);
 * train.x.shape; // [1000, 144]
 */
export function digitSplits(trainSize: number, testSize: number, seed = 0): { train: Split; test: Split } {
  const split = (n: number, s: number): Split => {
    const d = makeDigits({ n, seed: s });
    return {
      x: ad.tensor(d.images, { shape: [n, d.size * d.size] }),
      y: ad.tensor(d.labels, { dtype: "int32" }),
    };
  };
  // Seeds 2s+1 and 2s+2 keep the splits of different seeds apart too.
  return { train: split(trainSize, 2 * seed + 1), test: split(testSize, 2 * seed + 2) };
}

/**
 * A multilayer perceptron: Linear → ReLU → Linear, returning class logits.
 * @example
 * const model = new MLP(144, 128, 10, ad.random.key(0));
 * model.forward(ad.zeros([2, 144])).shape; // [2, 10]
 */
export class MLP extends ad.nn.Module {
  fc1: ad.nn.Linear;
  fc2: ad.nn.Linear;
  constructor(inputs: number, hidden: number, classes: number, key: ad.Tensor) {
    super();
    const [k1, k2] = ad.random.split(key);
    this.fc1 = new ad.nn.Linear(inputs, hidden, { key: k1! });
    this.fc2 = new ad.nn.Linear(hidden, classes, { key: k2! });
  }
  forward(x: ad.Tensor): ad.Tensor {
    return this.fc2.forward(ad.relu(this.fc1.forward(x)));
  }
}

/** The optimizers `trainClassifier` (and `adjoint train --optimizer`) offer. */
export type OptimizerName = "sgd" | "adam" | "adamw" | "rmsprop";

/**
 * An optimizer over `params` by name (SGD with Nesterov momentum 0.9; AdamW with weight decay 1e-4).
 * @example
 * const opt = makeOptimizer("adam", model.parameters(), 2e-3);
 */
export function makeOptimizer(name: OptimizerName, params: ad.Tensor[], lr: number): ad.optim.Optimizer {
  switch (name) {
    case "sgd":
      return new ad.optim.SGD(params, { lr, momentum: 0.9, nesterov: true });
    case "adam":
      return new ad.optim.Adam(params, { lr });
    case "adamw":
      return new ad.optim.AdamW(params, { lr, weightDecay: 1e-4 });
    case "rmsprop":
      return new ad.optim.RMSprop(params, { lr });
  }
}

/**
 * Fraction of correctly classified examples, evaluated without recording (in chunks, so memory
 * stays small for large splits).
 * @example
 * accuracy(model, test); // 0.976
 */
export function accuracy(model: ad.nn.Module, split: Split, chunk = 1000): number {
  const n = split.y.shape[0]!;
  let correct = 0;
  ad.noGrad(() => {
    for (let i = 0; i < n; i += chunk) {
      const m = Math.min(chunk, n - i);
      const logits = model.forward(ad.slice(split.x, [i, 0], [m, split.x.shape[1]!]));
      const hits = ad.equal(ad.argmax(logits, { axis: -1 }), ad.slice(split.y, [i], [m]));
      correct += ad.sum(ad.astype(hits, "int32")).item();
    }
  });
  return correct / n;
}

/** Options of `trainClassifier`. */
export interface ClassifierOptions {
  trainSize?: number;
  testSize?: number;
  epochs?: number;
  batchSize?: number;
  hidden?: number;
  lr?: number;
  optimizer?: OptimizerName;
  /** float32, or mixed precision: float16 (with loss scaling) or bfloat16 matmuls. */
  precision?: "float32" | "float16" | "bfloat16";
  /** Starting loss scale for float16 (default 2^16). */
  initScale?: number;
  seed?: number;
  /** Called after every step with the step number (1-based) and its training loss. */
  onStep?: (step: number, loss: number) => void;
}

/** What `trainClassifier` returns. */
export interface ClassifierResult {
  model: MLP;
  testAccuracy: number;
  trainAccuracy: number;
  /** Training loss at every step (float32 value of the unscaled loss). */
  losses: number[];
  /** Steps the GradScaler skipped because a gradient was Inf/NaN (float16 only). */
  skippedSteps: number;
  /** The loss scale before each step (float16 only). */
  scales: number[];
  seconds: number;
}

/**
 * Train the MLP on the digits and measure it on the held-out split.
 * @example
 * const r = trainClassifier({ trainSize: 2000, epochs: 2 });
 * r.testAccuracy; // about 0.9
 */
export function trainClassifier(opts: ClassifierOptions = {}): ClassifierResult {
  const trainSize = opts.trainSize ?? 16000;
  const epochs = opts.epochs ?? 5;
  const batchSize = opts.batchSize ?? 100;
  const precision = opts.precision ?? "float32";
  const seed = opts.seed ?? 0;
  const { train, test } = digitSplits(trainSize, opts.testSize ?? 2000, seed);
  const features = train.x.shape[1]!;
  const model = new MLP(features, opts.hidden ?? 128, NUM_CLASSES, ad.random.key(seed));
  const optimizer = makeOptimizer(opts.optimizer ?? "adam", model.parameters(), opts.lr ?? 5e-3);
  const stepsPerEpoch = Math.ceil(trainSize / batchSize);
  // Cosine decay to zero over the whole run: the last steps are small, which settles the weights.
  const scheduler = new ad.optim.LRScheduler(
    optimizer,
    ad.optim.cosineSchedule(optimizer.paramGroups[0]!.lr, epochs * stepsPerEpoch),
  );
  // float16 has a narrow range (max 65504, smallest normal 6e-5): scale the loss so that small
  // gradients do not flush to zero, and let the scaler skip steps whose gradients overflowed.
  // bfloat16 has float32's range and needs no scaling.
  const scaler = precision === "float16" ? new ad.amp.GradScaler({ initScale: opts.initScale }) : null;
  const forwardLoss = (x: ad.Tensor, y: ad.Tensor) => ad.nn.crossEntropy(model.forward(x), y);
  const losses: number[] = [];
  const scales: number[] = [];
  let skippedSteps = 0;
  const shuffle = uniformSource(seed + 12345);
  const start = performance.now();
  model.train();
  for (let epoch = 0; epoch < epochs; epoch++) {
    // A fresh random order of the training set every epoch (Fisher–Yates).
    const order = Int32Array.from({ length: trainSize }, (_, i) => i);
    for (let i = trainSize - 1; i > 0; i--) {
      const j = Math.floor(shuffle() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let b = 0; b < trainSize; b += batchSize) {
      const idx = ad.tensor(order.subarray(b, Math.min(b + batchSize, trainSize)), { dtype: "int32" });
      const x = ad.take(train.x, idx, 0);
      const y = ad.take(train.y, idx, 0);
      let loss: ad.Tensor;
      if (precision === "float32") {
        loss = forwardLoss(x, y);
        loss.backward();
        optimizer.step();
      } else {
        // Matmuls run in 16 bits; the loss (a reduction) comes back in float32.
        loss = ad.amp.autocast(precision, () => forwardLoss(x, y));
        if (scaler === null) {
          loss.backward();
          optimizer.step();
        } else {
          scales.push(scaler.getScale());
          scaler.scale(loss).backward();
          if (!scaler.step(optimizer)) skippedSteps++;
          scaler.update();
        }
      }
      optimizer.zeroGrad();
      scheduler.step();
      losses.push(loss.item());
      opts.onStep?.(losses.length, losses[losses.length - 1]!);
    }
  }
  model.eval();
  return {
    model,
    testAccuracy: accuracy(model, test),
    trainAccuracy: accuracy(model, train),
    losses,
    skippedSteps,
    scales,
    seconds: (performance.now() - start) / 1000,
  };
}

function main(): void {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i < 0 ? undefined : process.argv[i + 1];
  };
  const precision = (arg("precision") ?? "float32") as ClassifierOptions["precision"];
  const initScale = arg("init-scale") === undefined ? undefined : Number(arg("init-scale"));
  const r = trainClassifier({
    precision,
    initScale,
    onStep: (step, loss) => {
      if (step % 100 === 0) console.log(`step ${step}: loss ${loss.toFixed(4)}`);
    },
  });
  console.log(`precision ${precision}: ${r.seconds.toFixed(1)} s`);
  console.log(`train accuracy ${(100 * r.trainAccuracy).toFixed(2)}%`);
  console.log(`test accuracy  ${(100 * r.testAccuracy).toFixed(2)}%`);
  if (precision === "float16")
    console.log(`skipped steps ${r.skippedSteps}, final loss scale ${r.scales[r.scales.length - 1]}`);
  const bytes = ad.io.saveSafetensors(r.model.stateDict());
  console.log(`checkpoint: ${bytes.length} bytes of safetensors (ad.io.saveSafetensors)`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
