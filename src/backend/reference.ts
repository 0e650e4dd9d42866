/**
 * @file The reference backend: every kernel in plain TypeScript over typed arrays. Slow where it
 * must be, obviously correct, and the oracle the fast backends are tested against.
 */

import { type AnyTypedArray, allocArray, type DType, isHalf } from "../dtype.js";
import { ShapeError } from "../errors.js";
import {
  randomBits,
  randomBits64,
  splitKey,
  uniformFloat32FromBits,
  uniformFloat64FromBits,
} from "../random/threefry.js";
import { type Shape, sizeOf, stridesOf } from "../shape.js";
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
import { roundBfloat16, roundFloat16 } from "./half.js";
import {
  arrayKernel,
  binaryFn,
  exprToProgram,
  type FusedExpr,
  type FusedProgram,
  scalarKernel,
  UNARY_FN,
} from "./kernel.js";

type Arr = AnyTypedArray;

// The counter layout of current JAX (>= 0.5, `jax_threefry_partitionable=True`), so that
// `ad.random` draws the same numbers as `jax.random` for the same key.
const JAX_LAYOUT = { partitionable: true } as const;
/**
 * A one-element buffer held as the JS number itself (already rounded to its dtype, as storing it
 * in that dtype's typed array would). Scalars dominate the cost of small programs (a scalar
 * chain, a loss value, a step size): a typed array costs ~200 bytes and ~100 ns to create, this
 * ~40 bytes and a few ns. Every kernel accepts both forms; `toHost` returns a typed array.
 */
class Scalar {
  constructor(readonly v: number) {}
}

/**
 * The value of a one-element buffer this backend (or the wasm backend, which reuses them) holds
 * as a plain number, or null for any other buffer. Lets jit read constants without a host copy.
 * @example
 * scalarValue(backend.scalar!(2, "float64")); // 2
 */
export function scalarValue(b: DeviceBuffer | null): number | null {
  return b instanceof Scalar ? b.v : null;
}

const buf = (a: Arr): DeviceBuffer => a as unknown as DeviceBuffer;
/** The values of a buffer as a typed array (a scalar gets a fresh one-element float64 array). */
const arr = (b: DeviceBuffer): Arr => (b instanceof Scalar ? Float64Array.of(b.v) : (b as unknown as Arr));
const scalarBuf = (v: number): DeviceBuffer => new Scalar(v) as unknown as DeviceBuffer;

/** `x` as storing it in an array of dtype `d` would leave it. */
function storeAs(d: DType, x: number): number {
  switch (d) {
    case "float64":
      return x;
    case "float32":
    case "float16":
    case "bfloat16":
      return Math.fround(x);
    case "int32":
      return x | 0;
    case "bool":
      return x & 255;
  }
}

/** A unary kernel on one value: the common ones inline (no call through the table). */
function unary1(op: UnaryKernel, x: number): number {
  switch (op) {
    case "neg":
      return -x;
    case "sin":
      return Math.sin(x);
    case "cos":
      return Math.cos(x);
    case "exp":
      return Math.exp(x);
    case "log":
      return Math.log(x);
    case "tanh":
      return Math.tanh(x);
    case "sqrt":
      return Math.sqrt(x);
    default:
      return UNARY_FN[op](x);
  }
}

/** A binary kernel on one pair of values: the arithmetic inline (no call through the table). */
function binary1(op: BinaryKernel, inDtype: DType, a: number, b: number): number {
  switch (op) {
    case "add":
      return a + b;
    case "sub":
      return a - b;
    case "mul":
      return inDtype === "int32" ? Math.imul(a, b) : a * b;
    case "div":
      return a / b;
    default:
      return binaryFn(op, inDtype)(a, b);
  }
}

/** The single value of a one-element buffer. */
function only(b: DeviceBuffer): number {
  return b instanceof Scalar ? b.v : (b as unknown as Arr)[0]!;
}

/** Strides of `shape` broadcast against `outShape` (0 on broadcast axes), aligned on the right. */
function bstrides(shape: Shape, outShape: Shape): number[] {
  const s = stridesOf(shape);
  const out = new Array<number>(outShape.length).fill(0);
  const off = outShape.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 ? 0 : s[i]!;
  return out;
}

/** Visit every output index of `outShape`, calling `f(outFlat, offsets...)` with input offsets. */
function forEachBroadcast(
  outShape: Shape,
  strideSets: number[][],
  f: (o: number, offs: number[]) => void,
): void {
  const n = sizeOf(outShape);
  const nd = outShape.length;
  const k = strideSets.length;
  const idx = new Array<number>(nd).fill(0);
  const offs = new Array<number>(k).fill(0);
  for (let o = 0; o < n; o++) {
    f(o, offs);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      for (let j = 0; j < k; j++) offs[j]! += strideSets[j]![d]!;
      if (idx[d]! < outShape[d]!) break;
      for (let j = 0; j < k; j++) offs[j]! -= strideSets[j]![d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
}

/**
 * LU with partial pivoting of one row-major `[n, n]` matrix in place (Doolittle, right-looking):
 * afterwards `w` holds L (unit lower, below the diagonal) and U, `piv[k]` the row swapped with row
 * k at step k, and `perm` the row permutation with A[perm] = L U. A pivot column that is all zero
 * is skipped, as LAPACK's getrf does, leaving a zero on U's diagonal.
 */
function luInPlace(w: Float64Array, n: number, piv: Int32Array, perm: Int32Array): void {
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let k = 0; k < n; k++) {
    let p = k;
    let best = Math.abs(w[k * n + k]!);
    for (let i = k + 1; i < n; i++) {
      const v = Math.abs(w[i * n + k]!);
      if (v > best) {
        best = v;
        p = i;
      }
    }
    piv[k] = p;
    if (p !== k) {
      for (let j = 0; j < n; j++) {
        const t = w[k * n + j]!;
        w[k * n + j] = w[p * n + j]!;
        w[p * n + j] = t;
      }
      const t = perm[k]!;
      perm[k] = perm[p]!;
      perm[p] = t;
    }
    const d = w[k * n + k]!;
    if (d === 0) continue; // the whole column below is zero: nothing to eliminate
    for (let i = k + 1; i < n; i++) {
      const l = w[i * n + k]! / d;
      w[i * n + k] = l;
      for (let j = k + 1; j < n; j++) w[i * n + j]! -= l * w[k * n + j]!;
    }
  }
}

/**
 * Cyclic Jacobi eigenvalue iteration on the symmetric `m` (n x n, row-major), in place: `m`
 * becomes diagonal (the eigenvalues) and the rotations accumulate into `v` (its columns the
 * eigenvectors). Each rotation zeroes one off-diagonal pair (Rutishauser's stable formulas);
 * sweeps stop when the off-diagonal mass is below machine precision relative to the matrix.
 */
function jacobiEigen(m: Float64Array, v: Float64Array, n: number): void {
  let scale = 0;
  for (let i = 0; i < n * n; i++) scale += m[i]! * m[i]!;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += m[i * n + j]! * m[i * n + j]!;
    if (off <= 1e-32 * scale || off === 0) return;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q]!;
        if (apq === 0) continue;
        const app = m[p * n + p]!;
        const aqq = m[q * n + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // M <- Jᵀ M J with J the rotation in the (p, q) plane.
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p]!;
          const mkq = m[k * n + q]!;
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k]!;
          const mqk = m[q * n + k]!;
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        m[p * n + q] = 0;
        m[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
}

export class ReferenceBackend implements Backend {
  readonly name = "reference";

  fromHost(data: Arr): DeviceBuffer {
    return buf(data);
  }

  scalar(value: number, dtype: DType): DeviceBuffer {
    return scalarBuf(storeAs(dtype, value));
  }

  toHost(b: DeviceBuffer, dtype: DType): Arr {
    if (b instanceof Scalar) {
      const a = allocArray(dtype, 1);
      a[0] = b.v;
      return a;
    }
    return b as unknown as Arr;
  }

  unary(op: UnaryKernel, x: DeviceBuffer, size: number, dtype: DType): DeviceBuffer {
    if (size === 1) return scalarBuf(storeAs(dtype, unary1(op, only(x))));
    const xs = arr(x);
    const out = allocArray(dtype, size);
    switch (op) {
      case "neg":
        for (let i = 0; i < size; i++) out[i] = -xs[i]!;
        break;
      case "exp":
        for (let i = 0; i < size; i++) out[i] = Math.exp(xs[i]!);
        break;
      case "log":
        for (let i = 0; i < size; i++) out[i] = Math.log(xs[i]!);
        break;
      case "sin":
        for (let i = 0; i < size; i++) out[i] = Math.sin(xs[i]!);
        break;
      case "cos":
        for (let i = 0; i < size; i++) out[i] = Math.cos(xs[i]!);
        break;
      case "tanh":
        for (let i = 0; i < size; i++) out[i] = Math.tanh(xs[i]!);
        break;
      case "sqrt":
        for (let i = 0; i < size; i++) out[i] = Math.sqrt(xs[i]!);
        break;
      default: {
        const f = UNARY_FN[op];
        for (let i = 0; i < size; i++) out[i] = f(xs[i]!);
      }
    }
    return buf(out);
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
    const n = sizeOf(outShape);
    if (n === 1) return scalarBuf(storeAs(outDtype, binary1(op, inDtype, only(a), only(b))));
    const f = binaryFn(op, inDtype);
    const as = arr(a);
    const bs = arr(b);
    const out = allocArray(outDtype, n);
    if (as.length === n && bs.length === n && inDtype !== "int32") {
      // Specialised loops for the hottest same-shape kernels.
      if (op === "add") {
        for (let i = 0; i < n; i++) out[i] = as[i]! + bs[i]!;
        return buf(out);
      }
      if (op === "mul") {
        for (let i = 0; i < n; i++) out[i] = as[i]! * bs[i]!;
        return buf(out);
      }
      if (op === "sub") {
        for (let i = 0; i < n; i++) out[i] = as[i]! - bs[i]!;
        return buf(out);
      }
    }
    if (as.length === n && bs.length === n) {
      for (let i = 0; i < n; i++) out[i] = f(as[i]!, bs[i]!);
    } else if (bs.length === 1 && as.length === n) {
      const bv = bs[0]!;
      for (let i = 0; i < n; i++) out[i] = f(as[i]!, bv);
    } else if (as.length === 1 && bs.length === n) {
      const av = as[0]!;
      for (let i = 0; i < n; i++) out[i] = f(av, bs[i]!);
    } else {
      forEachBroadcast(outShape, [bstrides(aShape, outShape), bstrides(bShape, outShape)], (o, offs) => {
        out[o] = f(as[offs[0]!]!, bs[offs[1]!]!);
      });
    }
    return buf(out);
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
    const n = sizeOf(outShape);
    if (n === 1) return scalarBuf(only(c) ? only(a) : only(b));
    const cs = arr(c);
    const as = arr(a);
    const bs = arr(b);
    const out = allocArray(dtype, n);
    if (cs.length === n && as.length === n && bs.length === n) {
      for (let i = 0; i < n; i++) out[i] = cs[i] ? as[i]! : bs[i]!;
    } else {
      const st = [bstrides(cShape, outShape), bstrides(aShape, outShape), bstrides(bShape, outShape)];
      forEachBroadcast(outShape, st, (o, offs) => {
        out[o] = cs[offs[0]!] ? as[offs[1]!]! : bs[offs[2]!]!;
      });
    }
    return buf(out);
  }

  cast(x: DeviceBuffer, size: number, _from: DType, to: DType): DeviceBuffer {
    if (size === 1) {
      const v = only(x);
      if (to === "bool") return scalarBuf(v ? 1 : 0);
      if (to === "int32") return scalarBuf(Math.trunc(v) | 0);
      if (to === "float16") return scalarBuf(roundFloat16(v));
      if (to === "bfloat16") return scalarBuf(roundBfloat16(v));
      return scalarBuf(storeAs(to, v));
    }
    const xs = arr(x);
    const out = allocArray(to, size);
    if (to === "bool") for (let i = 0; i < size; i++) out[i] = xs[i] ? 1 : 0;
    else if (to === "int32") for (let i = 0; i < size; i++) out[i] = Math.trunc(xs[i]!) | 0;
    else if (isHalf(to)) {
      // Round to the 16-bit format (nearest even); the container stays float32.
      const r = to === "float16" ? roundFloat16 : roundBfloat16;
      for (let i = 0; i < size; i++) out[i] = r(xs[i]!);
    } else for (let i = 0; i < size; i++) out[i] = xs[i]!;
    return buf(out);
  }

  reduce(
    op: ReduceKernel,
    x: DeviceBuffer,
    shape: Shape,
    axes: readonly number[],
    _in: DType,
    outDtype: DType,
  ): DeviceBuffer {
    const xs = arr(x);
    const keep = shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const outN = sizeOf(keep);
    const out = allocArray(outDtype, outN);
    const n = sizeOf(shape);
    // Output offset of each input element: strides of the kept shape, 0 on reduced axes.
    const ostr = stridesOf(keep).map((s, i) => (axes.includes(i) ? 0 : s));
    // Position along the reduced axes (for argmax/argmin), row-major over the reduced sub-shape.
    const rdims = axes.map((a) => shape[a]!);
    const rstr = new Array<number>(shape.length).fill(0);
    {
      const rs = stridesOf(rdims);
      axes.forEach((a, j) => {
        rstr[a] = rs[j]!;
      });
    }
    // Fast path: the reduced axes are the trailing ones, so each output reduces one contiguous run.
    const trailing = axes.every((a, j) => a === shape.length - axes.length + j);
    if (trailing && (op === "sum" || op === "max" || op === "min")) {
      const run = outN === 0 ? 0 : n / outN;
      for (let o = 0; o < outN; o++) {
        const base = o * run;
        if (op === "sum") {
          let acc = 0;
          for (let i = 0; i < run; i++) acc += xs[base + i]!;
          out[o] = acc;
        } else {
          let best = op === "max" ? -Infinity : Infinity;
          for (let i = 0; i < run; i++) {
            const v = xs[base + i]!;
            if (Number.isNaN(v)) {
              best = v;
              break;
            }
            if (op === "max" ? v > best : v < best) best = v;
          }
          out[o] = best;
        }
      }
      return buf(out);
    }
    if (op === "sum") {
      const acc = new Float64Array(outN);
      forEachBroadcast(shape, [ostr], (i, offs) => {
        acc[offs[0]!]! += xs[i]!;
      });
      for (let i = 0; i < outN; i++) out[i] = acc[i]!;
      return buf(out);
    }
    const best = new Float64Array(outN).fill(op === "max" || op === "argmax" ? -Infinity : Infinity);
    const bestIdx = new Int32Array(outN).fill(-1);
    const isMax = op === "max" || op === "argmax";
    const nd = shape.length;
    const idx = new Array<number>(nd).fill(0);
    let o = 0;
    let r = 0;
    for (let i = 0; i < n; i++) {
      const v = xs[i]!;
      const cur = best[o]!;
      // NaN wins (propagates), as in NumPy; the first of equal values wins for arg-reductions.
      if (bestIdx[o] === -1 || (!Number.isNaN(cur) && (Number.isNaN(v) || (isMax ? v > cur : v < cur)))) {
        best[o] = v;
        bestIdx[o] = r;
      }
      for (let d = nd - 1; d >= 0; d--) {
        idx[d]!++;
        o += ostr[d]!;
        r += rstr[d]!;
        if (idx[d]! < shape[d]!) break;
        o -= ostr[d]! * shape[d]!;
        r -= rstr[d]! * shape[d]!;
        idx[d] = 0;
      }
    }
    if (op === "argmax" || op === "argmin") for (let i = 0; i < outN; i++) out[i] = bestIdx[i]!;
    else for (let i = 0; i < outN; i++) out[i] = best[i]!;
    return buf(out);
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
    const as = arr(a);
    const bs = arr(b);
    const out = allocArray(dtype, batch * m * n);
    const row = new Float64Array(n);
    // Element strides: a transposed operand is read along its other axis, in the same order.
    const [rsA, csA] = trans?.a ? [1, m] : [k, 1];
    const [rsB, csB] = trans?.b ? [1, k] : [n, 1];
    for (let p = 0; p < batch; p++) {
      const ao = p * m * k;
      const bo = p * k * n;
      const oo = p * m * n;
      for (let i = 0; i < m; i++) {
        row.fill(0);
        for (let q = 0; q < k; q++) {
          const av = as[ao + i * rsA + q * csA]!;
          if (av === 0) continue;
          const bro = bo + q * rsB;
          if (csB === 1) for (let j = 0; j < n; j++) row[j]! += av * bs[bro + j]!;
          else for (let j = 0; j < n; j++) row[j]! += av * bs[bro + j * csB]!;
        }
        for (let j = 0; j < n; j++) out[oo + i * n + j] = row[j]!;
      }
    }
    return buf(out);
  }

  cholesky(a: DeviceBuffer, batch: number, n: number, dtype: DType): DeviceBuffer {
    const as = arr(a);
    const out = allocArray(dtype, batch * n * n);
    const l = new Float64Array(n * n);
    for (let p = 0; p < batch; p++) {
      const o = p * n * n;
      l.fill(0);
      let ok = true;
      // Column by column (Cholesky–Crout), reading only the lower triangle of A.
      for (let j = 0; j < n && ok; j++) {
        let s = as[o + j * n + j]!;
        for (let k = 0; k < j; k++) s -= l[j * n + k]! * l[j * n + k]!;
        if (!(s > 0)) ok = false; // not positive definite (or NaN)
        const d = Math.sqrt(s);
        l[j * n + j] = d;
        for (let i = j + 1; i < n; i++) {
          let t = as[o + i * n + j]!;
          for (let k = 0; k < j; k++) t -= l[i * n + k]! * l[j * n + k]!;
          l[i * n + j] = t / d;
        }
      }
      for (let i = 0; i < n * n; i++) out[o + i] = ok ? l[i]! : Number.NaN;
    }
    return buf(out);
  }

  eigh(
    a: DeviceBuffer,
    batch: number,
    n: number,
    dtype: DType,
  ): { values: DeviceBuffer; vectors: DeviceBuffer } {
    const as = arr(a);
    const values = allocArray(dtype, batch * n);
    const vectors = allocArray(dtype, batch * n * n);
    const m = new Float64Array(n * n);
    const v = new Float64Array(n * n);
    const w = new Float64Array(n);
    const order = new Array<number>(n);
    for (let p = 0; p < batch; p++) {
      const o = p * n * n;
      let finite = true;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          const x = (as[o + i * n + j]! + as[o + j * n + i]!) / 2;
          if (!Number.isFinite(x)) finite = false;
          m[i * n + j] = x;
          v[i * n + j] = i === j ? 1 : 0;
        }
      if (!finite) {
        values.fill(Number.NaN, p * n, (p + 1) * n);
        vectors.fill(Number.NaN, o, o + n * n);
        continue;
      }
      jacobiEigen(m, v, n);
      for (let i = 0; i < n; i++) {
        w[i] = m[i * n + i]!;
        order[i] = i;
      }
      order.sort((x, y) => w[x]! - w[y]!);
      for (let c = 0; c < n; c++) {
        const k = order[c]!;
        values[p * n + c] = w[k]!;
        // Sign: the component of largest magnitude positive (first of ties), so results are unique.
        let big = 0;
        for (let i = 1; i < n; i++) if (Math.abs(v[i * n + k]!) > Math.abs(v[big * n + k]!)) big = i;
        const sg = v[big * n + k]! < 0 ? -1 : 1;
        for (let i = 0; i < n; i++) vectors[o + i * n + c] = sg * v[i * n + k]!;
      }
    }
    return { values: buf(values), vectors: buf(vectors) };
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
    const as = arr(a);
    const bs = arr(b);
    const out = allocArray(dtype, batch * n * m);
    const { transposeA, unitDiagonal } = opts;
    // op(A) is lower triangular when A is lower and not transposed, or upper and transposed.
    const forward = opts.lower !== transposeA;
    const x = new Float64Array(n);
    for (let p = 0; p < batch; p++) {
      const ao = p * n * n;
      const bo = p * n * m;
      // op(A)[i][k]
      const at = transposeA
        ? (i: number, k: number) => as[ao + k * n + i]!
        : (i: number, k: number) => as[ao + i * n + k]!;
      for (let c = 0; c < m; c++) {
        if (forward)
          for (let i = 0; i < n; i++) {
            let s = bs[bo + i * m + c]!;
            for (let k = 0; k < i; k++) s -= at(i, k) * x[k]!;
            x[i] = unitDiagonal ? s : s / at(i, i);
          }
        else
          for (let i = n - 1; i >= 0; i--) {
            let s = bs[bo + i * m + c]!;
            for (let k = i + 1; k < n; k++) s -= at(i, k) * x[k]!;
            x[i] = unitDiagonal ? s : s / at(i, i);
          }
        for (let i = 0; i < n; i++) out[bo + i * m + c] = x[i]!;
      }
    }
    return buf(out);
  }

  lu(a: DeviceBuffer, batch: number, n: number, dtype: DType): LuBuffers {
    const as = arr(a);
    const lu = allocArray(dtype, batch * n * n);
    const pivots = new Int32Array(batch * n);
    const permutation = new Int32Array(batch * n);
    const w = new Float64Array(n * n);
    for (let p = 0; p < batch; p++) {
      const o = p * n * n;
      for (let i = 0; i < n * n; i++) w[i] = as[o + i]!;
      luInPlace(w, n, pivots.subarray(p * n, (p + 1) * n), permutation.subarray(p * n, (p + 1) * n));
      for (let i = 0; i < n * n; i++) lu[o + i] = w[i]!;
    }
    return { lu: buf(lu), pivots: buf(pivots), permutation: buf(permutation) };
  }

  det(a: DeviceBuffer, batch: number, n: number, dtype: DType): DeviceBuffer {
    const as = arr(a);
    const out = allocArray(dtype, batch);
    const w = new Float64Array(n * n);
    const piv = new Int32Array(n);
    const perm = new Int32Array(n);
    for (let p = 0; p < batch; p++) {
      const o = p * n * n;
      for (let i = 0; i < n * n; i++) w[i] = as[o + i]!;
      luInPlace(w, n, piv, perm);
      let d = 1;
      for (let i = 0; i < n; i++) d *= piv[i] === i ? w[i * n + i]! : -w[i * n + i]!;
      out[p] = d;
    }
    return buf(out);
  }

  transpose(x: DeviceBuffer, shape: Shape, perm: readonly number[], dtype: DType): DeviceBuffer {
    const xs = arr(x);
    const outShape = perm.map((p) => shape[p]!);
    const s = stridesOf(shape);
    const out = allocArray(dtype, xs.length);
    forEachBroadcast(outShape, [perm.map((p) => s[p]!)], (o, offs) => {
      out[o] = xs[offs[0]!]!;
    });
    return buf(out);
  }

  broadcast(x: DeviceBuffer, shape: Shape, outShape: Shape, dtype: DType): DeviceBuffer {
    const xs = arr(x);
    const out = allocArray(dtype, sizeOf(outShape));
    if (xs.length === 1) out.fill(xs[0]!);
    else
      forEachBroadcast(outShape, [bstrides(shape, outShape)], (o, offs) => {
        out[o] = xs[offs[0]!]!;
      });
    return buf(out);
  }

  slice(
    x: DeviceBuffer,
    shape: Shape,
    begin: readonly number[],
    size: readonly number[],
    dtype: DType,
  ): DeviceBuffer {
    const xs = arr(x);
    const s = stridesOf(shape);
    let base = 0;
    for (let i = 0; i < shape.length; i++) base += begin[i]! * s[i]!;
    const out = allocArray(dtype, sizeOf(size));
    forEachBroadcast(size, [s], (o, offs) => {
      out[o] = xs[base + offs[0]!]!;
    });
    return buf(out);
  }

  pad(
    x: DeviceBuffer,
    shape: Shape,
    widths: readonly (readonly [number, number])[],
    value: number,
    dtype: DType,
  ): DeviceBuffer {
    const xs = arr(x);
    const outShape = shape.map((d, i) => d + widths[i]![0] + widths[i]![1]);
    const os = stridesOf(outShape);
    const out = allocArray(dtype, sizeOf(outShape));
    if (value !== 0) out.fill(value);
    let base = 0;
    for (let i = 0; i < shape.length; i++) base += widths[i]![0] * os[i]!;
    forEachBroadcast(shape, [os], (i, offs) => {
      out[base + offs[0]!] = xs[i]!;
    });
    return buf(out);
  }

  concat(xs: readonly DeviceBuffer[], shapes: readonly Shape[], axis: number, dtype: DType): DeviceBuffer {
    const first = shapes[0]!;
    const total = shapes.reduce((t, s) => t + s[axis]!, 0);
    const outShape = first.map((d, i) => (i === axis ? total : d));
    const os = stridesOf(outShape);
    const out = allocArray(dtype, sizeOf(outShape));
    let offset = 0;
    xs.forEach((x, j) => {
      const a = arr(x);
      const sh = shapes[j]!;
      const base = offset * os[axis]!;
      forEachBroadcast(sh, [os], (i, offs) => {
        out[base + offs[0]!] = a[i]!;
      });
      offset += sh[axis]!;
    });
    return buf(out);
  }

  flip(x: DeviceBuffer, shape: Shape, axes: readonly number[], dtype: DType): DeviceBuffer {
    const xs = arr(x);
    const s = stridesOf(shape);
    let base = 0;
    const st = s.map((v, i) => {
      if (!axes.includes(i)) return v;
      base += (shape[i]! - 1) * v;
      return -v;
    });
    const out = allocArray(dtype, xs.length);
    forEachBroadcast(shape, [st], (o, offs) => {
      out[o] = xs[base + offs[0]!]!;
    });
    return buf(out);
  }

  gather(
    x: DeviceBuffer,
    shape: Shape,
    axis: number,
    index: DeviceBuffer,
    indexShape: Shape,
    dtype: DType,
  ): DeviceBuffer {
    const xs = arr(x);
    const is = arr(index);
    const s = stridesOf(shape);
    const out = allocArray(dtype, is.length);
    const st = s.map((v, i) => (i === axis ? 0 : v));
    const dim = shape[axis]!;
    forEachBroadcast(indexShape, [st], (o, offs) => {
      let j = is[o]!;
      if (j < 0) j += dim;
      if (j < 0 || j >= dim)
        throw new ShapeError(`gather: index ${is[o]} is out of bounds for axis ${axis} with size ${dim}`);
      out[o] = xs[offs[0]! + j * s[axis]!]!;
    });
    return buf(out);
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
    const xs = arr(x);
    const is = arr(index);
    const ss = arr(src);
    const s = stridesOf(shape);
    const out = allocArray(dtype, xs.length);
    out.set(xs);
    const st = s.map((v, i) => (i === axis ? 0 : v));
    const srcSt = bstrides(indexShape, indexShape);
    const dim = shape[axis]!;
    forEachBroadcast(indexShape, [st, srcSt], (o, offs) => {
      let j = is[o]!;
      if (j < 0) j += dim;
      if (j < 0 || j >= dim)
        throw new ShapeError(`scatterAdd: index ${is[o]} is out of bounds for axis ${axis} with size ${dim}`);
      out[offs[0]! + j * s[axis]!]! += ss[offs[1]!]!;
    });
    return buf(out);
  }

  fused(expr: FusedExpr, inputs: readonly DeviceBuffer[], size: number, dtype: DType): DeviceBuffer {
    return this.fusedProgram(exprToProgram(expr), inputs, size, [dtype])[0]!;
  }

  fusedProgram(
    prog: FusedProgram,
    inputs: readonly DeviceBuffer[],
    size: number,
    outDtypes: readonly DType[],
  ): DeviceBuffer[] {
    const m = outDtypes.length;
    if (size === 1) {
      // One element: the kernel runs once on plain numbers, and the results stay numbers.
      const ins: number[] = new Array(inputs.length);
      for (let k = 0; k < inputs.length; k++) ins[k] = only(inputs[k]!);
      const outs = new Float64Array(m);
      scalarKernel(prog)(ins, outs);
      const res: DeviceBuffer[] = new Array(m);
      for (let j = 0; j < m; j++) res[j] = scalarBuf(outs[j]!);
      return res;
    }
    const ins = inputs.map(arr);
    const outs = outDtypes.map((d) => allocArray(d, size));
    arrayKernel(
      prog,
      ins.map((a) => a.length === 1),
    )(ins, outs, size);
    return outs.map(buf);
  }

  randomUniform(key: DeviceBuffer, shape: Shape, dtype: DType): DeviceBuffer {
    const k = arr(key);
    const kk: [number, number] = [k[0]! >>> 0, k[1]! >>> 0];
    const n = sizeOf(shape);
    if (dtype === "float64") {
      const [hi, lo] = randomBits64(kk, n, JAX_LAYOUT);
      return buf(uniformFloat64FromBits(hi, lo));
    }
    return buf(uniformFloat32FromBits(randomBits(kk, n, JAX_LAYOUT)));
  }

  randomSplit(key: DeviceBuffer, n: number): DeviceBuffer {
    const k = arr(key);
    const keys = splitKey([k[0]! >>> 0, k[1]! >>> 0], n, JAX_LAYOUT);
    const out = new Int32Array(2 * n);
    keys.forEach(([a, b], i) => {
      out[2 * i] = a | 0;
      out[2 * i + 1] = b | 0;
    });
    return buf(out);
  }
}
