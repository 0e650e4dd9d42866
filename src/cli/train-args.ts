/**
 * @file The flags of `adjoint train`: their defaults, the help text, and the parser that turns
 * the arguments into a checked `TrainRequest`. Every mistake is a `CliError` (one line, exit
 * status 2) found before the differentiation library is loaded.
 */

import { CliError } from "./parse.js";

/** The optimizers `adjoint train --optimizer` offers. */
export const OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop"] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** The precisions `adjoint train --precision` offers. */
export const PRECISIONS = ["float32", "float16", "bfloat16"] as const;
export type Precision = (typeof PRECISIONS)[number];

/** How progress is shown: `auto` is a bar on a terminal and periodic lines otherwise. */
export const PROGRESS_MODES = ["auto", "bar", "lines", "none"] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/** A checked `adjoint train` command line. */
export interface TrainRequest {
  readonly epochs: number;
  /** The learning rate (the optimizer's default when not given). */
  readonly lr: number;
  readonly batchSize: number;
  readonly optimizer: OptimizerName;
  readonly precision: Precision;
  readonly seed: number;
  /** Output directory for loss.svg, model.safetensors and metrics.json. */
  readonly out: string;
  readonly hidden: number;
  readonly trainSize: number;
  readonly testSize: number;
  /** The GradScaler's starting scale (float16 only). */
  readonly initScale: number;
  readonly progress: ProgressMode;
}

/**
 * Default learning rates, tuned on the digits with the cosine schedule: Adam-type optimizers take
 * 5e-3, RMSprop 1e-2 (PyTorch's default), SGD (Nesterov momentum 0.9) 0.1.
 */
export const DEFAULT_LR: Readonly<Record<OptimizerName, number>> = {
  sgd: 0.1,
  adam: 5e-3,
  adamw: 5e-3,
  rmsprop: 1e-2,
};

const DEFAULTS = {
  epochs: 5,
  batchSize: 100,
  optimizer: "adam",
  precision: "float32",
  seed: 0,
  out: "adjoint-train",
  hidden: 128,
  trainSize: 16000,
  testSize: 2000,
  initScale: 65536,
  progress: "auto",
} as const;

/** The flags, each taking a value, with the key of `TrainRequest` they set. */
const FLAGS: Readonly<Record<string, keyof TrainRequest>> = {
  epochs: "epochs",
  lr: "lr",
  "batch-size": "batchSize",
  optimizer: "optimizer",
  precision: "precision",
  seed: "seed",
  out: "out",
  hidden: "hidden",
  "train-size": "trainSize",
  "test-size": "testSize",
  "init-scale": "initScale",
  progress: "progress",
};

/** The usage line of `adjoint train`. */
export const TRAIN_USAGE =
  "adjoint train [--epochs N] [--lr X] [--batch-size N] [--optimizer sgd|adam|adamw|rmsprop] [--precision float32|float16|bfloat16] [--seed N] [--out DIR]";

/** The one-line summary of `adjoint train` in the main help. */
export const TRAIN_SUMMARY =
  "train an MLP on synthetic digits with a live progress bar; write a loss curve and a checkpoint";

/**
 * The help text of `adjoint train`.
 * @example
 * trainHelp().startsWith("Usage: adjoint train"); // true
 */
export function trainHelp(): string {
  return [
    `Usage: ${TRAIN_USAGE}`,
    "",
    "Trains a multilayer perceptron (144 → hidden → 10, ReLU) to classify synthetic 12×12 digit",
    "images, generated on the spot (randomly rotated, scaled, sheared, shifted, half of them",
    "inverted, with pixel noise), and measures it on a held-out test split. Shows the step, the",
    "loss, the accuracy and steps/s while it runs (one updating line on a terminal, periodic",
    "lines otherwise), then prints the test accuracy and writes to DIR:",
    "  loss.svg            the loss curve (training loss per step, test loss per epoch)",
    "  model.safetensors   the trained parameters (fc1.weight, fc1.bias, fc2.weight, fc2.bias)",
    "  metrics.json        the settings, the loss of every step and the per-epoch results",
    "",
    "Options:",
    `  --epochs N           passes over the training set (default ${DEFAULTS.epochs})`,
    `  --lr X               peak learning rate, cosine-decayed to 0 (default: sgd ${DEFAULT_LR.sgd},`,
    `                       adam ${DEFAULT_LR.adam}, adamw ${DEFAULT_LR.adamw}, rmsprop ${DEFAULT_LR.rmsprop})`,
    `  --batch-size N       examples per step (default ${DEFAULTS.batchSize})`,
    `  --optimizer NAME     sgd (Nesterov momentum 0.9), adam, adamw (weight decay 1e-4) or`,
    `                       rmsprop (default ${DEFAULTS.optimizer})`,
    "  --precision P        float32 (default); float16 or bfloat16 run the matmuls in 16 bits",
    "                       (ad.amp.autocast); float16 adds dynamic loss scaling (GradScaler)",
    `  --init-scale X       float16 only: the starting loss scale (default ${DEFAULTS.initScale})`,
    `  --seed N             seed of the data, the initialisation and the shuffling (default ${DEFAULTS.seed})`,
    `  --out DIR            output directory, created if needed (default ${DEFAULTS.out})`,
    `  --hidden N           hidden units (default ${DEFAULTS.hidden})`,
    `  --train-size N       training images (default ${DEFAULTS.trainSize})`,
    `  --test-size N        test images (default ${DEFAULTS.testSize})`,
    "  --progress MODE      auto (default: a bar on a terminal, lines otherwise), bar, lines or none",
    "",
    "Examples:",
    "  adjoint train",
    "  adjoint train --optimizer sgd --epochs 3 --out runs/sgd",
    "  adjoint train --precision float16 --init-scale 1e12   (watch the scaler back off)",
    "",
  ].join("\n");
}

function integer(flag: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^[+]?\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max)
    throw new CliError(
      `--${flag}: expected a whole number${max === Number.MAX_SAFE_INTEGER ? ` ≥ ${min}` : ` from ${min} to ${max}`}, got '${raw}'`,
    );
  return Number(raw);
}

function positive(flag: string, raw: string): number {
  const x = raw.trim() === "" ? Number.NaN : Number(raw);
  if (!Number.isFinite(x) || x <= 0)
    throw new CliError(`--${flag}: expected a positive number such as 0.01 or 1e-3, got '${raw}'`);
  return x;
}

function oneOf<T extends string>(flag: string, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw))
    throw new CliError(`--${flag}: unknown value '${raw}' (choose ${allowed.join(", ")})`);
  return raw as T;
}

/**
 * Parse the arguments after `train` into a checked request.
 * @example
 * parseTrainArgs(["--epochs", "2", "--optimizer=sgd"]).lr; // 0.05 (SGD's default)
 */
export function parseTrainArgs(args: readonly string[]): TrainRequest {
  const given = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--"))
      throw new CliError(`train takes no arguments besides options, got '${a}' (see adjoint train --help)`);
    const eq = a.indexOf("=");
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    if (!Object.hasOwn(FLAGS, name)) {
      const known = Object.keys(FLAGS)
        .map((f) => `--${f}`)
        .join(", ");
      throw new CliError(`unknown option '--${name}' for train (options: ${known}, --help)`);
    }
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined) throw new CliError(`--${name} needs a value (see adjoint help train)`);
      value = next;
      i++;
    }
    if (given.has(name)) throw new CliError(`--${name} given more than once`);
    given.set(name, value);
  }
  const get = (flag: string) => given.get(flag);
  const optimizer = oneOf("optimizer", get("optimizer") ?? DEFAULTS.optimizer, OPTIMIZERS);
  const precision = oneOf("precision", get("precision") ?? DEFAULTS.precision, PRECISIONS);
  const rawScale = get("init-scale");
  if (rawScale !== undefined && precision !== "float16")
    throw new CliError(`--init-scale applies to --precision float16 only (loss scaling), not ${precision}`);
  const out = get("out") ?? DEFAULTS.out;
  if (out.trim() === "") throw new CliError("--out: expected a directory name, got ''");
  const req: TrainRequest = {
    epochs: get("epochs") === undefined ? DEFAULTS.epochs : integer("epochs", get("epochs")!, 1, 10000),
    lr: get("lr") === undefined ? DEFAULT_LR[optimizer] : positive("lr", get("lr")!),
    batchSize:
      get("batch-size") === undefined ? DEFAULTS.batchSize : integer("batch-size", get("batch-size")!, 1),
    optimizer,
    precision,
    seed: get("seed") === undefined ? DEFAULTS.seed : integer("seed", get("seed")!, 0, 2 ** 31 - 1),
    out,
    hidden: get("hidden") === undefined ? DEFAULTS.hidden : integer("hidden", get("hidden")!, 1, 4096),
    trainSize:
      get("train-size") === undefined
        ? DEFAULTS.trainSize
        : integer("train-size", get("train-size")!, 1, 1_000_000),
    testSize:
      get("test-size") === undefined
        ? DEFAULTS.testSize
        : integer("test-size", get("test-size")!, 1, 1_000_000),
    initScale: rawScale === undefined ? DEFAULTS.initScale : positive("init-scale", rawScale),
    progress: oneOf("progress", get("progress") ?? DEFAULTS.progress, PROGRESS_MODES),
  };
  if (req.batchSize > req.trainSize)
    throw new CliError(
      `--batch-size ${req.batchSize} is larger than the training set (--train-size ${req.trainSize})`,
    );
  return req;
}
