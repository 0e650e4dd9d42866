/**
 * @file The derivative table: one or more rows per public op (and so per primitive), each naming
 * the op, a function of float tensors built from it, the input shapes, and how to draw inputs
 * that stay in the op's smooth domain (away from kinks, ties, poles and jumps). `ops-grad.test.ts`
 * runs `ad.gradcheck` (forward and reverse against central differences) and, for order-2 rows,
 * `ad.gradgradcheck` over every row. Also: the ops whose derivative is identically zero, a seeded
 * generator, and the input sampler shared by the tests.
 */

import * as ad from "adjoint";

export type Shape = readonly number[];
/** An open interval [lo, hi] that inputs are drawn from. */
export type Domain = readonly [lo: number, hi: number];

/**
 * How inputs are drawn from the domain.
 * - `uniform`: independent uniform values.
 * - `nonzero`: uniform, but |x| >= 0.2 (abs, relu, sign, reciprocal, atan2 away from the origin).
 * - `distinct`: every value of every input at least ~(hi - lo) / (2N) from every other one
 *   (max/min/maximum/minimum away from ties).
 * - `offGrid`: k + u with integer k and u in (0.1, 0.4): away from integers and half-integers
 *   (floor, ceil, round, sign).
 */
export type Sampler = "uniform" | "nonzero" | "distinct" | "offGrid";

/** A seeded source of uniform numbers in [0, 1). */
export type Rng = () => number;

export interface OpSpec {
  /** The public op under test (`ad[name]`, or the method for `at`). */
  name: string;
  /** Which variant (options, broadcasting case, ...); part of the test name. */
  label?: string;
  /** A function of float tensors only; constants (indices, conditions) are closed over. */
  fn: (...xs: ad.Tensor[]) => ad.Tensor;
  /** One shape per argument of `fn`, or a generator of them. */
  shapes: readonly Shape[] | ((rng: Rng) => Shape[]);
  /** Where inputs are drawn (one domain for all arguments, or one per argument); default [-2, 2]. */
  domain?: Domain | readonly Domain[];
  /** How inputs are drawn; default `uniform`. */
  sample?: Sampler;
  /** Highest derivative order checked: 2 also runs `gradgradcheck` (default 2). */
  order?: 1 | 2;
  rtol?: number;
  atol?: number;
  /** Finite-difference step (default gradcheck's 1e-6). */
  eps?: number;
}

/** Mulberry32: a tiny, good-enough seeded generator. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A stable 32-bit hash of a string (to seed each row from its name). */
export function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

const sizeOf = (s: Shape) => s.reduce((p, d) => p * d, 1);

function domainOf(spec: Pick<OpSpec, "domain">, i: number): Domain {
  const d = spec.domain;
  if (d === undefined) return [-2, 2];
  if (typeof d[0] === "number") return d as Domain;
  return (d as readonly Domain[])[i] ?? [-2, 2];
}

/** The concrete shapes of a row (drawing them when `shapes` is a generator). */
export function shapesOf(spec: Pick<OpSpec, "shapes">, rng: Rng): Shape[] {
  return typeof spec.shapes === "function" ? spec.shapes(rng) : [...spec.shapes];
}

/** Draw float64 inputs of the given shapes for a row, as its sampler and domains say. */
export function sampleInputs(
  spec: Pick<OpSpec, "domain" | "sample">,
  shapes: readonly Shape[],
  rng: Rng,
): ad.Tensor[] {
  const sizes = shapes.map(sizeOf);
  const values: Float64Array[] = sizes.map((n) => new Float64Array(n));
  const kind = spec.sample ?? "uniform";
  if (kind === "distinct") {
    // A jittered grid over the (first) domain, shuffled and dealt out to every input.
    const [lo, hi] = domainOf(spec, 0);
    const total = sizes.reduce((a, b) => a + b, 0);
    const step = (hi - lo) / Math.max(total, 1);
    const grid = Array.from({ length: total }, (_, k) => lo + (k + 0.5 + (rng() - 0.5) * 0.5) * step);
    for (let k = grid.length - 1; k > 0; k--) {
      const j = Math.floor(rng() * (k + 1));
      [grid[k], grid[j]] = [grid[j]!, grid[k]!];
    }
    let o = 0;
    for (const v of values) for (let k = 0; k < v.length; k++) v[k] = grid[o++]!;
  } else {
    values.forEach((v, i) => {
      const [lo, hi] = domainOf(spec, i);
      for (let k = 0; k < v.length; k++) {
        let x: number;
        if (kind === "offGrid") x = Math.floor(lo + rng() * (hi - lo)) + 0.1 + 0.3 * rng();
        else
          do x = lo + rng() * (hi - lo);
          while (kind === "nonzero" && Math.abs(x) < 0.2);
        v[k] = x;
      }
    });
  }
  return values.map((v, i) => ad.tensor(v, { dtype: "float64", shape: [...shapes[i]!] }));
}

// ---------------------------------------------------------------------------------------------
// Row builders
// ---------------------------------------------------------------------------------------------

type Extra = Omit<OpSpec, "name" | "fn" | "shapes" | "label">;
type Fn = OpSpec["fn"];

const UNARY_SHAPES: Shape[] = [[2, 3], []];

/** A unary op on a [2, 3] tensor and on a 0-d tensor. */
function unary(name: string, fn: (x: ad.Tensor) => ad.Tensor, extra: Extra = {}, label?: string): OpSpec[] {
  return UNARY_SHAPES.map((s) => ({ name, label, fn: fn as Fn, shapes: [s], ...extra }));
}

/** Broadcasting pairs every binary op is checked on. */
export const BROADCAST_PAIRS: readonly (readonly [Shape, Shape])[] = [
  [
    [2, 3],
    [2, 3],
  ],
  [[3, 4], [4]],
  [[4], [3, 4]],
  [
    [3, 1],
    [1, 4],
  ],
  [[], [2, 3]],
  [[1], []],
  [
    [2, 1, 3],
    [4, 1],
  ],
];

function binary(name: string, fn: (x: ad.Tensor, y: ad.Tensor) => ad.Tensor, extra: Extra = {}): OpSpec[] {
  return BROADCAST_PAIRS.map(([a, b]) => ({ name, fn: fn as Fn, shapes: [a, b], ...extra }));
}

type Reduce = (x: ad.Tensor, opts?: ad.ReduceOptions) => ad.Tensor;

/** Reduction variants: all axes, one axis, negative axis, several axes, keepdims, 0-d, size-1 axes. */
const REDUCE_CASES: readonly {
  label: string;
  shape: Shape;
  opts?: ad.ReduceOptions;
  degenerate?: boolean;
}[] = [
  { label: "all axes", shape: [3, 4] },
  { label: "axis=1", shape: [3, 4], opts: { axis: 1 } },
  { label: "axis=-1", shape: [2, 3, 4], opts: { axis: -1 } },
  { label: "axis=[0,2]", shape: [2, 3, 4], opts: { axis: [0, 2] } },
  { label: "axis=0 keepdims", shape: [3, 4], opts: { axis: 0, keepdims: true } },
  { label: "all axes keepdims", shape: [2, 3], opts: { keepdims: true } },
  { label: "0-d", shape: [], degenerate: true },
  { label: "size-1 axis=1", shape: [3, 1], opts: { axis: 1 }, degenerate: true },
  { label: "size-1 dims, axis=[0,1]", shape: [1, 1, 3], opts: { axis: [0, 1] }, degenerate: true },
  { label: "[1] all axes", shape: [1], degenerate: true },
];

function reduction(name: string, f: Reduce, extra: Extra = {}, skipDegenerate = false): OpSpec[] {
  return REDUCE_CASES.filter((c) => !(skipDegenerate && c.degenerate)).map((c) => ({
    name,
    label: c.label,
    fn: (x: ad.Tensor) => f(x, c.opts),
    shapes: [c.shape],
    ...extra,
  }));
}

const i32 = (data: number[] | number[][] | number[][][]) => ad.tensor(data, { dtype: "int32" });

// Well-conditioned matrices for the ad.linalg rows, built inside each row's function from inputs
// drawn in [-1, 1] (so that vmap and the float32 check see the same construction).
const LINALG: Extra = { domain: [-1, 1] };
/** Swap the last two axes. */
const mT = (m: ad.Tensor) =>
  ad.transpose(
    m,
    [...m.shape.keys()].map((i) => (i < m.ndim - 2 ? i : 2 * m.ndim - 3 - i)),
  );
/** M + 3I: strictly diagonally dominant for 3x3 entries in [-1, 1], so well conditioned. */
const wellConditioned = (m: ad.Tensor) =>
  ad.add(m, ad.mul(3, ad.eye(m.shape[m.ndim - 1]!, { dtype: m.dtype })));
/** M + 3I with its rows reversed: partial pivoting must swap rows, and det changes sign. */
const pivoting = (m: ad.Tensor) => ad.flip(wellConditioned(m), m.ndim - 2);
/** M Mᵀ + I: symmetric positive definite. */
const spd = (m: ad.Tensor) => ad.add(ad.matmul(m, mT(m)), ad.eye(m.shape[m.ndim - 1]!, { dtype: m.dtype }));

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

const POS: Domain = [0.1, 3];

export const opSpecs: readonly OpSpec[] = [
  // ---- unary elementwise ------------------------------------------------------------------
  ...unary("neg", ad.neg),
  ...unary("exp", ad.exp),
  ...unary("log", ad.log, { domain: POS }),
  ...unary("log1p", ad.log1p, { domain: [-0.5, 3] }),
  ...unary("expm1", ad.expm1),
  ...unary("sqrt", ad.sqrt, { domain: POS }),
  ...unary("rsqrt", ad.rsqrt, { domain: [0.2, 3] }),
  ...unary("square", ad.square),
  ...unary("reciprocal", ad.reciprocal, { sample: "nonzero", domain: [-2, 2] }),
  ...unary("abs", ad.abs, { sample: "nonzero" }),
  ...unary("sign", ad.sign, { sample: "offGrid", domain: [-3, 3] }),
  ...unary("floor", ad.floor, { sample: "offGrid", domain: [-3, 3] }),
  ...unary("ceil", ad.ceil, { sample: "offGrid", domain: [-3, 3] }),
  ...unary("round", ad.round, { sample: "offGrid", domain: [-3, 3] }),
  ...unary("sin", ad.sin, { domain: [-3, 3] }),
  ...unary("cos", ad.cos, { domain: [-3, 3] }),
  ...unary("tan", ad.tan, { domain: [-1.2, 1.2] }),
  ...unary("asin", ad.asin, { domain: [-0.9, 0.9] }),
  ...unary("acos", ad.acos, { domain: [-0.9, 0.9] }),
  ...unary("atan", ad.atan, { domain: [-3, 3] }),
  ...unary("sinh", ad.sinh),
  ...unary("cosh", ad.cosh),
  ...unary("tanh", ad.tanh),
  ...unary("sigmoid", ad.sigmoid, { domain: [-4, 4] }),
  ...unary("relu", ad.relu, { sample: "nonzero" }),
  ...unary("softplus", ad.softplus, { sample: "nonzero", domain: [-4, 4] }),
  ...unary("gelu", (x) => ad.gelu(x), { domain: [-3, 3] }, "erf form"),
  ...unary("gelu", (x) => ad.gelu(x, { approximate: "tanh" }), { domain: [-3, 3] }, "tanh form"),
  ...unary("erf", ad.erf),
  // Methods route to the same ops.
  { name: "exp", label: "method chain x.exp().sin().tanh()", fn: (x) => x.exp().sin().tanh(), shapes: [[4]] },

  // ---- binary elementwise (broadcasting) ---------------------------------------------------
  ...binary("add", ad.add),
  ...binary("sub", ad.sub),
  ...binary("mul", ad.mul),
  ...binary("div", ad.div, {
    domain: [
      [-2, 2],
      [0.5, 2],
    ],
  }),
  ...binary("pow", ad.pow, {
    domain: [
      [0.5, 2],
      [-1.5, 2],
    ],
  }),
  ...binary("maximum", ad.maximum, { sample: "distinct" }),
  ...binary("minimum", ad.minimum, { sample: "distinct" }),
  ...binary("atan2", ad.atan2, { sample: "nonzero" }),
  // A shape generator: a random rank-1..3 shape (dims 1..3), broadcast against its last axis.
  {
    name: "mul",
    label: "generated shape x its trailing axis",
    fn: (x, y) => ad.mul(x!, y!),
    shapes: (rng) => {
      const s = Array.from({ length: 1 + Math.floor(rng() * 3) }, () => 1 + Math.floor(rng() * 3));
      return [s, s.slice(-1)];
    },
  },
  // A JS number operand (weakly typed).
  { name: "add", label: "x + 2.5 (number)", fn: (x) => ad.add(x, 2.5), shapes: [[3]] },
  { name: "div", label: "1 / x (number)", fn: (x) => ad.div(1, x), shapes: [[3]], domain: [0.5, 2] },
  { name: "pow", label: "x ** 3 (number)", fn: (x) => ad.pow(x, 3), shapes: [[2, 2]] },
  { name: "pow", label: "2 ** x (number base)", fn: (x) => ad.pow(2, x), shapes: [[2, 2]] },
  { name: "pow", label: "x ** 0.5 (number)", fn: (x) => ad.pow(x, 0.5), shapes: [[3]], domain: POS },

  // ---- where ------------------------------------------------------------------------------
  {
    name: "where",
    label: "cond [2,3]",
    fn: (a, b) =>
      ad.where(
        ad.tensor([
          [true, false, true],
          [false, false, true],
        ]),
        a!,
        b!,
      ),
    shapes: [
      [2, 3],
      [2, 3],
    ],
  },
  {
    name: "where",
    label: "cond [3,1] broadcasting a [4], b []",
    fn: (a, b) => ad.where(ad.tensor([[true], [false], [true]]), a!, b!),
    shapes: [[4], []],
  },
  {
    name: "where",
    label: "smooth branches where(x > 0, sin x, x^2)",
    fn: (x) => ad.where(ad.greater(x, 0), ad.sin(x), ad.square(x)),
    shapes: [[5]],
    sample: "nonzero",
  },

  // ---- reductions -------------------------------------------------------------------------
  ...reduction("sum", ad.sum),
  ...reduction("mean", ad.mean),
  ...reduction("prod", ad.prod, { domain: [0.5, 1.5] }),
  { name: "prod", label: "odd length 5, mixed signs", fn: (x) => ad.prod(x), shapes: [[5]] },
  { name: "prod", label: "axis=1 length 3", fn: (x) => ad.prod(x, { axis: 1 }), shapes: [[2, 3]] },
  ...reduction("max", ad.max, { sample: "distinct" }),
  ...reduction("min", ad.min, { sample: "distinct" }),
  ...reduction("logsumexp", ad.logsumexp),
  ...reduction("var", ad.var),
  { name: "var", label: "ddof=1", fn: (x) => ad.var(x, { ddof: 1 }), shapes: [[2, 3]] },
  // std is sqrt(var): at zero variance (0-d, size-1 axes) its derivative is IEEE's Inf/NaN.
  ...reduction("std", ad.std, {}, true),
  { name: "std", label: "ddof=1 axis=0", fn: (x) => ad.std(x, { axis: 0, ddof: 1 }), shapes: [[3, 2]] },

  // ---- linear algebra ---------------------------------------------------------------------
  {
    name: "matmul",
    label: "2-D",
    fn: (a, b) => ad.matmul(a!, b!),
    shapes: [
      [3, 4],
      [4, 2],
    ],
  },
  {
    name: "matmul",
    label: "batched",
    fn: (a, b) => ad.matmul(a!, b!),
    shapes: [
      [2, 3, 4],
      [2, 4, 2],
    ],
  },
  {
    name: "matmul",
    label: "batched, broadcasting batch dims",
    fn: (a, b) => ad.matmul(a!, b!),
    shapes: [
      [2, 1, 2, 3],
      [3, 3, 2],
    ],
  },
  {
    name: "matmul",
    label: "3-D x 2-D",
    fn: (a, b) => ad.matmul(a!, b!),
    shapes: [
      [2, 2, 3],
      [3, 2],
    ],
  },
  { name: "matmul", label: "1-D x 2-D", fn: (a, b) => ad.matmul(a!, b!), shapes: [[4], [4, 3]] },
  { name: "matmul", label: "2-D x 1-D", fn: (a, b) => ad.matmul(a!, b!), shapes: [[3, 4], [4]] },
  { name: "matmul", label: "1-D x 1-D", fn: (a, b) => ad.matmul(a!, b!), shapes: [[4], [4]] },
  { name: "matmul", label: "1-D x 3-D", fn: (a, b) => ad.matmul(a!, b!), shapes: [[3], [2, 3, 2]] },
  {
    name: "matmul",
    label: "method",
    fn: (a, b) => a!.matmul(b!),
    shapes: [
      [1, 2],
      [2, 1],
    ],
  },
  { name: "dot", label: "1-D . 1-D", fn: (a, b) => ad.dot(a!, b!), shapes: [[5], [5]] },
  {
    name: "dot",
    label: "2-D . 2-D",
    fn: (a, b) => ad.dot(a!, b!),
    shapes: [
      [2, 3],
      [3, 2],
    ],
  },
  {
    name: "dot",
    label: "2-D . 3-D",
    fn: (a, b) => ad.dot(a!, b!),
    shapes: [
      [2, 3],
      [2, 3, 2],
    ],
  },
  { name: "dot", label: "0-d . 2-D", fn: (a, b) => ad.dot(a!, b!), shapes: [[], [2, 3]] },
  { name: "outer", label: "[3] x [4]", fn: (a, b) => ad.outer(a!, b!), shapes: [[3], [4]] },
  { name: "outer", label: "[2,2] x [] (flattened)", fn: (a, b) => ad.outer(a!, b!), shapes: [[2, 2], []] },
  {
    name: "einsum",
    label: "ij,jk->ik",
    fn: (a, b) => ad.einsum("ij,jk->ik", a!, b!),
    shapes: [
      [2, 3],
      [3, 4],
    ],
  },
  {
    name: "einsum",
    label: "bij,bjk->bik",
    fn: (a, b) => ad.einsum("bij,bjk->bik", a!, b!),
    shapes: [
      [2, 2, 3],
      [2, 3, 2],
    ],
  },
  { name: "einsum", label: "ii->i", fn: (a) => ad.einsum("ii->i", a!), shapes: [[3, 3]] },
  { name: "einsum", label: "ij->", fn: (a) => ad.einsum("ij->", a!), shapes: [[2, 3]] },
  { name: "einsum", label: "i,i->", fn: (a, b) => ad.einsum("i,i->", a!, b!), shapes: [[4], [4]] },
  { name: "einsum", label: "ij,j->i", fn: (a, b) => ad.einsum("ij,j->i", a!, b!), shapes: [[3, 4], [4]] },
  { name: "einsum", label: "ij->ji", fn: (a) => ad.einsum("ij->ji", a!), shapes: [[2, 3]] },
  {
    name: "einsum",
    label: "ij,jk,kl->il (three operands)",
    fn: (a, b, c) => ad.einsum("ij,jk,kl->il", a!, b!, c!),
    shapes: [
      [2, 3],
      [3, 2],
      [2, 2],
    ],
  },
  {
    name: "einsum",
    label: "i,j->ij (implicit ij)",
    fn: (a, b) => ad.einsum("i,j", a!, b!),
    shapes: [[2], [3]],
  },

  // Large enough for gradcheck's random-direction (probe) path instead of the dense Jacobian.
  {
    name: "matmul",
    label: "larger (random-direction check)",
    fn: (a, b) => ad.matmul(a!, b!),
    shapes: [
      [6, 8],
      [8, 7],
    ],
  },
  // ---- shape ------------------------------------------------------------------------------
  { name: "reshape", label: "[2,3,4] -> [6,4]", fn: (x) => ad.reshape(x, [6, 4]), shapes: [[2, 3, 4]] },
  { name: "reshape", label: "[3,4] -> [-1]", fn: (x) => ad.reshape(x, [-1]), shapes: [[3, 4]] },
  { name: "reshape", label: "[] -> [1,1]", fn: (x) => ad.reshape(x, [1, 1]), shapes: [[]] },
  { name: "reshape", label: "[1] -> []", fn: (x) => ad.reshape(x, []), shapes: [[1]] },
  { name: "transpose", label: "default (reverse)", fn: (x) => ad.transpose(x), shapes: [[2, 3, 4]] },
  { name: "transpose", label: "axes=[1,0,2]", fn: (x) => ad.transpose(x, [1, 0, 2]), shapes: [[2, 3, 4]] },
  { name: "transpose", label: "axes=[-1,0,1]", fn: (x) => ad.transpose(x, [-1, 0, 1]), shapes: [[2, 3, 4]] },
  { name: "expandDims", label: "[3] axis=0", fn: (x) => ad.expandDims(x, 0), shapes: [[3]] },
  { name: "expandDims", label: "[2,3] axis=-1", fn: (x) => ad.expandDims(x, -1), shapes: [[2, 3]] },
  { name: "expandDims", label: "[] axis=0", fn: (x) => ad.expandDims(x, 0), shapes: [[]] },
  { name: "expandDims", label: "[2,3] axes=[0,2]", fn: (x) => ad.expandDims(x, [0, 2]), shapes: [[2, 3]] },
  { name: "squeeze", label: "[1,3,1] all", fn: (x) => ad.squeeze(x), shapes: [[1, 3, 1]] },
  { name: "squeeze", label: "[1,3,1] axis=0", fn: (x) => ad.squeeze(x, 0), shapes: [[1, 3, 1]] },
  { name: "squeeze", label: "[1] -> []", fn: (x) => ad.squeeze(x), shapes: [[1]] },
  { name: "broadcastTo", label: "[3] -> [2,3]", fn: (x) => ad.broadcastTo(x, [2, 3]), shapes: [[3]] },
  { name: "broadcastTo", label: "[3,1] -> [3,4]", fn: (x) => ad.broadcastTo(x, [3, 4]), shapes: [[3, 1]] },
  { name: "broadcastTo", label: "[] -> [2,2]", fn: (x) => ad.broadcastTo(x, [2, 2]), shapes: [[]] },
  { name: "broadcastTo", label: "[1] -> [2,1,3]", fn: (x) => ad.broadcastTo(x, [2, 1, 3]), shapes: [[1]] },
  {
    name: "concat",
    label: "axis=0",
    fn: (a, b) => ad.concat([a!, b!]),
    shapes: [
      [2, 3],
      [1, 3],
    ],
  },
  {
    name: "concat",
    label: "three, axis=1",
    fn: (a, b, c) => ad.concat([a!, b!, c!], 1),
    shapes: [
      [2, 1],
      [2, 3],
      [2, 2],
    ],
  },
  { name: "concat", label: "axis=-1", fn: (a, b) => ad.concat([a!, b!], -1), shapes: [[3], [2]] },
  { name: "concat", label: "same tensor twice", fn: (a) => ad.concat([a!, ad.sin(a!)]), shapes: [[3]] },
  {
    name: "stack",
    label: "axis=0",
    fn: (a, b) => ad.stack([a!, b!]),
    shapes: [
      [2, 3],
      [2, 3],
    ],
  },
  { name: "stack", label: "axis=-1", fn: (a, b) => ad.stack([a!, b!], -1), shapes: [[3], [3]] },
  { name: "stack", label: "0-d scalars", fn: (a, b, c) => ad.stack([a!, b!, c!]), shapes: [[], [], []] },
  { name: "split", label: "3 equal parts, take [1]", fn: (x) => ad.split(x, 3)[1]!, shapes: [[6, 2]] },
  { name: "split", label: "at [1,3], take [2]", fn: (x) => ad.split(x, [1, 3])[2]!, shapes: [[5]] },
  { name: "split", label: "axis=1, take [0]", fn: (x) => ad.split(x, 2, 1)[0]!, shapes: [[2, 4]] },
  {
    name: "split",
    label: "all parts recombined",
    fn: (x) => {
      const [a, b] = ad.split(x, 2);
      return ad.mul(a!, b!);
    },
    shapes: [[4, 2]],
  },
  { name: "slice", label: "begin/size", fn: (x) => ad.slice(x, [1, 0], [2, 3]), shapes: [[3, 4]] },
  {
    name: "slice",
    label: "negative begin, size -1",
    fn: (x) => ad.slice(x, [-2, 1], [-1, -1]),
    shapes: [[4, 3]],
  },
  { name: "slice", label: "size omitted", fn: (x) => ad.slice(x, [2]), shapes: [[5]] },
  { name: "flip", label: "all axes", fn: (x) => ad.flip(x), shapes: [[2, 3]] },
  { name: "flip", label: "axis=1", fn: (x) => ad.flip(x, 1), shapes: [[2, 3, 2]] },
  {
    name: "pad",
    label: "[[1,2],[0,1]]",
    fn: (x) =>
      ad.pad(x, [
        [1, 2],
        [0, 1],
      ]),
    shapes: [[2, 3]],
  },
  {
    name: "pad",
    label: "one pair for all axes, value 1.5",
    fn: (x) => ad.pad(x, [1, 1], 1.5),
    shapes: [[2, 2]],
  },
  {
    name: "take",
    label: "flattened, repeated indices",
    fn: (x) => ad.take(x, [4, 0, 4, 2]),
    shapes: [[2, 3]],
  },
  { name: "take", label: "axis=1", fn: (x) => ad.take(x, [2, 0], 1), shapes: [[3, 4]] },
  {
    name: "take",
    label: "2-D indices axis=0",
    fn: (x) =>
      ad.take(
        x,
        i32([
          [0, 1],
          [1, 1],
        ]),
        0,
      ),
    shapes: [[3, 2]],
  },
  { name: "take", label: "0-d index", fn: (x) => ad.take(x, 1, 0), shapes: [[3, 2]] },
  {
    name: "gather",
    label: "axis=0, repeated",
    fn: (x) =>
      ad.gather(
        x,
        0,
        i32([
          [0, 2],
          [2, 2],
          [1, 0],
        ]),
      ),
    shapes: [[3, 2]],
  },
  { name: "gather", label: "axis=1", fn: (x) => ad.gather(x, 1, i32([[1], [0], [1]])), shapes: [[3, 2]] },
  {
    name: "scatterAdd",
    label: "axis=0, duplicate indices, wrt x and src",
    fn: (x, src) =>
      ad.scatterAdd(
        x!,
        0,
        i32([
          [0, 1],
          [0, 0],
          [2, 1],
        ]),
        src!,
      ),
    shapes: [
      [3, 2],
      [3, 2],
    ],
  },
  {
    name: "scatterAdd",
    label: "axis=1, index smaller than x",
    fn: (x, src) =>
      ad.scatterAdd(
        x!,
        1,
        i32([
          [3, 3],
          [0, 1],
        ]),
        src!,
      ),
    shapes: [
      [3, 4],
      [2, 2],
    ],
  },
  {
    name: "scatterAdd",
    label: "0-d src",
    fn: (x, src) => ad.scatterAdd(x!, 0, i32([1, 1]), src!),
    shapes: [[3], []],
  },
  { name: "at", label: "at(1)", fn: (x) => x.at(1), shapes: [[3, 4]] },
  { name: "at", label: "at(null, [0, 2])", fn: (x) => x.at(null, [0, 2]), shapes: [[3, 4]] },
  { name: "at", label: "at(-1, 2)", fn: (x) => x.at(-1, 2), shapes: [[3, 4]] },
  { name: "at", label: "at([1]) open range", fn: (x) => x.at([1]), shapes: [[4, 2]] },
  { name: "at", label: "ad.at(x, [-3, -1], 0)", fn: (x) => ad.at(x, [-3, -1], 0), shapes: [[4, 2]] },

  // ---- neural-net functions ---------------------------------------------------------------
  { name: "softmax", label: "axis=-1", fn: (x) => ad.softmax(x), shapes: [[2, 4]] },
  {
    name: "softmax",
    label: "larger (random-direction check)",
    fn: (x) => ad.softmax(x),
    shapes: [[10, 12]],
  },
  { name: "softmax", label: "axis=0", fn: (x) => ad.softmax(x, 0), shapes: [[3, 2]] },
  {
    name: "softmax",
    label: "1-D, large magnitude",
    fn: (x) => ad.softmax(x),
    shapes: [[4]],
    domain: [20, 30],
  },
  { name: "logSoftmax", label: "axis=-1", fn: (x) => ad.logSoftmax(x), shapes: [[2, 4]] },
  { name: "logSoftmax", label: "axis=0", fn: (x) => ad.logSoftmax(x, 0), shapes: [[3, 2]] },
  { name: "normalize", label: "axis=-1", fn: (x) => ad.normalize(x), shapes: [[2, 3]], sample: "nonzero" },
  {
    name: "normalize",
    label: "axis=0",
    fn: (x) => ad.normalize(x, { axis: 0 }),
    shapes: [[3, 2]],
    sample: "nonzero",
  },
  { name: "normalize", label: "1-D", fn: (x) => ad.normalize(x), shapes: [[4]], sample: "nonzero" },
  { name: "linalg.norm", label: "2-norm", fn: (x) => ad.linalg.norm(x), shapes: [[4]], sample: "nonzero" },
  { name: "linalg.norm", label: "fro", fn: (x) => ad.linalg.norm(x), shapes: [[2, 3]], sample: "nonzero" },
  {
    name: "linalg.norm",
    label: "ord=3",
    fn: (x) => ad.linalg.norm(x, { ord: 3 }),
    shapes: [[4]],
    sample: "nonzero",
  },
  {
    name: "linalg.norm",
    label: "ord=1",
    fn: (x) => ad.linalg.norm(x, { ord: 1 }),
    shapes: [[4]],
    sample: "nonzero",
  },
  {
    name: "linalg.norm",
    label: "ord=inf",
    fn: (x) => ad.linalg.norm(x, { ord: Infinity }),
    shapes: [[4]],
    sample: "distinct",
  },
  {
    name: "linalg.norm",
    label: "axis=1 keepdims",
    fn: (x) => ad.linalg.norm(x, { axis: 1, keepdims: true }),
    shapes: [[3, 2]],
    sample: "nonzero",
  },
  {
    name: "linalg.norm",
    label: "matrix ord=1",
    fn: (x) => ad.linalg.norm(x, { ord: 1 }),
    shapes: [[3, 3]],
    sample: "distinct",
  },

  // ---- ad.linalg: decompositions and solves ----------------------------------------------
  {
    name: "linalg.solve",
    label: "vector b",
    fn: (a, b) => ad.linalg.solve(wellConditioned(a!), b!),
    shapes: [[3, 3], [3]],
    ...LINALG,
  },
  {
    name: "linalg.solve",
    label: "batched, matrix b, pivoting",
    fn: (a, b) => ad.linalg.solve(pivoting(a!), b!),
    shapes: [
      [2, 3, 3],
      [2, 3, 2],
    ],
    ...LINALG,
  },
  {
    name: "linalg.solve",
    label: "batch dims broadcast",
    fn: (a, b) => ad.linalg.solve(wellConditioned(a!), b!),
    shapes: [
      [3, 3],
      [2, 3, 2],
    ],
    ...LINALG,
  },
  { name: "linalg.inv", fn: (a) => ad.linalg.inv(wellConditioned(a)), shapes: [[3, 3]], ...LINALG },
  {
    name: "linalg.inv",
    label: "batched, pivoting",
    fn: (a) => ad.linalg.inv(pivoting(a)),
    shapes: [[2, 3, 3]],
    ...LINALG,
  },
  { name: "linalg.det", fn: (a) => ad.linalg.det(wellConditioned(a)), shapes: [[3, 3]], ...LINALG },
  {
    name: "linalg.det",
    label: "batched, pivoting (negative det)",
    fn: (a) => ad.linalg.det(pivoting(a)),
    shapes: [[2, 3, 3]],
    ...LINALG,
  },
  {
    name: "linalg.slogdet",
    label: "logabsdet",
    fn: (a) => ad.linalg.slogdet(wellConditioned(a))[1],
    shapes: [[3, 3]],
    ...LINALG,
  },
  {
    name: "linalg.slogdet",
    label: "sign · logabsdet, batched, pivoting",
    fn: (a) => {
      const [sign, logabsdet] = ad.linalg.slogdet(pivoting(a));
      return ad.mul(sign, logabsdet);
    },
    shapes: [[2, 3, 3]],
    ...LINALG,
  },
  { name: "linalg.cholesky", fn: (a) => ad.linalg.cholesky(spd(a)), shapes: [[3, 3]], ...LINALG },
  {
    name: "linalg.eigh",
    label: "eigenvalues and eigenvectors",
    fn: (a) => {
      const [w, v] = ad.linalg.eigh(a);
      return ad.concat([w, ad.reshape(v, [-1])]);
    },
    shapes: [[3, 3]],
    ...LINALG,
  },
  {
    name: "linalg.eigh",
    label: "batched, eigenvalues",
    fn: (a) => ad.linalg.eigh(a)[0],
    shapes: [[2, 3, 3]],
    ...LINALG,
  },
  {
    name: "linalg.cholesky",
    label: "batched, upper",
    fn: (a) => ad.linalg.cholesky(spd(a), { upper: true }),
    shapes: [[2, 3, 3]],
    ...LINALG,
  },
  {
    name: "linalg.cholesky",
    label: "non-symmetric input (its symmetric part is factored)",
    fn: (a) => ad.linalg.cholesky(ad.add(a, ad.mul(4, ad.eye(3, { dtype: a.dtype })))),
    shapes: [[3, 3]],
    ...LINALG,
  },
  {
    name: "linalg.cholesky",
    label: "symmetrizeInput: false (lower triangle read)",
    fn: (a) =>
      ad.linalg.cholesky(ad.add(a, ad.mul(4, ad.eye(3, { dtype: a.dtype }))), { symmetrizeInput: false }),
    shapes: [[3, 3]],
    ...LINALG,
  },
  {
    name: "linalg.triangularSolve",
    label: "lower, matrix b",
    fn: (a, b) => ad.linalg.triangularSolve(wellConditioned(a!), b!, { lower: true }),
    shapes: [
      [3, 3],
      [3, 2],
    ],
    ...LINALG,
  },
  {
    name: "linalg.triangularSolve",
    label: "upper, transposeA, batched vector b",
    fn: (a, b) => ad.linalg.triangularSolve(wellConditioned(a!), b!, { transposeA: true }),
    shapes: [
      [2, 3, 3],
      [2, 3],
    ],
    ...LINALG,
  },
  {
    name: "linalg.triangularSolve",
    label: "unitDiagonal, right side, broadcast batch",
    fn: (a, b) => ad.linalg.triangularSolve(a!, b!, { lower: true, unitDiagonal: true, leftSide: false }),
    shapes: [
      [3, 3],
      [2, 2, 3],
    ],
    ...LINALG,
  },
  {
    name: "linalg.luFactor",
    label: "pivoting",
    fn: (a) => ad.linalg.luFactor(pivoting(a)).lu,
    shapes: [[3, 3]],
    ...LINALG,
  },
  {
    name: "linalg.luFactor",
    label: "batched",
    fn: (a) => ad.linalg.luFactor(wellConditioned(a)).lu,
    shapes: [[2, 3, 3]],
    ...LINALG,
  },

  // ---- dtype conversion -------------------------------------------------------------------
  // gradcheck works in float64, so round-trip through float32: the float32 -> float64 cast is on
  // the path; float32 rounding (~6e-8) needs a larger difference step.
  {
    name: "astype",
    label: "float64 -> float32 -> float64",
    fn: (x) => ad.astype(ad.astype(x, "float32"), "float64"),
    shapes: [[2, 3]],
    eps: 1e-3,
    atol: 1e-4,
  },
  {
    name: "astype",
    label: "float32 -> float64 inside a computation",
    fn: (x) => ad.mul(ad.astype(ad.astype(x, "float32"), "float64"), x),
    shapes: [[3]],
    eps: 1e-3,
    atol: 1e-3,
  },
];

/** Ops with derivative identically zero (where defined); checked for exactly-zero tangents. */
export interface ZeroSpec {
  name: string;
  fn: (x: ad.Tensor) => ad.Tensor;
}

export const zeroDerivativeSpecs: readonly ZeroSpec[] = [
  { name: "sign", fn: ad.sign },
  { name: "floor", fn: ad.floor },
  { name: "ceil", fn: ad.ceil },
  { name: "round", fn: ad.round },
  { name: "stopGradient", fn: ad.stopGradient },
  { name: "equal", fn: (x) => ad.equal(x, 0.5) },
  { name: "notEqual", fn: (x) => ad.notEqual(x, 0.5) },
  { name: "less", fn: (x) => ad.less(x, 0) },
  { name: "lessEqual", fn: (x) => ad.lessEqual(x, 0) },
  { name: "greater", fn: (x) => ad.greater(x, 0) },
  { name: "greaterEqual", fn: (x) => ad.greaterEqual(x, 0) },
  { name: "isnan", fn: ad.isnan },
  { name: "isfinite", fn: ad.isfinite },
  { name: "argmax", fn: (x) => ad.argmax(x) },
  { name: "argmin", fn: (x) => ad.argmin(x, { axis: 0 }) },
];

/** Every op the table must cover (checked by the test). */
export const REQUIRED_OPS: readonly string[] = [
  ..."neg exp log log1p expm1 sqrt rsqrt square reciprocal abs sign floor ceil round".split(" "),
  ..."sin cos tan asin acos atan sinh cosh tanh sigmoid relu softplus gelu erf".split(" "),
  ..."add sub mul div pow maximum minimum atan2 where".split(" "),
  ..."sum mean prod max min logsumexp var std".split(" "),
  ..."matmul dot outer einsum".split(" "),
  ..."reshape transpose expandDims squeeze broadcastTo concat stack split slice flip pad".split(" "),
  ..."take gather scatterAdd at softmax logSoftmax normalize astype".split(" "),
  ..."linalg.solve linalg.inv linalg.det linalg.slogdet linalg.cholesky linalg.triangularSolve linalg.norm".split(
    " ",
  ),
];
