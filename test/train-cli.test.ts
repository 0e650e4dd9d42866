/**
 * @file `adjoint train`, run as the real built binary (`dist/cli/main.js`) in a subprocess on tiny
 * settings: the progress output in each style, the printed test accuracy, the files it writes
 * (an SVG loss curve, a safetensors checkpoint that the example's `MLP` loads and that reproduces
 * the printed accuracy, metrics.json), every optimizer and precision, loss-scale recovery from an
 * overflow, determinism, help, and one-line errors with exit status 2. The pure helpers (ticks,
 * the chart, progress formatting) are unit-tested directly.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import * as ad from "adjoint";
import { accuracy, digitSplits, MLP } from "../examples/mlp-classifier.js";
import { makeDigits } from "../src/cli/digits.js";
import { linearTicks, lineChartSvg, logTicks } from "../src/cli/plot.js";
import { bar, formatDuration, Progress, statsText } from "../src/cli/progress.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = fileURLToPath(new URL("../dist/cli/main.js", import.meta.url));
const TMP = mkdtempSync(join(tmpdir(), "adjoint-train-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Run> {
  assert.ok(existsSync(BIN), `${BIN} is missing: run npm run build first`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 120_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

let dirs = 0;
/** A fresh output directory under the test's temporary folder. */
function outDir(): string {
  return join(TMP, `run${++dirs}`);
}

/** Tiny settings: 600 training images in batches of 50, 12 steps per epoch. */
const TINY = ["--train-size", "600", "--test-size", "300", "--hidden", "32", "--batch-size", "50"];

async function train(...args: string[]): Promise<Run & { out: string }> {
  const out = outDir();
  const r = await cli("train", ...TINY, "--out", out, ...args);
  assert.equal(r.stderr, "", `stderr of adjoint train ${args.join(" ")}`);
  assert.equal(r.code, 0, `status of adjoint train ${args.join(" ")}`);
  return { ...r, out };
}

function printedAccuracy(stdout: string): number {
  const m = /^test accuracy: (\d+\.\d\d)% \((\d+)\/(\d+) correct\)/m.exec(stdout);
  assert.ok(m !== null, `no accuracy line in:\n${stdout}`);
  const acc = Number(m[2]) / Number(m[3]);
  assert.equal((100 * acc).toFixed(2), m[1]);
  return acc;
}

describe("adjoint train: a tiny run", () => {
  const run = train("--epochs", "3", "--lr", "0.01", "--seed", "3");

  test("prints a header, periodic progress lines (no terminal), epoch summaries and the test accuracy", async () => {
    const { stdout } = await run;
    assert.ok(
      !stdout.includes("\r") && !stdout.includes("\x1b"),
      "plain lines only when stdout is not a terminal",
    );
    const lines = stdout.split("\n");
    assert.match(
      lines[0]!,
      /^adjoint train: MLP 144-32-10 on synthetic digits \(600 train, 300 test images\); adam lr 0\.01, batch 50, 3 epochs, float32, seed 3$/,
    );
    const progress = lines.filter((l) => /^epoch \d\/3 {2}step/.test(l));
    assert.ok(progress.length >= 10, `${progress.length} progress lines`);
    for (const l of progress)
      assert.match(
        l,
        /^epoch [123]\/3 {2}step +\d+\/36 {2}loss \d+\.\d{4} {2}acc +\d+\.\d% {2} *\d+\.\d steps\/s {2}eta \S+$/,
      );
    assert.match(progress[progress.length - 1]!, /step 36\/36/);
    const epochs = lines.filter((l) => / test acc /.test(l));
    assert.equal(epochs.length, 3);
    assert.match(
      epochs[2]!,
      /^epoch 3\/3 {2}loss \d\.\d{4} {2}acc \d+\.\d% {2}test loss \d\.\d{4} {2}test acc \d+\.\d\d% {2}\(\S+\)$/,
    );
    assert.match(stdout, /^trained 36 steps in \S+ \(\d+\.\d steps\/s\)$/m);
    assert.ok(printedAccuracy(stdout) > 0.3, "well above chance (10%) after 36 steps");
    assert.match(
      stdout,
      /^wrote .*loss\.svg \(loss curve\), .*model\.safetensors \(checkpoint\), .*metrics\.json\n$/m,
    );
  });

  test("metrics.json records the settings, every step's loss and the epochs", async () => {
    const { stdout, out } = await run;
    const m = JSON.parse(readFileSync(join(out, "metrics.json"), "utf8"));
    assert.equal(m.config.optimizer, "adam");
    assert.equal(m.config.lr, 0.01);
    assert.equal(m.steps, 36);
    assert.equal(m.losses.length, 36);
    assert.equal(m.epochs.length, 3);
    assert.equal(m.testAccuracy, printedAccuracy(stdout));
    // The loss falls from about ln 10 = 2.30 at initialisation.
    assert.ok(Math.abs(m.losses[0] - Math.log(10)) < 0.3, `first loss ${m.losses[0]}`);
    assert.ok(m.epochs[2].trainLoss < m.epochs[0].trainLoss);
  });

  test("the checkpoint is safetensors; the example's MLP loads it and reproduces the printed accuracy", async () => {
    const { stdout, out } = await run;
    const bytes = new Uint8Array(readFileSync(join(out, "model.safetensors")));
    const state = ad.io.loadSafetensors(bytes) as Record<string, Record<string, ad.Tensor>>;
    assert.deepEqual(state.fc1!.weight!.shape, [32, 144]);
    assert.deepEqual(state.fc2!.bias!.shape, [10]);
    const header = JSON.parse(
      new TextDecoder().decode(
        bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))),
      ),
    );
    assert.equal(header.__metadata__.optimizer, "adam");
    const model = new MLP(144, 32, 10, ad.random.key(0));
    model.loadStateDict(state);
    // The CLI's test split for seed 3 is the example's.
    const { test: split } = digitSplits(600, 300, 3);
    assert.equal(accuracy(model, split), printedAccuracy(stdout));
  });

  test("the loss curve is an SVG with the per-step loss, its moving average and the test losses", async () => {
    const { out } = await run;
    const svg = readFileSync(join(out, "loss.svg"), "utf8");
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.equal((svg.match(/<path d="M/g) ?? []).length, 2);
    assert.equal((svg.match(/<circle cx/g) ?? []).length, 3 + 1, "three epoch markers and the legend's");
    assert.match(svg, /training loss \(per step\)/);
    assert.match(svg, /test accuracy \d+\.\d\d%/);
    // 36 points in the per-step path.
    const path = /<path d="([^"]+)"/.exec(svg)![1]!;
    assert.equal(path.split(/[ML]/).filter((s) => s !== "").length, 36);
  });

  test("the same seed gives the same run, bit for bit", async () => {
    const { out } = await run;
    const again = await train("--epochs", "3", "--lr", "0.01", "--seed", "3", "--progress", "none");
    assert.deepEqual(
      readFileSync(join(again.out, "model.safetensors")),
      readFileSync(join(out, "model.safetensors")),
    );
  });
});

describe("adjoint train: progress styles", () => {
  test("--progress bar redraws one line in place; none prints only the summary", async () => {
    const [barRun, none] = await Promise.all([
      train("--epochs", "1", "--progress", "bar"),
      train("--epochs", "1", "--progress", "none"),
    ]);
    assert.match(barRun.stdout, /\r\[#*-*\] epoch 1\/1 {2}step +\d+\/12 {2}loss/);
    // Each redraw erases the rest of the old line (ESC [ K); the finished bar is followed by the summary.
    const ERASE = "\u001b[K";
    assert.ok(barRun.stdout.includes(ERASE));
    assert.match(
      barRun.stdout.replaceAll(ERASE, "<EL>"),
      /\r\[#{5,}\] epoch 1\/1 {2}step 12\/12 .*<EL>\nepoch 1\/1 {2}loss/,
    );
    assert.match(none.stdout, /^test accuracy: /);
    assert.equal(none.stdout.split("\n").length, 4);
  });
});

describe("adjoint train: optimizers and precisions", () => {
  test("sgd, adamw and rmsprop train (their default learning rates)", async () => {
    const names = ["sgd", "adamw", "rmsprop"] as const;
    const lrs = { sgd: 0.1, adamw: 0.005, rmsprop: 0.01 };
    const runs = await Promise.all(
      names.map((o) => train("--optimizer", o, "--epochs", "4", "--progress", "none")),
    );
    runs.forEach((r, i) => {
      const name = names[i]!;
      const m = JSON.parse(readFileSync(join(r.out, "metrics.json"), "utf8"));
      assert.equal(m.config.optimizer, name);
      assert.equal(m.config.lr, lrs[name]);
      assert.ok(m.epochs[3].trainLoss < m.epochs[0].trainLoss - 0.05, `${name}: ${JSON.stringify(m.epochs)}`);
      assert.ok(printedAccuracy(r.stdout) > 0.15, `${name}: ${r.stdout}`);
    });
  });

  test("bfloat16 and float16 (with loss scaling) train like float32", async () => {
    const [f32, bf16, f16] = await Promise.all(
      ["float32", "bfloat16", "float16"].map((p) =>
        train("--precision", p, "--epochs", "2", "--progress", "none"),
      ),
    );
    const a32 = printedAccuracy(f32!.stdout);
    for (const r of [bf16!, f16!]) assert.ok(Math.abs(printedAccuracy(r.stdout) - a32) <= 0.05, r.stdout);
    assert.match(f16!.stdout, /^loss scaling: 0 steps skipped \(Inf\/NaN gradients\), final scale 65536$/m);
    assert.ok(!bf16!.stdout.includes("loss scaling"));
  });

  test("float16 with a huge initial scale: overflowing steps are skipped, the scale backs off, training proceeds", async () => {
    const r = await train(
      "--precision",
      "float16",
      "--init-scale",
      String(2 ** 24),
      "--epochs",
      "4",
      "--lr",
      "0.02",
    );
    const m = /^loss scaling: (\d+) steps skipped \(Inf\/NaN gradients\), final scale (\S+)$/m.exec(r.stdout);
    assert.ok(m !== null, r.stdout);
    const skipped = Number(m[1]);
    assert.ok(skipped >= 5 && skipped < 24, `${skipped} skipped`);
    // Each skipped step halves the scale (no growth within 2000 clean steps).
    assert.equal(Number(m[2]), 2 ** 24 / 2 ** skipped);
    // The skipped steps come first, one per line while the scale is still too large.
    const notes = [
      ...r.stdout.matchAll(/^epoch 1\/4 {2}step +(\d+)\/48 .* scale 2\^(\d+) \((\d+) skipped\)$/gm),
    ];
    assert.equal(Number(notes[0]![3]), 1);
    const metrics = JSON.parse(readFileSync(join(r.out, "metrics.json"), "utf8"));
    assert.equal(metrics.skippedSteps, skipped);
    assert.ok(
      metrics.epochs[3].trainLoss < metrics.epochs[0].trainLoss - 0.05,
      JSON.stringify(metrics.epochs),
    );
    assert.ok(printedAccuracy(r.stdout) > 0.15);
  });
});

describe("adjoint train: help and mistakes", () => {
  test("train --help, help train, and the overview", async () => {
    const [a, b, overview] = await Promise.all([cli("train", "--help"), cli("help", "train"), cli("--help")]);
    assert.equal(a.code, 0);
    assert.equal(a.stdout, b.stdout);
    assert.match(a.stdout, /^Usage: adjoint train /);
    for (const flag of [
      "--epochs",
      "--lr",
      "--batch-size",
      "--optimizer",
      "--precision",
      "--seed",
      "--out",
      "--init-scale",
    ])
      assert.ok(a.stdout.includes(flag), flag);
    assert.match(overview.stdout, /^ {2}train {4}train an MLP/m);
  });

  test("bad flags: one line on stderr, nothing on stdout, status 2", async () => {
    const file = join(TMP, "a-file");
    writeFileSync(file, "x");
    const cases: [string[], RegExp][] = [
      [["--epochs", "0"], /--epochs: expected a whole number from 1 to 10000, got '0'/],
      [["--epochs", "2.5"], /--epochs/],
      [["--epochs", "abc"], /--epochs/],
      [["--lr", "0"], /--lr: expected a positive number/],
      [["--lr", "-1"], /--lr/],
      [["--lr", "NaN"], /--lr/],
      [["--lr", ""], /--lr/],
      [["--batch-size", "0"], /--batch-size/],
      [["--batch-size", "100000"], /larger than the training set/],
      [
        ["--optimizer", "adagrad"],
        /--optimizer: unknown value 'adagrad' \(choose sgd, adam, adamw, rmsprop\)/,
      ],
      [["--precision", "float64"], /--precision: unknown value 'float64'/],
      [["--progress", "fancy"], /--progress/],
      [["--init-scale", "1024"], /--init-scale applies to --precision float16 only/],
      [["--precision", "float16", "--init-scale", "-2"], /--init-scale: expected a positive number/],
      [["--seed", "-1"], /--seed/],
      [["--epochs", "2", "--epochs", "3"], /--epochs given more than once/],
      [["--lr"], /--lr needs a value/],
      [["--frobnicate", "1"], /unknown option '--frobnicate' for train/],
      [["extra"], /train takes no arguments besides options, got 'extra'/],
      [["--out", join(file, "sub")], /--out: cannot create the directory/],
    ];
    await Promise.all(
      cases.map(async ([args, pattern]) => {
        const r = await cli("train", ...args);
        const what = `adjoint train ${JSON.stringify(args)}`;
        assert.equal(r.code, 2, `${what}: status ${r.code}, stderr ${r.stderr}`);
        assert.equal(r.stdout, "", what);
        assert.match(r.stderr, /^adjoint: [^\n]+\n$/, what);
        assert.match(r.stderr, pattern, what);
      }),
    );
  });
});

describe("the pieces: data, ticks, chart, progress text", () => {
  test("the digits are deterministic, balanced, and differ between seeds", () => {
    const a = makeDigits({ n: 2000, seed: 1 });
    const b = makeDigits({ n: 2000, seed: 1 });
    const c = makeDigits({ n: 2000, seed: 2 });
    assert.deepEqual(a.images, b.images);
    assert.notDeepEqual(a.images.subarray(0, 144), c.images.subarray(0, 144));
    const counts = new Array(10).fill(0);
    for (const l of a.labels) counts[l]++;
    for (const k of counts) assert.ok(k > 150 && k < 250, `class counts ${counts}`);
    assert.throws(() => makeDigits({ n: 0 }), RangeError);
  });

  test("ticks", () => {
    assert.deepEqual(linearTicks(0, 800, 5), [0, 200, 400, 600, 800]);
    assert.deepEqual(linearTicks(0.03, 0.97, 5), [0.2, 0.4, 0.6, 0.8]);
    assert.deepEqual(logTicks(0.03, 2.3), [0.05, 0.1, 0.2, 0.5, 1, 2]);
    assert.deepEqual(logTicks(1e-5, 10), [1e-5, 1e-4, 0.001, 0.01, 0.1, 1, 10]);
  });

  test("the chart: log axis for a wide range, gaps at non-finite points, escaped text", () => {
    const svg = lineChartSvg(
      [
        {
          label: "a < b & c",
          points: [
            [1, 2],
            [2, Number.NaN],
            [3, 0.5],
            [4, 0.01],
          ],
          color: "#000",
        },
      ],
      { title: "t", xLabel: "x", yLabel: "y" },
    );
    assert.match(svg, /y \(log scale\)/);
    assert.match(svg, /a &lt; b &amp; c/);
    const d = /<path d="([^"]+)"/.exec(svg)![1]!;
    assert.equal((d.match(/M/g) ?? []).length, 2, "the NaN breaks the line in two");
    const lin = lineChartSvg(
      [
        {
          label: "l",
          points: [
            [0, 1],
            [1, 2],
          ],
          color: "#000",
        },
      ],
      {
        title: "t",
        xLabel: "x",
        yLabel: "y",
      },
    );
    assert.ok(!lin.includes("log scale"));
  });

  test("progress text, bar and durations", () => {
    assert.equal(bar(0.5, 10), "[#####-----]");
    assert.equal(bar(2, 4), "[####]");
    assert.equal(formatDuration(185), "3m05s");
    assert.equal(formatDuration(7300), "2h01m");
    assert.equal(
      statsText({
        epoch: 1,
        epochs: 5,
        step: 3,
        totalSteps: 800,
        loss: 2.1,
        accuracy: 0.25,
        stepsPerSecond: 40,
      }),
      "epoch 1/5  step   3/800  loss 2.1000  acc  25.0%  40.0 steps/s  eta 20s",
    );
    // The bar is throttled: a redraw at most every interval, and always at the last step.
    let text = "";
    let now = 0;
    const p = new Progress(
      { write: (s) => (text += s), isTTY: true, columns: 100 },
      "bar",
      10,
      () => now,
      0.1,
    );
    const s = { epoch: 1, epochs: 1, totalSteps: 10, loss: 1, accuracy: 0.5, stepsPerSecond: 1 };
    for (let step = 1; step <= 10; step++) {
      now += 30; // 30 ms per step
      p.step({ ...s, step });
    }
    assert.equal((text.match(/\r/g) ?? []).length, 4); // steps 1, 5, 9 and the last
    for (const line of text.split("\r").slice(1)) assert.ok(line.length <= 99 + 3);
  });
});
