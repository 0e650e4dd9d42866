/**
 * @file The functional (optax-style) optimizers over pytrees. A `GradientTransformation` is a
 * pair of pure functions: `init(params)` → state and `update(grads, state, params)` →
 * `[updates, newState]`; `applyUpdates(params, updates)` adds the updates. States are pytrees
 * (`{count, expAvg, expAvgSq}` for Adam), so a whole training step can be written as one pure
 * function and passed through `grad`/`jit`. The rules are the same as the stateful optimizers'.
 */

import { Tensor, type TensorLike } from "../core/tensor.js";
import { TransformError } from "../errors.js";
import { add, astype, div, greater, mul, sqrt, square, sum, where, zerosLike } from "../ops/index.js";
import { flatten, map as treeMap, unflatten } from "../tree.js";
import { adamRule, asGradTensor, type Rule, rmspropRule, type Slots, type Step, sgdRule } from "./rules.js";
import type { Schedule } from "./schedules.js";

/** A learning rate: a number, or a schedule of the step count. */
export type LearningRate = number | Schedule;

/**
 * A pure optimizer: `init(params)` → state; `update(grads, state, params?)` → `[updates, state]`.
 * @example
 * const tx = ad.optim.adam(1e-3);
 * let state = tx.init(params);
 * const [updates, next] = tx.update(grads, state, params);
 * params = ad.optim.applyUpdates(params, updates);
 */
export interface GradientTransformation<S = unknown> {
  init(params: unknown): S;
  update(grads: unknown, state: S, params?: unknown): [unknown, S];
}

/** The state of a rule-based transformation: the step count and one pytree per state slot. */
export type RuleState = { count: Step } & { [slot: string]: unknown };

function leafTensor(x: unknown, what: string): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x === "number") return Tensor._fromHost(Float64Array.of(x), [], "float64");
  throw new TransformError(`${what}: expected tensors (or numbers) as leaves, got ${typeof x}`);
}

function fromRule(name: string, lr: LearningRate, rule: Rule): GradientTransformation<RuleState> {
  if (typeof lr !== "function" && (typeof lr !== "number" || !(lr >= 0)))
    throw new TransformError(`optim.${name}: the learning rate must be a non-negative number or a schedule`);
  return {
    init(params) {
      const [leaves, def] = flatten(params);
      const state: RuleState = { count: 0 };
      for (const s of rule.slots)
        state[s] = unflatten(
          def,
          leaves.map((l) => zerosLike(leafTensor(l, `optim.${name}.init`))),
        );
      return state;
    },
    update(grads, state, params) {
      const [gl, def] = flatten(grads);
      if (state === null || typeof state !== "object" || !("count" in state))
        throw new TransformError(
          `optim.${name}.update: the state must come from init() or a previous update()`,
        );
      let pl: unknown[] | null = null;
      if (params !== undefined) {
        pl = flatten(params)[0];
        if (pl.length !== gl.length)
          throw new TransformError(
            `optim.${name}.update: params have ${pl.length} leaves, grads ${gl.length}`,
          );
      } else if (rule.readsParams)
        throw new TransformError(
          `optim.${name}.update: weight decay needs the params: update(grads, state, params)`,
        );
      const count = state.count;
      const step: Step = typeof count === "number" ? count + 1 : add(count, 1);
      let rate: number;
      if (typeof lr === "number") rate = lr;
      else {
        if (typeof count !== "number")
          throw new TransformError(
            `optim.${name}: a learning-rate schedule needs a concrete step count (the state's count is traced, e.g. under jit); use a fixed lr there`,
          );
        rate = lr(count);
      }
      const slotLeaves = rule.slots.map((s) => {
        const ls = flatten(state[s])[0];
        if (ls.length !== gl.length)
          throw new TransformError(
            `optim.${name}.update: the state has ${ls.length} leaves, grads ${gl.length}`,
          );
        return ls;
      });
      const updates: (Tensor | number)[] = [];
      const newSlots: Tensor[][] = rule.slots.map(() => []);
      gl.forEach((g0, i) => {
        const gt = leafTensor(g0, `optim.${name}.update`);
        const p = pl === null ? gt : leafTensor(pl[i], `optim.${name}.update`);
        const g = asGradTensor(gt, p);
        const slots: Slots = {};
        rule.slots.forEach((s, k) => {
          slots[s] = slotLeaves[k]![i] as Tensor;
        });
        const [d, next] = rule.apply(p, g, slots, step, rate);
        // A number leaf gets a number update (numbers in, numbers out), unless traced.
        updates.push(typeof g0 === "number" && d._trace === null ? d.item() : d);
        rule.slots.forEach((s, k) => newSlots[k]!.push(next[s]!));
      });
      const out: RuleState = { count: step };
      rule.slots.forEach((s, k) => {
        out[s] = unflatten(def, newSlots[k]!);
      });
      return [unflatten(def, updates), out];
    },
  };
}

/** Options of the functional `sgd`. */
export interface SGDTransformOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/**
 * Functional SGD (same rule as `optim.SGD`).
 * @example
 * const tx = ad.optim.sgd(0.1, { momentum: 0.9 });
 */
export function sgd(lr: LearningRate, opts: SGDTransformOptions = {}): GradientTransformation<RuleState> {
  return fromRule(
    "sgd",
    lr,
    sgdRule({
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      nesterov: opts.nesterov ?? false,
      weightDecay: opts.weightDecay ?? 0,
      maximize: false,
    }),
  );
}

/** Options of the functional `adam`/`adamw`. */
export interface AdamTransformOptions {
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

/**
 * Functional Adam (same rule as `optim.Adam`): state `{count, expAvg, expAvgSq}`.
 * @example
 * const tx = ad.optim.adam(1e-3);
 * const state = tx.init({ w: ad.zeros([3]) });
 */
export function adam(
  lr: LearningRate = 1e-3,
  opts: AdamTransformOptions = {},
): GradientTransformation<RuleState> {
  return fromRule(
    "adam",
    lr,
    adamRule(
      {
        betas: opts.betas ?? [0.9, 0.999],
        eps: opts.eps ?? 1e-8,
        weightDecay: opts.weightDecay ?? 0,
        amsgrad: opts.amsgrad ?? false,
        maximize: false,
        decoupled: false,
      },
      "adam",
    ),
  );
}

/**
 * Functional AdamW (decoupled weight decay, default 1e-2 as PyTorch; `update` needs the params).
 * @example
 * const tx = ad.optim.adamw(1e-3, { weightDecay: 0.1 });
 */
export function adamw(
  lr: LearningRate = 1e-3,
  opts: AdamTransformOptions = {},
): GradientTransformation<RuleState> {
  return fromRule(
    "adamw",
    lr,
    adamRule(
      {
        betas: opts.betas ?? [0.9, 0.999],
        eps: opts.eps ?? 1e-8,
        weightDecay: opts.weightDecay ?? 1e-2,
        amsgrad: opts.amsgrad ?? false,
        maximize: false,
        decoupled: true,
      },
      "adamw",
    ),
  );
}

/** Options of the functional `rmsprop`. */
export interface RMSpropTransformOptions {
  alpha?: number;
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  centered?: boolean;
}

/**
 * Functional RMSprop (same rule as `optim.RMSprop`).
 * @example
 * const tx = ad.optim.rmsprop(1e-2);
 */
export function rmsprop(
  lr: LearningRate = 1e-2,
  opts: RMSpropTransformOptions = {},
): GradientTransformation<RuleState> {
  return fromRule(
    "rmsprop",
    lr,
    rmspropRule({
      alpha: opts.alpha ?? 0.99,
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0,
      momentum: opts.momentum ?? 0,
      centered: opts.centered ?? false,
      maximize: false,
    }),
  );
}

/**
 * `params + updates`, leaf by leaf (the structures must match).
 * @example
 * ad.optim.applyUpdates({ w: ad.tensor([1]) }, { w: ad.tensor([-0.5]) }); // { w: [0.5] }
 */
export function applyUpdates<T>(params: T, updates: unknown): T {
  return treeMap(
    (p: TensorLike, u: TensorLike) => {
      if (u === null || u === undefined) return p;
      const r = add(p, u);
      // Numbers stay numbers (when concrete), tensors keep their dtype.
      if (typeof p === "number") return r._trace === null ? r.item() : r;
      return p instanceof Tensor && r.dtype !== p.dtype ? astype(r, p.dtype) : r;
    },
    params,
    updates,
  ) as T;
}

/**
 * Transformations applied in sequence (each one's updates are the next one's gradients), as
 * `optax.chain`; the state is the array of their states.
 * @example
 * const tx = ad.optim.chain(ad.optim.clipByGlobalNorm(1), ad.optim.adam(1e-3));
 */
export function chain(...txs: GradientTransformation[]): GradientTransformation<unknown[]> {
  return {
    init: (params) => txs.map((t) => t.init(params)),
    update(grads, state, params) {
      if (!Array.isArray(state) || state.length !== txs.length)
        throw new TransformError(`optim.chain: expected a state array of ${txs.length} entries`);
      let u = grads;
      const next = txs.map((t, i) => {
        const [v, s] = t.update(u, state[i], params);
        u = v;
        return s;
      });
      return [u, next];
    },
  };
}

/**
 * Scale all gradients by min(1, maxNorm / ‖g‖₂) where ‖g‖₂ is the norm of all leaves together.
 * Stateless; traceable (no host reads).
 * @example
 * const tx = ad.optim.chain(ad.optim.clipByGlobalNorm(1), ad.optim.sgd(0.1));
 */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<Record<string, never>> {
  if (typeof maxNorm !== "number" || !(maxNorm > 0))
    throw new TransformError(
      `optim.clipByGlobalNorm: maxNorm must be a positive number, got ${String(maxNorm)}`,
    );
  return {
    init: () => ({}),
    update(grads, state) {
      const leaves = flatten(grads)[0].map((l) => leafTensor(l, "optim.clipByGlobalNorm"));
      if (leaves.length === 0) return [grads, state];
      let total: Tensor | null = null;
      for (const l of leaves) {
        const s = astype(sum(square(l)), "float64");
        total = total === null ? s : add(total, s);
      }
      const norm = sqrt(total!);
      const factor = where(greater(norm, maxNorm), div(maxNorm, norm), 1);
      const scaled = treeMap((g: TensorLike) => {
        const t = leafTensor(g, "optim.clipByGlobalNorm");
        return mul(t, astype(factor, t.dtype));
      }, grads);
      return [scaled, state];
    },
  };
}

/** The state of `multiSteps`. */
export interface MultiStepsState {
  /** Gradients summed since the last real step. */
  acc: unknown;
  /** Mini-steps taken since the last real step. */
  mini: number;
  /** The inner transformation's state. */
  inner: unknown;
}

/**
 * Gradient accumulation (optax's `MultiSteps`): sums the gradients of `everyK` calls and applies
 * `inner` to their mean on every k-th call; the calls in between return zero updates.
 * @example
 * const tx = ad.optim.multiSteps(ad.optim.adam(1e-3), 4); // one Adam step per 4 micro-batches
 */
export function multiSteps(
  inner: GradientTransformation,
  everyK: number,
): GradientTransformation<MultiStepsState> {
  if (!Number.isInteger(everyK) || everyK < 1)
    throw new TransformError(`optim.multiSteps: everyK must be a positive integer, got ${String(everyK)}`);
  return {
    init: (params) => ({
      acc: treeMap((p: TensorLike) => zerosLike(leafTensor(p, "optim.multiSteps")), params),
      mini: 0,
      inner: inner.init(params),
    }),
    update(grads, state, params) {
      const acc = treeMap((a: Tensor, g: TensorLike) => add(a, g), state.acc, grads);
      if (state.mini + 1 < everyK) {
        const zero = treeMap((g: TensorLike) => zerosLike(leafTensor(g, "optim.multiSteps")), grads);
        return [zero, { acc, mini: state.mini + 1, inner: state.inner }];
      }
      const mean = treeMap((a: Tensor) => div(a, everyK), acc);
      const [u, innerNext] = inner.update(mean, state.inner, params);
      const reset = treeMap((a: Tensor) => zerosLike(a), acc);
      return [u, { acc: reset, mini: 0, inner: innerNext }];
    },
  };
}
