#!/usr/bin/env node
/**
 * @file The `adjoint` executable (package.json `bin`): runs the command line on the process's
 * arguments and writes the result. All the work is in `run.ts`.
 *
 * @example
 * // npx adjoint grad "(x1 + x2) * sin(x1)" --at x1=1,x2=2
 */

import { runCli } from "./run.js";

/** The part of Node's `process` used here (the library itself builds without Node's types). */
interface NodeProcess {
  readonly argv: readonly string[];
  readonly stdout: { write(s: string): boolean };
  readonly stderr: { write(s: string): boolean };
  exitCode?: number | string | null | undefined;
}

const proc = (globalThis as unknown as { process: NodeProcess }).process;
const result = await runCli(proc.argv.slice(2));
if (result.stdout !== "") proc.stdout.write(result.stdout);
if (result.stderr !== "") proc.stderr.write(result.stderr);
// Set the status rather than calling process.exit, so piped output is flushed first.
proc.exitCode = result.code;
