/**
 * @file `node:test` for the browser run of the test suite: `describe`/`test` (and `it`, `suite`,
 * hooks, `skip`/`todo` options, subtests, `t.diagnostic`) register into a tree per test file,
 * and `runFile` runs that tree in registration order, one test at a time, as Node does within a
 * file. Results are plain data, so the page can hand them to the Node process that drives it.
 */

/** The options object `describe`/`test` accept (the subset with a meaning here). */
export interface TestOptions {
  skip?: boolean | string;
  todo?: boolean | string;
  only?: boolean;
  timeout?: number;
  concurrency?: number | boolean;
}

/** What a test body receives; Node's `TestContext` for the members the suite uses. */
export interface TestContext {
  readonly name: string;
  readonly signal: AbortSignal;
  /** A line for the report (shown under the test, like Node's `# diagnostic`). */
  diagnostic(message: string): void;
  /** Mark the running test as skipped (its body should return right after). */
  skip(message?: string): void;
  todo(message?: string): void;
  /** A subtest, run to completion before the returned promise settles. */
  test(name: string, options: TestOptions | TestFn, fn?: TestFn): Promise<void>;
}

type TestFn = (t: TestContext) => unknown;
type SuiteFn = () => unknown;
type Hook = () => unknown;

/** A test or a suite in the registration tree. */
type Entry =
  | { readonly kind: "test"; readonly name: string; readonly options: TestOptions; readonly fn: TestFn }
  | { readonly kind: "suite"; readonly suite: Suite };

interface Suite {
  readonly name: string;
  readonly options: TestOptions;
  readonly entries: Entry[];
  readonly before: Hook[];
  readonly after: Hook[];
  readonly beforeEach: Hook[];
  readonly afterEach: Hook[];
  /** An error thrown by the describe callback itself (reported as a failure of the suite). */
  error: unknown;
}

/** The outcome of one test (or of a suite whose callback or hook failed). */
export interface TestResult {
  /** Suite names and the test name, outermost first. */
  readonly path: readonly string[];
  readonly status: "pass" | "fail" | "skip" | "todo";
  readonly ms: number;
  /** For a failure: the error's name and message, and its stack. */
  readonly error?: string;
  readonly stack?: string;
  readonly diagnostics?: readonly string[];
}

const newSuite = (name: string, options: TestOptions = {}): Suite => ({
  name,
  options,
  entries: [],
  before: [],
  after: [],
  beforeEach: [],
  afterEach: [],
  error: undefined,
});

let root = newSuite("");
let current = root;

/** The two call forms: (name, fn) and (name, options, fn). */
function split<F>(a: TestOptions | F | undefined, b: F | undefined): [TestOptions, F | undefined] {
  return typeof a === "function" ? [{}, a as F] : [(a as TestOptions | undefined) ?? {}, b];
}

function registerSuite(name: string, a?: TestOptions | SuiteFn, b?: SuiteFn): void {
  const [options, fn] = split(a, b);
  const suite = newSuite(name, options);
  current.entries.push({ kind: "suite", suite });
  const parent = current;
  current = suite;
  try {
    const r = fn?.();
    // Node awaits an async describe callback; registering tests after an await would race the run.
    if (r instanceof Promise)
      suite.error = new Error(`describe("${name}") returned a promise: not supported here`);
  } catch (e) {
    suite.error = e;
  } finally {
    current = parent;
  }
}

function registerTest(name: string, a?: TestOptions | TestFn, b?: TestFn): void {
  const [options, fn] = split(a, b);
  current.entries.push({ kind: "test", name, options, fn: fn ?? (() => undefined) });
}

/**
 * Register a suite: its callback runs now and registers the tests inside it.
 * @example
 * describe("sin", () => { test("at 0", () => assert.equal(Math.sin(0), 0)); });
 */
export const describe = Object.assign(registerSuite, {
  skip: (name: string, a?: TestOptions | SuiteFn, b?: SuiteFn) => {
    const [o, fn] = split(a, b);
    registerSuite(name, { ...o, skip: true }, fn);
  },
  todo: (name: string, a?: TestOptions | SuiteFn, b?: SuiteFn) => {
    const [o, fn] = split(a, b);
    registerSuite(name, { ...o, todo: true }, fn);
  },
  only: registerSuite,
});

/**
 * Register a test; it runs when the page runs this file's tests.
 * @example
 * test("adds", () => assert.equal(1 + 1, 2));
 */
export const test = Object.assign(registerTest, {
  skip: (name: string, a?: TestOptions | TestFn, b?: TestFn) => {
    const [o, fn] = split(a, b);
    registerTest(name, { ...o, skip: true }, fn);
  },
  todo: (name: string, a?: TestOptions | TestFn, b?: TestFn) => {
    const [o, fn] = split(a, b);
    registerTest(name, { ...o, todo: true }, fn);
  },
  only: registerTest,
});

export { describe as suite, test as it };

/**
 * Run `fn` once before the tests of the enclosing suite (file level outside any suite).
 * @example
 * before(() => setup());
 */
export function before(fn: Hook): void {
  current.before.push(fn);
}
/**
 * Run `fn` once after the tests of the enclosing suite.
 * @example
 * after(() => teardown());
 */
export function after(fn: Hook): void {
  current.after.push(fn);
}
/**
 * Run `fn` before every test of the enclosing suite, nested suites included.
 * @example
 * beforeEach(() => reset());
 */
export function beforeEach(fn: Hook): void {
  current.beforeEach.push(fn);
}
/**
 * Run `fn` after every test of the enclosing suite, nested suites included.
 * @example
 * afterEach(() => reset());
 */
export function afterEach(fn: Hook): void {
  current.afterEach.push(fn);
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/** Called as each test starts and ends (the page shows progress and the name of a hung test). */
export interface RunHooks {
  onStart?(path: readonly string[]): void;
  onResult?(r: TestResult): void;
}

const errorText = (e: unknown): { error: string; stack?: string } =>
  e instanceof Error
    ? { error: `${e.name}: ${e.message}`, ...(e.stack !== undefined ? { stack: e.stack } : {}) }
    : { error: `thrown: ${String(e)}` };

const reason = (v: boolean | string | undefined): string | null =>
  v === undefined || v === false ? null : v === true ? "" : v;

/**
 * Start collecting a new file's tests: everything registered from now on belongs to it.
 * @example
 * beginFile(); await import("./amp.test.js"); const results = await runFile();
 */
export function beginFile(): void {
  root = newSuite("");
  current = root;
}

/**
 * Run the tests registered since `beginFile`, in order, one at a time, and return one result
 * per test (suites whose callback or hooks throw add a failed result of their own).
 * @example
 * const results = await runFile({ onResult: (r) => console.log(r.status, r.path.join(" > ")) });
 */
export async function runFile(hooks: RunHooks = {}): Promise<TestResult[]> {
  const results: TestResult[] = [];
  const emit = (r: TestResult): void => {
    results.push(r);
    hooks.onResult?.(r);
  };
  await runSuite(root, [], [], [], emit, hooks);
  return results;
}

async function runHooks(list: readonly Hook[]): Promise<void> {
  for (const h of list) await h();
}

async function runSuite(
  suite: Suite,
  path: readonly string[],
  beforeEach: readonly Hook[],
  afterEach: readonly Hook[],
  emit: (r: TestResult) => void,
  hooks: RunHooks,
): Promise<void> {
  if (suite.error !== undefined) {
    emit({ path, status: "fail", ms: 0, ...errorText(suite.error) });
    return;
  }
  const skipped = reason(suite.options.skip);
  const todo = reason(suite.options.todo);
  if (skipped !== null || todo !== null) {
    const status = skipped !== null ? "skip" : "todo";
    for (const e of suite.entries)
      emit({ path: [...path, e.kind === "test" ? e.name : e.suite.name], status, ms: 0 });
    return;
  }
  try {
    await runHooks(suite.before);
  } catch (e) {
    emit({ path: [...path, "before hook"], status: "fail", ms: 0, ...errorText(e) });
    return;
  }
  const be = [...beforeEach, ...suite.beforeEach];
  const ae = [...suite.afterEach, ...afterEach];
  for (const entry of suite.entries) {
    if (entry.kind === "suite") await runSuite(entry.suite, [...path, entry.suite.name], be, ae, emit, hooks);
    else await runTest(entry.name, entry.options, entry.fn, [...path, entry.name], be, ae, emit, hooks);
  }
  try {
    await runHooks(suite.after);
  } catch (e) {
    emit({ path: [...path, "after hook"], status: "fail", ms: 0, ...errorText(e) });
  }
}

async function runTest(
  name: string,
  options: TestOptions,
  fn: TestFn,
  path: readonly string[],
  beforeEach: readonly Hook[],
  afterEach: readonly Hook[],
  emit: (r: TestResult) => void,
  hooks: RunHooks,
): Promise<void> {
  const skipped = reason(options.skip);
  if (skipped !== null) return emit({ path, status: "skip", ms: 0 });
  hooks.onStart?.(path);
  const diagnostics: string[] = [];
  const subFailures: string[] = [];
  let marked: "skip" | "todo" | null = reason(options.todo) !== null ? "todo" : null;
  const controller = new AbortController();
  const t: TestContext = {
    name,
    signal: controller.signal,
    diagnostic: (m) => void diagnostics.push(m),
    skip: () => void (marked = "skip"),
    todo: () => void (marked = "todo"),
    test: async (subName, a, b) => {
      const [o, subFn] = split(a, b);
      await runTest(
        subName,
        o,
        subFn ?? (() => undefined),
        [...path, subName],
        [],
        [],
        (r) => {
          if (r.status === "fail") subFailures.push(`${subName}: ${r.error}`);
          emit(r);
        },
        hooks,
      );
    },
  };
  const start = performance.now();
  let error: unknown;
  let failed = false;
  try {
    await runHooks(beforeEach);
    await fn(t);
  } catch (e) {
    failed = true;
    error = e;
  }
  try {
    await runHooks(afterEach);
  } catch (e) {
    if (!failed) {
      failed = true;
      error = e;
    }
  }
  controller.abort();
  if (!failed && subFailures.length > 0) {
    failed = true;
    error = new Error(`${subFailures.length} subtest(s) failed: ${subFailures.join("; ")}`);
  }
  const ms = performance.now() - start;
  const extra = diagnostics.length > 0 ? { diagnostics } : {};
  // Node reports a failing todo test as todo, not as a failure.
  if (marked === "todo") return emit({ path, status: "todo", ms, ...extra });
  if (failed) return emit({ path, status: "fail", ms, ...errorText(error), ...extra });
  emit({ path, status: marked ?? "pass", ms, ...extra });
}
