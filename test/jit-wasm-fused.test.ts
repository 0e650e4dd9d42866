/**
 * jit's fused elementwise programs as compiled wasm loops (the wasm backend's `fused-array.ts`):
 * the same bits as the unfused operations for every covered operation, over special values, in
 * the SIMD loop, its scalar ends and the scalar-only forms (broadcasts, mixed float types).
 * Under the reference backend the same checks cover the generated JS kernels.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { sameBits } from "./helpers.js";

const onWasm = ad.getBackendName() === "wasm";

/** Values with every special case, repeated with small random ones to `n` elements. */
function values(n: number, seed: number): number[] {
  const special = [
    0,
    -0,
    1,
    -1,
    0.5,
    -0.5,
    1.5,
    2.5,
    -2.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    1e-40,
    -1e-40,
    3e38,
    -3e38,
    1e300,
    1e-310,
  ];
  let s = seed;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out.push(i % 7 === 0 ? special[(s >>> 8) % special.length]! : ((s >>> 8) / 2 ** 24 - 0.5) * 8);
  }
  return out;
}

/** Rosenbrock's function over a vector (slices of its argument feed a sum). */
function rosen(v: ad.Tensor): ad.Tensor {
  const m = v.shape[0]!;
  const head = ad.slice(v, [0], [m - 1]);
  const tail = ad.slice(v, [1], [m - 1]);
  return ad.sum(ad.add(ad.mul(100, ad.square(ad.sub(tail, ad.square(head)))), ad.square(ad.sub(1, head))));
}

/** Runs `f` plain and jitted on `args`; the jitted one must use a wasm loop on the wasm backend. */
function check(name: string, f: (...xs: ad.Tensor[]) => ad.Tensor, args: ad.Tensor[], wasmLoop = true): void {
  const before = ad.wasmStats().fusedKernels;
  const j = ad.jit(f);
  sameBits(j(...args), f(...args), name);
  assert.ok(
    j.lower(...args).eqns.some((e) => ["fused_program", "sum_prologue"].includes(e.prim.name)),
    `${name}: not fused`,
  );
  if (onWasm && wasmLoop) assert.ok(ad.wasmStats().fusedKernels > before, `${name}: no wasm loop ran`);
}

describe("jit: fused programs as wasm loops, bit-identical to the unfused operations", () => {
  for (const dtype of ["float32", "float64"] as const)
    for (const n of [2048, 4099]) {
      const x = ad.tensor(values(n, 1), { dtype });
      const y = ad.tensor(values(n, 2), { dtype });
      test(`${dtype}, ${n} elements: arithmetic, rounding, extrema, comparisons, logic, casts`, () => {
        check("arith", (a, b) => ad.div(ad.sub(ad.mul(a, b), ad.add(a, 1.25)), ad.add(b, 3)), [x, y]);
        check("unary", (a) => ad.add(ad.add(ad.neg(ad.abs(a)), ad.sqrt(ad.abs(a))), ad.floor(a)), [x]);
        check("round", (a) => ad.sub(ad.round(ad.mul(a, 2)), ad.ceil(a)), [x]);
        check("extrema", (a, b) => ad.mul(ad.maximum(a, b), ad.minimum(b, a)), [x, y]);
        check(
          "compare and select",
          (a, b) =>
            ad.where(
              ad.logicalOr(
                ad.logicalAnd(ad.greater(a, b), ad.lessEqual(a, 2)),
                ad.logicalNot(ad.equal(a, a)),
              ),
              ad.mul(a, 3),
              ad.sub(b, 1),
            ),
          [x, y],
        );
        check(
          "bool casts",
          (a, b) =>
            ad.add(ad.astype(ad.notEqual(a, b), dtype), ad.astype(ad.astype(ad.mul(a, 1.5), "bool"), dtype)),
          [x, y],
        );
        check("scalar operand", (a, s) => ad.mul(ad.add(a, s), s), [x, ad.scalar(0.75, { dtype })]);
        const mask = ad.greater(y, 0.3);
        check("bool input", (a, mk) => ad.mul(ad.where(mk, a, ad.neg(a)), 2), [x, mask]);
        check("bool result", (a, b) => ad.logicalAnd(ad.less(ad.mul(a, 2), b), ad.notEqual(a, 1)), [x, y]);
        check("bool scalar", (a, mk) => ad.where(mk, ad.add(a, 1), a), [x, ad.scalar(1, { dtype: "bool" })]);
        check(
          "relu gradient",
          ad.grad((a: ad.Tensor) => ad.sum(ad.mul(ad.relu(ad.mul(a, 3)), a))),
          [x],
        );
      });
      test(`${dtype}, ${n} elements: slices and pads read in place (Rosenbrock's gradient)`, () => {
        const v = ad.tensor(
          values(n, 3).map((t) => (Number.isFinite(t) ? t % 3 : 0.5)),
          { dtype },
        );
        check("rosenbrock gradient", ad.grad(rosen), [v]);
        check("pad both ends", (a) => ad.mul(ad.pad(ad.neg(a), [[3, 5]]), 2), [x]);
      });
    }

  test("broadcasts along rows and columns, and float32/float64 mixes (scalar loop)", () => {
    const m = ad.tensor(values(64 * 40, 4), { shape: [64, 40] });
    const row = ad.tensor(values(40, 5));
    const col = ad.tensor(values(64, 6), { shape: [64, 1] });
    check("broadcast", (a, r, c) => ad.add(ad.mul(a, r), ad.sub(c, a)), [m, row, col]);
    const d = ad.tensor(values(3000, 7), { dtype: "float64" });
    check("mixed float types", (a) => ad.add(ad.astype(ad.mul(a, 3), "float32"), 1), [d]);
  });

  for (const dtype of ["float32", "float64"] as const)
    test(`${dtype}: broadcast rows and columns run row by row in SIMD (bias + relu, masks, 3-d)`, () => {
      for (const [m, n] of [
        [64, 40],
        [70, 37],
        [33, 130],
        [16, 512],
      ] as const) {
        const a = ad.tensor(values(m * n, 11), { shape: [m, n], dtype });
        const row = ad.tensor(values(n, 12), { dtype });
        const col = ad.tensor(values(m, 13), { shape: [m, 1], dtype });
        const tag = `${m}x${n}`;
        check(`bias + relu ${tag}`, (x, b) => ad.relu(ad.add(x, b)), [a, row]);
        check(`row and column ${tag}`, (x, r, c) => ad.add(ad.mul(x, r), ad.sub(c, x)), [a, row, col]);
        check(`scalar too ${tag}`, (x, r, s) => ad.div(ad.add(x, r), s), [a, row, ad.scalar(3, { dtype })]);
        const mask = ad.greater(ad.tensor(values(n, 14), { dtype }), 0);
        check(`bool row ${tag}`, (x, mk) => ad.mul(ad.where(mk, x, ad.neg(x)), 2), [a, mask]);
        check(`bool column ${tag}`, (x, mk) => ad.where(mk, ad.add(x, 1), ad.mul(x, x)), [
          a,
          ad.greater(ad.tensor(values(m, 15), { shape: [m, 1], dtype }), 0),
        ]);
        check(`bool result ${tag}`, (x, r) => ad.logicalAnd(ad.greater(ad.add(x, r), 0), ad.less(x, r)), [
          a,
          row,
        ]);
      }
      const t = ad.tensor(values(4 * 24 * 40, 16), { shape: [4, 24, 40], dtype });
      const plane = ad.tensor(values(24 * 40, 17), { shape: [24, 40], dtype });
      const perRow = ad.tensor(values(4 * 24, 18), { shape: [4, 24, 1], dtype });
      check("3-d: plane and per-row", (x, p, r) => ad.mul(ad.add(x, p), ad.sub(r, 0.5)), [t, plane, perRow]);
    });

  test("programs with operations a wasm loop does not cover keep the JS kernel", () => {
    const x = ad.tensor(values(3000, 8));
    check("transcendental", (a) => ad.mul(ad.sin(a), ad.cos(ad.neg(a))), [x], false);
    const i = ad.arange(0, 3000);
    check("int32", (a) => ad.add(ad.mul(a, 3), 7), [i], false);
  });
});

describe("jit: a sum of a fused program's result runs in one pass (sum_prologue)", () => {
  const lowered = (f: (...xs: ad.Tensor[]) => ad.Tensor, args: ad.Tensor[]) =>
    ad
      .jit(f)
      .lower(...args)
      .eqns.map((e) => e.prim.name);
  for (const dtype of ["float32", "float64"] as const)
    test(`${dtype}: whole, row and column sums over special values, bit-identical to the unfused pair`, () => {
      for (const shape of [[4099], [70, 37], [37, 70], [16, 9, 33], [3000]]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = ad.tensor(values(n, 21), { shape, dtype });
        const y = ad.tensor(values(n, 22), { shape, dtype });
        const r = shape.length;
        const axesList: (number | number[] | undefined)[] = [undefined, r - 1, 0];
        if (r === 3) axesList.push([1, 2], [0, 1], 1);
        for (const axis of axesList) {
          const tag = `${shape.join("x")} axis ${JSON.stringify(axis)}`;
          const mse = (a: ad.Tensor, b: ad.Tensor) => ad.sum(ad.square(ad.sub(a, b)), { axis });
          assert.ok(lowered(mse, [x, y]).includes("sum_prologue"), `${tag}: not fused`);
          check(`squared error ${tag}`, mse, [x, y]);
          check(`sum of squares ${tag}`, (a) => ad.sum(ad.mul(a, a), { axis }), [x]);
          check(`relu ${tag}`, (a) => ad.sum(ad.relu(ad.add(a, 0.5)), { axis }), [x]);
          check(
            `masked ${tag}`,
            (a, b) => ad.sum(ad.where(ad.greater(a, b), ad.sub(a, b), ad.mul(b, 0.25)), { axis }),
            [x, y],
          );
          check(`scalar operand ${tag}`, (a, s) => ad.sum(ad.div(a, s), { axis }), [
            x,
            ad.scalar(3, { dtype }),
          ]);
        }
      }
    });

  for (const dtype of ["float32", "float64"] as const)
    test(`${dtype}: slices are read at their offset inside the sum (Rosenbrock's value)`, () => {
      for (const n of [4099, 20000]) {
        const v = ad.tensor(
          values(n, 25).map((t) => (Number.isFinite(t) ? t % 3 : 0.5)),
          { dtype },
        );
        assert.ok(lowered(rosen, [v]).includes("sum_prologue"));
        check(`rosenbrock ${n}`, rosen, [v]);
        const mid = (a: ad.Tensor) => ad.sum(ad.mul(ad.slice(a, [7], [n - 20]), ad.slice(a, [3], [n - 20])));
        check(`two offsets ${n}`, mid, [v]);
      }
    });

  for (const dtype of ["float32", "float64"] as const)
    test(`${dtype}: per-row and per-column operands over trailing sums, other results kept (LayerNorm)`, () => {
      for (const shape of [
        [64, 256],
        [33, 70],
        [5, 9, 37],
        [128, 3],
      ]) {
        const n = shape.reduce((a, b) => a * b, 1);
        const r = shape.length;
        const x = ad.tensor(values(n, 31), { shape, dtype });
        const w = ad.tensor(values(shape[r - 1]!, 32), { dtype });
        const tag = shape.join("x");
        const big = n >= 2048; // smaller arrays run the JS kernels
        // A LayerNorm: the variance's squares are summed in place while x − mean is kept.
        const ln = (a: ad.Tensor) => {
          const mu = ad.mean(a, { axis: -1, keepdims: true });
          const v = ad.mean(ad.square(ad.sub(a, mu)), { axis: -1, keepdims: true });
          return ad.div(ad.sub(a, mu), ad.sqrt(ad.add(v, 1e-5)));
        };
        if (big) assert.ok(lowered(ln, [x]).includes("sum_prologue"), `${tag}: not fused`);
        check(`layer norm ${tag}`, ln, [x], big);
        check(`weighted row sums ${tag}`, (a, b) => ad.sum(ad.mul(a, b), { axis: -1 }), [x, w], big);
        check(
          `bias then squares ${tag}`,
          (a, b) => ad.sum(ad.square(ad.sub(a, b)), { axis: -1 }),
          [x, w],
          big,
        );
        // A broadcast operand under a sum over a leading axis runs the program, then the sum.
        check(
          `column sums with a bias ${tag}`,
          (a, b) => ad.sum(ad.mul(ad.sub(a, b), 3), { axis: 0 }),
          [x, w],
          big,
        );
        if (r === 3) {
          const perRow = ad.tensor(values(shape[0]!, 33), { shape: [shape[0]!, 1, 1], dtype });
          check(
            `two trailing axes, a per-block scale ${tag}`,
            (a, s) => ad.sum(ad.mul(ad.sub(a, s), a), { axis: [1, 2] }),
            [x, perRow],
            big,
          );
        }
      }
    });

  test("a result read elsewhere, a broadcast operand or an uncovered operation keeps the two steps", () => {
    const x = ad.tensor(values(4096, 23), { shape: [64, 64] });
    const b = ad.tensor(values(64, 24));
    const both = (a: ad.Tensor) => {
      const s = ad.add(ad.mul(a, 3), 1);
      return ad.add(ad.sum(s), ad.sum(ad.sum(s, { axis: 0 })));
    };
    assert.ok(!lowered(both, [x]).includes("sum_prologue"));
    check("read twice", both, [x]);
    const viaView = (a: ad.Tensor, c: ad.Tensor) => ad.sum(ad.mul(ad.sub(a, c), 2));
    check("broadcast operand", viaView, [x, b]);
    const transcendental = (a: ad.Tensor) => ad.sum(ad.mul(ad.sin(a), 2));
    assert.ok(lowered(transcendental, [x]).includes("sum_prologue"));
    check("transcendental (the JS kernel, then the sum)", transcendental, [x], false);
  });
});
