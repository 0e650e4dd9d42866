/**
 * @file jit's one-element fused programs (`FusedProgram`s of size 1: a whole scalar program,
 * forward and backward) compiled to one straight-line WebAssembly function. Generated JS of the
 * same program runs in V8's interpreter and baseline tiers, 5 to 30x slower, for the hundreds of
 * calls (up to a second) before V8 optimizes it; a wasm function is compiled to machine code at
 * once (Liftoff) and its first call is already fast, and emitting it is cheaper than generating
 * and parsing the JS.
 *
 * Values are f64 locals (reused after their last use), a value read once is computed where it is
 * read (on the operand stack, no local), inputs and results go through a small memory shared by
 * every such kernel. Results are bit-identical to the JS kernels: float32 nodes round through
 * f32 (`Math.fround`), and every transcendental is the same `Math` function, imported. Programs
 * with int32, bool arithmetic or 16-bit float nodes return null (the JS kernels run them).
 */

import type { DType } from "../../dtype.js";
import type { BinaryKernel, UnaryKernel } from "../backend.js";
import type { FusedNode, FusedProgram, ScalarKernel } from "../kernel.js";
import { type WasmMemory, wasmApi } from "./wasm-api.js";

/** Unary kernels called as imported JS functions (the same functions the JS kernels call). */
const IMPORTED_UNARY: readonly UnaryKernel[] = [
  "exp",
  "log",
  "log1p",
  "expm1",
  "sin",
  "cos",
  "tan",
  "asin",
  "acos",
  "atan",
  "sinh",
  "cosh",
  "tanh",
  "logistic",
  "round",
  "erf",
];
const IMPORTED_BINARY: readonly BinaryKernel[] = ["pow", "atan2"];

/** Kernels whose results are already 0 or 1 (a bool result needs no rounding). */
const BOOLEAN_OPS = new Set<string>(["eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not"]);

// Opcodes.
const I32_CONST = 0x41;
const F64_CONST = 0x44;
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const CALL = 0x10;
const SELECT = 0x1b;
const F64_LOAD = 0x2b;
const F64_STORE = 0x39;
const I32_AND = 0x71;
const I32_OR = 0x72;
const F64_EQ = 0x61;
const F64_NE = 0x62;
const F64_LT = 0x63;
const F64_GT = 0x64;
const F64_LE = 0x65;
const F64_GE = 0x66;
const F64_ABS = 0x99;
const F64_NEG = 0x9a;
const F64_CEIL = 0x9b;
const F64_FLOOR = 0x9c;
const F64_SQRT = 0x9f;
const F64_ADD = 0xa0;
const F64_SUB = 0xa1;
const F64_MUL = 0xa2;
const F64_DIV = 0xa3;
const F32_DEMOTE = 0xb6;
const F64_CONVERT_I32_U = 0xb8;
const I32_EQZ = 0x45;
const F64_PROMOTE = 0xbb;

const COMPARE: Partial<Record<BinaryKernel, number>> = {
  eq: F64_EQ,
  ne: F64_NE,
  lt: F64_LT,
  le: F64_LE,
  gt: F64_GT,
  ge: F64_GE,
};
const ARITH: Partial<Record<BinaryKernel, number>> = {
  add: F64_ADD,
  sub: F64_SUB,
  mul: F64_MUL,
  div: F64_DIV,
};
const PLAIN_UNARY: Partial<Record<UnaryKernel, number>> = {
  neg: F64_NEG,
  abs: F64_ABS,
  sqrt: F64_SQRT,
  floor: F64_FLOOR,
  ceil: F64_CEIL,
};

/**
 * The function body under construction: a byte array sized for the worst case up front (no
 * bounds checks per byte), written through the few encodings the kernels need. This runs once
 * per program, mostly before the engine has optimized it: plain indexed writes, no allocation.
 */
class Body {
  readonly buf: Uint8Array;
  n = 0;
  private readonly f64 = new Float64Array(1);
  private readonly f64Bytes = new Uint8Array(this.f64.buffer);

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }

  byte(b: number): void {
    this.buf[this.n++] = b;
  }

  /** An unsigned LEB128 number. */
  leb(v: number): void {
    const buf = this.buf;
    let n = this.n;
    while (v >= 0x80) {
      buf[n++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[n++] = v;
    this.n = n;
  }

  /** An instruction with one unsigned immediate (local.get, call, ...). */
  op1(op: number, imm: number): void {
    this.buf[this.n++] = op;
    this.leb(imm);
  }

  f64const(v: number): void {
    const buf = this.buf;
    const b = this.f64Bytes;
    this.f64[0] = v;
    const n = this.n;
    buf[n] = F64_CONST;
    buf[n + 1] = b[0]!;
    buf[n + 2] = b[1]!;
    buf[n + 3] = b[2]!;
    buf[n + 4] = b[3]!;
    buf[n + 5] = b[4]!;
    buf[n + 6] = b[5]!;
    buf[n + 7] = b[6]!;
    buf[n + 8] = b[7]!;
    this.n = n + 9;
  }

  /** The f64 memory access `op` at byte `offset` of address 0 (`i32.const 0` first for a load). */
  mem(op: number, offset: number, address: boolean): void {
    const buf = this.buf;
    if (address) {
      buf[this.n++] = I32_CONST;
      buf[this.n++] = 0;
    }
    buf[this.n++] = op;
    buf[this.n++] = 3; // alignment 2^3
    this.leb(offset);
  }
}

function ulebArray(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

function nameBytes(s: string): number[] {
  return [...ulebArray(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

/** The function index of the kernel (after the imported functions). */
const FUNC_INDEX = IMPORTED_UNARY.length + IMPORTED_BINARY.length;
/** Call index of each imported kernel. */
const IMPORT_INDEX = new Map<string, number>([
  ...IMPORTED_UNARY.map((f, i) => [f, i] as const),
  ...IMPORTED_BINARY.map((f, i) => [f, IMPORTED_UNARY.length + i] as const),
]);

let header: Uint8Array | null = null;

/** The module before its code section (the same for every kernel): types, imports, the function, its export. */
function moduleHeader(): Uint8Array {
  if (header !== null) return header;
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const section = (id: number, body: number[]) => out.push(id, ...ulebArray(body.length), ...body);
  // Types: 0 () -> (), 1 (f64) -> f64, 2 (f64, f64) -> f64.
  section(1, [3, 0x60, 0, 0, 0x60, 1, 0x7c, 1, 0x7c, 0x60, 2, 0x7c, 0x7c, 1, 0x7c]);
  const imports: number[] = ulebArray(FUNC_INDEX + 1);
  for (const f of IMPORTED_UNARY) imports.push(...nameBytes("m"), ...nameBytes(f), 0x00, 1);
  for (const f of IMPORTED_BINARY) imports.push(...nameBytes("m"), ...nameBytes(f), 0x00, 2);
  imports.push(...nameBytes("m"), ...nameBytes("memory"), 0x02, 0x00, 0x01);
  section(2, imports);
  section(3, [1, 0]);
  section(7, [1, ...nameBytes("run"), 0x00, ...ulebArray(FUNC_INDEX)]);
  header = Uint8Array.from(out);
  return header;
}

/** Node kinds of the flat encoding. */
const K_CONST = 0;
const K_OP = 1;

/** Per node: its kind and up to three operands in push order (a select's condition last, as wasm wants it). */
interface Flat {
  readonly kind: Uint8Array;
  readonly arity: Uint8Array;
  readonly arg: Int32Array;
}

const isWasmFloat = (d: DType) => d === "float64" || d === "float32";

/** The flat encoding of `p`, or null if a node has no wasm translation here. */
function flatten(p: FusedProgram): Flat | null {
  const nodes = p.nodes;
  const m = nodes.length;
  const kind = new Uint8Array(m);
  const arity = new Uint8Array(m);
  const arg = new Int32Array(3 * m);
  for (let k = 0; k < m; k++) {
    const n = nodes[k]!;
    const d = n.dtype;
    const at = 3 * k;
    kind[k] = K_OP;
    switch (n.kind) {
      case "const":
        if (d === "float16" || d === "bfloat16") return null;
        kind[k] = K_CONST;
        break;
      case "select":
        arity[k] = 3;
        arg[at] = n.a;
        arg[at + 1] = n.b;
        arg[at + 2] = n.c;
        break;
      case "cast":
        if (!isWasmFloat(d) && d !== "bool") return null;
        arity[k] = 1;
        arg[at] = n.arg;
        break;
      case "unary":
        if (!isWasmFloat(d) && !(d === "bool" && BOOLEAN_OPS.has(n.op))) return null;
        arity[k] = 1;
        arg[at] = n.arg;
        break;
      case "binary":
        if (!isWasmFloat(d) && !(d === "bool" && BOOLEAN_OPS.has(n.op))) return null;
        arity[k] = 2;
        arg[at] = n.a;
        arg[at + 1] = n.b;
        break;
    }
  }
  return { kind, arity, arg };
}

/** The one memory every kernel shares: inputs at f64 slots 0.., results after them. */
let memory: WasmMemory | null = null;
let view: Float64Array = new Float64Array(0);
/** Modules this size and above failed to compile synchronously (a browser's main thread): skip them. */
let refusedAt = Number.POSITIVE_INFINITY;
/** Compilation is refused outright here (a Content-Security-Policy): never try again. */
let broken = false;

function ensureMemory(slots: number): WasmMemory | null {
  const api = wasmApi();
  if (api === null) return null;
  const pages = Math.max(1, Math.ceil((slots * 8) / 65536));
  if (memory === null) memory = new api.Memory({ initial: pages });
  const have = memory.buffer.byteLength / 65536;
  if (have < pages) memory.grow(pages - have);
  return memory;
}

/**
 * Compile a one-element program to a wasm kernel, or null (a node without a wasm translation, no
 * WebAssembly, or compilation refused). `unary`/`binary` are the JS functions the imports call
 * (the JS kernels' own, so both round identically).
 * @example
 * const k = compileScalarWasm(prog, UNARY_FN, BINARY_FN);
 * k?.([0.5], out); // out[j] = result j
 */
export function compileScalarWasm(
  p: FusedProgram,
  unary: Readonly<Record<UnaryKernel, (x: number) => number>>,
  binary: Readonly<Record<BinaryKernel, (a: number, b: number) => number>>,
): ScalarKernel | null {
  if (broken) return null;
  const api = wasmApi();
  if (api === null) return null;
  const flat = flatten(p);
  if (flat === null) return null;
  const { kind, arity, arg } = flat;
  const nodes = p.nodes;
  const base = p.inputs.length;
  const m = nodes.length;
  const total = base + m;
  const outputs = p.outputs;
  const nOut = outputs.length;
  const mem = ensureMemory(base + nOut);
  if (mem === null) return null;

  // Uses of every value; a node read once (not a result) is computed where it is read.
  const uses = new Int32Array(total);
  const consumer = new Int32Array(total);
  for (let k = 0; k < m; k++)
    for (let j = 0; j < arity[k]!; j++) {
      const a = arg[3 * k + j]!;
      uses[a]!++;
      consumer[a] = k;
    }
  for (let j = 0; j < nOut; j++) uses[outputs[j]!]! += 2;
  const inline = new Uint8Array(m);
  for (let k = 0; k < m; k++) if (kind[k] === K_OP && uses[base + k] === 1) inline[k] = 1;
  // When each node's code is emitted: its own turn, or its reader's (inlined). A value in a local
  // is freed after the last emission that reads it, so an inlined reader never sees a reused local.
  const when = new Int32Array(m);
  for (let k = m - 1; k >= 0; k--) when[k] = inline[k] ? when[consumer[base + k]!]! : k;
  const lastRead = new Int32Array(total).fill(-1);
  for (let k = 0; k < m; k++) {
    const t = when[k]!;
    for (let j = 0; j < arity[k]!; j++) {
      const a = arg[3 * k + j]!;
      if (t > lastRead[a]!) lastRead[a] = t;
    }
  }
  for (let j = 0; j < nOut; j++) lastRead[outputs[j]!] = m;
  // Values freed at each emission time, linked through `nextFree`.
  const freeHead = new Int32Array(m + 1).fill(-1);
  const nextFree = new Int32Array(total);
  for (let k = 0; k < m; k++) {
    if (kind[k] === K_CONST || inline[k]) continue;
    const id = base + k;
    const t = lastRead[id]! < 0 ? k : lastRead[id]!;
    nextFree[id] = freeHead[t]!;
    freeHead[t] = id;
  }

  // The longest operation (sign) takes about 40 bytes, plus a local.set.
  const code = new Body(48 * m + 16 * nOut + 16);
  // Three scratch locals (0-2) for operations that read an operand twice; values from 3 on.
  const S0 = 0;
  const S1 = 1;
  const S2 = 2;
  let locals = 3;
  const pool = new Int32Array(total);
  let pooled = 0;
  const local = new Int32Array(total).fill(-1);
  const isBool = (id: number): boolean =>
    id < base ? p.inputs[id] === "bool" : nodes[id - base]!.dtype === "bool";

  /** JS truthiness of value `id`, on the stack, as an i32 (`x !== 0 && x === x`). */
  const truthy = (id: number) => {
    if (isBool(id)) {
      code.f64const(0);
      code.byte(F64_NE);
      return;
    }
    code.op1(LOCAL_TEE, S2);
    code.f64const(0);
    code.byte(F64_NE);
    code.op1(LOCAL_GET, S2);
    code.op1(LOCAL_GET, S2);
    code.byte(F64_EQ);
    code.byte(I32_AND);
  };

  /** The operation of node `n`, its operands on the stack in push order. */
  const emitOp = (n: FusedNode) => {
    switch (n.kind) {
      case "const":
        return;
      case "unary": {
        const plain = PLAIN_UNARY[n.op];
        if (plain !== undefined) code.byte(plain);
        else if (n.op === "sign") {
          // x > 0 ? 1 : x < 0 ? -1 : x
          code.op1(LOCAL_SET, S0);
          code.f64const(1);
          code.f64const(-1);
          code.op1(LOCAL_GET, S0);
          code.op1(LOCAL_GET, S0);
          code.f64const(0);
          code.byte(F64_LT);
          code.byte(SELECT);
          code.op1(LOCAL_GET, S0);
          code.f64const(0);
          code.byte(F64_GT);
          code.byte(SELECT);
        } else if (n.op === "not") {
          truthy(n.arg);
          code.byte(I32_EQZ);
          code.byte(F64_CONVERT_I32_U);
        } else code.op1(CALL, IMPORT_INDEX.get(n.op)!);
        break;
      }
      case "binary": {
        const arith = ARITH[n.op];
        const cmp = COMPARE[n.op];
        if (arith !== undefined) code.byte(arith);
        else if (cmp !== undefined) {
          code.byte(cmp);
          code.byte(F64_CONVERT_I32_U);
        } else if (n.op === "max" || n.op === "min") {
          // a > b || a !== a ? a : b (a < b for min): NaN wins, ties give b, as in the JS kernels
          code.op1(LOCAL_SET, S1);
          code.op1(LOCAL_SET, S0);
          code.op1(LOCAL_GET, S0);
          code.op1(LOCAL_GET, S1);
          code.op1(LOCAL_GET, S0);
          code.op1(LOCAL_GET, S1);
          code.byte(n.op === "max" ? F64_GT : F64_LT);
          code.op1(LOCAL_GET, S0);
          code.op1(LOCAL_GET, S0);
          code.byte(F64_NE);
          code.byte(I32_OR);
          code.byte(SELECT);
        } else if (n.op === "and" || n.op === "or") {
          code.op1(LOCAL_SET, S1);
          truthy(n.a);
          code.op1(LOCAL_GET, S1);
          truthy(n.b);
          code.byte(n.op === "and" ? I32_AND : I32_OR);
          code.byte(F64_CONVERT_I32_U);
        } else code.op1(CALL, IMPORT_INDEX.get(n.op)!);
        break;
      }
      case "select":
        truthy(n.c);
        code.byte(SELECT);
        return;
      case "cast":
        if (n.dtype === "bool") {
          truthy(n.arg);
          code.byte(F64_CONVERT_I32_U);
          return;
        }
        break;
    }
    // float32 results round through f32 (Math.fround); float64 and 0/1 results are exact.
    if (n.dtype === "float32") {
      code.byte(F32_DEMOTE);
      code.byte(F64_PROMOTE);
    }
  };

  /** Push value `id` when it is an input, a constant or in a local. */
  const emitLeaf = (id: number) => {
    if (id < base) code.mem(F64_LOAD, 8 * id, true);
    else if (local[id]! >= 0) code.op1(LOCAL_GET, local[id]!);
    else code.f64const(constValue(nodes[id - base] as FusedNode & { kind: "const" }));
  };
  // Trees of inlined nodes are emitted in post-order without recursion (chains are thousands deep).
  const stackNode = new Int32Array(m + 1);
  const stackNext = new Int32Array(m + 1);
  /** Push node `k0`'s value, computing it and its inlined operands. */
  const emitTree = (k0: number) => {
    let sp = 0;
    stackNode[0] = k0;
    stackNext[0] = 0;
    while (sp >= 0) {
      const k = stackNode[sp]!;
      const j = stackNext[sp]!;
      if (j === arity[k]) {
        emitOp(nodes[k]!);
        sp--;
        continue;
      }
      stackNext[sp] = j + 1;
      const a = arg[3 * k + j]!;
      if (a >= base && inline[a - base]) {
        sp++;
        stackNode[sp] = a - base;
        stackNext[sp] = 0;
      } else emitLeaf(a);
    }
  };

  for (let k = 0; k < m; k++) {
    if (kind[k] === K_CONST || inline[k]) continue;
    const id = base + k;
    emitTree(k);
    // Locals last read by this emission are free now (the result may take one of them).
    for (let v = freeHead[k]!; v >= 0; v = nextFree[v]!) if (v !== id) pool[pooled++] = local[v]!;
    const l = pooled > 0 ? pool[--pooled]! : locals++;
    local[id] = l;
    code.op1(LOCAL_SET, l);
    if (lastRead[id]! < 0) pool[pooled++] = l; // never read (and not a result)
  }
  for (let j = 0; j < nOut; j++) {
    code.byte(I32_CONST);
    code.byte(0);
    emitLeaf(outputs[j]!);
    code.mem(F64_STORE, 8 * (base + j), false);
  }
  if (locals > 50_000) return null; // V8's limit on locals per function

  // The code section: one body, its local declarations (`locals` f64s) first.
  const head = moduleHeader();
  const decl = [1, ...ulebArray(locals), 0x7c];
  const bodySize = decl.length + code.n + 1;
  const tail = [
    10,
    ...ulebArray(1 + ulebArray(bodySize).length + bodySize),
    1,
    ...ulebArray(bodySize),
    ...decl,
  ];
  const bytes = new Uint8Array(head.length + tail.length + code.n + 1);
  bytes.set(head, 0);
  bytes.set(tail, head.length);
  bytes.set(code.buf.subarray(0, code.n), head.length + tail.length);
  bytes[bytes.length - 1] = 0x0b; // end of the body
  if (bytes.length >= refusedAt) return null;

  const env: Record<string, unknown> = { memory: mem };
  for (const f of IMPORTED_UNARY) env[f] = unary[f];
  for (const f of IMPORTED_BINARY) env[f] = binary[f];
  let run: () => void;
  try {
    run = new api.Instance(new api.Module(bytes), { m: env }).exports.run as () => void;
  } catch (e) {
    // A browser's main thread refuses large synchronous compiles (RangeError); a CSP without
    // 'wasm-unsafe-eval' refuses every one (CompileError): the JS kernels run instead.
    if (e instanceof RangeError) refusedAt = Math.min(refusedAt, bytes.length);
    else broken = true;
    return null;
  }
  return (ins, outs) => {
    let v = view;
    if (v.length < base + nOut) v = view = new Float64Array(mem.buffer);
    for (let k = 0; k < base; k++) v[k] = ins[k]!;
    run();
    for (let j = 0; j < nOut; j++) outs[j] = v[base + j]!;
  };
}

/** A constant as its node holds it (as `castValue`: float32 rounded once, bool 0/1, int32 truncated). */
function constValue(n: FusedNode & { kind: "const" }): number {
  const v = n.value;
  switch (n.dtype) {
    case "float32":
      return Math.fround(v);
    case "bool":
      return v ? 1 : 0;
    case "int32":
      return Math.trunc(v) | 0;
    default:
      return v;
  }
}
