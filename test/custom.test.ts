/**
 * @file Custom derivative rules (`ad.customVjp`, `ad.customJvp`) through the shipped examples —
 * the straight-through estimator for `round`, the gradient-clipping identity, the stable
 * `logsumexp` with a softmax VJP — and a custom softplus JVP; every transform (grad, vjp, jvp,
 * jacfwd/jacrev, hessian, linearize, jit in both orders, vmap, nesting) and eager `backward()`, and the
 * errors: forward mode without a jvp rule, malformed rules, closures over traced values.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { clipGradient, recurrentGrad } from "../examples/clip-gradient.js";
import { stableLogsumexp } from "../examples/stable-logsumexp.js";
import { fitQuantised, roundSTE } from "../examples/straight-through.js";
import { assertClose } from "./helpers.js";

const f64 = (data: ad.TensorData) => ad.tensor(data, { dtype: "float64" });
const sumOf = (g: (x: ad.Tensor) => ad.Tensor) => (x: ad.Tensor) => ad.sum(g(x));

/** A custom function whose reverse rule is deliberately NOT the derivative of f (so we see it is used). */
const sinTimes3 = ad.customVjp((x: ad.Tensor) => ad.sin(x), {
  fwd: (x) => [ad.sin(x), null],
  bwd: (_r, g) => [ad.mul(g, 3)],
});

/** sin with its derivative saved as the residual: bwd is differentiable, so higher orders work. */
const sinRes = ad.customVjp((x: ad.Tensor) => ad.sin(x), {
  fwd: (x) => [ad.sin(x), ad.cos(x)],
  bwd: (c, g) => [ad.mul(g, c)],
});

/** softplus with a custom JVP t·sigmoid(x) (finite at x = ±100 and beyond). */
const softplus = ad.customJvp((x: ad.Tensor) => ad.softplus(x), {
  jvp: ([x], [t]) => [ad.softplus(x), ad.mul(t, ad.sigmoid(x))],
});

/** A custom JVP that is NOT f's derivative (2·t for sin), to see which rule each mode uses. */
const sinJvp2 = ad.customJvp((x: ad.Tensor) => ad.sin(x), {
  jvp: ([x], [t]) => [ad.sin(x), ad.mul(t, 2)],
});

function isTransformError(re: RegExp) {
  return (e: unknown) => e instanceof ad.TransformError && re.test((e as Error).message);
}

describe("straight-through estimator (examples/straight-through.ts)", () => {
  const x = ad.tensor([0.3, 1.7, -2.5, 4.2]);
  test("forward is round; the gradient is 1 (plain round's is 0)", () => {
    assert.deepEqual(roundSTE(x).toArray(), [0, 2, -2, 4]);
    assert.deepEqual(ad.grad(sumOf(roundSTE))(x).toArray(), [1, 1, 1, 1]);
    assert.deepEqual(ad.grad(sumOf(ad.round))(x).toArray(), [0, 0, 0, 0]);
    // Chain rule through it: d/dx Σ round(x)·x = round(x) + x.
    assertClose(ad.grad((v: ad.Tensor) => ad.sum(ad.mul(roundSTE(v), v)))(x), ad.add(ad.round(x), x));
  });
  test("forward mode uses its jvp rule; jit, vjp, jacrev, eager backward", () => {
    const [y, t] = ad.jvp(roundSTE, [x], [ad.tensor([1, 2, 3, 4])]);
    assert.deepEqual(
      [y.toArray(), t.toArray()],
      [
        [0, 2, -2, 4],
        [1, 2, 3, 4],
      ],
    );
    assertClose(ad.jacfwd(roundSTE)(x), ad.eye(4));
    assertClose(ad.jacrev(roundSTE)(x), ad.eye(4));
    assert.deepEqual(
      ad
        .jit(ad.grad(sumOf(roundSTE)))(x)
        .toArray(),
      [1, 1, 1, 1],
    );
    assert.deepEqual(
      ad
        .grad(ad.jit(sumOf(roundSTE)))(x)
        .toArray(),
      [1, 1, 1, 1],
    );
    const [, back] = ad.vjp(roundSTE, x);
    assert.deepEqual(back(ad.tensor([5, 6, 7, 8]))[0].toArray(), [5, 6, 7, 8]);
    const xe = ad.tensor([0.3, 1.7], { requiresGrad: true });
    const ye = roundSTE(xe);
    assert.equal(ye.gradFn, "custom_vjp_call");
    ad.sum(ad.mul(ye, 2)).backward();
    assert.deepEqual(xe.grad!.toArray(), [2, 2]);
  });
  test("the example fits a quantised weight by gradient descent", () => {
    const r = fitQuantised();
    assert.equal(r.quantised, 0.75);
  });
});

describe("gradient-clipping identity (examples/clip-gradient.ts)", () => {
  const c = f64([3, 4]); // ‖c‖ = 5
  const loss = (maxNorm: number) => (x: ad.Tensor) => ad.sum(ad.mul(clipGradient(x, maxNorm), c));
  test("identity forward; the cotangent is rescaled to norm maxNorm, small ones pass", () => {
    const x = f64([1, -2]);
    assert.deepEqual(clipGradient(x, 1).toArray(), [1, -2]);
    assertClose(ad.grad(loss(1))(x), [0.6, 0.8]);
    assertClose(ad.grad(loss(2.5))(x), [1.5, 2]);
    assertClose(ad.grad(loss(10))(x), [3, 4]);
    // A zero cotangent stays zero (no NaN).
    assertClose(ad.grad((v: ad.Tensor) => ad.sum(ad.mul(clipGradient(v, 1), 0)))(x), [0, 0]);
  });
  test("vjp with an explicit cotangent; jit; eager backward", () => {
    const [, back] = ad.vjp((v: ad.Tensor) => clipGradient(v, 1), f64([0, 0]));
    assertClose(back(f64([0, -7]))[0], [0, -1]);
    assertClose(ad.jit(ad.grad(loss(1)))(f64([1, 2])), [0.6, 0.8]);
    assertClose(ad.grad(ad.jit(loss(1)))(f64([1, 2])), [0.6, 0.8]);
    const xe = f64([1, 2]);
    xe.requiresGrad = true;
    loss(1)(xe).backward();
    assertClose(xe.grad!, [0.6, 0.8]);
  });
  test("clipping tames an exploding recurrence gradient", () => {
    const norm = (t: ad.Tensor) => ad.sqrt(ad.sum(ad.square(t))).item();
    assert.ok(norm(recurrentGrad(6, null)) > 100);
    assert.ok(norm(recurrentGrad(6, 1)) < 5);
  });
});

describe("stable logsumexp with a softmax VJP (examples/stable-logsumexp.ts)", () => {
  test("value and gradient at [1000, 1000] (exact) and at all -Inf (uniform, finite)", () => {
    const [v, g] = ad.valueAndGrad(stableLogsumexp)(f64([1000, 1000]));
    assert.equal(v.item(), 1000 + Math.LN2);
    assert.deepEqual(g.toArray(), [0.5, 0.5]);
    const [v2, g2] = ad.valueAndGrad(stableLogsumexp)(f64([-Infinity, -Infinity, -Infinity]));
    assert.equal(v2.item(), -Infinity);
    assertClose(g2, [1 / 3, 1 / 3, 1 / 3]);
    // One -Inf entry gets no weight; a huge negative one neither.
    const [v3, g3] = ad.valueAndGrad(stableLogsumexp)(f64([-Infinity, 0, -1e4]));
    assert.equal(v3.item(), 0);
    assert.deepEqual(g3.toArray(), [0, 1, 0]);
  });
  test("matches ad.logsumexp and ad.softmax, over the last axis of a batch", () => {
    const x = f64([
      [0.5, -1, 2, 0.1],
      [3, 3, -2, 1e-3],
    ]);
    assertClose(stableLogsumexp(x), ad.logsumexp(x, { axis: -1 }));
    const w = f64([1.5, -0.5]);
    const loss = (v: ad.Tensor) => ad.sum(ad.mul(stableLogsumexp(v), w));
    assertClose(ad.grad(loss)(x), ad.mul(ad.softmax(x), ad.expandDims(w, -1)));
    assertClose(ad.jit(ad.grad(loss))(x), ad.grad(loss)(x));
  });
  test("second derivatives: hessian (forward over reverse) and jacrev∘grad are diag(s) - s sᵀ", () => {
    const x = f64([0.5, -1, 2]);
    const s = ad.softmax(x);
    const want = ad.sub(ad.mul(ad.eye(3, { dtype: "float64" }), s), ad.outer(s, s));
    assertClose(ad.hessian(stableLogsumexp)(x), want);
    assertClose(ad.jacrev(ad.grad(stableLogsumexp))(x), want);
    assertClose(
      ad.hvp(stableLogsumexp, [x], [f64([1, 0, 0])])[0],
      ad.slice(want, [0, 0], [1, 3]).reshape([3]),
    );
  });
  test("forward mode without a jvp rule is a clear TransformError", () => {
    const x = f64([1, 2]);
    assert.throws(() => ad.jvp(stableLogsumexp, [x], [x]), isTransformError(/forward mode.*jvp rule/));
    assert.throws(() => ad.jacfwd(stableLogsumexp)(x), isTransformError(/jvp rule/));
    assert.throws(() => ad.linearize(stableLogsumexp, x)[1](x), isTransformError(/jvp rule/));
  });
});

describe("customVjp", () => {
  const x = f64([0.3, -1.2, 2]);
  test("plain evaluation runs f; every reverse mode runs bwd (not f's derivative)", () => {
    assertClose(sinTimes3(x), ad.sin(x));
    const three = [3, 3, 3];
    assertClose(ad.grad(sumOf(sinTimes3))(x), three);
    assertClose(ad.vjp(sinTimes3, x)[1](f64([1, 1, 1]))[0], three);
    assertClose(ad.jacrev(sinTimes3)(x), ad.mul(ad.eye(3, { dtype: "float64" }), 3));
    assertClose(ad.jit(ad.grad(sumOf(sinTimes3)))(x), three);
    assertClose(ad.grad(ad.jit(sumOf(sinTimes3)))(x), three);
    assertClose(ad.jit(ad.jit(sinTimes3))(x), ad.sin(x));
    const xe = f64([0.3, -1.2, 2]);
    xe.requiresGrad = true;
    ad.sum(sinTimes3(xe)).backward();
    assertClose(xe.grad!, three);
  });
  test("a call is one equation under jit/trace; CSE never merges different custom functions", () => {
    const text = ad.trace(sinTimes3)(x).toString();
    assert.match(text, /custom_vjp_call\[name=anonymous\]/);
    assert.equal(text.split("\n").length, 3);
    const twice = ad.customVjp((v: ad.Tensor) => ad.mul(v, 2), {
      fwd: (v) => [ad.mul(v, 2), null],
      bwd: (_r, g) => [ad.mul(g, 2)],
    });
    const thrice = ad.customVjp((v: ad.Tensor) => ad.mul(v, 3), {
      fwd: (v) => [ad.mul(v, 3), null],
      bwd: (_r, g) => [ad.mul(g, 3)],
    });
    const f = (v: ad.Tensor) => ad.add(twice(v), thrice(v));
    assertClose(ad.jit(f)(x), ad.mul(x, 5));
    assertClose(ad.grad(ad.jit(sumOf(f)))(x), [5, 5, 5]);
    // The same custom function on the same input is merged.
    const g = ad.jit((v: ad.Tensor) => ad.add(twice(v), twice(v)));
    assertClose(g(x), ad.mul(x, 4));
    assert.equal(g.lower(x).eqns.filter((e) => e.prim.name === "custom_vjp_call").length, 1);
  });
  test("nesting: grad∘grad, hessian, jvp∘grad, jit∘grad∘grad differentiate fwd and bwd", () => {
    const x0 = 0.7;
    const d2 = -Math.sin(x0);
    // A number argument of a transform is a float64 scalar tensor by the time it reaches sinRes.
    const s = (v: ad.Tensor | number) => sinRes(v as ad.Tensor);
    assertClose(ad.grad(ad.grad(s))(ad.scalar(x0, { dtype: "float64" })), d2);
    assertClose(ad.grad(ad.grad(s))(x0), d2);
    assertClose(ad.hessian(sumOf(sinRes))(f64([x0, 1])), [
      [d2, 0],
      [0, -Math.sin(1)],
    ]);
    assertClose(ad.jvp(ad.grad(s), [x0], [1])[1], d2);
    assertClose(ad.jit(ad.grad(ad.grad(s)))(x0), d2);
    assertClose(ad.grad(ad.grad(ad.grad(s)))(x0), -Math.cos(x0));
    // A closure over an outer transform's value is fine when the custom function is called inside.
    const outer = ad.grad((w: ad.Tensor) => ad.grad((v: ad.Tensor) => ad.mul(sinRes(v), w))(ad.scalar(x0)));
    assertClose(outer(ad.scalar(2)), Math.cos(x0), { rtol: 1e-6 });
  });
  test("eager createGraph: the gradient from bwd is differentiable again", () => {
    const xe = ad.scalar(0.7, { dtype: "float64", requiresGrad: true });
    const [g] = ad.autograd.grad(sinRes(xe), xe, { createGraph: true });
    assertClose(g, Math.cos(0.7));
    g!.backward();
    assertClose(xe.grad!, -Math.sin(0.7));
  });
  test("with a jvp rule, forward mode uses it and reverse mode uses bwd", () => {
    const both = ad.customVjp((v: ad.Tensor) => ad.sin(v), {
      fwd: (v) => [ad.sin(v), null],
      bwd: (_r, g) => [ad.mul(g, 3)],
      jvp: ([v], [t]) => [ad.sin(v), ad.mul(t, 5)],
    });
    assertClose(ad.jvp(both, [x], [f64([1, 1, 1])])[1], [5, 5, 5]);
    assertClose(ad.jacfwd(both)(x), ad.mul(ad.eye(3, { dtype: "float64" }), 5));
    assertClose(ad.linearize(both, x)[1](f64([1, 2, 3])), [5, 10, 15]);
    assertClose(ad.grad(sumOf(both))(x), [3, 3, 3]);
  });
  test("pytree arguments and outputs; non-tensor arguments pass through and get no cotangent", () => {
    const affine = ad.customVjp(
      (p: { w: ad.Tensor; b: ad.Tensor }, v: ad.Tensor, scale: number) => ({
        y: ad.mul(ad.add(ad.mul(p.w, v), p.b), scale),
        n: scale,
      }),
      {
        fwd: (p, v, scale) => [
          { y: ad.mul(ad.add(ad.mul(p.w, v), p.b), scale), n: scale },
          { w: p.w, v, scale },
        ],
        bwd: (r, ct) => [
          { w: ad.mul(ad.mul(ct.y, r.v), r.scale), b: null },
          ad.mul(ad.mul(ct.y, r.w), r.scale),
          null,
        ],
      },
    );
    const p = { w: f64([1, 2]), b: f64([0.5, 0.5]) };
    const v = f64([3, 4]);
    const out = affine(p, v, 2);
    assertClose(out.y, [7, 17]);
    assert.ok((out.n as unknown) instanceof ad.Tensor); // a number output comes back as a float64 scalar
    const [gp, gv] = ad.grad((q: typeof p, u: ad.Tensor) => ad.sum(affine(q, u, 2).y), { argnums: [0, 1] })(
      p,
      v,
    );
    assertClose(gp, { w: [6, 8], b: [0, 0] });
    assertClose(gv, [2, 4]);
  });
  test("malformed rules and results are typed errors", () => {
    assert.throws(
      () => ad.customVjp((v: ad.Tensor) => v, { fwd: (v: ad.Tensor) => [v, null] } as never),
      isTransformError(/bwd must be a function/),
    );
    const badCount = ad.customVjp((v: ad.Tensor) => v, { fwd: (v) => [v, null], bwd: (_r, g) => [g, g] });
    assert.throws(() => ad.grad(sumOf(badCount))(x), isTransformError(/2 cotangent\(s\) for 1 argument/));
    const notArray = ad.customVjp((v: ad.Tensor) => v, { fwd: (v) => [v, null], bwd: (_r, g) => g as never });
    assert.throws(() => ad.grad(sumOf(notArray))(x), isTransformError(/one cotangent per argument/));
    const badShape = ad.customVjp((v: ad.Tensor) => v, { fwd: (v) => [v, null], bwd: () => [f64([1, 2])] });
    assert.throws(
      () => ad.grad(sumOf(badShape))(x),
      (e: unknown) => e instanceof ad.ShapeError && /shape \[2\], expected \[3\]/.test((e as Error).message),
    );
    const badFwd = ad.customVjp((v: ad.Tensor) => v, { fwd: (v) => v as never, bwd: (_r, g) => [g] });
    assert.throws(() => ad.grad(sumOf(badFwd))(x), isTransformError(/fwd must return a pair/));
    const badStructure = ad.customVjp((v: ad.Tensor) => v, {
      fwd: (v) => [[v, v] as never, null],
      bwd: (_r, g) => [g],
    });
    assert.throws(
      () => ad.grad(ad.jit(sumOf(badStructure)))(x),
      isTransformError(/fwd returned an output with structure/),
    );
  });
  test("a closure over a value being differentiated or jit-traced is a clear error", () => {
    const viaClosure = (w: ad.Tensor) => {
      const g = ad.customVjp((v: ad.Tensor) => ad.mul(v, w), {
        fwd: (v) => [ad.mul(v, w), null],
        bwd: (_r, ct) => [ad.mul(ct, w)],
      });
      return ad.sum(g(x));
    };
    assert.throws(() => ad.grad(viaClosure)(f64([1, 2, 3])), isTransformError(/as an argument/));
    assert.throws(() => ad.jit(viaClosure)(f64([1, 2, 3])), isTransformError(/as an argument/));
  });
});

describe("customJvp", () => {
  const x = f64([-100, -1, 0, 2, 100]);
  const sig = ad.sigmoid(x);
  test("value; jvp uses the rule; reverse mode transposes it exactly", () => {
    assertClose(softplus(x), ad.softplus(x));
    const t = f64([1, 2, 3, 4, 5]);
    assertClose(ad.jvp(softplus, [x], [t])[1], ad.mul(t, sig));
    assertClose(ad.grad(sumOf(softplus))(x), sig);
    assertClose(ad.vjp(softplus, x)[1](t)[0], ad.mul(t, sig));
    assertClose(ad.jacrev(softplus)(x), ad.jacfwd(softplus)(x));
    assertClose(ad.linearize(softplus, x)[1](t), ad.mul(t, sig));
  });
  test("the rule is what every mode uses (a rule that is not f's derivative shows it)", () => {
    const v = f64([0.1, 0.2]);
    assertClose(ad.jvp(sinJvp2, [v], [f64([1, 1])])[1], [2, 2]);
    assertClose(ad.grad(sumOf(sinJvp2))(v), [2, 2]);
    assertClose(ad.jit(ad.grad(sumOf(sinJvp2)))(v), [2, 2]);
    assertClose(ad.grad(ad.jit(sumOf(sinJvp2)))(v), [2, 2]);
    const ve = f64([0.1, 0.2]);
    ve.requiresGrad = true;
    ad.sum(sinJvp2(ve)).backward();
    assertClose(ve.grad!, [2, 2]);
  });
  test("higher order differentiates the rule: hessian, grad∘grad, jvp∘jvp", () => {
    const d2 = ad.mul(sig, ad.sub(1, sig));
    assertClose(ad.hessian(sumOf(softplus))(x), ad.mul(ad.eye(5, { dtype: "float64" }), d2));
    assertClose(ad.jacrev(ad.grad(sumOf(softplus)))(x), ad.mul(ad.eye(5, { dtype: "float64" }), d2));
    const s = (v: ad.Tensor | number) => softplus(v as ad.Tensor);
    assertClose(ad.grad(ad.grad(s))(0.3), 1 / (1 + Math.exp(-0.3)) / (1 + Math.exp(0.3)));
    const dd = ad.jvp((v: ad.Tensor) => ad.jvp(s, [v], [1])[1], [0.3], [1])[1];
    assertClose(dd, 1 / (1 + Math.exp(-0.3)) / (1 + Math.exp(0.3)));
  });
  test("jit and eager autograd (with createGraph)", () => {
    assertClose(ad.jit(ad.grad(sumOf(softplus)))(x), sig);
    assertClose(ad.grad(ad.jit(sumOf(softplus)))(x), sig);
    assert.match(ad.trace(softplus)(x).toString(), /custom_jvp_call/);
    const xe = ad.scalar(0.3, { dtype: "float64", requiresGrad: true });
    const y = softplus(xe);
    assert.equal(y.gradFn, "custom_jvp_call");
    const [g] = ad.autograd.grad(y, xe, { createGraph: true });
    assertClose(g, 1 / (1 + Math.exp(-0.3)));
    g!.backward();
    assertClose(xe.grad!, 1 / (1 + Math.exp(-0.3)) / (1 + Math.exp(0.3)));
  });
  test("several arguments, one of them an int tensor, and a number passed through", () => {
    const scaled = ad.customJvp((v: ad.Tensor, k: ad.Tensor, c: number) => ad.mul(ad.mul(v, k), c), {
      jvp: ([v, k, c], [t]) => [ad.mul(ad.mul(v, k), c), ad.mul(ad.mul(t, k), c)],
    });
    const k = ad.tensor([2, 3], { dtype: "int32" });
    assertClose(ad.grad((v: ad.Tensor) => ad.sum(scaled(v, k, 10)))(f64([1, 1])), [20, 30]);
    assert.throws(
      () => ad.customJvp((v: ad.Tensor) => v, {} as never),
      isTransformError(/jvp must be a function/),
    );
  });
});

describe("custom rules under vmap (one call per example)", () => {
  const X = f64([
    [0.5, -1, 2],
    [3, 3, -2],
    [1000, 1000, -Infinity],
  ]);
  test("vmap, vmap∘grad, grad∘vmap, jit∘vmap∘grad, in any axis", () => {
    assertClose(ad.vmap(stableLogsumexp)(X), ad.logsumexp(X, { axis: -1 }));
    assertClose(ad.vmap(stableLogsumexp, { inAxes: 1 })(X), ad.logsumexp(X, { axis: 0 }));
    const soft = ad.softmax(X);
    assertClose(ad.vmap(ad.grad(stableLogsumexp))(X), soft);
    assertClose(ad.grad((x: ad.Tensor) => ad.sum(ad.vmap(stableLogsumexp)(x)))(X), soft);
    assertClose(ad.jit(ad.vmap(ad.grad(stableLogsumexp)))(X), soft);
    assert.deepEqual(
      ad
        .vmap(ad.grad(sumOf(roundSTE)))(X)
        .toArray(),
      [
        [1, 1, 1],
        [1, 1, 1],
        [1, 1, 1],
      ],
    );
  });
  test("customJvp under vmap: values, jvp and grad per example", () => {
    const x = f64([
      [0, 1],
      [-2, 100],
    ]);
    assertClose(ad.vmap(softplus)(x), ad.softplus(x));
    assertClose(ad.vmap((v: ad.Tensor) => ad.jvp(softplus, [v], [ad.onesLike(v)])[1])(x), ad.sigmoid(x));
    assertClose(ad.vmap(ad.grad(sumOf(sinJvp2)))(x), ad.mul(ad.onesLike(x), 2));
  });
});
