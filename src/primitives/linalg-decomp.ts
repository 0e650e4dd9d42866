/**
 * @file Matrix decompositions and solves, batched over leading axes: `cholesky`,
 * `triangular_solve`, `lu` (partial pivoting) and `det`. Their kernels are loops (in the backend);
 * their derivatives are never the derivatives of those loops but matrix-calculus identities
 * written with library ops (triangular solves, matmuls, masks), so they differentiate again to
 * any order and batch like everything else. `ad.linalg.solve`, `inv` and `slogdet` are composed
 * from these in `src/linalg/` and inherit their rules.
 *
 * Taylor mode (`jet`): `triangular_solve`, `cholesky` and `lu` solve their defining identity
 * (op(A) X = B, L Lᵀ = A, P A = L U) coefficient by coefficient — the k-th normalised coefficient
 * satisfies the JVP's linear equation with a right-hand side made of the lower ones — so K terms
 * cost K solves instead of the generic rule's K nested JVPs. `det` keeps the generic rule
 * (nested JVPs of its cofactor rule), which stays exact at singular matrices.
 */

import type { TriangularSolveOptions } from "../backend/backend.js";
import { bind } from "../core/interpreter.js";
import {
  type Aval,
  type BatchRule,
  definePrimitive,
  type Primitive,
  type Tangent,
} from "../core/primitive.js";
import type { Tensor } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { DTypeError, ShapeError } from "../errors.js";
import {
  abs,
  add,
  arange,
  argmin,
  broadcastTo,
  div,
  equal,
  expandDims,
  eye,
  full,
  gather,
  greater,
  greaterEqual,
  less,
  lessEqual,
  logicalAnd,
  matmul,
  mul,
  neg,
  notEqual,
  prod,
  reshape,
  scatterAdd,
  sub,
  sum,
  swapLastAxes,
  where,
  zerosLike,
} from "../ops/index.js";
import { fmtShape, shapeEq, sizeOf } from "../shape.js";
import {
  batchFirst,
  batchSize,
  checkArity,
  checkFloat,
  moveAxis,
  type NoParams,
  need,
  nz,
  onlyDim,
  sumTerms,
} from "./rules.js";
import { type Coeffs, coeffs, fromCoeffs, orderOf } from "./series.js";

// ---- small matrix vocabulary (library ops, so everything built from it differentiates) --------

/** The params of `triangular_solve`: solve op(A) X = B with A lower or upper, op(A) = A or Aᵀ. */
export type TriangularSolveParams = TriangularSolveOptions;

const LOWER: TriangularSolveParams = { lower: true, transposeA: false, unitDiagonal: false };
const LOWER_T: TriangularSolveParams = { lower: true, transposeA: true, unitDiagonal: false };
const UNIT_LOWER: TriangularSolveParams = { lower: true, transposeA: false, unitDiagonal: true };
const UNIT_LOWER_T: TriangularSolveParams = { lower: true, transposeA: true, unitDiagonal: true };
const UPPER: TriangularSolveParams = { lower: false, transposeA: false, unitDiagonal: false };
const UPPER_T: TriangularSolveParams = { lower: false, transposeA: true, unitDiagonal: false };

/** A bool `[n, n]` mask: the lower (or upper) triangle, without the diagonal when `strict`. */
function triMask(n: number, lower: boolean, strict: boolean): Tensor {
  const i = reshape(arange(n), [n, 1]);
  const j = reshape(arange(n), [1, n]);
  if (lower) return strict ? greater(i, j) : greaterEqual(i, j);
  return strict ? less(i, j) : lessEqual(i, j);
}

/** A bool `[n, n]` mask of the diagonal. */
function eyeMask(n: number): Tensor {
  return equal(reshape(arange(n), [n, 1]), reshape(arange(n), [1, n]));
}

const lastDim = (x: Aval): number => x.shape[x.shape.length - 1]!;

/** @internal The lower triangle of the last two axes (strictly below the diagonal when `strict`). */
export function tril(x: Tensor, strict = false): Tensor {
  return where(triMask(lastDim(x), true, strict), x, 0);
}

/** @internal The upper triangle of the last two axes (strictly above the diagonal when `strict`). */
export function triu(x: Tensor, strict = false): Tensor {
  return where(triMask(lastDim(x), false, strict), x, 0);
}

/** @internal The diagonals of `[..., n, n]` as `[..., n]` (only zeros are added, so it is exact). */
export function diagonal(x: Tensor): Tensor {
  return sum(where(eyeMask(lastDim(x)), x, 0), { axis: -1 });
}

/** @internal Rows of `x [..., n, k]` reordered: row i of the result is row `perm[i]` of x. */
export function permuteRows(x: Tensor, perm: Tensor): Tensor {
  return gather(x, -2, broadcastTo(expandDims(perm, -1), x.shape));
}

/** @internal The inverse of `permuteRows`: row i of `x` goes to row `perm[i]`. */
export function unpermuteRows(x: Tensor, perm: Tensor): Tensor {
  return scatterAdd(zerosLike(x), -2, broadcastTo(expandDims(perm, -1), x.shape), x);
}

/** @internal ±1 per matrix: the sign of the row permutation recorded by LAPACK-style `pivots`. */
export function pivotSign(pivots: Tensor, like: Tensor): Tensor {
  const n = pivots.shape[pivots.ndim - 1]!;
  const dtype = like.dtype;
  const flips = where(notEqual(pivots, arange(n)), full([], -1, { dtype }), full([], 1, { dtype }));
  return prod(flips, { axis: -1 });
}

/** @internal op(A)⁻¹ B with one `triangular_solve`. */
export function trisolve(a: Tensor, b: Tensor, p: TriangularSolveParams): Tensor {
  return bind(triangularSolveP, [a, b], p)[0]!;
}

/** The triangle of a tangent/cotangent that a triangular solve with `p` actually reads. */
function band(t: Tensor, p: TriangularSolveParams): Tensor {
  return p.lower ? tril(t, p.unitDiagonal) : triu(t, p.unitDiagonal);
}

/** Φ(X): the lower triangle of X with its diagonal halved (the Cholesky derivative's projection). */
function phi(x: Tensor): Tensor {
  const n = lastDim(x);
  return mul(tril(x), sub(1, mul(0.5, eye(n, { dtype: x.dtype }))));
}

// ---- shape rules -----------------------------------------------------------------------------

/** Check a `[..., n, n]` float operand; returns n. */
function checkSquare(op: string, what: string, a: Aval): number {
  checkFloat(op, a);
  const s = a.shape;
  if (s.length < 2 || s[s.length - 1] !== s[s.length - 2])
    throw new ShapeError(
      `${op}: ${what} must be a square matrix or a stack of them [..., n, n], got shape ${fmtShape(s)}`,
    );
  return s[s.length - 1]!;
}

/** The batch rule of a one-operand primitive acting on the last two axes: any other axis is a batch axis already. */
function matrixBatcher<P>(self: () => Primitive<P>): BatchRule<P> {
  // f(x)[b] = f(x[b]) for every leading axis b
  return (args, dims, p) => {
    const d = onlyDim(dims);
    const x = args[0]!;
    const inPlace = d < x.ndim - 2;
    const outs = bind(self(), [inPlace ? x : moveAxis(x, d, 0)], p);
    return [outs, outs.map(() => (inPlace ? d : 0))];
  };
}

// ---- cholesky ------------------------------------------------------------------------------------

/**
 * Cholesky factor L (lower) of an SPD matrix; the kernel reads only A's lower triangle, so the
 * rules see A as S(A) = tril(A) + tril(A, -1)ᵀ. Not positive definite: all NaN.
 */
// dL = L Φ(L⁻¹ S(dA) L⁻ᵀ);  vjp: G = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹, Ā = tril(G) + tril(Gᵀ, -1)
export const choleskyP: Primitive<NoParams> = definePrimitive<NoParams>({
  name: "cholesky",
  saves: "outputs",
  abstractEval(avals) {
    checkArity("cholesky", avals, 1);
    const a = avals[0]!;
    checkSquare("cholesky", "the operand", a);
    return [{ shape: a.shape, dtype: a.dtype, weakType: a.weakType }];
  },
  impl(bk, [x], [a]) {
    const n = lastDim(a!);
    return [bk.cholesky(x!, sizeOf(a!.shape.slice(0, -2)), n, a!.dtype)];
  },
  jvp([_a], [ta], [l]) {
    if (isZero(ta!)) return [Zero.like(l!)];
    const s = add(tril(ta!), swapLastAxes(tril(ta!, true)));
    const y = trisolve(l!, s, LOWER); // L⁻¹ S
    const z = swapLastAxes(trisolve(l!, swapLastAxes(y), LOWER)); // L⁻¹ S L⁻ᵀ
    return [matmul(l!, phi(z))];
  },
  vjp([ct], [a], [l], _p, needs) {
    return [
      need(needs, 0, a!, () => {
        const s = phi(matmul(swapLastAxes(l!), ct!)); // Φ(Lᵀ L̄)
        const t = trisolve(l!, s, LOWER_T); // L⁻ᵀ S
        const g = swapLastAxes(trisolve(l!, swapLastAxes(t), LOWER_T)); // L⁻ᵀ S L⁻¹
        return add(tril(g), tril(swapLastAxes(g), true));
      }),
    ];
  },
  // jet: L(t)L(t)ᵀ = S(A(t)); with normalised coefficients, l₀l_kᵀ + l_kl₀ᵀ = s_k − Σ_{j=1}^{k−1} l_j l_{k−j}ᵀ =: R_k,
  // so l_k = l₀ Φ(l₀⁻¹ R_k l₀⁻ᵀ) (the JVP's solution with dA = R_k)
  jet([a0], [sa], [l0]) {
    const K = orderOf([sa ?? null]);
    const a = coeffs(a0!, sa ?? null, K);
    const l: Coeffs = [l0!];
    for (let k = 1; k <= K; k++) {
      const ak = a[k]!;
      let r = ak === null ? null : add(tril(ak), swapLastAxes(tril(ak, true)));
      for (let j = 1; j < k; j++) {
        const lj = l[j];
        const lkj = l[k - j];
        if (lj === null || lj === undefined || lkj === null || lkj === undefined) continue;
        const t = matmul(lj, swapLastAxes(lkj));
        r = r === null ? neg(t) : sub(r, t);
      }
      if (r === null) {
        l.push(null);
        continue;
      }
      const y = trisolve(l0!, r, LOWER); // l₀⁻¹ R
      const z = swapLastAxes(trisolve(l0!, swapLastAxes(y), LOWER)); // l₀⁻¹ R l₀⁻ᵀ
      l.push(matmul(l0!, phi(z)));
    }
    return [fromCoeffs(l, l0!)];
  },
  batch: matrixBatcher(() => choleskyP),
});

// ---- triangular_solve ----------------------------------------------------------------------------

// X = op(A)⁻¹ B:  dX = op(A)⁻¹ (dB − op(dA) X);  vjp: B̄ = op(A)⁻ᵀ X̄, Ā = −B̄ Xᵀ (op = id) or −X B̄ᵀ (op = ᵀ),
// both restricted to the triangle of A the kernel reads
export const triangularSolveP: Primitive<TriangularSolveParams> = definePrimitive<TriangularSolveParams>({
  name: "triangular_solve",
  saves: "all",
  abstractEval(avals) {
    checkArity("triangular_solve", avals, 2);
    const [a, b] = avals as [Aval, Aval];
    const n = checkSquare("triangular_solve", "a", a);
    checkFloat("triangular_solve", b);
    if (a.dtype !== b.dtype)
      throw new DTypeError(`triangular_solve: operand dtypes differ (${a.dtype}, ${b.dtype})`);
    const sb = b.shape;
    if (
      sb.length !== a.shape.length ||
      !shapeEq(sb.slice(0, -2), a.shape.slice(0, -2)) ||
      sb[sb.length - 2] !== n
    )
      throw new ShapeError(
        `triangular_solve: b ${fmtShape(sb)} must be [..., ${n}, m] with the batch dims of a ${fmtShape(a.shape)}`,
      );
    return [{ shape: sb, dtype: b.dtype, weakType: a.weakType && b.weakType }];
  },
  impl(bk, [x, y], [a, b], p) {
    const n = lastDim(a!);
    return [bk.triangularSolve(x!, y!, sizeOf(a!.shape.slice(0, -2)), n, lastDim(b!), p, a!.dtype)];
  },
  jvp([a], [ta, tb], [x], p) {
    const opA = (t: Tensor) => (p.transposeA ? swapLastAxes(t) : t);
    const rhs = sumTerms(
      x!,
      nz(tb!, (t) => t),
      nz(ta!, (t) => neg(matmul(opA(band(t, p)), x!))),
    );
    return [isZero(rhs) ? rhs : trisolve(a!, rhs, p)];
  },
  vjp([ct], [a, b], [x], p, needs) {
    const bbar = trisolve(a!, ct!, { ...p, transposeA: !p.transposeA });
    return [
      need(needs, 0, a!, () =>
        band(neg(p.transposeA ? matmul(x!, swapLastAxes(bbar)) : matmul(bbar, swapLastAxes(x!))), p),
      ),
      needs[1] ? bbar : Zero.like(b!),
    ];
  },
  // jet: op(A(t)) X(t) = B(t); with normalised coefficients,
  // x_k = op(a₀)⁻¹ (b_k − Σ_{j=1}^{k} op(band(a_j)) x_{k−j})
  jet([a, b], [sa, sb], [x0], p) {
    const K = orderOf([sa ?? null, sb ?? null]);
    const ac = coeffs(a!, sa ?? null, K);
    const bc = coeffs(b!, sb ?? null, K);
    const opA = (t: Tensor) => (p.transposeA ? swapLastAxes(band(t, p)) : band(t, p));
    const x: Coeffs = [x0!];
    for (let k = 1; k <= K; k++) {
      let r = bc[k] ?? null;
      for (let j = 1; j <= k; j++) {
        const aj = ac[j];
        const xkj = x[k - j];
        if (aj === null || aj === undefined || xkj === null || xkj === undefined) continue;
        const t = matmul(opA(aj), xkj);
        r = r === null ? neg(t) : sub(r, t);
      }
      x.push(r === null ? null : trisolve(a!, r, p));
    }
    return [fromCoeffs(x, x0!)];
  },
  // B batched alone: its batch columns join the m columns (the solve is column by column);
  // otherwise both get the batch axis first.
  batch([a, b], [da, db], p) {
    if (da === null || da === undefined) {
      const r = b!.ndim - 1; // rank of one example
      const x = moveAxis(b!, db!, r - 1); // [..., n, B, m]
      const s = x.shape;
      const y = trisolve(a!, reshape(x, [...s.slice(0, r - 1), s[r - 1]! * s[r]!]), p);
      return [[reshape(y, s)], [r - 1]];
    }
    const size = batchSize([a!, b!], [da, db ?? null]);
    return [[trisolve(batchFirst(a!, da, size), batchFirst(b!, db ?? null, size), p)], [0]];
  },
  showParams: (p) =>
    `lower=${p.lower} transpose_a=${p.transposeA}${p.unitDiagonal ? " unit_diagonal=true" : ""}`,
});

// ---- lu ------------------------------------------------------------------------------------------

/**
 * LU with partial pivoting: outputs the packed factors (L unit lower below the diagonal, U on
 * and above), the LAPACK-style int32 pivots and the int32 row permutation, with A[perm] = L U.
 */
// P dA = dL U + L dU:  X = L⁻¹ P dA U⁻¹, dL = L tril(X, -1), dU = triu(X) U;
// vjp: X̄ = tril(Lᵀ L̄, -1) + triu(Ū Uᵀ), Ā = Pᵀ L⁻ᵀ X̄ U⁻ᵀ
export const luP: Primitive<NoParams> = definePrimitive<NoParams>({
  name: "lu",
  saves: "outputs",
  abstractEval(avals) {
    checkArity("lu", avals, 1);
    const a = avals[0]!;
    checkSquare("lu", "the operand", a);
    const vec = a.shape.slice(0, -1);
    return [
      { shape: a.shape, dtype: a.dtype, weakType: a.weakType },
      { shape: vec, dtype: "int32", weakType: false },
      { shape: vec, dtype: "int32", weakType: false },
    ];
  },
  impl(bk, [x], [a]) {
    const r = bk.lu(x!, sizeOf(a!.shape.slice(0, -2)), lastDim(a!), a!.dtype);
    return [r.lu, r.pivots, r.permutation];
  },
  jvp(_primals, [ta], [lu, pivots, perm]) {
    const zeros: Tangent[] = [Zero.like(pivots!), Zero.like(perm!)];
    if (isZero(ta!)) return [Zero.like(lu!), ...zeros];
    const y = trisolve(lu!, permuteRows(ta!, perm!), UNIT_LOWER); // L⁻¹ P dA
    const x = swapLastAxes(trisolve(lu!, swapLastAxes(y), UPPER_T)); // L⁻¹ P dA U⁻¹
    const [l, u] = factors(lu!);
    return [add(matmul(l, tril(x, true)), matmul(triu(x), u)), ...zeros];
  },
  vjp([ct], [a], [lu, _pivots, perm], _p, needs) {
    return [
      need(needs, 0, a!, () => {
        const [l, u] = factors(lu!);
        const xbar = add(
          tril(matmul(swapLastAxes(l), tril(ct!, true)), true),
          triu(matmul(triu(ct!), swapLastAxes(u))),
        );
        const g = trisolve(lu!, xbar, UNIT_LOWER_T); // L⁻ᵀ X̄
        return unpermuteRows(swapLastAxes(trisolve(lu!, swapLastAxes(g), UPPER)), perm!); // Pᵀ L⁻ᵀ X̄ U⁻ᵀ
      }),
    ];
  },
  // jet: P A(t) = L(t) U(t); with normalised coefficients, l₀u_k + l_ku₀ = P a_k − Σ_{j=1}^{k−1} l_j u_{k−j} =: R_k,
  // X = l₀⁻¹ R_k u₀⁻¹, l_k = l₀ tril(X, −1), u_k = triu(X) u₀; the packed output's coefficient is l_k + u_k
  jet([a0], [sa], [lu, _pivots, perm]) {
    const K = orderOf([sa ?? null]);
    const a = coeffs(a0!, sa ?? null, K);
    const [l0, u0] = factors(lu!);
    const ls: Coeffs = [l0];
    const us: Coeffs = [u0];
    const packed: Coeffs = [lu!];
    for (let k = 1; k <= K; k++) {
      const ak = a[k];
      let r = ak === null || ak === undefined ? null : permuteRows(ak, perm!);
      for (let j = 1; j < k; j++) {
        const lj = ls[j];
        const ukj = us[k - j];
        if (lj === null || lj === undefined || ukj === null || ukj === undefined) continue;
        const t = matmul(lj, ukj);
        r = r === null ? neg(t) : sub(r, t);
      }
      if (r === null) {
        ls.push(null);
        us.push(null);
        packed.push(null);
        continue;
      }
      const y = trisolve(lu!, r, UNIT_LOWER); // l₀⁻¹ R
      const xk = swapLastAxes(trisolve(lu!, swapLastAxes(y), UPPER_T)); // l₀⁻¹ R u₀⁻¹
      const lk = matmul(l0, tril(xk, true));
      const uk = matmul(triu(xk), u0);
      ls.push(lk);
      us.push(uk);
      packed.push(add(lk, uk));
    }
    return [fromCoeffs(packed, lu!), null, null];
  },
  batch: matrixBatcher(() => luP),
});

/** L (unit lower) and U from packed LU factors. */
function factors(lu: Tensor): [Tensor, Tensor] {
  const n = lastDim(lu);
  return [add(tril(lu, true), eye(n, { dtype: lu.dtype })), triu(lu)];
}

// ---- det -----------------------------------------------------------------------------------------

/**
 * @internal The cofactor matrix C = adj(A)ᵀ = ∂det(A)/∂A of `[..., n, n]` matrices, exact also
 * for singular A of rank n − 1 (and 0 for rank < n − 1), from the pivoted LU A = Pᵀ L U:
 * C = sign(P) · Pᵀ L⁻ᵀ adj(U)ᵀ. With k the smallest pivot and U₁ = U with u_kk := 1 (invertible
 * whenever rank ≥ n − 1), adj(U) = d_k (u_kk U₁⁻¹ + (1 − u_kk) U₁⁻¹ e_k e_kᵀ U₁⁻¹), where
 * d_k = ∏_{i≠k} u_ii — Sherman–Morrison on u_kk, a polynomial identity with no division by u_kk
 * (d_k = 0 means a second zero pivot, rank < n − 1, and adj(A) = 0).
 */
export function cofactor(a: Tensor): Tensor {
  const n = lastDim(a);
  if (n === 0) return zerosLike(a);
  const dtype = a.dtype;
  const [lu, pivots, perm] = bind(luP, [a], {}) as [Tensor, Tensor, Tensor];
  const u = diagonal(lu);
  const ek = equal(arange(n), argmin(abs(u), { axis: -1, keepdims: true })); // [..., n] one-hot at k
  const ukk = sum(where(ek, u, 0), { axis: -1, keepdims: true }); // [..., 1]
  const dk = prod(where(ek, 1, u), { axis: -1, keepdims: true }); // [..., 1]
  const kk = logicalAnd(eyeMask(n), expandDims(ek, -2)); // the (k, k) entry
  // Rank < n − 1 (a second zero pivot, so d_k = 0): adj(A) = 0. U₁ is singular there too, so it is
  // swapped for I before the solve (the double-where pattern: no Inf/NaN in either branch).
  const low = expandDims(equal(dk, 0), -1); // [..., 1, 1]
  const eyeN = eye(n, { dtype });
  const u1 = where(low, eyeN, where(kk, 1, lu));
  const w = trisolve(u1, broadcastTo(eyeN, lu.shape), UPPER_T); // U₁⁻ᵀ
  const r = sum(where(expandDims(ek, -2), w, 0), { axis: -1 }); // U₁⁻ᵀ e_k
  const c = sum(where(expandDims(ek, -1), w, 0), { axis: -2 }); // e_kᵀ U₁⁻ᵀ
  const t = expandDims(ukk, -1);
  const adjUT = mul(
    expandDims(dk, -1),
    add(mul(t, w), mul(sub(1, t), mul(expandDims(r, -1), expandDims(c, -2)))),
  );
  const m = trisolve(lu, where(low, 0, adjUT), UNIT_LOWER_T); // L⁻ᵀ adj(U)ᵀ
  return mul(expandDims(pivotSign(pivots, a), [-2, -1]), unpermuteRows(m, perm));
}

/** Determinants of `[..., n, n]` matrices (LU with partial pivoting); exactly 0 for a zero pivot. */
// d det A = tr(adj(A) dA) = ⟨C, dA⟩ (Jacobi);  vjp: Ā = ḡ · C, with C the cofactor matrix (exact at rank n − 1)
export const detP: Primitive<NoParams> = definePrimitive<NoParams>({
  name: "det",
  saves: "inputs",
  abstractEval(avals) {
    checkArity("det", avals, 1);
    const a = avals[0]!;
    checkSquare("det", "the operand", a);
    return [{ shape: a.shape.slice(0, -2), dtype: a.dtype, weakType: a.weakType }];
  },
  impl(bk, [x], [a]) {
    return [bk.det(x!, sizeOf(a!.shape.slice(0, -2)), lastDim(a!), a!.dtype)];
  },
  jvp([a], [ta], [d]) {
    return [isZero(ta!) ? Zero.like(d!) : sum(mul(cofactor(a!), ta!), { axis: [-2, -1] })];
  },
  vjp([ct], [a], _o, _p, needs) {
    return [need(needs, 0, a!, () => mul(expandDims(ct!, [-2, -1]), cofactor(a!)))];
  },
  batch: matrixBatcher(() => detP),
});

// ---- eigh ----------------------------------------------------------------------------------------

/**
 * F with F_ij = 1/(w_j − w_i), and 0 where w_i = w_j (the diagonal, and exactly repeated
 * eigenvalues, whose eigenvectors have no unique derivative: their term is dropped so that
 * gradients of the eigenvalues, and of functions of the whole eigenspace, stay finite). Built
 * with the double-where pattern, so no 1/0 appears anywhere, also in higher derivatives.
 */
function eigGaps(w: Tensor): Tensor {
  const d = sub(expandDims(w, -2), expandDims(w, -1)); // d_ij = w_j − w_i
  const same = equal(d, 0);
  return where(same, 0, div(1, where(same, 1, d)));
}

/** diag(w) for a stack of vectors `[..., n]`. */
function diagOf(w: Tensor): Tensor {
  return mul(expandDims(w, -1), eye(w.shape[w.ndim - 1]!, { dtype: w.dtype }));
}

/**
 * Symmetric eigendecomposition of S(A) = (A + Aᵀ)/2: eigenvalues w (ascending) and orthonormal
 * eigenvectors V (columns). With M = Vᵀ S(dA) V and F the inverse eigenvalue gaps: dw = diag(M),
 * dV = V (F ∘ M) (for distinct eigenvalues; the terms of an exactly repeated pair are dropped).
 */
// vjp: Ā = S(V (diag(w̄) + F ∘ (Vᵀ V̄)) Vᵀ)
export const eighP: Primitive<NoParams> = definePrimitive<NoParams>({
  name: "eigh",
  saves: "outputs",
  abstractEval(avals) {
    checkArity("eigh", avals, 1);
    const a = avals[0]!;
    checkSquare("eigh", "the operand", a);
    return [
      { shape: a.shape.slice(0, -1), dtype: a.dtype, weakType: a.weakType },
      { shape: a.shape, dtype: a.dtype, weakType: a.weakType },
    ];
  },
  impl(bk, [x], [a]) {
    const r = bk.eigh(x!, sizeOf(a!.shape.slice(0, -2)), lastDim(a!), a!.dtype);
    return [r.values, r.vectors];
  },
  jvp(_primals, [ta], [w, v]) {
    if (isZero(ta!)) return [Zero.like(w!), Zero.like(v!)];
    const s = mul(add(ta!, swapLastAxes(ta!)), 0.5);
    const m = matmul(swapLastAxes(v!), matmul(s, v!));
    const n = lastDim(m);
    const dw = sum(mul(m, eye(n, { dtype: m.dtype })), { axis: -1 });
    return [dw, matmul(v!, mul(eigGaps(w!), m))];
  },
  vjp([wbar, vbar], [a], [w, v], _p, needs) {
    return [
      need(needs, 0, a!, () => {
        const inner = add(diagOf(wbar!), mul(eigGaps(w!), matmul(swapLastAxes(v!), vbar!)));
        const g = matmul(v!, matmul(inner, swapLastAxes(v!)));
        return mul(add(g, swapLastAxes(g)), 0.5);
      }),
    ];
  },
  batch: matrixBatcher(() => eighP),
});
