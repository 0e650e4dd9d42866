/**
 * @file Training progress for `adjoint train`: on a terminal, one line redrawn in place (carriage
 * return and erase-to-end) with a bar, the step, the loss, the accuracy, steps/s and the time
 * left; elsewhere (a pipe, a file, CI logs) plain lines at regular step intervals, which never
 * contain control characters. Redraws are throttled so that drawing never costs a measurable part
 * of a step.
 */

/** Where progress text goes, and whether it is a terminal. */
export interface ProgressSink {
  write(text: string): void;
  readonly isTTY: boolean;
  /** Terminal width in characters (80 when unknown). */
  readonly columns: number;
}

/** The numbers shown after each step. */
export interface StepStats {
  readonly epoch: number;
  readonly epochs: number;
  /** 1-based step over the whole run. */
  readonly step: number;
  readonly totalSteps: number;
  /** Mean training loss of the current epoch so far. */
  readonly loss: number;
  /** Mean training accuracy (0–1) of the current epoch so far. */
  readonly accuracy: number;
  readonly stepsPerSecond: number;
  /** Extra text, e.g. the loss scale. */
  readonly note?: string;
}

/**
 * A duration for people: `42s`, `3m05s`, `1h02m`.
 * @example
 * formatDuration(185); // "3m05s"
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * The fields of a progress line (without the bar): `epoch 2/5  step 340/800  loss 0.2311 …`.
 * `compact` drops the epoch and uses single spaces, for narrow terminals.
 * @example
 * statsText({ epoch: 1, epochs: 5, step: 3, totalSteps: 800, loss: 2.1, accuracy: 0.25, stepsPerSecond: 30 });
 */
export function statsText(s: StepStats, compact = false): string {
  const width = String(s.totalSteps).length;
  const eta = s.stepsPerSecond > 0 ? formatDuration((s.totalSteps - s.step) / s.stepsPerSecond) : "?";
  // Padded fields, so that a redrawn line does not jitter (the eta, last, may).
  const fields = [
    `step ${String(s.step).padStart(width)}/${s.totalSteps}`,
    `loss ${s.loss.toFixed(4)}`,
    `acc ${(100 * s.accuracy).toFixed(1).padStart(5)}%`,
    `${s.stepsPerSecond.toFixed(1).padStart(4)} steps/s`,
    `eta ${eta}`,
    ...(s.note === undefined ? [] : [s.note]),
  ];
  return compact ? fields.join(" ") : [`epoch ${s.epoch}/${s.epochs}`, ...fields].join("  ");
}

/**
 * A text bar `[#####-----]` of `width` cells, filled to `fraction`.
 * @example
 * bar(0.5, 10); // "[#####-----]"
 */
export function bar(fraction: number, width: number): string {
  const w = Math.max(1, width);
  const filled = Math.min(w, Math.max(0, Math.round(fraction * w)));
  return `[${"#".repeat(filled)}${"-".repeat(w - filled)}]`;
}

/** How to show progress: an updating line, periodic lines, or nothing. */
export type ProgressStyle = "bar" | "lines" | "none";

/**
 * Shows training progress in one of three styles. Call `step` after every training step and
 * `message` for lines that stay (epoch summaries); `finish` ends an updating line.
 * @example
 * const p = new Progress(sink, "lines", 800, () => performance.now());
 * p.step(stats);
 */
export class Progress {
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drawn = false;
  private longest = 0;
  private readonly every: number;

  constructor(
    private readonly sink: ProgressSink,
    private readonly style: ProgressStyle,
    totalSteps: number,
    private readonly now: () => number,
    /** Seconds between redraws of the bar. */
    private readonly interval = 0.1,
  ) {
    // About 20 lines over a run, and never more than one per step.
    this.every = Math.max(1, Math.round(totalSteps / 20));
  }

  /** Report a finished step; `force` redraws the bar now (e.g. at the end of an epoch). */
  step(s: StepStats, force = false): void {
    if (this.style === "none") return;
    if (this.style === "lines") {
      if (s.step === 1 || s.step % this.every === 0 || s.step === s.totalSteps)
        this.sink.write(`${statsText(s)}\n`);
      return;
    }
    const t = this.now() / 1000;
    if (t - this.lastDraw < this.interval && s.step !== s.totalSteps && !force) return;
    this.lastDraw = t;
    // "[" + cells + "] " + text must fit in columns − 1 (a full last column wraps on some
    // terminals); on a narrow terminal the bar goes first, then the spacing and the epoch.
    const full = statsText(s);
    // The bar's width follows the longest text so far, so it does not jump between redraws.
    this.longest = Math.max(this.longest, full.length);
    const cells = Math.min(30, this.sink.columns - 4 - this.longest);
    const line =
      cells >= 5
        ? `${bar(s.step / s.totalSteps, cells)} ${full}`
        : full.length < this.sink.columns
          ? full
          : statsText(s, true);
    // Carriage return, the line, then erase whatever a longer previous line left.
    this.sink.write(`\r${line.slice(0, Math.max(1, this.sink.columns - 1))}\x1b[K`);
    this.drawn = true;
  }

  /** A line that stays (it does not overwrite the bar's last state, it follows it). */
  message(text: string): void {
    if (this.style === "none") return;
    this.finish();
    this.sink.write(`${text}\n`);
  }

  /** End the updating line, if one is drawn. */
  finish(): void {
    if (this.drawn) {
      this.sink.write("\n");
      this.drawn = false;
      this.lastDraw = Number.NEGATIVE_INFINITY;
    }
  }
}
