/**
 * @file Scaled dot-product attention with a FlashAttention-style backward pass, and
 * `nn.MultiHeadAttention` on top of it.
 *
 * softmax(Q·Kᵀ·scale)·V is one `customVjp` call. Its forward pass walks the queries in blocks of
 * `blockSize` rows and keeps, besides the output O, only the per-row log-sum-exp statistics
 * L = log Σⱼ exp(Sᵢⱼ): O(T) saved values instead of the T×T attention matrix (and its softmax
 * intermediates) that a composition of primitives stores for reverse mode. The backward pass
 * recomputes each block of probabilities P = exp(S − L) from Q, K and L and applies
 *   dV = Pᵀ·dO,  dP = dO·Vᵀ,  dS = P ∘ (dP − rowsum(dO ∘ O)),  dQ = dS·K·scale,  dK = dSᵀ·Q·scale
 * block by block, so neither pass ever holds more than blockSize × T scores at a time. The
 * backward pass is built from library operations, so it is itself differentiable (`grad` of
 * `grad`, `hessian`); forward mode uses a separate (unblocked) JVP rule.
 */

import { isGradEnabled, noGrad } from "../core/grad-mode.js";
import { Tensor } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import {
  add,
  concat,
  div,
  equal,
  exp,
  expandDims,
  isfinite,
  log,
  logicalAnd,
  logicalNot,
  matmul,
  max,
  mul,
  reshape,
  slice,
  split,
  stopGradient,
  sub,
  sum,
  swapLastAxes,
  tensor,
  transpose,
  where,
} from "../ops/index.js";
import type { Key } from "../random/index.js";
import { split as splitKey } from "../random/index.js";
import { broadcastShapes, fmtShape } from "../shape.js";
import { customVjp } from "../transforms/custom.js";
import { linear } from "./functional.js";
import { checkDims, xavierUniform, zeros as zerosInit } from "./init.js";
import { Linear } from "./layers.js";
import { Module, parameter, resolveKey } from "./module.js";

/** Options of `scaledDotProductAttention`. */
export interface AttentionOptions {
  /**
   * A bool mask broadcastable to `[..., Tq, Tk]`: `true` where a query may attend to a key (as
   * `torch.nn.functional.scaled_dot_product_attention`'s bool `attn_mask`).
   */
  mask?: Tensor | null;
  /** Causal masking, top-left aligned as PyTorch's `is_causal`: query i sees keys j ≤ i. */
  causal?: boolean;
  /** Score scale (default 1/√d). */
  scale?: number;
  /** Query rows per block in the forward and backward passes (default 128). */
  blockSize?: number;
}

function rowSlice(x: Tensor, start: number, len: number): Tensor {
  const ax = x.ndim - 2;
  if (start === 0 && len === x.shape[ax]) return x;
  return slice(
    x,
    x.shape.map((_, i) => (i === ax ? start : 0)),
    x.shape.map((d, i) => (i === ax ? len : d)),
  );
}

/** The allowed (query, key) pairs of query rows start … start+len, or null for all. */
function allowedBlock(
  mask: Tensor | null,
  causal: boolean,
  start: number,
  len: number,
  tk: number,
): Tensor | null {
  let a: Tensor | null = null;
  if (mask !== null)
    a = mask.ndim >= 2 && mask.shape[mask.ndim - 2] !== 1 ? rowSlice(mask, start, len) : mask;
  if (causal) {
    const c = new Uint8Array(len * tk);
    for (let i = 0; i < len; i++) for (let j = 0; j <= Math.min(start + i, tk - 1); j++) c[i * tk + j] = 1;
    const ct = tensor(c, { dtype: "bool", shape: [len, tk] });
    a = a === null ? ct : logicalAnd(a, ct);
  }
  return a;
}

/** Scores of a block of queries: Q_b·Kᵀ·scale, −∞ where not allowed. */
function blockScores(qb: Tensor, k: Tensor, scale: number, allowed: Tensor | null): Tensor {
  const s = mul(matmul(qb, swapLastAxes(k)), scale);
  return allowed === null ? s : where(allowed, s, Number.NEGATIVE_INFINITY);
}

const cat = (xs: Tensor[]) => (xs.length === 1 ? xs[0]! : concat(xs, -2));

/** The blocked forward pass: the output and the per-row log-sum-exp `[..., Tq, 1]`. */
function forwardBlocks(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  scale: number,
  causal: boolean,
  block: number,
): { o: Tensor; lse: Tensor } {
  const tq = q.shape[q.ndim - 2]!;
  const tk = k.shape[k.ndim - 2]!;
  const os: Tensor[] = [];
  const ls: Tensor[] = [];
  for (let s0 = 0; s0 < tq; s0 += block) {
    const len = Math.min(block, tq - s0);
    const sc = blockScores(rowSlice(q, s0, len), k, scale, allowedBlock(mask, causal, s0, len, tk));
    const m = stopGradient(max(sc, { axis: -1, keepdims: true }));
    const mSafe = where(isfinite(m), m, 0); // a fully masked row: all scores −∞
    const p = exp(sub(sc, mSafe));
    const l = sum(p, { axis: -1, keepdims: true });
    os.push(div(matmul(p, v), where(equal(l, 0), 1, l)));
    ls.push(add(mSafe, log(l)));
  }
  return { o: cat(os), lse: cat(ls) };
}

/** The blocked backward pass from the saved statistics. */
function backwardBlocks(r: Residuals, o: Tensor, lse: Tensor, dO: Tensor): [Tensor, Tensor, Tensor] {
  const { q, k, v, mask, scale, causal, block } = r;
  const tq = q.shape[q.ndim - 2]!;
  const tk = k.shape[k.ndim - 2]!;
  const dRow = sum(mul(dO, o), { axis: -1, keepdims: true });
  const lseSafe = where(isfinite(lse), lse, 0);
  const dqs: Tensor[] = [];
  let dk: Tensor | null = null;
  let dv: Tensor | null = null;
  for (let s0 = 0; s0 < tq; s0 += block) {
    const len = Math.min(block, tq - s0);
    const qb = rowSlice(q, s0, len);
    const dOb = rowSlice(dO, s0, len);
    const sc = blockScores(qb, k, scale, allowedBlock(mask, causal, s0, len, tk));
    const p = exp(sub(sc, rowSlice(lseSafe, s0, len)));
    const pv = matmul(swapLastAxes(p), dOb);
    dv = dv === null ? pv : add(dv, pv);
    const dp = matmul(dOb, swapLastAxes(v));
    const ds = mul(p, sub(dp, rowSlice(dRow, s0, len)));
    dqs.push(mul(matmul(ds, k), scale));
    const kk = mul(matmul(swapLastAxes(ds), qb), scale);
    dk = dk === null ? kk : add(dk, kk);
  }
  return [cat(dqs), dk!, dv!];
}

interface Residuals {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  mask: Tensor | null;
  o: Tensor;
  lse: Tensor;
  scale: number;
  causal: boolean;
  block: number;
}

const flashAttention = customVjp(
  (
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | null,
    scale: number,
    causal: boolean,
    block: number,
  ): Tensor => forwardBlocks(q, k, v, mask, scale, causal, block).o,
  {
    fwd: (q, k, v, mask, scale, causal, block): [Tensor, Residuals] => {
      // Eager mode records nothing here: the saved values are O and the statistics only.
      const { o, lse } = noGrad(() => forwardBlocks(q, k, v, mask, scale, causal, block));
      return [o, { q, k, v, mask, o, lse, scale, causal, block }];
    },
    bwd: (r: Residuals, dO: Tensor) => {
      let { o, lse } = r;
      // Eager createGraph: recompute the statistics with their history so the gradient is differentiable.
      if (isGradEnabled() && (r.q.requiresGrad || r.k.requiresGrad || r.v.requiresGrad))
        ({ o, lse } = forwardBlocks(r.q, r.k, r.v, r.mask, r.scale, r.causal, r.block));
      const [dq, dk, dv] = backwardBlocks(r, o, lse, dO);
      return [dq, dk, dv, null, null, null, null];
    },
    jvp: ([q, k, v, mask, scale, causal], [tq, tk, tv]) => {
      const sc = blockScores(
        q,
        k,
        scale,
        allowedBlock(mask, causal, 0, q.shape[q.ndim - 2]!, k.shape[k.ndim - 2]!),
      );
      const m = stopGradient(max(sc, { axis: -1, keepdims: true }));
      const e = exp(sub(sc, where(isfinite(m), m, 0)));
      const l = sum(e, { axis: -1, keepdims: true });
      const p = div(e, where(equal(l, 0), 1, l));
      const out = matmul(p, v);
      const ds = mul(add(matmul(tq, swapLastAxes(k)), matmul(q, swapLastAxes(tk))), scale);
      const pds = mul(p, ds);
      const dp = sub(pds, mul(p, sum(pds, { axis: -1, keepdims: true })));
      return [out, add(matmul(dp, v), matmul(p, tv))];
    },
  },
);

/**
 * softmax(Q·Kᵀ·scale + mask)·V for `q: [..., Tq, d]`, `k: [..., Tk, d]`, `v: [..., Tk, dv]` (equal
 * leading axes). Reverse mode saves only O and the per-row log-sum-exp (O(T) memory) and
 * recomputes the attention matrix block by block in the backward pass (see the file comment).
 * A query row with no allowed key gives zeros.
 * @example
 * const q = ad.random.normal(ad.random.key(0), [2, 16, 8]);
 * ad.nn.scaledDotProductAttention(q, q, q, { causal: true }).shape; // [2, 16, 8]
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOptions = {},
): Tensor {
  const op = "scaledDotProductAttention";
  for (const [n, t] of [
    ["q", q],
    ["k", k],
    ["v", v],
  ] as const) {
    if (!(t instanceof Tensor)) throw new DTypeError(`${op}: ${n} must be a Tensor`);
    if (t.ndim < 2)
      throw new ShapeError(`${op}: ${n} must have at least 2 axes [..., T, d], got ${fmtShape(t.shape)}`);
    if (!isFloat(t.dtype)) throw new DTypeError(`${op}: ${n} must be floating point, got ${t.dtype}`);
  }
  const batch = q.shape.slice(0, -2);
  const same = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((d, i) => d === b[i]);
  if (!same(k.shape.slice(0, -2), batch) || !same(v.shape.slice(0, -2), batch))
    throw new ShapeError(
      `${op}: q, k and v need the same leading axes, got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}`,
    );
  const d = q.shape[q.ndim - 1]!;
  const tq = q.shape[q.ndim - 2]!;
  const tk = k.shape[k.ndim - 2]!;
  if (k.shape[k.ndim - 1] !== d)
    throw new ShapeError(
      `${op}: q and k need the same feature size, got ${fmtShape(q.shape)} and ${fmtShape(k.shape)}`,
    );
  if (v.shape[v.ndim - 2] !== tk)
    throw new ShapeError(
      `${op}: k and v need the same length, got ${fmtShape(k.shape)} and ${fmtShape(v.shape)}`,
    );
  if (tq === 0 || tk === 0) throw new ShapeError(`${op}: empty sequences (Tq = ${tq}, Tk = ${tk})`);
  if (q.dtype !== k.dtype || q.dtype !== v.dtype)
    throw new DTypeError(`${op}: q, k and v must have one dtype, got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  const mask = opts.mask ?? null;
  if (mask !== null) {
    if (!(mask instanceof Tensor) || mask.dtype !== "bool")
      throw new DTypeError(`${op}: mask must be a bool tensor (true = may attend)`);
    const full = [...batch, tq, tk];
    const b = broadcastShapes(mask.shape, full, op);
    if (!same(b, full))
      throw new ShapeError(
        `${op}: mask of shape ${fmtShape(mask.shape)} does not broadcast to ${fmtShape(full)}`,
      );
  }
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const block = opts.blockSize ?? 128;
  if (!Number.isInteger(block) || block < 1)
    throw new ShapeError(`${op}: blockSize must be a positive integer, got ${String(opts.blockSize)}`);
  return flashAttention(q, k, v, mask, scale, opts.causal === true, block);
}

/** Options of `MultiHeadAttention`. */
export interface MultiHeadAttentionOptions {
  /** Biases on the input and output projections (default true). */
  bias?: boolean;
  /** Inputs `[batch, T, E]` (default true) or PyTorch's default `[T, batch, E]` (false). */
  batchFirst?: boolean;
  /** Initialisation key (default: the next key of the default sequence, see `nn.manualSeed`). */
  key?: Key;
  dtype?: "float32" | "float64";
  /** Query rows per block of the attention kernel (default 128). */
  blockSize?: number;
}

/** Per-call options of `MultiHeadAttention.forward`. */
export interface MultiHeadAttentionCallOptions {
  /** Bool, broadcastable to `[batch, heads, Tq, Tk]` (or `[Tq, Tk]`): true where attending is allowed. */
  mask?: Tensor | null;
  /** Bool `[batch, Tk]`: true marks padding keys that no query may attend to (PyTorch's `key_padding_mask`). */
  keyPaddingMask?: Tensor | null;
  /** Causal attention (query i sees keys j ≤ i). */
  causal?: boolean;
}

/**
 * Multi-head attention (PyTorch's `nn.MultiheadAttention` parameters: `inProjWeight [3E, E]`
 * (Xavier-uniform), `inProjBias [3E]` (zeros), `outProj` a `Linear(E, E)` with zero bias).
 * `forward(query, key = query, value = key, {mask, keyPaddingMask, causal})` takes `[batch, T, E]`
 * (or `[T, E]`) and returns the attention output only (no averaged weights). The attention
 * itself is `scaledDotProductAttention`, so its backward pass saves O(T) per head.
 * @example
 * const mha = new ad.nn.MultiHeadAttention(16, 4, { key: ad.random.key(0) });
 * const x = ad.random.normal(ad.random.key(1), [2, 10, 16]);
 * mha.forward(x, x, x, { causal: true }).shape; // [2, 10, 16]
 */
export class MultiHeadAttention extends Module<
  [Tensor, (Tensor | null)?, (Tensor | null)?, MultiHeadAttentionCallOptions?],
  Tensor
> {
  inProjWeight: Tensor;
  inProjBias: Tensor | null;
  outProj: Linear;
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly batchFirst: boolean;
  readonly blockSize: number;

  constructor(embedDim: number, numHeads: number, opts: MultiHeadAttentionOptions = {}) {
    super();
    checkDims("MultiHeadAttention", { embedDim, numHeads });
    if (embedDim % numHeads !== 0)
      throw new ShapeError(
        `MultiHeadAttention: embedDim ${embedDim} is not divisible by numHeads ${numHeads}`,
      );
    this.embedDim = embedDim;
    this.numHeads = numHeads;
    this.headDim = embedDim / numHeads;
    this.batchFirst = opts.batchFirst ?? true;
    this.blockSize = opts.blockSize ?? 128;
    const dtype = opts.dtype ?? "float32";
    const [k1, k2] = splitKey(resolveKey(opts.key, "MultiHeadAttention"));
    const bias = opts.bias ?? true;
    this.inProjWeight = parameter(xavierUniform(k1!, [3 * embedDim, embedDim], { dtype }));
    this.inProjBias = bias ? parameter(zerosInit([3 * embedDim], { dtype })) : null;
    this.outProj = new Linear(embedDim, embedDim, { bias, key: k2!, dtype });
    if (this.outProj.bias !== null) this.outProj.bias = parameter(zerosInit([embedDim], { dtype }));
  }

  forward(
    query: Tensor,
    key?: Tensor | null,
    value?: Tensor | null,
    opts: MultiHeadAttentionCallOptions = {},
  ): Tensor {
    const kIn = key ?? query;
    const vIn = value ?? kIn;
    const unbatched = query.ndim === 2;
    const toBTE = (t: Tensor, name: string): Tensor => {
      if (t.ndim !== (unbatched ? 2 : 3) || t.shape[t.ndim - 1] !== this.embedDim)
        throw new ShapeError(
          `MultiHeadAttention: ${name} must be ${unbatched ? "[T, E]" : this.batchFirst ? "[batch, T, E]" : "[T, batch, E]"} with E = ${this.embedDim}, got ${fmtShape(t.shape)}`,
        );
      if (unbatched) return expandDims(t, 0);
      return this.batchFirst ? t : transpose(t, [1, 0, 2]);
    };
    const q0 = toBTE(query, "query");
    const k0 = toBTE(kIn, "key");
    const v0 = toBTE(vIn, "value");
    const [wq, wk, wv] = split(this.inProjWeight, 3, 0);
    const [bq, bk, bv] = this.inProjBias === null ? [null, null, null] : split(this.inProjBias, 3, 0);
    const heads = (t: Tensor): Tensor => {
      const [b, T] = t.shape;
      return transpose(reshape(t, [b!, T!, this.numHeads, this.headDim]), [0, 2, 1, 3]);
    };
    const q = heads(linear(q0, wq!, bq));
    const k = heads(linear(k0, wk!, bk));
    const v = heads(linear(v0, wv!, bv));
    let mask = opts.mask ?? null;
    if (opts.keyPaddingMask !== undefined && opts.keyPaddingMask !== null) {
      const kp = opts.keyPaddingMask;
      const B = q0.shape[0]!;
      const Tk = k0.shape[1]!;
      const kp2 = unbatched && kp.ndim === 1 ? expandDims(kp, 0) : kp;
      if (kp2.dtype !== "bool" || kp2.ndim !== 2 || kp2.shape[0] !== B || kp2.shape[1] !== Tk)
        throw new ShapeError(
          `MultiHeadAttention: keyPaddingMask must be bool [batch, Tk] = [${B}, ${Tk}], got ${kp2.dtype} ${fmtShape(kp2.shape)}`,
        );
      const allow = reshape(logicalNot(kp2), [B, 1, 1, Tk]);
      mask = mask === null ? allow : logicalAnd(mask, allow);
    }
    const o = scaledDotProductAttention(q, k, v, {
      mask,
      causal: opts.causal === true,
      blockSize: this.blockSize,
    });
    const [B, , T] = o.shape;
    const merged = reshape(transpose(o, [0, 2, 1, 3]), [B!, T!, this.embedDim]);
    const out = this.outProj.forward(merged);
    if (unbatched) return reshape(out, [T!, this.embedDim]);
    return this.batchFirst ? out : transpose(out, [1, 0, 2]);
  }

  override extraRepr(): string {
    return `embedDim=${this.embedDim}, numHeads=${this.numHeads}, batchFirst=${this.batchFirst}`;
  }
}
