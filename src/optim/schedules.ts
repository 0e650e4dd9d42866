/**
 * @file Learning-rate schedules: plain functions `step ↦ lr` (optax style, usable as the `lr` of
 * the functional optimizers) and `LRScheduler`, which drives a stateful optimizer's `lr` from a
 * schedule (call `scheduler.step()` once per optimizer step, as in PyTorch).
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
}
