/**
 * @file Learning-rate schedules: plain functions `step ↦ lr` (optax style, usable as the `lr` of
 * the functional optimizers), `LRScheduler`, which drives a stateful optimizer's `lr` from such a
 * function, and PyTorch's scheduler classes (`StepLR`, `ExponentialLR`, `CosineAnnealingLR`,
 * `LinearLR`, `LambdaLR`), which scale each group's initial rate. Call `scheduler.step()` once per
 * optimizer step, as in PyTorch.
 */

import { ShapeError, TransformError } from "../errors.js";
import type { Optimizer } from "./optimizers.js";

/** A learning rate as a function of the 0-based step count. */
export type Schedule = (step: number) => number;

function checkSteps(op: string, vals: Record<string, number>): void {
  for (const [k, v] of Object.entries(vals))
    if (!Number.isInteger(v) || v < 0)
      throw new ShapeError(`${op}: ${k} must be a non-negative integer, got ${String(v)}`);
}

/**
 * The same value at every step.
 * @example
 * ad.optim.constantSchedule(0.1)(100); // 0.1
 */
export function constantSchedule(value: number): Schedule {
  return () => value;
}

/**
 * Step decay (PyTorch's `StepLR`): init·gamma^⌊step / stepSize⌋.
 * @example
 * const s = ad.optim.stepSchedule(0.1, 10, 0.5);
 * [s(0), s(9), s(10), s(25)]; // [0.1, 0.1, 0.05, 0.025]
 */
export function stepSchedule(init: number, stepSize: number, gamma = 0.1): Schedule {
  if (!Number.isInteger(stepSize) || stepSize < 1)
    throw new ShapeError(`stepSchedule: stepSize must be a positive integer, got ${String(stepSize)}`);
  return (step) => init * gamma ** Math.floor(step / stepSize);
}

/**
 * Cosine decay from `init` to `minValue` over `decaySteps` steps, then constant (PyTorch's
 * `CosineAnnealingLR` closed form for step ≤ decaySteps):
 * min + (init − min)·(1 + cos(π·step/decaySteps))/2.
 * @example
 * const s = ad.optim.cosineSchedule(1, 100);
 * [s(0), s(50), s(100), s(200)]; // [1, 0.5, 0, 0]
 */
export function cosineSchedule(init: number, decaySteps: number, opts: { minValue?: number } = {}): Schedule {
  checkSteps("cosineSchedule", { decaySteps });
  const lo = opts.minValue ?? 0;
  return (step) => {
    if (decaySteps === 0) return lo;
    const t = Math.min(Math.max(step, 0), decaySteps) / decaySteps;
    return lo + ((init - lo) * (1 + Math.cos(Math.PI * t))) / 2;
  };
}

/**
 * Linear warmup from `init` (default 0) to `peak` over `warmupSteps` steps, then `after`
 * (shifted to start at 0), or `peak` when no `after` is given.
 * @example
 * const s = ad.optim.warmupSchedule(1, 4);
 * [s(0), s(1), s(4), s(10)]; // [0, 0.25, 1, 1]
 */
export function warmupSchedule(
  peak: number,
  warmupSteps: number,
  opts: { init?: number; after?: Schedule } = {},
): Schedule {
  checkSteps("warmupSchedule", { warmupSteps });
  const init = opts.init ?? 0;
  const after = opts.after;
  if (after !== undefined && typeof after !== "function")
    throw new TransformError("warmupSchedule: after must be a schedule (a function of the step)");
  return (step) => {
    if (step < warmupSteps) return init + ((peak - init) * step) / warmupSteps;
    return after === undefined ? peak : after(step - warmupSteps);
  };
}

/**
 * Linear warmup to `peak` over `warmupSteps`, then cosine decay to `minValue` at `totalSteps`
 * (the usual transformer schedule).
 * @example
 * const s = ad.optim.warmupCosineSchedule(1, 10, 110);
 * [s(5), s(10), s(60), s(110)]; // [0.5, 1, 0.5, 0]
 */
export function warmupCosineSchedule(
  peak: number,
  warmupSteps: number,
  totalSteps: number,
  opts: { init?: number; minValue?: number } = {},
): Schedule {
  checkSteps("warmupCosineSchedule", { warmupSteps, totalSteps });
  if (totalSteps < warmupSteps)
    throw new ShapeError(`warmupCosineSchedule: totalSteps (${totalSteps}) < warmupSteps (${warmupSteps})`);
  return warmupSchedule(peak, warmupSteps, {
    init: opts.init ?? 0,
    after: cosineSchedule(peak, totalSteps - warmupSteps, { minValue: opts.minValue ?? 0 }),
  });
}

/**
 * Drives an optimizer's learning rate from a schedule: sets every group's `lr` to `schedule(0)`
 * now and to `schedule(t)` after the t-th call of `step()` (call it after `optimizer.step()`).
 * @example
 * const opt = new ad.optim.SGD(params, { lr: 0.1 });
 * const sched = new ad.optim.LRScheduler(opt, ad.optim.warmupCosineSchedule(0.1, 100, 1000));
 * // each iteration: loss.backward(); opt.step(); opt.zeroGrad(); sched.step();
 */
export class LRScheduler {
  /** Calls of `step()` so far. */
  stepCount = 0;
  constructor(
    readonly optimizer: Optimizer,
    readonly schedule: Schedule,
  ) {
    if (typeof schedule !== "function")
      throw new TransformError("LRScheduler: schedule must be a function of the step");
    this.apply();
  }

  private apply(): void {
    const lr = this.schedule(this.stepCount);
    if (typeof lr !== "number" || !Number.isFinite(lr))
      throw new ShapeError(`LRScheduler: the schedule gave ${String(lr)} at step ${this.stepCount}`);
    for (const g of this.optimizer.paramGroups) g.lr = lr;
  }

  /** Advance one step and set the new learning rate. @example sched.step(); */
  step(): void {
    this.stepCount++;
    this.apply();
  }

  /** The learning rate now in effect. @example sched.lastLr */
  get lastLr(): number {
    return this.optimizer.paramGroups[0]!.lr;
  }

  /** The learning rate of every group now (as PyTorch's `get_last_lr()`). @example sched.getLastLr(); // [0.1] */
  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }
}

/**
 * The base of the PyTorch-style schedulers (`StepLR`, `ExponentialLR`, `CosineAnnealingLR`,
 * `LinearLR`, `LambdaLR`): each parameter group's learning rate is a function of its initial
 * learning rate and the number of `step()` calls so far (PyTorch's `last_epoch`), in closed form.
 * The constructor sets the rates for step 0; call `step()` after each `optimizer.step()`.
 * @example
 * const sched = new ad.optim.StepLR(opt, 30, 0.1);
 * // each iteration: opt.step(); sched.step();
 */
export abstract class GroupScheduler {
  /** Calls of `step()` so far. */
  stepCount = 0;
  /** Each group's learning rate when the scheduler was created. */
  readonly baseLrs: number[];
  constructor(readonly optimizer: Optimizer) {
    if (optimizer === null || typeof optimizer !== "object" || !Array.isArray(optimizer.paramGroups))
      throw new TransformError(`${this.constructor.name}: expected an ad.optim optimizer`);
    this.baseLrs = optimizer.paramGroups.map((g) => g.lr);
  }

  /** The learning rate of a group with initial rate `base` after `t` steps. */
  protected abstract lrAt(base: number, t: number): number;

  /** Set every group's rate for the current step count. */
  protected apply(): void {
    this.optimizer.paramGroups.forEach((g, i) => {
      const lr = this.lrAt(this.baseLrs[i] ?? this.baseLrs[0]!, this.stepCount);
      if (typeof lr !== "number" || !Number.isFinite(lr))
        throw new ShapeError(
          `${this.constructor.name}: the learning rate at step ${this.stepCount} is ${lr}`,
        );
      g.lr = lr;
    });
  }

  /** Advance one step and set the new learning rates. @example sched.step(); */
  step(): void {
    this.stepCount++;
    this.apply();
  }

  /** The learning rate of every group now (PyTorch's `get_last_lr()`). @example sched.getLastLr(); // [0.1] */
  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }
}

/**
 * lr = initial · lrLambda(t) (PyTorch's `LambdaLR`).
 * @example
 * new ad.optim.LambdaLR(opt, (t) => 0.95 ** t);
 */
export class LambdaLR extends GroupScheduler {
  constructor(
    optimizer: Optimizer,
    readonly lrLambda: (step: number) => number,
  ) {
    super(optimizer);
    if (typeof lrLambda !== "function") throw new TransformError("LambdaLR: lrLambda must be a function");
    this.apply();
  }
  protected lrAt(base: number, t: number): number {
    return base * this.lrLambda(t);
  }
}

/**
 * lr = initial · gamma^⌊t / stepSize⌋ (PyTorch's `StepLR`).
 * @example
 * const sched = new ad.optim.StepLR(opt, 10, 0.5); // halve every 10 steps
 */
export class StepLR extends GroupScheduler {
  constructor(
    optimizer: Optimizer,
    readonly stepSize: number,
    readonly gamma = 0.1,
  ) {
    super(optimizer);
    if (!Number.isInteger(stepSize) || stepSize < 1)
      throw new ShapeError(`StepLR: stepSize must be a positive integer, got ${String(stepSize)}`);
    this.apply();
  }
  protected lrAt(base: number, t: number): number {
    return base * this.gamma ** Math.floor(t / this.stepSize);
  }
}

/**
 * lr = initial · gammaᵗ (PyTorch's `ExponentialLR`).
 * @example
 * new ad.optim.ExponentialLR(opt, 0.99);
 */
export class ExponentialLR extends GroupScheduler {
  constructor(
    optimizer: Optimizer,
    readonly gamma: number,
  ) {
    super(optimizer);
    if (typeof gamma !== "number" || !(gamma > 0))
      throw new ShapeError(`ExponentialLR: gamma must be a positive number, got ${String(gamma)}`);
    this.apply();
  }
  protected lrAt(base: number, t: number): number {
    return base * this.gamma ** t;
  }
}

/**
 * lr = etaMin + (initial − etaMin)·(1 + cos(π·t/tMax))/2 (PyTorch's `CosineAnnealingLR` closed
 * form, which keeps oscillating after tMax).
 * @example
 * new ad.optim.CosineAnnealingLR(opt, 100); // initial lr → 0 over 100 steps
 */
export class CosineAnnealingLR extends GroupScheduler {
  constructor(
    optimizer: Optimizer,
    readonly tMax: number,
    readonly etaMin = 0,
  ) {
    super(optimizer);
    if (!Number.isInteger(tMax) || tMax < 1)
      throw new ShapeError(`CosineAnnealingLR: tMax must be a positive integer, got ${String(tMax)}`);
    this.apply();
  }
  protected lrAt(base: number, t: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * t) / this.tMax))) / 2;
  }
}

/**
 * A linear ramp of the factor from `startFactor` to `endFactor` over `totalIters` steps, then
 * constant (PyTorch's `LinearLR`, the usual warmup).
 * @example
 * new ad.optim.LinearLR(opt, 0.1, 1, 100); // warm up from lr/10 over 100 steps
 */
export class LinearLR extends GroupScheduler {
  constructor(
    optimizer: Optimizer,
    readonly startFactor = 1 / 3,
    readonly endFactor = 1,
    readonly totalIters = 5,
  ) {
    super(optimizer);
    checkSteps("LinearLR", { totalIters });
    this.apply();
  }
  protected lrAt(base: number, t: number): number {
    const frac = this.totalIters === 0 ? 1 : Math.min(t, this.totalIters) / this.totalIters;
    return base * (this.startFactor + (this.endFactor - this.startFactor) * frac);
  }
}
