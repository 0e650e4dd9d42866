/**
 * @file The update rules of the optimizers, written once over tensors and shared by the
 * stateful optimizers (`new optim.Adam(params, ...)`, applied in place, densely or to the rows of
 * a sparse gradient) and the functional transformations (`optim.adam(lr)`, over pytrees). A rule
 * maps (parameter, gradient, state slots, step count, learning rate) to the additive update and
 * the new slots; the formulas are PyTorch's (see each rule).
 */

import { Tensor, type TensorLike } from "../core/tensor.js";
import type { DType } from "../dtype.js";
import { ShapeError } from "../errors.js";
import { add, astype, div, equal, maximum, mul, neg, pow, sqrt, square, sub, where } from "../ops/index.js";

/** The 1-based step count: a number, or a 0-d tensor inside `jit` (functional form). */
export type Step = number | Tensor;

/** The state tensors of one parameter, by name. */
export type Slots = Record<string, Tensor>;

/** One optimizer's update rule. */
export interface Rule {
  /** Names of the state tensors, each zero-initialised with the parameter's shape and dtype. */
  readonly slots: readonly string[];
  /** Whether the update reads the parameter (weight decay). */
  readonly readsParams: boolean;
  /** The additive update `Δ` (p ← p + Δ) and the new slots. */
  apply(p: Tensor, g: Tensor, s: Slots, step: Step, lr: number): [Tensor, Slots];
}

/** 1 − βᵗ as a number, or a tensor of `dtype` for a traced step. */
function biasCorrection(beta: number, step: Step, dtype: DType): number | Tensor {
  if (typeof step === "number") return 1 - beta ** step;
  return astype(sub(1, pow(beta, step)), dtype);
}

function checkNonNeg(op: string, vals: Record<string, number>): void {
  for (const [k, v] of Object.entries(vals))
    if (typeof v !== "number" || !(v >= 0))
      throw new ShapeError(`${op}: ${k} must be a non-negative number, got ${String(v)}`);
}

/** Hyperparameters of SGD. */
export interface SGDHyper {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
  maximize: boolean;
}

/**
 * @internal PyTorch's SGD: g ← g + wd·p; with momentum, b ← μ·b + (1 − dampening)·g (b = g at step 1),
 * and g ← g + μ·b (Nesterov) or g ← b; Δ = −lr·g.
 */
export function sgdRule(h: SGDHyper): Rule {
  checkNonNeg("SGD", { momentum: h.momentum, dampening: h.dampening, weightDecay: h.weightDecay });
  if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0))
    throw new ShapeError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening");
  return {
    slots: h.momentum !== 0 ? ["momentumBuffer"] : [],
    readsParams: h.weightDecay !== 0,
    apply(p, g, s, step, lr) {
      if (h.maximize) g = neg(g);
      if (h.weightDecay !== 0) g = add(g, mul(p, h.weightDecay));
      if (h.momentum === 0) return [mul(g, -lr), {}];
      const upd = add(mul(s.momentumBuffer!, h.momentum), h.dampening === 0 ? g : mul(g, 1 - h.dampening));
      const buf =
        h.dampening === 0
          ? upd
          : typeof step === "number"
            ? step === 1
              ? g
              : upd
            : where(equal(step, 1), g, upd);
      const d = h.nesterov ? add(g, mul(buf, h.momentum)) : buf;
      return [mul(d, -lr), { momentumBuffer: buf }];
    },
  };
}

/** Hyperparameters of Adam and AdamW. */
export interface AdamHyper {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
  /** AdamW: decoupled weight decay p ← p·(1 − lr·wd) instead of the L2 term g ← g + wd·p. */
  decoupled: boolean;
}

/**
 * @internal PyTorch's Adam/AdamW: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², denominator
 * √v / √(1 − β₂ᵗ) + eps (v ← max(vmax, v) with amsgrad), Δ = −lr/(1 − β₁ᵗ) · m / denominator;
 * Adam adds wd·p to g, AdamW subtracts lr·wd·p from the parameter.
 */
export function adamRule(h: AdamHyper, name: string): Rule {
  const [b1, b2] = h.betas;
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1))
    throw new ShapeError(`${name}: betas must lie in [0, 1), got [${b1}, ${b2}]`);
  checkNonNeg(name, { eps: h.eps, weightDecay: h.weightDecay });
  return {
    slots: h.amsgrad ? ["expAvg", "expAvgSq", "maxExpAvgSq"] : ["expAvg", "expAvgSq"],
    readsParams: h.weightDecay !== 0,
    apply(p, g, s, step, lr) {
      if (h.maximize) g = neg(g);
      if (h.weightDecay !== 0 && !h.decoupled) g = add(g, mul(p, h.weightDecay));
      const m = add(mul(s.expAvg!, b1), mul(g, 1 - b1));
      const v = add(mul(s.expAvgSq!, b2), mul(square(g), 1 - b2));
      const out: Slots = { expAvg: m, expAvgSq: v };
      let vUse = v;
      if (h.amsgrad) vUse = out.maxExpAvgSq = maximum(s.maxExpAvgSq!, v);
      const bc1 = biasCorrection(b1, step, p.dtype);
      const bc2 = biasCorrection(b2, step, p.dtype);
      const denom = add(div(sqrt(vUse), typeof bc2 === "number" ? Math.sqrt(bc2) : sqrt(bc2)), h.eps);
      const stepSize: TensorLike = typeof bc1 === "number" ? -lr / bc1 : div(-lr, bc1);
      let d = mul(div(m, denom), stepSize);
      if (h.decoupled && h.weightDecay !== 0) d = sub(d, mul(p, lr * h.weightDecay));
      return [d, out];
    },
  };
}

/** Hyperparameters of RMSprop. */
export interface RMSpropHyper {
  alpha: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  centered: boolean;
  maximize: boolean;
}

/**
 * @internal PyTorch's RMSprop: s ← αs + (1 − α)g², denominator √s + eps (centered: √(s − ḡ²) + eps with
 * ḡ ← αḡ + (1 − α)g); with momentum b ← μb + g/denominator and Δ = −lr·b, else Δ = −lr·g/denominator.
 */
export function rmspropRule(h: RMSpropHyper): Rule {
  checkNonNeg("RMSprop", { alpha: h.alpha, eps: h.eps, weightDecay: h.weightDecay, momentum: h.momentum });
  const slots = ["squareAvg"];
  if (h.momentum > 0) slots.push("momentumBuffer");
  if (h.centered) slots.push("gradAvg");
  return {
    slots,
    readsParams: h.weightDecay !== 0,
    apply(p, g, s, _step, lr) {
      if (h.maximize) g = neg(g);
      if (h.weightDecay !== 0) g = add(g, mul(p, h.weightDecay));
      const sq = add(mul(s.squareAvg!, h.alpha), mul(square(g), 1 - h.alpha));
      const out: Slots = { squareAvg: sq };
      let avg: Tensor;
      if (h.centered) {
        const ga = add(mul(s.gradAvg!, h.alpha), mul(g, 1 - h.alpha));
        out.gradAvg = ga;
        avg = add(sqrt(sub(sq, square(ga))), h.eps);
      } else avg = add(sqrt(sq), h.eps);
      if (h.momentum > 0) {
        const buf = add(mul(s.momentumBuffer!, h.momentum), div(g, avg));
        out.momentumBuffer = buf;
        return [mul(buf, -lr), out];
      }
      return [mul(div(g, avg), -lr), out];
    },
  };
}

/** @internal A gradient leaf as a tensor of the parameter's dtype. */
export function asGradTensor(g: unknown, p: Tensor): Tensor {
  const t = g instanceof Tensor ? g : Tensor._fromHost(Float64Array.of(g as number), [], "float64");
  return t.dtype === p.dtype ? t : astype(t, p.dtype);
}
