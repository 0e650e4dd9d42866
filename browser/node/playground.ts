/**
 * @file Builds the playground (playground/) with its Vite config into a temporary folder, for
 * the end-to-end test and the screenshot: the production bundle an app would ship.
 */

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "vite";
import { ROOT } from "./root.js";

/**
 * Build the playground's static site; returns its folder (serve it, open index.html).
 * @example
 * const dir = await buildPlayground();
 */
export async function buildPlayground(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), "adjoint-playground-"));
  await build({
    configFile: join(ROOT, "playground/vite.config.ts"),
    logLevel: "warn",
    build: { outDir, emptyOutDir: true },
  });
  return outDir;
}
