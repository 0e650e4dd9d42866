/**
 * @file Derivatives of every public op, from the table in `op-specs.ts`: forward and reverse mode
 * against central differences (`ad.gradcheck`) and second derivatives in every mode combination
 * (`ad.gradgradcheck`); property tests over random shapes and broadcasting pairs (fast-check);
 * exact zero tangents and cotangents for the ops whose derivative is zero; the conventions at
 * kinks and ties; the dtype of derivatives through `astype`.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import fc from "fast-check";
import {
  hashString,
  mulberry32,
  type OpSpec,
  opSpecs,
  REQUIRED_OPS,
  type Shape,
  sampleInputs,
  shapesOf,
  zeroDerivativeSpecs,
} from "./op-specs.js";

const fmtShapes = (shapes: readonly Shape[]) => shapes.map((s) => `[${s.join(",")}]`).join(" & ");

function checkRow(spec: OpSpec, shapes: readonly Shape[], seed: number): void {
  const inputs = sampleInputs(spec, shapes, mulberry32(seed));
  const opts: ad.GradcheckOptions = {};
  if (spec.rtol !== undefined) opts.rtol = spec.rtol;
  if (spec.atol !== undefined) opts.atol = spec.atol;
  if (spec.eps !== undefined) opts.eps = spec.eps;
  const what = `${spec.name}${spec.label ? ` (${spec.label})` : ""} at shapes ${fmtShapes(shapes)}, seed ${seed}`;
  const r1 = ad.gradcheck(spec.fn, inputs, opts);
  assert.ok(r1.ok, `gradcheck failed for ${what}: ${r1.message}`);
  if ((spec.order ?? 2) === 2) {
    const r2 = ad.gradgradcheck(spec.fn, inputs, opts);
    assert.ok(r2.ok, `gradgradcheck failed for ${what}: ${r2.message}`);
  }
}

/** Every entry of a tensor (bool and int included) as numbers. */
const entries = (t: ad.Tensor): number[] => Array.from(t.data(), Number);

function assertExactlyZero(t: ad.Tensor, shape: Shape, what: string): void {
  assert.deepEqual(t.shape, [...shape], `${what}: shape`);
  const bad = entries(t).filter((v) => v !== 0);
  assert.equal(bad.length, 0, `${what}: expected exact zeros, got ${t.toString()}`);
}

describe("the table", () => {
  test("covers every required op", () => {
    const covered = new Set(opSpecs.map((s) => s.name));
    const missing = REQUIRED_OPS.filter((n) => !covered.has(n));
    assert.deepEqual(missing, [], `ops without a row: ${missing.join(", ")}`);
  });
});

describe("gradcheck / gradgradcheck over the op table", () => {
  for (const spec of opSpecs) {
    const base = `${spec.name}${spec.label ? ` (${spec.label})` : ""}`;
    const seed = hashString(base + JSON.stringify(typeof spec.shapes === "function" ? "" : spec.shapes));
    const shapes = shapesOf(spec, mulberry32(seed ^ 0x5bd1e995));
    test(`${base} ${fmtShapes(shapes)}${(spec.order ?? 2) === 2 ? " (order 2)" : ""}`, () =>
      checkRow(spec, shapes, seed));
  }
});

describe("float32 inputs: derivatives keep the dtype and shape of what they belong to", () => {
  for (const spec of opSpecs) {
    const base = `${spec.name}${spec.label ? ` (${spec.label})` : ""}`;
    test(base, () => {
      const shapes = shapesOf(spec, mulberry32(1));
      const xs = sampleInputs(spec, shapes, mulberry32(2)).map((t) => ad.astype(t, "float32"));
      const [out, back] = ad.vjp(spec.fn, ...xs);
      const o = out as ad.Tensor;
      if (spec.name !== "astype") assert.equal(o.dtype, "float32", "output dtype");
      const cts = back(ad.onesLike(o)) as ad.Tensor[];
      cts.forEach((c, i) => {
        assert.equal(c.dtype, "float32", `cotangent ${i} dtype`);
        assert.deepEqual(c.shape, xs[i]!.shape, `cotangent ${i} shape`);
        assert.ok(entries(c).every(Number.isFinite), `cotangent ${i} finite: ${c.toString()}`);
      });
      const [, tan] = ad.jvp(
        spec.fn,
        xs,
        xs.map((x) => ad.onesLike(x)),
      );
      const t = tan as ad.Tensor;
      assert.equal(t.dtype, o.dtype, "tangent dtype");
      assert.deepEqual(t.shape, o.shape, "tangent shape");
      assert.ok(entries(t).every(Number.isFinite), `tangent finite: ${t.toString()}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Property tests: random shapes (0-d and size-1 dims included) and broadcasting pairs
// ---------------------------------------------------------------------------------------------

const dim = fc.integer({ min: 1, max: 3 });
const shapeArb = fc.array(dim, { minLength: 0, maxLength: 3 });

/** Two shapes that broadcast: a full shape, one side a suffix of it, 1s sprinkled on both. */
const broadcastPairArb = shapeArb.chain((full) =>
  fc
    .record({
      dropLead: fc.integer({ min: 0, max: full.length }),
      onesA: fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }),
      onesB: fc.array(fc.boolean(), { minLength: full.length, maxLength: full.length }),
      swap: fc.boolean(),
    })
    .map(({ dropLead, onesA, onesB, swap }) => {
      const a = full.map((d, i) => (onesA[i] ? 1 : d));
      const b = full.slice(dropLead).map((d, i) => (onesB[i + dropLead] ? 1 : d));
      return (swap ? [b, a] : [a, b]) as [number[], number[]];
    }),
);

const binarySpecs: Record<string, Omit<OpSpec, "shapes">> = {
  add: { name: "add", fn: (x, y) => ad.add(x!, y!) },
  sub: { name: "sub", fn: (x, y) => ad.sub(x!, y!) },
  mul: { name: "mul", fn: (x, y) => ad.mul(x!, y!) },
  div: {
    name: "div",
    fn: (x, y) => ad.div(x!, y!),
    domain: [
      [-2, 2],
      [0.5, 2],
    ],
  },
  pow: {
    name: "pow",
    fn: (x, y) => ad.pow(x!, y!),
    domain: [
      [0.5, 2],
      [-1.5, 2],
    ],
  },
  maximum: { name: "maximum", fn: (x, y) => ad.maximum(x!, y!), sample: "distinct" },
  minimum: { name: "minimum", fn: (x, y) => ad.minimum(x!, y!), sample: "distinct" },
  atan2: { name: "atan2", fn: (x, y) => ad.atan2(x!, y!), sample: "nonzero" },
};

type ReduceName = "sum" | "mean" | "prod" | "max" | "min" | "logsumexp" | "var";
const reductions: Record<ReduceName, Omit<OpSpec, "shapes" | "fn"> & { f: typeof ad.sum }> = {
  sum: { name: "sum", f: ad.sum },
  mean: { name: "mean", f: ad.mean },
  prod: { name: "prod", f: ad.prod, domain: [0.5, 1.5] },
  max: { name: "max", f: ad.max, sample: "distinct" },
  min: { name: "min", f: ad.min, sample: "distinct" },
  logsumexp: { name: "logsumexp", f: ad.logsumexp },
  var: { name: "var", f: ad.var },
};

/** A shape and a reduction spec over it: some axes (negative ones too) or none, keepdims or not. */
const reductionArb = shapeArb.chain((shape) =>
  fc.record({
    shape: fc.constant(shape),
    axes: fc.option(
      fc
        .subarray(shape.map((_, i) => i))
        .chain((axes) =>
          fc
            .array(fc.boolean(), { minLength: axes.length, maxLength: axes.length })
            .map((neg) => axes.map((a, i) => (neg[i] ? a - shape.length : a))),
        ),
      { nil: undefined },
    ),
    keepdims: fc.boolean(),
    op: fc.constantFrom(...(Object.keys(reductions) as ReduceName[])),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  }),
);

describe("property: random shapes and broadcasting", () => {
  test("elementwise binary ops under random broadcasting pairs", () => {
    fc.assert(
      fc.property(
        broadcastPairArb,
        fc.constantFrom(...Object.keys(binarySpecs)),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        ([a, b], op, seed) => {
          const spec = binarySpecs[op]!;
          const x = sampleInputs(spec, [a, b], mulberry32(seed));
          const out = spec.fn(...x);
          const r = ad.gradcheck(spec.fn, x);
          assert.ok(r.ok, `${op} ${fmtShapes([a, b])} -> [${out.shape}] seed ${seed}: ${r.message}`);
        },
      ),
      { numRuns: 20, seed: 20240601 },
    );
  });

  test("reductions over random axes, keepdims, 0-d and size-1 dims", () => {
    fc.assert(
      fc.property(reductionArb, ({ shape, axes, keepdims, op, seed }) => {
        const r0 = reductions[op];
        const opts: ad.ReduceOptions = { keepdims };
        if (axes !== undefined) opts.axis = axes;
        const spec: OpSpec = { ...r0, fn: (x) => r0.f(x!, opts), shapes: [shape] };
        const x = sampleInputs(spec, [shape], mulberry32(seed));
        const r = ad.gradcheck(spec.fn, x);
        assert.ok(
          r.ok,
          `${op} [${shape}] axis=${JSON.stringify(axes)} keepdims=${keepdims} seed ${seed}: ${r.message}`,
        );
      }),
      { numRuns: 20, seed: 20240602 },
    );
  });

  test("unary chains on random shapes (second order)", () => {
    fc.assert(
      fc.property(shapeArb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (shape, seed) => {
        const f = (x: ad.Tensor) => ad.tanh(ad.mul(ad.sin(x), ad.exp(ad.neg(ad.square(x)))));
        const x = sampleInputs({}, [shape], mulberry32(seed));
        const r = ad.gradgradcheck(f, x);
        assert.ok(r.ok, `[${shape}] seed ${seed}: ${r.message}`);
      }),
      { numRuns: 10, seed: 20240603 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Zero derivatives: exact zeros, never NaN, never an error
// ---------------------------------------------------------------------------------------------

describe("ops with zero derivative give exact zero tangents and cotangents", () => {
  // Jump points included (0 for sign, integers for floor/ceil, halves for round).
  const x = ad.tensor(
    [
      [-1.5, -1, -0.5, 0],
      [0.5, 1, 2.5, 0.3],
    ],
    { dtype: "float64" },
  );
  const v = ad.tensor(
    [
      [1, -2, 3, 0.5],
      [-1, 2, 0.25, 7],
    ],
    { dtype: "float64" },
  );
  for (const { name, fn } of zeroDerivativeSpecs) {
    test(`${name}: jvp`, () => {
      const [out, t] = ad.jvp(fn, [x], [v]) as [ad.Tensor, ad.Tensor];
      assertExactlyZero(t, out.shape, `${name} jvp tangent`);
    });
    test(`${name}: vjp`, () => {
      const [out, back] = ad.vjp(fn, x);
      const [ct] = back(ad.onesLike(out as ad.Tensor)) as ad.Tensor[];
      assertExactlyZero(ct!, x.shape, `${name} vjp cotangent`);
      assert.equal(ct!.dtype, "float64", `${name} vjp cotangent dtype`);
    });
    test(`${name}: grad and jvp through a float cast, inside a product`, () => {
      // d/dx sum(x · c(x)) = c(x) where c has zero derivative: no NaN leaks from the zero path.
      const g = (z: ad.Tensor) => ad.sum(ad.mul(z, ad.astype(fn(z), "float64")));
      // c broadcasts against x: the gradient is c broadcast to x's shape.
      const cb = ad.broadcastTo(ad.astype(fn(x), "float64"), x.shape);
      const gx = ad.grad(g)(x) as ad.Tensor;
      assert.deepEqual(gx.toArray(), cb.toArray(), `${name} grad`);
      const [, t] = ad.jvp(g, [x], [v]) as [ad.Tensor, ad.Tensor];
      assert.equal(t.item(), ad.sum(ad.mul(v, cb)).item(), `${name} jvp`);
    });
  }

  test("second derivatives through zero-derivative ops are exact zeros", () => {
    for (const { name, fn } of zeroDerivativeSpecs) {
      const f = (z: ad.Tensor) => ad.sum(ad.astype(fn(z), "float64"));
      const h = ad.hessian(f)(x) as ad.Tensor;
      assertExactlyZero(h, [...x.shape, ...x.shape], `${name} hessian`);
    }
  });

  test("stopGradient: its argument is a constant in every mode", () => {
    const f = (z: ad.Tensor) => ad.sum(ad.mul(ad.stopGradient(z), z));
    assert.deepEqual((ad.grad(f)(x) as ad.Tensor).toArray(), x.toArray());
    const [, t] = ad.jvp(f, [x], [v]) as [ad.Tensor, ad.Tensor];
    assert.equal(t.item(), ad.sum(ad.mul(x, v)).item());
    // d²/dx² of sg(x)·x is 0 (the Hessian of a function linear in its un-stopped argument).
    assertExactlyZero(ad.hessian(f)(x) as ad.Tensor, [...x.shape, ...x.shape], "stopGradient hessian");
  });
});

// ---------------------------------------------------------------------------------------------
// Conventions at non-smooth points (API.md §2, §10)
// ---------------------------------------------------------------------------------------------

describe("conventions at kinks and ties, in both modes", () => {
  const f64 = (d: number[]) => ad.tensor(d, { dtype: "float64" });
  const both = (f: (x: ad.Tensor) => ad.Tensor, at: number[], want: number[], what: string) => {
    const x = f64(at);
    const g = ad.grad((z: ad.Tensor) => ad.sum(f(z)))(x) as ad.Tensor;
    assert.deepEqual(g.toArray(), want, `${what}: reverse`);
    const jac = ad.jacfwd(f)(x) as ad.Tensor;
    const colSums = ad.sum(jac, { axis: jac.ndim === 1 ? [] : [0] });
    assert.deepEqual(colSums.toArray(), want, `${what}: forward`);
  };
  test("relu'(0) = 0", () => both(ad.relu, [-1, 0, 2], [0, 0, 1], "relu"));
  test("abs'(0) = 0", () => both(ad.abs, [-1, 0, 2], [-1, 0, 1], "abs"));
  test("max ties split equally", () => both((x) => ad.max(x), [1, 3, 3], [0, 0.5, 0.5], "max"));
  test("min ties split equally", () => both((x) => ad.min(x), [2, 1, 1, 1], [0, 1 / 3, 1 / 3, 1 / 3], "min"));
  test("maximum/minimum ties split equally", () => {
    const g = ad.grad((a: ad.Tensor, b: ad.Tensor) => ad.sum(ad.maximum(a, b)), { argnums: [0, 1] })(
      f64([1, 2]),
      f64([1, 3]),
    ) as ad.Tensor[];
    assert.deepEqual(
      g.map((t) => t.toArray()),
      [
        [0.5, 0],
        [0.5, 1],
      ],
    );
    const h = ad.grad((a: ad.Tensor, b: ad.Tensor) => ad.sum(ad.minimum(a, b)), { argnums: [0, 1] })(
      f64([2, 2]),
      f64([2, 3]),
    ) as ad.Tensor[];
    assert.deepEqual(
      h.map((t) => t.toArray()),
      [
        [0.5, 1],
        [0.5, 0],
      ],
    );
  });
  test("prod is exact with zeros", () => both((x) => ad.prod(x), [2, 0, 3], [0, 6, 0], "prod"));
  test("pow(x, c) at x = 0 has the right finite derivative", () => {
    both((x) => ad.pow(x, 2), [0], [0], "x^2");
    both((x) => ad.pow(x, 3), [0], [0], "x^3");
    both((x) => ad.pow(x, 1), [0], [1], "x^1");
    const d2 = ad.grad(ad.grad((x: number) => ad.pow(x, 2)))(0);
    assert.equal(d2, 2);
  });
  test("normalize at the origin has a finite gradient", () => {
    const g = ad.grad((x: ad.Tensor) => ad.sum(ad.normalize(x)))(f64([0, 0, 0])) as ad.Tensor;
    assert.ok(entries(g).every(Number.isFinite), g.toString());
  });
});

// ---------------------------------------------------------------------------------------------
// dtypes of derivatives through astype
// ---------------------------------------------------------------------------------------------

describe("astype float32 -> float64", () => {
  test("the cotangent comes back in float32, the tangent goes out in float64", () => {
    const x = ad.tensor([0.5, -1.25, 2]);
    assert.equal(x.dtype, "float32");
    const f = (z: ad.Tensor) => ad.astype(z, "float64");
    const [out, back] = ad.vjp(f, x);
    assert.equal((out as ad.Tensor).dtype, "float64");
    const [ct] = back(ad.tensor([1, 2, 3], { dtype: "float64" })) as ad.Tensor[];
    assert.equal(ct!.dtype, "float32");
    assert.deepEqual(ct!.toArray(), [1, 2, 3]);
    const [, t] = ad.jvp(f, [x], [ad.tensor([4, 5, 6])]) as [ad.Tensor, ad.Tensor];
    assert.equal(t.dtype, "float64");
    assert.deepEqual(t.toArray(), [4, 5, 6]);
  });
  test("grad of a float64 loss of a float32 input is float32", () => {
    const x = ad.tensor([0.5, 1.5]);
    const g = ad.grad((z: ad.Tensor) => ad.sum(ad.square(ad.astype(z, "float64"))))(x) as ad.Tensor;
    assert.equal(g.dtype, "float32");
    assert.deepEqual(g.toArray(), [1, 3]);
  });
});
