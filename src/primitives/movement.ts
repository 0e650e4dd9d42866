/**
 * @file Data-movement primitives: reshape, transpose, broadcast, slice, pad, concatenate, flip,
 * gather and scatter-add. All are linear in their array operand, so each JVP applies the op to
 * the tangent and each VJP applies its transpose (slice <-> pad, gather <-> scatter-add, ...).
 * Batching rules rewrite the params to act on every example at once: axes shift past the batch
 * axis, or the batch axis moves to the front and becomes one more leading axis.
 * Being linear, each maps every Taylor coefficient through its JVP (`jetLinear`).
 */

import { bind } from "../core/interpreter.js";
import { type Aval, definePrimitive, type Primitive } from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { Zero } from "../core/zero.js";
import { DTypeError, ShapeError } from "../errors.js";
import {
  broadcastTo,
  concat,
  flip,
  gather,
  pad,
  reshape,
  scatterAdd,
  slice,
  transpose,
  zeros,
} from "../ops/index.js";
import { broadcastShapes, fmtShape, shapeEq, sizeOf } from "../shape.js";
import {
  batchFirst,
  batchSize,
  instantiate,
  moveAxis,
  need,
  nz,
  onlyDim,
  unbroadcast,
  withBatchAxis,
} from "./rules.js";
import { jetLinear } from "./series.js";

const same = (a: Aval, shape?: readonly number[]): Aval => ({
  shape: shape ?? a.shape,
  dtype: a.dtype,
  weakType: a.weakType,
});

export interface ReshapeParams {
  shape: number[];
}
// reshape is linear: d reshape(x) = reshape(dx); its transpose reshapes back
export const reshapeP: Primitive<ReshapeParams> = definePrimitive<ReshapeParams>({
  name: "reshape",
  saves: "none",
  abstractEval([a], p) {
    if (sizeOf(p.shape) !== sizeOf(a!.shape))
      throw new ShapeError(
        `reshape: cannot reshape ${fmtShape(a!.shape)} (size ${sizeOf(a!.shape)}) into ${fmtShape(p.shape)}`,
      );
    return [same(a!, p.shape)];
  },
  impl: (_b, [x]) => [x!], // buffers are immutable: a reshape shares storage
  jvp: (_, [t], __, p) => [reshape(t as Tensor, p.shape)],
  vjp: ([ct], [x]) => [reshape(ct!, x!.shape)],
  // row-major reshape of each example = reshape of the batch with its axis first to [n, ...shape]
  batch: ([x], dims, p) => {
    const front = moveAxis(x!, onlyDim(dims), 0);
    return [[reshape(front, [front.shape[0]!, ...p.shape])], [0]];
  },
  // jet: linear, so y_k is the op applied to x_k
  jet: jetLinear(() => reshapeP),
  showParams: (p) => `shape=${fmtShape(p.shape)}`,
});

export interface TransposeParams {
  perm: number[];
}
// d transpose(x) = transpose(dx); the transpose of a permutation is its inverse
export const transposeP: Primitive<TransposeParams> = definePrimitive<TransposeParams>({
  name: "transpose",
  saves: "none",
  abstractEval([a], p) {
    const n = a!.shape.length;
    const seen = new Set(p.perm);
    if (p.perm.length !== n || seen.size !== n || p.perm.some((q) => !Number.isInteger(q) || q < 0 || q >= n))
      throw new ShapeError(
        `transpose: axes [${p.perm.join(", ")}] are not a permutation of the ${n} axes of ${fmtShape(a!.shape)}`,
      );
    return [
      same(
        a!,
        p.perm.map((q) => a!.shape[q]!),
      ),
    ];
  },
  impl: (b, [x], [a], p) => [b.transpose(x!, a!.shape, p.perm, a!.dtype)],
  jvp: (_, [t], __, p) => [transpose(t as Tensor, p.perm)],
  vjp: ([ct], _x, _o, p) => {
    const inv = new Array<number>(p.perm.length);
    p.perm.forEach((q, i) => {
      inv[q] = i;
    });
    return [transpose(ct!, inv)];
  },
  // one permutation of the batch: the batch axis first, then the example axes in perm's order
  batch: ([x], dims, p) => {
    const d = onlyDim(dims);
    return [[transpose(x!, [d, ...p.perm.map((q) => withBatchAxis(q, d))])], [0]];
  },
  // jet: linear, so y_k is the op applied to x_k
  jet: jetLinear(() => transposeP),
  showParams: (p) => `perm=[${p.perm.join(",")}]`,
});

export interface BroadcastParams {
  shape: number[];
}
// d broadcast(x) = broadcast(dx); its transpose sums over the broadcast axes
export const broadcastP: Primitive<BroadcastParams> = definePrimitive<BroadcastParams>({
  name: "broadcast_to",
  saves: "none",
  abstractEval([a], p) {
    const b = broadcastShapes(a!.shape, p.shape, "broadcastTo");
    if (!shapeEq(b, p.shape))
      throw new ShapeError(`broadcastTo: cannot broadcast ${fmtShape(a!.shape)} to ${fmtShape(p.shape)}`);
    return [same(a!, p.shape)];
  },
  impl: (b, [x], [a], p) => [b.broadcast(x!, a!.shape, p.shape, a!.dtype)],
  jvp: (_, [t], __, p) => [broadcastTo(t as Tensor, p.shape)],
  vjp: ([ct], [x]) => [unbroadcast(ct!, x!.shape)],
  // batch first, then 1s keeping the example axes right-aligned: [n, 1.., ...x] -> [n, ...shape]
  batch: ([x], dims, p) => {
    const front = moveAxis(x!, onlyDim(dims), 0);
    const n = front.shape[0]!;
    const ex = front.shape.slice(1);
    const lifted = reshape(front, [n, ...new Array<number>(p.shape.length - ex.length).fill(1), ...ex]);
    return [[broadcastTo(lifted, [n, ...p.shape])], [0]];
  },
  // jet: linear, so y_k is the op applied to x_k
  jet: jetLinear(() => broadcastP),
  showParams: (p) => `shape=${fmtShape(p.shape)}`,
});

export interface SliceParams {
  begin: number[];
  size: number[];
}
// d slice(x) = slice(dx); the transpose pads the cotangent with zeros back to x's shape
export const sliceP: Primitive<SliceParams> = definePrimitive<SliceParams>({
  name: "slice",
  saves: "none",
  abstractEval([a], p) {
    const s = a!.shape;
    const ok =
      p.begin.length === s.length &&
      p.size.length === s.length &&
      s.every((d, i) => p.begin[i]! >= 0 && p.size[i]! >= 0 && p.begin[i]! + p.size[i]! <= d);
    if (!ok)
      throw new ShapeError(
        `slice: begin [${p.begin.join(", ")}] and size [${p.size.join(", ")}] do not fit in ${fmtShape(s)}`,
      );
    return [same(a!, p.size)];
  },
  impl: (b, [x], [a], p) => [b.slice(x!, a!.shape, p.begin, p.size, a!.dtype)],
  jvp: (_, [t], __, p) => [slice(t as Tensor, p.begin, p.size)],
  // the same block of every example: the whole batch axis, inserted at its place
  batch: ([x], dims, p) => {
    const d = onlyDim(dims);
    const begin = p.begin.slice();
    const size = p.size.slice();
    begin.splice(d, 0, 0);
    size.splice(d, 0, x!.shape[d]!);
    return [[slice(x!, begin, size)], [d]];
  },
  vjp: ([ct], [x], _o, p) => [
    pad(
      ct!,
      x!.shape.map((d, i) => [p.begin[i]!, d - p.begin[i]! - p.size[i]!] as [number, number]),
    ),
  ],
  // jet: linear, so y_k is the op applied to x_k
  jet: jetLinear(() => sliceP),
  showParams: (p) => `begin=[${p.begin.join(",")}] size=[${p.size.join(",")}]`,
});

export interface PadParams {
  widths: [number, number][];
  value: number;
}
// d pad(x, c) = pad(dx, 0); the transpose slices the interior back out
export const padP: Primitive<PadParams> = definePrimitive<PadParams>({
  name: "pad",
  saves: "none",
  abstractEval([a], p) {
    if (
      p.widths.length !== a!.shape.length ||
      p.widths.some(([l, h]) => !(Number.isInteger(l) && Number.isInteger(h) && l >= 0 && h >= 0))
    )
      throw new ShapeError(
        `pad: widths ${JSON.stringify(p.widths)} must give [before, after] >= 0 for each of the ${a!.shape.length} axes of ${fmtShape(a!.shape)}`,
      );
    return [
      same(
        a!,
        a!.shape.map((d, i) => d + p.widths[i]![0] + p.widths[i]![1]),
      ),
    ];
  },
  impl: (b, [x], [a], p) => [b.pad(x!, a!.shape, p.widths, p.value, a!.dtype)],
  jvp: (_, [t], __, p) => [pad(t as Tensor, p.widths)],
  // pad every example alike: no padding on the batch axis
  batch: ([x], dims, p) => {
    const d = onlyDim(dims);
    const widths = p.widths.map((w) => [w[0], w[1]] as [number, number]);
    widths.splice(d, 0, [0, 0]);
    return [bind(padP, [x!], { widths, value: p.value }), [d]];
  },
  vjp: ([ct], [x], _o, p) => [
    slice(
      ct!,
      p.widths.map((w) => w[0]),
      x!.shape,
    ),
  ],
  // jet: linear, so y_k is the op applied to x_k
  jet: jetLinear(() => padP),
  showParams: (p) => `widths=${JSON.stringify(p.widths)}${p.value !== 0 ? ` value=${p.value}` : ""}`,
});

export interface ConcatParams {
  axis: number;
}
// d concat(xs) = concat(dxs); the transpose slices each operand's block back out
export const concatP: Primitive<ConcatParams> = definePrimitive<ConcatParams>({
  name: "concatenate",
  saves: "none",
  abstractEval(avals, p) {
    if (avals.length === 0) throw new ShapeError("concat: needs at least one tensor");
    const first = avals[0]!;
    const ax = p.axis;
    let total = 0;
    for (const a of avals) {
      if (a.dtype !== first.dtype)
        throw new DTypeError(`concat: dtypes differ (${avals.map((v) => v.dtype).join(", ")})`);
      if (a.shape.length !== first.shape.length || a.shape.some((d, i) => i !== ax && d !== first.shape[i]))
        throw new ShapeError(
          `concat: shapes ${avals.map((v) => fmtShape(v.shape)).join(", ")} differ off axis ${ax}`,
        );
      total += a.shape[ax]!;
    }
    return [
      {
        shape: first.shape.map((d, i) => (i === ax ? total : d)),
        dtype: first.dtype,
        weakType: avals.every((a) => a.weakType),
      },
    ];
  },
  impl: (b, xs, avals, p) => [
    b.concat(
      xs,
      avals.map((a) => a.shape),
      p.axis,
      avals[0]!.dtype,
    ),
  ],
  jvp: (_, ts, __, p) => [concat(ts.map(instantiate), p.axis)],
  vjp: ([ct], xs, _o, p, needs) => {
    let off = 0;
    return xs.map((x, i) => {
      const begin = x.shape.map((_, j) => (j === p.axis ? off : 0));
      off += x.shape[p.axis]!;
      return need(needs, i, x, () => slice(ct!, begin, x.shape));
    });
  },
  // every operand with the batch axis first (unbatched ones repeated), joined on axis + 1
  batch: (xs, dims, p) => {
    const n = batchSize(xs, dims);
    const front = xs.map((x, i) => batchFirst(x, dims[i] ?? null, n));
    return [bind(concatP, front, { axis: p.axis + 1 }), [0]];
  },
  // jet: linear, so y_k is the op applied to x_k
  jet: jetLinear(() => concatP),
  showParams: (p) => `axis=${p.axis}`,
});

export interface FlipParams {
  axes: number[];
}
// flip is its own transpose
export const flipP: Primitive<FlipParams> = definePrimitive<FlipParams>({
  name: "rev",
  saves: "none",
  abstractEval: ([a]) => [same(a!)],
  impl: (b, [x], [a], p) => [b.flip(x!, a!.shape, p.axes, a!.dtype)],
  jvp: (_, [t], __, p) => [flip(t as Tensor, p.axes)],
  vjp: ([ct], _x, _o, p) => [flip(ct!, p.axes)],
  // flip the same axes of every example: shifted past the batch axis, which stays put
  batch: ([x], dims, p) => {
    const d = onlyDim(dims);
    return [
      [
        flip(
          x!,
          p.axes.map((a) => withBatchAxis(a, d)),
        ),
      ],
      [d],
    ];
  },
  // jet: linear, so y_k is the op applied to x_k
  jet: jetLinear(() => flipP),
  showParams: (p) => `axes=[${p.axes.join(",")}]`,
});

export interface GatherParams {
  axis: number;
}

function checkIndex(
  op: string,
  x: { shape: readonly number[] },
  index: { shape: readonly number[]; dtype: string },
  axis: number,
) {
  if (index.dtype !== "int32") throw new DTypeError(`${op}: index must be int32, got ${index.dtype}`);
  if (index.shape.length !== x.shape.length)
    throw new ShapeError(
      `${op}: index ${fmtShape(index.shape)} must have the rank of the input ${fmtShape(x.shape)}`,
    );
  for (let i = 0; i < x.shape.length; i++)
    if (i !== axis && index.shape[i]! > x.shape[i]!)
      throw new ShapeError(
        `${op}: index ${fmtShape(index.shape)} is larger than the input ${fmtShape(x.shape)} on axis ${i}`,
      );
}

// gather is linear in x: d gather(x, i) = gather(dx, i); its transpose scatter-adds
export const gatherP: Primitive<GatherParams> = definePrimitive<GatherParams>({
  name: "gather",
  saves: "inputs",
  abstractEval([x, index], p) {
    checkIndex("gather", x!, index!, p.axis);
    return [same(x!, index!.shape)];
  },
  impl: (b, [x, i], [ax, ai], p) => [b.gather(x!, ax!.shape, p.axis, i!, ai!.shape, ax!.dtype)],
  jvp: ([, index], [t], __, p) => [gather(t as Tensor, p.axis, index!)],
  vjp: ([ct], [x, index], _o, p) => [
    scatterAdd(zeros(x!.shape, { dtype: x!.dtype }), p.axis, index!, ct!),
    Zero.like(index!),
  ],
  // x and index both with the batch axis first: example b's index reads example b's x on axis + 1
  batch: (args, dims, p) => {
    const n = batchSize(args, dims);
    const [x, index] = args.map((a, i) => batchFirst(a, dims[i] ?? null, n));
    return [bind(gatherP, [x!, index!], { axis: p.axis + 1 }), [0]];
  },
  // jet: linear, so y_k is the op applied to x_k
  jet: jetLinear(() => gatherP),
  showParams: (p) => `axis=${p.axis}`,
});

// scatter_add(x, i, src) is linear in (x, src); its transpose is (identity, gather)
export const scatterAddP: Primitive<GatherParams> = definePrimitive<GatherParams>({
  name: "scatter_add",
  saves: "inputs",
  abstractEval([x, index, src], p) {
    checkIndex("scatterAdd", x!, index!, p.axis);
    if (!shapeEq(src!.shape, index!.shape))
      throw new ShapeError(
        `scatterAdd: src ${fmtShape(src!.shape)} must have the shape of index ${fmtShape(index!.shape)}`,
      );
    if (src!.dtype !== x!.dtype)
      throw new DTypeError(`scatterAdd: src dtype ${src!.dtype} differs from ${x!.dtype}`);
    return [same(x!)];
  },
  impl: (b, [x, i, s], [ax, ai], p) => [b.scatterAdd(x!, ax!.shape, p.axis, i!, ai!.shape, s!, ax!.dtype)],
  jvp: ([, index], [tx, , ts], __, p) => [
    nz(ts!, (t) => scatterAdd(instantiate(tx!), p.axis, index!, t)) ?? instantiate(tx!),
  ],
  vjp: ([ct], [x, index, src], _o, p, needs) => [
    need(needs, 0, x!, () => ct!),
    Zero.like(index!),
    need(needs, 2, src!, () => gather(ct!, p.axis, index!)),
  ],
  // x, index and src all with the batch axis first: example b scatters into example b, on axis + 1
  batch: (args, dims, p) => {
    const n = batchSize(args, dims);
    const front = args.map((a, i) => batchFirst(a, dims[i] ?? null, n));
    return [bind(scatterAddP, front, { axis: p.axis + 1 }), [0]];
  },
  // jet: linear, so y_k is the op applied to x_k
  jet: jetLinear(() => scatterAddP),
  showParams: (p) => `axis=${p.axis}`,
});
