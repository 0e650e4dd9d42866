/**
 * @file `TrainIO` on Node: the process's stdout (and whether it is a terminal), `node:fs` for the
 * output files, `performance.now()` for timing. The library builds without Node's type
 * declarations, so the few functions used are declared here and the built-in modules are loaded
 * with a dynamic `import` of a computed name.
 */

import type { TrainIO } from "./train.js";

interface NodeStdout {
  write(s: string): boolean;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

interface NodeFs {
  mkdirSync(path: string, opts: { recursive: boolean }): unknown;
  writeFileSync(path: string, data: Uint8Array | string): void;
}

interface NodePath {
  join(...parts: string[]): string;
}

interface NodeGlobals {
  readonly process: { readonly stdout: NodeStdout };
  setImmediate(fn: () => void): unknown;
  readonly performance: { now(): number };
}

/** Load a Node built-in by name (kept out of the type checker's module resolution). */
async function builtin<T>(name: string): Promise<T> {
  return (await import(`node:${name}`)) as T;
}

/**
 * The `TrainIO` of the running Node process.
 * @example
 * const io = await nodeIO();
 * io.write("hello\n");
 */
export async function nodeIO(): Promise<TrainIO> {
  const g = globalThis as unknown as NodeGlobals;
  const fs = await builtin<NodeFs>("fs");
  const path = await builtin<NodePath>("path");
  const stdout = g.process.stdout;
  return {
    write: (text) => {
      stdout.write(text);
    },
    isTTY: stdout.isTTY === true,
    columns: stdout.columns !== undefined && stdout.columns > 0 ? stdout.columns : 80,
    now: () => g.performance.now(),
    mkdirp: (dir) => {
      fs.mkdirSync(dir, { recursive: true });
    },
    writeFile: (file, data) => fs.writeFileSync(file, data),
    join: (dir, name) => path.join(dir, name),
    tick: () =>
      new Promise<void>((resolve) => {
        g.setImmediate(resolve);
      }),
  };
}
