/**
 * @file `ad.explain` (API §4): the textbook trace tables. The seeds' worked example
 * f(x1, x2) = (x1 + x2)·sin(x1) at (1, 2), forward table (values, tangents with the default seed
 * and with tangents [0, 1], the rules) and reverse table (every adjoint, one `+=` line per
 * contribution); the Markdown, HTML (escaped), Graphviz and Mermaid renderings; tensors, pytree
 * arguments, constants, non-scalar outputs, parameter names; typed errors.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

const f = (x1: number, x2: number) => ad.mul(ad.add(x1, x2), ad.sin(x1));

const num = (v: number | ad.Tensor): number => (typeof v === "number" ? v : v.item());
const arr = (v: number | ad.Tensor): unknown => (typeof v === "number" ? v : v.toArray());
const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} ≉ ${b}`);
const closeArr = (a: unknown, b: readonly number[], tol = 1e-5) => {
  assert.ok(Array.isArray(a), `expected an array, got ${String(a)}`);
  assert.equal(a.length, b.length);
  (a as number[]).forEach((x, i) => close(x, b[i]!, tol));
};

/** The data lines of the text table that follows `heading` (header and rule skipped). */
function tableAfter(text: string, heading: string): string[][] {
  const lines = text.split("\n");
  let i = lines.findIndex((l) => l.startsWith(heading));
  assert.ok(i >= 0, `no "${heading}" in\n${text}`);
  while (!/^-+( +-+)*$/.test(lines[i]!)) i++;
  const out: string[][] = [];
  for (i++; i < lines.length && lines[i]!.trim() !== ""; i++) out.push(lines[i]!.split(/ {2,}/));
  return out;
}

describe("explain: the seeds' worked example (x1 + x2)·sin(x1) at (1, 2)", () => {
  const e = ad.explain(f, [1, 2]);
  const s1 = Math.sin(1);
  const c1 = Math.cos(1);

  test("rows: names, labels, operations, operands, formulas", () => {
    assert.deepEqual(
      e.rows.map((r) => [r.name, r.label, r.op, r.inputs, r.expr]),
      [
        ["v1", "x1", "input", [], "x1"],
        ["v2", "x2", "input", [], "x2"],
        ["v3", null, "add", ["v1", "v2"], "v1 + v2"],
        ["v4", null, "sin", ["v1"], "sin(v1)"],
        ["v5", null, "mul", ["v3", "v4"], "v3 × v4"],
      ],
    );
    assert.equal(e.output, "v5");
  });

  test("values, tangents (default seed ẋ = (1, 0)) and adjoints", () => {
    const want = [
      // value, tangent, adjoint
      [1, 1, 3 * c1 + s1],
      [2, 0, s1],
      [3, 1, s1],
      [s1, c1, 3],
      [3 * s1, 3 * c1 + s1, 1],
    ];
    e.rows.forEach((r, i) => {
      const [v, t, a] = want[i]!;
      close(num(r.value), v!);
      close(num(r.tangent), t!);
      close(num(r.adjoint), a!);
      assert.equal(typeof r.value, "number", "0-d values come back as numbers");
    });
    // The explanation agrees with grad.
    const g = ad.grad(f, { argnums: [0, 1] })(1, 2) as number[];
    close(num(e.rows[0]!.adjoint), g[0]!);
    close(num(e.rows[1]!.adjoint), g[1]!);
  });

  test("tangent rules", () => {
    assert.deepEqual(
      e.rows.map((r) => r.tangentRule),
      ["seed = 1", "seed = 0", "v̇1 + v̇2", "cos(v1)·v̇1", "v3·v̇4 + v4·v̇3"],
    );
  });

  test("tangents [0, 1] give ∂f/∂x2 in the output tangent", () => {
    const e2 = ad.explain(f, [1, 2], { tangents: [0, 1] });
    assert.deepEqual(
      e2.rows.map((r) => num(r.tangent)),
      [0, 1, 1, 0, s1],
    );
    assert.match(e2.toString(), /So v̇5 = 0\.8415 = ∂f\/∂x2\./);
    // Adjoints do not depend on the tangent seed.
    close(num(e2.rows[0]!.adjoint), 3 * c1 + s1);
  });

  test("the forward table of the text output", () => {
    const text = e.toString();
    assert.match(text, /tangent seed v̇1 = 1, v̇2 = 0/);
    assert.deepEqual(tableAfter(text, "Forward mode"), [
      ["v1", "input x1", "1", "1", "seed = 1"],
      ["v2", "input x2", "2", "0", "seed = 0"],
      ["v3", "v1 + v2", "3", "1 + 0 = 1", "v̇1 + v̇2"],
      ["v4", "sin(v1)", "0.8415", "cos(1)·1 = 0.5403", "cos(v1)·v̇1"],
      // 3·cos 1 + sin 1 = 2.46238 (the seeds' 2.463 adds the rounded 1.621 and 0.8415)
      ["v5", "v3 × v4", "2.524", "3·0.5403 + 0.8415·1 = 2.462", "v3·v̇4 + v4·v̇3"],
    ]);
    assert.match(text, /So v̇5 = 2\.462 = ∂f\/∂x1\./);
  });

  test("the reverse tables of the text output", () => {
    const text = e.toString();
    assert.deepEqual(tableAfter(text, "Forward pass"), [
      ["v1 = x1", "1"],
      ["v2 = x2", "2"],
      ["v3 = v1 + v2", "3"],
      ["v4 = sin(v1)", "0.8415"],
      ["v5 = v3 × v4", "2.524"],
    ]);
    assert.match(text, /Backward pass \(initialise v̄5 = 1\):/);
    assert.deepEqual(tableAfter(text, "Backward pass"), [
      ["v̄5", "initialise", "1"],
      ["v̄4", "from v5: v̄5·v3 = 1 × 3", "3"],
      ["v̄3", "from v5: v̄5·v4 = 1 × 0.8415", "0.8415"],
      ["v̄1", "from v4: v̄4·cos(v1) = 3 × 0.5403", "+= 1.621"],
      ["v̄2", "from v3: v̄3·1 = 0.8415", "0.8415"],
      ["v̄1", "from v3: v̄3·1 = 0.8415", "+= 0.8415"],
    ]);
    assert.match(text, /Final adjoints: v̄1 = 1\.621 \+ 0\.8415 = 2\.462 = ∂f\/∂x1, v̄2 = 0\.8415 = ∂f\/∂x2\./);
  });

  test("Markdown: the same tables as pipe tables", () => {
    const md = e.toMarkdown();
    assert.match(md, /^### Forward mode/m);
    assert.match(md, /^### Reverse mode/m);
    assert.match(md, /^\| Variable \| Operation \| Value \| Tangent v̇ \| Rule \|$/m);
    assert.match(md, /^\| v4 \| sin\(v1\) \| 0\.8415 \| cos\(1\)·1 = 0\.5403 \| cos\(v1\)·v̇1 \|$/m);
    assert.match(md, /^\| Variable \| Adjoint update \| Value \|$/m);
    assert.match(md, /^\| v̄1 \| from v4: v̄4·cos\(v1\) = 3 × 0\.5403 \| \+= 1\.621 \|$/m);
    assert.equal(md.match(/^\| --- \|/gm)?.length, 3, "three tables");
  });

  test("HTML: tables with a class per column", () => {
    const html = e.toHTML();
    assert.match(html, /^<section class="adjoint-explain">/);
    assert.match(html, /<\/section>$/);
    assert.equal(html.match(/<table /g)?.length, 3);
    assert.match(html, /<table class="adjoint-explain-forward">/);
    assert.match(html, /<table class="adjoint-explain-reverse">/);
    for (const cls of ["variable", "operation", "value", "tangent", "rule", "update"])
      assert.match(html, new RegExp(`<th class="${cls}">`));
    assert.match(html, /<td class="operation">v3 × v4<\/td><td class="value">2\.524<\/td>/);
    assert.match(html, /<td class="value">\+= 0\.8415<\/td>/);
  });

  test("Graphviz: one node per variable, edges along the data flow", () => {
    const dot = e.toDot();
    assert.match(dot, /^digraph explain \{/);
    assert.match(dot, /\}$/);
    for (const v of ["v1", "v2", "v3", "v4", "v5"]) assert.match(dot, new RegExp(`^  ${v} \\[label=`, "m"));
    assert.match(dot, /v4 \[label="v4 = sin\(v1\)\\nsin\\nvalue 0\.8415\\ntangent 0\.5403\\nadjoint 3"/);
    assert.match(dot, /v1 \[label="v1 \(x1\)\\ninput/);
    const edges = [...dot.matchAll(/^ {2}(\w+) -> (\w+);$/gm)].map((m) => `${m[1]}->${m[2]}`);
    assert.deepEqual(edges.sort(), ["v1->v3", "v1->v4", "v2->v3", "v3->v5", "v4->v5"]);
    assert.match(dot, /v5 \[[^\n]*peripheries=2/);
  });

  test("Mermaid: the same graph as a flowchart", () => {
    const mm = e.toMermaid();
    assert.match(mm, /^flowchart LR\n/);
    assert.match(mm, /v5\["v5 = v3 × v4<br\/>mul<br\/>value 2\.524<br\/>tangent 2\.462<br\/>adjoint 1"\]/);
    const edges = [...mm.matchAll(/^ {2}(\w+) --> (\w+)$/gm)].map((m) => `${m[1]}->${m[2]}`);
    assert.deepEqual(edges.sort(), ["v1->v3", "v1->v4", "v2->v3", "v3->v5", "v4->v5"]);
    assert.match(mm, /class v5 output/);
  });
});

describe("explain: names", () => {
  test("parameter names from the source text", () => {
    const labels = (g: (...a: never[]) => unknown, args: unknown[]) =>
      ad
        .explain(g, args)
        .rows.filter((r) => r.op === "input")
        .map((r) => r.label);
    assert.deepEqual(
      labels((a: number) => ad.exp(a), [1]),
      ["a"],
    );
    const fe = function named(alpha: number, beta = 2) {
      return ad.mul(alpha, beta);
    };
    assert.deepEqual(labels(fe as never, [1, 2]), ["alpha", "beta"]);
    // Destructured or rest parameters fall back to x1, x2, …
    assert.deepEqual(labels(((...xs: number[]) => ad.add(xs[0]!, xs[1]!)) as never, [1, 2]), ["x1", "x2"]);
    assert.deepEqual(labels((({ a }: { a: number }, b: number) => ad.mul(a, b)) as never, [{ a: 1 }, 2]), [
      "x1.a",
      "x2",
    ]);
  });

  test("names option", () => {
    const e = ad.explain(f, [1, 2], { names: ["a", "b"] });
    assert.deepEqual(
      e.rows.slice(0, 2).map((r) => r.label),
      ["a", "b"],
    );
    assert.match(e.toString(), /input a/);
  });

  test("HTML and Markdown escape user text", () => {
    const e = ad.explain(f, [1, 2], { names: ["<b>&", 'q"|'] });
    const html = e.toHTML();
    assert.ok(!html.includes("<b>"), "raw tag leaked");
    assert.match(html, /input &lt;b&gt;&amp;/);
    assert.match(html, /input q&quot;\|/);
    assert.match(e.toMarkdown(), /input q"\\\|/);
    assert.match(e.toMermaid(), /v2\(\["v2 \(q#quot;\|\)/);
    assert.match(e.toDot(), /label="v2 \(q\\"\|\)/);
  });
});

describe("explain: tensors, pytrees, constants, outputs", () => {
  test("a tensor-valued example", () => {
    const x0 = ad.tensor([1, 2], { dtype: "float64" });
    const e = ad.explain((x: ad.Tensor) => ad.add(ad.mul(x, 2), ad.mul(x, x)).sum(), [x0]);
    assert.deepEqual(
      e.rows.map((r) => [r.name, r.op, r.expr]),
      [
        ["v1", "input", "x"],
        ["v2", "mul", "v1 × 2"],
        ["v3", "mul", "v1 × v1"],
        ["v4", "add", "v2 + v3"],
        ["v5", "reduce_sum", "sum(v4; axes=[0])"],
      ],
    );
    assert.deepEqual(arr(e.rows[3]!.value), [3, 8]);
    // Default seed for a tensor-only input: ones.
    assert.deepEqual(arr(e.rows[0]!.tangent), [1, 1]);
    assert.deepEqual(arr(e.rows[3]!.tangent), [4, 6]);
    assert.equal(e.rows[4]!.tangent, 10);
    assert.deepEqual(arr(e.rows[0]!.adjoint), [4, 6]);
    assert.deepEqual(arr(e.rows[3]!.adjoint), [1, 1]);
    assert.equal(e.rows[1]!.tangentRule, "2·v̇1");
    assert.equal(e.rows[2]!.tangentRule, "v1·v̇1 + v1·v̇1");
    const text = e.toString();
    assert.match(text, /v̄5 +initialise +1/);
    assert.match(text, /v̄4 +from v5: broadcast\(v̄5\) +\[1, 1\]/);
    // v1 feeds v3 twice and v2 once: three += lines.
    assert.equal(text.match(/^v̄1 .*\+= /gm)?.length, 3);
    assert.match(text, /v̄1 = \[1, 2\] \+ \[1, 2\] \+ \[2, 2\] = \[4, 6\] = ∂f\/∂x/);
    assert.match(text, /^v4 {2,}v2 \+ v3 {2,}\[3, 8\] {2,}\[4, 6\]/m);
  });

  test("pytree arguments: one input row per leaf, labelled with its path", () => {
    const params = { w: ad.tensor([1, -2], { dtype: "float64" }), b: 0.5 };
    const xs = [ad.tensor([3, 4], { dtype: "float64" })];
    const g = (p: typeof params, x: ad.Tensor[]) => ad.tanh(ad.add(ad.mul(p.w, x[0]!), p.b)).sum();
    const e = ad.explain(g as never, [params, xs]);
    const inputs = e.rows.filter((r) => r.op === "input");
    assert.deepEqual(
      inputs.map((r) => [r.name, r.label]),
      [
        ["v1", "p.w"],
        ["v2", "p.b"],
        ["v3", "x[0]"],
      ],
    );
    // The default seed goes to the first scalar input (p.b).
    assert.deepEqual(arr(inputs[0]!.tangent), [0, 0]);
    assert.equal(inputs[1]!.tangent, 1);
    // Adjoints of the inputs are the gradient.
    const [gp, gx] = ad.grad(g, { argnums: [0, 1] })(params, xs) as [typeof params, ad.Tensor[]];
    closeArr(arr(inputs[0]!.adjoint), gp.w.toArray() as number[], 1e-12);
    close(num(inputs[1]!.adjoint), gp.b);
    closeArr(arr(inputs[2]!.adjoint), gx[0]!.toArray() as number[], 1e-12);
    // ... and the output tangent is ∂f/∂p.b.
    close(num(e.rows[e.rows.length - 1]!.tangent), gp.b);
    // Tangents per argument with the argument's structure.
    const e2 = ad.explain(g as never, [params, xs], {
      tangents: [{ w: ad.tensor([1, 0], { dtype: "float64" }), b: 0 }, [ad.zeros([2], { dtype: "float64" })]],
    });
    close(num(e2.rows[e2.rows.length - 1]!.tangent), (gp.w.toArray() as number[])[0]!);
  });

  test("constants render as their values; non-float arguments pass through", () => {
    const e = ad.explain(
      ((x: number, k: ad.Tensor) => ad.div(ad.pow(x, 3), ad.sum(ad.astype(k, "float64")))) as never,
      [2, ad.tensor([1, 3], { dtype: "int32" })],
    );
    assert.deepEqual(
      e.rows.map((r) => [r.name, r.op, r.inputs, r.expr]),
      [
        ["v1", "input", [], "x"],
        ["v2", "pow", ["v1", "3"], "v1^3"],
        ["v3", "div", ["v2", "4"], "v2 / 4"],
      ],
    );
    close(num(e.rows[2]!.value), 2);
    close(num(e.rows[2]!.tangent), 3);
    close(num(e.rows[0]!.adjoint), 3);
    assert.equal(e.rows[2]!.tangentRule, "v̇2/4");
    // A negative constant is parenthesised; a constant boolean mask is rendered too.
    const r = ad.explain((x: ad.Tensor) => ad.mul(ad.relu(x), -2).sum(), [ad.tensor([-1, 2])]);
    assert.ok(
      r.rows.some((row) => row.expr === "v2 × (-2)"),
      r.rows.map((row) => row.expr).join("; "),
    );
    assert.ok(r.rows.some((row) => row.expr.startsWith("where([false, true], v1, 0)")));
    const dot = r.toDot();
    assert.match(dot, /c\d+ \[label="\[false, true\]", shape=plaintext\]/);
    assert.match(dot, /c\d+ -> v2;/);
  });

  test("a non-scalar output is seeded with ones, and the text says so", () => {
    const e = ad.explain((x: ad.Tensor) => ad.sin(x), [ad.tensor([0, 1], { dtype: "float64" })]);
    const text = e.toString();
    assert.match(text, /initialise v̄2 = \[1, 1\]/);
    assert.match(text, /seeded with ones/);
    assert.ok(!text.includes("∂f/∂x"), "a vector–Jacobian product is not a partial derivative");
    closeArr(arr(e.rows[0]!.adjoint), [1, Math.cos(1)], 1e-12);
  });

  test("several outputs (a pytree) are all seeded", () => {
    const e = ad.explain((x: number) => ({ a: ad.mul(x, 2), b: ad.cos(x) }), [0.5]);
    assert.equal(e.output, "v2, v3");
    assert.match(e.toString(), /initialise v̄2 = 1, v̄3 = 1/);
    close(num(e.rows[0]!.adjoint), 2 - Math.sin(0.5));
  });

  test("an output that is an input, and one that does not depend on the inputs", () => {
    const id = ad.explain((x: number) => x, [3]);
    assert.equal(id.output, "v1");
    assert.equal(id.rows.length, 1);
    assert.equal(id.rows[0]!.adjoint, 1);
    const c = ad.explain((_x: number) => 7, [3]);
    assert.equal(c.output, "7");
    assert.equal(c.rows[0]!.adjoint, 0);
    assert.match(c.toString(), /does not depend on the inputs/);
  });

  test("number formatting: 4 significant digits, trailing zeros dropped", () => {
    const e = ad.explain((x: number) => ad.mul(ad.exp(x), 1e-3), [10]);
    const text = e.toString();
    assert.match(text, /v2 {2,}exp\(v1\) {2,}2\.203e\+4 /);
    assert.match(text, /v3 {2,}v2 × 0\.001 {2,}22\.03 /);
  });
});

describe("explain: errors", () => {
  test("a non-function is a TransformError", () => {
    assert.throws(() => ad.explain(3 as never, [1]), ad.TransformError);
  });

  test("args must be an array", () => {
    assert.throws(() => ad.explain(f, 1 as never), ad.TransformError);
  });

  test("a tangent of the wrong shape is a ShapeError", () => {
    assert.throws(
      () => ad.explain((x: ad.Tensor) => x.sum(), [ad.tensor([1, 2])], { tangents: [ad.tensor([1, 2, 3])] }),
      (e: unknown) => e instanceof ad.ShapeError && /explain: tangent 0/.test(e.message),
    );
  });

  test("a wrong number of tangents or a wrong structure is a TransformError", () => {
    assert.throws(() => ad.explain(f, [1, 2], { tangents: [1] }), ad.TransformError);
    assert.throws(() => ad.explain(f, [1, 2], { tangents: [[1], 0] }), ad.TransformError);
  });
});
