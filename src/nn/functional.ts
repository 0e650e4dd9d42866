/**
 * @file The functions behind the layers (as `torch.nn.functional`): `linear`, `embedding` (with
 * its sparse-gradient path), `layerNorm`, `dropout`, and a few activations the core ops lack.
 *
 * Sparse embedding gradients: in eager mode, `embedding(w, idx, {sparse: true})` with a weight
 * that requires grad is one `customVjp` call whose backward returns an `ad.SparseTensor` (the
 * looked-up rows only) as the weight's cotangent. The tape adds two sparse cotangents of a leaf
 * sparsely (several lookups in one graph), the eager engine stores the sum as `w.grad`, and a
 * gradient hook on the weight makes a second backward add sparse to sparse (indices and values
 * concatenated) instead of densifying. Anything else (a dense use of the same weight, `+` with a
 * dense gradient) sees the SparseTensor's dense value. Under functional transforms (tracers) the
 * lookup is the ordinary dense `take`.
 */

import { castForMatmul } from "../amp/state.js";
import { isGradEnabled, noGrad } from "../core/grad-mode.js";
import { refOf } from "../core/tape.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import {
  add,
  div,
  greater,
  matmul,
  mean,
  mul,
  reshape,
  rsqrt,
  sigmoid,
  sub,
  take,
  tensor,
  transpose,
  variance,
  where,
} from "../ops/index.js";
import { bernoulli, type Key } from "../random/index.js";
import { fmtShape } from "../shape.js";
import { SparseTensor } from "../sparse.js";
import { customVjp } from "../transforms/custom.js";

function asTensor(x: TensorLike, op: string): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x === "number") return tensor(x);
  throw new DTypeError(`${op}: expected a Tensor, got ${x === null ? "null" : typeof x}`);
}

/**
 * y = x·Wᵀ + b with W `[out, in]` (PyTorch's layout); x is `[..., in]`.
 * @example
 * ad.nn.linear(ad.ones([2, 3]), ad.ones([4, 3])).shape; // [2, 4]
 */
export function linear(x: TensorLike, weight: Tensor, bias?: Tensor | null): Tensor {
  const t = asTensor(x, "linear");
  if (weight.ndim !== 2)
    throw new ShapeError(`linear: weight must be [out, in], got ${fmtShape(weight.shape)}`);
  if (t.ndim === 0 || t.shape[t.ndim - 1] !== weight.shape[1])
    throw new ShapeError(
      `linear: the input has shape ${fmtShape(t.shape)} but the layer takes ${weight.shape[1]} input features (weight ${fmtShape(weight.shape)})`,
    );
  const y = matmul(t, transpose(weight));
  // Under autocast the bias joins the low-precision product (as PyTorch's autocast linear)
  // instead of promoting the result back to float32.
  return bias === null || bias === undefined ? y : add(y, castForMatmul([bias])[0]!);
}

function indexTensor(indices: TensorLike | readonly number[], op: string): Tensor {
  if (Array.isArray(indices)) return tensor(indices as number[], { dtype: "int32" });
  if (typeof indices === "number") return tensor(indices, { dtype: "int32" });
  if (!(indices instanceof Tensor))
    throw new DTypeError(`${op}: indices must be an int32 tensor or an array`);
  if (indices.dtype !== "int32") throw new DTypeError(`${op}: indices must be int32, got ${indices.dtype}`);
  return indices;
}

interface LookupResiduals {
  idx: Tensor;
  shape: readonly number[];
}

/** The sparse-gradient lookup: dense rows forward, an `ad.SparseTensor` cotangent for the weight. */
const sparseLookup = customVjp((w: Tensor, idx: Tensor): Tensor => take(w, idx, 0), {
  fwd: (w: Tensor, idx: Tensor): [Tensor, LookupResiduals] => [
    noGrad(() => take(w, idx, 0)),
    { idx, shape: [...w.shape] },
  ],
  bwd: (res: LookupResiduals, g: Tensor) => {
    const n = res.idx.size;
    const rows = reshape(g, [n, ...res.shape.slice(1)]);
    return [new SparseTensor(reshape(res.idx, [n]), rows, res.shape), null];
  },
});

/** Weights (their leaf nodes) whose `.grad` accumulation keeps sparse + sparse sparse. */
const hooked = new WeakSet<object>();

function keepSparseAccumulation(w: Tensor): void {
  const node = refOf(w).node;
  if (hooked.has(node)) return;
  hooked.add(node);
  w.registerHook((g) => {
    const prev = w.grad;
    if (g instanceof SparseTensor && prev instanceof SparseTensor) {
      // backward() then stores the hook's result as the whole gradient.
      w.grad = null;
      return prev.addSparse(g);
    }
    return undefined;
  });
}

/**
 * Rows of `weight` (`[num, dim]`) at `indices` (int32, any shape): `[...indices.shape, dim]`.
 * With `{sparse: true}`, eager backward gives the weight an `ad.SparseTensor` gradient that holds
 * only the looked-up rows (see the file comment).
 * @example
 * const w = ad.tensor([[0, 0], [1, 1], [2, 2]]);
 * ad.nn.embedding(w, ad.tensor([2, 0], { dtype: "int32" })).toArray(); // [[2, 2], [0, 0]]
 */
export function embedding(
  weight: Tensor,
  indices: TensorLike | readonly number[],
  opts: { sparse?: boolean } = {},
): Tensor {
  if (!(weight instanceof Tensor) || weight.ndim !== 2)
    throw new ShapeError(`embedding: weight must be a [num, dim] tensor`);
  const idx = indexTensor(indices, "embedding");
  if (idx._trace === null) {
    const d = idx._hostData();
    const n = weight.shape[0]!;
    for (let i = 0; i < d.length; i++)
      if (d[i]! < 0 || d[i]! >= n)
        throw new ShapeError(`embedding: index ${d[i]} is out of range for ${n} embeddings`);
  }
  if (opts.sparse === true && weight._trace === null && weight.requiresGrad && isGradEnabled()) {
    keepSparseAccumulation(weight);
    return sparseLookup(weight, idx);
  }
  return take(weight, idx, 0);
}

/**
 * Layer normalisation over the trailing `normalizedShape` axes: (x − mean) / √(var + eps) · weight
 * + bias (biased variance, as PyTorch).
 * @example
 * ad.nn.layerNorm(ad.tensor([[1, 2, 3]]), [3]).toArray(); // ≈ [[-1.2247, 0, 1.2247]]
 */
export function layerNorm(
  x: TensorLike,
  normalizedShape: number | readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const t = asTensor(x, "layerNorm");
  const ns = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
  const tail = t.shape.slice(t.ndim - ns.length);
  if (ns.length > t.ndim || tail.some((d, i) => d !== ns[i]))
    throw new ShapeError(
      `layerNorm: the input has shape ${fmtShape(t.shape)}, whose trailing axes do not match normalizedShape ${fmtShape(ns)}`,
    );
  const axis = ns.map((_, i) => t.ndim - ns.length + i);
  const mu = mean(t, { axis, keepdims: true });
  const v = variance(t, { axis, keepdims: true });
  let y = mul(sub(t, mu), rsqrt(add(v, eps)));
  if (weight !== null && weight !== undefined) y = mul(y, weight);
  if (bias !== null && bias !== undefined) y = add(y, bias);
  return y;
}

/**
 * Inverted dropout: zero each element with probability `p` (drawn from `key`) and scale the rest
 * by 1/(1 − p); the identity when `training` is false or p = 0.
 * @example
 * ad.nn.dropout(ad.ones([4]), 0.5, ad.random.key(0)).toArray(); // entries 0 or 2
 */
export function dropout(x: TensorLike, p: number, key: Key, opts: { training?: boolean } = {}): Tensor {
  const t = asTensor(x, "dropout");
  if (typeof p !== "number" || !(p >= 0 && p <= 1))
    throw new ShapeError(`dropout: p must be a probability in [0, 1], got ${String(p)}`);
  if (opts.training === false || p === 0) return t;
  if (!isFloat(t.dtype)) throw new DTypeError(`dropout: expected a floating-point tensor, got ${t.dtype}`);
  if (p === 1) return mul(t, 0);
  const keep = bernoulli(key, 1 - p, t.shape);
  return where(keep, div(t, 1 - p), 0);
}

/**
 * SiLU (swish): x·sigmoid(x).
 * @example
 * ad.nn.silu(ad.tensor([0])).toArray(); // [0]
 */
export function silu(x: TensorLike): Tensor {
  const t = asTensor(x, "silu");
  return mul(t, sigmoid(t));
}

/**
 * Leaky ReLU: x for x > 0, slope·x otherwise (default slope 0.01).
 * @example
 * ad.nn.leakyRelu(ad.tensor([-1, 2]), 0.1).toArray(); // [-0.1, 2]
 */
export function leakyRelu(x: TensorLike, negativeSlope = 0.01): Tensor {
  const t = asTensor(x, "leakyRelu");
  return where(greater(t, 0), t, mul(t, negativeSlope));
}

/**
 * Merge axes `startDim … endDim` (default 1 … −1) into one, as `torch.flatten`.
 * @example
 * ad.nn.flatten(ad.zeros([2, 3, 4])).shape; // [2, 12]
 */
export function flatten(x: TensorLike, startDim = 1, endDim = -1): Tensor {
  const t = asTensor(x, "flatten");
  if (t.ndim === 0) return reshape(t, [1]);
  const s = startDim < 0 ? startDim + t.ndim : startDim;
  const e = endDim < 0 ? endDim + t.ndim : endDim;
  if (s < 0 || e >= t.ndim || s > e)
    throw new ShapeError(`flatten: axes ${startDim} … ${endDim} do not fit shape ${fmtShape(t.shape)}`);
  const merged = t.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return reshape(t, [...t.shape.slice(0, s), merged, ...t.shape.slice(e + 1)]);
}
