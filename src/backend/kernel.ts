/**
 * @file The IR of fused elementwise kernels and its compiler to JavaScript. `jit`'s fusion pass
 * hands a backend either a `FusedExpr` (a tree: a chain of elementwise operations with one
 * result) or a `FusedProgram` (a DAG in SSA form with several results: a whole straight-line
 * scalar program, forward and backward). Leaves are kernel inputs (already broadcast to the
 * output size, or scalars) and constants; nodes are the unary/binary kernels, select and casts.
 * Every node carries its dtype, so a kernel rounds exactly as the unfused chain would (float32
 * results through Math.fround at every node): fused and unfused results are bit-identical.
 *
 * `scalarKernel`/`arrayKernel` turn a program into a JS function generated from this IR — never from user
 * text: operation names map to fixed templates and constants are printed numbers — cached by the
 * generated source. Long programs are split into chunks of a few hundred operations (values that
 * cross a chunk boundary go through a small register array), because V8 optimizes small
 * functions and refuses to optimize huge ones. Where code generation is unavailable (a
 * Content-Security-Policy without 'unsafe-eval'), an interpreter over the same IR runs instead.
 */

import type { AnyTypedArray, DType } from "../dtype.js";
import type { BinaryKernel, UnaryKernel } from "./backend.js";
import { erf } from "./erf.js";
import { roundBfloat16, roundFloat16 } from "./half.js";
import { compileScalarWasm } from "./wasm/fused-scalar.js";

export type FusedExpr =
  | { readonly kind: "input"; readonly index: number; readonly dtype: DType }
  | { readonly kind: "const"; readonly value: number; readonly dtype: DType }
  | { readonly kind: "unary"; readonly op: UnaryKernel; readonly arg: FusedExpr; readonly dtype: DType }
  | {
      readonly kind: "binary";
      readonly op: BinaryKernel;
      readonly a: FusedExpr;
      readonly b: FusedExpr;
      readonly dtype: DType;
    }
  | {
      readonly kind: "select";
      readonly c: FusedExpr;
      readonly a: FusedExpr;
      readonly b: FusedExpr;
      readonly dtype: DType;
    }
  | { readonly kind: "cast"; readonly arg: FusedExpr; readonly dtype: DType };

/**
 * One operation of a `FusedProgram`. Operands are value ids: ids `0 … inputs.length - 1` are
 * the program's inputs, id `inputs.length + k` is the result of node `k`.
 */
export type FusedNode =
  | { readonly kind: "const"; readonly value: number; readonly dtype: DType }
  | { readonly kind: "unary"; readonly op: UnaryKernel; readonly arg: number; readonly dtype: DType }
  | {
      readonly kind: "binary";
      readonly op: BinaryKernel;
      readonly a: number;
      readonly b: number;
      readonly dtype: DType;
    }
  | {
      readonly kind: "select";
      readonly c: number;
      readonly a: number;
      readonly b: number;
      readonly dtype: DType;
    }
  | { readonly kind: "cast"; readonly arg: number; readonly dtype: DType };

/**
 * How an array kernel reads an input at output index `i` other than as element `i` (all indices
 * flat, row-major): element `floor(i / div) % mod + offset` where `start <= i < end`, else `fill`.
 * It expresses broadcasting along leading or trailing axes (div, mod), contiguous slices (offset)
 * and pads along the leading axis (start, end, fill) without materialising them.
 */
export interface InputView {
  readonly div: number;
  /** 0: no modulo. */
  readonly mod: number;
  readonly offset: number;
  readonly start: number;
  /** -1: no upper bound. */
  readonly end: number;
  readonly fill: number;
}

/** A fused elementwise DAG in SSA form: nodes in evaluation order, several results. */
export interface FusedProgram {
  /** The dtype of each input. */
  readonly inputs: readonly DType[];
  readonly nodes: readonly FusedNode[];
  /** The value ids the kernel writes out, in order. */
  readonly outputs: readonly number[];
  /** Per input, how an array kernel reads it (absent or null: element i, or element 0 of one). */
  readonly views?: readonly (InputView | null)[];
}

/** A view that reads element i + offset (a contiguous slice): a moved address covers it. */
export function isOffsetView(v: InputView): boolean {
  return v.div === 1 && v.mod === 0 && v.start <= 0 && v.end < 0;
}

/** The element index expression of `view` at index expression `i` (JS source). */
function viewIndexJs(v: InputView, i: string): string {
  let e = v.div === 1 ? i : `((${i} / ${v.div}) | 0)`;
  if (v.mod > 0) e = `${e} % ${v.mod}`;
  if (v.offset !== 0) e = `${e} + ${v.offset}`;
  return e;
}

/** JS source reading input array `a` through `view` at index `i` (see `InputView`). */
function viewReadJs(v: InputView, a: string, i: string): string {
  const read = `${a}[${viewIndexJs(v, i)}]`;
  const conds: string[] = [];
  if (v.start > 0) conds.push(`${i} >= ${v.start}`);
  if (v.end >= 0) conds.push(`${i} < ${v.end}`);
  return conds.length === 0 ? read : `(${conds.join(" && ")} ? ${read} : ${numberJs(v.fill)})`;
}

/** The element of `a` that `view` reads at index `i` (the interpreter's form of `viewReadJs`). */
function viewRead(v: InputView, a: AnyTypedArray, i: number): number {
  if (i < v.start || (v.end >= 0 && i >= v.end)) return v.fill;
  let j = v.div === 1 ? i : Math.floor(i / v.div);
  if (v.mod > 0) j %= v.mod;
  return a[j + v.offset]!;
}

/** The operands of an expression node (none for leaves). */
function children(e: FusedExpr): readonly FusedExpr[] {
  switch (e.kind) {
    case "input":
    case "const":
      return [];
    case "unary":
    case "cast":
      return [e.arg];
    case "binary":
      return [e.a, e.b];
    case "select":
      return [e.c, e.a, e.b];
  }
}

/** Visit the nodes of an expression in post-order without recursion (chains may be thousands deep). */
function postOrder(root: FusedExpr, visit: (e: FusedExpr) => void): void {
  const stack: [FusedExpr, number][] = [[root, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const kids = children(top[0]);
    if (top[1] < kids.length) stack.push([kids[top[1]++]!, 0]);
    else {
      stack.pop();
      visit(top[0]);
    }
  }
}

/** Longest rendering `showExpr` and `showProgram` produce before eliding the middle. */
const SHOW_LIMIT = 400;

/** A compact one-line rendering (for printed programs). */
export function showExpr(e: FusedExpr): string {
  const text: string[] = [];
  postOrder(e, (n) => {
    switch (n.kind) {
      case "input":
        text.push(`#${n.index}`);
        return;
      case "const":
        text.push(String(n.value));
        return;
      case "unary": {
        const a = text.pop()!;
        text.push(`${n.op}(${a})`);
        return;
      }
      case "cast": {
        const a = text.pop()!;
        text.push(`${n.dtype}(${a})`);
        return;
      }
      case "binary": {
        const b = text.pop()!;
        const a = text.pop()!;
        text.push(`${n.op}(${a},${b})`);
        return;
      }
      case "select": {
        const b = text.pop()!;
        const a = text.pop()!;
        const c = text.pop()!;
        text.push(`select(${c},${a},${b})`);
        return;
      }
    }
  });
  return elide(text[0]!);
}

function elide(s: string): string {
  return s.length <= SHOW_LIMIT ? s : `${s.slice(0, SHOW_LIMIT / 2)} … ${s.slice(-SHOW_LIMIT / 2)}`;
}

/** Number of operation nodes (not leaves). */
export function exprSize(e: FusedExpr): number {
  let n = 0;
  postOrder(e, (x) => {
    if (x.kind !== "input" && x.kind !== "const") n++;
  });
  return n;
}

/** Number of operation nodes of a program (constants are not operations). */
export function programSize(p: FusedProgram): number {
  let n = 0;
  for (const x of p.nodes) if (x.kind !== "const") n++;
  return n;
}

/** A one-line summary of a program: its size, and each result as an expression (elided when long). */
export function showProgram(p: FusedProgram): string {
  const base = p.inputs.length;
  const seen = new Map<number, string>();
  const show = (id: number): string => {
    if (id < base) return `#${id}`;
    return seen.get(id) ?? "…";
  };
  // Render each node once, in order; a long program keeps only short renderings.
  p.nodes.forEach((n, k) => {
    let s: string;
    switch (n.kind) {
      case "const":
        s = String(n.value);
        break;
      case "unary":
        s = `${n.op}(${show(n.arg)})`;
        break;
      case "cast":
        s = `${n.dtype}(${show(n.arg)})`;
        break;
      case "binary":
        s = `${n.op}(${show(n.a)},${show(n.b)})`;
        break;
      case "select":
        s = `select(${show(n.c)},${show(n.a)},${show(n.b)})`;
        break;
    }
    seen.set(base + k, s.length > SHOW_LIMIT ? "…" : s);
  });
  return `${programSize(p)} ops, ${p.outputs.length} out: ${p.outputs.map(show).join(", ")}`;
}

const programOfExpr = new WeakMap<FusedExpr, FusedProgram>();

/**
 * The program of an expression tree (one result). Inputs keep their indices; the input dtypes
 * are read off the leaves (an input no leaf mentions is float64, and unread).
 */
export function exprToProgram(e: FusedExpr): FusedProgram {
  const hit = programOfExpr.get(e);
  if (hit !== undefined) return hit;
  let nIn = 0;
  postOrder(e, (x) => {
    if (x.kind === "input") nIn = Math.max(nIn, x.index + 1);
  });
  const inputs: DType[] = new Array(nIn).fill("float64");
  const nodes: FusedNode[] = [];
  const ids: number[] = [];
  postOrder(e, (x) => {
    switch (x.kind) {
      case "input":
        inputs[x.index] = x.dtype;
        ids.push(x.index);
        return;
      case "const":
        nodes.push({ kind: "const", value: x.value, dtype: x.dtype });
        break;
      case "unary":
        nodes.push({ kind: "unary", op: x.op, arg: ids.pop()!, dtype: x.dtype });
        break;
      case "cast":
        nodes.push({ kind: "cast", arg: ids.pop()!, dtype: x.dtype });
        break;
      case "binary": {
        const b = ids.pop()!;
        const a = ids.pop()!;
        nodes.push({ kind: "binary", op: x.op, a, b, dtype: x.dtype });
        break;
      }
      case "select": {
        const b = ids.pop()!;
        const a = ids.pop()!;
        const c = ids.pop()!;
        nodes.push({ kind: "select", c, a, b, dtype: x.dtype });
        break;
      }
    }
    ids.push(nIn + nodes.length - 1);
  });
  const p: FusedProgram = { inputs, nodes, outputs: [ids.pop()!] };
  programOfExpr.set(e, p);
  return p;
}

// ---- the JS templates --------------------------------------------------------------------

/** Helpers the generated code calls (passed in, so the code names no globals but `Math`). */
function logistic(x: number): number {
  // Two branches so that exp never overflows: sigmoid is finite for every |x|.
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** The scalar semantics of every unary kernel (the reference backend's kernels use these). */
export const UNARY_FN: Readonly<Record<UnaryKernel, (x: number) => number>> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  log1p: Math.log1p,
  expm1: Math.expm1,
  sqrt: Math.sqrt,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  asin: Math.asin,
  acos: Math.acos,
  atan: Math.atan,
  sinh: Math.sinh,
  cosh: Math.cosh,
  tanh: Math.tanh,
  logistic,
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x),
  floor: Math.floor,
  ceil: Math.ceil,
  round: roundHalfEven,
  erf,
  not: (x) => (x ? 0 : 1),
};

/** The scalar semantics of every binary kernel (int32 `mul` is `Math.imul`, see `binaryFn`). */
export const BINARY_FN: Readonly<Record<BinaryKernel, (a: number, b: number) => number>> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  max: (a, b) => (a > b || Number.isNaN(a) ? a : b),
  min: (a, b) => (a < b || Number.isNaN(a) ? a : b),
  atan2: Math.atan2,
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
  and: (a, b) => (a && b ? 1 : 0),
  or: (a, b) => (a || b ? 1 : 0),
};

/** A binary kernel's function for operands of `dtype` (int32 products wrap as int32 arithmetic does). */
export function binaryFn(op: BinaryKernel, dtype: DType): (a: number, b: number) => number {
  return dtype === "int32" && op === "mul" ? Math.imul : BINARY_FN[op];
}

/**
 * `x` rounded to `d` as a kernel result is: stored in its typed array (float16/bfloat16 results
 * are computed in float32 and then rounded to the 16-bit format, as the eval interpreter does).
 */
export function roundResult(d: DType, x: number): number {
  switch (d) {
    case "float64":
      return x;
    case "float32":
      return Math.fround(x);
    case "float16":
      return roundFloat16(Math.fround(x));
    case "bfloat16":
      return roundBfloat16(Math.fround(x));
    case "int32":
      return x | 0;
    case "bool":
      return x & 255;
  }
}

/** `x` converted to `d` as the `cast` kernel does (float to int truncates toward zero). */
export function castValue(d: DType, x: number): number {
  switch (d) {
    case "float64":
      return x;
    case "float32":
      return Math.fround(x);
    case "float16":
      return roundFloat16(x);
    case "bfloat16":
      return roundBfloat16(x);
    case "int32":
      return Math.trunc(x) | 0;
    case "bool":
      return x ? 1 : 0;
  }
}

const UNARY_JS: Record<UnaryKernel, (x: string) => string> = {
  neg: (x) => `-${x}`,
  exp: (x) => `Math.exp(${x})`,
  log: (x) => `Math.log(${x})`,
  log1p: (x) => `Math.log1p(${x})`,
  expm1: (x) => `Math.expm1(${x})`,
  sqrt: (x) => `Math.sqrt(${x})`,
  sin: (x) => `Math.sin(${x})`,
  cos: (x) => `Math.cos(${x})`,
  tan: (x) => `Math.tan(${x})`,
  asin: (x) => `Math.asin(${x})`,
  acos: (x) => `Math.acos(${x})`,
  atan: (x) => `Math.atan(${x})`,
  sinh: (x) => `Math.sinh(${x})`,
  cosh: (x) => `Math.cosh(${x})`,
  tanh: (x) => `Math.tanh(${x})`,
  logistic: (x) => `H.logistic(${x})`,
  abs: (x) => `Math.abs(${x})`,
  sign: (x) => `(${x} > 0 ? 1 : ${x} < 0 ? -1 : ${x})`,
  floor: (x) => `Math.floor(${x})`,
  ceil: (x) => `Math.ceil(${x})`,
  round: (x) => `H.round(${x})`,
  erf: (x) => `H.erf(${x})`,
  not: (x) => `(${x} ? 0 : 1)`,
};

const BINARY_JS: Record<BinaryKernel, (a: string, b: string) => string> = {
  add: (a, b) => `${a} + ${b}`,
  sub: (a, b) => `${a} - ${b}`,
  mul: (a, b) => `${a} * ${b}`,
  div: (a, b) => `${a} / ${b}`,
  pow: (a, b) => `Math.pow(${a}, ${b})`,
  max: (a, b) => `(${a} > ${b} || ${a} !== ${a} ? ${a} : ${b})`,
  min: (a, b) => `(${a} < ${b} || ${a} !== ${a} ? ${a} : ${b})`,
  atan2: (a, b) => `Math.atan2(${a}, ${b})`,
  eq: (a, b) => `(${a} === ${b} ? 1 : 0)`,
  ne: (a, b) => `(${a} !== ${b} ? 1 : 0)`,
  lt: (a, b) => `(${a} < ${b} ? 1 : 0)`,
  le: (a, b) => `(${a} <= ${b} ? 1 : 0)`,
  gt: (a, b) => `(${a} > ${b} ? 1 : 0)`,
  ge: (a, b) => `(${a} >= ${b} ? 1 : 0)`,
  and: (a, b) => `(${a} && ${b} ? 1 : 0)`,
  or: (a, b) => `(${a} || ${b} ? 1 : 0)`,
};

/** Kernels whose results are already 0 or 1 (no rounding to bool needed). */
const BOOLEAN_OPS = new Set<string>(["eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not"]);

/** JS source of a number, exactly (shortest round-trip form; the specials by name). */
function numberJs(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "Infinity";
  if (v === Number.NEGATIVE_INFINITY) return "(-Infinity)";
  if (Object.is(v, -0)) return "(-0)";
  return v < 0 ? `(${String(v)})` : String(v);
}

/**
 * Operations whose result is one of their operands or another value of the operands' own format
 * (negation, absolute value, integer rounding, a choice between the two): rounding it again to a
 * 16- or 32-bit float changes nothing, and each Math.fround saved is ~1 ns per element.
 */
const EXACT_FLOAT_OPS = new Set<string>(["neg", "abs", "sign", "floor", "ceil", "round", "max", "min"]);

/** `e` rounded as a result of dtype `d` (see `roundResult`). */
function roundJs(d: DType, e: string, op: string): string {
  if (d !== "int32" && d !== "bool" && EXACT_FLOAT_OPS.has(op)) return d === "float64" ? e : `(${e})`;
  switch (d) {
    case "float64":
      return e;
    case "float32":
      return `Math.fround(${e})`;
    case "float16":
      return `H.f16(Math.fround(${e}))`;
    case "bfloat16":
      return `H.bf16(Math.fround(${e}))`;
    case "int32":
      return `(${e}) | 0`;
    case "bool":
      return BOOLEAN_OPS.has(op) ? e : `(${e}) & 255`;
  }
}

/** `e` converted to `d` (see `castValue`). */
function castJs(d: DType, e: string): string {
  switch (d) {
    case "float64":
      return e;
    case "float32":
      return `Math.fround(${e})`;
    case "float16":
      return `H.f16(${e})`;
    case "bfloat16":
      return `H.bf16(${e})`;
    case "int32":
      return `Math.trunc(${e}) | 0`;
    case "bool":
      return `(${e} ? 1 : 0)`;
  }
}

/** The JS expression of one node over its operands' variable names. */
function nodeJs(n: FusedNode, name: (id: number) => string): string {
  switch (n.kind) {
    case "const":
      return numberJs(castValue(n.dtype, n.value));
    case "unary":
      return roundJs(n.dtype, UNARY_JS[n.op](name(n.arg)), n.op);
    case "binary": {
      const a = name(n.a);
      const b = name(n.b);
      const e = n.dtype === "int32" && n.op === "mul" ? `Math.imul(${a}, ${b})` : BINARY_JS[n.op](a, b);
      return roundJs(n.dtype, e, n.op);
    }
    case "select":
      return `(${name(n.c)} ? ${name(n.a)} : ${name(n.b)})`;
    case "cast":
      return castJs(n.dtype, name(n.arg));
  }
}

/** The operand ids of a node. */
function operands(n: FusedNode): readonly number[] {
  switch (n.kind) {
    case "const":
      return [];
    case "unary":
    case "cast":
      return [n.arg];
    case "binary":
      return [n.a, n.b];
    case "select":
      return [n.c, n.a, n.b];
  }
}

// ---- compiled kernels ----------------------------------------------------------------------

/**
 * A kernel over arrays: evaluates the program at every index below `n`. Input k is read at
 * each index, or once (its element 0) when the kernel was compiled with `scalar[k]`; result j
 * is written to `outs[j]`.
 */
export type ArrayKernel = (
  inputs: readonly AnyTypedArray[],
  outs: readonly AnyTypedArray[],
  n: number,
) => void;

/** A kernel over one element: reads plain numbers, writes result j to `outs[j]`. */
export type ScalarKernel = (inputs: readonly number[], outs: Float64Array) => void;

/**
 * Operations per generated function. V8 optimizes a function only below a bytecode size, and
 * parses huge ones slowly: a 9000-operation function runs ~7x slower than the same work in
 * chunks of a few hundred (measured, Node 20).
 */
const CHUNK = 200;

type Helpers = Readonly<Record<string, (x: number) => number>>;
const HELPERS: Helpers = { logistic, round: roundHalfEven, erf, f16: roundFloat16, bf16: roundBfloat16 };

let codegen: boolean | null = null;
/** Whether one-element programs compile to wasm: null = where supported (the default). */
let wasmMode: boolean | null = null;

/** Whether `new Function` works here (a strict Content-Security-Policy forbids it). */
function codegenAvailable(): boolean {
  if (codegen === null) {
    try {
      codegen = new Function("return 1")() === 1;
    } catch {
      codegen = false;
    }
  }
  return codegen;
}

/** Whether kernels start interpreted and are generated after a few calls (the default). */
let tiered = true;

/**
 * @internal Force generated JS for every kernel from its first call (true), turn code generation
 * off (false: the interpreter runs every fused kernel), force wasm for one-element programs from
 * their first call ("wasm"; generated JS for the rest), or restore the default (null: wasm where
 * supported, tiered JS elsewhere). Tests use it to check every path against the unfused kernels.
 */
export function setFusedCodegen(on: boolean | "wasm" | null): void {
  codegen = on === null ? null : on !== false;
  wasmMode = on === null ? null : on === "wasm";
  tiered = on === null;
  scalarKernels = new WeakMap();
  scalarTiers = new WeakMap();
  arrayKernels = new WeakMap();
}

/**
 * @internal Whether a backend may run array programs as its own compiled kernels (the wasm
 * backend's loops) instead of the generated JS: by default and in "wasm" mode, not when tests
 * force the generated JS (true) or the interpreter (false).
 */
export function fusedBackendKernelsAllowed(): boolean {
  return wasmMode !== false;
}

/**
 * The program's straight-line body as chunks of at most `CHUNK` operations: `read(k)` is the
 * expression that reads input k, `write(j, v)` the statement that stores result j (in the last
 * chunk). Constants are written inline. A value defined in one chunk and read in a later one
 * goes through `r`, a Float64Array of registers (exact for every dtype: all are doubles).
 */
function chunkSources(
  p: FusedProgram,
  read: (k: number) => string,
  write: (j: number, v: string) => string,
): { chunks: string[]; registers: number } {
  const base = p.inputs.length;
  const total = base + p.nodes.length;
  // The chunk of every node, counting operations only (constants cost nothing).
  const chunkOf = new Int32Array(p.nodes.length);
  let ops = 0;
  p.nodes.forEach((n, k) => {
    chunkOf[k] = Math.floor(ops / CHUNK);
    if (n.kind !== "const") ops++;
  });
  const nChunks = Math.max(1, Math.ceil(ops / CHUNK));
  const lastUse = new Int32Array(total).fill(-1);
  p.nodes.forEach((n, k) => {
    for (const a of operands(n)) lastUse[a] = Math.max(lastUse[a]!, chunkOf[k]!);
  });
  for (const id of p.outputs) lastUse[id] = nChunks - 1; // results are written at the very end
  const reg = new Int32Array(total).fill(-1);
  let registers = 0;
  p.nodes.forEach((n, k) => {
    const id = base + k;
    if (n.kind !== "const" && lastUse[id]! > chunkOf[k]!) reg[id] = registers++;
  });
  const chunks: string[][] = Array.from({ length: nChunks }, () => []);
  const local: Set<number>[] = Array.from({ length: nChunks }, () => new Set());
  const name = (c: number, id: number): string => {
    if (id >= base) {
      const n = p.nodes[id - base]!;
      if (n.kind === "const") return numberJs(castValue(n.dtype, n.value));
    }
    if (!local[c]!.has(id)) {
      local[c]!.add(id);
      chunks[c]!.push(`const v${id} = ${id < base ? read(id) : `r[${reg[id]}]`};`);
    }
    return `v${id}`;
  };
  p.nodes.forEach((n, k) => {
    if (n.kind === "const") return;
    const c = chunkOf[k]!;
    const id = base + k;
    const e = nodeJs(n, (a) => name(c, a));
    local[c]!.add(id);
    chunks[c]!.push(`const v${id} = ${e};`);
    if (reg[id]! >= 0) chunks[c]!.push(`r[${reg[id]}] = v${id};`);
  });
  p.outputs.forEach((id, j) => {
    chunks[nChunks - 1]!.push(write(j, name(nChunks - 1, id)));
  });
  return { chunks: chunks.map((l) => l.join("\n")), registers };
}

/** Build a function from generated source, through a cache keyed by the source itself. */
const bySource = new Map<string, unknown>();
const SOURCE_CACHE = 256;

function build<F>(src: string): F {
  const hit = bySource.get(src);
  if (hit !== undefined) return hit as F;
  const f = new Function("H", src)(HELPERS) as F;
  if (bySource.size >= SOURCE_CACHE) bySource.delete(bySource.keys().next().value!);
  bySource.set(src, f);
  return f;
}

let scalarKernels = new WeakMap<FusedProgram, ScalarKernel>();
/** What runs each program's one-element kernel now (for tests). */
let scalarTiers = new WeakMap<FusedProgram, "interpreter" | "js" | "wasm">();

/**
 * @internal What runs the one-element kernel of `p` now: the interpreter, generated JS or wasm
 * (null before its first call). Tests check the tiering with it.
 */
export function scalarKernelTier(p: FusedProgram): "interpreter" | "js" | "wasm" | null {
  return scalarTiers.get(p) ?? null;
}
let arrayKernels = new WeakMap<FusedProgram, Map<string, ArrayKernel>>();

/**
 * Calls a kernel is interpreted before its code is generated. Generating and compiling JS for a
 * program of thousands of operations costs about as much as a hundred interpreted runs of it,
 * so a kernel called once (a first call, a one-off) never pays for it.
 */
const TIER_UP_CALLS = 2;
/** Interpreted array kernels are only worth it for short loops. */
const TIER_UP_MAX_SIZE = 16;

/**
 * The one-element kernel of `p` (cached per program): interpreted for its first call (emitting a
 * kernel costs more than one interpreted run, and a one-off never pays for it), then a wasm
 * function where the program has a wasm translation (float64/float32 arithmetic) and the runtime
 * compiles wasm, else generated JS after a few more calls.
 */
export function scalarKernel(p: FusedProgram): ScalarKernel {
  let k = scalarKernels.get(p);
  if (k === undefined) {
    const wasm = wasmMode !== false && codegen !== false;
    if (wasmMode === true) {
      const w = compileScalarWasm(p, UNARY_FN, BINARY_FN);
      if (w !== null) {
        scalarKernels.set(p, w);
        scalarTiers.set(p, "wasm");
        return w;
      }
    }
    scalarTiers.set(p, "interpreter");
    if (!codegenAvailable()) k = interpreter(p).runScalar;
    else {
      const slow = interpreter(p).runScalar;
      let calls = 0;
      let fast: ScalarKernel | null = null;
      let triedWasm = !wasm;
      k = (ins, outs) => {
        if (fast !== null) return fast(ins, outs);
        calls++;
        if (!triedWasm && (!tiered || calls > 1)) {
          triedWasm = true;
          fast = compileScalarWasm(p, UNARY_FN, BINARY_FN);
          if (fast !== null) scalarTiers.set(p, "wasm");
        }
        if (fast === null && (!tiered || calls > TIER_UP_CALLS)) {
          fast = generateScalar(p);
          scalarTiers.set(p, "js");
        }
        if (fast !== null) {
          scalarKernels.set(p, fast);
          return fast(ins, outs);
        }
        return slow(ins, outs);
      };
    }
    scalarKernels.set(p, k);
  }
  return k;
}

/** The array kernel of `p` for inputs that are one element where `scalar[k]` (tiered as above). */
export function arrayKernel(p: FusedProgram, scalar: readonly boolean[]): ArrayKernel {
  let perMask = arrayKernels.get(p);
  if (perMask === undefined) arrayKernels.set(p, (perMask = new Map()));
  const mask = scalar.map((x) => (x ? "1" : "0")).join("");
  let k = perMask.get(mask);
  if (k === undefined) {
    if (!codegenAvailable()) k = interpreter(p).run;
    else {
      let slow: ArrayKernel | null = null;
      let calls = 0;
      let fast: ArrayKernel | null = null;
      const table = perMask;
      k = (ins, outs, n) => {
        if (fast !== null) return fast(ins, outs, n);
        if (!tiered || n > TIER_UP_MAX_SIZE || ++calls > TIER_UP_CALLS) {
          fast = generateArray(p, scalar);
          table.set(mask, fast);
          return fast(ins, outs, n);
        }
        slow ??= interpreter(p).run;
        return slow(ins, outs, n);
      };
    }
    perMask.set(mask, k);
  }
  return k;
}

/** One chunk per function, called in order by a driver (direct calls: each site monomorphic). */
function generateScalar(p: FusedProgram): ScalarKernel {
  const body = chunkSources(
    p,
    (k) => `I[${k}]`,
    (j, v) => `O[${j}] = ${v};`,
  );
  const src = [
    ...body.chunks.map((c, i) => `function c${i}(I, O, r) {\n${c}\n}`),
    `const r = new Float64Array(${Math.max(1, body.registers)});`,
    `return function (I, O) {`,
    ...body.chunks.map((_, i) => `  c${i}(I, O, r);`),
    `};`,
  ].join("\n");
  return build<ScalarKernel>(src);
}

/**
 * A loop over indices; one-element inputs are read once, before it. In the usual single-function
 * form the input and output arrays are read into locals first (V8 does not hoist `I[k]` out of a
 * loop that stores to typed arrays: twice as fast), and views along broadcast axes keep running
 * counters instead of dividing at every element.
 */
function generateArray(p: FusedProgram, scalar: readonly boolean[]): ArrayKernel {
  const scalars = p.inputs.map((_, k) => k).filter((k) => scalar[k]);
  const views = p.views ?? [];
  const hoist = scalars.map((k) => `  const S${k} = I[${k}][0];`);
  const extra = scalars.map((k) => `, S${k}`).join("");
  if (programSize(p) <= CHUNK) {
    const setup: string[] = [...hoist];
    const advance: string[] = [];
    const body = chunkSources(
      p,
      (k) => {
        const v = views[k];
        if (!v) return scalar[k] ? `S${k}` : `A${k}[i]`;
        if (v.div === 1 && v.mod === 0) return viewReadJs(v, `A${k}`, "i");
        // A counter j_k holds floor(i / div) % mod (q_k counts within div).
        const read = `A${k}[j${k}${v.offset !== 0 ? ` + ${v.offset}` : ""}]`;
        const conds: string[] = [];
        if (v.start > 0) conds.push(`i >= ${v.start}`);
        if (v.end >= 0) conds.push(`i < ${v.end}`);
        return conds.length === 0 ? read : `(${conds.join(" && ")} ? ${read} : ${numberJs(v.fill)})`;
      },
      (j, v) => `O${j}[i] = ${v};`,
    );
    for (let k = 0; k < p.inputs.length; k++) {
      const v = views[k];
      if (!scalar[k] || v) setup.push(`  const A${k} = I[${k}];`);
      if (!v || (v.div === 1 && v.mod === 0)) continue;
      setup.push(`  let j${k} = 0;`);
      if (v.div === 1) advance.push(`    if (++j${k} === ${v.mod}) j${k} = 0;`);
      else {
        setup.push(`  let q${k} = 0;`);
        const wrap = v.mod > 0 ? ` if (++j${k} === ${v.mod}) j${k} = 0;` : ` j${k}++;`;
        advance.push(`    if (++q${k} === ${v.div}) { q${k} = 0;${wrap} }`);
      }
    }
    for (let j = 0; j < p.outputs.length; j++) setup.push(`  const O${j} = O[${j}];`);
    const src = [
      `return function (I, O, n) {`,
      ...setup,
      `  for (let i = 0; i < n; i++) {`,
      body.chunks[0]!,
      ...advance,
      `  }`,
      `};`,
    ].join("\n");
    return build<ArrayKernel>(src);
  }
  const body = chunkSources(
    p,
    (k) => {
      const v = views[k];
      if (v) return viewReadJs(v, `I[${k}]`, "i");
      return scalar[k] ? `S${k}` : `I[${k}][i]`;
    },
    (j, v) => `O[${j}][i] = ${v};`,
  );
  const src = [
    ...body.chunks.map((c, i) => `function c${i}(I, O, r, i${extra}) {\n${c}\n}`),
    `return function (I, O, n) {`,
    `  const r = new Float64Array(${Math.max(1, body.registers)});`,
    ...hoist,
    `  for (let i = 0; i < n; i++) {`,
    ...body.chunks.map((_, i) => `    c${i}(I, O, r, i${extra});`),
    `  }`,
    `};`,
  ].join("\n");
  return build<ArrayKernel>(src);
}

// ---- the interpreter ------------------------------------------------------------------------

/** Opcodes of the interpreter: one per kernel, in the order of these lists. */
const UNARY_OPS = Object.keys(UNARY_FN) as UnaryKernel[];
const BINARY_OPS = Object.keys(BINARY_FN) as BinaryKernel[];
const OP_SELECT = 100;
const OP_CAST = 101;
const OP_IMUL = 102;
/** Rounding codes (see `roundResult` and `castValue`). */
const ROUND_CODES: readonly DType[] = ["float64", "float32", "float16", "bfloat16", "int32", "bool"];

/**
 * The interpreter: the same semantics as the generated code, over a flat encoding of the program
 * (five integers per node: opcode, operands, rounding; constants are stored once). It runs every kernel where code
 * generation is unavailable, and the first calls of large programs elsewhere, because compiling
 * generated code costs more than a few interpreted runs (tiered, as JS engines do).
 */
function interpreter(p: FusedProgram): { run: ArrayKernel; runScalar: ScalarKernel } {
  const base = p.inputs.length;
  const total = base + p.nodes.length;
  // Per executed node: opcode, up to three operand ids, rounding code; and where the result goes.
  const code = new Int32Array(5 * p.nodes.length);
  const dest = new Int32Array(p.nodes.length);
  const vals = new Float64Array(total);
  let m = 0;
  p.nodes.forEach((n, k) => {
    const at = 5 * m;
    switch (n.kind) {
      case "const":
        vals[base + k] = castValue(n.dtype, n.value);
        return; // constants are stored once, not executed
      case "unary":
        code[at] = UNARY_OPS.indexOf(n.op);
        code[at + 1] = n.arg;
        // results that are already 0/1 need no rounding to bool
        code[at + 4] = BOOLEAN_OPS.has(n.op) && n.dtype === "bool" ? 0 : ROUND_CODES.indexOf(n.dtype);
        break;
      case "binary":
        code[at] = n.dtype === "int32" && n.op === "mul" ? OP_IMUL : 32 + BINARY_OPS.indexOf(n.op);
        code[at + 1] = n.a;
        code[at + 2] = n.b;
        code[at + 4] = BOOLEAN_OPS.has(n.op) && n.dtype === "bool" ? 0 : ROUND_CODES.indexOf(n.dtype);
        break;
      case "select":
        code[at] = OP_SELECT;
        code[at + 1] = n.c;
        code[at + 2] = n.a;
        code[at + 3] = n.b;
        code[at + 4] = 0;
        break;
      case "cast":
        code[at] = OP_CAST;
        code[at + 1] = n.arg;
        code[at + 4] = ROUND_CODES.indexOf(n.dtype);
        break;
    }
    dest[m] = base + k;
    m++;
  });
  const unary = UNARY_OPS.map((op) => UNARY_FN[op]);
  const binary = BINARY_OPS.map((op) => BINARY_FN[op]);
  const evalNodes = () => {
    for (let j = 0; j < m; j++) {
      const at = 5 * j;
      const op = code[at]!;
      let v: number;
      if (op < 32) v = unary[op]!(vals[code[at + 1]!]!);
      else if (op < OP_SELECT) v = binary[op - 32]!(vals[code[at + 1]!]!, vals[code[at + 2]!]!);
      else if (op === OP_SELECT) v = vals[code[at + 1]!]! ? vals[code[at + 2]!]! : vals[code[at + 3]!]!;
      else if (op === OP_IMUL) v = Math.imul(vals[code[at + 1]!]!, vals[code[at + 2]!]!);
      else v = castValue(ROUND_CODES[code[at + 4]!]!, vals[code[at + 1]!]!);
      if (op !== OP_CAST)
        switch (code[at + 4]) {
          case 1:
            v = Math.fround(v);
            break;
          case 2:
            v = roundFloat16(Math.fround(v));
            break;
          case 3:
            v = roundBfloat16(Math.fround(v));
            break;
          case 4:
            v = v | 0;
            break;
          case 5:
            v = v & 255;
            break;
        }
      vals[dest[j]!] = v;
    }
  };
  const outputs = Int32Array.from(p.outputs);
  return {
    run(inputs, outs, size) {
      const views = p.views ?? [];
      for (let i = 0; i < size; i++) {
        for (let k = 0; k < base; k++) {
          const a = inputs[k]!;
          const v = views[k];
          vals[k] = v ? viewRead(v, a, i) : a.length === 1 ? a[0]! : a[i]!;
        }
        evalNodes();
        for (let j = 0; j < outputs.length; j++) outs[j]![i] = vals[outputs[j]!]!;
      }
    },
    runScalar(inputs, outs) {
      for (let k = 0; k < base; k++) vals[k] = inputs[k]!;
      evalNodes();
      for (let j = 0; j < outputs.length; j++) outs[j] = vals[outputs[j]!]!;
    },
  };
}
