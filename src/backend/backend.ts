/**
 * @file The narrow interface between the frontend and a backend. A backend owns opaque device
 * buffers and runs a small, fixed set of kernels on them; it never knows about derivatives,
 * tracers or transforms. The frontend never touches a backend's storage except through
 * `fromHost`/`toHost`.
 */

import type { AnyTypedArray, DType } from "../dtype.js";
import type { Shape } from "../shape.js";
import type { FusedExpr, FusedProgram } from "./kernel.js";

/** An opaque handle to device memory holding `size` elements of one dtype. */
export interface DeviceBuffer {
  readonly __deviceBuffer: true;
}

export type UnaryKernel =
  | "neg"
  | "exp"
  | "log"
  | "log1p"
  | "expm1"
  | "sqrt"
  | "sin"
  | "cos"
  | "tan"
  | "asin"
  | "acos"
  | "atan"
  | "sinh"
  | "cosh"
  | "tanh"
  | "logistic"
  | "abs"
  | "sign"
  | "floor"
  | "ceil"
  | "round"
  | "erf"
  | "not";

export type BinaryKernel =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "max"
  | "min"
  | "atan2"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "and"
  | "or";

export type ReduceKernel = "sum" | "max" | "min" | "argmax" | "argmin";

/**
 * A fused program's result `output` may be written over input `input`'s buffer: the caller made
 * that buffer for this call alone and never reads it again (a product under its epilogue). Only a
 * hint; a backend may allocate as usual.
 */
export interface FusedReuse {
  readonly output: number;
  readonly input: number;
}

/** Operands of a matmul stored transposed (see `Backend.matmul`). */
export interface MatmulTranspose {
  readonly a: boolean;
  readonly b: boolean;
}

/** Which triangle of A a triangular solve reads, and whether it solves with Aᵀ or a unit diagonal. */
export interface TriangularSolveOptions {
  readonly lower: boolean;
  readonly transposeA: boolean;
  readonly unitDiagonal: boolean;
}

/** The three results of the `lu` kernel. */
export interface LuBuffers {
  readonly lu: DeviceBuffer;
  readonly pivots: DeviceBuffer;
  readonly permutation: DeviceBuffer;
}

/**
 * What a backend implements. Shapes are passed explicitly; buffers are dense and row-major.
 * Kernels always return a fresh buffer and never modify their inputs.
 */
export interface Backend {
  readonly name: string;
  /** Take ownership of host data as a device buffer. */
  fromHost(data: AnyTypedArray): DeviceBuffer;
  /**
   * Optional: a one-element buffer holding `value`, rounded as storing it in `dtype` would. Lets a
   * backend keep scalars (JS numbers met by operations) cheaper than `fromHost` of a typed array.
   */
  scalar?(value: number, dtype: DType): DeviceBuffer;
  /** A host copy (or a read-only view the caller must not modify) of a device buffer. */
  toHost(buf: DeviceBuffer, dtype: DType, size: number): AnyTypedArray;
  /**
   * Optional: a zero-copy read-only view of a device buffer, valid only until the backend runs
   * another kernel or allocates (so a caller copies from it at once). Saves `toHost`'s copy where
   * the caller copies anyway (`t.data()`).
   */
  transientView?(buf: DeviceBuffer, dtype: DType, size: number): AnyTypedArray;
  /**
   * Optional: start recording the buffers this backend makes from now on, for a library routine
   * whose intermediates never reach the user (a backward pass, an optimizer step). With
   * `record` false, a level that records nothing (work whose results outlive the routine, such
   * as compiling a jitted function, whose constants stay in its cache).
   */
  openScope?(record?: boolean): void;
  /**
   * Optional: end the innermost scope. Its buffers are released at once, except those in `keep`
   * (the routine's results, and any view sharing their storage); null keeps every one (after an
   * error). Kept buffers join the enclosing scope, if any.
   */
  closeScope?(keep: readonly DeviceBuffer[] | null): void;
  unary(op: UnaryKernel, x: DeviceBuffer, size: number, dtype: DType): DeviceBuffer;
  binary(
    op: BinaryKernel,
    a: DeviceBuffer,
    aShape: Shape,
    b: DeviceBuffer,
    bShape: Shape,
    outShape: Shape,
    inDtype: DType,
    outDtype: DType,
  ): DeviceBuffer;
  select(
    cond: DeviceBuffer,
    cShape: Shape,
    a: DeviceBuffer,
    aShape: Shape,
    b: DeviceBuffer,
    bShape: Shape,
    outShape: Shape,
    dtype: DType,
  ): DeviceBuffer;
  cast(x: DeviceBuffer, size: number, from: DType, to: DType): DeviceBuffer;
  /** Reduce `axes` (sorted, distinct) away; the output has the remaining axes in order. */
  reduce(
    op: ReduceKernel,
    x: DeviceBuffer,
    shape: Shape,
    axes: readonly number[],
    inDtype: DType,
    outDtype: DType,
  ): DeviceBuffer;
  /**
   * `[batch, m, k] @ [batch, k, n] -> [batch, m, n]`. With `trans`, an operand marked there is
   * stored transposed (A as `[batch, k, m]`, B as `[batch, n, k]`) and read as its transpose
   * (jit hands a transpose feeding a product to the product's packing this way).
   */
  matmul(
    a: DeviceBuffer,
    b: DeviceBuffer,
    batch: number,
    m: number,
    k: number,
    n: number,
    dtype: DType,
    trans?: MatmulTranspose,
  ): DeviceBuffer;
  /**
   * Cholesky factors: for each of `batch` symmetric positive-definite `[n, n]` matrices (only the
   * lower triangle is read), the lower-triangular L with A = L Lᵀ (upper triangle zero). A matrix
   * that is not positive definite gives an all-NaN factor (as JAX), never an exception.
   */
  cholesky(a: DeviceBuffer, batch: number, n: number, dtype: DType): DeviceBuffer;
  /**
   * Triangular solves: for each of `batch` pairs, X with op(A) X = B, A `[n, n]` triangular (only
   * that triangle, and only off its diagonal when `unitDiagonal`, is read), B and X `[n, m]`,
   * op(A) = Aᵀ when `transposeA`. A zero on the diagonal gives IEEE Inf/NaN.
   */
  triangularSolve(
    a: DeviceBuffer,
    b: DeviceBuffer,
    batch: number,
    n: number,
    m: number,
    opts: TriangularSolveOptions,
    dtype: DType,
  ): DeviceBuffer;
  /**
   * LU factorisation with partial pivoting of `batch` `[n, n]` matrices: A[perm] = L U, packed
   * (L unit lower below the diagonal, U on and above it), LAPACK-style int32 `pivots` (row i was
   * swapped with row pivots[i] at step i) and the int32 row `permutation`. A zero pivot column is
   * skipped (as LAPACK's getrf), so singular matrices factor with a zero on U's diagonal.
   */
  lu(a: DeviceBuffer, batch: number, n: number, dtype: DType): LuBuffers;
  /** Determinants of `batch` `[n, n]` matrices (LU with partial pivoting, product in float64). */
  det(a: DeviceBuffer, batch: number, n: number, dtype: DType): DeviceBuffer;
  /**
   * Symmetric eigendecomposition of `batch` `[n, n]` matrices, read as (A + Aᵀ)/2: eigenvalues
   * `[batch, n]` in ascending order and orthonormal eigenvectors as the columns of `[batch, n, n]`
   * (A V = V diag(w)), each column's largest component positive. Cyclic Jacobi rotations in
   * float64, to convergence at machine precision. A NaN or infinite input gives all NaN.
   */
  eigh(
    a: DeviceBuffer,
    batch: number,
    n: number,
    dtype: DType,
  ): { values: DeviceBuffer; vectors: DeviceBuffer };
  transpose(x: DeviceBuffer, shape: Shape, perm: readonly number[], dtype: DType): DeviceBuffer;
  /** NumPy `broadcast_to` (shapes aligned on the right). */
  broadcast(x: DeviceBuffer, shape: Shape, outShape: Shape, dtype: DType): DeviceBuffer;
  slice(
    x: DeviceBuffer,
    shape: Shape,
    begin: readonly number[],
    size: readonly number[],
    dtype: DType,
  ): DeviceBuffer;
  pad(
    x: DeviceBuffer,
    shape: Shape,
    widths: readonly (readonly [number, number])[],
    value: number,
    dtype: DType,
  ): DeviceBuffer;
  concat(xs: readonly DeviceBuffer[], shapes: readonly Shape[], axis: number, dtype: DType): DeviceBuffer;
  flip(x: DeviceBuffer, shape: Shape, axes: readonly number[], dtype: DType): DeviceBuffer;
  /** PyTorch `gather`: `out[i][j] = x[index[i][j]][j]` for axis 0; `index` is int32 with x's rank. */
  gather(
    x: DeviceBuffer,
    shape: Shape,
    axis: number,
    index: DeviceBuffer,
    indexShape: Shape,
    dtype: DType,
  ): DeviceBuffer;
  /** PyTorch `scatter_add`: a copy of x with `out[index[i][j]][j] += src[i][j]` for axis 0. */
  scatterAdd(
    x: DeviceBuffer,
    shape: Shape,
    axis: number,
    index: DeviceBuffer,
    indexShape: Shape,
    src: DeviceBuffer,
    dtype: DType,
  ): DeviceBuffer;
  /**
   * A fused elementwise kernel: evaluate `expr` at every index of `size` elements. Each input
   * holds `size` elements or one (a scalar); results round per node as the unfused kernels would.
   */
  fused(expr: FusedExpr, inputs: readonly DeviceBuffer[], size: number, dtype: DType): DeviceBuffer;
  /**
   * Optional: a fused elementwise DAG with several results (see `FusedProgram`), evaluated at
   * every index of `size` elements, inputs as for `fused`; result j has dtype `outDtypes[j]`.
   * Without it, the frontend runs the program's compiled kernel on host copies.
   */
  fusedProgram?(
    prog: FusedProgram,
    inputs: readonly DeviceBuffer[],
    size: number,
    outDtypes: readonly DType[],
    reuse?: FusedReuse,
  ): DeviceBuffer[];
  /**
   * Optional: Σ over `axes` (sorted) of a fused program's result `sumOutput` at `shape`, without
   * storing that result, and the program's other results whole: [the sum, the others in order].
   * Inputs as for `fusedProgram`. Null where it does not apply; the caller then runs the program
   * and `reduce`, and a non-null result must equal that bit for bit.
   */
  fusedSum?(
    prog: FusedProgram,
    inputs: readonly DeviceBuffer[],
    shape: Shape,
    axes: readonly number[],
    outDtypes: readonly DType[],
    sumOutput: number,
  ): DeviceBuffer[] | null;
  /** Uniform [0, 1) numbers from a threefry key (int32[2] bit pattern). */
  randomUniform(key: DeviceBuffer, shape: Shape, dtype: DType): DeviceBuffer;
  /** `n` new keys (int32[n, 2]) from one key. */
  randomSplit(key: DeviceBuffer, n: number): DeviceBuffer;
  /**
   * Optional: release a buffer's memory now rather than when it is garbage collected. Only for
   * backends that manage memory themselves (wasm); later use of the buffer must throw.
   */
  dispose?(buf: DeviceBuffer): void;
}

// The current backend lives in select.ts (selection by name, environment and default).
export { getBackend, useBackend } from "./select.js";
