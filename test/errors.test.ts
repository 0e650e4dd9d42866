/**
 * @file The typed errors of API.md §6 and §10 "Errors": ShapeError (incompatible shapes naming
 * both, item() of a non-size-1 tensor, mismatched tangents/cotangents, bad reshape, bad axis),
 * DTypeError (differentiating int32/bool inputs), TransformError (non-scalar outputs, bad argnums,
 * non-functions, hasAux without a pair, escaped tracers). Every error is an `ad.AdError` of the
 * specific class, never a raw TypeError from deep inside, and its message names the op.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";

// ---------------------------------------------------------------------------------------------
// Helpers

type ErrorClass = abstract new (message: string) => ad.AdError;
type Fn = (x: number) => number;
type Binary = (a: ad.Tensor, b: ad.Tensor) => ad.Tensor;

/** Whole-word occurrence of `word` in a message. */
function mentions(word: string): RegExp {
  return new RegExp(`(^|[^A-Za-z0-9_])${word.replace(/[[\]().*+?^$|\\]/g, "\\$&")}($|[^A-Za-z0-9_])`);
}

/**
 * `fn` throws an `ad.AdError` of class `cls` (named after it) whose message names `op` and
 * contains every extra fragment.
 */
function expectError(
  fn: () => unknown,
  cls: ErrorClass,
  op: string,
  ...fragments: (string | RegExp)[]
): Error {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== null, `expected a ${cls.name} naming ${op}, but nothing was thrown`);
  const e = caught as Error;
  assert.ok(e instanceof ad.AdError, `expected an AdError, got ${e?.constructor?.name}: ${e?.message}`);
  assert.ok(e instanceof cls, `expected a ${cls.name}, got ${e.constructor.name}: ${e.message}`);
  assert.ok(e instanceof Error);
  assert.equal(e.name, cls.name);
  assert.match(e.message, mentions(op), `the message should name "${op}": ${e.message}`);
  for (const f of fragments)
    if (typeof f === "string")
      assert.ok(e.message.includes(f), `the message should contain "${f}": ${e.message}`);
    else assert.match(e.message, f);
  return e;
}

/** Call a transform with arguments outside its static types (as plain JS can). */
function loose<T>(v: unknown): T {
  return v as T;
}

const i32 = (data: ad.TensorData) => ad.tensor(data, { dtype: "int32" });
const bool = (data: ad.TensorData) => ad.tensor(data, { dtype: "bool" });
const sumF = (x: ad.Tensor) => ad.sum(x);

// ---------------------------------------------------------------------------------------------

describe("the error classes", () => {
  test("every class extends AdError and Error, and is named after itself", () => {
    const classes: ErrorClass[] = [
      ad.ShapeError,
      ad.DTypeError,
      ad.TransformError,
      ad.AnomalyError,
      ad.InPlaceError,
      ad.GraphFreedError,
    ];
    for (const C of classes) {
      const e = new (C as new (m: string) => ad.AdError)("boom");
      assert.ok(e instanceof ad.AdError);
      assert.ok(e instanceof Error);
      assert.equal(e.name, C.name);
      assert.equal(e.message, "boom");
    }
    assert.equal(new ad.AdError("x").name, "AdError");
    // The specific classes are distinct.
    assert.ok(!(new ad.ShapeError("x") instanceof ad.DTypeError));
    assert.ok(!(new ad.TransformError("x") instanceof ad.ShapeError));
  });
});

describe("ShapeError", () => {
  test("incompatible broadcast names the op and both shapes: add [2, 3] + [4]", () => {
    expectError(() => ad.add(ad.zeros([2, 3]), ad.zeros([4])), ad.ShapeError, "add", "[2, 3]", "[4]");
    expectError(() => ad.zeros([2, 3]).add(ad.zeros([4])), ad.ShapeError, "add", "[2, 3]", "[4]");
    expectError(() => ad.mul(ad.zeros([2, 3]), ad.zeros([3, 2])), ad.ShapeError, "mul", "[2, 3]", "[3, 2]");
    const binary: [string, Binary][] = [
      ["sub", ad.sub],
      ["div", ad.div],
      ["pow", ad.pow],
      ["atan2", ad.atan2],
    ];
    for (const [name, op] of binary)
      expectError(() => op(ad.zeros([2, 3]), ad.zeros([4])), ad.ShapeError, name, "[2, 3]", "[4]");
  });

  test("matmul with mismatched contracting dimensions names both shapes", () => {
    expectError(
      () => ad.matmul(ad.zeros([2, 3]), ad.zeros([4, 5])),
      ad.ShapeError,
      "matmul",
      "[2, 3]",
      "[4, 5]",
    );
    expectError(() => ad.zeros([2, 3]).matmul(ad.zeros([4, 5])), ad.ShapeError, "matmul", "[2, 3]", "[4, 5]");
    expectError(() => ad.matmul(ad.zeros([]), ad.zeros([3])), ad.ShapeError, "matmul");
  });

  test("matmul of a matrix and a vector names the shapes the user passed", () => {
    expectError(() => ad.matmul(ad.zeros([2, 3]), ad.zeros([4])), ad.ShapeError, "matmul", "[2, 3]", "[4]");
  });

  test("batched matmul with incompatible batch dimensions names both full shapes", () => {
    expectError(
      () => ad.matmul(ad.zeros([2, 2, 3]), ad.zeros([3, 3, 4])),
      ad.ShapeError,
      "matmul",
      "[2, 2, 3]",
      "[3, 3, 4]",
    );
  });

  test("dot of vectors of different lengths names dot and both shapes", () => {
    expectError(() => ad.dot(ad.zeros([3]), ad.zeros([4])), ad.ShapeError, "dot", "[3]", "[4]");
  });

  test("item() on a tensor that is not size 1", () => {
    expectError(() => ad.zeros([2]).item(), ad.ShapeError, "item", "[2]");
    expectError(() => ad.zeros([2, 3]).item(), ad.ShapeError, "item", "[2, 3]");
    expectError(() => ad.zeros([0]).item(), ad.ShapeError, "item", "[0]");
    assert.equal(ad.zeros([1, 1]).item(), 0);
  });

  test("a jvp tangent whose shape differs from its primal", () => {
    expectError(() => ad.jvp(sumF, [ad.zeros([2])], [ad.zeros([3])]), ad.ShapeError, "jvp", "[3]", "[2]");
    expectError(() => ad.jvp(sumF, [ad.zeros([2])], [1]), ad.ShapeError, "jvp", "[]", "[2]");
    expectError(
      () => ad.jvp((p: { a: ad.Tensor }) => ad.sum(p.a), [{ a: ad.zeros([2]) }], [{ a: ad.zeros([2, 1]) }]),
      ad.ShapeError,
      "jvp",
      "[2, 1]",
      "[2]",
    );
    expectError(
      () => ad.jvp((x: number, y: ad.Tensor) => ad.mul(x, ad.sum(y)), [1, ad.zeros([2])], [1, ad.zeros([1])]),
      ad.ShapeError,
      "jvp",
      "[1]",
      "[2]",
    );
  });

  test("mismatched linearize tangents and vjp cotangents", () => {
    const [, lin] = ad.linearize((x: ad.Tensor) => ad.sin(x), ad.zeros([2]));
    expectError(() => lin(ad.zeros([3])), ad.ShapeError, "linearize", "[3]", "[2]");
    const [, back] = ad.vjp((x: ad.Tensor) => ad.sin(x), ad.zeros([2]));
    expectError(() => back(ad.zeros([3])), ad.ShapeError, "vjp", "[3]", "[2]");
    const [, back2] = ad.vjp(sumF, ad.zeros([2]));
    expectError(() => back2(ad.zeros([1])), ad.ShapeError, "vjp", "[1]", "[]");
  });

  test("an hvp tangent whose shape differs from its primal names hvp", () => {
    expectError(() => ad.hvp(sumF, [ad.zeros([2])], [ad.zeros([3])]), ad.ShapeError, "hvp", "[3]", "[2]");
  });

  test("bad reshape", () => {
    expectError(() => ad.reshape(ad.zeros([2, 3]), [4]), ad.ShapeError, "reshape", "[2, 3]", "[4]");
    expectError(() => ad.zeros([2, 3]).reshape([5]), ad.ShapeError, "reshape", "[2, 3]", "[5]");
    expectError(() => ad.reshape(ad.zeros([2, 3]), [4, -1]), ad.ShapeError, "reshape");
    expectError(() => ad.reshape(ad.zeros([2, 3]), [-1, -1]), ad.ShapeError, "reshape");
    assert.deepEqual(ad.reshape(ad.zeros([2, 3]), [3, -1]).shape, [3, 2]);
  });

  test("bad axis in reductions", () => {
    const reductions: [string, (x: ad.Tensor, o: { axis: number }) => ad.Tensor][] = [
      ["sum", ad.sum],
      ["mean", ad.mean],
      ["prod", ad.prod],
      ["max", ad.max],
      ["min", ad.min],
      ["logsumexp", ad.logsumexp],
      ["argmax", ad.argmax],
      ["argmin", ad.argmin],
    ];
    for (const [name, op] of reductions) {
      expectError(() => op(ad.zeros([2, 3]), { axis: 2 }), ad.ShapeError, name, "2");
      expectError(() => op(ad.zeros([2, 3]), { axis: -3 }), ad.ShapeError, name, "-3");
    }
    expectError(() => ad.sum(ad.zeros([2, 3]), { axis: 1.5 }), ad.ShapeError, "sum");
    expectError(() => ad.sum(ad.zeros([2, 3]), { axis: [0, 0] }), ad.ShapeError, "sum");
    expectError(() => ad.zeros([2, 3]).sum({ axis: 5 }), ad.ShapeError, "sum");
    // Negative axes in range are fine.
    assert.deepEqual(ad.sum(ad.zeros([2, 3]), { axis: -1 }).shape, [2]);
  });

  test("bad axis in shape operations", () => {
    expectError(() => ad.transpose(ad.zeros([2, 3]), [0, 2]), ad.ShapeError, "transpose");
    expectError(() => ad.transpose(ad.zeros([2, 3]), [0, 0]), ad.ShapeError, "transpose");
    expectError(() => ad.concat([ad.zeros([2, 3]), ad.zeros([2, 3])], 3), ad.ShapeError, "concat");
    expectError(
      () => ad.concat([ad.zeros([2, 3]), ad.zeros([3, 4])], 0),
      ad.ShapeError,
      "concat",
      "[2, 3]",
      "[3, 4]",
    );
    expectError(() => ad.stack([ad.zeros([2, 3]), ad.zeros([4])]), ad.ShapeError, "stack", "[2, 3]", "[4]");
    expectError(() => ad.stack([ad.zeros([2, 3]), ad.zeros([2, 3])], 3), ad.ShapeError, "stack");
    expectError(() => ad.expandDims(ad.zeros([2, 3]), 5), ad.ShapeError, "expandDims");
    expectError(() => ad.squeeze(ad.zeros([2, 3]), 0), ad.ShapeError, "squeeze", "[2, 3]");
    expectError(() => ad.flip(ad.zeros([2, 3]), 3), ad.ShapeError, "flip");
    expectError(() => ad.split(ad.zeros([2, 3]), 2, 3), ad.ShapeError, "split");
    expectError(() => ad.split(ad.zeros([2, 3]), 4, 1), ad.ShapeError, "split", "[2, 3]");
    expectError(
      () => ad.broadcastTo(ad.zeros([2, 3]), [4, 3]),
      ad.ShapeError,
      "broadcastTo",
      "[2, 3]",
      "[4, 3]",
    );
    expectError(() => ad.slice(ad.zeros([2, 3]), [0, 0], [3, 3]), ad.ShapeError, "slice", "[2, 3]");
    expectError(() => ad.zeros([2, 3]).at(5), ad.ShapeError, "at");
    expectError(() => ad.pad(ad.zeros([2, 3]), [[1, 1]]), ad.ShapeError, "pad", "[2, 3]");
  });

  test("creation with inconsistent data or shapes", () => {
    expectError(() => ad.tensor([[1, 2], [3]]), ad.ShapeError, "tensor");
    expectError(() => ad.tensor(new Float32Array(5), { shape: [2, 3] }), ad.ShapeError, "tensor", "[2, 3]");
    expectError(() => ad.zeros([-1]), ad.ShapeError, "full");
  });
});

describe("messages name the user-facing op (not an internal primitive)", () => {
  const A = ad.zeros([2, 3]);
  const B = ad.zeros([4]);
  test("maximum and minimum", () => {
    expectError(() => ad.maximum(A, B), ad.ShapeError, "maximum", "[2, 3]", "[4]");
    expectError(() => ad.minimum(A, B), ad.ShapeError, "minimum", "[2, 3]", "[4]");
  });
  test("comparisons", () => {
    const comparisons: [string, Binary][] = [
      ["equal", ad.equal],
      ["notEqual", ad.notEqual],
      ["less", ad.less],
      ["lessEqual", ad.lessEqual],
      ["greater", ad.greater],
      ["greaterEqual", ad.greaterEqual],
    ];
    for (const [name, op] of comparisons) expectError(() => op(A, B), ad.ShapeError, name, "[2, 3]", "[4]");
  });
  test("where", () => {
    expectError(
      () => ad.where(bool([true, false, true, false]), A, A),
      ad.ShapeError,
      "where",
      "[4]",
      "[2, 3]",
    );
  });
  test("softmax, logSoftmax, normalize and std with a bad axis", () => {
    expectError(() => ad.softmax(A, 2), ad.ShapeError, "softmax");
    expectError(() => ad.logSoftmax(A, 2), ad.ShapeError, "logSoftmax");
    expectError(() => ad.normalize(A, { axis: 2 }), ad.ShapeError, "normalize");
    expectError(() => ad.std(A, { axis: 2 }), ad.ShapeError, "std");
  });
  test("an escaped tracer used in sum", () => {
    let leaked: ad.Tensor | null = null;
    ad.grad((x: ad.Tensor) => {
      leaked = ad.mul(x, 2);
      return ad.sum(x);
    })(ad.tensor([1, 2]));
    const t = leaked as unknown as ad.Tensor;
    expectError(() => ad.sum(t), ad.TransformError, "sum", "escaped tracer");
  });
  test("take with an out-of-bounds index", () => {
    expectError(() => ad.take(A, [5], 1), ad.ShapeError, "take");
  });
  test("hessian and hvp report their own names", () => {
    expectError(() => ad.hessian(sumF)(i32([1])), ad.DTypeError, "hessian");
    expectError(() => ad.hessian(sumF, { argnums: 3 })(ad.zeros([1])), ad.TransformError, "hessian");
    expectError(
      () => ad.hvp((x: ad.Tensor) => ad.mul(x, 2), [ad.zeros([2])], [ad.zeros([2])]),
      ad.TransformError,
      "hvp",
    );
    expectError(() => ad.hvp(sumF, [i32([1])], [i32([1])]), ad.DTypeError, "hvp");
  });
});

describe("DTypeError", () => {
  test("grad with respect to int32 and bool inputs", () => {
    expectError(() => ad.grad(sumF)(i32([1, 2])), ad.DTypeError, "grad", "int32");
    expectError(
      () => ad.grad((x: ad.Tensor) => ad.sum(x.astype("float32")))(bool([true])),
      ad.DTypeError,
      "grad",
      "bool",
    );
    expectError(
      () => ad.grad((_x: number, y: ad.Tensor) => ad.sum(y), { argnums: 1 })(1, i32([1, 2])),
      ad.DTypeError,
      "grad",
      "argument 1",
    );
    expectError(
      () => ad.grad((p: { a: ad.Tensor; b: ad.Tensor }) => ad.sum(p.a))({ a: ad.tensor([1.5]), b: i32([1]) }),
      ad.DTypeError,
      "grad",
      "int32",
    );
    expectError(() => ad.grad(sumF, { argnums: [0] })(i32([1])), ad.DTypeError, "grad");
  });

  test("every transform refuses to differentiate an integer input", () => {
    const x = i32([1, 2]);
    expectError(() => ad.valueAndGrad(sumF)(x), ad.DTypeError, "valueAndGrad", "int32");
    expectError(() => ad.vjp(sumF, x), ad.DTypeError, "vjp", "int32");
    expectError(() => ad.vjp(sumF, bool([true])), ad.DTypeError, "vjp", "bool");
    expectError(() => ad.jvp(sumF, [x], [x]), ad.DTypeError, "jvp", "int32");
    expectError(() => ad.linearize(sumF, x), ad.DTypeError, "linearize", "int32");
    expectError(() => ad.jacfwd(sumF)(x), ad.DTypeError, "jacfwd", "int32");
    expectError(() => ad.jacrev(sumF)(x), ad.DTypeError, "jacrev", "int32");
    expectError(() => ad.jacobian(sumF)(x), ad.DTypeError, "jacobian", "int32");
  });

  test("integer arguments that are not differentiated are fine", () => {
    const f = (w: ad.Tensor, idx: ad.Tensor) => ad.sum(ad.take(w, idx));
    assert.deepEqual(
      ad
        .grad(f)(ad.tensor([1, 2, 3]), i32([2, 2]))
        .toArray(),
      [0, 0, 2],
    );
  });

  test("grad of an integer-valued output", () => {
    expectError(
      () => ad.grad((x: ad.Tensor) => ad.argmax(x))(ad.tensor([1, 2])),
      ad.DTypeError,
      "grad",
      "int32",
    );
  });

  test("unknown dtypes", () => {
    expectError(
      () => ad.tensor([1], { dtype: loose<ad.DType>("float128") }),
      ad.DTypeError,
      "tensor",
      "float128",
    );
    expectError(() => ad.zeros([2]).astype(loose<ad.DType>("float128")), ad.DTypeError, "astype", "float128");
  });
});

describe("TransformError", () => {
  test("grad of a non-scalar output names the shape", () => {
    expectError(
      () => ad.grad((x: ad.Tensor) => ad.mul(x, 2))(ad.tensor([1, 2])),
      ad.TransformError,
      "grad",
      "[2]",
    );
    expectError(
      () => ad.grad((x: ad.Tensor) => ad.mul(x, 2))(ad.zeros([2, 3])),
      ad.TransformError,
      "grad",
      "[2, 3]",
    );
    expectError(
      () => ad.valueAndGrad((x: ad.Tensor) => ad.mul(x, 2))(ad.zeros([2, 3])),
      ad.TransformError,
      "valueAndGrad",
      "[2, 3]",
    );
    expectError(
      () => ad.grad((x: ad.Tensor) => [ad.sum(x), ad.sum(x)])(ad.zeros([2])),
      ad.TransformError,
      "grad",
    );
    expectError(
      () => ad.grad((x: ad.Tensor) => ({ a: ad.sum(x) }))(ad.zeros([2])),
      ad.TransformError,
      "grad",
    );
    // A size-1 tensor of any rank is a scalar.
    assert.deepEqual(
      ad
        .grad((x: ad.Tensor) => ad.reshape(ad.sum(x), [1, 1]))(ad.zeros([2]))
        .toArray(),
      [1, 1],
    );
  });

  test("argnums out of range", () => {
    const f = (x: number, y: number) => ad.mul(x, y);
    expectError(() => ad.grad(f, { argnums: 2 })(1, 2), ad.TransformError, "grad", "2");
    expectError(() => ad.grad(f, { argnums: [0, 2] })(1, 2), ad.TransformError, "grad", "2");
    expectError(() => ad.grad(f, { argnums: -3 })(1, 2), ad.TransformError, "grad", "-3");
    expectError(() => loose<() => unknown>(ad.grad((x: number) => x))(), ad.TransformError, "grad");
    expectError(() => ad.valueAndGrad(f, { argnums: 5 })(1, 2), ad.TransformError, "valueAndGrad");
    expectError(() => ad.jacfwd(f, { argnums: 3 })(1, 2), ad.TransformError, "jacfwd");
    expectError(() => ad.jacrev(f, { argnums: [3] })(1, 2), ad.TransformError, "jacrev");
    expectError(() => ad.jacobian(f, { argnums: 3 })(1, 2), ad.TransformError, "jacobian");
    // In range negatives count from the end.
    assert.equal(ad.grad(f, { argnums: -1 })(3, 2), 3);
  });

  test("argnums that are not integers, repeated or empty", () => {
    const f = (x: number, y: number) => ad.mul(x, y);
    expectError(() => ad.grad(f, { argnums: 0.5 })(1, 2), ad.TransformError, "grad", "0.5");
    expectError(() => ad.grad(f, { argnums: Number.NaN })(1, 2), ad.TransformError, "grad", "NaN");
    expectError(() => ad.grad(f, { argnums: Number.POSITIVE_INFINITY })(1, 2), ad.TransformError, "grad");
    expectError(() => ad.grad(f, { argnums: [0, 1.5] })(1, 2), ad.TransformError, "grad", "1.5");
    expectError(() => ad.grad(f, { argnums: [0, 0] })(1, 2), ad.TransformError, "grad");
    expectError(() => ad.grad(f, { argnums: [] })(1, 2), ad.TransformError, "grad");
    expectError(() => ad.grad(f, { argnums: loose<number>("0") })(1, 2), ad.TransformError, "grad");
    expectError(() => ad.jacrev(f, { argnums: 1.5 })(1, 2), ad.TransformError, "jacrev");
  });

  test("argnums of the wrong type (an object) is a TransformError, not a raw TypeError", () => {
    const f = (x: number) => x;
    expectError(() => ad.grad(f, { argnums: loose<number>({}) })(1), ad.TransformError, "grad", "argnums");
  });

  test("a non-function", () => {
    const notFns: unknown[] = [3, null, undefined, "f", {}];
    for (const nf of notFns) {
      const bad = loose<Fn>(nf);
      expectError(() => ad.grad(bad), ad.TransformError, "grad");
      expectError(() => ad.valueAndGrad(bad), ad.TransformError, "valueAndGrad");
      expectError(() => ad.vjp(bad, 1), ad.TransformError, "vjp");
      expectError(() => ad.jvp(bad, [1], [1]), ad.TransformError, "jvp");
      expectError(() => ad.linearize(bad, 1), ad.TransformError, "linearize");
      expectError(() => ad.hessian(bad), ad.TransformError, "hessian");
      expectError(() => ad.hvp(bad, [1], [1]), ad.TransformError, "hvp");
      // The Jacobians may check when built or when called; either way a TransformError.
      expectError(() => ad.jacfwd(bad)(1), ad.TransformError, "jacfwd");
      expectError(() => ad.jacrev(bad)(1), ad.TransformError, "jacrev");
      expectError(() => ad.jacobian(bad)(1), ad.TransformError, "jacobian");
    }
  });

  test("hasAux without a pair", () => {
    const sq = (x: number) => ad.mul(x, x);
    expectError(
      () => ad.grad(loose<(x: number) => [ad.Tensor, unknown]>(sq), { hasAux: true })(1),
      ad.TransformError,
      "grad",
      "hasAux",
    );
    expectError(
      () =>
        ad.grad(
          loose<(x: number) => [ad.Tensor, unknown]>((x: number) => [x, x, x]),
          { hasAux: true },
        )(1),
      ad.TransformError,
      "grad",
    );
    expectError(
      () =>
        ad.grad(
          loose<(x: number) => [ad.Tensor, unknown]>((x: number) => ({ 0: sq(x), 1: 2 })),
          { hasAux: true },
        )(1),
      ad.TransformError,
      "grad",
    );
    expectError(
      () => ad.valueAndGrad(loose<(x: number) => [ad.Tensor, unknown]>(sq), { hasAux: true })(1),
      ad.TransformError,
      "valueAndGrad",
      "hasAux",
    );
  });

  test("functions that return something other than tensors or numbers", () => {
    expectError(() => ad.grad(loose<(x: number) => number>(() => "a"))(1), ad.TransformError, "grad");
    expectError(
      () =>
        ad.jvp(
          loose<(x: number) => number>(() => "a"),
          [1],
          [1],
        ),
      ad.TransformError,
      "jvp",
    );
    expectError(() => ad.grad(loose<(x: number) => number>(() => undefined))(1), ad.TransformError, "grad");
    expectError(
      () => ad.grad((_x: unknown) => ad.mul(2, 3))(loose<number>("abc")),
      ad.TransformError,
      "grad",
    );
  });

  test("mismatched transform arguments: counts and structures", () => {
    expectError(
      () => ad.jvp((x: number) => x, loose<number[]>(1), loose<number[]>(1)),
      ad.TransformError,
      "jvp",
    );
    expectError(() => ad.jvp((x: number) => x, [1], loose<[number]>([1, 2])), ad.TransformError, "jvp");
    expectError(() => ad.jvp((p: { a: number }) => p.a, [{ a: 1 }], [[1]]), ad.TransformError, "jvp");
    expectError(() => ad.vjp((x: number) => [x, x], 1)[1](1), ad.TransformError, "vjp");
    const [, lin] = ad.linearize((x: number) => ad.sin(x), 1);
    expectError(() => loose<(...a: number[]) => unknown>(lin)(1, 2), ad.TransformError, "linearize");
    expectError(
      () => ad.hvp((x: number) => x, loose<[number]>(1), loose<[number]>(1)),
      ad.TransformError,
      "hvp",
    );
  });

  describe("escaped tracers: using a tracer after its transform returned", () => {
    const leakFrom = (run: (capture: (t: ad.Tensor) => void) => void): ad.Tensor => {
      let leaked: ad.Tensor | null = null;
      run((t) => {
        leaked = t;
      });
      assert.ok(leaked !== null);
      return leaked;
    };
    const leaks: [string, ad.Tensor][] = [
      [
        "grad",
        leakFrom((c) =>
          ad.grad((x: ad.Tensor) => {
            c(ad.mul(x, 2));
            return ad.sum(x);
          })(ad.tensor([1, 2])),
        ),
      ],
      [
        "jvp",
        leakFrom((c) =>
          ad.jvp(
            (x: number) => {
              const y = ad.mul(x, 2);
              c(y);
              return y;
            },
            [1],
            [1],
          ),
        ),
      ],
      [
        "vjp",
        leakFrom((c) =>
          ad.vjp(
            (x: ad.Tensor) => {
              const y = ad.exp(x);
              c(y);
              return y;
            },
            ad.tensor([1]),
          ),
        ),
      ],
      [
        "linearize",
        leakFrom((c) =>
          ad.linearize((x: number) => {
            const y = ad.sin(x);
            c(y);
            return y;
          }, 1),
        ),
      ],
      [
        "jacfwd",
        leakFrom((c) =>
          ad.jacfwd((x: ad.Tensor) => {
            const y = ad.square(x);
            c(y);
            return y;
          })(ad.tensor([1, 2])),
        ),
      ],
    ];
    for (const [name, t] of leaks)
      test(`a tracer leaked from ${name}`, () => {
        expectError(() => ad.add(t, 1), ad.TransformError, "add", "escaped");
        expectError(() => ad.exp(t), ad.TransformError, "exp");
        expectError(() => t.mul(2), ad.TransformError, "mul");
        expectError(() => ad.sin(ad.sum(t)), ad.TransformError, "escaped tracer");
        // Inside a different, later transform it is still an escaped tracer, not a constant.
        expectError(() => ad.grad((y: number) => ad.mul(y, ad.sum(t)))(1), ad.TransformError, "escaped");
      });
  });
});
