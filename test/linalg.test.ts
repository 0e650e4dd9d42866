/**
 * @file `ad.linalg` (API §2): known values of solve, inv, det, slogdet, cholesky,
 * triangularSolve, luFactor and norm; batch broadcasting and the vector-rhs rule; the documented
 * behaviour at singular and non-positive-definite matrices (IEEE results, never an exception;
 * det's gradient stays the adjugate); derivatives against closed forms and under jit, vmap,
 * hessian and eager backward; and the typed errors. Gradcheck/gradgradcheck of every function,
 * batched and unbatched, runs from the table in `op-specs.ts`.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
// The internal op (the public `ad.matmul` never sets the flags), from the same build as "adjoint".
import { matmulT } from "../dist/primitives/linalg.js";
import { assertClose } from "./helpers.js";

type Nested = number[] | number[][] | number[][][];
const f64 = (x: Nested) => ad.tensor(x, { dtype: "float64" });
const rand = (seed: number, shape: number[]) =>
  ad.random.uniform(ad.random.key(seed), shape, { minval: -1, maxval: 1, dtype: "float64" });
/** A random well-conditioned n×n matrix (or stack of them): M + n·I with entries of M in [-1, 1]. */
const wellConditioned = (seed: number, shape: number[]) =>
  ad.add(
    rand(seed, shape),
    ad.mul(shape[shape.length - 1]!, ad.eye(shape[shape.length - 1]!, { dtype: "float64" })),
  );
const mT = (m: ad.Tensor) =>
  ad.transpose(
    m,
    [...m.shape.keys()].map((i) => (i < m.ndim - 2 ? i : 2 * m.ndim - 3 - i)),
  );
const entries = (t: ad.Tensor) => Array.from(t.data(), Number);

/** The cofactor matrix of a small JS matrix, by minors (the reference for det's gradient). */
function cofactors(a: number[][]): number[][] {
  const minorDet = (m: number[][]): number =>
    m.length === 0
      ? 1
      : m[0]!.reduce(
          (s, v, j) =>
            s + (j % 2 === 0 ? 1 : -1) * v * minorDet(m.slice(1).map((r) => r.filter((_, k) => k !== j))),
          0,
        );
  return a.map((_, i) =>
    a.map((_, j) => {
      const minor = a.filter((_, r) => r !== i).map((row) => row.filter((_, c) => c !== j));
      return ((i + j) % 2 === 0 ? 1 : -1) * minorDet(minor);
    }),
  );
}

describe("known values", () => {
  test("det of permutation, triangular and small matrices", () => {
    assert.equal(ad.linalg.det(ad.eye(4, { dtype: "float64" })).item(), 1);
    const swap = f64([
      [0, 1, 0],
      [1, 0, 0],
      [0, 0, 1],
    ]);
    assert.equal(ad.linalg.det(swap).item(), -1);
    const cycle = f64([
      [0, 1, 0],
      [0, 0, 1],
      [1, 0, 0],
    ]);
    assert.equal(ad.linalg.det(cycle).item(), 1);
    assert.equal(
      ad.linalg
        .det(
          f64([
            [2, 5, 7],
            [0, 3, 1],
            [0, 0, -4],
          ]),
        )
        .item(),
      -24,
    );
    assertClose(
      ad.linalg.det(
        f64([
          [1, 2],
          [3, 4],
        ]),
      ),
      -2,
    );
    // 0x0 and 1x1
    assert.equal(ad.linalg.det(ad.zeros([0, 0], { dtype: "float64" })).item(), 1);
    assert.equal(ad.linalg.det(f64([[-3.5]])).item(), -3.5);
  });

  test("inverse of a 2x2 matrix, and A·A⁻¹ = I for a larger one", () => {
    assertClose(
      ad.linalg.inv(
        f64([
          [4, 7],
          [2, 6],
        ]),
      ),
      [
        [0.6, -0.7],
        [-0.2, 0.4],
      ],
    );
    const a = wellConditioned(1, [6, 6]);
    assertClose(ad.matmul(a, ad.linalg.inv(a)), ad.eye(6, { dtype: "float64" }), { atol: 1e-13 });
  });

  test("solve agrees with matmul: vector and matrix right-hand sides", () => {
    const a = wellConditioned(2, [5, 5]);
    const b = rand(3, [5]);
    const x = ad.linalg.solve(a, b);
    assert.deepEqual(x.shape, [5]);
    assertClose(ad.matmul(a, x), b, { atol: 1e-13 });
    const bm = rand(4, [5, 3]);
    const xm = ad.linalg.solve(a, bm);
    assert.deepEqual(xm.shape, [5, 3]);
    assertClose(ad.matmul(a, xm), bm, { atol: 1e-13 });
    // A matrix that needs row swaps.
    const p = f64([
      [0, 2, 1],
      [1, 0, 0],
      [0, 1, 3],
    ]);
    assertClose(ad.linalg.solve(p, f64([5, 1, 10])), [1, 1, 3], { atol: 1e-14 });
  });

  test("slogdet: sign and log|det|, also where det itself overflows", () => {
    const [s, l] = ad.linalg.slogdet(
      f64([
        [-2, 0],
        [0, 3],
      ]),
    );
    assert.equal(s.item(), -1);
    assertClose(l, Math.log(6));
    const big = ad.mul(1e200, ad.eye(2, { dtype: "float64" }));
    assert.equal(ad.linalg.det(big).item(), Infinity);
    const [s2, l2] = ad.linalg.slogdet(big);
    assert.equal(s2.item(), 1);
    assertClose(l2, 2 * Math.log(1e200));
    // Agrees with det on a random batch.
    const a = ad.add(rand(5, [3, 4, 4]), ad.eye(4, { dtype: "float64" }));
    const [sign, logabs] = ad.linalg.slogdet(a);
    assertClose(ad.mul(sign, ad.exp(logabs)), ad.linalg.det(a), { rtol: 1e-12 });
  });

  test("cholesky reconstructs A = L Lᵀ with L lower and a positive diagonal; upper gives Uᵀ U", () => {
    assertClose(
      ad.linalg.cholesky(
        f64([
          [4, 2],
          [2, 5],
        ]),
      ),
      [
        [2, 0],
        [1, 2],
      ],
    );
    const m = rand(6, [2, 4, 4]);
    const a = ad.add(ad.matmul(m, mT(m)), ad.eye(4, { dtype: "float64" }));
    const l = ad.linalg.cholesky(a);
    assertClose(ad.matmul(l, mT(l)), a, { atol: 1e-13 });
    const lv = l.toArray() as number[][][];
    for (const mat of lv)
      mat.forEach((row, i) =>
        row.forEach((v, j) => {
          if (j > i) assert.equal(v, 0);
          if (j === i) assert.ok(v > 0);
        }),
      );
    const u = ad.linalg.cholesky(a, { upper: true });
    assertClose(ad.matmul(mT(u), u), a, { atol: 1e-13 });
    // symmetrizeInput: false reads only the lower triangle (NumPy); the default factors ½(A + Aᵀ).
    const skew = f64([
      [4, 3],
      [1, 5],
    ]);
    assertClose(ad.linalg.cholesky(skew), [
      [2, 0],
      [1, 2],
    ]);
    assertClose(ad.linalg.cholesky(skew, { symmetrizeInput: false }), [
      [2, 0],
      [0.5, Math.sqrt(4.75)],
    ]);
  });

  test("triangularSolve: lower/upper, transposeA, unitDiagonal, right side", () => {
    const m = rand(7, [4, 4]);
    const a = ad.add(m, ad.mul(4, ad.eye(4, { dtype: "float64" })));
    const b = rand(8, [4, 2]);
    const lowerA = ad.where(
      ad.greaterEqual(ad.arange(4).reshape([4, 1]), ad.arange(4).reshape([1, 4])),
      a,
      0,
    );
    const upperA = mT(
      ad.where(ad.greaterEqual(ad.arange(4).reshape([4, 1]), ad.arange(4).reshape([1, 4])), mT(a), 0),
    );
    const unitLowerA = ad.add(
      ad.where(ad.greater(ad.arange(4).reshape([4, 1]), ad.arange(4).reshape([1, 4])), a, 0),
      ad.eye(4, { dtype: "float64" }),
    );
    const cases: [ad.linalg.TriangularSolveOptions, ad.Tensor][] = [
      [{ lower: true }, lowerA],
      [{}, upperA],
      [{ lower: true, transposeA: true }, mT(lowerA)],
      [{ transposeA: true }, mT(upperA)],
      [{ lower: true, unitDiagonal: true }, unitLowerA],
    ];
    for (const [opts, op] of cases) {
      const x = ad.linalg.triangularSolve(a, b, opts);
      assertClose(ad.matmul(op, x), b, { atol: 1e-13 });
      // Right side: x op(A) = bᵀ.
      const xr = ad.linalg.triangularSolve(a, mT(b), { ...opts, leftSide: false });
      assertClose(ad.matmul(xr, op), mT(b), { atol: 1e-13 });
    }
    // A vector right-hand side, on either side.
    const v = rand(9, [4]);
    assertClose(ad.matmul(lowerA, ad.linalg.triangularSolve(a, v, { lower: true })), v, { atol: 1e-13 });
    assertClose(ad.matmul(ad.linalg.triangularSolve(a, v, { lower: true, leftSide: false }), lowerA), v, {
      atol: 1e-13,
    });
  });

  test("luFactor: a[permutation] = L U with partial pivoting", () => {
    const a = rand(10, [2, 5, 5]);
    const { lu, pivots, permutation } = ad.linalg.luFactor(a);
    assert.equal(pivots.dtype, "int32");
    assert.equal(permutation.dtype, "int32");
    const strict = ad.greater(ad.arange(5).reshape([5, 1]), ad.arange(5).reshape([1, 5]));
    const l = ad.add(ad.where(strict, lu, 0), ad.eye(5, { dtype: "float64" }));
    const u = ad.where(ad.logicalNot(strict), lu, 0);
    const rows = ad.gather(a, 1, ad.broadcastTo(ad.expandDims(permutation, -1), [2, 5, 5]));
    assertClose(ad.matmul(l, u), rows, { atol: 1e-14 });
    // Partial pivoting: every multiplier is at most 1 in magnitude.
    assert.ok(entries(ad.where(strict, lu, 0)).every((v) => Math.abs(v) <= 1));
  });

  test("norm: vector ords, Frobenius and induced matrix norms, keepdims", () => {
    const v = f64([3, -4, 0]);
    assert.equal(ad.linalg.norm(v).item(), 5);
    assert.equal(ad.linalg.norm(v, { ord: 1 }).item(), 7);
    assert.equal(ad.linalg.norm(v, { ord: Infinity }).item(), 4);
    assert.equal(ad.linalg.norm(v, { ord: -Infinity }).item(), 0);
    assert.equal(ad.linalg.norm(v, { ord: 0 }).item(), 2);
    assertClose(ad.linalg.norm(v, { ord: 3 }), Math.cbrt(27 + 64));
    const m = f64([
      [1, -2],
      [3, 4],
    ]);
    assertClose(ad.linalg.norm(m), Math.sqrt(30));
    assertClose(ad.linalg.norm(m, { ord: "fro" }), Math.sqrt(30));
    assert.equal(ad.linalg.norm(m, { ord: 1 }).item(), 6);
    assert.equal(ad.linalg.norm(m, { ord: Infinity }).item(), 7);
    assert.equal(ad.linalg.norm(m, { ord: -1 }).item(), 4);
    assertClose(ad.linalg.norm(m, { axis: 1, keepdims: true }), [[Math.sqrt(5)], [5]]);
    // Singular values of [[1, -2], [3, 4]]: sqrt(15 ± sqrt(125)) (eigenvalues of AᵀA = [[10, 10], [10, 20]]).
    const s1 = Math.sqrt(15 + Math.sqrt(125));
    const s2 = Math.sqrt(15 - Math.sqrt(125));
    assertClose(ad.linalg.norm(m, { ord: 2 }), s1);
    assertClose(ad.linalg.norm(m, { ord: -2 }), s2);
    assertClose(ad.linalg.norm(m, { ord: "nuc" }), s1 + s2);
  });
});

describe("batching and broadcasting", () => {
  test("every function maps over leading axes like a loop over matrices", () => {
    const a = wellConditioned(11, [2, 3, 4, 4]);
    const b = rand(12, [2, 3, 4, 2]);
    const m = rand(13, [2, 3, 4, 4]);
    const spd = ad.add(ad.matmul(m, mT(m)), ad.eye(4, { dtype: "float64" }));
    const fns: [string, (...x: ad.Tensor[]) => ad.Tensor, ad.Tensor[]][] = [
      ["solve", (x, y) => ad.linalg.solve(x!, y!), [a, b]],
      ["inv", (x) => ad.linalg.inv(x!), [a]],
      ["det", (x) => ad.linalg.det(x!), [a]],
      ["slogdet", (x) => ad.linalg.slogdet(x!)[1], [a]],
      ["cholesky", (x) => ad.linalg.cholesky(x!), [spd]],
      ["triangularSolve", (x, y) => ad.linalg.triangularSolve(x!, y!, { lower: true }), [a, b]],
    ];
    for (const [name, f, xs] of fns) {
      const whole = f(...xs);
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 3; j++) {
          const one = f(...xs.map((x) => x.at(i, j)));
          assertClose(whole.at(i, j), one, { rtol: 0, atol: 0 });
        }
      assert.ok(whole.shape.length >= 2, name);
    }
  });

  test("the batch dims of a and b broadcast; b shaped a.shape[:-1] is a stack of vectors", () => {
    const a = wellConditioned(14, [2, 3, 3]);
    assert.deepEqual(ad.linalg.solve(a, rand(15, [3])).shape, [2, 3]);
    assert.deepEqual(ad.linalg.solve(a, rand(15, [2, 3])).shape, [2, 3]);
    assert.deepEqual(ad.linalg.solve(a.at(0), rand(16, [4, 3, 2])).shape, [4, 3, 2]);
    assert.deepEqual(ad.linalg.solve(ad.reshape(a, [2, 1, 3, 3]), rand(17, [5, 3, 1])).shape, [2, 5, 3, 1]);
    // b [3, 3] for one 3x3 matrix is a matrix right-hand side.
    assert.deepEqual(ad.linalg.solve(a.at(0), rand(23, [3, 3])).shape, [3, 3]);
    // A stack of vectors: each solved with its own matrix.
    const bs = rand(18, [2, 3]);
    const xs = ad.linalg.solve(a, bs);
    for (let i = 0; i < 2; i++)
      assertClose(xs.at(i), ad.linalg.solve(a.at(i), bs.at(i)), { rtol: 0, atol: 0 });
    // One matrix, many right-hand sides.
    const many = rand(19, [4, 3, 2]);
    const xm = ad.linalg.solve(a.at(1), many);
    for (let i = 0; i < 4; i++) assertClose(ad.matmul(a.at(1), xm.at(i)), many.at(i), { atol: 1e-13 });
    assert.deepEqual(
      ad.linalg.triangularSolve(a.at(0), rand(20, [5, 3, 2]), { lower: true }).shape,
      [5, 3, 2],
    );
  });

  test("vmap, jit and trace", () => {
    const a = wellConditioned(21, [4, 3, 3]);
    const b = rand(22, [4, 3]);
    const f = (x: ad.Tensor, y: ad.Tensor) => ad.linalg.solve(x, y);
    assertClose(ad.vmap(f)(a, b), ad.linalg.solve(a, b), { rtol: 0, atol: 0 });
    assertClose(ad.jit(f)(a, b), f(a, b), { rtol: 0, atol: 0 });
    const g = ad.jit((x: ad.Tensor) => ad.grad((y: ad.Tensor) => ad.linalg.det(y))(x));
    assertClose(g(a.at(0)), ad.grad((y: ad.Tensor) => ad.linalg.det(y))(a.at(0)), { rtol: 1e-14, atol: 0 });
    const prog = ad
      .trace((x: ad.Tensor) => ad.linalg.det(x))(a.at(0))
      .toString();
    assert.match(prog, /= det /);
    const prog2 = ad.trace(f)(a.at(0), b.at(0)).toString();
    assert.match(prog2, /= lu /);
    assert.match(prog2, /= triangular_solve\[lower=true/);
  });
});

describe("derivatives against closed forms", () => {
  const a = wellConditioned(23, [4, 4]);
  const ainv = ad.linalg.inv(a);

  test("∇ det = det · A⁻ᵀ, ∇ log|det| = A⁻ᵀ", () => {
    assertClose(ad.grad((x: ad.Tensor) => ad.linalg.det(x))(a), ad.mul(ad.linalg.det(a), mT(ainv)), {
      rtol: 1e-12,
      atol: 1e-12,
    });
    assertClose(ad.grad((x: ad.Tensor) => ad.linalg.slogdet(x)[1])(a), mT(ainv), {
      rtol: 1e-12,
      atol: 1e-14,
    });
  });

  test("d A⁻¹ = −A⁻¹ dA A⁻¹ (forward) and the solve VJP (reverse)", () => {
    const da = rand(24, [4, 4]);
    const [, t] = ad.jvp((x: ad.Tensor) => ad.linalg.inv(x), [a], [da]);
    assertClose(t, ad.neg(ad.matmul(ad.matmul(ainv, da), ainv)), { rtol: 1e-12, atol: 1e-13 });
    const b = rand(25, [4]);
    const g = rand(26, [4]);
    const x = ad.linalg.solve(a, b);
    const [gA, gb] = ad.grad((m: ad.Tensor, v: ad.Tensor) => ad.sum(ad.mul(g, ad.linalg.solve(m, v))), {
      argnums: [0, 1],
    })(a, b) as [ad.Tensor, ad.Tensor];
    const lam = ad.linalg.solve(mT(a), g); // A⁻ᵀ ḡ
    assertClose(gb, lam, { rtol: 1e-12, atol: 1e-14 });
    assertClose(gA, ad.neg(ad.outer(lam, x)), { rtol: 1e-12, atol: 1e-14 });
  });

  test("Hessian of log|det|: H[E] = −A⁻ᵀ Eᵀ A⁻ᵀ (forward over reverse)", () => {
    const e = rand(27, [4, 4]);
    const [hv] = ad.hvp((x: ad.Tensor) => ad.linalg.slogdet(x)[1], [a], [e]) as [ad.Tensor];
    assertClose(hv, ad.neg(mT(ad.matmul(ad.matmul(ainv, e), ainv))), { rtol: 1e-10, atol: 1e-12 });
  });

  test("cholesky: the tangent satisfies dA = dL Lᵀ + L dLᵀ with dL lower triangular", () => {
    const m = rand(28, [4, 4]);
    const spd = ad.add(ad.matmul(m, mT(m)), ad.eye(4, { dtype: "float64" }));
    const e = rand(29, [4, 4]);
    const de = ad.add(e, mT(e)); // a symmetric direction
    const [l, dl] = ad.jvp((x: ad.Tensor) => ad.linalg.cholesky(x), [spd], [de]) as [ad.Tensor, ad.Tensor];
    assertClose(ad.add(ad.matmul(dl, mT(l)), ad.matmul(l, mT(dl))), de, { atol: 1e-12 });
    // dL is lower triangular.
    const upper = ad.less(ad.arange(4).reshape([4, 1]), ad.arange(4).reshape([1, 4]));
    assert.ok(entries(ad.where(upper, dl, 0)).every((v) => v === 0));
  });

  test("eager backward through solve and det", () => {
    const x = ad.tensor(a.toArray() as number[][], { dtype: "float64", requiresGrad: true });
    const y = ad.add(ad.linalg.det(x), ad.sum(ad.linalg.inv(x)));
    y.backward();
    const want = ad.grad((z: ad.Tensor) => ad.add(ad.linalg.det(z), ad.sum(ad.linalg.inv(z))))(a);
    assertClose(x.grad, want, { rtol: 1e-12, atol: 1e-14 });
  });

  test("float32 inputs give float32 values and derivatives", () => {
    const a32 = ad.astype(a, "float32");
    assert.equal(ad.linalg.det(a32).dtype, "float32");
    assert.equal(ad.grad((x: ad.Tensor) => ad.linalg.det(x))(a32).dtype, "float32");
    assert.equal(ad.linalg.solve(a32, ad.ones([4])).dtype, "float32");
    assertClose(ad.linalg.inv(a32), ainv, { rtol: 1e-5, atol: 1e-6 });
  });
});

describe("singular and non-positive-definite matrices (documented: IEEE results, as JAX)", () => {
  test("det is exactly 0 and its gradient is the cofactor matrix (rank n − 1), whichever pivot vanishes", () => {
    const mats = [
      [
        [0, 1],
        [0, 1],
      ], // the first pivot is the zero one
      [
        [1, 2, 3],
        [2, 4, 6],
        [1, 1, 1],
      ], // the last pivot is the zero one
      [
        [0, 0, 1],
        [0, 2, 5],
        [0, 3, 4],
      ], // a zero column
    ];
    for (const m of mats) {
      assert.ok(ad.linalg.det(f64(m)).item() === 0);
      const g = ad.grad((x: ad.Tensor) => ad.linalg.det(x))(f64(m));
      assertClose(g, cofactors(m), { atol: 1e-14 });
      // Forward mode agrees: d det = ⟨cof(A), dA⟩.
      const e = rand(30, [m.length, m.length]);
      const [, t] = ad.jvp((x: ad.Tensor) => ad.linalg.det(x), [f64(m)], [e]);
      assertClose(t, ad.sum(ad.mul(f64(cofactors(m)), e)), { atol: 1e-14 });
    }
  });

  test("rank < n − 1: det 0 with a zero gradient", () => {
    const z = ad.zeros([3, 3], { dtype: "float64" });
    assert.ok(ad.linalg.det(z).item() === 0);
    assertClose(ad.grad((x: ad.Tensor) => ad.linalg.det(x))(z), ad.zeros([3, 3], { dtype: "float64" }));
    const r1 = f64([
      [1, 2, 3],
      [2, 4, 6],
      [3, 6, 9],
    ]);
    assert.ok(ad.linalg.det(r1).item() === 0);
    assertClose(ad.grad((x: ad.Tensor) => ad.linalg.det(x))(r1), ad.zeros([3, 3], { dtype: "float64" }));
  });

  test("solve and inv give non-finite entries instead of throwing; slogdet gives sign 0 and -Inf", () => {
    const s = f64([
      [1, 2],
      [2, 4],
    ]);
    assert.ok(!entries(ad.linalg.inv(s)).every(Number.isFinite));
    assert.ok(!entries(ad.linalg.solve(s, f64([1, 1]))).every(Number.isFinite));
    const [sign, logabs] = ad.linalg.slogdet(s);
    assert.ok(sign.item() === 0);
    assert.equal(logabs.item(), -Infinity);
    const zeroDiag = f64([
      [0, 0],
      [1, 1],
    ]);
    assert.equal(entries(ad.linalg.triangularSolve(zeroDiag, f64([1, 1]), { lower: true }))[0], Infinity);
    // Under detectAnomaly the NaN/Inf is reported where it is made.
    assert.throws(() => ad.detectAnomaly(() => ad.linalg.inv(s)), ad.AnomalyError);
  });

  test("cholesky of a matrix that is not positive definite is all NaN, only for that matrix of a batch", () => {
    const batch = ad.stack([
      f64([
        [4, 2],
        [2, 5],
      ]),
      f64([
        [1, 2],
        [2, 1],
      ]),
    ]);
    const l = ad.linalg.cholesky(batch);
    assertClose(l.at(0), [
      [2, 0],
      [1, 2],
    ]);
    assert.ok(entries(l.at(1)).every(Number.isNaN));
    assert.ok(entries(ad.linalg.cholesky(f64([[-1]]))).every(Number.isNaN));
  });
});

describe("errors", () => {
  const fns: [string, (x: ad.Tensor) => unknown][] = [
    ["solve", (x) => ad.linalg.solve(x, ad.ones([2], { dtype: "float64" }))],
    ["inv", (x) => ad.linalg.inv(x)],
    ["det", (x) => ad.linalg.det(x)],
    ["slogdet", (x) => ad.linalg.slogdet(x)],
    ["cholesky", (x) => ad.linalg.cholesky(x)],
    ["triangularSolve", (x) => ad.linalg.triangularSolve(x, ad.ones([2], { dtype: "float64" }))],
    ["luFactor", (x) => ad.linalg.luFactor(x)],
  ];
  for (const [name, f] of fns)
    test(`${name}: a non-square or rank-1 operand is a ShapeError naming the shape`, () => {
      assert.throws(
        () => f(ad.zeros([2, 3], { dtype: "float64" })),
        (e: unknown) =>
          e instanceof ad.ShapeError && e.message.startsWith(`${name}: `) && e.message.includes("[2, 3]"),
      );
      assert.throws(
        () => f(ad.zeros([4], { dtype: "float64" })),
        (e: unknown) => e instanceof ad.ShapeError && e.message.includes("[4]"),
      );
    });

  test("solve: a right-hand side of the wrong size, or batch dims that do not broadcast", () => {
    const a = ad.eye(3, { dtype: "float64" });
    assert.throws(
      () => ad.linalg.solve(a, ad.ones([4])),
      (e: unknown) => e instanceof ad.ShapeError && e.message.includes("[3, 3]") && e.message.includes("[4]"),
    );
    assert.throws(() => ad.linalg.solve(a, ad.ones([2, 2])), ad.ShapeError);
    assert.throws(
      () => ad.linalg.solve(ad.zeros([2, 3, 3]), ad.ones([3, 3, 1])),
      (e: unknown) => e instanceof ad.ShapeError && /cannot be broadcast/.test(e.message),
    );
    assert.throws(() => ad.linalg.triangularSolve(a, ad.ones([2, 4]), { leftSide: false }), ad.ShapeError);
  });

  test("integer and bool inputs are promoted to float32 (as JAX)", () => {
    const i = ad.tensor(
      [
        [2, 1],
        [1, 3],
      ],
      { dtype: "int32" },
    );
    const d = ad.linalg.det(i);
    assert.equal(d.dtype, "float32");
    assertClose(d, 5, { rtol: 1e-6 });
    assert.equal(ad.linalg.inv(i).dtype, "float32");
    assert.equal(ad.linalg.solve(i, ad.tensor([3, 4], { dtype: "int32" })).dtype, "float32");
    assert.equal(ad.linalg.cholesky(i).dtype, "float32");
    assert.equal(ad.linalg.det(ad.eye(2, { dtype: "bool" })).item(), 1);
    // Mixed float32/float64 promotes to float64.
    assert.equal(ad.linalg.solve(ad.eye(2), ad.ones([2], { dtype: "float64" })).dtype, "float64");
    // grad wrt an int32 input is a DTypeError, as everywhere.
    assert.throws(() => ad.grad((x: ad.Tensor) => ad.linalg.det(x))(i), ad.DTypeError);
  });
});

// ---- derivatives: every function, in float64, both modes, to second order ------------------------

/** Uniform entries in [-1, 1] from a seed, as float64. */
const draw = (seed: number, shape: number[]) => rand(1000 + seed, shape);
/** M + 3I: diagonally dominant for entries in [-1, 1], so well conditioned. */
const wc = (m: ad.Tensor) => ad.add(m, ad.mul(3, ad.eye(m.shape[m.ndim - 1]!, { dtype: m.dtype })));
/** M + 3I with its rows reversed: partial pivoting must swap rows. */
const piv = (m: ad.Tensor) => ad.flip(wc(m), m.ndim - 2);
/** M Mᵀ + I: symmetric positive definite. */
const spdOf = (m: ad.Tensor) => ad.add(ad.matmul(m, mT(m)), ad.eye(m.shape[m.ndim - 1]!, { dtype: m.dtype }));

interface Row {
  name: string;
  fn: (...xs: ad.Tensor[]) => ad.Tensor;
  shapes: number[][];
  /** Inputs to use instead of random draws (for norms that need distinct magnitudes). */
  inputs?: ad.Tensor[];
}

const DERIVATIVE_ROWS: Row[] = [
  { name: "solve, vector b", fn: (a, b) => ad.linalg.solve(wc(a!), b!), shapes: [[3, 3], [3]] },
  {
    name: "solve, batched matrices, pivoting",
    fn: (a, b) => ad.linalg.solve(piv(a!), b!),
    shapes: [
      [2, 3, 3],
      [2, 3, 2],
    ],
  },
  {
    name: "solve, broadcast batch",
    fn: (a, b) => ad.linalg.solve(wc(a!), b!),
    shapes: [
      [3, 3],
      [2, 3, 1],
    ],
  },
  { name: "inv", fn: (a) => ad.linalg.inv(wc(a!)), shapes: [[3, 3]] },
  { name: "inv, batched, pivoting", fn: (a) => ad.linalg.inv(piv(a!)), shapes: [[2, 3, 3]] },
  { name: "det", fn: (a) => ad.linalg.det(wc(a!)), shapes: [[3, 3]] },
  { name: "det, batched, pivoting", fn: (a) => ad.linalg.det(piv(a!)), shapes: [[2, 3, 3]] },
  { name: "slogdet", fn: (a) => ad.linalg.slogdet(wc(a!))[1], shapes: [[3, 3]] },
  {
    name: "slogdet, batched, pivoting (sign · logabsdet)",
    fn: (a) => {
      const [s, l] = ad.linalg.slogdet(piv(a!));
      return ad.mul(s, l);
    },
    shapes: [[2, 3, 3]],
  },
  { name: "cholesky", fn: (a) => ad.linalg.cholesky(spdOf(a!)), shapes: [[3, 3]] },
  {
    name: "cholesky, batched, upper",
    fn: (a) => ad.linalg.cholesky(spdOf(a!), { upper: true }),
    shapes: [[2, 3, 3]],
  },
  {
    name: "cholesky, symmetrizeInput: false",
    fn: (a) => ad.linalg.cholesky(wc(ad.mul(a!, 0.5)), { symmetrizeInput: false }),
    shapes: [[3, 3]],
  },
  {
    name: "triangularSolve, lower",
    fn: (a, b) => ad.linalg.triangularSolve(wc(a!), b!, { lower: true }),
    shapes: [
      [3, 3],
      [3, 2],
    ],
  },
  {
    name: "triangularSolve, batched, upper, transposeA",
    fn: (a, b) => ad.linalg.triangularSolve(wc(a!), b!, { transposeA: true }),
    shapes: [
      [2, 3, 3],
      [2, 3],
    ],
  },
  {
    name: "triangularSolve, unitDiagonal, right side, broadcast batch",
    fn: (a, b) => ad.linalg.triangularSolve(a!, b!, { lower: true, unitDiagonal: true, leftSide: false }),
    shapes: [
      [3, 3],
      [2, 2, 3],
    ],
  },
  { name: "luFactor", fn: (a) => ad.linalg.luFactor(piv(a!)).lu, shapes: [[3, 3]] },
  { name: "luFactor, batched", fn: (a) => ad.linalg.luFactor(wc(a!)).lu, shapes: [[2, 3, 3]] },
  { name: "norm, 2", fn: (x) => ad.linalg.norm(x!), shapes: [[4]] },
  { name: "norm, batched rows", fn: (x) => ad.linalg.norm(x!, { axis: -1 }), shapes: [[2, 3]] },
  {
    name: "norm, ord 3, keepdims",
    fn: (x) => ad.linalg.norm(x!, { ord: 3, axis: 0, keepdims: true }),
    shapes: [[3, 2]],
  },
  { name: "norm, ord -2", fn: (x) => ad.linalg.norm(x!, { ord: -2 }), shapes: [[3]] },
  { name: "norm, ord 0.5", fn: (x) => ad.linalg.norm(ad.add(ad.abs(x!), 0.2), { ord: 0.5 }), shapes: [[3]] },
  {
    name: "norm, ord 1 and ±Infinity (distinct magnitudes)",
    fn: (x) =>
      ad.stack([
        ad.linalg.norm(x!, { ord: 1 }),
        ad.linalg.norm(x!, { ord: Infinity }),
        ad.linalg.norm(x!, { ord: -Infinity }),
      ]),
    shapes: [[4]],
    inputs: [f64([0.3, -1.7, 0.9, -0.5])],
  },
  {
    name: "norm, Frobenius, batched over a leading axis",
    fn: (x) => ad.linalg.norm(x!, { axis: [-2, -1] }),
    shapes: [[2, 2, 3]],
  },
  {
    name: "norm, induced 1, -1, Infinity, -Infinity (distinct sums)",
    fn: (x) => ad.stack([1, -1, Infinity, -Infinity].map((ord) => ad.linalg.norm(x!, { ord }))),
    shapes: [[3, 3]],
    inputs: [
      f64([
        [0.3, -1.2, 0.5],
        [2.1, 0.4, -0.2],
        [-0.7, 0.9, 1.6],
      ]),
    ],
  },
  {
    name: "norm, spectral 2 and -2 and nuclear (wide, tall, batched over axes (0, 2))",
    fn: (x) =>
      ad.concat([
        ad
          .stack([2, -2, "nuc" as const].map((ord) => ad.linalg.norm(x!, { ord, axis: [1, 2] })))
          .reshape([-1]),
        ad.stack(
          [2, -2, "nuc" as const].map((ord) =>
            ad.linalg.norm(ad.slice(x!, [0, 0, 0], [1, 3, 2]).reshape([3, 2]), { ord }),
          ),
        ),
        ad.linalg.norm(x!, { ord: 2, axis: [0, 2], keepdims: true }).reshape([-1]),
      ]),
    shapes: [[2, 3, 2]],
  },
  {
    name: "eigh, eigenvalues and eigenvectors (distinct eigenvalues), batched",
    fn: (a) => {
      const [w, v] = ad.linalg.eigh(a!);
      return ad.concat([w.reshape([-1]), v.reshape([-1])]);
    },
    shapes: [[2, 3, 3]],
  },
  {
    name: "norm, induced ∞ over axes (2, 0) of a batch",
    fn: (x) => ad.linalg.norm(x!, { ord: Infinity, axis: [2, 0] }),
    shapes: [[3, 2, 2]],
    inputs: [ad.reshape(f64([0.3, -1.2, 0.5, 2.1, 0.4, -0.2, -0.7, 0.9, 1.6, 1.1, -2.5, 0.05]), [3, 2, 2])],
  },
];

describe("derivatives: gradcheck and gradgradcheck in float64 (forward and reverse), batched and unbatched", () => {
  for (const [i, row] of DERIVATIVE_ROWS.entries())
    test(row.name, () => {
      const xs = row.inputs ?? row.shapes.map((s, k) => draw(17 * i + k, s));
      const r1 = ad.gradcheck(row.fn, xs, { rtol: 1e-6, atol: 1e-8 });
      assert.ok(r1.ok, `gradcheck: ${r1.message}`);
      const r2 = ad.gradgradcheck(row.fn, xs, { rtol: 1e-5, atol: 1e-7 });
      assert.ok(r2.ok, `gradgradcheck: ${r2.message}`);
    });

  test("every public function has a row", () => {
    const covered = new Set(DERIVATIVE_ROWS.map((r) => r.name.split(",")[0]));
    for (const f of [
      "solve",
      "inv",
      "det",
      "slogdet",
      "cholesky",
      "triangularSolve",
      "luFactor",
      "norm",
      "eigh",
    ])
      assert.ok(covered.has(f), f);
    assert.ok(DERIVATIVE_ROWS.some((r) => r.shapes[0]!.length > 2 && r.name.startsWith("cholesky")));
  });
});

// ---- norm: every ord of its documentation, against direct computations ---------------------------

describe("norm: the ord options as documented (NumPy semantics)", () => {
  const v = [0.5, -3, 0, 2, -1.5];
  const vt = f64(v);
  const abs = v.map(Math.abs);
  const pnorm = (p: number) => abs.reduce((s, a) => s + a ** p, 0) ** (1 / p);

  test("vector ords: 2 (default), 1, ±Infinity, 0, any other p, negative p", () => {
    assertClose(ad.linalg.norm(vt), Math.hypot(...v));
    assertClose(ad.linalg.norm(vt, { ord: 2 }), Math.hypot(...v));
    assertClose(ad.linalg.norm(vt, { ord: 1 }), 7);
    assertClose(ad.linalg.norm(vt, { ord: Infinity }), 3);
    assertClose(ad.linalg.norm(vt, { ord: -Infinity }), 0);
    assertClose(ad.linalg.norm(vt, { ord: 0 }), 4);
    for (const p of [0.5, 1.5, 3, 7]) assertClose(ad.linalg.norm(vt, { ord: p }), pnorm(p), { rtol: 1e-13 });
    // negative p: (Σ|xᵢ|ᵖ)^(1/p); an entry of 0 gives 0 (as NumPy)
    assertClose(ad.linalg.norm(vt, { ord: -1 }), 0);
    const nz = [0.5, -3, 2];
    assertClose(ad.linalg.norm(f64(nz), { ord: -1 }), 1 / nz.reduce((s, a) => s + 1 / Math.abs(a), 0), {
      rtol: 1e-13,
    });
    assertClose(ad.linalg.norm(f64(nz), { ord: -2 }), nz.reduce((s, a) => s + a ** -2, 0) ** -0.5, {
      rtol: 1e-13,
    });
    // ord 0 has zero derivative
    assertClose(ad.grad((x: ad.Tensor) => ad.linalg.norm(x, { ord: 0 }))(vt), [0, 0, 0, 0, 0]);
  });

  const m = [
    [1, -2, 0.5],
    [3, 4, -1],
  ];
  const mt = f64(m);
  const colSums = [0, 1, 2].map((j) => m.reduce((s, r) => s + Math.abs(r[j]!), 0));
  const rowSums = m.map((r) => r.reduce((s, a) => s + Math.abs(a), 0));

  test("matrix ords: Frobenius (default), 1 / -1 (column sums), ±Infinity (row sums)", () => {
    const fro = Math.sqrt(m.flat().reduce((s, a) => s + a * a, 0));
    assertClose(ad.linalg.norm(mt), fro);
    assertClose(ad.linalg.norm(mt, { ord: "fro" }), fro);
    assertClose(ad.linalg.norm(mt, { ord: 1 }), Math.max(...colSums));
    assertClose(ad.linalg.norm(mt, { ord: -1 }), Math.min(...colSums));
    assertClose(ad.linalg.norm(mt, { ord: Infinity }), Math.max(...rowSums));
    assertClose(ad.linalg.norm(mt, { ord: -Infinity }), Math.min(...rowSums));
    // axes in the other order: the transpose's norm
    assertClose(ad.linalg.norm(mt, { ord: 1, axis: [1, 0] }), Math.max(...rowSums));
  });

  test("axis: one axis is a vector norm per row/column, two axes a matrix norm per matrix; keepdims", () => {
    assertClose(
      ad.linalg.norm(mt, { axis: 1 }),
      m.map((r) => Math.hypot(...r)),
    );
    assertClose(ad.linalg.norm(mt, { axis: 0, ord: 1 }), colSums);
    assertClose(ad.linalg.norm(mt, { axis: -1, ord: Infinity, keepdims: true }), [[2], [4]]);
    const stack = ad.stack([mt, ad.mul(mt, 2)]);
    assertClose(ad.linalg.norm(stack, { axis: [1, 2], ord: 1 }), [
      Math.max(...colSums),
      2 * Math.max(...colSums),
    ]);
    assert.deepEqual(ad.linalg.norm(stack, { axis: [1, 2], keepdims: true }).shape, [2, 1, 1]);
    assert.deepEqual(ad.linalg.norm(stack, { axis: [-1, 0] }).shape, [2]);
    // no axis, rank 3: the 2-norm of everything (flattened); keepdims keeps three size-1 axes
    assertClose(ad.linalg.norm(stack), Math.sqrt(5) * Math.hypot(...m.flat()));
    assert.deepEqual(ad.linalg.norm(stack, { keepdims: true }).shape, [1, 1, 1]);
  });

  test("the unsupported and invalid combinations are ShapeErrors naming the problem", () => {
    const msg = (re: RegExp) => (e: unknown) => e instanceof ad.ShapeError && re.test((e as Error).message);
    for (const ord of [3, 0.5])
      assert.throws(() => ad.linalg.norm(mt, { ord }), msg(/norm: matrix ord .* not supported/));
    assert.throws(() => ad.linalg.norm(vt, { ord: "nuc" }), msg(/matrix norm/));
    assert.throws(() => ad.linalg.norm(vt, { ord: "fro" }), msg(/matrix norm/));
    assert.throws(() => ad.linalg.norm(mt, { ord: "fro", axis: 1 }), msg(/two axes/));
    assert.throws(() => ad.linalg.norm(ad.stack([mt, mt]), { ord: 1 }), msg(/explicit axis/));
    assert.throws(() => ad.linalg.norm(mt, { axis: [0, 0] }), msg(/repeated/));
    assert.throws(() => ad.linalg.norm(mt, { axis: 2 }), msg(/out of range/));
    assert.throws(() => ad.linalg.norm(vt, { ord: Number.NaN }), msg(/NaN/));
  });
});

describe("eigh and the spectral norms at degenerate matrices", () => {
  const f64 = (x: number[][]) => ad.tensor(x, { dtype: "float64" });
  test("eigenvalue gradients stay finite and exact with repeated eigenvalues", () => {
    // d(sum w)/dA = d tr(A)/dA = I; at diag(3, 2, 2), d(max w)/dA = e₁e₁ᵀ (the top one is simple).
    const g = ad.grad((a: ad.Tensor) => ad.sum(ad.linalg.eigh(a)[0]))(
      f64([
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ]),
    );
    assertClose(g, [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    const h = ad.grad((a: ad.Tensor) => ad.max(ad.linalg.eigh(a)[0]))(
      f64([
        [3, 0, 0],
        [0, 2, 0],
        [0, 0, 2],
      ]),
    );
    assertClose(h, [
      [1, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
    ]);
  });
  test("the spectral and nuclear norms of a zero matrix have gradient 0; of the identity, the subgradient", () => {
    for (const ord of [2, -2, "nuc"] as const) {
      const g = ad.grad((m: ad.Tensor) => ad.linalg.norm(m, { ord }))(
        f64([
          [0, 0],
          [0, 0],
        ]),
      );
      assertClose(g, [
        [0, 0],
        [0, 0],
      ]);
    }
    // ‖A‖_* = tr(A) near I (A symmetric positive definite): gradient I.
    const gi = ad.grad((m: ad.Tensor) => ad.linalg.norm(m, { ord: "nuc" }))(
      f64([
        [1, 0],
        [0, 1],
      ]),
    );
    assertClose(gi, [
      [1, 0],
      [0, 1],
    ]);
  });
});

describe("matmul with operands read transposed (the reverse pass's products)", () => {
  const f64r = (seed: number, shape: number[]) =>
    ad.random.normal(ad.random.key(seed), shape, { dtype: "float64" });
  const swap = (x: ad.Tensor) => ad.transpose(x, [0, 2, 1]);
  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const)
    test(`transA=${ta} transB=${tb}: value, gradcheck and gradgradcheck, jvp, vmap and jet`, () => {
      const a = f64r(1, ta ? [2, 4, 3] : [2, 3, 4]);
      const b = f64r(2, tb ? [2, 5, 4] : [2, 4, 5]);
      const f = (x: ad.Tensor, y: ad.Tensor) => matmulT(x, y, ta, tb);
      const plain = (x: ad.Tensor, y: ad.Tensor) => ad.matmul(ta ? swap(x) : x, tb ? swap(y) : y);
      assertClose(f(a, b), plain(a, b), { rtol: 1e-12, atol: 1e-12 });
      const r1 = ad.gradcheck(f, [a, b], { rtol: 1e-6, atol: 1e-8 });
      assert.ok(r1.ok, `gradcheck: ${r1.message}`);
      const r2 = ad.gradgradcheck(f, [a, b], { rtol: 1e-5, atol: 1e-7 });
      assert.ok(r2.ok, `gradgradcheck: ${r2.message}`);
      const ta_ = f64r(3, a.shape);
      const tb_ = f64r(4, b.shape);
      const [, t1] = ad.jvp(f, [a, b], [ta_, tb_]);
      const [, t2] = ad.jvp(plain, [a, b], [ta_, tb_]);
      assertClose(t1 as ad.Tensor, t2 as ad.Tensor, { rtol: 1e-12, atol: 1e-12 });
      // vmap over either operand, or both, along a leading axis.
      const bs = f64r(5, [3, ...b.shape]);
      const as = f64r(6, [3, ...a.shape]);
      assertClose(ad.vmap((y: ad.Tensor) => f(a, y))(bs), ad.vmap((y: ad.Tensor) => plain(a, y))(bs), {
        rtol: 1e-12,
        atol: 1e-12,
      });
      assertClose(
        ad.vmap((x: ad.Tensor) => f(x, b), { inAxes: 0 })(as),
        ad.vmap((x: ad.Tensor) => plain(x, b))(as),
        { rtol: 1e-12, atol: 1e-12 },
      );
      assertClose(ad.vmap(f)(as, bs), ad.vmap(plain)(as, bs), { rtol: 1e-12, atol: 1e-12 });
      // Second-order Taylor coefficients through the bilinear rule.
      const dir = (x: ad.Tensor, y: ad.Tensor) => ad.sum(f(x, y));
      const dirPlain = (x: ad.Tensor, y: ad.Tensor) => ad.sum(plain(x, y));
      const [, s1] = ad.jet((x: ad.Tensor) => dir(x, b), [a], [[ta_, ta_]]);
      const [, s2] = ad.jet((x: ad.Tensor) => dirPlain(x, b), [a], [[ta_, ta_]]);
      for (let k = 0; k < 2; k++) assertClose(s1[k]!, s2[k]!, { rtol: 1e-12, atol: 1e-12 });
    });
});
