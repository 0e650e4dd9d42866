/**
 * @file Dynamic loss scaling (PyTorch's `GradScaler`): multiply the loss by a large scale so small
 * float16 gradients do not underflow, divide the gradients by it before the update, skip the
 * update when a gradient is Inf/NaN (and halve the scale), and grow the scale after a run of
 * clean steps.
 */

import { noGrad } from "../core/grad-mode.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { TransformError } from "../errors.js";
import { toTensor } from "../ops/convert.js";
import { astype, mul } from "../ops/index.js";
import { SparseTensor } from "../sparse.js";
import { leaves, map as treeMap } from "../tree.js";

/** Options of `GradScaler` (PyTorch's defaults). */
export interface GradScalerOptions {
  /** Starting scale (default 2^16). */
  initScale?: number;
  /** Multiplier after `growthInterval` clean steps (default 2). */
  growthFactor?: number;
  /** Multiplier after a step with Inf/NaN gradients (default 0.5). */
  backoffFactor?: number;
  /** Clean steps before the scale grows (default 2000). */
  growthInterval?: number;
}

/** What the scaler needs of an optimizer: its parameters (with `.grad`) and `step()`. */
export interface ScalableOptimizer {
  step(): unknown;
  readonly params?: readonly Tensor[];
  parameters?(): Iterable<Tensor>;
  /** The parameter groups of an `ad.optim` optimizer. */
  readonly paramGroups?: readonly { readonly params: readonly Tensor[] }[];
}

function paramsOf(opt: ScalableOptimizer): Tensor[] {
  if (opt.params !== undefined) return [...opt.params];
  if (opt.paramGroups !== undefined) return opt.paramGroups.flatMap((g) => g.params);
  if (typeof opt.parameters === "function") return [...opt.parameters()];
  throw new TransformError(
    "GradScaler: the optimizer must expose its parameters as `paramGroups`, `params` or `parameters()`",
  );
}

function allFinite(t: Tensor): boolean {
  // A sparse gradient: its stored rows are all there is (the rest is zero).
  const d = (t instanceof SparseTensor ? t.values : t)._hostData();
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return false;
  return true;
}

/**
 * Dynamic loss scaling for mixed-precision training.
 * @example
 * const scaler = new ad.amp.GradScaler();
 * scaler.scale(loss).backward();
 * scaler.step(optimizer); // unscales, skips the step on Inf/NaN gradients
 * scaler.update();        // adapts the scale
 */
export class GradScaler {
  private scaleValue: number;
  private readonly growthFactor: number;
  private readonly backoffFactor: number;
  private readonly growthInterval: number;
  private growthTracker = 0;
  private foundInf = false;
  /** Optimizers unscaled since the last update, with whether their gradients had an Inf/NaN. */
  private unscaled = new WeakMap<object, boolean>();

  constructor(opts: GradScalerOptions = {}) {
    this.scaleValue = opts.initScale ?? 2 ** 16;
    this.growthFactor = opts.growthFactor ?? 2;
    this.backoffFactor = opts.backoffFactor ?? 0.5;
    this.growthInterval = opts.growthInterval ?? 2000;
    if (
      !(this.scaleValue > 0) ||
      !(this.growthFactor > 1) ||
      !(this.backoffFactor > 0 && this.backoffFactor < 1)
    )
      throw new TransformError("GradScaler: need initScale > 0, growthFactor > 1 and 0 < backoffFactor < 1");
    if (!Number.isInteger(this.growthInterval) || this.growthInterval < 1)
      throw new TransformError("GradScaler: growthInterval must be a positive integer");
  }

  /**
   * The current scale.
   * @example
   * new ad.amp.GradScaler({ initScale: 1024 }).getScale(); // 1024
   */
  getScale(): number {
    return this.scaleValue;
  }

  /**
   * Whether the last unscale found an Inf/NaN gradient (reset by `update`).
   * @example
   * scaler.unscale(opt);
   * if (scaler.foundInfinite) console.log("this step will be skipped");
   */
  get foundInfinite(): boolean {
    return this.foundInf;
  }

  /**
   * `loss · scale` (recorded, so `backward()` gives scaled gradients).
   * @example
   * scaler.scale(loss).backward();
   */
  scale(loss: TensorLike): Tensor {
    const l = toTensor(loss, "GradScaler.scale");
    return mul(l, this.scaleValue);
  }

  /**
   * Divide gradients by the scale: an optimizer's parameter gradients in place (once per step),
   * or a pytree of gradients (returned). Records whether any gradient is Inf/NaN. Sparse
   * gradients stay sparse.
   * @example
   * scaler.unscale(opt); // then clip the true gradients:
   * ad.optim.clipGradNorm(model.parameters(), 1.0);
   * scaler.step(opt);
   */
  unscale<T>(target: ScalableOptimizer | T): T extends ScalableOptimizer ? void : T;
  unscale(target: unknown): unknown {
    const inv = 1 / this.scaleValue;
    let inf = false;
    const one = (g: Tensor) => {
      const u = noGrad(() => astype(mul(g, inv), g.dtype));
      if (!allFinite(u)) inf = this.foundInf = true;
      return u;
    };
    if (
      target !== null &&
      typeof target === "object" &&
      "step" in target &&
      typeof target.step === "function"
    ) {
      const opt = target as ScalableOptimizer;
      if (this.unscaled.has(opt))
        throw new TransformError(
          "GradScaler.unscale: already unscaled this optimizer since the last update()",
        );
      for (const p of paramsOf(opt)) {
        const g = p.grad;
        if (g === null) continue;
        // A sparse gradient stays sparse: only its stored rows are scaled.
        p.grad = g instanceof SparseTensor ? g.mapValues(one) : one(g);
      }
      // Per optimizer, as PyTorch: one optimizer's overflow skips that optimizer's step only.
      this.unscaled.set(opt, inf);
      return undefined;
    }
    return treeMap(
      (g: unknown) =>
        g instanceof SparseTensor
          ? g.mapValues(one)
          : g instanceof Tensor
            ? one(g)
            : typeof g === "number"
              ? g * inv
              : g,
      target,
    );
  }

  /**
   * Unscale (if not done yet) and run `optimizer.step()` unless a gradient was Inf/NaN. Returns
   * whether it stepped.
   * @example
   * const stepped = scaler.step(opt);
   */
  step(optimizer: ScalableOptimizer): boolean {
    if (!this.unscaled.has(optimizer)) this.unscale(optimizer);
    if (this.unscaled.get(optimizer) === true) return false;
    optimizer.step();
    return true;
  }

  /**
   * Adapt the scale: back off after an Inf/NaN step, grow after `growthInterval` clean ones (or
   * set `newScale`). Call once per iteration, after `step`.
   * @example
   * scaler.update();
   */
  update(newScale?: number): void {
    if (newScale !== undefined) this.scaleValue = newScale;
    else if (this.foundInf) {
      this.scaleValue *= this.backoffFactor;
      this.growthTracker = 0;
    } else if (++this.growthTracker >= this.growthInterval) {
      this.scaleValue *= this.growthFactor;
      this.growthTracker = 0;
    }
    this.foundInf = false;
    this.unscaled = new WeakMap();
  }

  /**
   * Whether every leaf of a gradient pytree is finite.
   * @example
   * ad.amp.GradScaler.allFinite({ w: ad.tensor([1, Infinity]) }); // false
   */
  static allFinite(grads: unknown): boolean {
    return leaves(grads).every((g) => !(g instanceof Tensor) || allFinite(g));
  }
}
