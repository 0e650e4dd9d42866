/**
 * @file `node:assert/strict` for the browser run of the test suite: the same functions with the
 * same strict semantics (`equal` is `Object.is`, `deepEqual` is Node's `isDeepStrictEqual`:
 * prototypes, typed-array bytes, `-0` vs `0`, Map/Set contents), so a test that passes here
 * would pass under Node. `test/browser-shim.test.ts` checks it against Node's own module case by
 * case. Only what the tests use and its obvious siblings are here.
 */

/**
 * Thrown by every failed assertion, like Node's `assert.AssertionError`.
 * @example
 * try { assert.equal(1, 2); } catch (e) { e instanceof AssertionError; } // true
 */
export class AssertionError extends Error {
  readonly actual: unknown;
  readonly expected: unknown;
  readonly operator: string;
  readonly generatedMessage: boolean;
  readonly code = "ERR_ASSERTION";
  constructor(options: { message?: string; actual?: unknown; expected?: unknown; operator: string }) {
    super(options.message ?? defaultMessage(options.operator, options.actual, options.expected));
    this.name = "AssertionError";
    this.actual = options.actual;
    this.expected = options.expected;
    this.operator = options.operator;
    this.generatedMessage = options.message === undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering values for messages
// ---------------------------------------------------------------------------------------------

/**
 * A short readable rendering of a value (messages only; nothing compares these strings).
 * @example
 * inspect({ a: [1, -0] }); // "{a: [1, -0]}"
 */
export function inspect(v: unknown, depth = 0): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "function") return `[Function: ${v.name || "anonymous"}]`;
  if (typeof v !== "object" || v === null) return String(v);
  if (depth > 3) return "[Object]";
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (v instanceof RegExp) return String(v);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const items = Array.from(v as unknown as ArrayLike<number>, (x) => inspect(x));
    return `${v.constructor.name}(${items.length}) [${cap(items).join(", ")}]`;
  }
  if (Array.isArray(v)) return `[${cap(v.map((x) => inspect(x, depth + 1))).join(", ")}]`;
  if (v instanceof Map)
    return `Map(${v.size}) {${cap([...v].map(([k, x]) => `${inspect(k, depth + 1)} => ${inspect(x, depth + 1)}`)).join(", ")}}`;
  if (v instanceof Set) return `Set(${v.size}) {${cap([...v].map((x) => inspect(x, depth + 1))).join(", ")}}`;
  const name = v.constructor !== Object && v.constructor?.name ? `${v.constructor.name} ` : "";
  const body = Object.entries(v).map(([k, x]) => `${k}: ${inspect(x, depth + 1)}`);
  return `${name}{${cap(body).join(", ")}}`;
}

/** At most 20 items, then a count of the rest. */
function cap(items: string[]): string[] {
  return items.length > 20 ? [...items.slice(0, 20), `… ${items.length - 20} more`] : items;
}

function defaultMessage(operator: string, actual: unknown, expected: unknown): string {
  switch (operator) {
    case "==":
      return `The values are not ==:\n\n${inspect(actual)}`;
    case "strictEqual":
      return `Expected values to be strictly equal:\n\n${inspect(actual)} !== ${inspect(expected)}`;
    case "notStrictEqual":
      return `Expected "actual" to be strictly unequal to: ${inspect(expected)}`;
    case "deepStrictEqual":
      return `Expected values to be strictly deep-equal:\n+ actual - expected\n\n+ ${inspect(actual)}\n- ${inspect(expected)}`;
    case "notDeepStrictEqual":
      return `Expected "actual" not to be strictly deep-equal to: ${inspect(expected)}`;
    case "match":
      return `The input did not match the regular expression ${inspect(expected)}. Input:\n\n${inspect(actual)}`;
    case "doesNotMatch":
      return `The input was expected to not match the regular expression ${inspect(expected)}. Input:\n\n${inspect(actual)}`;
    default:
      return `Failed (${operator}): ${inspect(actual)} vs ${inspect(expected)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Deep strict equality (Node's isDeepStrictEqual)
// ---------------------------------------------------------------------------------------------

const tag = (v: object): string => Object.prototype.toString.call(v);

/** Own enumerable keys: strings, and symbols that are enumerable (Node compares both). */
function ownKeys(v: object): (string | symbol)[] {
  const keys: (string | symbol)[] = Object.keys(v);
  for (const s of Object.getOwnPropertySymbols(v))
    if (Object.prototype.propertyIsEnumerable.call(v, s)) keys.push(s);
  return keys;
}

function bytesOf(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  return v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

type Memo = Map<object, Set<object>>;

/** Is the pair already being compared further up (a cycle)? Records it otherwise. */
function seen(memo: Memo, a: object, b: object): boolean {
  let s = memo.get(a);
  if (s === undefined) memo.set(a, (s = new Set()));
  if (s.has(b)) return true;
  s.add(b);
  return false;
}

/**
 * Node's deep strict equality: primitives by `Object.is`; objects need the same prototype and
 * type tag, the same own enumerable keys with deep-equal values, typed arrays the same bytes,
 * Maps and Sets the same entries in any order, and Errors, Dates, RegExps and boxed primitives
 * the same underlying value.
 * @example
 * isDeepStrictEqual([0], [-0]); // false
 * isDeepStrictEqual(new Set([1, 2]), new Set([2, 1])); // true
 */
export function isDeepStrictEqual(a: unknown, b: unknown, memo: Memo = new Map()): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b) || tag(a) !== tag(b)) return false;
  if (seen(memo, a, b)) return true;
  if (a instanceof Date) {
    if (!Object.is(a.getTime(), (b as Date).getTime())) return false;
  } else if (a instanceof RegExp) {
    const r = b as RegExp;
    if (a.source !== r.source || a.flags !== r.flags || a.lastIndex !== r.lastIndex) return false;
  } else if (a instanceof Error) {
    const e = b as Error;
    if (a.message !== e.message || a.name !== e.name) return false;
  } else if (ArrayBuffer.isView(a) || a instanceof ArrayBuffer) {
    if (!sameBytes(bytesOf(a), bytesOf(b as ArrayBufferView | ArrayBuffer))) return false;
    // Indices are covered by the bytes; other own keys are compared below.
    if (!ArrayBuffer.isView(a) || a instanceof DataView) return keysEqual(a, b, memo);
    return keysEqual(a, b, memo, (k) => typeof k === "string" && /^\d+$/.test(k));
  } else if (a instanceof Number || a instanceof String || a instanceof Boolean) {
    if (!Object.is(a.valueOf(), (b as { valueOf(): unknown }).valueOf())) return false;
  } else if (a instanceof Map) {
    if (!mapsEqual(a, b as Map<unknown, unknown>, memo)) return false;
  } else if (a instanceof Set) {
    if (!setsEqual(a, b as Set<unknown>)) return false;
  } else if (Array.isArray(a)) {
    if (a.length !== (b as unknown[]).length) return false;
  }
  return keysEqual(a, b, memo);
}

function keysEqual(a: object, b: object, memo: Memo, skip?: (k: string | symbol) => boolean): boolean {
  const ka = ownKeys(a).filter((k) => !skip?.(k));
  const kb = ownKeys(b).filter((k) => !skip?.(k));
  if (ka.length !== kb.length) return false;
  const inB = new Set(kb);
  for (const k of ka) {
    if (!inB.has(k)) return false;
    const va = (a as Record<string | symbol, unknown>)[k];
    const vb = (b as Record<string | symbol, unknown>)[k];
    if (!isDeepStrictEqual(va, vb, memo)) return false;
  }
  return true;
}

function mapsEqual(a: Map<unknown, unknown>, b: Map<unknown, unknown>, memo: Memo): boolean {
  if (a.size !== b.size) return false;
  const unmatched = [...b];
  for (const [k, v] of a) {
    if (b.has(k) && (typeof k !== "object" || k === null)) {
      if (!isDeepStrictEqual(v, b.get(k), memo)) return false;
      const i = unmatched.findIndex(([kb]) => Object.is(kb, k));
      unmatched.splice(i, 1);
      continue;
    }
    const i = unmatched.findIndex(
      ([kb, vb]) => isDeepStrictEqual(k, kb, new Map()) && isDeepStrictEqual(v, vb, new Map()),
    );
    if (i < 0) return false;
    unmatched.splice(i, 1);
  }
  return true;
}

function setsEqual(a: Set<unknown>, b: Set<unknown>): boolean {
  if (a.size !== b.size) return false;
  const unmatched: unknown[] = [];
  for (const x of b) if (!a.has(x)) unmatched.push(x);
  for (const x of a) {
    if (b.has(x)) continue;
    if (typeof x !== "object" || x === null) return false;
    const i = unmatched.findIndex((y) => isDeepStrictEqual(x, y, new Map()));
    if (i < 0) return false;
    unmatched.splice(i, 1);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

type Message = string | Error | undefined;

function fail(operator: string, actual: unknown, expected: unknown, message: Message): never {
  if (message instanceof Error) throw message;
  throw new AssertionError({ message, actual, expected, operator });
}

/**
 * Pass if `value` is truthy.
 * @example
 * assert.ok(1 < 2, "order");
 */
function ok(value: unknown, message?: Message): asserts value {
  if (!value) fail("==", value, true, message);
}

/**
 * Pass if `Object.is(actual, expected)` (so NaN equals NaN, and 0 differs from -0).
 * @example
 * assert.equal(0.1 + 0.2 > 0.3, true);
 */
function equal<T>(actual: unknown, expected: T, message?: Message): asserts actual is T {
  if (!Object.is(actual, expected)) fail("strictEqual", actual, expected, message);
}

/**
 * Pass unless `Object.is(actual, expected)`.
 * @example
 * assert.notEqual(0, -0);
 */
function notEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (Object.is(actual, expected)) fail("notStrictEqual", actual, expected, message);
}

/**
 * Pass if the values are deep-strict-equal (see `isDeepStrictEqual`).
 * @example
 * assert.deepEqual({ a: [1, 2] }, { a: [1, 2] });
 */
function deepEqual<T>(actual: unknown, expected: T, message?: Message): asserts actual is T {
  if (!isDeepStrictEqual(actual, expected)) fail("deepStrictEqual", actual, expected, message);
}

/**
 * Pass unless the values are deep-strict-equal.
 * @example
 * assert.notDeepEqual([1], ["1"]);
 */
function notDeepEqual(actual: unknown, expected: unknown, message?: Message): void {
  if (isDeepStrictEqual(actual, expected)) fail("notDeepStrictEqual", actual, expected, message);
}

/**
 * Pass if `actual` is a string that `re` matches.
 * @example
 * assert.match("shape [2, 3]", /\[2, 3\]/);
 */
function match(actual: string, re: RegExp, message?: Message): void {
  if (typeof actual !== "string" || !re.test(actual)) fail("match", actual, re, message);
}

/**
 * Pass if `actual` is a string that `re` does not match.
 * @example
 * assert.doesNotMatch("ok", /error/);
 */
function doesNotMatch(actual: string, re: RegExp, message?: Message): void {
  if (typeof actual !== "string" || re.test(actual)) fail("doesNotMatch", actual, re, message);
}

/** What `throws`/`rejects` accept as the expected error. */
type ErrorCheck = (new (...args: never[]) => unknown) | RegExp | ((e: unknown) => boolean) | object;

/** Is `f` a class (an Error constructor) rather than a validation function? */
function isErrorClass(f: unknown): f is new (...args: never[]) => unknown {
  return (
    typeof f === "function" && f.prototype !== undefined && (f === Error || f.prototype instanceof Error)
  );
}

/** The thrown value in a message: an Error's name and message, anything else rendered. */
const describeThrown = (err: unknown): string => inspect(err);

/**
 * Node's rules: a class is an `instanceof` check, a RegExp tests `String(error)`, a function
 * must return exactly `true`, an object's own keys must deep-equal the error's (string values
 * may be matched by RegExps; an Error also compares its name and message).
 */
function checkError(
  err: unknown,
  expected: ErrorCheck | undefined,
  operator: string,
  message: Message,
): void {
  if (expected === undefined) return;
  const reject = (why: string): never =>
    fail(
      operator,
      err,
      expected,
      message ??
        `${why}
Thrown: ${describeThrown(err)}`,
    );
  if (isErrorClass(expected)) {
    if (!(err instanceof expected)) reject(`The error is expected to be an instance of "${expected.name}".`);
    return;
  }
  if (expected instanceof RegExp) {
    if (!expected.test(String(err))) reject(`The error did not match the regular expression ${expected}.`);
    return;
  }
  if (typeof expected === "function") {
    const r = (expected as (e: unknown) => unknown)(err);
    if (r !== true) reject(`The validation function is expected to return "true". Received ${inspect(r)}.`);
    return;
  }
  if (err === null || typeof err !== "object") reject("The error is expected to be an object.");
  const keys = ownKeys(expected);
  if (expected instanceof Error) keys.push("name", "message");
  for (const k of keys) {
    const want = (expected as Record<string | symbol, unknown>)[k];
    const got = (err as Record<string | symbol, unknown>)[k];
    const good =
      want instanceof RegExp && typeof got === "string" ? want.test(got) : isDeepStrictEqual(got, want);
    if (!good) reject(`The error's "${String(k)}" is ${inspect(got)}, expected ${inspect(want)}.`);
  }
}

/** The (expected, message) pair: a string in the expected position is the message. */
function splitArgs(a?: ErrorCheck | string, b?: Message): [ErrorCheck | undefined, Message] {
  return typeof a === "string" ? [undefined, a] : [a, b];
}

/**
 * Pass if `fn` throws, and the error satisfies `expected` (a class, a RegExp, a validation
 * function returning true, or an object of expected properties).
 * @example
 * assert.throws(() => JSON.parse("{"), SyntaxError);
 */
function throws(fn: () => unknown, expected?: ErrorCheck | string, message?: Message): void {
  const [check, msg] = splitArgs(expected, message);
  let threw = false;
  let err: unknown;
  try {
    fn();
  } catch (e) {
    threw = true;
    err = e;
  }
  if (!threw) fail("throws", undefined, check, msg ?? `Missing expected exception${checkName(check)}.`);
  checkError(err, check, "throws", msg);
}

/**
 * Pass if `fn` returns without throwing.
 * @example
 * assert.doesNotThrow(() => JSON.parse("{}"));
 */
function doesNotThrow(fn: () => unknown, message?: Message | ErrorCheck): void {
  try {
    fn();
  } catch (e) {
    fail(
      "doesNotThrow",
      e,
      undefined,
      typeof message === "string"
        ? message
        : `Got unwanted exception.\nActual message: "${e instanceof Error ? e.message : String(e)}"`,
    );
  }
}

/**
 * Pass if the promise (or the promise `fn` returns) rejects with an error satisfying `expected`.
 * @example
 * await assert.rejects(Promise.reject(new TypeError("x")), TypeError);
 */
async function rejects(
  p: Promise<unknown> | (() => Promise<unknown>),
  expected?: ErrorCheck | string,
  message?: Message,
): Promise<void> {
  const [check, msg] = splitArgs(expected, message);
  let threw = false;
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    threw = true;
    err = e;
  }
  if (!threw) fail("rejects", undefined, check, msg ?? `Missing expected rejection${checkName(check)}.`);
  checkError(err, check, "rejects", msg);
}

/**
 * Pass if the promise (or the promise `fn` returns) resolves.
 * @example
 * await assert.doesNotReject(Promise.resolve(1));
 */
async function doesNotReject(
  p: Promise<unknown> | (() => Promise<unknown>),
  message?: Message,
): Promise<void> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    fail(
      "doesNotReject",
      e,
      undefined,
      message ?? `Got unwanted rejection.\nActual message: "${e instanceof Error ? e.message : String(e)}"`,
    );
  }
}

function checkName(check: ErrorCheck | undefined): string {
  return isErrorClass(check) ? ` (${check.name})` : "";
}

/**
 * Fail unconditionally.
 * @example
 * if (unreachable) assert.fail("should not get here");
 */
function failNow(message?: Message): never {
  fail("fail", undefined, undefined, message ?? "Failed");
}

/**
 * Throw `value` if it is neither null nor undefined.
 * @example
 * assert.ifError(null);
 */
function ifError(value: unknown): void {
  if (value === null || value === undefined) return;
  if (value instanceof Error) throw value;
  fail("ifError", value, null, `ifError got unwanted exception: ${inspect(value)}`);
}

/** The shape of the default export (declared so that its assertion signatures narrow). */
export interface Assert {
  (value: unknown, message?: Message): asserts value;
  AssertionError: typeof AssertionError;
  ok: typeof ok;
  equal: typeof equal;
  strictEqual: typeof equal;
  notEqual: typeof notEqual;
  notStrictEqual: typeof notEqual;
  deepEqual: typeof deepEqual;
  deepStrictEqual: typeof deepEqual;
  notDeepEqual: typeof notDeepEqual;
  notDeepStrictEqual: typeof notDeepEqual;
  match: typeof match;
  doesNotMatch: typeof doesNotMatch;
  throws: typeof throws;
  doesNotThrow: typeof doesNotThrow;
  rejects: typeof rejects;
  doesNotReject: typeof doesNotReject;
  fail: typeof failNow;
  ifError: typeof ifError;
  strict: Assert;
}

/**
 * The default export: callable like `assert(value)`, with every assertion as a property (and
 * `assert.strict` pointing back at itself, as in Node).
 * @example
 * import assert from "node:assert/strict"; // this module in the browser bundle
 * assert.deepEqual([1, 2], [1, 2]);
 */
const assert: Assert = Object.assign((value: unknown, message?: Message): void => ok(value, message), {
  AssertionError,
  ok,
  equal,
  strictEqual: equal,
  notEqual,
  notStrictEqual: notEqual,
  deepEqual,
  deepStrictEqual: deepEqual,
  notDeepEqual,
  notDeepStrictEqual: notDeepEqual,
  match,
  doesNotMatch,
  throws,
  doesNotThrow,
  rejects,
  doesNotReject,
  fail: failNow,
  ifError,
}) as Omit<Assert, "strict"> as Assert;
assert.strict = assert;

export default assert;
export {
  deepEqual,
  deepEqual as deepStrictEqual,
  doesNotMatch,
  doesNotReject,
  doesNotThrow,
  equal,
  equal as strictEqual,
  failNow as fail,
  ifError,
  match,
  notDeepEqual,
  notDeepEqual as notDeepStrictEqual,
  notEqual,
  notEqual as notStrictEqual,
  ok,
  rejects,
  throws,
};
