/**
 * @file `ad.SparseTensor`: a row-sparse tensor, the gradient of an `nn.Embedding({sparse: true})`
 * weight. It stores only the rows it touches (`indices` into the first axis and one `values` row
 * per index) and is a `Tensor` itself: every dense operation (`add`, `toArray`, `item`, ...) sees
 * its dense value, materialised on first use and cached. Optimizers check `grad instanceof
 * SparseTensor` and update only those rows.
 */

import { type Backend, type DeviceBuffer, getBackend } from "./backend/backend.js";
import { withoutScratch } from "./core/scratch.js";
import { Tensor } from "./core/tensor.js";
import { allocArray, isFloat } from "./dtype.js";
import { DTypeError, InPlaceError, ShapeError } from "./errors.js";
import { astype, concat, reshape, scatterAdd, tensor, zeros } from "./ops/index.js";
import { fmtShape, sizeOf } from "./shape.js";

/**
 * A row-sparse tensor of shape `shape`: row `indices[k]` (along the first axis) holds `values[k]`
 * (`indices`: int32 `[nnz]`, `[1, nnz]` as PyTorch's COO layout, or a JS array);
 * every other row is zero. Duplicate indices add up (an uncoalesced tensor, as PyTorch's sparse
 * gradients); `coalesce()` sums them. Read it like any tensor; its dense value is computed on the
 * first dense use. It is immutable: in-place methods throw `InPlaceError`. Sparse gradients are
 * values, not recorded computations (a `createGraph` backward does not differentiate through them).
 * @example
 * const g = new ad.SparseTensor(ad.tensor([2, 0], { dtype: "int32" }), ad.tensor([[1, 1], [5, 5]]), [3, 2]);
 * g.toDense().toArray(); // [[5, 5], [0, 0], [1, 1]]
 * g.add(1).toArray(); // dense: [[6, 6], [1, 1], [2, 2]]
 */
export class SparseTensor extends Tensor {
  /** int32 `[nnz]`: the rows (first-axis positions) that hold values. */
  readonly indices: Tensor;
  /** `[nnz, ...shape.slice(1)]`: one row per index. */
  readonly values: Tensor;
  private _dense: Tensor | null = null;

  constructor(rowIndices: Tensor | readonly number[], values: Tensor, shape: readonly number[]) {
    // JS integers, and PyTorch's COO layout [1, nnz], are accepted for the row indices.
    let indices = Array.isArray(rowIndices)
      ? tensor(rowIndices as number[], { dtype: "int32" })
      : (rowIndices as Tensor);
    if (!(indices instanceof Tensor) || !(values instanceof Tensor))
      throw new DTypeError("SparseTensor: indices and values must be Tensors");
    if (indices.ndim === 2 && indices.shape[0] === 1) indices = reshape(indices, [indices.shape[1]!]);
    if (indices.dtype !== "int32")
      throw new DTypeError(`SparseTensor: indices must be int32, got ${indices.dtype}`);
    if (!isFloat(values.dtype))
      throw new DTypeError(`SparseTensor: values must be floating point, got ${values.dtype}`);
    const s = [...shape];
    if (s.length === 0) throw new ShapeError("SparseTensor: the shape needs at least one axis (rows)");
    if (indices.ndim !== 1)
      throw new ShapeError(`SparseTensor: indices must be 1-d [nnz], got shape ${fmtShape(indices.shape)}`);
    const want = [indices.shape[0]!, ...s.slice(1)];
    if (values.ndim !== want.length || values.shape.some((d, i) => d !== want[i]))
      throw new ShapeError(
        `SparseTensor: values must have shape ${fmtShape(want)} (one row per index) for shape ${fmtShape(s)}, got ${fmtShape(values.shape)}`,
      );
    const idx = indices._hostData();
    for (let k = 0; k < idx.length; k++) {
      const r = idx[k]!;
      if (r < 0 || r >= s[0]!)
        throw new ShapeError(`SparseTensor: index ${r} is out of range for ${s[0]} rows`);
    }
    super(s, values.dtype, false, null, null, null);
    this.indices = indices;
    this.values = values;
    // Dense reads (kernels, toArray, ...) go through the storage fields: materialise on demand.
    Object.defineProperty(this, "_buf", {
      configurable: true,
      enumerable: false,
      get: (): DeviceBuffer | null => this.toDense()._buf,
      set: () => {
        throw new InPlaceError(
          "SparseTensor: a sparse tensor cannot be modified in place; build a new one (or use toDense())",
        );
      },
    });
    Object.defineProperty(this, "_backend", {
      configurable: true,
      enumerable: false,
      get: (): Backend | null => this.toDense()._backend,
      set: () => {
        throw new InPlaceError("SparseTensor: a sparse tensor cannot be modified in place");
      },
    });
  }

  /** Number of stored rows (with duplicates). */
  get nnz(): number {
    return this.indices.shape[0]!;
  }

  /**
   * The dense tensor (rows not stored are zero; duplicate rows add up). Cached.
   * @example
   * new ad.SparseTensor(ad.tensor([1], { dtype: "int32" }), ad.tensor([[2]]), [2, 1]).toDense().toArray(); // [[0], [2]]
   */
  toDense(): Tensor {
    if (this._dense !== null) return this._dense;
    const rowLen = sizeOf(this.shape.slice(1));
    const out = allocArray(this.dtype, sizeOf(this.shape));
    const idx = this.indices._hostData();
    const vals = this.values._hostData();
    for (let k = 0; k < idx.length; k++) {
      const base = idx[k]! * rowLen;
      const src = k * rowLen;
      for (let j = 0; j < rowLen; j++) out[base + j]! += vals[src + j]!;
    }
    // Cached on this tensor: never released by a scratch scope that happens to be open.
    this._dense = withoutScratch(getBackend(), () => Tensor._fromHost(out, [...this.shape], this.dtype));
    return this._dense;
  }

  /**
   * The same tensor with sorted, distinct indices (duplicates summed).
   * @example
   * const g = new ad.SparseTensor(ad.tensor([1, 0, 1], { dtype: "int32" }), ad.tensor([[1], [2], [3]]), [2, 1]);
   * g.coalesce().indices.toArray(); // [0, 1]
   * g.coalesce().values.toArray(); // [[2], [4]]
   */
  coalesce(): SparseTensor {
    const idx = this.indices._hostData();
    const unique = [...new Set(Array.from(idx))].sort((a, b) => a - b);
    if (unique.length === idx.length && unique.every((u, k) => u === idx[k])) return this;
    const pos = new Map(unique.map((u, k) => [u, k]));
    const rowShape = this.shape.slice(1);
    const target = Int32Array.from(idx, (r) => pos.get(r)!);
    const index = tensor(target, { dtype: "int32" }).reshape([idx.length, ...rowShape.map(() => 1)]);
    const summed = scatterAdd(
      zeros([unique.length, ...rowShape], { dtype: this.dtype }),
      0,
      index.broadcastTo(this.values.shape),
      this.values,
    );
    return new SparseTensor(tensor(Int32Array.from(unique), { dtype: "int32" }), summed, this.shape);
  }

  /**
   * The sum of two sparse tensors of the same shape (indices and values concatenated, uncoalesced).
   * @example
   * const a = new ad.SparseTensor(ad.tensor([0], { dtype: "int32" }), ad.tensor([[1]]), [2, 1]);
   * a.addSparse(a).toDense().toArray(); // [[2], [0]]
   */
  addSparse(other: SparseTensor): SparseTensor {
    if (!(other instanceof SparseTensor))
      throw new DTypeError("SparseTensor.addSparse: expected a SparseTensor");
    if (other.shape.length !== this.shape.length || other.shape.some((d, i) => d !== this.shape[i]))
      throw new ShapeError(
        `SparseTensor.addSparse: shapes ${fmtShape(this.shape)} and ${fmtShape(other.shape)} differ`,
      );
    const vals = other.dtype === this.dtype ? other.values : astype(other.values, this.dtype);
    return new SparseTensor(concat([this.indices, other.indices]), concat([this.values, vals]), this.shape);
  }

  /**
   * A sparse tensor with the same indices and `f(values)` as values (f must keep the shape and
   * map zero rows to zero, e.g. scaling).
   * @example
   * g.mapValues((v) => v.mul(0.5));
   */
  mapValues(f: (values: Tensor) => Tensor): SparseTensor {
    return new SparseTensor(this.indices, f(this.values), this.shape);
  }

  override toString(): string {
    return `SparseTensor(shape=${fmtShape(this.shape)}, nnz=${this.nnz}, dtype=${this.dtype})`;
  }
}

/** @internal `values` of a sparse gradient as `[nnz, rowSize]`. */
export function flatRows(s: SparseTensor): Tensor {
  return reshape(s.values, [s.nnz, sizeOf(s.shape.slice(1))]);
}
