/**
 * @file jit's compiled kernels: whole scalar programs (forward and backward) become one
 * `fused_program` compiled to JS; chains over arrays become `fused` kernels. Checked bit for bit
 * against the unfused eager operations for every elementwise kernel and dtype (special values
 * included), with code generation on and off (the interpreter a strict CSP falls back to) and
 * with one-element programs compiled to wasm, for chains deep enough to be split into several
 * generated functions.
 */

import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import * as ad from "adjoint";
import { type FusedProgram, scalarKernelTier, setFusedCodegen } from "../dist/backend/kernel.js";
import { sameBits } from "./helpers.js";

const f64 = (x: number | number[]) => ad.tensor(x, { dtype: "float64" });
const chain = (steps: number) => (v: ad.Tensor) => {
  let y = v;
  for (let i = 0; i < steps; i++) y = ad.add(ad.mul(ad.sin(y), 1.0001), 0.1);
  return y;
};
const names = (p: ad.Program) => p.eqns.map((e) => e.prim.name);
/** Bitwise equality of two tensors' values (NaN equal to NaN, -0 distinct from 0). */
afterEach(() => setFusedCodegen(null));

const rnd = (seed: number, shape: number[], dtype: "float32" | "float64" = "float32") =>
  ad.random.normal(ad.random.key(seed), shape, { dtype });

describe("jit: scalar programs compile to one kernel", () => {
  for (const codegen of [true, false, "wasm"] as const) {
    test(`a 600-op chain and its gradient: one fused_program each, bit-identical (codegen ${codegen})`, () => {
      setFusedCodegen(codegen);
      const f = chain(200);
      const x = f64(0.5);
      const jf = ad.jit(f);
      const jg = ad.jit(ad.grad(f));
      assert.deepEqual(names(jf.lower(x)), ["fused_program"]);
      assert.deepEqual(names(jg.lower(x)), ["fused_program"]);
      sameBits(jf(x), f(x));
      sameBits(jg(x), ad.grad(f)(x) as ad.Tensor);
      // float32 rounds at every node, as the eager kernels do
      const x32 = ad.scalar(0.5);
      sameBits(jf(x32), f(x32));
      sameBits(jg(x32), ad.grad(f)(x32) as ad.Tensor);
    });
  }

  test("by default a kernel is interpreted for its first calls, then generated: the same bits throughout", () => {
    const f = chain(100);
    const jg = ad.jit(ad.grad(f));
    const want = ad.grad(f)(f64(0.25)) as ad.Tensor;
    for (let i = 0; i < 6; i++) sameBits(jg(f64(0.25)), want);
    const jh = ad.jit(f);
    const x = ad.tensor([0.5, 1.5, -2]);
    for (let i = 0; i < 6; i++) sameBits(jh(x), f(x));
  });

  test("by default a scalar kernel is interpreted once, then compiled to wasm (f32/f64) or JS (others)", () => {
    const f = chain(50);
    for (const [dtype, later] of [
      ["float64", "wasm"],
      ["float32", "wasm"],
      ["float16", "js"],
    ] as const) {
      const x = ad.scalar(0.25, { dtype });
      const jg = ad.jit(ad.grad(f));
      const want = ad.grad(f)(x) as ad.Tensor;
      const prog = (jg.lower(x).eqns[0]!.params as { prog: FusedProgram }).prog;
      sameBits(jg(x), want);
      assert.equal(scalarKernelTier(prog), "interpreter", dtype);
      for (let i = 0; i < 4; i++) sameBits(jg(x), want);
      assert.equal(scalarKernelTier(prog), later, dtype);
    }
  });

  test("wasm kernels: select, comparisons, logic and max/min over special values, many inputs and results", () => {
    setFusedCodegen("wasm");
    const special = [0, -0, 1, -1, 0.5, -2.5, Number.NaN, Infinity, -Infinity];
    const f = (a: ad.Tensor, b: ad.Tensor, c: ad.Tensor) => {
      const lt = ad.less(a, b);
      const both = ad.logicalAnd(lt, ad.notEqual(b, c));
      const either = ad.logicalOr(ad.logicalNot(lt), ad.greaterEqual(c, a));
      return [
        ad.where(both, ad.maximum(a, c), ad.minimum(b, c)),
        ad.where(either, ad.sign(ad.sub(a, c)), ad.abs(b)),
        ad.astype(ad.mul(a, b), "bool"),
        ad.astype(ad.add(ad.astype(c, "float32"), 1), "float64"),
      ];
    };
    const jf = ad.jit(f);
    for (const a of special)
      for (const b of special.slice(3))
        for (const c of [0, Number.NaN, -1.5]) {
          const args = [a, b, c].map((v) => f64(v));
          const got = jf(args[0]!, args[1]!, args[2]!);
          const want = f(args[0]!, args[1]!, args[2]!);
          got.forEach((t, i) => {
            sameBits(t, want[i]!);
          });
        }
    const prog = (jf.lower(f64(1), f64(2), f64(3)).eqns[0]!.params as { prog: FusedProgram }).prog;
    assert.equal(scalarKernelTier(prog), "wasm");
  });

  test("several results from shared values; programs of thousands of operations print compactly", () => {
    const g = ad.jit((a: ad.Tensor, b: ad.Tensor) => {
      const s = ad.sin(ad.mul(a, b));
      return [ad.add(s, 1), ad.mul(s, s), ad.exp(ad.neg(s))];
    });
    const a = f64(0.3);
    const b = f64(-2.5);
    const eager = [
      ad.add(ad.sin(ad.mul(a, b)), 1),
      ad.square(ad.sin(ad.mul(a, b))),
      ad.exp(ad.neg(ad.sin(ad.mul(a, b)))),
    ];
    g(a, b).forEach((t, i) => {
      sameBits(t, eager[i]!);
    });
    const p = g.lower(a, b);
    assert.deepEqual(names(p), ["fused_program"]);
    assert.equal(p.eqns[0]!.outs.length, 3);
    const big = ad
      .jit(ad.grad(chain(1000)))
      .lower(f64(0.5))
      .toString();
    assert.ok(big.length < 2000, `printed length ${big.length}`);
  });

  test("a captured scalar changed in place is read at every call, never baked in", () => {
    const lr = ad.scalar(0.5, { dtype: "float64" });
    const step = ad.jit((w: ad.Tensor) => ad.sub(w, ad.mul(lr, ad.sin(w))));
    const w = f64(1);
    sameBits(step(w), f64(1 - 0.5 * Math.sin(1)));
    lr.fill_(0.25);
    sameBits(step(w), f64(1 - 0.25 * Math.sin(1)));
  });

  test("an operation that needs a run's value cuts it; independent ones move ahead", () => {
    const h = ad.jit((x: ad.Tensor, v: ad.Tensor) => {
      const a = ad.mul(ad.sin(x), 2);
      const s = ad.sum(ad.mul(v, a)); // reads a: the scalar run ends before it
      return ad.add(ad.cos(s), ad.mul(a, a));
    });
    const x = f64(0.7);
    const v = f64([1, 2, 3]);
    const plain = (x: ad.Tensor, v: ad.Tensor) => {
      const a = ad.mul(ad.sin(x), 2);
      return ad.add(ad.cos(ad.sum(ad.mul(v, a))), ad.mul(a, a));
    };
    sameBits(h(x, v), plain(x, v));
    const p = h.lower(x, v);
    p.typecheck();
    assert.ok(names(p).includes("fused_program"));
  });
});

describe("jit: every elementwise kernel, fused, rounds as the unfused one", () => {
  const special = [0, -0, 1, -1, 0.5, -2.5, 3.75, 1e-8, 123456.789, Number.NaN, Infinity, -Infinity];
  const ints = [0, 1, -1, 7, -13, 2147483647, -2147483648, 46341];
  const unary: [string, (x: ad.Tensor) => ad.Tensor, boolean][] = [
    ["neg", ad.neg, true],
    ["exp", ad.exp, false],
    ["log", ad.log, false],
    ["log1p", ad.log1p, false],
    ["expm1", ad.expm1, false],
    ["sqrt", ad.sqrt, false],
    ["sin", ad.sin, false],
    ["cos", ad.cos, false],
    ["tan", ad.tan, false],
    ["asin", ad.asin, false],
    ["acos", ad.acos, false],
    ["atan", ad.atan, false],
    ["sinh", ad.sinh, false],
    ["cosh", ad.cosh, false],
    ["tanh", ad.tanh, false],
    ["sigmoid", ad.sigmoid, false],
    ["erf", ad.erf, false],
    ["abs", ad.abs, true],
    ["sign", ad.sign, true],
    ["floor", ad.floor, true],
    ["ceil", ad.ceil, true],
    ["round", ad.round, true],
  ];
  const binary: [string, (x: ad.Tensor, y: ad.Tensor) => ad.Tensor, boolean][] = [
    ["add", ad.add, true],
    ["sub", ad.sub, true],
    ["mul", ad.mul, true],
    ["div", ad.div, false],
    ["pow", ad.pow, false],
    ["maximum", ad.maximum, true],
    ["minimum", ad.minimum, true],
    ["atan2", ad.atan2, false],
    ["less", ad.less, true],
    ["equal", ad.equal, true],
    ["greaterEqual", ad.greaterEqual, true],
  ];
  const floatTypes = ["float64", "float32", "float16", "bfloat16"] as const;

  for (const codegen of [true, false, "wasm"] as const) {
    test(`unary kernels, arrays and scalars, every float dtype and int32 (codegen ${codegen})`, () => {
      setFusedCodegen(codegen);
      for (const [name, op, intOk] of unary)
        for (const dtype of [...floatTypes, ...(intOk ? (["int32"] as const) : [])]) {
          const vals = dtype === "int32" ? ints : special;
          // Two ops per element so the pair fuses: op(x), then a negation (exact; a multiply by 1
          // would be simplified away).
          const f = (x: ad.Tensor) => ad.neg(op(x));
          const x = ad.tensor(vals, { dtype });
          sameBits(ad.jit(f)(x), f(x));
          for (const v of vals.slice(0, 6)) {
            const s = ad.scalar(v, { dtype });
            sameBits(ad.jit(f)(s), f(s));
          }
          assert.ok(names(ad.jit(f).lower(x)).includes("fused_program"), name);
        }
    });

    test(`binary kernels and select over pairs of special values (codegen ${codegen})`, () => {
      setFusedCodegen(codegen);
      for (const [name, op, intOk] of binary)
        for (const dtype of [...floatTypes, ...(intOk ? (["int32"] as const) : [])]) {
          const vals = dtype === "int32" ? ints : special;
          const xs = vals.flatMap((a) => vals.map(() => a));
          const ys = vals.flatMap(() => vals);
          const f = (x: ad.Tensor, y: ad.Tensor) => {
            const r = op(ad.neg(x), y);
            return r.dtype === "bool" ? ad.where(r, x, y) : ad.neg(r);
          };
          const x = ad.tensor(xs, { dtype });
          const y = ad.tensor(ys, { dtype });
          sameBits(ad.jit(f)(x, y), f(x, y));
          const s = ad.scalar(vals[3]!, { dtype });
          const t = ad.scalar(vals[5]!, { dtype });
          sameBits(ad.jit(f)(s, t), f(s, t));
          assert.ok(names(ad.jit(f).lower(x, y)).includes("fused_program"), name);
        }
    });
  }

  test("casts between every pair of dtypes inside a fused chain", () => {
    const types = ["float64", "float32", "float16", "bfloat16", "int32", "bool"] as const;
    for (const from of types)
      for (const to of types) {
        const f = (x: ad.Tensor) => ad.astype(ad.mul(x, ad.ones([], { dtype: from })), to);
        const vals = from === "bool" ? [true, false, true] : from === "int32" ? ints : special;
        const x = ad.tensor(vals, { dtype: from });
        sameBits(ad.jit(f)(x), f(x));
      }
  });

  test("a chain over arrays long enough to be split into several generated functions", () => {
    const f = chain(300); // 900 operations in one fused kernel
    const x = ad.tensor([0.1, -0.7, 2, 5]);
    const p = ad.jit(f).lower(x);
    assert.deepEqual(names(p), ["fused_program"]);
    sameBits(ad.jit(f)(x), f(x));
    setFusedCodegen(false);
    sameBits(ad.jit(f)(x), f(x));
  });
});

describe("jit: elementwise DAGs over arrays, movement read through views", () => {
  const rosen = (x: ad.Tensor) => {
    const n = x.shape[0]!;
    const head = ad.slice(x, [0], [n - 1]);
    const tail = ad.slice(x, [1], [n - 1]);
    return ad.sum(ad.add(ad.mul(100, ad.square(ad.sub(tail, ad.square(head)))), ad.square(ad.sub(1, head))));
  };

  for (const codegen of [true, false] as const) {
    test(`Rosenbrock's gradient: two kernels, slices and pads read in place, bit-identical (codegen ${codegen})`, () => {
      setFusedCodegen(codegen);
      for (const dtype of ["float32", "float64"] as const) {
        const x = ad.tensor(
          Array.from({ length: 40 }, (_, i) => 1 + Math.sin(i) / 2),
          { dtype },
        );
        const jg = ad.jit(ad.grad(rosen));
        const p = jg.lower(x);
        assert.deepEqual(names(p), ["fused_program", "fused_program"], p.toString());
        sameBits(jg(x), ad.grad(rosen)(x) as ad.Tensor);
        // the loss and its gradient together: several results from one kernel
        const jvg = ad.jit(ad.valueAndGrad(rosen));
        const [v, g] = jvg(x) as [ad.Tensor, ad.Tensor];
        const [v0, g0] = ad.valueAndGrad(rosen)(x) as [ad.Tensor, ad.Tensor];
        sameBits(v, v0);
        sameBits(g, g0);
      }
    });

    test(`broadcast operands along leading, trailing and middle axes are read in place (codegen ${codegen})`, () => {
      setFusedCodegen(codegen);
      const r = (shape: number[], seed: number) => ad.random.normal(ad.random.key(seed), shape);
      const cases: [number[], number[]][] = [
        [[4, 3], [3]], // a bias
        [
          [4, 3],
          [4, 1],
        ], // a column
        [
          [2, 3, 4],
          [3, 1],
        ], // a middle block
        [
          [2, 3, 4],
          [1, 1, 4],
        ],
        [[5], [1]],
        [
          [2, 3, 4],
          [2, 1, 4],
        ], // two blocks: broadcast by the primitive, not a view
      ];
      for (const [big, small] of cases) {
        const f = (a: ad.Tensor, b: ad.Tensor) => ad.mul(ad.tanh(ad.add(a, b)), ad.sub(b, 1));
        const a = r(big, 1);
        const b = r(small, 2);
        sameBits(ad.jit(f)(a, b), f(a, b));
        sameBits(ad.jit(f)(b, a), f(b, a));
        const g = ad.grad((a: ad.Tensor, b: ad.Tensor) => ad.sum(f(a, b)), { argnums: [0, 1] });
        const [ga, gb] = ad.jit(g)(a, b) as ad.Tensor[];
        const [ea, eb] = g(a, b) as ad.Tensor[];
        sameBits(ga!, ea!);
        sameBits(gb!, eb!);
      }
    });

    test(`slices, pads and reshapes: contiguous ones fused, the others kept (codegen ${codegen})`, () => {
      setFusedCodegen(codegen);
      const x = ad.random.normal(ad.random.key(3), [4, 6]);
      const rows = (t: ad.Tensor) => ad.mul(ad.slice(t, [1, 0], [2, 6]), 2).add(1);
      const cols = (t: ad.Tensor) => ad.mul(ad.slice(t, [0, 1], [4, 2]), 2).add(1);
      const padded = (t: ad.Tensor) => ad.exp(ad.pad(ad.sin(t).reshape([24]), [[3, 2]], 0.5)).mul(2);
      const padRows = (t: ad.Tensor) =>
        ad
          .sub(
            ad.pad(t, [
              [1, 1],
              [0, 0],
            ]),
            1,
          )
          .mul(3);
      for (const f of [rows, cols, padded, padRows]) sameBits(ad.jit(f)(x), f(x));
      assert.ok(!names(ad.jit(rows).lower(x)).includes("slice"));
      assert.ok(names(ad.jit(cols).lower(x)).includes("slice"));
      assert.ok(!names(ad.jit(padRows).lower(x)).includes("pad"));
      // a padded int32 and bool value keeps its fill value as the dtype stores it
      const xi = ad.tensor([1, -2, 3], { dtype: "int32" });
      const fi = (t: ad.Tensor) => ad.add(ad.pad(ad.mul(t, 3), [[2, 1]], 7), 1);
      sameBits(ad.jit(fi)(xi), fi(xi));
    });
  }

  test("the wasm backend keeps float32 exp/log/tanh/sigmoid on large arrays as its own SIMD kernels", () => {
    const f = (x: ad.Tensor) => ad.mul(ad.add(ad.tanh(ad.mul(ad.exp(ad.neg(x)), 0.5)), 1), x);
    const big = ad.random.normal(ad.random.key(4), [5000]);
    const small = ad.random.normal(ad.random.key(5), [50]);
    const onWasm = ad.getBackendName() === "wasm";
    const p = ad.jit(f).lower(big);
    assert.equal(names(p).includes("exp") && names(p).includes("tanh"), onWasm, p.toString());
    assert.deepEqual(names(ad.jit(f).lower(small)), ["fused_program"]);
    assert.deepEqual(names(ad.jit(f).lower(ad.astype(big, "float64"))), ["fused_program"]);
    sameBits(ad.jit(f)(big), f(big));
  });
});

describe("jit: transposes feeding products are read by the product's packing", () => {
  for (const dtype of ["float32", "float64"] as const)
    test(`${dtype}: Aᵀ B, A Bᵀ and Aᵀ Bᵀ read their operands as stored, bit-identical to transposing first`, () => {
      // Small (reference loops), matrix-vector shapes, packed products, edges, threaded sizes.
      for (const [m, k, n] of [
        [3, 5, 7],
        [1, 64, 64],
        [64, 64, 1],
        [8, 300, 300],
        [40, 33, 17],
        [200, 150, 260],
        [128, 784, 256],
      ] as const)
        for (const [ta, tb] of [
          [true, false],
          [false, true],
          [true, true],
        ] as const) {
          const a = rnd(1, ta ? [k, m] : [m, k], dtype);
          const b = rnd(2, tb ? [n, k] : [k, n], dtype);
          const f = (x: ad.Tensor, y: ad.Tensor) =>
            ad.matmul(ta ? ad.transpose(x) : x, tb ? ad.transpose(y) : y);
          const j = ad.jit(f);
          const lowered = j.lower(a, b).toString();
          assert.match(lowered, /matmul\[trans/, `${m}x${k}x${n} ${ta} ${tb}`);
          assert.doesNotMatch(lowered, /transpose/);
          sameBits(j(a, b), f(a, b), `${m}x${k}x${n} transA=${ta} transB=${tb}`);
        }
    });

  test("batched products, a transpose also read elsewhere, and an MLP's gradient", () => {
    const a = rnd(3, [4, 30, 20], "float32");
    const b = rnd(4, [4, 30, 25], "float32");
    const swap = (x: ad.Tensor) => ad.transpose(x, [0, 2, 1]);
    const batched = (x: ad.Tensor, y: ad.Tensor) => ad.matmul(swap(x), y);
    sameBits(ad.jit(batched)(a, b), batched(a, b), "batched");
    // The transpose is also returned: it stays, and the product still reads the operand as stored.
    const both = (x: ad.Tensor, y: ad.Tensor) => [ad.matmul(swap(x), y), swap(x)];
    const jb = ad.jit(both);
    assert.match(jb.lower(a, b).toString(), /transpose/);
    const [p1, t1] = jb(a, b) as ad.Tensor[];
    const [p2, t2] = both(a, b) as ad.Tensor[];
    sameBits(p1!, p2!, "product");
    sameBits(t1!, t2!, "transpose");
    const w = rnd(5, [64, 32], "float32");
    const x = rnd(6, [48, 64], "float32");
    const loss = (wt: ad.Tensor) => ad.sum(ad.square(ad.tanh(ad.matmul(x, wt))));
    const g = ad.jit(ad.grad(loss));
    assert.match(g.lower(w).toString(), /matmul\[transA\]/);
    sameBits(g(w), ad.grad(loss)(w), "gradient");
  });
});

describe("jit: elementwise epilogues run over a product as one step", () => {
  const count = (p: ad.Program, name: string) => p.eqns.filter((e) => e.prim.name === name).length;

  for (const dtype of ["float32", "float64"] as const)
    test(`${dtype}: relu(x W + b) is one matmul_epilogue, bit-identical, results never overwritten later`, () => {
      for (const [m, k, n] of [
        [3, 4, 5],
        [1, 300, 300],
        [300, 300, 1],
        [128, 784, 256],
      ] as const) {
        const x = rnd(1, [m, k], dtype);
        const w = rnd(2, [k, n], dtype);
        const b = rnd(3, [n], dtype);
        const f = (x_: ad.Tensor, w_: ad.Tensor, b_: ad.Tensor) => ad.relu(ad.add(ad.matmul(x_, w_), b_));
        const j = ad.jit(f);
        const p = j.lower(x, w, b);
        assert.equal(count(p, "matmul_epilogue"), 1, `${m}x${k}x${n}`);
        assert.equal(count(p, "matmul"), 0);
        const first = j(x, w, b);
        const kept = Array.from(first.data());
        sameBits(first, f(x, w, b), `${m}x${k}x${n}`);
        // A later call (reusing released memory) leaves the first result as it was.
        j(rnd(4, [m, k], dtype), w, b);
        assert.deepEqual(Array.from(first.data()), kept);
      }
    });

  test("a product read elsewhere or returned keeps its own step", () => {
    const x = rnd(5, [64, 48]);
    const w = rnd(6, [48, 40]);
    const returned = ad.jit((a: ad.Tensor, b: ad.Tensor) => {
      const y = ad.matmul(a, b);
      return [y, ad.tanh(ad.mul(y, 2))];
    });
    assert.equal(count(returned.lower(x, w), "matmul_epilogue"), 0);
    const readTwice = ad.jit((a: ad.Tensor, b: ad.Tensor) => {
      const y = ad.matmul(a, b);
      return ad.sum(ad.add(ad.mul(y, 3), ad.sum(y)));
    });
    assert.equal(count(readTwice.lower(x, w), "matmul_epilogue"), 0);
    const [y1, t1] = returned(x, w) as ad.Tensor[];
    sameBits(y1!, ad.matmul(x, w), "product");
    sameBits(t1!, ad.tanh(ad.mul(ad.matmul(x, w), 2)), "tanh");
  });

  test("an MLP's value and gradient: epilogues forward and backward, bit-identical to eager", () => {
    const p = { w1: rnd(7, [64, 48]), b1: rnd(8, [48]), w2: rnd(9, [48, 10]), b2: rnd(10, [10]) };
    const x = rnd(11, [32, 64]);
    const loss = (q: typeof p) => {
      const h = ad.relu(ad.add(ad.matmul(x, q.w1), q.b1));
      return ad.mean(ad.logsumexp(ad.add(ad.matmul(h, q.w2), q.b2), { axis: -1 }));
    };
    const vg = ad.valueAndGrad(loss);
    const j = ad.jit(vg);
    assert.ok(count(j.lower(p), "matmul_epilogue") >= 3);
    const [v1, g1] = j(p) as [ad.Tensor, typeof p];
    const [v2, g2] = vg(p) as [ad.Tensor, typeof p];
    sameBits(v1, v2, "value");
    for (const k of ["w1", "b1", "w2", "b2"] as const) sameBits(g1[k], g2[k], k);
  });
});

describe("jit: epilogue edge cases", () => {
  test("a product also read by a slice or a pad keeps its own step", () => {
    const x = ad.random.normal(ad.random.key(31), [64, 48]);
    const w = ad.random.normal(ad.random.key(32), [48, 40]);
    const f = (a: ad.Tensor, b: ad.Tensor) => {
      const y = ad.matmul(a, b);
      return ad.mul(
        ad.add(y, 1),
        ad.pad(ad.slice(y, [1, 0], [63, 40]), [
          [0, 1],
          [0, 0],
        ]),
      );
    };
    const j = ad.jit(f);
    assert.ok(!j.lower(x, w).eqns.some((e) => e.prim.name === "matmul_epilogue"));
    const want = f(x, w).data();
    const got = j(x, w).data();
    for (let i = 0; i < want.length; i++) assert.ok(Object.is(want[i], got[i]), `element ${i}`);
  });
});
