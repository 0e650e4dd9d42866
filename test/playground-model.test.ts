/**
 * @file The playground's computations (playground/model.ts), checked under Node against
 * independent truth: analytic derivatives, central differences, and `ad.explain` itself for the
 * graph; parse errors carry their column; the layout keeps boxes apart and data flowing left to
 * right; the flow order of each mode.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import {
  evaluate,
  flowOrder,
  graphOf,
  InputError,
  layoutGraph,
  NODE_H,
  NODE_W,
  parseProblem,
  sampleAlong,
} from "../playground/model.js";

const close = (a: number, b: number, tol = 1e-12) =>
  assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${a} vs ${b}`);

describe("the playground model", () => {
  test("the textbook example: value and gradient at (1, 2)", () => {
    const p = parseProblem("(x1 + x2) * sin(x1)");
    assert.deepEqual(p.names, ["x1", "x2"]);
    assert.equal(p.grouped, "((x1 + x2) * sin(x1))");
    const ev = evaluate(p, [1, 2], 0);
    close(ev.value, 3 * Math.sin(1));
    close(ev.gradient[0]!, Math.sin(1) + 3 * Math.cos(1)); // 2.4623779…
    close(ev.gradient[1]!, Math.sin(1)); // 0.8414709…
  });

  test("the graph is explain's Wengert list: x1, x2, add, sin, mul", () => {
    const ev = evaluate(parseProblem("(x1 + x2) * sin(x1)"), [1, 2], 0);
    const g = graphOf(ev.explanation);
    const direct = ad.explain((x1: number, x2: number) => ad.mul(ad.add(x1, x2), ad.sin(x1)), [1, 2]);
    assert.equal(g.nodes.length, direct.rows.length);
    assert.deepEqual(
      g.nodes.map((n) => n.op),
      ["input", "input", "add", "sin", "mul"],
    );
    assert.deepEqual(
      g.edges.map((e) => `${e.from}->${e.to}`),
      ["v1->v3", "v2->v3", "v1->v4", "v3->v5", "v4->v5"],
    );
    assert.equal(g.output, "v5");
    assert.deepEqual(
      g.nodes.map((n) => n.layer),
      [0, 0, 1, 1, 2],
    );
    // Tangents seeded on x1 end in ∂f/∂x1; adjoints of the inputs are the gradient.
    close(g.nodes[4]!.tangent, ev.gradient[0]!);
    close(g.nodes[0]!.adjoint, ev.gradient[0]!);
    close(g.nodes[1]!.adjoint, ev.gradient[1]!);
    const seeded = graphOf(evaluate(parseProblem("(x1 + x2) * sin(x1)"), [1, 2], 1).explanation);
    close(seeded.nodes[4]!.tangent, ev.gradient[1]!);
  });

  test("constants stay on their node; a constant expression has no graph", () => {
    const g = graphOf(evaluate(parseProblem("2 * x + x ** 3"), [2], 0).explanation);
    assert.ok(g.nodes.every((n) => n.op === "input" || n.constants.length <= 1));
    assert.ok(g.nodes.some((n) => n.constants.includes("2")));
    const c = evaluate(parseProblem("2 + pi"), [], 0);
    close(c.value, 2 + Math.PI);
    assert.deepEqual(c.gradient, []);
    assert.equal(graphOf(c.explanation).nodes.length, 0);
  });

  test("input errors carry the column; bad points are rejected", () => {
    const err = (src: string) => {
      try {
        parseProblem(src);
      } catch (e) {
        assert.ok(e instanceof InputError, `not an InputError: ${String(e)}`);
        return e;
      }
      assert.fail(`${src} parsed`);
    };
    assert.equal(err("x + ").column, 5);
    assert.match(err("foo(x)").message, /unknown function 'foo'/);
    assert.match(err("sin(x, y)").message, /sin\(\) takes 1 argument/);
    assert.match(err("   ").message, /Type an expression/);
    assert.match(err("x.constructor").message, /./);
    assert.throws(() => evaluate(parseProblem("x * y"), [1, Number.NaN], 0), InputError);
  });

  test("layout: no two boxes overlap and every edge runs left to right", () => {
    const p = parseProblem("sin(a * b) + exp(a) * cos(b) - a / (b + 1) + tanh(a - b)");
    const g = graphOf(evaluate(p, [0.3, 0.7], 0).explanation);
    const { positions, width, height } = layoutGraph(g);
    const boxes = g.nodes.map((n) => positions.get(n.id)!);
    for (let i = 0; i < boxes.length; i++) {
      const a = boxes[i]!;
      assert.ok(a.x - NODE_W / 2 >= 0 && a.x + NODE_W / 2 <= width + 1e-9, "inside horizontally");
      assert.ok(a.y - NODE_H / 2 >= -1e-9 && a.y + NODE_H / 2 <= height + 1e-9, "inside vertically");
      for (let j = i + 1; j < boxes.length; j++) {
        const b = boxes[j]!;
        assert.ok(Math.abs(a.x - b.x) >= NODE_W || Math.abs(a.y - b.y) >= NODE_H, `${i} and ${j} overlap`);
      }
    }
    for (const e of g.edges)
      assert.ok(positions.get(e.from)!.x < positions.get(e.to)!.x, `${e.from}->${e.to}`);
  });

  test("flow order: forward follows the Wengert list, reverse starts at the output", () => {
    const g = graphOf(evaluate(parseProblem("(x1 + x2) * sin(x1)"), [1, 2], 0).explanation);
    assert.deepEqual(flowOrder(g, "forward"), ["v1", "v2", "v3", "v4", "v5"]);
    assert.deepEqual(flowOrder(g, "reverse"), ["v5", "v4", "v3", "v2", "v1"]);
  });

  test("plot samples: f, f′, f″ of x³ exactly, and of sin(x)·y against central differences", () => {
    const cube = sampleAlong(parseProblem("x ** 3"), [1], 0, -2, 2, 5);
    assert.deepEqual(cube.xs, [-2, -1, 0, 1, 2]);
    cube.xs.forEach((x, i) => {
      close(cube.f[i]!, x ** 3);
      close(cube.d1[i]!, 3 * x * x);
      close(cube.d2[i]!, 6 * x);
    });
    const p = parseProblem("sin(x) * y + x * x * y");
    const s = sampleAlong(p, [0.5, 1.5], 0, -1, 1, 9);
    const f = (x: number) => Math.sin(x) * 1.5 + x * x * 1.5;
    const h = 1e-4;
    s.xs.forEach((x, i) => {
      close(s.f[i]!, f(x));
      close(s.d1[i]!, (f(x + h) - f(x - h)) / (2 * h), 1e-7);
      close(s.d2[i]!, (f(x + h) - 2 * f(x) + f(x - h)) / (h * h), 1e-5);
    });
    // Along y (the second variable) the curve is linear: f″ = 0.
    const sy = sampleAlong(p, [0.5, 1.5], 1, 0, 2, 3);
    for (const v of sy.d2) close(v, 0);
    assert.throws(() => sampleAlong(p, [0.5, 1.5], 0, 1, 1), InputError);
  });
});
