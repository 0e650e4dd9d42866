/**
 * @file The basic layers: `Linear`, `Embedding`, `LayerNorm`, `Dropout`, `Sequential`,
 * `LoRALinear`, and activation modules. Shapes, argument orders and initialisations are
 * PyTorch's; initial weights come from functional keys (`{key}`, or the default key sequence,
 * see `nn.manualSeed`).
 */

import type { Tensor, TensorLike } from "../core/tensor.js";
import { ShapeError, TransformError } from "../errors.js";
import {
  add,
  gelu,
  logSoftmax,
  matmul,
  mul,
  relu,
  sigmoid,
  softmax,
  softplus,
  tanh,
  transpose,
} from "../ops/index.js";
import { type Key, split } from "../random/index.js";
import { dropout, embedding, flatten, layerNorm, leakyRelu, linear, silu } from "./functional.js";
import { checkDims, kaimingUniform, normal, ones, uniform, zeros } from "./init.js";
import { KeyStream, Module, parameter, resolveKey } from "./module.js";

/** Floating dtypes a layer's parameters can have. */
export type ParamDType = "float32" | "float64";

/** Options of `Linear`. */
export interface LinearOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
  /** Initialisation key (default: the next key of the default sequence, see `nn.manualSeed`). */
  key?: Key;
  /** Parameter dtype (default float32). */
  dtype?: ParamDType;
}

/**
 * y = x·Wᵀ + b, weight `[outFeatures, inFeatures]`, bias `[outFeatures]`, both initialised
 * U(−1/√in, 1/√in) (PyTorch's kaiming-uniform with a = √5).
 * @example
 * const fc = new ad.nn.Linear(3, 2, { key: ad.random.key(0) });
 * fc.forward(ad.ones([5, 3])).shape; // [5, 2]
 */
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(inFeatures: number, outFeatures: number, opts: LinearOptions = {}) {
    super();
    checkDims("Linear", { inFeatures, outFeatures });
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const dtype = opts.dtype ?? "float32";
    const [kw, kb] = split(resolveKey(opts.key, "Linear"));
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = parameter(kaimingUniform(kw!, [outFeatures, inFeatures], { dtype }));
    this.bias = opts.bias === false ? null : parameter(uniform(kb!, [outFeatures], -bound, bound, { dtype }));
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

/** Options of `Embedding`. */
export interface EmbeddingOptions {
  /** Sparse gradients: backward gives the weight an `ad.SparseTensor` with the looked-up rows only. */
  sparse?: boolean;
  key?: Key;
  dtype?: ParamDType;
}

/**
 * A lookup table `weight [numEmbeddings, embeddingDim]` initialised N(0, 1); `forward(indices)`
 * (int32, any shape) gives `[...indices.shape, embeddingDim]`. With `{sparse: true}` the eager
 * gradient is an `ad.SparseTensor` over the looked-up rows, and the optimizers update only those
 * rows.
 * @example
 * const emb = new ad.nn.Embedding(100, 8, { sparse: true });
 * emb.forward(ad.tensor([[1, 5]], { dtype: "int32" })).sum().backward();
 * emb.weight.grad instanceof ad.SparseTensor; // true
 */
export class Embedding extends Module<[TensorLike | readonly number[]], Tensor> {
  weight: Tensor;
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  sparse: boolean;

  constructor(numEmbeddings: number, embeddingDim: number, opts: EmbeddingOptions = {}) {
    super();
    checkDims("Embedding", { numEmbeddings, embeddingDim });
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    this.sparse = opts.sparse ?? false;
    const key = resolveKey(opts.key, "Embedding");
    this.weight = parameter(
      normal(key, [numEmbeddings, embeddingDim], 0, 1, { dtype: opts.dtype ?? "float32" }),
    );
  }

  forward(indices: TensorLike | readonly number[]): Tensor {
    return embedding(this.weight, indices, { sparse: this.sparse });
  }

  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.sparse ? ", sparse=true" : ""}`;
  }
}

/** Options of `LayerNorm`. */
export interface LayerNormOptions {
  eps?: number;
  /** Learn a per-element scale (and bias) (default true). */
  elementwiseAffine?: boolean;
  /** Learn the bias when affine (default true). */
  bias?: boolean;
  dtype?: ParamDType;
}

/**
 * Layer normalisation over the trailing `normalizedShape` axes, with a learnt scale (ones) and
 * bias (zeros).
 * @example
 * new ad.nn.LayerNorm(4).forward(ad.ones([2, 4])).shape; // [2, 4]
 */
export class LayerNorm extends Module {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly normalizedShape: number[];
  readonly eps: number;

  constructor(normalizedShape: number | readonly number[], opts: LayerNormOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    this.normalizedShape.forEach((d, i) => checkDims("LayerNorm", { [`normalizedShape[${i}]`]: d }));
    this.eps = opts.eps ?? 1e-5;
    const dtype = opts.dtype ?? "float32";
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? parameter(ones(this.normalizedShape, { dtype })) : null;
    this.bias = affine && (opts.bias ?? true) ? parameter(zeros(this.normalizedShape, { dtype })) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }

  override extraRepr(): string {
    return `[${this.normalizedShape.join(", ")}], eps=${this.eps}`;
  }
}

/**
 * Inverted dropout with probability `p` (default 0.5), active in training mode only. Its random
 * numbers come from keys: `forward(x, key)` uses the key given; `forward(x)` takes the next key of
 * the module's own stream, started from `{key}` (or the default key sequence) and advanced on
 * every call. Under `jit`, pass the key explicitly (a captured stream would be frozen into the
 * compiled program).
 * @example
 * const drop = new ad.nn.Dropout(0.1, { key: ad.random.key(0) });
 * drop.forward(ad.ones([8])); // training mode: some zeros, the rest 1/0.9
 * drop.eval().forward(ad.ones([8])); // identity
 */
export class Dropout extends Module<[Tensor, Key?], Tensor> {
  readonly p: number;
  private _keys: KeyStream;

  /** `new Dropout(p, {key})` as PyTorch, or one options object `new Dropout({p, key})`. */
  constructor(p: number | { p?: number; key?: Key } = 0.5, opts: { key?: Key } = {}) {
    super();
    if (typeof p === "object" && p !== null) {
      opts = { ...opts, ...(p.key === undefined ? {} : { key: p.key }) };
      p = p.p ?? 0.5;
    }
    if (typeof p !== "number" || !(p >= 0 && p <= 1))
      throw new ShapeError(`Dropout: p must be a probability in [0, 1], got ${String(p)}`);
    this.p = p;
    this._keys = new KeyStream(resolveKey(opts.key, "Dropout"));
  }

  forward(x: Tensor, key?: Key): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, key ?? this._keys.next());
  }

  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/** A module that maps a tensor to a tensor (what `Sequential` chains). */
export type TensorModule = Module<[Tensor], Tensor>;

/**
 * A chain of modules; child i is named `"i"` (state-dict keys `"0.weight"`, as PyTorch).
 * @example
 * const mlp = new ad.nn.Sequential(new ad.nn.Linear(4, 8), new ad.nn.ReLU(), new ad.nn.Linear(8, 1));
 * mlp.forward(ad.ones([2, 4])).shape; // [2, 1]
 * Object.keys(mlp.stateDict()); // ["0.weight", "0.bias", "2.weight", "2.bias"]
 */
export class Sequential extends Module {
  [index: number]: TensorModule;
  private _length = 0;

  constructor(...layers: TensorModule[]) {
    super();
    for (const m of layers) this.append(m);
  }

  /** Number of layers. */
  get length(): number {
    return this._length;
  }

  /** Add a layer at the end. @example seq.append(new ad.nn.ReLU()) */
  append(layer: TensorModule): this {
    if (!(layer instanceof Module)) throw new TransformError("Sequential: every layer must be an nn.Module");
    this[this._length++] = layer;
    return this;
  }

  *[Symbol.iterator](): IterableIterator<TensorModule> {
    for (let i = 0; i < this._length; i++) yield this[i]!;
  }

  forward(x: Tensor): Tensor {
    for (let i = 0; i < this._length; i++) x = this[i]!.forward(x);
    return x;
  }
}

/** Options of `LoRALinear`. */
export interface LoRAOptions {
  /** Scaling numerator: the update is (alpha / rank)·B·A (default alpha = rank). */
  alpha?: number;
  key?: Key;
  /** Freeze the base layer's parameters (default true). */
  freezeBase?: boolean;
}

/**
 * A LoRA adapter around a `Linear`: y = base(x) + (alpha/rank)·x·Aᵀ·Bᵀ with trainable low-rank
 * factors `loraA [rank, in]` (kaiming-uniform) and `loraB [out, rank]` (zeros, so the adapter
 * starts as the identity change). The base parameters are frozen (`requiresGrad = false`), so
 * backward stores gradients for the two factors only.
 * @example
 * const lora = new ad.nn.LoRALinear(new ad.nn.Linear(64, 64), 4);
 * lora.parameters().filter((p) => p.requiresGrad).map((p) => p.shape); // [[4, 64], [64, 4]]
 */
export class LoRALinear extends Module {
  base: Linear;
  loraA: Tensor;
  loraB: Tensor;
  readonly rank: number;
  readonly scaling: number;

  constructor(base: Linear, rank: number, opts: LoRAOptions = {}) {
    super();
    if (!(base instanceof Linear)) throw new TransformError("LoRALinear: base must be an nn.Linear");
    checkDims("LoRALinear", { rank });
    this.base = base;
    this.rank = rank;
    this.scaling = (opts.alpha ?? rank) / rank;
    const dtype = base.weight.dtype === "float64" ? "float64" : "float32";
    this.loraA = parameter(
      kaimingUniform(resolveKey(opts.key, "LoRALinear"), [rank, base.inFeatures], { dtype }),
    );
    this.loraB = parameter(zeros([base.outFeatures, rank], { dtype }));
    if (opts.freezeBase ?? true) base.requiresGrad_(false);
  }

  forward(x: Tensor): Tensor {
    const low = matmul(matmul(x, transpose(this.loraA)), transpose(this.loraB));
    return add(this.base.forward(x), mul(low, this.scaling));
  }

  override extraRepr(): string {
    return `rank=${this.rank}, scaling=${this.scaling}`;
  }
}

// ---- activations ----

/** max(x, 0). @example new ad.nn.ReLU().forward(ad.tensor([-1, 2])).toArray(); // [0, 2] */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

/** GELU (exact erf form, or `{approximate: "tanh"}`). @example new ad.nn.GELU().forward(ad.tensor([0])).toArray(); // [0] */
export class GELU extends Module {
  readonly approximate: "none" | "tanh";
  constructor(opts: { approximate?: "none" | "tanh" } = {}) {
    super();
    this.approximate = opts.approximate ?? "none";
  }
  forward(x: Tensor): Tensor {
    return gelu(x, { approximate: this.approximate });
  }
}

/** x·sigmoid(x). @example new ad.nn.SiLU().forward(ad.tensor([0])).toArray(); // [0] */
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

/** tanh. @example new ad.nn.Tanh().forward(ad.tensor([0])).toArray(); // [0] */
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** The logistic function. @example new ad.nn.Sigmoid().forward(ad.tensor([0])).toArray(); // [0.5] */
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** log(1 + eˣ). @example new ad.nn.Softplus().forward(ad.tensor([0])).item(); // 0.693... */
export class Softplus extends Module {
  forward(x: Tensor): Tensor {
    return softplus(x);
  }
}

/** Leaky ReLU (default slope 0.01). @example new ad.nn.LeakyReLU(0.1).forward(ad.tensor([-1])).toArray(); // [-0.1] */
export class LeakyReLU extends Module {
  readonly negativeSlope: number;
  constructor(negativeSlope = 0.01) {
    super();
    this.negativeSlope = negativeSlope;
  }
  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.negativeSlope);
  }
}

/** Softmax along `axis` (default −1). @example new ad.nn.Softmax().forward(ad.tensor([0, 0])).toArray(); // [0.5, 0.5] */
export class Softmax extends Module {
  readonly axis: number;
  constructor(axis = -1) {
    super();
    this.axis = axis;
  }
  forward(x: Tensor): Tensor {
    return softmax(x, this.axis);
  }
}

/** log-softmax along `axis` (default −1). @example new ad.nn.LogSoftmax().forward(ad.tensor([0, 0])) */
export class LogSoftmax extends Module {
  readonly axis: number;
  constructor(axis = -1) {
    super();
    this.axis = axis;
  }
  forward(x: Tensor): Tensor {
    return logSoftmax(x, this.axis);
  }
}

/** The identity. @example new ad.nn.Identity().forward(x) === x; // true */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Merge axes startDim … endDim (default 1 … −1). @example new ad.nn.Flatten().forward(ad.zeros([2, 3, 4])).shape; // [2, 12] */
export class Flatten extends Module {
  readonly startDim: number;
  readonly endDim: number;
  constructor(startDim = 1, endDim = -1) {
    super();
    this.startDim = startDim;
    this.endDim = endDim;
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}
