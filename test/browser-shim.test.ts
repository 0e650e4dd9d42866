/**
 * @file The browser shims of `node:assert/strict` and `node:test` (browser/shim/) checked under
 * Node: every assertion passes or fails exactly when Node's own does, over a table of cases
 * aimed at the strict semantics (Object.is, prototypes, typed-array bytes, -0, NaN, Map/Set,
 * error matching); and the test runner reports failures, skips, todos, hooks and subtests in
 * order, so a browser run cannot pass by losing a failure.
 */

import nodeAssert from "node:assert/strict";
import { describe, test } from "node:test";
import { importsOf, isNodeBuiltin } from "../browser/node/select.js";
import shim from "../browser/shim/assert.js";
import * as nt from "../browser/shim/node-test.js";

/** Did `f` throw? */
const throwsAt = (f: () => unknown): boolean => {
  try {
    f();
    return false;
  } catch {
    return true;
  }
};

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}
const cyclic = (): Record<string, unknown> => {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
};
const sparse = (): unknown[] => {
  const a: unknown[] = [1];
  a[2] = 3;
  return a;
};
const withExtra = (): number[] => Object.assign([1, 2], { extra: true });
const sym = Symbol("s");

/** [label, actual, expected] pairs for the equality assertions. */
const PAIRS: readonly (readonly [string, unknown, unknown])[] = [
  ["same number", 1, 1],
  ["different numbers", 1, 2],
  ["NaN, NaN", Number.NaN, Number.NaN],
  ["0, -0", 0, -0],
  ["number vs string", 1, "1"],
  ["null vs undefined", null, undefined],
  ["equal arrays", [1, [2, 3]], [1, [2, 3]]],
  ["arrays of different length", [1, 2], [1, 2, 3]],
  ["arrays with -0", [0], [-0]],
  ["sparse vs undefined", sparse(), [1, undefined, 3]],
  ["array with an extra key", withExtra(), [1, 2]],
  ["equal objects, other key order", { a: 1, b: 2 }, { b: 2, a: 1 }],
  ["object with an undefined key", { a: 1, b: undefined }, { a: 1 }],
  ["class instance vs plain object", new Point(1, 2), { x: 1, y: 2 }],
  ["equal class instances", new Point(1, 2), new Point(1, 2)],
  ["null-prototype object", Object.assign(Object.create(null), { a: 1 }), { a: 1 }],
  ["Float32Array equal", new Float32Array([1, 2]), new Float32Array([1, 2])],
  ["Float32Array vs Float64Array", new Float32Array([1, 2]), new Float64Array([1, 2])],
  ["Float64Array NaN", new Float64Array([Number.NaN]), new Float64Array([Number.NaN])],
  ["Float64Array -0", new Float64Array([0]), new Float64Array([-0])],
  ["Int32Array differ", new Int32Array([1, 2]), new Int32Array([1, 3])],
  ["typed array vs array", new Int32Array([1]), [1]],
  ["Map equal", new Map([["a", [1]]]), new Map([["a", [1]]])],
  ["Map differ", new Map([["a", 1]]), new Map([["a", 2]])],
  ["Map object keys", new Map([[{ k: 1 }, 1]]), new Map([[{ k: 1 }, 1]])],
  ["Set any order", new Set([1, 2, 3]), new Set([3, 2, 1])],
  ["Set differ", new Set([1, 2]), new Set([1, 3])],
  ["Set of objects", new Set([{ a: 1 }, { a: 2 }]), new Set([{ a: 2 }, { a: 1 }])],
  ["Dates", new Date(5), new Date(5)],
  ["Dates differ", new Date(5), new Date(6)],
  ["RegExps", /a/g, /a/g],
  ["RegExp flags", /a/g, /a/i],
  ["Errors same message", new TypeError("x"), new TypeError("x")],
  ["Errors differ", new TypeError("x"), new TypeError("y")],
  ["Error classes differ", new TypeError("x"), new RangeError("x")],
  ["boxed numbers", Object(1), Object(1)],
  ["boxed vs primitive", Object(1), 1],
  ["symbol keys", { [sym]: 1 }, { [sym]: 1 }],
  ["symbol keys differ", { [sym]: 1 }, { [sym]: 2 }],
  ["cycles", cyclic(), cyclic()],
  ["nested tensors as arrays", [[0.5, -0]], [[0.5, 0]]],
  ["functions", Math.sin, Math.sin],
  ["different functions", Math.sin, Math.cos],
];

/** Each case: run it with an assert implementation. */
type Case = readonly [string, (a: typeof nodeAssert) => unknown];

class MyError extends Error {
  code = 42;
}
const boom = () => {
  throw new MyError("boom 7");
};

const CASES: readonly Case[] = [
  ...PAIRS.flatMap(([label, x, y]): Case[] => [
    [`equal: ${label}`, (a) => a.equal(x, y)],
    [`notEqual: ${label}`, (a) => a.notEqual(x, y)],
    [`deepEqual: ${label}`, (a) => a.deepEqual(x, y)],
    [`notDeepEqual: ${label}`, (a) => a.notDeepEqual(x, y)],
  ]),
  // Always with a message: without one, Node 20 builds the message by re-reading the caller's
  // source file, and on this TypeScript file (run through tsx) that loop never ended.
  ["ok true", (a) => a.ok(1, "m")],
  ["ok false", (a) => a.ok(0, "m")],
  ["ok empty string", (a) => a.ok("", "m")],
  ["callable", (a) => a(false, "m")],
  ["match", (a) => a.match("abc", /b/)],
  ["match fails", (a) => a.match("abc", /d/)],
  ["match a non-string", (a) => a.match(5 as unknown as string, /5/)],
  ["doesNotMatch", (a) => a.doesNotMatch("abc", /d/)],
  ["throws: nothing thrown", (a) => a.throws(() => 1)],
  ["throws: anything", (a) => a.throws(boom)],
  ["throws: class", (a) => a.throws(boom, MyError)],
  ["throws: base class", (a) => a.throws(boom, Error)],
  ["throws: wrong class", (a) => a.throws(boom, TypeError)],
  ["throws: RegExp on message", (a) => a.throws(boom, /boom \d/)],
  ["throws: RegExp on name", (a) => a.throws(boom, /^Error: boom/)],
  ["throws: RegExp mismatch", (a) => a.throws(boom, /bang/)],
  ["throws: validator true", (a) => a.throws(boom, (e: unknown) => e instanceof MyError)],
  ["throws: validator false", (a) => a.throws(boom, (e: unknown) => e instanceof TypeError)],
  ["throws: validator truthy but not true", (a) => a.throws(boom, (() => 1) as unknown as () => boolean)],
  ["throws: object", (a) => a.throws(boom, { message: "boom 7", code: 42 })],
  ["throws: object with RegExp", (a) => a.throws(boom, { message: /boom/ })],
  ["throws: object mismatch", (a) => a.throws(boom, { code: 41 })],
  ["throws: object missing key", (a) => a.throws(boom, { nope: 1 })],
  ["throws: string is the message", (a) => a.throws(() => 1, "should throw")],
  [
    "throws: a non-Error value",
    (a) =>
      a.throws(() => {
        throw 3;
      }, /3/),
  ],
  ["doesNotThrow", (a) => a.doesNotThrow(() => 1)],
  ["doesNotThrow fails", (a) => a.doesNotThrow(boom)],
  ["fail", (a) => a.fail("x")],
  ["ifError null", (a) => a.ifError(null)],
  ["ifError error", (a) => a.ifError(new Error("x"))],
  ["strictEqual alias", (a) => a.strictEqual(1, 1)],
  ["deepStrictEqual alias", (a) => a.deepStrictEqual({ a: [1] }, { a: [1] })],
];

describe("the node:assert/strict shim agrees with Node", () => {
  for (const [label, run] of CASES) {
    test(label, () => {
      const want = throwsAt(() => run(nodeAssert));
      const got = throwsAt(() => run(shim as unknown as typeof nodeAssert));
      nodeAssert.equal(
        got,
        want,
        `Node ${want ? "throws" : "passes"}, the shim ${got ? "throws" : "passes"}`,
      );
    });
  }

  test("rejects and doesNotReject agree", async () => {
    const outcome = async (p: () => Promise<unknown>) =>
      p().then(
        () => "ok",
        () => "threw",
      );
    const cases: ((a: typeof nodeAssert) => Promise<unknown>)[] = [
      (a) => a.rejects(Promise.reject(new MyError("x")), MyError),
      (a) => a.rejects(Promise.reject(new MyError("x")), TypeError),
      (a) => a.rejects(Promise.resolve(1)),
      (a) => a.rejects(async () => boom(), /boom/),
      (a) => a.doesNotReject(Promise.resolve(1)),
      (a) => a.doesNotReject(Promise.reject(new Error("x"))),
    ];
    for (const c of cases) {
      nodeAssert.equal(
        await outcome(() => c(shim as unknown as typeof nodeAssert)),
        await outcome(() => c(nodeAssert)),
        String(c),
      );
    }
  });

  test("a failure is an AssertionError carrying actual, expected and a readable message", () => {
    nodeAssert.throws(
      () => shim.deepEqual({ a: [1, 2] }, { a: [1, 3] }),
      (e: unknown) =>
        e instanceof shim.AssertionError &&
        e.code === "ERR_ASSERTION" &&
        /\[1, 2\]/.test(e.message) &&
        /\[1, 3\]/.test(e.message),
    );
    nodeAssert.throws(() => shim.equal(1, 2, "custom"), { message: "custom" });
  });
});

describe("the node:test shim", () => {
  test("runs tests in registration order with hooks, skips, todos and subtests, and reports failures", async () => {
    const order: string[] = [];
    nt.beginFile();
    nt.before(() => void order.push("before"));
    nt.test("first", () => void order.push("first"));
    nt.describe("group", () => {
      nt.beforeEach(() => void order.push("beforeEach"));
      nt.afterEach(() => void order.push("afterEach"));
      nt.test("passes", () => void order.push("passes"));
      nt.test("fails", () => {
        order.push("fails");
        shim.equal(1, 2);
      });
      nt.test("async fails", async () => {
        await Promise.resolve();
        throw new RangeError("late");
      });
      nt.test("skipped", { skip: "not here" }, () => void order.push("never"));
      nt.test.todo("todo that fails", () => shim.fail("not yet"));
      nt.describe.skip("skipped group", () => {
        nt.test("inner", () => void order.push("never"));
      });
    });
    nt.describe("broken describe", () => {
      throw new Error("at registration");
    });
    nt.test("with subtests and a diagnostic", async (t) => {
      t.diagnostic("note");
      await t.test("sub ok", () => {});
      await t.test("sub bad", () => shim.ok(false));
    });
    nt.after(() => void order.push("after"));
    const results = await nt.runFile();
    const summary = results.map((r) => `${r.path.join(" > ")}: ${r.status}`);
    nodeAssert.deepEqual(summary, [
      "first: pass",
      "group > passes: pass",
      "group > fails: fail",
      "group > async fails: fail",
      "group > skipped: skip",
      "group > todo that fails: todo",
      "group > skipped group > inner: skip",
      "broken describe: fail",
      "with subtests and a diagnostic > sub ok: pass",
      "with subtests and a diagnostic > sub bad: fail",
      "with subtests and a diagnostic: fail",
    ]);
    nodeAssert.deepEqual(order, [
      "before",
      "first",
      "beforeEach",
      "passes",
      "afterEach",
      "beforeEach",
      "fails",
      "afterEach",
      "beforeEach",
      "afterEach",
      "beforeEach",
      "afterEach",
      "after",
    ]);
    const byName = new Map(results.map((r) => [r.path.join(" > "), r]));
    nodeAssert.match(
      byName.get("group > fails")!.error!,
      /^AssertionError: Expected values to be strictly equal/,
    );
    nodeAssert.match(byName.get("group > async fails")!.error!, /^RangeError: late/);
    nodeAssert.match(byName.get("broken describe")!.error!, /at registration/);
    nodeAssert.deepEqual(byName.get("with subtests and a diagnostic")!.diagnostics, ["note"]);
  });

  test("beginFile starts an empty tree", async () => {
    nt.beginFile();
    nt.test("left over", () => {});
    nt.beginFile();
    nodeAssert.deepEqual(await nt.runFile(), []);
  });
});

describe("the import scan used to pick browser test files", () => {
  test("finds static, side-effect, re-export and literal dynamic imports, not comments or types", () => {
    const src = [
      '/** import * as ad from "in-a-comment"; */',
      'import a from "a";',
      "import { b } from 'node:fs';",
      'import "./side.js";',
      'import type { T } from "types-only";',
      'import { type U, v } from "mixed";',
      'export * from "../x.js";',
      'export { w } from "w";',
      'export type { X } from "type-export";',
      'const m = await import("node:path");',
      "const n = await import(name);",
      "const s = \"import y from 'in-a-string'\";",
    ].join("\n");
    nodeAssert.deepEqual(importsOf(src), ["a", "node:fs", "./side.js", "mixed", "../x.js", "w", "node:path"]);
  });

  test("knows Node's built-in modules with and without the node: prefix", () => {
    for (const m of ["fs", "node:fs", "fs/promises", "worker_threads", "node:test", "path"])
      nodeAssert.ok(isNodeBuiltin(m), m);
    for (const m of ["adjoint", "fast-check", "./fs.js", "vite"]) nodeAssert.ok(!isNodeBuiltin(m), m);
  });
});
