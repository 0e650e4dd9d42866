/**
 * @file 2-d convolution (PyTorch's cross-correlation `conv2d`) and the `Conv2d` layer. The
 * convolution is im2col over library operations: pad, take the kh·kw shifted (strided, dilated)
 * views of the input, stack them into patches `[N, C·kh·kw, Ho·Wo]`, and multiply by the weight
 * `[out, C·kh·kw]` (per group). Every step is an ordinary differentiable operation, so the
 * gradients (and higher derivatives) come from the existing rules.
 */

import { castForMatmul } from "../amp/state.js";
import { Tensor, type TensorLike } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { DTypeError, ShapeError } from "../errors.js";
import { add, expandDims, matmul, pad, reshape, slice, squeeze, stack } from "../ops/index.js";
import type { Key } from "../random/index.js";
import { split } from "../random/index.js";
import { fmtShape } from "../shape.js";
import { checkDims, kaimingUniform, uniform } from "./init.js";
import type { ParamDType } from "./layers.js";
import { Module, parameter, resolveKey } from "./module.js";

/** A size per spatial axis: one number for both, or `[h, w]`. */
export type Pair = number | readonly [number, number];

/** Options of `conv2d`. */
export interface Conv2dOptions {
  stride?: Pair;
  /** Zero padding on each side (default 0). */
  padding?: Pair;
  dilation?: Pair;
  /** Channel groups (default 1): input and output channels are split into `groups` independent convolutions. */
  groups?: number;
}

function pair(v: Pair | undefined, dflt: number, name: string, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (p.some((x) => !Number.isInteger(x) || x < min))
    throw new ShapeError(
      `conv2d: ${name} must be ${min === 0 ? "a non-negative" : "a positive"} integer (or a pair), got ${String(v)}`,
    );
  return p;
}

/** `count` entries of axis `axis` starting at `start`, `step` apart. */
function strided(x: Tensor, axis: number, start: number, count: number, step: number): Tensor {
  const n = x.shape[axis]!;
  const span = count * step;
  let t = x;
  if (start + span > n) {
    // Pad the end so the window [start, start + span) exists; the padding is never selected.
    const w = x.shape.map((): [number, number] => [0, 0]);
    w[axis] = [0, start + span - n];
    t = pad(t, w);
  }
  const begin = t.shape.map((_, i) => (i === axis ? start : 0));
  const size = t.shape.map((d, i) => (i === axis ? span : d));
  t = slice(t, begin, size);
  if (step === 1) return t;
  const s = [...t.shape.slice(0, axis), count, step, ...t.shape.slice(axis + 1)];
  t = reshape(t, s);
  const b2 = s.map(() => 0);
  const z2 = s.map((d, i) => (i === axis + 1 ? 1 : d));
  return squeeze(slice(t, b2, z2), axis + 1);
}

/**
 * 2-d cross-correlation as `torch.nn.functional.conv2d`: input `[N, C, H, W]` (or `[C, H, W]`),
 * weight `[out, C / groups, kh, kw]`, optional bias `[out]`; output `[N, out, Ho, Wo]` with
 * Ho = ⌊(H + 2·ph − dh·(kh − 1) − 1) / sh⌋ + 1.
 * @example
 * ad.nn.conv2d(ad.ones([1, 1, 3, 3]), ad.ones([1, 1, 2, 2])).toArray(); // [[[[4, 4], [4, 4]]]]
 */
export function conv2d(
  x: TensorLike,
  weight: Tensor,
  bias?: Tensor | null,
  opts: Conv2dOptions = {},
): Tensor {
  if (!(x instanceof Tensor) || !(weight instanceof Tensor)) throw new DTypeError("conv2d: expected Tensors");
  if (!isFloat(x.dtype)) throw new DTypeError(`conv2d: the input must be floating point, got ${x.dtype}`);
  const unbatched = x.ndim === 3;
  const xb = unbatched ? expandDims(x, 0) : x;
  if (xb.ndim !== 4)
    throw new ShapeError(`conv2d: the input must be [N, C, H, W] or [C, H, W], got ${fmtShape(x.shape)}`);
  if (weight.ndim !== 4)
    throw new ShapeError(
      `conv2d: the weight must be [out, in/groups, kh, kw], got ${fmtShape(weight.shape)}`,
    );
  const [sh, sw] = pair(opts.stride, 1, "stride", 1);
  const [ph, pw] = pair(opts.padding, 0, "padding", 0);
  const [dh, dw] = pair(opts.dilation, 1, "dilation", 1);
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1)
    throw new ShapeError(`conv2d: groups must be a positive integer, got ${groups}`);
  const [N, C, H, W] = xb.shape as [number, number, number, number];
  const [O, Cg, kh, kw] = weight.shape as [number, number, number, number];
  if (C % groups !== 0 || O % groups !== 0 || Cg * groups !== C)
    throw new ShapeError(
      `conv2d: the input has ${C} channels and the weight ${fmtShape(weight.shape)} with groups = ${groups}; expected weight [out, ${C / groups}, kh, kw] with out divisible by groups`,
    );
  const Ho = Math.floor((H + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const Wo = Math.floor((W + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (Ho <= 0 || Wo <= 0)
    throw new ShapeError(
      `conv2d: the kernel ${kh}×${kw} (dilation ${dh}×${dw}) does not fit the padded input ${H + 2 * ph}×${W + 2 * pw}`,
    );
  const xp =
    ph === 0 && pw === 0
      ? xb
      : pad(xb, [
          [0, 0],
          [0, 0],
          [ph, ph],
          [pw, pw],
        ]);
  const patches: Tensor[] = [];
  for (let i = 0; i < kh; i++) {
    if (sh === 1 && sw === 1) {
      // Unit strides: each patch is one window of the padded input (one copy, not two).
      for (let j = 0; j < kw; j++) patches.push(slice(xp, [0, 0, i * dh, j * dw], [N, C, Ho, Wo]));
      continue;
    }
    const rows = strided(xp, 2, i * dh, Ho, sh);
    for (let j = 0; j < kw; j++) patches.push(strided(rows, 3, j * dw, Wo, sw));
  }
  // [N, C, kh·kw, Ho, Wo] → [N, groups, Cg·kh·kw, Ho·Wo]
  const cols = reshape(stack(patches, 2), [N, groups, Cg * kh * kw, Ho * Wo]);
  const w = reshape(weight, [groups, O / groups, Cg * kh * kw]);
  let y = reshape(matmul(w, cols), [N, O, Ho, Wo]);
  if (bias !== null && bias !== undefined) {
    if (bias.ndim !== 1 || bias.shape[0] !== O)
      throw new ShapeError(`conv2d: the bias must be [${O}], got ${fmtShape(bias.shape)}`);
    // Under autocast the bias joins the low-precision result (as PyTorch's autocast conv2d).
    y = add(y, reshape(castForMatmul([bias])[0]!, [O, 1, 1]));
  }
  return unbatched ? reshape(y, [O, Ho, Wo]) : y;
}

/** Options of `Conv2d`. */
export interface Conv2dLayerOptions extends Conv2dOptions {
  bias?: boolean;
  key?: Key;
  dtype?: ParamDType;
}

/**
 * A 2-d convolution layer: weight `[out, in/groups, kh, kw]` and bias `[out]`, both
 * U(−1/√fanIn, 1/√fanIn) with fanIn = in/groups·kh·kw (PyTorch's initialisation).
 * @example
 * const conv = new ad.nn.Conv2d(3, 8, 3, { padding: 1, key: ad.random.key(0) });
 * conv.forward(ad.zeros([2, 3, 16, 16])).shape; // [2, 8, 16, 16]
 */
export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dLayerOptions = {}) {
    super();
    checkDims("Conv2d", { inChannels, outChannels });
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize, 1, "kernelSize", 1);
    this.stride = pair(opts.stride, 1, "stride", 1);
    this.padding = pair(opts.padding, 0, "padding", 0);
    this.dilation = pair(opts.dilation, 1, "dilation", 1);
    this.groups = opts.groups ?? 1;
    if (
      !Number.isInteger(this.groups) ||
      this.groups < 1 ||
      inChannels % this.groups ||
      outChannels % this.groups
    )
      throw new ShapeError(
        `Conv2d: groups (${String(opts.groups)}) must be a positive integer dividing inChannels (${inChannels}) and outChannels (${outChannels})`,
      );
    const dtype = opts.dtype ?? "float32";
    const [kw, kb] = split(resolveKey(opts.key, "Conv2d"));
    const shape = [outChannels, inChannels / this.groups, ...this.kernelSize];
    const fanIn = (inChannels / this.groups) * this.kernelSize[0] * this.kernelSize[1];
    this.weight = parameter(kaimingUniform(kw!, shape, { dtype }));
    const bound = 1 / Math.sqrt(fanIn);
    this.bias = opts.bias === false ? null : parameter(uniform(kb!, [outChannels], -bound, bound, { dtype }));
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  override extraRepr(): string {
    return `${this.inChannels}, ${this.outChannels}, kernelSize=[${this.kernelSize}], stride=[${this.stride}], padding=[${this.padding}]`;
  }
}
