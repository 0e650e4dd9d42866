/**
 * @file Black-box contract tests for API.md §4 (trace/Program, explain), §5 (gradcheck,
 * gradgradcheck, detectAnomaly/setDetectAnomaly) and §6/§10 (typed errors in the situations the
 * contract names).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { f64, flat, n, type T } from "./contract-helpers.js";

describe("§4 trace → Program", () => {
  const f = (x: T, y: T) => ad.mul(ad.add(x, y), ad.sin(x));

  test("toString prints one line per primitive, `vN = op vA vB`, with shapes and dtypes", () => {
    const p = ad.trace(f)(ad.tensor([1, 2]), ad.tensor([3, 4]));
    const s = p.toString();
    // The contract's `v3 = add v1 v2`, followed by the result's type: `v3 = add v1 v2 : float32[2]`
    assert.match(s, /v3 = add v1 v2 : float32\[2\]/);
    assert.match(s, /v4 = sin v1/);
    assert.match(s, /v5 = mul v3 v4/);
    assert.match(s, /float32/);
    assert.match(s, /\[2\]/);
    const opLines = s.split("\n").filter((l: string) => /= (add|sin|mul)\b/.test(l));
    assert.equal(opLines.length, 3);
  });

  test("program.eqns lists the operations in order", () => {
    const p = ad.trace(f)(ad.tensor([1, 2]), ad.tensor([3, 4]));
    assert.ok(Array.isArray(p.eqns));
    assert.equal(p.eqns.length, 3);
    // the primitive's name, wherever an equation keeps it (JAX: eqn.primitive.name)
    const nameOf = (e: unknown): string => {
      const r = e as Record<string, unknown>;
      const p0 = r["prim"] ?? r["primitive"] ?? r["op"] ?? r["name"];
      return typeof p0 === "string" ? p0 : String((p0 as { name?: string } | undefined)?.name);
    };
    assert.deepEqual(p.eqns.map(nameOf), ["add", "sin", "mul"]);
  });

  test("numbers as arguments trace as float64 scalars", () => {
    const p = ad.trace((x: T) => ad.exp(x))(n(0.5));
    assert.match(p.toString(), /float64|f64/);
    assert.match(p.toString(), /exp/);
  });

  test("toDot and toMermaid draw the graph", () => {
    const p = ad.trace(f)(ad.tensor([1, 2]), ad.tensor([3, 4]));
    const dot = p.toDot();
    assert.match(dot, /digraph/);
    assert.match(dot, /->/);
    assert.match(dot, /sin/);
    const mm = p.toMermaid();
    assert.match(mm, /graph|flowchart/);
    assert.match(mm, /-->/);
    assert.match(mm, /mul/);
  });

  test("trace of a grad shows the backward operations", () => {
    const p = ad.trace(ad.grad((x: T) => ad.sum(ad.sin(x))))(ad.tensor([1, 2]));
    assert.match(p.toString(), /cos/);
  });
});

describe("§4 explain: the textbook trace tables on the seed example", () => {
  // (x1 + x2)·sin(x1) at (1, 2): ∂f/∂x1 = sin 1 + 3 cos 1, ∂f/∂x2 = sin 1
  const f = (x1: T, x2: T) => ad.mul(ad.add(x1, x2), ad.sin(x1));
  const d1 = Math.sin(1) + 3 * Math.cos(1);
  const d2 = Math.sin(1);

  test("toString holds values, tangents and adjoints in forward order", () => {
    const e = ad.explain(f, [1, 2], { tangents: [1, 0] });
    const s = e.toString();
    assert.equal(typeof s, "string");
    // the value 3·sin 1 = 2.5244, the adjoints 2.4623 and 0.8415 appear
    assert.match(s, /2\.524/);
    assert.match(s, /2\.462/);
    assert.match(s, /0\.8415/);
    assert.match(s, /sin/);
    // forward order: the add/sin lines come before the mul line
    const iAdd = s.search(/add|\+/);
    const iMul = s.search(/mul|·|\*/);
    assert.ok(iAdd >= 0 && iMul >= 0);
    // the tangent column (forward mode along x1) shows ∂f/∂x1 too
    const occurrences = s.match(/2\.462/g) ?? [];
    assert.ok(occurrences.length >= 2, "the tangent and the adjoint of x1 both show 2.462…");
    assert.ok(Math.abs(d1 - 2.4623) < 1e-4 && Math.abs(d2 - 0.8415) < 1e-4);
  });

  test("rows: every intermediate in forward order with its value, tangent and adjoint", () => {
    const e = ad.explain(f, [1, 2], { tangents: [1, 0] });
    const rows = e.rows;
    assert.ok(rows.length >= 5, `${rows.length} rows`);
    const val = (v: unknown) => (typeof v === "number" ? v : (v as T).item());
    // the inputs come first, the output last
    assert.equal(val(rows[0]!.value), 1);
    assert.equal(val(rows[1]!.value), 2);
    const last = rows[rows.length - 1]!;
    assert.ok(Math.abs(val(last.value) - 3 * Math.sin(1)) < 1e-6);
    assert.ok(Math.abs(val(last.tangent) - d1) < 1e-6, "the output's tangent along x1 is ∂f/∂x1");
    assert.ok(Math.abs(val(last.adjoint) - 1) < 1e-12, "the output's adjoint is 1");
    assert.ok(Math.abs(val(rows[0]!.adjoint) - d1) < 1e-6, "x1's adjoint is ∂f/∂x1");
    assert.ok(Math.abs(val(rows[1]!.adjoint) - d2) < 1e-6, "x2's adjoint is ∂f/∂x2");
    assert.ok(rows.some((r) => /sin/.test(r.op)));
  });

  test("toMarkdown and toHTML render tables", () => {
    const e = ad.explain(f, [1, 2]);
    const md = e.toMarkdown();
    assert.match(md, /\|.*\|/);
    assert.match(md, /---/);
    assert.match(md, /0\.8415/);
    const html = e.toHTML();
    assert.match(html, /<table/);
    assert.match(html, /<\/table>/);
    assert.match(html, /2\.462/);
  });
});

describe("§5 gradcheck and gradgradcheck", () => {
  test("gradcheck → {ok, maxAbsError, maxRelError, analytic, numeric}, ok for a correct f", () => {
    const r = ad.gradcheck(
      (x: T, y: T) => ad.sum(ad.mul(ad.exp(x), ad.sin(y))),
      [f64([0.1, 0.2]), f64([0.3, 0.4])],
    );
    assert.equal(r.ok, true);
    assert.equal(typeof r.maxAbsError, "number");
    assert.equal(typeof r.maxRelError, "number");
    assert.ok(r.maxAbsError < 1e-6);
    assert.ok(r.analytic !== undefined && r.numeric !== undefined);
  });

  test("gradcheck compares in float64 even for float32 arguments", () => {
    const r = ad.gradcheck((x: T) => ad.sum(ad.tanh(x)), [ad.tensor([0.1, -0.7, 1.3])]);
    assert.equal(r.ok, true);
  });

  test("gradcheck flags a wrong custom rule", () => {
    const bad = ad.customVjp((x: T) => ad.sin(x), {
      fwd: (x: T) => [ad.sin(x), x] as [T, unknown],
      bwd: (x: unknown, ct: T) => [ad.mul(ct, ad.sin(x as T))],
    });
    const r = ad.gradcheck((x: T) => ad.sum(bad(x)), [f64([0.4, 0.9])]);
    assert.equal(r.ok, false);
    assert.ok(r.maxAbsError > 0.1);
    assert.ok(flat(r.analytic).length > 0 && flat(r.numeric).length > 0);
  });

  test("gradgradcheck checks second derivatives; options eps/atol/rtol accepted", () => {
    const ok = ad.gradgradcheck((x: T) => ad.sum(ad.mul(ad.sin(x), ad.exp(x))), [f64([0.2, 0.5])]);
    assert.equal(ok.ok, true);
    assert.ok("maxAbsError" in ok && "maxRelError" in ok);
    // first derivative right, second derivative wrong: customJvp whose tangent rule is right to first
    // order only as a constant (its derivative wrt x is lost)
    const wrong2 = ad.customJvp((x: T) => ad.sin(x), {
      jvp: ([x]: T[], [t]: T[]) => [ad.sin(x!), ad.mul(ad.stopGradient(ad.cos(x!)), t!)] as [T, T],
    });
    assert.equal(ad.gradcheck((x: T) => ad.sum(wrong2(x)), [f64([0.3])]).ok, true);
    assert.equal(ad.gradgradcheck((x: T) => ad.sum(wrong2(x)), [f64([0.3])]).ok, false);
    const loose = ad.gradcheck((x: T) => ad.sum(ad.square(x)), [f64([1])], {
      eps: 1e-4,
      atol: 1e-5,
      rtol: 1e-4,
    });
    assert.equal(loose.ok, true);
  });
});

describe("§5/§10 detectAnomaly and setDetectAnomaly", () => {
  test("detectAnomaly(fn) runs fn at once and returns its result", () => {
    let ran = false;
    const r = ad.detectAnomaly(() => {
      ran = true;
      return 42;
    });
    assert.equal(ran, true);
    assert.equal(r, 42);
  });

  test("a NaN in a forward computation throws AnomalyError naming the primitive and this file's line", () => {
    assert.throws(
      () => ad.detectAnomaly(() => ad.log(ad.tensor([-1, 1]))),
      (e: unknown) => {
        assert.ok(e instanceof ad.AnomalyError, String(e));
        assert.ok(e instanceof ad.AdError);
        assert.match(e.message, /log/);
        assert.match(e.message, /contract-inspect\.test\.ts:\d+/);
        return true;
      },
    );
  });

  test("an Inf in the backward pass throws AnomalyError naming the forward primitive", () => {
    // sqrt'(0) = Inf: the backward of sqrt creates it
    assert.throws(
      () => ad.detectAnomaly(() => ad.grad((x: T) => ad.sum(ad.sqrt(x)))(ad.tensor([0, 1]))),
      (e: unknown) =>
        e instanceof ad.AnomalyError && /sqrt/.test(e.message) && /contract-inspect/.test(e.message),
    );
    // 0·Inf = NaN in the backward of a masked branch (the where trap)
    assert.throws(
      () =>
        ad.detectAnomaly(() =>
          ad.grad((x: T) => ad.sum(ad.where(ad.greater(x, 0), ad.log(x), 0)))(ad.tensor([0, 1])),
        ),
      ad.AnomalyError,
    );
  });

  test("the forward operation's own line is named under grad, backward(), jit(grad), vmap(grad) and jvp", () => {
    /** This file's line that calls `here()`. */
    const here = () =>
      Number(/contract-inspect\.test\.ts:(\d+)/.exec(new Error().stack!.split("\n")[2]!)![1]);
    let line = 0;
    const f = (x: T) => {
      const a = ad.mul(x, 2);
      const [b, l] = [ad.sqrt(a), here()];
      line = l;
      return ad.sum(b);
    };
    const x0 = ad.tensor([0, 1]);
    const runs: [string, () => unknown][] = [
      ["grad", () => ad.grad(f)(x0)],
      ["jit(grad)", () => ad.jit(ad.grad(f))(x0)],
      ["vmap(grad)", () => ad.vmap(ad.grad(f))(ad.tensor([[0, 1]]))],
      ["jvp", () => ad.jvp(f, [x0], [ad.onesLike(x0)])],
      ["backward", () => f(ad.tensor([0, 1], { requiresGrad: true })).backward()],
    ];
    for (const [name, run] of runs)
      assert.throws(
        () => ad.detectAnomaly(run),
        (e: unknown) => {
          assert.ok(e instanceof ad.AnomalyError, `${name}: ${String(e)}`);
          assert.match(e.message, /sqrt/, name);
          assert.match(e.message, new RegExp(`contract-inspect\\.test\\.ts:${line}:`), name);
          return true;
        },
      );
  });

  test("setDetectAnomaly(true) turns checking on globally; false turns it off", () => {
    ad.setDetectAnomaly(true);
    try {
      assert.throws(() => ad.div(ad.tensor([0]), ad.tensor([0])), ad.AnomalyError);
    } finally {
      ad.setDetectAnomaly(false);
    }
    const r = ad.div(ad.tensor([0]), ad.tensor([0]));
    assert.ok(Number.isNaN(r.item()));
  });

  test("NaN inputs are not anomalies by themselves; clean computations pass", () => {
    const r = ad.detectAnomaly(() => ad.grad((x: T) => ad.sum(ad.square(x)))(ad.tensor([1, 2])));
    assert.deepEqual((r as T).toArray(), [2, 4]);
  });
});

describe("§6/§10 errors: typed, exported, in the named situations", () => {
  test("every error class is exported and extends AdError (and Error)", () => {
    for (const C of [
      ad.ShapeError,
      ad.DTypeError,
      ad.TransformError,
      ad.AnomalyError,
      ad.InPlaceError,
      ad.GraphFreedError,
    ]) {
      assert.equal(typeof C, "function");
      const e = new (C as unknown as new (m: string) => Error)("msg");
      assert.ok(e instanceof ad.AdError, C.name);
      assert.ok(e instanceof Error);
      assert.equal(e.name, C.name);
    }
  });

  test("ShapeError: incompatible shapes name both; item(); tangent shape; vmap axis sizes", () => {
    assert.throws(
      () => ad.matmul(ad.zeros([2, 3]), ad.zeros([4, 5])),
      (e: unknown) => e instanceof ad.ShapeError && /3/.test(e.message) && /4/.test(e.message),
    );
    assert.throws(() => ad.ones([3]).item(), ad.ShapeError);
    assert.throws(() => ad.jvp((x: T) => x, [ad.zeros([2])], [ad.zeros([3])]), ad.ShapeError);
    assert.throws(
      () => ad.vmap((a: T, b: T) => ad.add(a, b))(ad.zeros([2, 1]), ad.zeros([3, 1])),
      ad.ShapeError,
    );
    assert.throws(() => ad.concat([ad.zeros([2]), ad.zeros([2, 2])]), ad.ShapeError);
    assert.throws(() => ad.zeros([2, 3]).reshape([5]), ad.ShapeError);
  });

  test("TransformError: grad of non-scalar output names the shape; bad argnums", () => {
    assert.throws(
      () => ad.grad((x: T) => ad.mul(x, x))(ad.zeros([2, 5])),
      (e: unknown) => e instanceof ad.TransformError && /2,\s*5|2 ?x ?5|\[2, ?5\]/.test(e.message),
    );
    assert.throws(() => ad.grad((x: T) => ad.sum(x), { argnums: 1 })(ad.zeros([2])), ad.TransformError);
    assert.throws(() => ad.grad((x: T) => ad.sum(x), { argnums: -5 })(ad.zeros([2])), ad.TransformError);
    assert.throws(() => ad.jacrev((x: T) => x, { argnums: 3 })(ad.zeros([2])), ad.TransformError);
  });

  test("DTypeError: grad wrt int32 or bool", () => {
    assert.throws(() => ad.grad((x: T) => ad.sum(x))(ad.tensor([1, 2], { dtype: "int32" })), ad.DTypeError);
    assert.throws(
      () =>
        ad.grad((x: T, _i: T) => ad.sum(x), { argnums: [0, 1] })(
          ad.zeros([1]),
          ad.tensor([1], { dtype: "int32" }),
        ),
      ad.DTypeError,
    );
    assert.throws(
      () => ad.valueAndGrad((p: { i: T }) => ad.sum(p.i))({ i: ad.tensor([true], { dtype: "bool" }) }),
      ad.DTypeError,
    );
  });

  test("errors are thrown at the call, not deep inside later (no silent wrong answers)", () => {
    assert.throws(() => ad.add(ad.zeros([3]), ad.zeros([4])), ad.ShapeError);
    assert.throws(() => ad.tensor([[1, 2], [3]]), ad.AdError);
    assert.throws(() => ad.take(ad.zeros([3]), ad.tensor([0.5])), ad.AdError);
  });
});
