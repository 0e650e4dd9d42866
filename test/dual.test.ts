/** @file Scalar forward mode: every Dual rule against calculus and central differences, nesting, edge cases. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { Dual, type DualUnary, derivative, type DualLike as Num, nthDerivative } from "../src/dual.js";
import { AdError, TransformError } from "../src/errors.js";

// |a − b| within atol + rtol·|b|.
function close(actual: Num, expected: number, rtol = 1e-12, atol = 1e-12, what = ""): void {
  assert.equal(typeof actual, "number", `${what}: expected a plain number, got ${String(actual)}`);
  const a = actual as number;
  assert.ok(
    Math.abs(a - expected) <= atol + rtol * Math.abs(expected),
    `${what}: got ${a}, expected ${expected} (diff ${Math.abs(a - expected)})`,
  );
}

// Central difference of a plain-number function.
const central = (f: (x: number) => number, x: number, h = 1e-5): number => (f(x + h) - f(x - h)) / (2 * h);

const erfPrime = (x: number): number => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x);
const sig = (x: number): number => 1 / (1 + Math.exp(-x));

// name, op, analytic derivative, points inside the domain
const UNARY: Array<[string, DualUnary, (x: number) => number, number[]]> = [
  ["neg", Dual.neg, () => -1, [-2, 0, 1.5]],
  ["sin", Dual.sin, Math.cos, [-2, 0, 0.5, 3]],
  ["cos", Dual.cos, (x) => -Math.sin(x), [-2, 0, 0.5, 3]],
  ["tan", Dual.tan, (x) => 1 / Math.cos(x) ** 2, [-1.2, 0, 0.5, 1]],
  ["exp", Dual.exp, Math.exp, [-3, 0, 0.7, 2]],
  ["log", Dual.log, (x) => 1 / x, [0.1, 1, 2.5, 10]],
  ["sqrt", Dual.sqrt, (x) => 0.5 / Math.sqrt(x), [0.1, 1, 4, 9.5]],
  ["tanh", Dual.tanh, (x) => 1 / Math.cosh(x) ** 2, [-2, 0, 0.3, 1.5]],
  ["sigmoid", Dual.sigmoid, (x) => sig(x) * (1 - sig(x)), [-4, -0.5, 0, 0.5, 4]],
  ["asin", Dual.asin, (x) => 1 / Math.sqrt(1 - x * x), [-0.9, 0, 0.3, 0.8]],
  ["acos", Dual.acos, (x) => -1 / Math.sqrt(1 - x * x), [-0.9, 0, 0.3, 0.8]],
  ["atan", Dual.atan, (x) => 1 / (1 + x * x), [-3, 0, 0.5, 2]],
  ["sinh", Dual.sinh, Math.cosh, [-2, 0, 0.5, 1.5]],
  ["cosh", Dual.cosh, Math.sinh, [-2, 0, 0.5, 1.5]],
  ["abs", Dual.abs, Math.sign, [-2.5, -0.1, 0.1, 3]],
  ["log1p", Dual.log1p, (x) => 1 / (1 + x), [-0.5, 0, 1e-3, 2]],
  ["expm1", Dual.expm1, Math.exp, [-2, 0, 1e-3, 1.5]],
  ["erf", Dual.erf, erfPrime, [-2, -0.5, 0, 0.3, 1, 2.5]],
];

for (const [name, op, dop, points] of UNARY) {
  test(`Dual.${name}: numbers in, number out; derivative matches calculus and central differences`, () => {
    const f = (x: number): number => op(x);
    for (const x of points) {
      const y = op(x);
      assert.equal(typeof y, "number");
      // analytic first derivative, through derivative() and through a hand-built Dual
      close(derivative(op)(x), dop(x), 1e-13, 1e-15, `${name}'(${x})`);
      const d = op(new Dual(x, 1));
      assert.ok(d instanceof Dual);
      assert.equal(d.re, y);
      close(d.eps, dop(x), 1e-13, 1e-15, `${name}'(${x}) by hand`);
      // central differences of the plain-number path
      close(derivative(op)(x), central(f, x), 1e-7, 1e-8, `${name}'(${x}) vs central difference`);
      // second derivative (the rules are themselves differentiated) vs central differences of f'
      close(derivative(derivative(op))(x), central(dop, x), 1e-6, 1e-7, `${name}''(${x})`);
    }
  });
}

test("Dual.erf matches reference values to ~1e-15", () => {
  const ref: Array<[number, number]> = [
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3, 0.9999779095030014],
    [5, 0.9999999999984626],
  ];
  for (const [x, e] of ref) {
    close(Dual.erf(x), e, 1.2e-15, 0, `erf(${x})`);
    close(Dual.erf(-x), -e, 1.2e-15, 0, `erf(${-x})`);
  }
  assert.equal(Dual.erf(0), 0);
  assert.equal(Dual.erf(10), 1);
  assert.equal(Dual.erf(-Infinity), -1);
  assert.ok(Number.isNaN(Dual.erf(Number.NaN)));
});

test("sigmoid stays finite far out", () => {
  assert.equal(Dual.sigmoid(-1e4), 0);
  assert.equal(Dual.sigmoid(1e4), 1);
  close(derivative(Dual.sigmoid)(-800), 0, 0, 0);
});

test("binary ops: derivative in each argument matches calculus and central differences", () => {
  const ops: Array<[string, (a: Num, b: Num) => Num, (a: number, b: number) => [number, number]]> = [
    ["add", Dual.add, () => [1, 1]],
    ["sub", Dual.sub, () => [1, -1]],
    ["mul", Dual.mul, (a, b) => [b, a]],
    ["div", Dual.div, (a, b) => [1 / b, -a / (b * b)]],
    ["pow", Dual.pow, (a, b) => [b * a ** (b - 1), a ** b * Math.log(a)]],
  ];
  const pts: Array<[number, number]> = [
    [0.7, 1.3],
    [2, 3],
    [1.5, -0.5],
  ];
  for (const [name, op, grad] of ops) {
    for (const [a, b] of pts) {
      const num = (x: number, y: number): number => op(x, y) as number;
      const [da, db] = grad(a, b);
      close(derivative((x) => op(x, b))(a), da, 1e-13, 1e-15, `∂${name}/∂a`);
      close(derivative((y) => op(a, y))(b), db, 1e-13, 1e-15, `∂${name}/∂b`);
      close(
        derivative((x) => op(x, b))(a),
        central((x) => num(x, b), a),
        1e-7,
        1e-8,
        `∂${name}/∂a fd`,
      );
      close(
        derivative((y) => op(a, y))(b),
        central((y) => num(a, y), b),
        1e-7,
        1e-8,
        `∂${name}/∂b fd`,
      );
      // both arguments perturbed together: the directional derivative da + db
      close(derivative((x) => op(x, x.add(b - a)))(a), da + db, 1e-13, 1e-14, `${name} total`);
    }
  }
});

test("methods chain and never mutate; two numbers give a number", () => {
  const x = new Dual(2, 1);
  const y = x.mul(x).add(Dual.sin(x)).sub(1).div(2).pow(2).neg();
  assert.ok(y instanceof Dual);
  assert.equal(x.re, 2);
  assert.equal(x.eps, 1);
  const v = ((4 + Math.sin(2) - 1) / 2) ** 2;
  close(y.re, -v);
  close(y.eps, -2 * ((4 + Math.sin(2) - 1) / 2) * ((4 + Math.cos(2)) / 2));
  assert.equal(Dual.mul(3, 4), 12);
  assert.equal(Dual.pow(2, 10), 1024);
  assert.equal(Dual.value(y), y.re);
  assert.equal(new Dual(1, 2).toString(), "1 + 2ε");
  assert.equal(new Dual(1, -2).toString(), "1 - 2ε");
  assert.equal(new Dual(new Dual(1, 1, 1), 3, 2).toString(), "(1 + 1ε_1) + 3ε_2");
});

test("no perturbation confusion: x · d/dy[x + y] has derivative exactly 1", () => {
  for (const x0 of [1, -2, 3.5]) {
    assert.equal(derivative((x) => x.mul(derivative((y) => x.add(y))(1)))(x0), 1);
  }
  // Siskind & Pearlmutter's other example: d/dx[x · d/dy(x·y)] = d/dx[x²] = 2x
  assert.equal(derivative((x) => x.mul(derivative((y) => x.mul(y))(2)))(1), 2);
  // an inner derivative of something that ignores its own variable is 0, not the outer tangent
  assert.equal(derivative((x) => derivative(() => x.mul(x))(5))(3), 0);
  assert.equal(derivative(() => 7)(1), 0);
});

test("higher derivatives by nesting", () => {
  close(derivative(derivative((x) => Dual.sin(x)))(0.5), -Math.sin(0.5), 1e-15, 0);
  const e3 = derivative(derivative(derivative((x) => Dual.exp(x))))(0.7);
  close(e3, Math.exp(0.7), 1e-15, 0);
  close(nthDerivative((x) => Dual.exp(x), 3)(0.7), Math.exp(0.7), 1e-15, 0);
  close(nthDerivative((x) => Dual.exp(x.mul(2)), 3)(0), 8, 1e-15, 0);
  close(nthDerivative((x) => Dual.sin(x), 4)(0.3), Math.sin(0.3), 1e-15, 0);
  close(nthDerivative((x) => x.pow(5), 5)(1.7), 120, 1e-13, 0);
  close(nthDerivative((x) => Dual.log(x), 4)(2), -6 / 16, 1e-14, 0);
  close(nthDerivative((x) => Dual.sin(x), 0)(0.3), Math.sin(0.3), 0, 0);
});

test("mixed partials: d/dx d/dy sin(x·y) at (1, 2) = cos 2 − 2 sin 2", () => {
  const v = derivative((x) => derivative((y) => Dual.sin(x.mul(y)))(2))(1);
  close(v, Math.cos(2) - 2 * Math.sin(2), 1e-14, 1e-15);
  // symmetric order: d/dy d/dx at the same point
  const w = derivative((y) => derivative((x) => Dual.sin(x.mul(y)))(1))(2);
  close(w, Math.cos(2) - 2 * Math.sin(2), 1e-14, 1e-15);
});

test("derivative at a Dual point composes with hand-built forward mode", () => {
  // f'(x) = 2x at x = 3 + 1ε gives 6 + 2ε
  const d = derivative((x) => x.mul(x))(new Dual(3, 1));
  assert.ok(d instanceof Dual);
  assert.equal(d.re, 6);
  assert.equal(d.eps, 2);
  // a hand-built Dual inside a derivative is an outer perturbation, a constant for the inner one
  const c = derivative((x) => x.mul(new Dual(2, 1)))(5);
  assert.ok(c instanceof Dual);
  assert.equal(c.re, 2);
  assert.equal(c.eps, 1);
});

test("pow at 0 has the right finite derivatives", () => {
  assert.equal(derivative((x) => x.pow(2))(0), 0);
  assert.equal(derivative((x) => x.pow(1))(0), 1);
  assert.equal(derivative((x) => x.pow(0))(0), 0);
  assert.equal(derivative((x) => x.pow(0))(3), 0);
  assert.equal(derivative(derivative((x) => x.pow(2)))(0), 2);
  assert.equal(nthDerivative((x) => x.pow(3), 3)(0), 6);
  assert.equal(nthDerivative((x) => x.pow(3), 2)(0), 0);
  assert.equal(derivative((x) => x.pow(3))(-2), 12);
  // d/dy 0^y = 0 for y > 0: log 0 is never multiplied in
  assert.equal(derivative((y) => Dual.pow(0, y))(2), 0);
  assert.equal(derivative((y) => Dual.pow(0, y))(0.5), 0);
  close(derivative((y) => Dual.pow(2, y))(3), 8 * Math.LN2);
  // sqrt-like powers at 0 follow IEEE
  assert.equal(derivative((x) => x.pow(0.5))(0), Infinity);
});

test("abs at 0 has derivative 0", () => {
  assert.equal(derivative(Dual.abs)(0), 0);
  assert.equal(derivative(Dual.abs)(-3), -1);
  assert.equal(derivative(Dual.abs)(3), 1);
  assert.equal(derivative(derivative(Dual.abs))(1), 0);
  assert.equal(Dual.abs(new Dual(0, 1)).eps, 0);
});

test("max/min: the winner's derivative, ties split equally", () => {
  assert.equal(derivative((x) => Dual.max(x, 1))(2), 1);
  assert.equal(derivative((x) => Dual.max(x, 1))(0), 0);
  assert.equal(derivative((x) => Dual.max(x, 1))(1), 0.5);
  assert.equal(derivative((x) => Dual.min(x, 1))(1), 0.5);
  assert.equal(derivative((x) => Dual.min(x, 1))(0), 1);
  assert.equal(derivative((x) => Dual.max(x, x))(1), 1);
  assert.equal(Dual.max(new Dual(1, 1), new Dual(1, 3)).eps, 2);
  assert.equal(Dual.min(new Dual(1, 1), new Dual(1, 3)).eps, 2);
  // a losing Dual still yields a Dual (a constant at its tag)
  const m = Dual.max(new Dual(0, 1), 5);
  assert.ok(m instanceof Dual);
  assert.equal(m.re, 5);
  assert.equal(m.eps, 0);
  // ties split at every nesting level: d/dx of ½(2x + 1) is 1 at the tie x = 1
  assert.equal(derivative(derivative((x) => Dual.max(x.mul(x), x)))(1), 1);
  assert.ok(Number.isNaN(Dual.value(Dual.max(new Dual(Number.NaN, 1), 2))));
  assert.equal(Dual.max(2, 3), 3);
  assert.equal(Dual.min(2, 3), 2);
});

test("bad input raises TransformError with a clear message", () => {
  const f = (x: Dual): Dual => x.mul(x);
  assert.throws(
    () => derivative(42 as unknown as typeof f),
    (e) => {
      assert.ok(e instanceof TransformError && e instanceof AdError);
      assert.match(e.message, /derivative: expected a function/);
      return true;
    },
  );
  for (const bad of [Number.NaN, Infinity, -Infinity, "1", null, undefined, {}]) {
    assert.throws(() => derivative(f)(bad as unknown as number), TransformError);
  }
  assert.throws(() => derivative(f)(Number.NaN), /finite number or a Dual, got NaN/);
  assert.throws(
    () => derivative(() => "x" as unknown as number)(1),
    /must return a number, a Dual or a function, got string/,
  );
  assert.throws(() => nthDerivative(f, -1), TransformError);
  assert.throws(() => nthDerivative(f, 1.5), TransformError);
  // parts must carry lower tags than the Dual that holds them
  assert.throws(() => new Dual(new Dual(1, 1), 0), /lower tags/);
  assert.throws(() => new Dual(1, new Dual(1, 1, 3), 2), TransformError);
});

test("closures: D(x => y => sin(x y))(1) behaves as y -> y cos y, with no perturbation confusion", () => {
  const h = derivative((x: Dual) => (y: Num) => Dual.sin(x.mul(y)))(1) as (y: Num) => Num;
  const y0 = 0.7;
  assert.ok(Math.abs((h(y0) as number) - y0 * Math.cos(y0)) < 1e-12);
  // d/dy (y cos y) at 2 = cos 2 - 2 sin 2
  const dh = derivative((y: Dual) => h(y) as Dual)(2) as number;
  assert.ok(Math.abs(dh - (Math.cos(2) - 2 * Math.sin(2))) < 1e-12, `${dh}`);
});
