/**
 * @file A small WebAssembly binary emitter: a module builder (types, one imported memory,
 * functions, exports) and a code builder with named instructions (scalar, SIMD128, relaxed SIMD)
 * and labelled structured control flow. The wasm backend assembles its kernels with it at load
 * time, so the package ships no opaque binaries and needs no toolchain.
 */

import { type WasmMemory, wasmApi } from "./wasm-api.js";

/** The value types the kernels use. */
export type ValType = "i32" | "i64" | "f32" | "f64" | "v128";

const VALTYPE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b };

/** Opcodes without immediates. SIMD and relaxed-SIMD ones are `0xfd` followed by a LEB128 index. */
const PLAIN = {
  unreachable: [0x00],
  nop: [0x01],
  return: [0x0f],
  drop: [0x1a],
  select: [0x1b],
  "i32.eqz": [0x45],
  "i32.eq": [0x46],
  "i32.ne": [0x47],
  "i32.lt_s": [0x48],
  "i32.lt_u": [0x49],
  "i32.gt_s": [0x4a],
  "i32.gt_u": [0x4b],
  "i32.le_s": [0x4c],
  "i32.le_u": [0x4d],
  "i32.ge_s": [0x4e],
  "i32.ge_u": [0x4f],
  "f32.eq": [0x5b],
  "f32.ne": [0x5c],
  "f32.lt": [0x5d],
  "f32.gt": [0x5e],
  "f32.le": [0x5f],
  "f32.ge": [0x60],
  "f64.eq": [0x61],
  "f64.ne": [0x62],
  "f64.lt": [0x63],
  "f64.gt": [0x64],
  "f64.le": [0x65],
  "f64.ge": [0x66],
  "i32.add": [0x6a],
  "i32.sub": [0x6b],
  "i32.mul": [0x6c],
  "i32.div_s": [0x6d],
  "i32.div_u": [0x6e],
  "i32.rem_u": [0x70],
  "i32.and": [0x71],
  "i32.or": [0x72],
  "i32.xor": [0x73],
  "i32.shl": [0x74],
  "i32.shr_s": [0x75],
  "i32.shr_u": [0x76],
  "i64.and": [0x83],
  "i64.or": [0x84],
  "f32.abs": [0x8b],
  "f32.neg": [0x8c],
  "f32.ceil": [0x8d],
  "f32.floor": [0x8e],
  "f32.nearest": [0x90],
  "f32.sqrt": [0x91],
  "f32.add": [0x92],
  "f32.sub": [0x93],
  "f32.mul": [0x94],
  "f32.div": [0x95],
  "f64.abs": [0x99],
  "f64.neg": [0x9a],
  "f64.ceil": [0x9b],
  "f64.floor": [0x9c],
  "f64.trunc": [0x9d],
  "f64.nearest": [0x9e],
  "f64.sqrt": [0x9f],
  "f64.add": [0xa0],
  "f64.sub": [0xa1],
  "f64.mul": [0xa2],
  "f64.div": [0xa3],
  "f64.max": [0xa5],
  "f64.copysign": [0xa6],
  "i32.wrap_i64": [0xa7],
  "i32.trunc_f64_s": [0xaa],
  "i64.trunc_f64_s": [0xb0],
  "f32.convert_i32_s": [0xb2],
  "f32.demote_f64": [0xb6],
  "f64.convert_i32_s": [0xb7],
  "f64.convert_i32_u": [0xb8],
  "f64.promote_f32": [0xbb],
  "i32.reinterpret_f32": [0xbc],
  "i64.reinterpret_f64": [0xbd],
  "f32.reinterpret_i32": [0xbe],
  "f64.reinterpret_i64": [0xbf],
} as const;

const SIMD = {
  "v128.const": -1, // has a 16-byte immediate: use Code.v128const
  "i8x16.shuffle": -1, // has 16 lane immediates: not used
  "i32x4.splat": 17,
  "i32x4.eq": 55,
  "i32x4.ne": 56,
  "i8x16.narrow_i16x8_s": 101,
  "i64x2.splat": 18,
  "f32x4.splat": 19,
  "f64x2.splat": 20,
  "f32x4.eq": 65,
  "f32x4.ne": 66,
  "f32x4.lt": 67,
  "f32x4.gt": 68,
  "f32x4.le": 69,
  "f32x4.ge": 70,
  "f64x2.eq": 71,
  "f64x2.ne": 72,
  "f64x2.lt": 73,
  "f64x2.gt": 74,
  "f64x2.le": 75,
  "f64x2.ge": 76,
  "v128.not": 77,
  "v128.and": 78,
  "v128.andnot": 79,
  "v128.or": 80,
  "v128.xor": 81,
  "v128.bitselect": 82,
  "v128.any_true": 83,
  "f32x4.demote_f64x2_zero": 94,
  "f64x2.promote_low_f32x4": 95,
  "f32x4.ceil": 103,
  "f32x4.floor": 104,
  "f32x4.nearest": 106,
  "f64x2.ceil": 116,
  "f64x2.floor": 117,
  "f64x2.nearest": 148,
  "i16x8.narrow_i32x4_s": 133,
  "i16x8.extend_low_i8x16_u": 137,
  "i32x4.all_true": 163,
  "i32x4.extend_low_i16x8_u": 169,
  "i32x4.shl": 171,
  "i32x4.shr_u": 173,
  "i32x4.add": 174,
  "i32x4.sub": 177,
  "i32x4.max_s": 184,
  "i64x2.extend_low_i32x4_s": 199,
  "i64x2.extend_low_i32x4_u": 201,
  "i64x2.shl": 203,
  "i64x2.shr_u": 205,
  "i64x2.add": 206,
  "i64x2.sub": 209,
  "i64x2.ne": 215,
  "f32x4.abs": 224,
  "f32x4.neg": 225,
  "f32x4.sqrt": 227,
  "f32x4.add": 228,
  "f32x4.sub": 229,
  "f32x4.mul": 230,
  "f32x4.div": 231,
  "f32x4.min": 232,
  "f32x4.max": 233,
  "f64x2.abs": 236,
  "f64x2.neg": 237,
  "f64x2.sqrt": 239,
  "f64x2.add": 240,
  "f64x2.sub": 241,
  "f64x2.mul": 242,
  "f64x2.div": 243,
  "f64x2.min": 244,
  "f64x2.max": 245,
  "f64x2.pmin": 246,
  "f64x2.pmax": 247,
  "i32x4.trunc_sat_f32x4_s": 248,
  "f32x4.convert_i32x4_s": 250,
  "i32x4.trunc_sat_f64x2_s_zero": 252,
  "f64x2.convert_low_i32x4_s": 254,
  // Relaxed SIMD (detected at start-up before use).
  "f32x4.relaxed_madd": 0x105,
  "f64x2.relaxed_madd": 0x107,
} as const;

/** Lane-extraction instructions (one lane-index immediate). */
const LANE = {
  "i32x4.extract_lane": 27,
  "i64x2.extract_lane": 29,
  "f32x4.extract_lane": 31,
  "f64x2.extract_lane": 33,
} as const;

/** Memory instructions: opcode bytes and natural alignment (log2 bytes). */
const MEMORY = {
  "i32.load": [[0x28], 2],
  "f32.load": [[0x2a], 2],
  "f64.load": [[0x2b], 3],
  "i64.load": [[0x29], 3],
  "i32.load8_u": [[0x2d], 0],
  "i32.store": [[0x36], 2],
  "i64.store": [[0x37], 3],
  "f32.store": [[0x38], 2],
  "f64.store": [[0x39], 3],
  "i32.store8": [[0x3a], 0],
  "v128.load": [[0xfd, 0], 4],
  "v128.load16_splat": [[0xfd, 8], 1],
  "v128.load32_splat": [[0xfd, 9], 2],
  "v128.load64_splat": [[0xfd, 10], 3],
  "v128.store": [[0xfd, 11], 4],
  "v128.load32_zero": [[0xfd, 92], 2],
  "v128.load64_zero": [[0xfd, 93], 3],
} as const;

/** Names of instructions without immediates (type-checked, so a typo fails to compile). */
export type PlainOp = keyof typeof PLAIN;
/** Names of SIMD instructions without immediates. */
export type SimdOp = Exclude<keyof typeof SIMD, "v128.const" | "i8x16.shuffle">;
/** Names of lane-extraction instructions. */
export type LaneOp = keyof typeof LANE;
/** Names of memory instructions (they take an offset). */
export type MemOp = keyof typeof MEMORY;

function uleb(out: number[], v: number): void {
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
}

function sleb(out: number[], v: number): void {
  // Values here are int32; arithmetic shifts keep the sign.
  v |= 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

/** A label of a `block`, `loop` or `if`, for `br`/`brIf`. */
export interface Label {
  readonly id: number;
}

/**
 * The body of one function: append instructions in order. Locals are declared with `local`; the
 * parameters are locals `0 .. params-1`. Control labels are tracked so branches name their
 * target instead of a relative depth.
 * @example
 * const m = new ModuleBuilder({ shared: false, initial: 1 });
 * m.func("twice", ["i32"], ["i32"], (c) => {
 *   c.get(0).get(0).op("i32.add");
 * });
 * const bytes = m.toBytes(); // instantiate with { env: { memory: m.createMemory() } }
 */
export class Code {
  readonly bytes: number[] = [];
  readonly localTypes: ValType[] = [];
  private readonly labels: Label[] = [];
  private nextLabel = 0;

  constructor(readonly paramCount: number) {}

  /** Declare a local of type `t`; returns its index. */
  local(t: ValType): number {
    this.localTypes.push(t);
    return this.paramCount + this.localTypes.length - 1;
  }

  op(name: PlainOp): this {
    this.bytes.push(...PLAIN[name]);
    return this;
  }

  simd(name: SimdOp): this {
    this.bytes.push(0xfd);
    uleb(this.bytes, SIMD[name]);
    return this;
  }

  lane(name: LaneOp, i: number): this {
    this.bytes.push(0xfd);
    uleb(this.bytes, LANE[name]);
    this.bytes.push(i);
    return this;
  }

  /** A memory access at `[address on the stack] + offset` (offset ≥ 0, a byte count). */
  mem(name: MemOp, offset = 0): this {
    const [code, align] = MEMORY[name];
    this.bytes.push(...code);
    uleb(this.bytes, align);
    uleb(this.bytes, offset);
    return this;
  }

  get(i: number): this {
    this.bytes.push(0x20);
    uleb(this.bytes, i);
    return this;
  }

  set(i: number): this {
    this.bytes.push(0x21);
    uleb(this.bytes, i);
    return this;
  }

  tee(i: number): this {
    this.bytes.push(0x22);
    uleb(this.bytes, i);
    return this;
  }

  i32(v: number): this {
    this.bytes.push(0x41);
    sleb(this.bytes, v);
    return this;
  }

  f32(v: number): this {
    this.bytes.push(0x43);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.bytes.push(...b);
    return this;
  }

  f64(v: number): this {
    this.bytes.push(0x44);
    const b = new Uint8Array(new Float64Array([v]).buffer);
    this.bytes.push(...b);
    return this;
  }

  /** A v128 constant from 16 raw bytes (all zero by default). */
  v128const(bytes: readonly number[] = new Array<number>(16).fill(0)): this {
    this.bytes.push(0xfd);
    uleb(this.bytes, 12);
    for (let i = 0; i < 16; i++) this.bytes.push(bytes[i]! & 0xff);
    return this;
  }

  /**
   * `i8x16.shuffle`: the 16 bytes picked by `lanes` (0-15 from the first operand, 16-31 from the
   * second) out of two vectors on the stack.
   */
  shuffle(lanes: readonly number[]): this {
    if (lanes.length !== 16) throw new Error("wasm emitter: a shuffle takes 16 lane indices");
    this.bytes.push(0xfd);
    uleb(this.bytes, 13);
    for (const l of lanes) this.bytes.push(l & 31);
    return this;
  }

  /** `v128.store64_lane`: store lane `lane` (0 or 1) of the i64x2 view of a vector. */
  storeLane64(lane: number, offset = 0): this {
    this.bytes.push(0xfd);
    uleb(this.bytes, 91);
    uleb(this.bytes, 3);
    uleb(this.bytes, offset);
    this.bytes.push(lane);
    return this;
  }

  /** An i64 constant (exact for |v| < 2^53). */
  i64(v: bigint): this {
    this.bytes.push(0x42);
    // Signed LEB128 of a 64-bit value.
    let x = BigInt.asIntN(64, v);
    for (;;) {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      if ((x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0)) {
        this.bytes.push(b);
        return this;
      }
      this.bytes.push(b | 0x80);
    }
  }

  /** `memory.copy` (bulk memory): dst, src, byte count on the stack. */
  memoryCopy(): this {
    this.bytes.push(0xfc, 10, 0, 0);
    return this;
  }

  /** `memory.fill`: dst, byte value, byte count on the stack. */
  memoryFill(): this {
    this.bytes.push(0xfc, 11, 0);
    return this;
  }

  call(funcIndex: number): this {
    this.bytes.push(0x10);
    uleb(this.bytes, funcIndex);
    return this;
  }

  private open(opcode: number): Label {
    const l = { id: this.nextLabel++ };
    this.bytes.push(opcode, 0x40); // empty block type
    this.labels.push(l);
    return l;
  }

  block(): Label {
    return this.open(0x02);
  }

  loop(): Label {
    return this.open(0x03);
  }

  /** `if` consuming an i32 condition. */
  if(): Label {
    return this.open(0x04);
  }

  else(): this {
    this.bytes.push(0x05);
    return this;
  }

  end(): this {
    if (this.labels.pop() === undefined) throw new Error("wasm emitter: end without an open block");
    this.bytes.push(0x0b);
    return this;
  }

  private depth(l: Label): number {
    const i = this.labels.lastIndexOf(l);
    if (i < 0) throw new Error("wasm emitter: branch to a label that is not open");
    return this.labels.length - 1 - i;
  }

  br(l: Label): this {
    this.bytes.push(0x0c);
    uleb(this.bytes, this.depth(l));
    return this;
  }

  brIf(l: Label): this {
    this.bytes.push(0x0d);
    uleb(this.bytes, this.depth(l));
    return this;
  }

  /** Run `body` while `local < limit` (i32, unsigned compare), adding `step` after each pass. */
  forLoop(local: number, limit: () => void, step: number, body: () => void): this {
    const out = this.block();
    const top = this.loop();
    this.get(local);
    limit();
    this.op("i32.ge_u").brIf(out);
    body();
    this.get(local).i32(step).op("i32.add").set(local);
    this.br(top);
    this.end();
    this.end();
    return this;
  }

  /** Check that every block was closed (called by the module builder). */
  finish(): void {
    if (this.labels.length !== 0) throw new Error("wasm emitter: a block was left open");
  }
}

interface FuncDef {
  readonly name: string;
  readonly type: number;
  readonly code: Code;
  readonly exported: boolean;
}

/** Memory import settings: a shared memory needs a maximum (in 64 KiB pages). */
export interface MemorySpec {
  readonly shared: boolean;
  readonly initial: number;
  readonly maximum?: number;
}

/**
 * A module that imports one memory (`env.memory`) and defines functions, exported by name.
 * @example
 * const m = new ModuleBuilder({ shared: false, initial: 1 });
 * m.func("add1", ["f64"], ["f64"], (c) => {
 *   c.get(0).f64(1).op("f64.add");
 * });
 * const bytes = m.toBytes(); // a complete .wasm binary
 */
export class ModuleBuilder {
  private readonly types: string[] = [];
  private readonly typeBytes: number[][] = [];
  private readonly funcs: FuncDef[] = [];

  constructor(readonly memory: MemorySpec) {}

  private typeIndex(params: readonly ValType[], results: readonly ValType[]): number {
    const key = `${params.join(",")}->${results.join(",")}`;
    let i = this.types.indexOf(key);
    if (i < 0) {
      const b = [0x60];
      uleb(b, params.length);
      for (const p of params) b.push(VALTYPE[p]);
      uleb(b, results.length);
      for (const r of results) b.push(VALTYPE[r]);
      i = this.types.length;
      this.types.push(key);
      this.typeBytes.push(b);
    }
    return i;
  }

  /** Define a function; returns its index (for `call`). Parameters are locals 0.. */
  func(
    name: string,
    params: readonly ValType[],
    results: readonly ValType[],
    body: (c: Code) => void,
    exported = true,
  ): number {
    const code = new Code(params.length);
    body(code);
    code.finish();
    this.funcs.push({ name, type: this.typeIndex(params, results), code, exported });
    return this.funcs.length - 1;
  }

  /** Names of the exported functions, in definition order. */
  exportNames(): string[] {
    return this.funcs.filter((f) => f.exported).map((f) => f.name);
  }

  /** A fresh memory matching the import (for tests and single-instance use). */
  createMemory(): WasmMemory {
    const { shared, initial, maximum } = this.memory;
    return new (wasmApi()!.Memory)(
      shared ? { initial, maximum: maximum ?? initial, shared: true } : { initial },
    );
  }

  toBytes(): Uint8Array {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const section = (id: number, body: number[]): void => {
      out.push(id);
      uleb(out, body.length);
      for (const b of body) out.push(b);
    };
    const name = (b: number[], s: string): void => {
      const enc = Array.from(s, (ch) => ch.charCodeAt(0));
      uleb(b, enc.length);
      b.push(...enc);
    };
    {
      const b: number[] = [];
      uleb(b, this.typeBytes.length);
      for (const t of this.typeBytes) b.push(...t);
      section(1, b);
    }
    {
      const b: number[] = [];
      uleb(b, 1);
      name(b, "env");
      name(b, "memory");
      b.push(0x02);
      const { shared, initial, maximum } = this.memory;
      if (shared) {
        b.push(0x03);
        uleb(b, initial);
        uleb(b, maximum ?? initial);
      } else if (maximum !== undefined) {
        b.push(0x01);
        uleb(b, initial);
        uleb(b, maximum);
      } else {
        b.push(0x00);
        uleb(b, initial);
      }
      section(2, b);
    }
    {
      const b: number[] = [];
      uleb(b, this.funcs.length);
      for (const f of this.funcs) uleb(b, f.type);
      section(3, b);
    }
    {
      const b: number[] = [];
      const exported = this.funcs.filter((f) => f.exported);
      uleb(b, exported.length);
      this.funcs.forEach((f, i) => {
        if (!f.exported) return;
        name(b, f.name);
        b.push(0x00);
        uleb(b, i);
      });
      section(7, b);
    }
    {
      const b: number[] = [];
      uleb(b, this.funcs.length);
      for (const f of this.funcs) {
        const body: number[] = [];
        // Run-length encode the local declarations.
        const groups: [number, ValType][] = [];
        for (const t of f.code.localTypes) {
          const last = groups[groups.length - 1];
          if (last !== undefined && last[1] === t) last[0]++;
          else groups.push([1, t]);
        }
        uleb(body, groups.length);
        for (const [n, t] of groups) {
          uleb(body, n);
          body.push(VALTYPE[t]);
        }
        for (const x of f.code.bytes) body.push(x);
        body.push(0x0b);
        uleb(b, body.length);
        for (const x of body) b.push(x);
      }
      section(10, b);
    }
    return Uint8Array.from(out);
  }
}
