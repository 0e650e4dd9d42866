/**
 * @file `nn.Module`: the PyTorch-style container of parameters. A module's parameters, buffers
 * and submodules are discovered from its own fields (no registration calls needed): a `Tensor`
 * field is a parameter (unless registered as a buffer), a `Module` field a submodule, and arrays
 * or plain objects of those are walked with their indices/keys in the name (`layers.0.weight`).
 * Fields whose name starts with `_` are private state and are skipped. `functionalCall` runs a
 * module with other parameter values (tracers of `grad`/`vmap`/`hessian`), which makes every
 * functional transform apply to module parameters.
 */

import { noGrad } from "../core/grad-mode.js";
import { Tensor } from "../core/tensor.js";
import { AdError, ShapeError, TransformError } from "../errors.js";
import { flattenWithPaths } from "../io/paths.js";
import { tensor } from "../ops/index.js";
import type { Key } from "../random/index.js";
import { keyFromSeed, splitKey } from "../random/threefry.js";
import { fmtShape, shapeEq } from "../shape.js";

/**
 * A state dict or parameter set that does not fit a module: missing or unexpected names.
 * @example
 * new ad.nn.Linear(2, 2).loadStateDict({ weight: ad.zeros([2, 2]) }); // throws StateDictError (bias missing)
 */
export class StateDictError extends AdError {}

// ---- keys ----

let defaultKey: [number, number] = keyFromSeed(0);

/**
 * Reset the default key sequence that layers draw their initial weights from when no `key` is
 * given (as `torch.manual_seed`). The sequence starts at seed 0 when the library loads.
 * @example
 * ad.nn.manualSeed(42);
 * const a = new ad.nn.Linear(2, 2);
 * ad.nn.manualSeed(42);
 * const b = new ad.nn.Linear(2, 2); // same weights as a
 */
export function manualSeed(seed: number): void {
  if (typeof seed !== "number" || !Number.isInteger(seed))
    throw new TransformError(`nn.manualSeed: the seed must be an integer, got ${String(seed)}`);
  defaultKey = keyFromSeed(seed);
}

function keyTensor(k: readonly [number, number]): Key {
  return Tensor._fromHost(Int32Array.of(k[0] | 0, k[1] | 0), [2], "int32");
}

/** @internal Split a host key as `ad.random.split` does (threefry, partitionable layout). */
export function splitHost(k: readonly [number, number]): [[number, number], [number, number]] {
  const [a, b] = splitKey([k[0] >>> 0, k[1] >>> 0], 2, { partitionable: true });
  return [a!, b!];
}

/** @internal The key a layer uses: the one given, or the next of the default sequence. */
export function resolveKey(key: Key | undefined, op: string): Key {
  if (key !== undefined) {
    if (!(key instanceof Tensor) || key.dtype !== "int32" || key.shape.length !== 1 || key.shape[0] !== 2)
      throw new TransformError(
        `${op}: key must be a PRNG key (ad.random.key(seed)), an int32 tensor of shape [2]`,
      );
    return key;
  }
  const [use, next] = splitHost(defaultKey);
  defaultKey = next;
  return keyTensor(use);
}

/** @internal A stateful key stream (Dropout): each call returns a fresh key, split on the host. */
export class KeyStream {
  private state: [number, number];
  constructor(key: Key) {
    const d = key._hostData();
    this.state = [d[0]! >>> 0, d[1]! >>> 0];
  }
  next(): Key {
    const [use, rest] = splitHost(this.state);
    this.state = rest;
    return keyTensor(use);
  }
}

/** @internal Make `t` a parameter: a fresh leaf that requires grad (traced values are kept as they are). */
export function parameter(t: Tensor): Tensor {
  if (t._trace !== null) return t;
  return tensor(t, { requiresGrad: true });
}

// ---- discovery ----

/** One named tensor slot of a module tree. */
interface Slot {
  readonly name: string;
  readonly buffer: boolean;
  get(): Tensor;
  set(t: Tensor): void;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

const join = (prefix: string, k: string) => (prefix === "" ? k : `${prefix}.${k}`);

/** Every tensor slot reachable from `root`, in field order (shared tensors appear under each name). */
function slotsOf(root: AnyModule): Slot[] {
  const out: Slot[] = [];
  const stack = new Set<object>();
  const visit = (
    owner: Record<string | number, unknown>,
    key: string | number,
    name: string,
    buffer: boolean,
  ) => {
    const v = owner[key];
    if (v instanceof Tensor) {
      out.push({
        name,
        buffer,
        get: () => owner[key] as Tensor,
        set: (t) => {
          owner[key] = t;
        },
      });
    } else if (v instanceof Module) walk(v, name);
    else if (Array.isArray(v))
      v.forEach((_, i) => visit(v as unknown as Record<number, unknown>, i, join(name, String(i)), buffer));
    else if (isPlainObject(v)) for (const k of Object.keys(v)) visit(v, k, join(name, k), buffer);
  };
  const walk = (m: AnyModule, prefix: string) => {
    if (stack.has(m)) return; // a cycle (a module holding its ancestor)
    stack.add(m);
    const rec = m as unknown as Record<string, unknown>;
    for (const k of Object.keys(m)) {
      if (k.startsWith("_") || k === "training") continue;
      visit(rec, k, join(prefix, k), m._bufferNames.has(k));
    }
    stack.delete(m);
  };
  walk(root, "");
  return out;
}

/** Direct submodules with their names (arrays/objects of modules included). */
function childrenOf(m: AnyModule): [string, AnyModule][] {
  const out: [string, AnyModule][] = [];
  const visit = (v: unknown, name: string) => {
    if (v instanceof Module) out.push([name, v]);
    else if (Array.isArray(v)) v.forEach((c, i) => visit(c, join(name, String(i))));
    else if (isPlainObject(v)) for (const k of Object.keys(v)) visit(v[k], join(name, k));
  };
  const rec = m as unknown as Record<string, unknown>;
  for (const k of Object.keys(m)) {
    if (k.startsWith("_") || k === "training") continue;
    visit(rec[k], k);
  }
  return out;
}

/** A module of any signature. */
export type AnyModule = Module<never[], unknown>;

/** Options of `loadStateDict`. */
export interface LoadStateDictOptions {
  /** Require the names to match exactly (default true); otherwise missing/unexpected names are reported only. */
  strict?: boolean;
}

/** What `loadStateDict` did not match. */
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/**
 * The base class of layers and models. Subclasses assign parameters (tensors that require grad),
 * buffers (`registerBuffer`) and submodules to fields and implement `forward`.
 * @example
 * class MLP extends ad.nn.Module {
 *   fc1 = new ad.nn.Linear(4, 8);
 *   fc2 = new ad.nn.Linear(8, 1);
 *   forward(x: ad.Tensor) {
 *     return this.fc2.forward(ad.relu(this.fc1.forward(x)));
 *   }
 * }
 * const m = new MLP();
 * m.namedParameters().map(([n]) => n); // ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
 */
export abstract class Module<In extends unknown[] = [Tensor], Out = Tensor> {
  /** Training mode (Dropout is active); switch with `train()` / `eval()`. */
  training = true;
  /** @internal Names of the fields that are buffers (state, not parameters). */
  readonly _bufferNames = new Set<string>();

  /** The computation of this module. */
  abstract forward(...inputs: In): Out;

  /**
   * Declare a field as a buffer: a tensor that belongs to the state dict but is not a parameter
   * (not returned by `parameters()`, never trained).
   * @example
   * this.registerBuffer("runningMean", ad.zeros([4]));
   */
  registerBuffer(name: string, value: Tensor | null): void {
    if (typeof name !== "string" || name === "" || name.includes("."))
      throw new TransformError(`registerBuffer: invalid buffer name ${JSON.stringify(name)}`);
    this._bufferNames.add(name);
    (this as unknown as Record<string, unknown>)[name] = value;
  }

  /**
   * Assign a parameter to a field (PyTorch's `register_parameter`): a leaf that requires grad,
   * copied from `value` (a traced value is kept as it is). Plain field assignment works as well;
   * this also makes sure the tensor is trainable.
   * @example
   * this.registerParameter("scale", ad.ones([4]));
   */
  registerParameter(name: string, value: Tensor | null): void {
    if (typeof name !== "string" || name === "" || name.includes(".") || name.startsWith("_"))
      throw new TransformError(`registerParameter: invalid parameter name ${JSON.stringify(name)}`);
    if (value !== null && !(value instanceof Tensor))
      throw new TransformError(`registerParameter: "${name}" must be a Tensor or null`);
    this._bufferNames.delete(name);
    (this as unknown as Record<string, unknown>)[name] = value === null ? null : parameter(value);
  }

  /**
   * Assign a submodule to a field (PyTorch's `add_module`); plain field assignment works as well.
   * @example
   * this.registerModule("head", new ad.nn.Linear(8, 2));
   */
  registerModule(name: string, module: AnyModule | null): void {
    if (typeof name !== "string" || name === "" || name.includes(".") || name.startsWith("_"))
      throw new TransformError(`registerModule: invalid module name ${JSON.stringify(name)}`);
    if (module !== null && !(module instanceof Module))
      throw new TransformError(`registerModule: "${name}" must be an nn.Module or null`);
    (this as unknown as Record<string, unknown>)[name] = module;
  }

  /**
   * Parameters with their dotted names, each tensor once (the first name of a shared tensor).
   * @example
   * new ad.nn.Linear(2, 3).namedParameters().map(([n, p]) => [n, p.shape]); // [["weight", [3, 2]], ["bias", [3]]]
   */
  namedParameters(): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const s of slotsOf(this)) {
      if (s.buffer) continue;
      const t = s.get();
      if (seen.has(t)) continue;
      seen.add(t);
      out.push([s.name, t]);
    }
    return out;
  }

  /**
   * The parameters (each tensor once), for an optimizer.
   * @example
   * const opt = new ad.optim.SGD(model.parameters(), { lr: 0.1 });
   */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Buffers with their dotted names. @example m.namedBuffers() */
  namedBuffers(): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const s of slotsOf(this)) {
      if (!s.buffer) continue;
      const t = s.get();
      if (seen.has(t)) continue;
      seen.add(t);
      out.push([s.name, t]);
    }
    return out;
  }

  /** The buffers. @example m.buffers() */
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** Direct submodules with their names. @example seq.namedChildren() // [["0", Linear], ...] */
  namedChildren(): [string, AnyModule][] {
    return childrenOf(this);
  }

  /** Direct submodules. @example seq.children() */
  children(): AnyModule[] {
    return childrenOf(this).map(([, m]) => m);
  }

  /** This module and every submodule, with names (`""` for this one), each once. @example m.namedModules() */
  namedModules(): [string, AnyModule][] {
    const out: [string, AnyModule][] = [];
    const seen = new Set<AnyModule>();
    const walk = (m: AnyModule, prefix: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([prefix, m]);
      for (const [n, c] of childrenOf(m)) walk(c, join(prefix, n));
    };
    walk(this, "");
    return out;
  }

  /** This module and every submodule. @example m.modules().length */
  modules(): AnyModule[] {
    return this.namedModules().map(([, m]) => m);
  }

  /**
   * Parameters and buffers by dotted name (a flat object), as PyTorch's `state_dict()`. The
   * values are snapshots: later (in-place) training steps do not change them.
   * @example
   * Object.keys(new ad.nn.Linear(2, 3).stateDict()); // ["weight", "bias"]
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const s of slotsOf(this)) out[s.name] = s.get().detach();
    return out;
  }

  /**
   * Copy values into the parameters and buffers (in place, so optimizers keep working). Takes a
   * flat state dict (`{"fc1.weight": t}`) or the same nesting (`{fc1: {weight: t}}`, as
   * `ad.io.loadSafetensors` returns). Shapes must match (`ShapeError`); with `strict` (default)
   * missing or unexpected names throw `StateDictError`.
   * @example
   * const b = new ad.nn.Linear(2, 3);
   * b.loadStateDict(a.stateDict());
   */
  loadStateDict(state: unknown, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    const entries = flattenWithPaths(state);
    const slots = slotsOf(this);
    const byName = new Map(slots.map((s) => [s.name, s]));
    const given = new Set<string>();
    const unexpectedKeys: string[] = [];
    for (const [name, v] of entries) {
      given.add(name);
      const s = byName.get(name);
      if (s === undefined) {
        unexpectedKeys.push(name);
        continue;
      }
      if (!(v instanceof Tensor))
        throw new StateDictError(`loadStateDict: "${name}" must be a Tensor, got ${typeof v}`);
      // A traced value (inside grad/vmap/jit) cannot be stored in an eager parameter: its value
      // exists only inside the transform. functionalCall is the way to run with such values.
      if (v._trace !== null)
        throw new TransformError(
          `loadStateDict: "${name}" is a traced value (inside a transform); use ad.nn.functionalCall(module, params, ...inputs) to run the module with it`,
        );
      const cur = s.get();
      if (!shapeEq(cur.shape, v.shape))
        throw new ShapeError(
          `loadStateDict: "${name}" has shape ${fmtShape(v.shape)} but the module's has shape ${fmtShape(cur.shape)}`,
        );
    }
    const missingKeys = slots.map((s) => s.name).filter((n) => !given.has(n));
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0))
      throw new StateDictError(
        `loadStateDict: ${[
          missingKeys.length > 0 ? `missing ${missingKeys.map((k) => `"${k}"`).join(", ")}` : "",
          unexpectedKeys.length > 0 ? `unexpected ${unexpectedKeys.map((k) => `"${k}"`).join(", ")}` : "",
        ]
          .filter((x) => x !== "")
          .join("; ")} (pass { strict: false } to load the matching names only)`,
      );
    noGrad(() => {
      for (const [name, v] of entries)
        byName
          .get(name)
          ?.get()
          .copy_(v as Tensor);
    });
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Set training mode on this module and every submodule (Dropout is active in training mode).
   * @example
   * model.train();
   */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /**
   * Evaluation mode: `train(false)`.
   * @example
   * model.eval();
   */
  eval(): this {
    return this.train(false);
  }

  /**
   * Reset the gradients of every parameter to null.
   * @example
   * model.zeroGrad();
   */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /**
   * Freeze (`false`) or unfreeze every parameter: frozen parameters get no gradient.
   * @example
   * base.requiresGrad_(false); // e.g. under a LoRA adapter
   */
  requiresGrad_(on = true): this {
    for (const p of this.parameters()) if (p._trace === null) p.requiresGrad = on;
    return this;
  }

  /** A one-line description of this module's configuration (shown by `toString`). */
  extraRepr(): string {
    return "";
  }

  /** PyTorch-like rendering of the module tree. @example String(new ad.nn.Linear(2, 3)) // "Linear(inFeatures=2, outFeatures=3, bias=true)" */
  toString(): string {
    const kids = childrenOf(this);
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (kids.length === 0) return `${head})`;
    const body = kids.map(([n, m]) => `  (${n}): ${String(m).split("\n").join("\n  ")}`).join("\n");
    return `${head}\n${body}\n)`;
  }
}

/**
 * Run `module.forward(...inputs)` with some (or all) of its parameters and buffers replaced by
 * `params`: a flat object by dotted name (`{"fc1.weight": w}`) or the same nesting
 * (`{fc1: {weight: w}}`). The module itself is left unchanged. This makes module parameters
 * arguments of functional transforms: `grad`, `vmap` (ensembles), `hessian`, and MAML-style inner
 * loops that differentiate through updated weights (like `torch.func.functional_call`). Tensors
 * shared between names (tied weights) are replaced everywhere.
 * @example
 * const model = new ad.nn.Linear(3, 1);
 * const params = model.stateDict();
 * const loss = (p: Record<string, ad.Tensor>, x: ad.Tensor) => ad.nn.functionalCall(model, p, x).square().sum();
 * const g = ad.grad(loss)(params, ad.ones([2, 3])); // {weight: [1, 3], bias: [1]}
 */
export function functionalCall<In extends unknown[], Out>(
  module: Module<In, Out>,
  params: unknown,
  ...inputs: In
): Out {
  if (!(module instanceof Module)) throw new TransformError("functionalCall: expected an nn.Module");
  const slots = slotsOf(module);
  const byName = new Map(slots.map((s) => [s.name, s]));
  const replace = new Map<Tensor, Tensor>();
  for (const [name, v] of flattenWithPaths(params)) {
    const s = byName.get(name);
    if (s === undefined)
      throw new StateDictError(
        `functionalCall: the module has no parameter or buffer "${name}" (it has ${[...byName.keys()].map((k) => `"${k}"`).join(", ")})`,
      );
    if (!(v instanceof Tensor))
      throw new StateDictError(`functionalCall: "${name}" must be a Tensor, got ${typeof v}`);
    const cur = s.get();
    if (!shapeEq(cur.shape, v.shape))
      throw new ShapeError(
        `functionalCall: "${name}" has shape ${fmtShape(v.shape)} but the module's has shape ${fmtShape(cur.shape)}`,
      );
    replace.set(cur, v);
  }
  const saved = slots.map((s) => s.get());
  try {
    slots.forEach((s, i) => {
      const r = replace.get(saved[i]!);
      if (r !== undefined) s.set(r);
    });
    return module.forward(...inputs);
  } finally {
    slots.forEach((s, i) => s.set(saved[i]!));
  }
}
