/**
 * @file The work of `adjoint train`, once `train-args.ts` has checked the flags: generate the
 * synthetic digits, train an MLP (eager autograd, an `ad.optim` optimizer with cosine learning-rate
 * decay, optionally `ad.amp.autocast` with a `GradScaler`), show progress, evaluate on the held-out
 * split after every epoch, then write the loss curve (SVG), the checkpoint (safetensors) and the
 * metrics (JSON). The same model and data as examples/mlp-classifier.ts, whose `MLP` loads the
 * checkpoint. All file and terminal access goes through `TrainIO`, so this module needs no
 * platform types.
 */

import type { Tensor } from "../core/tensor.js";
import * as ad from "../index.js";
import { makeDigits, NUM_CLASSES, uniformSource } from "./digits.js";
import { CliError } from "./parse.js";
import { lineChartSvg } from "./plot.js";
import { formatDuration, Progress, type ProgressSink, type ProgressStyle } from "./progress.js";
import type { CliResult } from "./run.js";
import type { Precision, TrainRequest } from "./train-args.js";

/** What `adjoint train` needs from the platform: a terminal to write to and a file system. */
export interface TrainIO extends ProgressSink {
  /** Milliseconds from an arbitrary origin (`performance.now()`). */
  now(): number;
  /** Create a directory and its parents (no error if it exists); throws if it cannot. */
  mkdirp(path: string): void;
  writeFile(path: string, data: Uint8Array | string): void;
  /** `dir` joined with a file name. */
  join(dir: string, name: string): string;
  /** Let the event loop run, so that written text reaches the terminal while training goes on. */
  tick(): Promise<void>;
}

/** The model: Linear → ReLU → Linear (parameter names as in examples/mlp-classifier.ts). */
class MLP extends ad.nn.Module {
  fc1: ad.nn.Linear;
  fc2: ad.nn.Linear;
  constructor(inputs: number, hidden: number, classes: number, key: Tensor) {
    super();
    const [k1, k2] = ad.random.split(key);
    this.fc1 = new ad.nn.Linear(inputs, hidden, { key: k1! });
    this.fc2 = new ad.nn.Linear(hidden, classes, { key: k2! });
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(ad.relu(this.fc1.forward(x)));
  }
}

interface Split {
  readonly x: Tensor;
  readonly y: Tensor;
  readonly n: number;
}

function split(n: number, seed: number): Split {
  const d = makeDigits({ n, seed });
  return {
    x: ad.tensor(d.images, { shape: [n, d.size * d.size] }),
    y: ad.tensor(d.labels, { dtype: "int32" }),
    n,
  };
}

function makeOptimizer(req: TrainRequest, params: Tensor[]): ad.optim.Optimizer {
  const { lr } = req;
  switch (req.optimizer) {
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

/** Mean loss and accuracy on a split, without recording, in chunks of 1000. */
function evaluate(model: MLP, s: Split): { loss: number; accuracy: number; correct: number } {
  let lossSum = 0;
  let correct = 0;
  ad.noGrad(() => {
    for (let i = 0; i < s.n; i += 1000) {
      const m = Math.min(1000, s.n - i);
      const logits = model.forward(ad.slice(s.x, [i, 0], [m, s.x.shape[1]!]));
      const y = ad.slice(s.y, [i], [m]);
      lossSum += ad.nn.crossEntropy(logits, y, { reduction: "sum" }).item();
      correct += ad.sum(ad.astype(ad.equal(ad.argmax(logits, { axis: -1 }), y), "int32")).item();
    }
  });
  return { loss: lossSum / s.n, accuracy: correct / s.n, correct };
}

/** The forward pass and loss of one batch, in the requested precision. */
function forward(model: MLP, x: Tensor, y: Tensor, precision: Precision): [Tensor, Tensor] {
  const run = (): [Tensor, Tensor] => {
    const logits = model.forward(x);
    return [logits, ad.nn.crossEntropy(logits, y)];
  };
  // Under autocast the matmuls run in 16 bits and the loss (a reduction) comes back in float32.
  return precision === "float32" ? run() : ad.amp.autocast(precision, run);
}

/** Per-epoch results, as stored in metrics.json. */
interface EpochStats {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  seconds: number;
}

/** Moving average over a centred window (shorter at the ends). */
function movingAverage(xs: readonly number[], window: number): number[] {
  const half = Math.floor(window / 2);
  const prefix = [0];
  for (const x of xs) prefix.push(prefix[prefix.length - 1]! + x);
  return xs.map((_, i) => {
    const a = Math.max(0, i - half);
    const b = Math.min(xs.length, i + half + 1);
    return (prefix[b]! - prefix[a]!) / (b - a);
  });
}

/** A number rounded to 6 significant digits for JSON (keeps metrics.json small). */
function round6(x: number): number | string {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : String(x);
}

/** A loss scale for the progress line: 2^16, 1000, 4.8e5. */
function compactNumber(x: number): string {
  const k = Math.log2(x);
  if (Number.isInteger(k) && k >= 10) return `2^${k}`;
  return Number.isInteger(x) && x < 1e6 ? String(x) : x.toPrecision(2).replace("e+", "e");
}

function progressStyle(req: TrainRequest, io: TrainIO): ProgressStyle {
  if (req.progress === "auto") return io.isTTY ? "bar" : "lines";
  return req.progress;
}

/**
 * Run `adjoint train`: train, report progress through `io`, write the outputs, and return the
 * summary (stdout) and exit status. A directory that cannot be created is a `CliError` (status
 * 2), found before training; a run whose loss becomes NaN or infinite stops early with status 1.
 * @example
 * const r = await runTrain(parseTrainArgs(["--epochs", "1"]), io);
 * r.stdout; // "test accuracy: 93.40% (1868/2000 correct)\n..."
 */
export async function runTrain(req: TrainRequest, io: TrainIO): Promise<CliResult> {
  try {
    io.mkdirp(req.out);
  } catch (e) {
    throw new CliError(
      `--out: cannot create the directory '${req.out}': ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const style = progressStyle(req, io);
  const say = (text: string) => {
    if (style !== "none") io.write(`${text}\n`);
  };
  const train = split(req.trainSize, 2 * req.seed + 1);
  const test = split(req.testSize, 2 * req.seed + 2);
  const features = train.x.shape[1]!;
  const model = new MLP(features, req.hidden, NUM_CLASSES, ad.random.key(req.seed));
  const optimizer = makeOptimizer(req, model.parameters());
  const stepsPerEpoch = Math.ceil(req.trainSize / req.batchSize);
  const totalSteps = req.epochs * stepsPerEpoch;
  const scheduler = new ad.optim.LRScheduler(optimizer, ad.optim.cosineSchedule(req.lr, totalSteps));
  const scaler = req.precision === "float16" ? new ad.amp.GradScaler({ initScale: req.initScale }) : null;
  say(
    `adjoint train: MLP ${features}-${req.hidden}-${NUM_CLASSES} on synthetic digits (${req.trainSize} train, ${req.testSize} test images); ` +
      `${req.optimizer} lr ${req.lr}, batch ${req.batchSize}, ${req.epochs} epoch${req.epochs === 1 ? "" : "s"}, ${req.precision}${scaler === null ? "" : ` with loss scaling from ${req.initScale}`}, seed ${req.seed}`,
  );
  await io.tick();

  const progress = new Progress(io, style, totalSteps, () => io.now());
  const shuffle = uniformSource(req.seed + 12345);
  const losses: number[] = [];
  const epochs: EpochStats[] = [];
  let skipped = 0;
  let trainMs = 0;
  let diverged: number | null = null;
  const start = io.now();
  model.train();
  for (let epoch = 1; epoch <= req.epochs && diverged === null; epoch++) {
    const epochStart = io.now();
    const order = Int32Array.from({ length: req.trainSize }, (_, i) => i);
    for (let i = req.trainSize - 1; i > 0; i--) {
      const j = Math.floor(shuffle() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    for (let b = 0; b < req.trainSize; b += req.batchSize) {
      const t0 = io.now();
      const idx = ad.tensor(order.subarray(b, Math.min(b + req.batchSize, req.trainSize)), {
        dtype: "int32",
      });
      const x = ad.take(train.x, idx, 0);
      const y = ad.take(train.y, idx, 0);
      const [logits, loss] = forward(model, x, y, req.precision);
      if (scaler === null) {
        loss.backward();
        optimizer.step();
      } else {
        scaler.scale(loss).backward();
        if (!scaler.step(optimizer)) skipped++;
        scaler.update();
      }
      optimizer.zeroGrad();
      scheduler.step();
      const value = loss.item();
      const hits = ad.sum(ad.astype(ad.equal(ad.argmax(logits, { axis: -1 }), y), "int32")).item();
      trainMs += io.now() - t0;
      losses.push(value);
      const m = idx.shape[0]!;
      lossSum += value * m;
      correct += hits;
      seen += m;
      if (!Number.isFinite(value)) {
        diverged = losses.length;
        break;
      }
      progress.step(
        {
          epoch,
          epochs: req.epochs,
          step: losses.length,
          totalSteps,
          loss: lossSum / seen,
          accuracy: correct / seen,
          stepsPerSecond: losses.length / (trainMs / 1000),
          note:
            scaler === null
              ? undefined
              : `scale ${compactNumber(scaler.getScale())}${skipped > 0 ? ` (${skipped} skipped)` : ""}`,
        },
        b + req.batchSize >= req.trainSize, // the epoch's last step: always drawn
      );
      if (io.isTTY) await io.tick();
    }
    const t = evaluate(model, test);
    const stats: EpochStats = {
      epoch,
      trainLoss: lossSum / seen,
      trainAccuracy: correct / seen,
      testLoss: t.loss,
      testAccuracy: t.accuracy,
      seconds: (io.now() - epochStart) / 1000,
    };
    epochs.push(stats);
    progress.message(
      `epoch ${epoch}/${req.epochs}  loss ${stats.trainLoss.toFixed(4)}  acc ${(100 * stats.trainAccuracy).toFixed(1)}%  ` +
        `test loss ${stats.testLoss.toFixed(4)}  test acc ${(100 * stats.testAccuracy).toFixed(2)}%  (${formatDuration(stats.seconds)})`,
    );
    await io.tick();
  }
  progress.finish();
  model.eval();
  const final = evaluate(model, test);
  const seconds = (io.now() - start) / 1000;

  // Outputs.
  const svgPath = io.join(req.out, "loss.svg");
  const ckptPath = io.join(req.out, "model.safetensors");
  const metricsPath = io.join(req.out, "metrics.json");
  const steps = losses.map((l, i) => [i + 1, l] as const);
  const smooth = movingAverage(losses, Math.max(1, Math.round(losses.length / 40)));
  io.writeFile(
    svgPath,
    lineChartSvg(
      [
        { label: "training loss (per step)", points: steps, color: "#1f77b4", width: 1, opacity: 0.35 },
        {
          label: "training loss (moving average)",
          points: smooth.map((l, i) => [i + 1, l] as const),
          color: "#1f77b4",
          width: 2.5,
        },
        {
          label: "test loss (end of epoch)",
          points: epochs.map((e) => [e.epoch * stepsPerEpoch, e.testLoss] as const),
          color: "#d62728",
          markers: true,
        },
      ],
      {
        title: `adjoint train: ${req.optimizer}, ${req.precision}, test accuracy ${(100 * final.accuracy).toFixed(2)}%`,
        xLabel: "step",
        yLabel: "cross-entropy loss",
      },
    ),
  );
  const config = {
    model: `mlp ${features}-${req.hidden}-${NUM_CLASSES}`,
    optimizer: req.optimizer,
    lr: req.lr,
    batchSize: req.batchSize,
    epochs: req.epochs,
    precision: req.precision,
    seed: req.seed,
    trainSize: req.trainSize,
    testSize: req.testSize,
  };
  io.writeFile(
    ckptPath,
    ad.io.saveSafetensors(model.stateDict(), {
      metadata: Object.fromEntries(Object.entries(config).map(([k, v]) => [k, String(v)])),
    }),
  );
  const metrics = {
    config,
    testAccuracy: final.accuracy,
    testLoss: round6(final.loss),
    steps: losses.length,
    seconds: round6(seconds),
    stepsPerSecond: round6(losses.length / (trainMs / 1000)),
    ...(scaler === null ? {} : { skippedSteps: skipped, finalScale: scaler.getScale() }),
    ...(diverged === null ? {} : { divergedAtStep: diverged }),
    epochs: epochs.map((e) => ({
      epoch: e.epoch,
      trainLoss: round6(e.trainLoss),
      trainAccuracy: round6(e.trainAccuracy),
      testLoss: round6(e.testLoss),
      testAccuracy: round6(e.testAccuracy),
      seconds: round6(e.seconds),
    })),
    losses: losses.map(round6),
  };
  io.writeFile(metricsPath, `${JSON.stringify(metrics, null, 1)}\n`);

  const lines = [
    `test accuracy: ${(100 * final.accuracy).toFixed(2)}% (${final.correct}/${test.n} correct), test loss ${final.loss.toFixed(4)}`,
    `trained ${losses.length} steps in ${formatDuration(seconds)} (${(losses.length / (trainMs / 1000)).toFixed(1)} steps/s)`,
    ...(scaler === null
      ? []
      : [
          `loss scaling: ${skipped} step${skipped === 1 ? "" : "s"} skipped (Inf/NaN gradients), final scale ${scaler.getScale()}`,
        ]),
    `wrote ${svgPath} (loss curve), ${ckptPath} (checkpoint), ${metricsPath}`,
    "",
  ];
  if (diverged !== null)
    return {
      code: 1,
      stdout: lines.join("\n"),
      stderr: `adjoint: training diverged: the loss became ${String(losses[losses.length - 1])} at step ${diverged}; try a smaller --lr\n`,
    };
  return { code: 0, stdout: lines.join("\n"), stderr: "" };
}
