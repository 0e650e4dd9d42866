/**
 * @file `ad.vmap` (API §3, §10): every op-spec row (and so every primitive) vectorised against a
 * loop over examples, with the batch axis first, last, or on one operand only; the extra
 * non-differentiable primitives (comparisons, argmax, conversions, batched indices, random keys);
 * `inAxes`/`outAxes` as numbers, null, negative axes and pytrees; compositions with grad, jvp, jit,
 * the Jacobians and vmap itself (per-example gradients of an MLP); and the typed errors.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { allPrimitives } from "../dist/primitives/index.js";
import { assertClose } from "./helpers.js";
import { hashString, mulberry32, type OpSpec, opSpecs, sampleInputs, shapesOf } from "./op-specs.js";

const B = 3;
const TIGHT = { rtol: 1e-12, atol: 1e-12 };
type Fn = (...xs: ad.Tensor[]) => ad.Tensor;

/** Example `b` of `x` along `axis`. */
const exampleAt = (x: ad.Tensor, axis: number, b: number): ad.Tensor => ad.take(x, b, axis);

/** The reference: `f` on each example in turn (unbatched operands as they are), stacked on axis 0. */
function loop(f: Fn, xs: readonly ad.Tensor[], axes: readonly (number | null)[], n = B): ad.Tensor {
  const outs: ad.Tensor[] = [];
  for (let b = 0; b < n; b++) {
    const ex = xs.map((x, i) => {
      const a = axes[i] ?? null;
      return a === null ? x : exampleAt(x, a < 0 ? a + x.ndim : a, b);
    });
    outs.push(f(...ex));
  }
  return ad.stack(outs);
}

/** Move axis 0 of `x` to the end. */
const toLast = (x: ad.Tensor): ad.Tensor => ad.transpose(x, [...x.shape.map((_, i) => i).slice(1), 0]);

const f64 = (data: number[] | number[][] | number[][][]) => ad.tensor(data, { dtype: "float64" });
const i32 = (data: number[] | number[][] | number[][][]) => ad.tensor(data, { dtype: "int32" });

// ---------------------------------------------------------------------------------------------

describe("vmap matches a loop over examples, for every op-spec row", () => {
  const rowName = (s: OpSpec, shapes: readonly (readonly number[])[]) =>
    `${s.name}${s.label ? ` (${s.label})` : ""} ${shapes.map((x) => `[${x.join(",")}]`).join(" ")}`;
  for (const spec of opSpecs) {
    const rng = mulberry32(hashString(`vmap ${spec.name} ${spec.label ?? ""}`));
    const shapes = shapesOf(spec, rng);
    test(rowName(spec, shapes), () => {
      const xs = sampleInputs(
        spec,
        shapes.map((s) => [B, ...s]),
        rng,
      );
      const n = xs.length;
      // Batch axis first.
      const expected = loop(
        spec.fn,
        xs,
        xs.map(() => 0),
      );
      assertClose(ad.vmap(spec.fn)(...xs), expected, TIGHT);
      // Batch axis last (negative inAxes), and the result's batch axis last too.
      const last = ad.vmap(spec.fn, { inAxes: -1, outAxes: -1 })(...xs.map(toLast));
      assertClose(last, toLast(expected), TIGHT);
      if (n > 1) {
        // Only the first operand batched: the others are the same for every example.
        const fixed = xs.map((x, i) => (i === 0 ? x : exampleAt(x, 0, 1)));
        const axesFirst = xs.map((_, i) => (i === 0 ? 0 : null));
        assertClose(
          ad.vmap(spec.fn, { inAxes: axesFirst })(...fixed),
          loop(spec.fn, fixed, axesFirst),
          TIGHT,
        );
        // Only the last operand batched, on its last axis.
        const fixed2 = xs.map((x, i) => (i === n - 1 ? toLast(x) : exampleAt(x, 0, 2)));
        const axesLast = xs.map((_, i) => (i === n - 1 ? -1 : null));
        assertClose(
          ad.vmap(spec.fn, { inAxes: axesLast })(...fixed2),
          loop(spec.fn, fixed2, axesLast),
          TIGHT,
        );
        // Mixed axes: operand i batched on axis min(i, rank).
        const mixedAxes = xs.map((x, i) => Math.min(i, x.ndim - 1));
        const mixed = xs.map((x, i) => ad.transpose(x, moveFirstTo(x.ndim, mixedAxes[i]!)));
        assertClose(ad.vmap(spec.fn, { inAxes: mixedAxes })(...mixed), expected, TIGHT);
      }
    });
  }
});

/** The permutation that moves axis 0 to position `to`. */
function moveFirstTo(ndim: number, to: number): number[] {
  const rest = Array.from({ length: ndim - 1 }, (_, i) => i + 1);
  rest.splice(to, 0, 0);
  return rest;
}

// ---------------------------------------------------------------------------------------------

interface ExtraRow {
  name: string;
  fn: Fn;
  /** Batched inputs (batch axis 0). */
  inputs: () => ad.Tensor[];
  /** Which inputs are batched (default all). */
  inAxes?: (number | null)[];
}

const g = mulberry32(7);
const rnd = (shape: number[]) =>
  sampleInputs({ domain: [-2, 2] }, [shape], g)[0]!
    .mul(4)
    .round()
    .div(4); // with ties, zeros and repeats
const bools = (shape: number[]) => ad.greater(rnd(shape), 0);

const extraRows: ExtraRow[] = [
  ...(
    [
      ["equal", ad.equal],
      ["notEqual", ad.notEqual],
      ["less", ad.less],
      ["lessEqual", ad.lessEqual],
      ["greater", ad.greater],
      ["greaterEqual", ad.greaterEqual],
    ] as const
  ).flatMap(([op, cmp]): ExtraRow[] => [
    {
      name: `${op} [B,2,3] vs [B,3]`,
      fn: (a, b) => cmp(a!, b!),
      inputs: () => [rnd([B, 2, 3]), rnd([B, 3])],
    },
    {
      name: `${op} [B,3] vs unbatched [2,3]`,
      fn: (a, b) => cmp(a!, b!),
      inputs: () => [rnd([B, 3]), rnd([2, 3])],
      inAxes: [0, null],
    },
  ]),
  { name: "logicalAnd", fn: (a, b) => ad.logicalAnd(a!, b!), inputs: () => [bools([B, 4]), bools([B, 4])] },
  {
    name: "logicalOr",
    fn: (a, b) => ad.logicalOr(a!, b!),
    inputs: () => [bools([B, 1, 4]), bools([B, 3, 1])],
  },
  { name: "logicalNot", fn: (a) => ad.logicalNot(a!), inputs: () => [bools([B, 4])] },
  { name: "isnan", fn: (a) => ad.isnan(ad.log(a!)), inputs: () => [rnd([B, 4])] },
  { name: "isfinite", fn: (a) => ad.isfinite(ad.div(1, a!)), inputs: () => [rnd([B, 4])] },
  { name: "argmax axis=1", fn: (a) => ad.argmax(a!, { axis: 1 }), inputs: () => [rnd([B, 2, 5])] },
  { name: "argmax all", fn: (a) => ad.argmax(a!), inputs: () => [rnd([B, 2, 5])] },
  {
    name: "argmin axis=0 keepdims",
    fn: (a) => ad.argmin(a!, { axis: 0, keepdims: true }),
    inputs: () => [rnd([B, 4, 2])],
  },
  { name: "astype int32", fn: (a) => ad.astype(a!.mul(3), "int32"), inputs: () => [rnd([B, 4])] },
  { name: "astype bool -> float32", fn: (a) => ad.astype(a!, "float32"), inputs: () => [bools([B, 4])] },
  { name: "stopGradient", fn: (a) => ad.stopGradient(a!), inputs: () => [rnd([B, 2, 2])] },
  { name: "sum of bool", fn: (a) => ad.sum(a!, { axis: 1 }), inputs: () => [bools([B, 3, 4])] },
  { name: "max with ties", fn: (a) => ad.max(a!, { axis: 0 }), inputs: () => [rnd([B, 5, 2])] },
  {
    name: "where, batched condition only",
    fn: (c, a, b) => ad.where(c!, a!, b!),
    inputs: () => [bools([B, 4]), rnd([4]), rnd([1])],
    inAxes: [0, null, null],
  },
  {
    name: "where, batched condition and branches of different ranks",
    fn: (c, a, b) => ad.where(c!, a!, b!),
    inputs: () => [bools([B, 2, 1]), rnd([B, 3]), rnd([B])],
  },
  {
    name: "gather, batched index",
    fn: (x, i) => ad.gather(x!, 1, i!),
    inputs: () => [
      rnd([3, 4]),
      i32([
        [[0], [3], [1]],
        [[2], [2], [0]],
        [[1], [0], [3]],
      ]),
    ],
    inAxes: [null, 0],
  },
  {
    name: "gather, batched x and index",
    fn: (x, i) => ad.gather(x!, 0, i!),
    inputs: () => [rnd([B, 3, 2]), i32([[[0, 2]], [[1, 1]], [[2, 0]]])],
  },
  {
    name: "take, batched indices",
    fn: (x, i) => ad.take(x!, i!, 0),
    inputs: () => [
      rnd([4, 2]),
      i32([
        [3, 0],
        [1, 1],
        [2, 3],
      ]),
    ],
    inAxes: [null, 0],
  },
  {
    name: "scatterAdd, batched index only",
    fn: (x, i, s) => ad.scatterAdd(x!, 0, i!, s!),
    inputs: () => [rnd([3, 2]), i32([[[0, 0]], [[2, 1]], [[1, 1]]]), rnd([1, 2])],
    inAxes: [null, 0, null],
  },
  {
    name: "scatterAdd, batched src only",
    fn: (x, i, s) => ad.scatterAdd(x!, 1, i!, s!),
    inputs: () => [
      rnd([2, 3]),
      i32([
        [0, 0],
        [2, 1],
      ]),
      rnd([B, 2, 2]),
    ],
    inAxes: [null, null, 0],
  },
  {
    name: "scatterAdd, batched x, index and src",
    fn: (x, i, s) => ad.scatterAdd(x!, 0, i!, s!),
    inputs: () => [rnd([B, 3, 2]), i32([[[0, 0]], [[2, 1]], [[1, 1]]]), rnd([B, 1, 2])],
  },
  {
    name: "concat, batched and unbatched operands",
    fn: (a, b, c) => ad.concat([a!, b!, c!], 1),
    inputs: () => [rnd([2, 1]), rnd([B, 2, 3]), rnd([2, 2])],
    inAxes: [null, 0, null],
  },
  {
    name: "pad with a value",
    fn: (a) =>
      ad.pad(
        a!,
        [
          [1, 0],
          [0, 2],
        ],
        7,
      ),
    inputs: () => [rnd([B, 2, 2])],
  },
  {
    name: "matmul, batched lhs with its own batch dims",
    fn: (a, b) => ad.matmul(a!, b!),
    inputs: () => [rnd([B, 2, 3, 4]), rnd([2, 4, 5])],
    inAxes: [0, null],
  },
  {
    name: "matmul, batched rhs with its own batch dims",
    fn: (a, b) => ad.matmul(a!, b!),
    inputs: () => [rnd([2, 3, 4]), rnd([B, 2, 4, 5])],
    inAxes: [null, 0],
  },
  {
    name: "int32 arithmetic",
    fn: (a, b) => ad.mul(ad.add(a!, b!), 2),
    inputs: () => [
      i32([
        [1, 2],
        [3, 4],
        [5, 6],
      ]),
      i32([7, 8]),
    ],
    inAxes: [0, null],
  },
];

describe("vmap matches a loop for the primitives with no derivative", () => {
  for (const row of extraRows) {
    test(row.name, () => {
      const xs = row.inputs();
      const axes = row.inAxes ?? xs.map(() => 0);
      const expected = loop(row.fn, xs, axes);
      const got = ad.vmap(row.fn, { inAxes: axes })(...xs);
      assert.equal(got.dtype, expected.dtype);
      assertClose(got, expected, TIGHT);
    });
  }

  test("random: a batch of keys gives exactly the numbers of a loop over the keys", () => {
    const keys = ad.stack(ad.random.split(ad.random.key(3), 4));
    const f = (k: ad.Tensor) => ad.random.normal(k, [2, 3], { dtype: "float64" });
    assertClose(ad.vmap(f)(keys), loop(f, [keys], [0], 4), { rtol: 0, atol: 0 });
    const u = (k: ad.Tensor) => ad.random.uniform(k, [5]);
    assertClose(ad.vmap(u)(keys), loop(u, [keys], [0], 4), { rtol: 0, atol: 0 });
    const s = (k: ad.Tensor) => ad.stack(ad.random.split(k, 3));
    assertClose(ad.vmap(s)(keys), loop(s, [keys], [0], 4), { rtol: 0, atol: 0 });
    // Keys on axis 1, and a key that is the same for every example.
    assertClose(ad.vmap(f, { inAxes: 1 })(keys.transpose()), loop(f, [keys], [0], 4), { rtol: 0, atol: 0 });
    const fixed = ad.vmap((x: ad.Tensor, k: ad.Tensor) => ad.add(x, ad.random.normal(k, [2])), {
      inAxes: [0, null],
    })(ad.zeros([3, 2]), ad.random.key(1));
    const once = ad.random.normal(ad.random.key(1), [2]);
    assertClose(fixed, [once, once, once]);
  });

  test("every primitive has a batching rule and is exercised by the tables above", () => {
    const seen = new Set<string>();
    const record = (f: Fn, xs: ad.Tensor[]) => {
      for (const e of ad.trace(f)(...xs).eqns) seen.add(e.prim.name);
    };
    for (const spec of opSpecs) {
      const shapes = shapesOf(spec, mulberry32(1));
      record(spec.fn, sampleInputs(spec, shapes, mulberry32(2)));
    }
    for (const row of extraRows) {
      const xs = row.inputs();
      const axes = row.inAxes ?? xs.map(() => 0);
      record(
        row.fn,
        xs.map((x, i) => (axes[i] === null ? x : exampleAt(x, 0, 0))),
      );
    }
    record((k) => ad.random.uniform(k!, [2]), [ad.random.key(0)]);
    record((k) => ad.random.split(k!, 2)[0]!, [ad.random.key(0)]);
    const missing: string[] = [];
    for (const [name, prim] of allPrimitives()) {
      assert.equal(typeof prim.batch, "function", `${name} has no batching rule`);
      if (!seen.has(name)) missing.push(name);
    }
    assert.deepEqual(missing, [], `primitives never vmapped by the tables: ${missing.join(", ")}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe("inAxes and outAxes", () => {
  const xs = f64([
    [1, 2, 3],
    [4, 5, 6],
  ]);

  test("inside f, a batched argument has the shape of one example", () => {
    const shapes: number[][] = [];
    ad.vmap((x: ad.Tensor) => {
      shapes.push(x.shape);
      return x;
    })(xs);
    ad.vmap(
      (x: ad.Tensor) => {
        shapes.push(x.shape);
        return x;
      },
      { inAxes: 1 },
    )(xs);
    assert.deepEqual(shapes, [[3], [2]]);
  });

  test("null, numbers and static leaves are the same for every example", () => {
    const w = f64([10, 20, 30]);
    const f = (x: ad.Tensor, v: ad.Tensor, s: number, mode: string) =>
      mode === "add" ? ad.add(ad.mul(x, v), s) : ad.mul(x, s);
    assertClose(ad.vmap(f, { inAxes: [0, null, null, null] })(xs, w, 1, "add"), [
      [11, 41, 91],
      [41, 101, 181],
    ]);
    // The default inAxes 0 leaves JS numbers and strings alone.
    assertClose(ad.vmap((x: ad.Tensor, s: number) => ad.mul(x, s))(xs, 2), xs.mul(2));
    assertClose(ad.vmap(f)(xs, ad.stack([w, w]), 2, "mul"), xs.mul(2));
  });

  test("negative axes count from the end", () => {
    const t = f64([
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
    ]); // [1, 3, 2]
    const f = (x: ad.Tensor) => ad.sum(x);
    assertClose(ad.vmap(f, { inAxes: -1 })(t), [9, 12]);
    assertClose(ad.vmap(f, { inAxes: -2 })(t), [3, 7, 11]);
    assertClose(ad.vmap(f, { inAxes: -3 })(t), [21]);
  });

  test("outAxes: a number, a negative number, null for an unbatched output, a pytree prefix", () => {
    const f = (x: ad.Tensor) => ad.mul(x, 2);
    assertClose(ad.vmap(f, { outAxes: 1 })(xs), xs.mul(2).transpose());
    assertClose(ad.vmap(f, { outAxes: -1 })(xs), xs.mul(2).transpose());
    const c = f64([7, 8]);
    const g = (x: ad.Tensor) => ({ y: ad.sum(x), c, pair: [x, ad.neg(x)] });
    const r = ad.vmap(g, { outAxes: { y: 0, c: null, pair: [1, 0] } })(xs);
    assertClose(r.y, [6, 15]);
    assert.equal(r.c, c);
    assertClose(r.pair[0], xs.transpose());
    assertClose(r.pair[1], xs.neg());
  });

  test("an output that does not vary is repeated along the mapped axis (numbers too)", () => {
    const r = ad.vmap((_x: ad.Tensor) => [f64([1, 2]), 5], { outAxes: [1, 0] })(xs);
    assertClose(r[0], [
      [1, 1],
      [2, 2],
    ]);
    assertClose(r[1], [5, 5]);
  });

  test("inAxes as pytrees: per-argument prefixes, objects and arrays", () => {
    const ws = f64([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const bs = f64([0.5, -0.5]);
    const f = (p: { w: ad.Tensor; b: ad.Tensor }, x: ad.Tensor) => ad.add(ad.dot(p.w, x), p.b);
    const x = f64([3, 4, 5]);
    // Map w and b (axis 0 of each), not x.
    assertClose(ad.vmap(f, { inAxes: [0, null] })({ w: ws, b: bs }, x), [3.5, 3.5]);
    // The same with an object prefix naming each key.
    assertClose(ad.vmap(f, { inAxes: [{ w: 0, b: 0 }, null] })({ w: ws, b: bs }, x), [3.5, 3.5]);
    // Map only w (on its last axis) and x; b is shared.
    const r = ad.vmap(f, { inAxes: [{ w: -1, b: null }, 0] })(
      { w: ws.transpose(), b: ad.scalar(1, { dtype: "float64" }) },
      f64([
        [1, 1, 1],
        [2, 2, 2],
      ]),
    );
    assertClose(r, [2, 3]);
    // An array argument with one spec per entry.
    const h = (pair: ad.Tensor[]) => ad.mul(pair[0]!, pair[1]!);
    assertClose(ad.vmap(h, { inAxes: [[0, null]] })([xs, f64([1, 0, 2])]), [
      [1, 0, 6],
      [4, 0, 12],
    ]);
  });

  test("returning an argument moves its mapped axis to outAxes; an empty batch gives empty results", () => {
    assertClose(ad.vmap((x: ad.Tensor) => x, { inAxes: 1 })(xs), xs.transpose());
    assertClose(ad.vmap((x: ad.Tensor) => x, { inAxes: 1, outAxes: 1 })(xs), xs);
    const empty = ad.vmap((x: ad.Tensor) => ad.softmax(ad.matmul(x, ad.ones([3, 2]))))(ad.zeros([0, 3]));
    assert.deepEqual(empty.shape, [0, 2]);
    const keys = ad.vmap((k: ad.Tensor) => ad.random.uniform(k, [2]))(ad.zeros([0, 2], { dtype: "int32" }));
    assert.deepEqual(keys.shape, [0, 2]);
  });

  test("0-d results and number outputs stack to vectors", () => {
    assertClose(ad.vmap((x: ad.Tensor) => ad.max(x))(xs), [3, 6]);
    const r = ad.vmap((_x: ad.Tensor) => 4)(xs);
    assert.ok(r instanceof ad.Tensor);
    assertClose(r, [4, 4]);
  });
});

// ---------------------------------------------------------------------------------------------

/** A two-layer MLP's squared error on one example. */
interface Params {
  W1: ad.Tensor;
  b1: ad.Tensor;
  W2: ad.Tensor;
  b2: ad.Tensor;
}
const mlpLoss = (p: Params, x: ad.Tensor, y: ad.Tensor): ad.Tensor => {
  const h = ad.tanh(ad.add(ad.matmul(p.W1, x), p.b1));
  const out = ad.add(ad.matmul(p.W2, h), p.b2);
  return ad.sum(ad.square(ad.sub(out, y)));
};

function mlpSetup() {
  const rng = mulberry32(11);
  const t = (shape: number[]) => sampleInputs({ domain: [-1, 1] }, [shape], rng)[0]!;
  const params: Params = { W1: t([4, 3]), b1: t([4]), W2: t([2, 4]), b2: t([2]) };
  return { params, xs: t([5, 3]), ys: t([5, 2]) };
}

/** Stack per-example pytrees leaf by leaf. */
function stackTrees(trees: readonly unknown[]): unknown {
  return ad.tree.map((...ls: ad.Tensor[]) => ad.stack(ls), trees[0], ...trees.slice(1));
}

describe("compositions", () => {
  test("vmap(grad(f)): per-example gradients of an MLP loss equal a loop of grads", () => {
    const { params, xs, ys } = mlpSetup();
    const perExample = ad.vmap(ad.grad(mlpLoss), { inAxes: [null, 0, 0] })(params, xs, ys);
    const expected = stackTrees(
      Array.from({ length: 5 }, (_, b) => ad.grad(mlpLoss)(params, xs.at(b), ys.at(b))),
    );
    assertClose(perExample, expected, TIGHT);
    // Their mean is the gradient of the mean loss.
    const meanLoss = (p: Params) => ad.mean(ad.vmap(mlpLoss, { inAxes: [null, 0, 0] })(p, xs, ys));
    assertClose(
      ad.tree.map((g: ad.Tensor) => ad.mean(g, { axis: 0 }), perExample),
      ad.grad(meanLoss)(params),
      TIGHT,
    );
  });

  test("vmap(valueAndGrad(f)) and jit(vmap(grad(f)))", () => {
    const { params, xs, ys } = mlpSetup();
    const [vals, grads] = ad.vmap(ad.valueAndGrad(mlpLoss), { inAxes: [null, 0, 0] })(params, xs, ys);
    assertClose(
      vals,
      loop((x, y) => mlpLoss(params, x!, y!), [xs, ys], [0, 0], 5),
      TIGHT,
    );
    const jitted = ad.jit(ad.vmap(ad.grad(mlpLoss), { inAxes: [null, 0, 0] }));
    assertClose(jitted(params, xs, ys), grads, TIGHT);
    assertClose(
      jitted(params, xs.mul(2), ys),
      ad.vmap(ad.grad(mlpLoss), { inAxes: [null, 0, 0] })(params, xs.mul(2), ys),
      TIGHT,
    );
    assert.equal(jitted.traces, 1);
  });

  test("vmap(vmap(f)): pairwise distances equal a double loop", () => {
    const X = f64([
      [0, 0],
      [1, 0],
      [0, 2],
    ]);
    const Y = f64([
      [1, 1],
      [3, 4],
    ]);
    const dist = (a: ad.Tensor, b: ad.Tensor) => ad.sqrt(ad.sum(ad.square(ad.sub(a, b))));
    const D = ad.vmap(ad.vmap(dist, { inAxes: [null, 0] }), { inAxes: [0, null] })(X, Y);
    const expected = [0, 1, 2].map((i) => [0, 1].map((j) => dist(X.at(i), Y.at(j)).item()));
    assertClose(D, expected, TIGHT);
    // Both levels mapping the same argument: vmap(vmap(f)) of a [2, 3, 4] tensor.
    const t = sampleInputs({}, [[2, 3, 4]], mulberry32(5))[0]!;
    const inner = (x: ad.Tensor) => ad.logsumexp(x);
    const r = ad.vmap(ad.vmap(inner), { inAxes: 2 })(t); // outer over axis 2, inner over axis 0 of [2, 3]
    const exp = [0, 1, 2, 3].map((k) => [0, 1].map((i) => inner(t.at(i, null, k)).item()));
    assertClose(r, exp, TIGHT);
  });

  test("vmap(jit(f)) and jit(vmap(f))", () => {
    const f = (x: ad.Tensor, w: ad.Tensor) => ad.softmax(ad.matmul(w, x));
    const w = sampleInputs({}, [[3, 4]], mulberry32(8))[0]!;
    const xs = sampleInputs({}, [[6, 4]], mulberry32(9))[0]!;
    const expected = loop((x) => f(x!, w), [xs], [0], 6);
    const jf = ad.jit(f);
    assertClose(ad.vmap(jf, { inAxes: [0, null] })(xs, w), expected, TIGHT);
    const jv = ad.jit(ad.vmap(f, { inAxes: [0, null] }));
    assertClose(jv(xs, w), expected, TIGHT);
    assertClose(jv(xs, w), expected, TIGHT);
    assert.equal(jv.traces, 1);
    // The staged program is batched: no per-example loop (a handful of equations, not 6x).
    const eqns = ad.trace(ad.vmap(f, { inAxes: [0, null] }))(xs, w).eqns.length;
    const once = ad.trace(f)(xs.at(0), w).eqns.length;
    assert.ok(eqns < 2 * once, `vmap program has ${eqns} equations, one example has ${once}`);
  });

  test("grad(vmap(f)) equals the gradient of the loop", () => {
    const f = (x: ad.Tensor) => ad.mul(ad.sin(x), ad.sum(ad.exp(x)));
    const xs = sampleInputs({}, [[3, 4]], mulberry32(3))[0]!;
    const g1 = ad.grad((x: ad.Tensor) => ad.sum(ad.vmap(f)(x)))(xs);
    const g2 = ad.grad((x: ad.Tensor) => ad.sum(loop(f, [x], [0])))(xs);
    assertClose(g1, g2, TIGHT);
    const g3 = ad.grad((x: ad.Tensor) => ad.sum(ad.vmap(f, { inAxes: 1, outAxes: 1 })(x)))(xs);
    const g4 = ad.grad((x: ad.Tensor) => ad.sum(loop(f, [x], [1], 4)))(xs);
    assertClose(g3, g4, TIGHT);
  });

  test("jvp(vmap(f)) and vmap(jvp(f))", () => {
    const f = (x: ad.Tensor) => ad.tanh(ad.matmul(x, ad.transpose(x)));
    const xs = sampleInputs({}, [[3, 2, 2]], mulberry32(4))[0]!;
    const ts = sampleInputs({}, [[3, 2, 2]], mulberry32(6))[0]!;
    const [y, dy] = ad.jvp(ad.vmap(f), [xs], [ts]) as [ad.Tensor, ad.Tensor];
    const per = [0, 1, 2].map((b) => ad.jvp(f, [xs.at(b)], [ts.at(b)]) as [ad.Tensor, ad.Tensor]);
    assertClose(y, ad.stack(per.map((p) => p[0])), TIGHT);
    assertClose(dy, ad.stack(per.map((p) => p[1])), TIGHT);
    const tan = ad.vmap((x: ad.Tensor, t: ad.Tensor) => ad.jvp(f, [x], [t])[1] as ad.Tensor)(xs, ts);
    assertClose(tan, dy, TIGHT);
  });

  test("vmap(jacrev(f)) and vmap(jacfwd(f)): per-example Jacobians", () => {
    const f = (x: ad.Tensor) => ad.mul(ad.sin(x), ad.sum(x));
    const xs = sampleInputs({}, [[4, 3]], mulberry32(12))[0]!;
    const expected = loop(ad.jacrev(f), [xs], [0], 4);
    assertClose(ad.vmap(ad.jacrev(f))(xs), expected, TIGHT);
    assertClose(ad.vmap(ad.jacfwd(f))(xs), expected, TIGHT);
    assertClose(
      ad.vmap(ad.hessian((x: ad.Tensor) => ad.sum(ad.pow(x, 3))))(xs),
      loop(
        ad.hessian((x: ad.Tensor) => ad.sum(ad.pow(x, 3))),
        [xs],
        [0],
        4,
      ),
      TIGHT,
    );
  });

  test("eager autograd records the batched operations", () => {
    const x = ad.tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { dtype: "float64", requiresGrad: true },
    );
    const y = ad.sum(ad.vmap((r: ad.Tensor) => ad.mul(ad.sum(r), r))(x));
    y.backward();
    // d/dx_ij of sum_i (sum_j x_ij) * sum_k x_ik = 2 sum_k x_ik
    assertClose(x.grad, [
      [6, 6],
      [14, 14],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("errors", () => {
  const a = ad.zeros([3, 2]);
  const b = ad.zeros([4, 2]);
  const add = (x: ad.Tensor, y: ad.Tensor) => ad.add(x, y);

  test("inconsistent sizes of the mapped axes are a ShapeError naming the arguments and sizes", () => {
    assert.throws(
      () => ad.vmap(add)(a, b),
      (e: unknown) => {
        assert.ok(e instanceof ad.ShapeError);
        assert.match(e.message, /argument 0 has size 3 on axis 0/);
        assert.match(e.message, /argument 1 has size 4 on axis 0/);
        return true;
      },
    );
    assert.throws(() => ad.vmap(add, { inAxes: [0, 1] })(a, a), ad.ShapeError);
    assert.throws(
      () => ad.vmap((p: { u: ad.Tensor; v: ad.Tensor }) => ad.add(p.u, p.v))({ u: a, v: b }),
      /leaf 1 of argument 0 has size 4/,
    );
  });

  test("an axis out of range (or a 0-d tensor to map) is a ShapeError", () => {
    assert.throws(() => ad.vmap(add, { inAxes: 2 })(a, a), ad.ShapeError);
    assert.throws(() => ad.vmap(add, { inAxes: -3 })(a, a), ad.ShapeError);
    assert.throws(() => ad.vmap((x: ad.Tensor) => x)(ad.scalar(1)), ad.ShapeError);
    assert.throws(() => ad.vmap((x: ad.Tensor) => x, { outAxes: 2 })(a), ad.ShapeError);
    // A JS number named explicitly by inAxes cannot be mapped.
    assert.throws(
      () => ad.vmap((x: ad.Tensor, s: number) => ad.mul(x, s), { inAxes: [0, 0] })(a, 2),
      ad.ShapeError,
    );
  });

  test("a malformed inAxes or outAxes is a TransformError", () => {
    assert.throws(
      () => ad.vmap(add, { inAxes: [0] })(a, a),
      /inAxes has 1 entries but the function was called with 2/,
    );
    assert.throws(() => ad.vmap(add, { inAxes: [0, 0.5] })(a, a), ad.TransformError);
    assert.throws(() => ad.vmap(add, { inAxes: "0" as unknown as number })(a, a), ad.TransformError);
    assert.throws(() => ad.vmap(add, { inAxes: [{ w: 0 }, 0] })(a, a), ad.TransformError);
    assert.throws(
      () => ad.vmap((p: { u: ad.Tensor }) => p.u, { inAxes: [{ v: 0 }] })({ u: a }),
      ad.TransformError,
    );
    assert.throws(() => ad.vmap((x: ad.Tensor) => [x, x], { outAxes: [0] })(a), ad.TransformError);
    assert.throws(() => ad.vmap(add, { inAxes: null })(a, a), /no argument is mapped/);
    assert.throws(() => ad.vmap((x: ad.Tensor) => x, { outAxes: null })(a), /outAxes is null/);
    assert.throws(() => ad.vmap(5 as unknown as () => ad.Tensor), ad.TransformError);
  });

  test("reading a batched value inside vmap is a TransformError; unbatched values read fine", () => {
    assert.throws(
      () => ad.vmap((x: ad.Tensor) => (ad.sum(x).item() > 0 ? x : ad.neg(x)))(a),
      ad.TransformError,
    );
    assert.throws(() => ad.vmap((x: ad.Tensor) => ad.tensor(x.toArray() as number[]))(a), /batched value/);
    const r = ad.vmap((x: ad.Tensor, s: ad.Tensor) => (s.item() > 0 ? x : ad.neg(x)), { inAxes: [0, null] })(
      a.add(1),
      ad.scalar(-1),
    );
    assertClose(r, a.add(1).neg());
    // Printing a batched value names it instead of failing.
    ad.vmap((x: ad.Tensor) => {
      assert.match(String(x), /^Tracer\(shape=\[2\]/);
      return x;
    })(a);
  });

  test("a batched value escaping vmap is a TransformError when used", () => {
    let leaked: ad.Tensor | null = null;
    ad.vmap((x: ad.Tensor) => {
      leaked = ad.mul(x, 2);
      return x;
    })(a);
    assert.throws(() => ad.add(leaked!, 1), ad.TransformError);
  });
});
