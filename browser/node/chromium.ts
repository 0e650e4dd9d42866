/**
 * @file Starting headless Chromium for the browser tests: Debian's `/usr/bin/chromium` driven by
 * playwright-core, with the flags a sandboxed, offline root user needs and a fresh profile in a
 * temporary folder (removed on close), so no state leaks between runs.
 */

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

/** Where the browser tests look for Chromium (Debian's package; `.ci/run` installs it). */
export const CHROMIUM = process.env.ADJOINT_CHROMIUM ?? "/usr/bin/chromium";

/**
 * Why the browser tests cannot run here (printed when they are skipped), or null.
 * @example
 * describe("in Chromium", { skip: chromiumMissing() ?? false }, () => {});
 */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM)
    ? null
    : `${CHROMIUM} not found: the browser tests are skipped (install it with \`apt-get install -y chromium\`)`;
}

/** The flags for a headless, sandbox-less, offline run. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
] as const;

/** A browser context with its profile folder; `close` removes both. */
export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Launch Chromium with a fresh profile.
 * @example
 * const b = await launchChromium();
 * const page = await b.context.newPage();
 * await b.close();
 */
export async function launchChromium(
  options: { viewport?: { width: number; height: number } } = {},
): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "adjoint-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS],
      viewport: options.viewport ?? { width: 1280, height: 800 },
      // The driver waits on explicit ready markers; this only bounds a broken page.
      timeout: 60_000,
    });
    return {
      context,
      close: async () => {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
}
