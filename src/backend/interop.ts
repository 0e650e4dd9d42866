/**
 * @file The reference backend as the library selects it: the plain-TS kernels, plus reading
 * buffers that live in wasm memory. Tensors keep the backend they were made on, so after
 * `ad.setBackend("reference")` an operation may still meet a tensor computed by the wasm backend;
 * its buffer is copied to a host array on use (the wasm backend reads reference buffers natively).
 */

import type { AnyTypedArray, DType } from "../dtype.js";
import type { Shape } from "../shape.js";
import type {
  Backend,
  BinaryKernel,
  DeviceBuffer,
  LuBuffers,
  MatmulTranspose,
  ReduceKernel,
  TriangularSolveOptions,
  UnaryKernel,
} from "./backend.js";
import type { FusedExpr, FusedProgram } from "./kernel.js";
import { ReferenceBackend } from "./reference.js";
import { WasmBuffer } from "./wasm/heap.js";

/** A wasm-resident buffer as a host copy; any other buffer unchanged. */
function h(b: DeviceBuffer): DeviceBuffer {
  return b instanceof WasmBuffer ? (b.toHostArray() as unknown as DeviceBuffer) : b;
}

/**
 * The reference backend, accepting wasm buffers too.
 * @example
 * ad.setBackend("reference"); // new tensors use InteropReferenceBackend
 */
export class InteropReferenceBackend implements Backend {
  readonly name = "reference";
  private readonly r: Backend = new ReferenceBackend();
  readonly scalar?: (value: number, dtype: DType) => DeviceBuffer;
  readonly fusedProgram?: (
    prog: FusedProgram,
    inputs: readonly DeviceBuffer[],
    size: number,
    outDtypes: readonly DType[],
  ) => DeviceBuffer[];

  constructor() {
    // The reference backend's optional kernels, forwarded when it has them.
    const r = this.r;
    if (r.scalar !== undefined) this.scalar = (v, d) => r.scalar!(v, d);
    if (r.fusedProgram !== undefined)
      this.fusedProgram = (prog, inputs, size, outDtypes) =>
        r.fusedProgram!(prog, inputs.map(h), size, outDtypes);
  }

  fromHost(data: AnyTypedArray): DeviceBuffer {
    return this.r.fromHost(data);
  }
  toHost(b: DeviceBuffer, dtype: DType, size: number): AnyTypedArray {
    return b instanceof WasmBuffer ? b.toHostArray() : this.r.toHost(b, dtype, size);
  }
  unary(op: UnaryKernel, x: DeviceBuffer, size: number, dtype: DType): DeviceBuffer {
    return this.r.unary(op, h(x), size, dtype);
  }
  binary(
    op: BinaryKernel,
    a: DeviceBuffer,
    aShape: Shape,
    b: DeviceBuffer,
    bShape: Shape,
    outShape: Shape,
    inDtype: DType,
    outDtype: DType,
  ): DeviceBuffer {
    return this.r.binary(op, h(a), aShape, h(b), bShape, outShape, inDtype, outDtype);
  }
  select(
    c: DeviceBuffer,
    cShape: Shape,
    a: DeviceBuffer,
    aShape: Shape,
    b: DeviceBuffer,
    bShape: Shape,
    outShape: Shape,
    dtype: DType,
  ): DeviceBuffer {
    return this.r.select(h(c), cShape, h(a), aShape, h(b), bShape, outShape, dtype);
  }
  cast(x: DeviceBuffer, size: number, from: DType, to: DType): DeviceBuffer {
    return this.r.cast(h(x), size, from, to);
  }
  reduce(
    op: ReduceKernel,
    x: DeviceBuffer,
    shape: Shape,
    axes: readonly number[],
    inDtype: DType,
    outDtype: DType,
  ): DeviceBuffer {
    return this.r.reduce(op, h(x), shape, axes, inDtype, outDtype);
  }
  matmul(
    a: DeviceBuffer,
    b: DeviceBuffer,
    batch: number,
    m: number,
    k: number,
    n: number,
    dtype: DType,
    trans?: MatmulTranspose,
  ): DeviceBuffer {
    return this.r.matmul(h(a), h(b), batch, m, k, n, dtype, trans);
  }
  cholesky(a: DeviceBuffer, batch: number, n: number, dtype: DType): DeviceBuffer {
    return this.r.cholesky(h(a), batch, n, dtype);
  }
  triangularSolve(
    a: DeviceBuffer,
    b: DeviceBuffer,
    batch: number,
    n: number,
    m: number,
    opts: TriangularSolveOptions,
    dtype: DType,
  ): DeviceBuffer {
    return this.r.triangularSolve(h(a), h(b), batch, n, m, opts, dtype);
  }
  lu(a: DeviceBuffer, batch: number, n: number, dtype: DType): LuBuffers {
    return this.r.lu(h(a), batch, n, dtype);
  }
  eigh(
    a: DeviceBuffer,
    batch: number,
    n: number,
    dtype: DType,
  ): { values: DeviceBuffer; vectors: DeviceBuffer } {
    return this.r.eigh(h(a), batch, n, dtype);
  }
  det(a: DeviceBuffer, batch: number, n: number, dtype: DType): DeviceBuffer {
    return this.r.det(h(a), batch, n, dtype);
  }
  transpose(x: DeviceBuffer, shape: Shape, perm: readonly number[], dtype: DType): DeviceBuffer {
    return this.r.transpose(h(x), shape, perm, dtype);
  }
  broadcast(x: DeviceBuffer, shape: Shape, outShape: Shape, dtype: DType): DeviceBuffer {
    return this.r.broadcast(h(x), shape, outShape, dtype);
  }
  slice(
    x: DeviceBuffer,
    shape: Shape,
    begin: readonly number[],
    size: readonly number[],
    dtype: DType,
  ): DeviceBuffer {
    return this.r.slice(h(x), shape, begin, size, dtype);
  }
  pad(
    x: DeviceBuffer,
    shape: Shape,
    widths: readonly (readonly [number, number])[],
    value: number,
    dtype: DType,
  ): DeviceBuffer {
    return this.r.pad(h(x), shape, widths, value, dtype);
  }
  concat(xs: readonly DeviceBuffer[], shapes: readonly Shape[], axis: number, dtype: DType): DeviceBuffer {
    return this.r.concat(xs.map(h), shapes, axis, dtype);
  }
  flip(x: DeviceBuffer, shape: Shape, axes: readonly number[], dtype: DType): DeviceBuffer {
    return this.r.flip(h(x), shape, axes, dtype);
  }
  gather(
    x: DeviceBuffer,
    shape: Shape,
    axis: number,
    index: DeviceBuffer,
    indexShape: Shape,
    dtype: DType,
  ): DeviceBuffer {
    return this.r.gather(h(x), shape, axis, h(index), indexShape, dtype);
  }
  scatterAdd(
    x: DeviceBuffer,
    shape: Shape,
    axis: number,
    index: DeviceBuffer,
    indexShape: Shape,
    src: DeviceBuffer,
    dtype: DType,
  ): DeviceBuffer {
    return this.r.scatterAdd(h(x), shape, axis, h(index), indexShape, h(src), dtype);
  }
  fused(expr: FusedExpr, inputs: readonly DeviceBuffer[], size: number, dtype: DType): DeviceBuffer {
    return this.r.fused(expr, inputs.map(h), size, dtype);
  }
  randomUniform(key: DeviceBuffer, shape: Shape, dtype: DType): DeviceBuffer {
    return this.r.randomUniform(h(key), shape, dtype);
  }
  randomSplit(key: DeviceBuffer, n: number): DeviceBuffer {
    return this.r.randomSplit(h(key), n);
  }
}
