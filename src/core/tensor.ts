/**
 * @file The Tensor value. One class serves every level: a concrete tensor holds a backend
 * buffer; a traced tensor (inside grad/jvp/...) holds a `TraceState` owned by the interpreter
 * that created it. Users never see the difference, except that reading a traced value reads
 * its concrete primal. Method forms (`t.add(u)`) delegate to the ops in `src/ops`.
 */

import { type Backend, type DeviceBuffer, getBackend } from "../backend/backend.js";
import type { AnyTypedArray, DType } from "../dtype.js";
import { allocArray } from "../dtype.js";
import * as eager from "../eager/autograd.js";
import { ShapeError, TransformError } from "../errors.js";
import * as ops from "../ops/index.js";
import { fmtShape, sizeOf } from "../shape.js";
import type { Interpreter } from "./interpreter.js";
import type { GradHook, Ref } from "./tape.js";

let nextId = 0;

/** @internal The id the next tensor will get. */
export function peekTensorId(): number {
  return nextId;
}

/** A tensor or a JS number: what every operation accepts. */
export type TensorLike = Tensor | number;

/** Per-interpreter bookkeeping carried by a traced tensor. */
export interface TraceState {
  readonly owner: Interpreter;
}

/** Nested JS arrays of numbers (or booleans for bool tensors), as `toArray()` returns. */
export type NestedArray = number | boolean | NestedArray[];

/**
 * An n-dimensional array. Immutable from the user's point of view; memory is managed by the
 * garbage collector.
 * @example
 * const t = ad.tensor([[1, 2], [3, 4]]);
 * t.shape; // [2, 2]
 * t.mul(2).sum().item(); // 20
 */
export class Tensor {
  readonly shape: number[];
  readonly dtype: DType;
  /** True for values that came from JS numbers: they adopt the dtype of the tensors they meet. */
  readonly weakType: boolean;
  /** @internal Device storage of a concrete tensor; null for a traced tensor. */
  _buf: DeviceBuffer | null;
  /** @internal The backend owning `_buf`. */
  _backend: Backend | null;
  /** @internal Set on traced tensors only. */
  _trace: TraceState | null;
  // The eager-autograd fields below default to values kept on the prototype (see the end of this
  // file): most tensors never set them, so a tensor does not store them until one is assigned.
  /**
   * The gradient accumulated by `backward()` (eager autograd), or null.
   */
  declare grad: Tensor | null;
  /** @internal Eager autograd: operations on this tensor are recorded. */
  declare _requiresGrad: boolean;
  /** @internal Eager autograd: the recorded node output that produced this tensor (or its leaf node). */
  declare _ref: Ref | null;
  /** @internal Bumped by every in-place modification (saved values are checked against it). */
  declare _version: number;
  /** @internal Creation order (jit tells tensors captured from outside from those made while tracing). */
  readonly _id = nextId++;

  /** @internal Use `ad.tensor` and friends to create tensors. */
  constructor(
    shape: number[],
    dtype: DType,
    weakType: boolean,
    buf: DeviceBuffer | null,
    backend: Backend | null,
    trace: TraceState | null,
  ) {
    this.shape = shape;
    this.dtype = dtype;
    this.weakType = weakType;
    this._buf = buf;
    this._backend = backend;
    this._trace = trace;
  }

  /** @internal A concrete tensor from host data (takes ownership of `data`). */
  static _fromHost(data: AnyTypedArray, shape: number[], dtype: DType, weakType = false): Tensor {
    const b = getBackend();
    return new Tensor(shape, dtype, weakType, b.fromHost(data), b, null);
  }

  /** Whether operations on this tensor are recorded for `backward()` (eager autograd). */
  get requiresGrad(): boolean {
    return this._requiresGrad;
  }
  set requiresGrad(on: boolean) {
    eager.setRequiresGrad(this, on);
  }

  /** True for tensors not produced by a recorded operation (inputs, parameters, constants). */
  get isLeaf(): boolean {
    return this._ref === null || this._ref.node.prim === null;
  }

  /** The name of the recorded operation that produced this tensor, or null for a leaf. */
  get gradFn(): string | null {
    return this._ref?.node.prim?.name ?? null;
  }

  /** How many times this tensor was modified in place. */
  get version(): number {
    return this._version;
  }

  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Number of dimensions. */
  get ndim(): number {
    return this.shape.length;
  }

  /** @internal The concrete tensor behind this value (its primal, through every transform). */
  _concrete(): Tensor {
    let t: Tensor = this;
    while (t._trace !== null) t = t._trace.owner.concrete(t);
    return t;
  }

  /** @internal Host storage of the concrete value; callers must not modify it. */
  /**
   * @internal The values for reading at once: a zero-copy view where the backend has one (valid
   * until its next kernel or allocation; nothing may run in between), else a host copy.
   */
  _readView(): AnyTypedArray {
    const c = this._concrete();
    const b = c._backend;
    return b !== null && c._buf !== null && b.transientView !== undefined
      ? b.transientView(c._buf, c.dtype, c.size)
      : this._hostData();
  }

  _hostData(): AnyTypedArray {
    const c = this._concrete();
    if (c._buf === null || c._backend === null) throw new TransformError("tensor has no data");
    return c._backend.toHost(c._buf, c.dtype, c.size);
  }

  /**
   * A fresh row-major TypedArray copy of the values.
   * @example
   * ad.tensor([1, 2]).data(); // Float32Array [1, 2]
   */
  data(): AnyTypedArray {
    const src = this._readView();
    const out = allocArray(this.dtype, src.length);
    out.set(src);
    return out;
  }

  /**
   * Nested JS arrays (a number for a 0-d tensor; booleans for bool tensors).
   * @example
   * ad.tensor([[1, 2], [3, 4]]).toArray(); // [[1, 2], [3, 4]]
   */
  toArray(): NestedArray {
    const d = this._readView();
    const isBool = this.dtype === "bool";
    const build = (dim: number, off: number): [NestedArray, number] => {
      if (dim === this.shape.length) return [isBool ? d[off] !== 0 : d[off]!, off + 1];
      const out: NestedArray[] = [];
      for (let i = 0; i < this.shape[dim]!; i++) {
        const [v, next] = build(dim + 1, off);
        out.push(v);
        off = next;
      }
      return [out, off];
    };
    return build(0, 0)[0];
  }

  /**
   * The single value of a size-1 tensor.
   * @example
   * ad.tensor([[3]]).item(); // 3
   */
  item(): number {
    if (this.size !== 1)
      throw new ShapeError(
        `item: only a tensor with one element has an item, got shape ${fmtShape(this.shape)}`,
      );
    return this._hostData()[0]!;
  }

  /**
   * NumPy-like rendering.
   * @example
   * String(ad.tensor([1.5, 2])); // "tensor([1.5, 2], dtype=float32)"
   */
  toString(): string {
    if (this._trace !== null && !canRead(this))
      return `Tracer(shape=${fmtShape(this.shape)}, dtype=${this.dtype})`;
    return `tensor(${formatData(this)}, dtype=${this.dtype})`;
  }

  /** Node's `console.log` shows the same rendering as `toString()`. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  // ---- eager autograd (PyTorch style) ----
  /**
   * Accumulate the gradient of this tensor into `.grad` of every leaf that requires grad.
   * @example
   * const x = ad.tensor(3, { requiresGrad: true });
   * x.mul(x).backward();
   * x.grad!.item(); // 6
   */
  backward(gradOutput?: TensorLike, opts?: eager.BackwardOptions): void {
    eager.backward(this, gradOutput, opts);
  }
  /** Reset `.grad` to null. @example x.zeroGrad(); */
  zeroGrad(): void {
    this.grad = null;
  }
  /** The same values with no autograd history (inside a transform: `stopGradient`). @example x.detach() */
  detach(): Tensor {
    return eager.detach(this);
  }
  /** A copy with its own storage (recorded, so gradients flow through it). @example x.clone() */
  clone(): Tensor {
    return ops.add(this, 0);
  }
  /**
   * Register a hook that sees (and may replace) this tensor's gradient; returns a remover (call it,
   * or its `remove()` as PyTorch's handle).
   * @example
   * const h = x.registerHook((g) => g.mul(2));
   * h.remove();
   */
  registerHook(hook: GradHook): eager.HookHandle {
    return eager.registerHook(this, hook);
  }
  /**
   * Release this tensor's backend memory now instead of when it is garbage collected: an optional
   * optimisation, never required (as `ad.dispose`). Using it (or a view sharing its storage)
   * afterwards throws; a tensor without device memory (a tracer, host data) is left as it is.
   * @example
   * const t = ad.ones([1000, 1000]);
   * t.dispose();
   */
  dispose(): void {
    if (this._trace === null && this._buf !== null) this._backend?.dispose?.(this._buf);
  }
  /** Keep this non-leaf tensor's gradient in `.grad` during backward. @example y.retainGrad(); */
  retainGrad(): void {
    eager.retainGrad(this);
  }
  /** In place: this += y (bumps the version counter). @example x.add_(1) */
  add_(y: TensorLike): Tensor {
    return eager.addInPlace(this, y);
  }
  /** In place: this -= y. @example x.sub_(1) */
  sub_(y: TensorLike): Tensor {
    return eager.subInPlace(this, y);
  }
  /** In place: this *= y. @example x.mul_(2) */
  mul_(y: TensorLike): Tensor {
    return eager.mulInPlace(this, y);
  }
  /** In place: this /= y. @example x.div_(2) */
  div_(y: TensorLike): Tensor {
    return eager.divInPlace(this, y);
  }
  /** In place: copy `src` (broadcast, cast) into this tensor. @example x.copy_(ad.zeros([2])) */
  copy_(src: TensorLike): Tensor {
    return eager.copyInPlace(this, src);
  }
  /** In place: set every element to `value`. @example x.fill_(1) */
  fill_(value: number): Tensor {
    return eager.fillInPlace(this, value);
  }
  /** In place: set every element to 0. @example x.zero_() */
  zero_(): Tensor {
    return eager.fillInPlace(this, 0);
  }

  // ---- method forms of the operations (each delegates to `ad.<op>`) ----
  neg(): Tensor {
    return ops.neg(this);
  }
  exp(): Tensor {
    return ops.exp(this);
  }
  log(): Tensor {
    return ops.log(this);
  }
  log1p(): Tensor {
    return ops.log1p(this);
  }
  expm1(): Tensor {
    return ops.expm1(this);
  }
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  rsqrt(): Tensor {
    return ops.rsqrt(this);
  }
  square(): Tensor {
    return ops.square(this);
  }
  reciprocal(): Tensor {
    return ops.reciprocal(this);
  }
  abs(): Tensor {
    return ops.abs(this);
  }
  sign(): Tensor {
    return ops.sign(this);
  }
  sin(): Tensor {
    return ops.sin(this);
  }
  cos(): Tensor {
    return ops.cos(this);
  }
  tan(): Tensor {
    return ops.tan(this);
  }
  asin(): Tensor {
    return ops.asin(this);
  }
  acos(): Tensor {
    return ops.acos(this);
  }
  atan(): Tensor {
    return ops.atan(this);
  }
  sinh(): Tensor {
    return ops.sinh(this);
  }
  cosh(): Tensor {
    return ops.cosh(this);
  }
  tanh(): Tensor {
    return ops.tanh(this);
  }
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  relu(): Tensor {
    return ops.relu(this);
  }
  softplus(): Tensor {
    return ops.softplus(this);
  }
  gelu(opts?: { approximate?: "none" | "tanh" }): Tensor {
    return ops.gelu(this, opts);
  }
  erf(): Tensor {
    return ops.erf(this);
  }
  floor(): Tensor {
    return ops.floor(this);
  }
  ceil(): Tensor {
    return ops.ceil(this);
  }
  round(): Tensor {
    return ops.round(this);
  }
  add(y: TensorLike): Tensor {
    return ops.add(this, y);
  }
  sub(y: TensorLike): Tensor {
    return ops.sub(this, y);
  }
  mul(y: TensorLike): Tensor {
    return ops.mul(this, y);
  }
  div(y: TensorLike): Tensor {
    return ops.div(this, y);
  }
  pow(y: TensorLike): Tensor {
    return ops.pow(this, y);
  }
  maximum(y: TensorLike): Tensor {
    return ops.maximum(this, y);
  }
  minimum(y: TensorLike): Tensor {
    return ops.minimum(this, y);
  }
  atan2(y: TensorLike): Tensor {
    return ops.atan2(this, y);
  }
  equal(y: TensorLike): Tensor {
    return ops.equal(this, y);
  }
  notEqual(y: TensorLike): Tensor {
    return ops.notEqual(this, y);
  }
  less(y: TensorLike): Tensor {
    return ops.less(this, y);
  }
  lessEqual(y: TensorLike): Tensor {
    return ops.lessEqual(this, y);
  }
  greater(y: TensorLike): Tensor {
    return ops.greater(this, y);
  }
  greaterEqual(y: TensorLike): Tensor {
    return ops.greaterEqual(this, y);
  }
  isnan(): Tensor {
    return ops.isnan(this);
  }
  isfinite(): Tensor {
    return ops.isfinite(this);
  }
  /**
   * `ad.where(this, a, b)`: this tensor is the condition. PyTorch's form `x.where(cond, other)`
   * (this is the value, a bool `cond` selects it) is recognised too: a non-bool tensor whose
   * first argument is a bool tensor.
   * @example
   * ad.tensor([true, false]).where(1, 2).toArray(); // [1, 2]
   * ad.tensor([1, 2]).where(ad.tensor([true, false]), 0).toArray(); // [1, 0]
   */
  where(a: TensorLike, b: TensorLike): Tensor {
    if (this.dtype !== "bool" && a instanceof Tensor && a.dtype === "bool") return ops.where(a, this, b);
    return ops.where(this, a, b);
  }
  sum(opts?: ops.ReduceOptions): Tensor {
    return ops.sum(this, opts);
  }
  mean(opts?: ops.ReduceOptions): Tensor {
    return ops.mean(this, opts);
  }
  prod(opts?: ops.ReduceOptions): Tensor {
    return ops.prod(this, opts);
  }
  max(opts?: ops.ReduceOptions): Tensor {
    return ops.max(this, opts);
  }
  min(opts?: ops.ReduceOptions): Tensor {
    return ops.min(this, opts);
  }
  logsumexp(opts?: ops.ReduceOptions): Tensor {
    return ops.logsumexp(this, opts);
  }
  var(opts?: ops.VarOptions): Tensor {
    return ops.variance(this, opts);
  }
  std(opts?: ops.VarOptions): Tensor {
    return ops.std(this, opts);
  }
  argmax(opts?: ops.ArgOptions): Tensor {
    return ops.argmax(this, opts);
  }
  argmin(opts?: ops.ArgOptions): Tensor {
    return ops.argmin(this, opts);
  }
  matmul(y: TensorLike): Tensor {
    return ops.matmul(this, y);
  }
  dot(y: TensorLike): Tensor {
    return ops.dot(this, y);
  }
  outer(y: TensorLike): Tensor {
    return ops.outer(this, y);
  }
  reshape(shape: readonly number[]): Tensor {
    return ops.reshape(this, shape);
  }
  transpose(axes?: readonly number[]): Tensor {
    return ops.transpose(this, axes);
  }
  expandDims(axis: number | readonly number[]): Tensor {
    return ops.expandDims(this, axis);
  }
  squeeze(axis?: number | readonly number[]): Tensor {
    return ops.squeeze(this, axis);
  }
  broadcastTo(shape: readonly number[]): Tensor {
    return ops.broadcastTo(this, shape);
  }
  split(sections: number | readonly number[], axis?: number): Tensor[] {
    return ops.split(this, sections, axis);
  }
  slice(begin: readonly number[], size?: readonly number[]): Tensor {
    return ops.slice(this, begin, size);
  }
  flip(axis?: number | readonly number[]): Tensor {
    return ops.flip(this, axis);
  }
  pad(widths: readonly (readonly [number, number])[] | readonly [number, number], value?: number): Tensor {
    return ops.pad(this, widths, value);
  }
  take(indices: TensorLike | readonly number[], axis?: number): Tensor {
    return ops.take(this, indices, axis);
  }
  gather(axis: number, index: Tensor): Tensor {
    return ops.gather(this, axis, index);
  }
  scatterAdd(axis: number, index: Tensor, src: TensorLike): Tensor {
    return ops.scatterAdd(this, axis, index, src);
  }
  softmax(axis?: number): Tensor {
    return ops.softmax(this, axis);
  }
  logSoftmax(axis?: number): Tensor {
    return ops.logSoftmax(this, axis);
  }
  normalize(opts?: ops.NormalizeOptions): Tensor {
    return ops.normalize(this, opts);
  }
  astype(dtype: DType): Tensor {
    return ops.astype(this, dtype);
  }
  /**
   * Basic indexing: integers pick (and drop) an axis, `null` keeps a whole axis, `[start, stop]`
   * slices; negative integers count from the end.
   * @example
   * ad.tensor([[1, 2], [3, 4]]).at(1, 0).item(); // 3
   */
  at(...index: ops.Index[]): Tensor {
    return ops.at(this, ...index);
  }
}

// Defaults of the eager-autograd fields, shared by every tensor until it assigns its own (a
// tensor on a long tape then costs 32 bytes less: eager state is rare, tensors are not).
Object.assign(Tensor.prototype, { grad: null, _requiresGrad: false, _ref: null, _version: 0 });

function canRead(t: Tensor): boolean {
  try {
    t._concrete();
    return true;
  } catch {
    return false;
  }
}

function fmtNum(x: number, dtype: DType): string {
  if (dtype === "bool") return x ? "true" : "false";
  if (dtype === "int32") return String(x);
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  // Whole numbers print exactly (rounding 123456789 to 8 digits would show another integer).
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return String(x);
  return String(Number(x.toPrecision(dtype === "float64" ? 8 : dtype === "float32" ? 6 : 4)));
}

function formatData(t: Tensor): string {
  const d = t._hostData();
  const shape = t.shape;
  const summarize = t.size > 1000;
  const render = (dim: number, off: number, stride: number): string => {
    if (dim === shape.length) return fmtNum(d[off]!, t.dtype);
    const n = shape[dim]!;
    const inner = stride / (n || 1);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      if (summarize && n > 6 && i === 3) {
        parts.push("...");
        i = n - 4;
        continue;
      }
      parts.push(render(dim + 1, off + i * inner, inner));
    }
    const sep = dim === shape.length - 1 ? ", " : `,\n${" ".repeat(dim + 8)}`;
    return `[${parts.join(sep)}]`;
  };
  return render(0, 0, t.size);
}
