/** @file Engine properties: symbolic zeros, nesting by identity, escaped tracers, one recording per transform. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

const close = (a: number, b: number, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${a} vs ${b}`);

describe("symbolic zeros", () => {
  test("a constant operand's derivative is never computed (no NaN from d/dy of x^y at x < 0)", () => {
    const f = (x: ad.Tensor) => ad.sum(ad.pow(x, 2));
    const x = ad.tensor([-2, -3], { dtype: "float64" });
    assert.deepEqual(ad.grad(f)(x).toArray(), [-4, -6]);
    assert.deepEqual((ad.jvp(f, [x], [ad.onesLike(x)])[1] as ad.Tensor).item(), -10);
  });

  test("outputs that do not depend on the input get exact zero derivatives", () => {
    const c = ad.tensor([1, 2, 3]);
    assert.deepEqual(
      ad
        .grad((_x: ad.Tensor) => ad.sum(c))(ad.tensor([5]))
        .toArray(),
      [0],
    );
    const [, t] = ad.jvp((_x: number) => ad.mul(c, 2), [1], [1]);
    assert.deepEqual((t as ad.Tensor).toArray(), [0, 0, 0]);
  });

  test("comparisons and integer outputs inside a differentiated function are flat, not errors", () => {
    const f = (x: ad.Tensor) =>
      ad.sum(ad.where(ad.greater(x, 0), x, ad.mul(x, 0.1))).add(ad.argmax(x).astype("float32"));
    assert.deepEqual(
      ad
        .grad(f)(ad.tensor([-1, 2]))
        .toArray(),
      [Math.fround(0.1), 1],
    );
  });
});

describe("nesting by identity", () => {
  test("x · d/dy[x + y] = 1 for every nesting of grad and jvp", () => {
    const inner = (x: number | ad.Tensor) => ad.grad((y: number | ad.Tensor) => ad.add(x, y))(1);
    assert.equal(ad.grad((x: number) => ad.mul(x, inner(x)))(3), 1);
    const innerF = (x: number | ad.Tensor) => ad.jvp((y: number | ad.Tensor) => ad.add(x, y), [1], [1])[1];
    assert.equal(ad.jvp((x: number) => ad.mul(x, innerF(x)), [3], [1])[1], 1);
    assert.equal(ad.grad((x: number) => ad.mul(x, innerF(x)))(3), 1);
    assert.equal(ad.jvp((x: number) => ad.mul(x, inner(x)), [3], [1])[1], 1);
  });

  test("two independent perturbations of the same variable stay apart (mixed partials)", () => {
    // d/dx d/dy sin(x y) = cos(xy) - xy sin(xy)
    const f = (x: number) => ad.grad((y: number) => ad.sin(ad.mul(x, y)))(2);
    close(ad.grad(f)(1) as number, Math.cos(2) - 2 * Math.sin(2));
  });

  test("the backward pass is itself differentiable, to any order", () => {
    const d1 = ad.grad((x: number) => ad.exp(ad.mul(x, 2)));
    const d2 = ad.grad(d1);
    const d3 = ad.grad(d2);
    const d4 = ad.grad(d3);
    close(d4(0.3) as number, 16 * Math.exp(0.6));
    close(ad.jvp(d3, [0.3], [1])[1] as number, 16 * Math.exp(0.6));
  });

  test("a vjp function called inside another transform differentiates through the residuals", () => {
    // g(x) = vjp of sin at x applied to 1 = cos(x); its derivative is -sin(x)
    const g = (x: number) => ad.vjp((z: number) => ad.sin(z), x)[1](1)[0] as number;
    close(ad.grad(g)(0.4) as number, -Math.sin(0.4));
  });
});

describe("escaped tracers", () => {
  test("using a tracer after its transform returned is a TransformError", () => {
    let leaked: ad.Tensor | null = null;
    ad.grad((x: ad.Tensor) => {
      leaked = ad.mul(x, 2);
      return ad.sum(x);
    })(ad.tensor([1]));
    assert.throws(() => ad.add(leaked!, 1), ad.TransformError);
  });

  test("reading a traced value inside a transform works (JS control flow)", () => {
    const f = (x: number | ad.Tensor) => (ad.tensor(0).add(x).item() > 0 ? ad.mul(x, x) : ad.neg(x));
    assert.equal(ad.grad(f)(3), 6);
    assert.equal(ad.grad(f)(-3), -1);
  });
});

describe("one recording per transform call", () => {
  test("linearize, vjp and jacrev evaluate the function once", () => {
    let calls = 0;
    const f = (x: ad.Tensor) => {
      calls++;
      return ad.sin(x).mul(x);
    };
    const x = ad.tensor([0.1, 0.2, 0.3], { dtype: "float64" });
    const [, lin] = ad.linearize(f, x);
    lin(ad.onesLike(x));
    lin(ad.onesLike(x));
    assert.equal(calls, 1);
    calls = 0;
    const [, back] = ad.vjp(f, x);
    back(ad.onesLike(x));
    back(ad.onesLike(x));
    assert.equal(calls, 1);
    calls = 0;
    ad.jacrev(f)(x);
    ad.jacfwd(f)(x);
    assert.equal(calls, 2);
  });

  test("linearize's jvpFn equals jvp", () => {
    const f = (x: ad.Tensor) => ad.tanh(x).mul(ad.exp(x));
    const x = ad.tensor([0.5, -1], { dtype: "float64" });
    const v = ad.tensor([1, 2], { dtype: "float64" });
    const [, lin] = ad.linearize(f, x);
    assert.ok(ad.allclose(lin(v), ad.jvp(f, [x], [v])[1] as ad.Tensor, { rtol: 1e-12 }));
  });
});

describe("max/min at NaN", () => {
  test("a NaN maximum sends the derivative to the NaN entry (as PyTorch)", () => {
    const g = ad.grad((x: ad.Tensor) => ad.max(x))(ad.tensor([Number.NaN, 1], { dtype: "float64" }));
    assert.deepEqual(g.toArray(), [1, 0]);
  });
});
