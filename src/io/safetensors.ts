/**
 * @file The safetensors format (https://github.com/huggingface/safetensors), byte for byte as
 * the reference implementation writes it:
 *
 * - 8 bytes: N, the header length, an unsigned 64-bit little-endian integer;
 * - N bytes: a UTF-8 JSON object `{"__metadata__": {str: str}?, name: {"dtype", "shape",
 *   "data_offsets": [begin, end]}, ...}`, padded with spaces to a multiple of 8 bytes;
 * - the data: every tensor's row-major little-endian bytes, back to back, offsets relative to
 *   the end of the header.
 *
 * Like the reference writer, tensors are laid out by descending dtype alignment, then by name
 * (byte order), and the header lists them in that order, compact, with `__metadata__` first. The
 * reader validates like the reference reader (header bounds, JSON, known dtypes, offsets that
 * tile the data exactly) and throws a `SafetensorsError` naming the problem.
 */

import { Tensor } from "../core/tensor.js";
import type { AnyTypedArray, DType } from "../dtype.js";
import { AdError } from "../errors.js";
import { tensor } from "../ops/index.js";
import { flattenWithPaths, isContainer, unflattenPaths } from "./paths.js";

// The WHATWG text codecs are globals in every runtime we target (Node >= 11, browsers, Deno);
// declared here because the build compiles without DOM or Node typings.
declare const TextEncoder: new () => { encode(text: string): Uint8Array };
declare const TextDecoder: new (
  label: string,
  options?: { fatal?: boolean },
) => { decode(bytes: Uint8Array): string };

/** What went wrong in a safetensors file (names follow the reference implementation's errors). */
export type SafetensorsErrorCode =
  | "HeaderTooSmall"
  | "HeaderTooLarge"
  | "InvalidHeaderLength"
  | "InvalidHeader"
  | "InvalidHeaderStart"
  | "InvalidHeaderDeserialization"
  | "InvalidDType"
  | "InvalidShape"
  | "InvalidOffset"
  | "TensorInvalidInfo"
  | "MetadataIncompleteBuffer"
  | "InvalidTensor"
  | "InvalidName";

/**
 * A safetensors file that cannot be read (or a tree that cannot be written); `code` says why.
 * @example
 * try { ad.io.loadSafetensors(new Uint8Array(3)); } catch (e) { e.code; } // "HeaderTooSmall"
 */
export class SafetensorsError extends AdError {
  constructor(
    readonly code: SafetensorsErrorCode,
    message: string,
  ) {
    super(`safetensors: ${message} (${code})`);
  }
}

/** The file dtypes this library reads, with their byte sizes and alignment rank (the reference enum order). */
const FILE_DTYPES: Record<string, { size: number; rank: number }> = {
  BOOL: { size: 1, rank: 0 },
  U8: { size: 1, rank: 4 },
  I8: { size: 1, rank: 5 },
  I16: { size: 2, rank: 9 },
  U16: { size: 2, rank: 10 },
  F16: { size: 2, rank: 11 },
  BF16: { size: 2, rank: 12 },
  I32: { size: 4, rank: 13 },
  U32: { size: 4, rank: 14 },
  F32: { size: 4, rank: 15 },
  F64: { size: 8, rank: 17 },
  I64: { size: 8, rank: 18 },
  U64: { size: 8, rank: 19 },
};

const TO_FILE: Record<DType, string> = {
  float32: "F32",
  float64: "F64",
  int32: "I32",
  bool: "BOOL",
  float16: "F16",
  bfloat16: "BF16",
};

const MAX_HEADER = 100_000_000;
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of a number (round to nearest even). */
function toF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

function fromF16Bits(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m !== 0 ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** bfloat16 bits of a number (round to nearest even). */
function toBF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

function fromBF16Bits(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

/** The little-endian bytes of a tensor's data. */
function tensorBytes(t: Tensor): Uint8Array {
  const d = t._hostData();
  const n = d.length;
  switch (t.dtype) {
    case "bool":
      return Uint8Array.from(d as Uint8Array, (x) => (x ? 1 : 0));
    case "float16":
    case "bfloat16": {
      const out = new Uint8Array(2 * n);
      const dv = new DataView(out.buffer);
      const conv = t.dtype === "float16" ? toF16Bits : toBF16Bits;
      for (let i = 0; i < n; i++) dv.setUint16(2 * i, conv(d[i]!), true);
      return out;
    }
    default: {
      if (LITTLE) {
        const copy = (
          t.dtype === "float64" ? Float64Array : t.dtype === "int32" ? Int32Array : Float32Array
        ).from(d as ArrayLike<number>);
        return new Uint8Array(copy.buffer);
      }
      const size = t.dtype === "float64" ? 8 : 4;
      const out = new Uint8Array(size * n);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++)
        if (t.dtype === "float64") dv.setFloat64(8 * i, d[i]!, true);
        else if (t.dtype === "int32") dv.setInt32(4 * i, d[i]!, true);
        else dv.setFloat32(4 * i, d[i]!, true);
      return out;
    }
  }
}

function compareBytes(a: string, b: string): number {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/** Options of `saveSafetensors`. */
export interface SaveSafetensorsOptions {
  /** Free-form string metadata, stored under `"__metadata__"`. */
  metadata?: Record<string, string>;
}

/**
 * Serialise a pytree of tensors to safetensors bytes. Each tensor is named by its dotted path in
 * the tree (`{layers: [{weight}]}` → `"layers.0.weight"`; a flat state dict keeps its names); JS
 * numbers are stored as float64 scalars. The bytes are exactly what the reference implementation
 * writes for the same tensors, so other safetensors readers load them.
 * @example
 * const bytes = ad.io.saveSafetensors(model.stateDict(), { metadata: { format: "pt" } });
 * // fs.writeFileSync("model.safetensors", bytes);
 */
export function saveSafetensors(tree: unknown, opts: SaveSafetensorsOptions = {}): Uint8Array {
  if (!isContainer(tree))
    throw new SafetensorsError(
      "InvalidTensor",
      "saveSafetensors takes a tree of tensors (an object or an array)",
    );
  const entries = flattenWithPaths(tree).map(([name, v]): [string, Tensor] => {
    if (name === "__metadata__")
      throw new SafetensorsError("InvalidName", `"__metadata__" is reserved and cannot name a tensor`);
    if (v instanceof Tensor) return [name, v];
    if (typeof v === "number") return [name, tensor(v, { dtype: "float64" })];
    throw new SafetensorsError(
      "InvalidTensor",
      `"${name}" is not a tensor (got ${v === null ? "null" : typeof v})`,
    );
  });
  const names = new Set<string>();
  for (const [n] of entries) {
    if (names.has(n)) throw new SafetensorsError("InvalidName", `two tensors are named "${n}"`);
    names.add(n);
  }
  const meta = opts.metadata;
  if (meta !== undefined) {
    if (meta === null || typeof meta !== "object" || Array.isArray(meta))
      throw new SafetensorsError("InvalidHeader", "metadata must be an object of strings");
    for (const [k, v] of Object.entries(meta))
      if (typeof v !== "string")
        throw new SafetensorsError("InvalidHeader", `metadata "${k}" must be a string`);
  }
  const rank = (t: Tensor) => FILE_DTYPES[TO_FILE[t.dtype]]!.rank;
  entries.sort(([an, a], [bn, b]) => rank(b) - rank(a) || compareBytes(an, bn));
  const datas = entries.map(([, t]) => tensorBytes(t._concrete()));
  let offset = 0;
  const parts: string[] = [];
  if (meta !== undefined)
    parts.push(
      `"__metadata__":{${Object.entries(meta)
        .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
        .join(",")}}`,
    );
  entries.forEach(([name, t], i) => {
    const n = datas[i]!.length;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${TO_FILE[t.dtype]}","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${offset + n}]}`,
    );
    offset += n;
  });
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const pad = (8 - (json.length % 8)) % 8;
  const headerLen = json.length + pad;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const d of datas) {
    out.set(d, pos);
    pos += d.length;
  }
  return out;
}

/** A parsed safetensors file: its tensors by name (in file order) and its metadata. */
export interface SafetensorsContents {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string> | null;
}

function isIntArray(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0);
}

function decode(dtype: string, bytes: Uint8Array, shape: number[], name: string): Tensor {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = FILE_DTYPES[dtype]!.size;
  const n = bytes.byteLength / size;
  const toInt32 = (read: (i: number) => number | bigint): Int32Array => {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = read(i);
      const num = typeof v === "bigint" ? Number(v) : v;
      if (num < -2147483648 || num > 2147483647 || (typeof v === "bigint" && BigInt(num) !== v))
        throw new SafetensorsError(
          "InvalidDType",
          `"${name}" (${dtype}) holds ${String(v)}, which does not fit the int32 tensors this library loads it into`,
        );
      out[i] = num;
    }
    return out;
  };
  let data: AnyTypedArray;
  let dt: DType;
  switch (dtype) {
    case "F32":
      dt = "float32";
      data = LITTLE
        ? new Float32Array(bytes.slice().buffer)
        : Float32Array.from({ length: n }, (_, i) => dv.getFloat32(4 * i, true));
      break;
    case "F64":
      dt = "float64";
      data = LITTLE
        ? new Float64Array(bytes.slice().buffer)
        : Float64Array.from({ length: n }, (_, i) => dv.getFloat64(8 * i, true));
      break;
    case "I32":
      dt = "int32";
      data = LITTLE
        ? new Int32Array(bytes.slice().buffer)
        : Int32Array.from({ length: n }, (_, i) => dv.getInt32(4 * i, true));
      break;
    case "BOOL":
      dt = "bool";
      data = Uint8Array.from(bytes, (b) => (b !== 0 ? 1 : 0));
      break;
    case "F16":
    case "BF16": {
      dt = dtype === "F16" ? "float16" : "bfloat16";
      const conv = dtype === "F16" ? fromF16Bits : fromBF16Bits;
      data = Float32Array.from({ length: n }, (_, i) => conv(dv.getUint16(2 * i, true)));
      break;
    }
    case "U8":
      dt = "int32";
      data = Int32Array.from(bytes);
      break;
    case "I8":
      dt = "int32";
      data = Int32Array.from({ length: n }, (_, i) => dv.getInt8(i));
      break;
    case "I16":
      dt = "int32";
      data = Int32Array.from({ length: n }, (_, i) => dv.getInt16(2 * i, true));
      break;
    case "U16":
      dt = "int32";
      data = Int32Array.from({ length: n }, (_, i) => dv.getUint16(2 * i, true));
      break;
    case "U32":
      dt = "int32";
      data = toInt32((i) => dv.getUint32(4 * i, true));
      break;
    case "I64":
      dt = "int32";
      data = toInt32((i) => dv.getBigInt64(8 * i, true));
      break;
    case "U64":
      dt = "int32";
      data = toInt32((i) => dv.getBigUint64(8 * i, true));
      break;
    default:
      throw new SafetensorsError("InvalidDType", `"${name}" has the unsupported dtype ${dtype}`);
  }
  if (dt === "float16" || dt === "bfloat16") return tensor(data, { dtype: dt, shape });
  return Tensor._fromHost(data, shape, dt);
}

/**
 * Parse safetensors bytes into tensors by name plus the metadata (no nesting). Integer file
 * dtypes other than I32 (U8, I8, I16, U16, U32, I64, U64) load as int32 (values outside the int32
 * range are an error); F16/BF16 load as float16/bfloat16. Invalid files throw `SafetensorsError`.
 * @example
 * const { tensors, metadata } = ad.io.parseSafetensors(bytes);
 */
export function parseSafetensors(bytes: Uint8Array): SafetensorsContents {
  if (!(bytes instanceof Uint8Array))
    throw new SafetensorsError("InvalidHeader", "expected the file's bytes as a Uint8Array");
  if (bytes.length < 8)
    throw new SafetensorsError("HeaderTooSmall", `the file has ${bytes.length} bytes, fewer than 8`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER))
    throw new SafetensorsError("HeaderTooLarge", `the header length ${n64} exceeds 100 MB`);
  const n = Number(n64);
  if (8 + n > bytes.length)
    throw new SafetensorsError(
      "InvalidHeaderLength",
      `the header claims ${n} bytes but only ${bytes.length - 8} follow the length field`,
    );
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError("InvalidHeader", "the header is not valid UTF-8");
  }
  if (!text.startsWith("{"))
    throw new SafetensorsError("InvalidHeaderStart", "the header does not start with '{'");
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(
      "InvalidHeaderDeserialization",
      `the header is not valid JSON (${(e as Error).message})`,
    );
  }
  if (header === null || typeof header !== "object" || Array.isArray(header))
    throw new SafetensorsError("InvalidHeaderDeserialization", "the header is not a JSON object");
  let metadata: Record<string, string> | null = null;
  const infos: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (info === null || typeof info !== "object" || Array.isArray(info))
        throw new SafetensorsError(
          "InvalidHeaderDeserialization",
          `"__metadata__" must be an object of strings`,
        );
      metadata = {};
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== "string")
          throw new SafetensorsError("InvalidHeaderDeserialization", `metadata "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (info === null || typeof info !== "object")
      throw new SafetensorsError("InvalidHeaderDeserialization", `the entry of "${name}" is not an object`);
    const { dtype, shape, data_offsets: offs } = info as Record<string, unknown>;
    if (typeof dtype !== "string" || !(dtype in FILE_DTYPES))
      throw new SafetensorsError(
        "InvalidDType",
        `"${name}" has the unknown or unsupported dtype ${JSON.stringify(dtype)}`,
      );
    if (!isIntArray(shape))
      throw new SafetensorsError("InvalidShape", `"${name}" has an invalid shape ${JSON.stringify(shape)}`);
    if (!isIntArray(offs) || offs.length !== 2)
      throw new SafetensorsError(
        "InvalidOffset",
        `"${name}" has invalid data_offsets ${JSON.stringify(offs)}`,
      );
    infos.push({ name, dtype, shape, begin: offs[0]!, end: offs[1]! });
  }
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const t of sorted) {
    if (t.begin !== pos || t.end < t.begin)
      throw new SafetensorsError(
        "InvalidOffset",
        `the data of "${t.name}" is at [${t.begin}, ${t.end}] but the previous tensor ends at ${pos} (tensors must tile the data)`,
      );
    const count = t.shape.reduce((a, b) => a * b, 1);
    const want = count * FILE_DTYPES[t.dtype]!.size;
    if (!Number.isSafeInteger(want) || t.end - t.begin !== want)
      throw new SafetensorsError(
        "TensorInvalidInfo",
        `"${t.name}" (${t.dtype} [${t.shape.join(", ")}]) needs ${want} bytes but has ${t.end - t.begin}`,
      );
    pos = t.end;
  }
  if (8 + n + pos !== bytes.length)
    throw new SafetensorsError(
      "MetadataIncompleteBuffer",
      `the header describes ${pos} data bytes but the file has ${bytes.length - 8 - n}`,
    );
  const tensors: Record<string, Tensor> = {};
  const base = 8 + n;
  for (const t of infos) {
    const data = decode(t.dtype, bytes.subarray(base + t.begin, base + t.end), t.shape, t.name);
    Object.defineProperty(tensors, t.name, {
      value: data,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { tensors, metadata };
}

/** The nesting `loadSafetensors` returns by default: groups of tensors, arrays where keyed 0 … n−1. */
export type SafetensorsTree = { [name: string]: Tensor | SafetensorsTree } | (Tensor | SafetensorsTree)[];

/**
 * Load safetensors bytes as a pytree: dotted names become nesting again (`"layers.0.weight"` →
 * `{layers: [{weight}]}`; groups keyed 0 … n−1 become arrays). Pass the expected type as `T`
 * (it is not checked). Use `parseSafetensors` for the flat names and the metadata. The result
 * can go straight to `module.loadStateDict`.
 * @example
 * const tree = ad.io.loadSafetensors<{ layers: { w: ad.Tensor }[] }>(
 *   ad.io.saveSafetensors({ layers: [{ w: ad.ones([2]) }] }),
 * );
 * tree.layers[0].w.toArray(); // [1, 1]
 */
export function loadSafetensors<T = SafetensorsTree>(bytes: Uint8Array): T {
  const { tensors } = parseSafetensors(bytes);
  return unflattenPaths(Object.entries(tensors), (m) => new SafetensorsError("InvalidName", m)) as T;
}
