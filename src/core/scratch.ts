/**
 * @file Scratch scopes. A library routine whose intermediate tensors never reach the user (an
 * eager backward pass, an optimizer step) tells the backend which buffers it made are results;
 * the others are released at once instead of waiting for the garbage collector. For wasm memory
 * that matters: its blocks come back only through finalizers, which run when the event loop
 * turns, so a synchronous training loop would otherwise fill the memory budget with dead
 * temporaries and fall back to slower host arrays.
 */

import type { Backend, DeviceBuffer } from "../backend/backend.js";
import { Tensor } from "./tensor.js";

/** An open scope: close it once, with the routine's results (null after an error: keep all). */
export interface ScratchScope {
  close(keep: readonly unknown[] | null): void;
}

const NONE: ScratchScope = { close() {} };

/**
 * @internal Open a scratch scope on `backend` (a no-op where the backend has none).
 * @example
 * const scope = openScratch(x._backend);
 * const g = ...; // work whose intermediates are private
 * scope.close([g]);
 */
export function openScratch(backend: Backend | null): ScratchScope {
  if (backend === null || backend.openScope === undefined || backend.closeScope === undefined) return NONE;
  backend.openScope();
  let open = true;
  return {
    close(keep) {
      if (!open) return;
      open = false;
      backend.closeScope!(keep === null ? null : buffersOf(keep));
    },
  };
}

/**
 * @internal Run `fn` with nothing recorded by the open scratch scopes: for work whose results
 * outlive the routine that happens to run it (a jitted function compiled during a backward pass
 * keeps its folded constants in its cache; a sparse tensor caches its dense value).
 * @example
 * withoutScratch(backend, () => compileAndCache());
 */
export function withoutScratch<T>(backend: Backend | null, fn: () => T): T {
  if (backend === null || backend.openScope === undefined || backend.closeScope === undefined) return fn();
  backend.openScope(false);
  try {
    return fn();
  } finally {
    backend.closeScope(null);
  }
}

/** The storage of tensors (and of a sparse tensor's parts and dense cache) among `xs`. */
function buffersOf(xs: readonly unknown[]): DeviceBuffer[] {
  const out: DeviceBuffer[] = [];
  const visit = (x: unknown): void => {
    if (!(x instanceof Tensor)) return;
    if (x._buf !== null) out.push(x._buf);
    const parts = x as unknown as { indices?: unknown; values?: unknown; _dense?: unknown };
    if (parts.indices instanceof Tensor) visit(parts.indices);
    if (parts.values instanceof Tensor) visit(parts.values);
    if (parts._dense instanceof Tensor) visit(parts._dense);
  };
  for (const x of xs) visit(x);
  return out;
}
