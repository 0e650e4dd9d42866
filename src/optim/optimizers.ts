/**
 * @file The stateful (PyTorch-style) optimizers: `SGD`, `Adam`, `AdamW`, `RMSprop` over a list
 * of parameters (or parameter groups). `step()` reads each parameter's `.grad` and updates the
 * parameter in place inside `noGrad`; `zeroGrad()` sets the gradients to null.
 *
 * Sparse gradients (`grad instanceof SparseTensor`, from `nn.Embedding({sparse: true})`) are
 * applied lazily, as PyTorch's `SparseAdam`: the gradient is coalesced, the rule runs on the
 * gathered rows of the parameter and of its state, and only those rows are written back. Rows not
 * looked up keep their values and their state (momentum, Adam moments) exactly; weight decay, too,
 * touches only the looked-up rows. The step count is per parameter and counts every step.
 */

import { noGrad } from "../core/grad-mode.js";
import { openScratch } from "../core/scratch.js";
import { Tensor } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { DTypeError, ShapeError, TransformError } from "../errors.js";
import { add, astype, take, zerosLike } from "../ops/index.js";
import { fmtShape, shapeEq, sizeOf } from "../shape.js";
import { SparseTensor } from "../sparse.js";
import {
  type AdamHyper,
  adamRule,
  type RMSpropHyper,
  type Rule,
  rmspropRule,
  type SGDHyper,
  type Slots,
  sgdRule,
} from "./rules.js";

/** A parameter group: its parameters and its hyperparameters (e.g. its own `lr`). */
export type ParamGroup<H> = H & { lr: number; params: Tensor[] };

/** What an optimizer takes: parameters, or groups `{params, ...hyperparameters}`. */
export type ParamsArg<H> =
  | Iterable<Tensor>
  | readonly (Partial<H> & { lr?: number; params: Iterable<Tensor> })[];

/** The state an optimizer keeps per parameter. */
export interface ParamState {
  /** Steps taken for this parameter. */
  step: number;
  /** Named state tensors (momentum buffers, moments). */
  slots: Slots;
}

/**
 * @internal Rows `idx` of `x` replaced by `rows` (idx distinct); every other row is kept bit for
 * bit. Storage is immutable, so this is one copy of `x` with k rows overwritten — no arithmetic
 * touches the rows that were not looked up.
 */
export function setRows(x: Tensor, idx: Tensor, rows: Tensor): Tensor {
  const r = rows.dtype === x.dtype ? rows : astype(rows, x.dtype);
  const out = x._hostData().slice();
  const src = r._hostData();
  const rowLen = sizeOf(x.shape.slice(1));
  const d = idx._hostData();
  for (let k = 0; k < d.length; k++) out.set(src.subarray(k * rowLen, (k + 1) * rowLen), d[k]! * rowLen);
  return Tensor._fromHost(out, [...x.shape], x.dtype);
}

/**
 * The base class of the stateful optimizers. Subclasses give the defaults and the update rule.
 * @example
 * const opt = new ad.optim.Adam(model.parameters(), { lr: 1e-3 });
 * loss.backward();
 * opt.step();
 * opt.zeroGrad();
 */
export abstract class Optimizer<H extends object = object> {
  /** The parameter groups with their hyperparameters (schedulers change `lr` here). */
  readonly paramGroups: ParamGroup<H>[] = [];
  /** Per-parameter state. */
  readonly state = new Map<Tensor, ParamState>();
  /** Defaults for groups that leave a hyperparameter out. */
  readonly defaults: H & { lr: number };
  private readonly rules = new WeakMap<object, { key: string; rule: Rule }>();

  constructor(params: ParamsArg<H>, defaults: H & { lr: number }, name: string) {
    this.defaults = defaults;
    if (params === null || typeof params !== "object" || !(Symbol.iterator in params))
      throw new TransformError(
        `${name}: expected the parameters (e.g. model.parameters()) as the first argument`,
      );
    const list = [...(params as Iterable<unknown>)];
    if (list.length === 0) throw new TransformError(`${name}: got an empty parameter list`);
    if (list.every((p) => p instanceof Tensor))
      this.addParamGroup({ params: list as Tensor[] } as Partial<H> & { params: Tensor[] });
    else for (const g of list) this.addParamGroup(g as Partial<H> & { params: Iterable<Tensor> });
  }

  /**
   * Add a group of parameters with its own hyperparameters.
   * @example
   * opt.addParamGroup({ params: head.parameters(), lr: 1e-2 });
   */
  addParamGroup(group: Partial<H> & { lr?: number; params: Iterable<Tensor> }): void {
    const params = [...group.params];
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    params.forEach((p, i) => {
      if (!(p instanceof Tensor))
        throw new TransformError(`${this.constructor.name}: parameter ${i} is not a Tensor`);
      if (!isFloat(p.dtype))
        throw new DTypeError(
          `${this.constructor.name}: parameter ${i} must be floating point, got ${p.dtype}`,
        );
      if (p._trace !== null)
        throw new TransformError(
          `${this.constructor.name}: parameter ${i} is a traced value; stateful optimizers update eager tensors (use the functional optim.adam(...) inside transforms)`,
        );
      if (seen.has(p))
        throw new TransformError(`${this.constructor.name}: a parameter appears in two groups`);
      seen.add(p);
    });
    const merged = { ...this.defaults, ...group, params } as ParamGroup<H>;
    if (typeof merged.lr !== "number" || !(merged.lr >= 0))
      throw new ShapeError(
        `${this.constructor.name}: lr must be a non-negative number, got ${String(merged.lr)}`,
      );
    this.ruleFor(merged); // validates the hyperparameters now
    this.paramGroups.push(merged);
  }

  /** The update rule of a group's hyperparameters. */
  protected abstract makeRule(h: ParamGroup<H>): Rule;

  private ruleFor(g: ParamGroup<H>): Rule {
    const { params: _p, lr: _lr, ...hyper } = g;
    const key = JSON.stringify(hyper);
    const hit = this.rules.get(g);
    if (hit !== undefined && hit.key === key) return hit.rule;
    const rule = this.makeRule(g);
    this.rules.set(g, { key, rule });
    return rule;
  }

  /** The learning rate of the first group; setting it sets every group's. @example opt.lr = 1e-4; */
  get lr(): number {
    return this.paramGroups[0]!.lr;
  }
  set lr(v: number) {
    for (const g of this.paramGroups) g.lr = v;
  }

  /**
   * Apply one update to every parameter that has a gradient (in place, not recorded). With a
   * closure, calls it first (it should recompute the loss and call backward) and returns its result.
   * @example
   * opt.step();
   */
  step<T = undefined>(closure?: () => T): T | undefined {
    const result = closure === undefined ? undefined : closure();
    noGrad(() => {
      for (const group of this.paramGroups) {
        const rule = this.ruleFor(group);
        for (const p of group.params) {
          const g = p.grad;
          if (g === null) continue;
          if (!shapeEq(g.shape, p.shape))
            throw new ShapeError(
              `${this.constructor.name}: the gradient has shape ${fmtShape(g.shape)} but the parameter has shape ${fmtShape(p.shape)}`,
            );
          let st = this.state.get(p);
          if (st === undefined) {
            const slots: Slots = {};
            for (const n of rule.slots) slots[n] = zerosLike(p);
            st = { step: 0, slots };
            this.state.set(p, st);
          }
          for (const n of rule.slots) st.slots[n] ??= zerosLike(p);
          st.step += 1;
          // The update's intermediates are private: released as soon as the parameter and its
          // state hold the results (see core/scratch.ts).
          const scope = openScratch(p._backend);
          try {
            if (g instanceof SparseTensor) this.sparseUpdate(p, g, st, rule, group.lr);
            else {
              const gd = g.dtype === p.dtype ? g.detach() : astype(g.detach(), p.dtype);
              const [delta, next] = rule.apply(p, gd, st.slots, st.step, group.lr);
              p.add_(delta);
              Object.assign(st.slots, next);
            }
          } catch (e) {
            scope.close(null);
            throw e;
          }
          scope.close([p, ...Object.values(st.slots)]);
        }
      }
    });
    return result;
  }

  private sparseUpdate(p: Tensor, g: SparseTensor, st: ParamState, rule: Rule, lr: number): void {
    const c = g.coalesce();
    if (c.nnz === 0) return;
    const idx = c.indices;
    const rowsP = take(p, idx, 0);
    const rowsS: Slots = {};
    for (const [n, s] of Object.entries(st.slots)) rowsS[n] = take(s, idx, 0);
    const vals = c.values.dtype === p.dtype ? c.values : astype(c.values, p.dtype);
    const [delta, next] = rule.apply(rowsP, vals.detach(), rowsS, st.step, lr);
    p.copy_(setRows(p, idx, add(rowsP, delta)));
    for (const [n, s] of Object.entries(next)) st.slots[n] = setRows(st.slots[n]!, idx, s);
  }

  /**
   * Set every parameter's gradient to null (PyTorch's default `set_to_none`).
   * @example
   * opt.zeroGrad();
   */
  zeroGrad(): void {
    for (const g of this.paramGroups) for (const p of g.params) p.grad = null;
  }

  /**
   * The optimizer state as a pytree of tensors and numbers (parameters by their index in the
   * groups, as PyTorch's `state_dict`): `{state: {"0": {step, ...slots}}, paramGroups: [...]}`.
   * @example
   * const saved = opt.stateDict();
   * opt2.loadStateDict(saved);
   */
  stateDict(): {
    state: Record<string, Record<string, Tensor | number>>;
    paramGroups: Record<string, unknown>[];
  } {
    const state: Record<string, Record<string, Tensor | number>> = {};
    let i = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...hyper } = g;
      const ids = params.map((p) => {
        const st = this.state.get(p);
        if (st !== undefined) {
          const entry: Record<string, Tensor | number> = { step: st.step };
          for (const [n, s] of Object.entries(st.slots)) entry[n] = s.detach();
          state[String(i)] = entry;
        }
        return i++;
      });
      return { ...hyper, params: ids };
    });
    return { state, paramGroups };
  }

  /**
   * Restore a state saved by `stateDict()` (same parameter layout).
   * @example
   * opt.loadStateDict(saved);
   */
  loadStateDict(sd: {
    state: Record<string, Record<string, unknown>>;
    paramGroups: Record<string, unknown>[];
  }): void {
    if (sd === null || typeof sd !== "object" || !Array.isArray(sd.paramGroups))
      throw new TransformError(`${this.constructor.name}.loadStateDict: expected {state, paramGroups}`);
    if (sd.paramGroups.length !== this.paramGroups.length)
      throw new TransformError(
        `${this.constructor.name}.loadStateDict: ${sd.paramGroups.length} groups saved, the optimizer has ${this.paramGroups.length}`,
      );
    const all = this.paramGroups.flatMap((g) => g.params);
    sd.paramGroups.forEach((saved, gi) => {
      const g = this.paramGroups[gi]!;
      const ids = saved.params as number[] | undefined;
      if (!Array.isArray(ids) || ids.length !== g.params.length)
        throw new TransformError(
          `${this.constructor.name}.loadStateDict: group ${gi} has a different number of parameters`,
        );
      const { params: _ids, ...hyper } = saved;
      Object.assign(g, hyper);
    });
    this.state.clear();
    for (const [k, entry] of Object.entries(sd.state ?? {})) {
      const p = all[Number(k)];
      if (p === undefined)
        throw new TransformError(`${this.constructor.name}.loadStateDict: no parameter ${k}`);
      const slots: Slots = {};
      for (const [n, v] of Object.entries(entry)) {
        if (n === "step") continue;
        if (!(v instanceof Tensor) || !shapeEq(v.shape, p.shape))
          throw new ShapeError(
            `${this.constructor.name}.loadStateDict: state "${n}" of parameter ${k} does not fit its shape`,
          );
        slots[n] = astype(v, p.dtype);
      }
      const step = entry.step;
      this.state.set(p, {
        step: typeof step === "number" ? step : step instanceof Tensor ? step.item() : 0,
        slots,
      });
    }
  }
}

/** Options of `SGD`. */
export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  maximize?: boolean;
}

/**
 * Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay, as
 * `torch.optim.SGD` (the momentum buffer starts as the first gradient).
 * @example
 * const opt = new ad.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true });
 */
export class SGD extends Optimizer<SGDHyper> {
  constructor(params: ParamsArg<SGDHyper>, opts: SGDOptions) {
    if (opts === undefined || typeof opts.lr !== "number")
      throw new TransformError("SGD: options { lr } are required");
    super(
      params,
      {
        lr: opts.lr,
        momentum: opts.momentum ?? 0,
        dampening: opts.dampening ?? 0,
        nesterov: opts.nesterov ?? false,
        weightDecay: opts.weightDecay ?? 0,
        maximize: opts.maximize ?? false,
      },
      "SGD",
    );
  }
  protected makeRule(h: ParamGroup<SGDHyper>): Rule {
    return sgdRule(h);
  }
}

/** Options of `Adam` and `AdamW`. */
export interface AdamOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
}

type AdamGroupHyper = Omit<AdamHyper, "decoupled">;

function adamDefaults(opts: AdamOptions, wd: number): AdamGroupHyper & { lr: number } {
  return {
    lr: opts.lr ?? 1e-3,
    betas: opts.betas ?? [0.9, 0.999],
    eps: opts.eps ?? 1e-8,
    weightDecay: opts.weightDecay ?? wd,
    amsgrad: opts.amsgrad ?? false,
    maximize: opts.maximize ?? false,
  };
}

/**
 * Adam (`torch.optim.Adam`: L2 weight decay added to the gradient; defaults lr 1e-3, betas
 * [0.9, 0.999], eps 1e-8). Sparse gradients are applied lazily (as `SparseAdam`).
 * @example
 * const opt = new ad.optim.Adam(model.parameters(), { lr: 1e-3 });
 */
export class Adam extends Optimizer<AdamGroupHyper> {
  constructor(params: ParamsArg<AdamGroupHyper>, opts: AdamOptions = {}) {
    super(params, adamDefaults(opts, 0), "Adam");
  }
  protected makeRule(h: ParamGroup<AdamGroupHyper>): Rule {
    return adamRule({ ...h, decoupled: false }, "Adam");
  }
}

/**
 * AdamW (`torch.optim.AdamW`: decoupled weight decay p ← p·(1 − lr·wd), default wd 1e-2).
 * @example
 * const opt = new ad.optim.AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.01 });
 */
export class AdamW extends Optimizer<AdamGroupHyper> {
  constructor(params: ParamsArg<AdamGroupHyper>, opts: AdamOptions = {}) {
    super(params, adamDefaults(opts, 1e-2), "AdamW");
  }
  protected makeRule(h: ParamGroup<AdamGroupHyper>): Rule {
    return adamRule({ ...h, decoupled: true }, "AdamW");
  }
}

/** Options of `RMSprop`. */
export interface RMSpropOptions {
  lr?: number;
  alpha?: number;
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  centered?: boolean;
  maximize?: boolean;
}

/**
 * RMSprop (`torch.optim.RMSprop`; defaults lr 1e-2, alpha 0.99, eps 1e-8).
 * @example
 * const opt = new ad.optim.RMSprop(model.parameters(), { lr: 1e-3, momentum: 0.9 });
 */
export class RMSprop extends Optimizer<RMSpropHyper> {
  constructor(params: ParamsArg<RMSpropHyper>, opts: RMSpropOptions = {}) {
    super(
      params,
      {
        lr: opts.lr ?? 1e-2,
        alpha: opts.alpha ?? 0.99,
        eps: opts.eps ?? 1e-8,
        weightDecay: opts.weightDecay ?? 0,
        momentum: opts.momentum ?? 0,
        centered: opts.centered ?? false,
        maximize: opts.maximize ?? false,
      },
      "RMSprop",
    );
  }
  protected makeRule(h: ParamGroup<RMSpropHyper>): Rule {
    return rmspropRule(h);
  }
}
