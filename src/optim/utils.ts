/**
 * @file Training helpers around the stateful optimizers: gradient clipping (`clipGradNorm`,
 * `clipGradValue`), gradient accumulation over micro-batches (`GradientAccumulator`), and an
 * exponential moving average of parameters (`EMA`, and the functional `emaUpdate`).
 */

import { noGrad } from "../core/grad-mode.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { AnomalyError, ShapeError, TransformError } from "../errors.js";
import { Module } from "../nn/module.js";
import { abs, add, astype, max, maximum, minimum, mul, pow, square, sum } from "../ops/index.js";
import { SparseTensor } from "../sparse.js";
import { map as treeMap } from "../tree.js";
import type { Optimizer } from "./optimizers.js";

function paramList(params: Iterable<Tensor> | Tensor | Module<never[], unknown>, op: string): Tensor[] {
  if (params instanceof Module) return params.parameters();
  if (params instanceof Tensor) return [params];
  if (params === null || typeof params !== "object" || !(Symbol.iterator in params))
    throw new TransformError(`${op}: expected parameters (a Tensor, an iterable of Tensors, or a Module)`);
  const list = [...params];
  list.forEach((p, i) => {
    if (!(p instanceof Tensor)) throw new TransformError(`${op}: parameter ${i} is not a Tensor`);
  });
  return list;
}

/** Options of `clipGradNorm`. */
export interface ClipGradNormOptions {
  /** The p of the p-norm (default 2; `Infinity` for the max norm). */
  normType?: number;
  /** Throw an `AnomalyError` when the total norm is NaN or infinite (default false). */
  errorIfNonfinite?: boolean;
}

/**
 * Rescale the gradients of `params` in place so that their total norm (the norm of all
 * gradients together, as one vector) is at most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`
 * (coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the total norm
 * before clipping, as a JS number. Sparse gradients are coalesced and scaled in their values. The
 * third argument is `{normType, errorIfNonfinite}` or, as PyTorch's, the norm type itself.
 * @example
 * loss.backward();
 * const norm = ad.optim.clipGradNorm(model.parameters(), 1.0);
 * opt.step();
 */
export function clipGradNorm(
  params: Iterable<Tensor> | Tensor | Module<never[], unknown>,
  maxNorm: number,
  opts: ClipGradNormOptions | number = {},
): number {
  // A number is PyTorch's positional norm_type: clip_grad_norm_(params, max_norm, norm_type).
  if (typeof opts === "number") opts = { normType: opts };
  const ps = paramList(params, "clipGradNorm").filter((p) => p.grad !== null);
  const normType = opts.normType ?? 2;
  if (typeof maxNorm !== "number" || !(maxNorm >= 0))
    throw new ShapeError(`clipGradNorm: maxNorm must be a non-negative number, got ${String(maxNorm)}`);
  if (typeof normType !== "number" || !(normType > 0))
    throw new ShapeError(`clipGradNorm: normType must be a positive number, got ${String(normType)}`);
  if (ps.length === 0) return 0;
  return noGrad(() => {
    const grads = ps.map((p) => {
      const g = p.grad!;
      return g instanceof SparseTensor ? g.coalesce() : g;
    });
    const values = grads.map((g) => astype(g instanceof SparseTensor ? g.values : g, "float64"));
    let total: number;
    if (normType === Number.POSITIVE_INFINITY)
      total = Math.max(...values.map((v) => (v.size === 0 ? 0 : max(abs(v)).item())));
    else {
      let acc = 0;
      for (const v of values) acc += sum(normType === 2 ? square(v) : pow(abs(v), normType)).item();
      total = normType === 2 ? Math.sqrt(acc) : acc ** (1 / normType);
    }
    if (!Number.isFinite(total) && opts.errorIfNonfinite === true)
      throw new AnomalyError(`clipGradNorm: the total norm of the gradients is ${total}`);
    const coef = maxNorm / (total + 1e-6);
    if (coef < 1)
      ps.forEach((p, i) => {
        const g = grads[i]!;
        p.grad = g instanceof SparseTensor ? g.mapValues((v) => mul(v, coef)) : mul(g, coef);
      });
    return total;
  });
}

/**
 * Clamp every gradient entry to [−clipValue, clipValue] in place (`torch.nn.utils.clip_grad_value_`).
 * @example
 * ad.optim.clipGradValue(model.parameters(), 0.5);
 */
export function clipGradValue(
  params: Iterable<Tensor> | Tensor | Module<never[], unknown>,
  clipValue: number,
): void {
  if (typeof clipValue !== "number" || !(clipValue >= 0))
    throw new ShapeError(`clipGradValue: clipValue must be a non-negative number, got ${String(clipValue)}`);
  noGrad(() => {
    for (const p of paramList(params, "clipGradValue")) {
      const g = p.grad;
      if (g === null) continue;
      const clamp = (v: Tensor) => minimum(maximum(v, -clipValue), clipValue);
      p.grad = g instanceof SparseTensor ? g.coalesce().mapValues(clamp) : clamp(g);
    }
  });
}

/**
 * Gradient accumulation over micro-batches: call `loss.backward()` for each micro-batch and then
 * `accumulator.step()`; every `everyK`-th call averages the summed gradients (divides by k, unless
 * `{average: false}`), runs `optimizer.step()` and `optimizer.zeroGrad()`, and returns true.
 * @example
 * const acc = new ad.optim.GradientAccumulator(opt, 4);
 * for (const batch of microBatches) {
 *   lossOf(batch).backward();
 *   acc.step(); // updates on every 4th call
 * }
 */
export class GradientAccumulator {
  /** Micro-batches accumulated since the last update. */
  micro = 0;
  readonly average: boolean;
  constructor(
    readonly optimizer: Optimizer,
    readonly everyK: number,
    opts: { average?: boolean } = {},
  ) {
    if (!Number.isInteger(everyK) || everyK < 1)
      throw new ShapeError(`GradientAccumulator: everyK must be a positive integer, got ${String(everyK)}`);
    this.average = opts.average ?? true;
  }

  /** Count one micro-batch; on every k-th, update the parameters. Returns whether it updated. @example acc.step() */
  step(): boolean {
    this.micro++;
    if (this.micro < this.everyK) return false;
    this.micro = 0;
    if (this.average && this.everyK > 1)
      noGrad(() => {
        for (const g of this.optimizer.paramGroups)
          for (const p of g.params) {
            const gr = p.grad;
            if (gr === null) continue;
            const k = this.everyK;
            p.grad = gr instanceof SparseTensor ? gr.mapValues((v) => mul(v, 1 / k)) : mul(gr, 1 / k);
          }
      });
    this.optimizer.step();
    this.optimizer.zeroGrad();
    return true;
  }
}

/** Options of `EMA`. */
export interface EMAOptions {
  /** Decay of the average (default 0.999). */
  decay?: number;
  /** Warm up the decay as min(decay, (1 + n)/(10 + n)) after n updates (default false). */
  warmup?: boolean;
}

/**
 * An exponential moving average of parameters: `update()` sets avg ← decay·avg + (1 − decay)·p;
 * `copyTo()` writes the averages into the parameters (in place, e.g. for evaluation), with
 * `store()`/`restore()` to swap back.
 * @example
 * const ema = new ad.optim.EMA(model.parameters(), { decay: 0.99 });
 * // after each optimizer step:
 * ema.update();
 * // evaluate with the averaged weights:
 * ema.store(); ema.copyTo(); evaluate(model); ema.restore();
 */
export class EMA {
  /** The averages, one per parameter. */
  readonly shadow: Tensor[];
  readonly params: Tensor[];
  readonly decay: number;
  readonly warmup: boolean;
  /** Updates so far. */
  numUpdates = 0;
  private stored: Tensor[] | null = null;

  constructor(params: Iterable<Tensor> | Module<never[], unknown>, opts: EMAOptions = {}) {
    this.params = paramList(params, "EMA");
    this.decay = opts.decay ?? 0.999;
    if (!(this.decay >= 0 && this.decay <= 1))
      throw new ShapeError(`EMA: decay must lie in [0, 1], got ${this.decay}`);
    this.warmup = opts.warmup ?? false;
    this.shadow = this.params.map((p) => p.detach());
  }

  /** The decay the next update uses. */
  currentDecay(): number {
    const n = this.numUpdates;
    return this.warmup ? Math.min(this.decay, (1 + n) / (10 + n)) : this.decay;
  }

  /** Move the averages towards the current parameters. @example ema.update() */
  update(): void {
    const d = this.currentDecay();
    noGrad(() => {
      this.params.forEach((p, i) => {
        this.shadow[i] = add(mul(this.shadow[i]!, d), mul(p.detach(), 1 - d));
      });
    });
    this.numUpdates++;
  }

  /** Write the averages into the parameters (or into `targets`). @example ema.copyTo() */
  copyTo(targets: readonly Tensor[] = this.params): void {
    if (targets.length !== this.shadow.length)
      throw new ShapeError(`EMA.copyTo: ${targets.length} targets for ${this.shadow.length} averages`);
    noGrad(() => targets.forEach((t, i) => t.copy_(this.shadow[i]!)));
  }

  /** Remember the current parameter values (for `restore`). @example ema.store() */
  store(): void {
    this.stored = this.params.map((p) => p.detach());
  }

  /** Put back the values saved by `store()`. @example ema.restore() */
  restore(): void {
    if (this.stored === null) throw new TransformError("EMA.restore: nothing stored; call store() first");
    const s = this.stored;
    noGrad(() => this.params.forEach((p, i) => p.copy_(s[i]!)));
    this.stored = null;
  }
}

/**
 * Functional EMA over pytrees: `decay·avg + (1 − decay)·params`, leaf by leaf.
 * @example
 * avg = ad.optim.emaUpdate(avg, params, 0.99);
 */
export function emaUpdate<T>(avg: T, params: unknown, decay: number): T {
  return treeMap((a: TensorLike, p: TensorLike) => add(mul(a, decay), mul(p, 1 - decay)), avg, params) as T;
}
