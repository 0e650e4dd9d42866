/**
 * @file The slice of the WebAssembly JS API the wasm backend uses, typed locally: the package is
 * compiled without the DOM library (where TypeScript declares WebAssembly), so the global is
 * reached through `globalThis` with these types.
 */

/** A linear memory (shared when created with `shared: true`). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

/** A compiled module (structured-cloneable to workers). */
export interface WasmModule {
  readonly __wasmModule?: never;
}

/** An instantiated module (only its exports are used). */
export interface WasmInstance {
  readonly exports: Record<string, unknown>;
}

interface WasmApi {
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (m: WasmModule, imports: Record<string, Record<string, unknown>>) => WasmInstance;
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<WasmModule>;
}

/**
 * The runtime's WebAssembly object, or null where there is none.
 * @example
 * wasmApi()?.validate(bytes); // true for a valid module
 */
export function wasmApi(): WasmApi | null {
  const w = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  return typeof w === "object" && w !== null ? w : null;
}
