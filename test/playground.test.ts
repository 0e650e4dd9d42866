/**
 * @file End-to-end test of the playground in headless Chromium: the production build (Vite)
 * is served and driven like a user would: type the textbook example, set the point, read the
 * value and gradient, count the graph's nodes against `ad.explain`, switch modes (the
 * animation runs in forward or reverse order), type bad input and see inline errors, recover.
 * Saves a screenshot (test/artifacts/playground.png when ADJOINT_SCREENSHOT=1 or the file is
 * missing, else a temporary file). Skipped, with a printed notice, without Chromium.
 */

import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as ad from "adjoint";
import type { Page } from "playwright-core";
import { type Browser, chromiumMissing, launchChromium } from "../browser/node/chromium.js";
import { buildPlayground } from "../browser/node/playground.js";
import { ROOT } from "../browser/node/root.js";
import { type StaticServer, serveStatic } from "../browser/node/serve.js";

const EXAMPLE = "(x1 + x2) * sin(x1)";
const SCREENSHOT = join(ROOT, "test/artifacts/playground.png");

const missing = chromiumMissing();
if (missing !== null) console.log(missing);

/** The few page globals the callbacks below read (this file compiles without DOM types). */
interface PageElement {
  dataset: Record<string, string | undefined>;
  querySelector(selector: string): {
    getAnimations(): { effect: { getTiming(): { delay?: number } } | null }[];
  } | null;
}
interface PageGlobals {
  document: { body: PageElement; querySelectorAll(selector: string): Iterable<PageElement> };
}

/** The number of completed updates of the page (body[data-renders]). */
const renders = (page: Page) => page.locator("body").getAttribute("data-renders").then(Number);

/** Do `action`, then wait until the page has finished the update it causes. */
async function settle(page: Page, action: () => Promise<void>): Promise<void> {
  const before = await renders(page);
  await action();
  await page.waitForFunction(
    (n) => Number((globalThis as unknown as PageGlobals).document.body.dataset.renders) > n,
    before,
    { timeout: 15_000 },
  );
}

/** The full-precision number shown in a results cell. */
const shown = (page: Page, selector: string) =>
  page.locator(selector).getAttribute("data-value").then(Number);

/** The animation start time (delay) of each node's highlight, by node id. */
function glowDelays(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => {
    const out: Record<string, number> = {};
    for (const node of (globalThis as unknown as PageGlobals).document.querySelectorAll("#graph .node")) {
      const a = node.querySelector(".node-glow")?.getAnimations()[0];
      out[node.dataset.id!] = Number(a?.effect?.getTiming().delay ?? Number.NaN);
    }
    return out;
  });
}

/** Node ids sorted by when they light up. */
const byDelay = (d: Record<string, number>) =>
  Object.entries(d)
    .sort((a, b) => a[1] - b[1])
    .map(([id]) => id);

describe("the playground in headless Chromium", { skip: missing ?? false }, () => {
  let dir: string;
  let server: StaticServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    dir = await buildPlayground();
    server = await serveStatic({ "/": dir });
    browser = await launchChromium({ viewport: { width: 1280, height: 860 } });
    page = await browser.context.newPage();
    page.on("pageerror", (e) => void problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    await page.goto(`${server.origin}/index.html`);
    await page.waitForSelector("body[data-state=ready]", { timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test("the textbook example at (1, 2): value and gradient", async () => {
    await settle(page, () => page.fill("#expr", EXAMPLE));
    await settle(page, () => page.fill('#vars input[data-var="x1"]', "1"));
    await settle(page, () => page.fill('#vars input[data-var="x2"]', "2"));
    assert.equal(await page.getAttribute("body", "data-state"), "ready");
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
    close(await shown(page, "#results dd.value"), 3 * Math.sin(1));
    close(await shown(page, '#results dd[data-var="x1"]'), Math.sin(1) + 3 * Math.cos(1)); // 2.4623779…
    close(await shown(page, '#results dd[data-var="x2"]'), Math.sin(1)); // 0.8414709…
    assert.match((await page.textContent('#results dd[data-var="x1"]'))!, /^2\.4623/);
    assert.match((await page.textContent('#results dd[data-var="x2"]'))!, /^0\.8414/);
  });

  test("the graph has one node per row of ad.explain: x1, x2, add, sin, mul", async () => {
    const e = ad.explain((x1: number, x2: number) => ad.mul(ad.add(x1, x2), ad.sin(x1)), [1, 2]);
    const ops = await page.$$eval("#graph .node", (ns) => ns.map((n) => n.getAttribute("data-op")!));
    assert.equal(ops.length, e.rows.length);
    assert.equal(ops.length, 5);
    assert.deepEqual([...ops].sort(), e.rows.map((r) => r.op).sort());
    assert.deepEqual([...ops].sort(), ["add", "input", "input", "mul", "sin"]);
    assert.equal(await page.locator("#graph .edge").count(), 5);
    // Each node shows its value, tangent and adjoint: the output's adjoint is the seed 1.
    const out = page.locator('#graph .node[data-id="v5"]');
    assert.equal(Number(await out.locator(".row-adjoint .row-num").getAttribute("data-value")), 1);
    // The trace tables are explain's own HTML.
    assert.equal(await page.locator("#tables table.adjoint-explain-forward tbody tr").count(), 5);
    assert.equal(await page.locator("#plot path.curve").count(), 3);
  });

  test("switching modes animates the flow: forward left to right, reverse from the output back", async () => {
    await page.click('button[data-mode="forward"]');
    assert.deepEqual(byDelay(await glowDelays(page)), ["v1", "v2", "v3", "v4", "v5"]);
    assert.equal(await page.getAttribute("#graph svg", "data-animation"), "running");
    // Switching mid-animation cuts it short and starts the other mode's.
    await page.click('button[data-mode="reverse"]');
    assert.equal(await page.getAttribute("body", "data-mode"), "reverse");
    assert.equal(await page.getAttribute('button[data-mode="reverse"]', "aria-pressed"), "true");
    assert.equal(await page.locator("#graph svg.mode-reverse").count(), 1);
    assert.deepEqual(byDelay(await glowDelays(page)), ["v5", "v4", "v3", "v2", "v1"]);
    assert.equal(await page.getAttribute('#graph .node[data-id="v5"]', "data-step"), "0");
    await page.waitForSelector('#graph svg[data-animation="done"]', { timeout: 20_000 });
  });

  test("bad input shows an inline error and the page recovers", async () => {
    // From here on animations end at once (the user's reduced-motion preference is honoured).
    await page.emulateMedia({ reducedMotion: "reduce" });
    await settle(page, () => page.fill("#expr", "(x1 + x2 * sin(x1)"));
    assert.equal(await page.getAttribute("body", "data-state"), "error");
    assert.ok(await page.isVisible("#expr-error"), "the error is shown");
    assert.match((await page.textContent("#expr-error"))!, /column/);
    assert.equal(await page.getAttribute("#expr", "aria-invalid"), "true");

    await settle(page, () => page.fill("#expr", "foo(x1) + x2"));
    assert.match((await page.textContent("#expr-error"))!, /unknown function 'foo'/);
    await settle(page, () => page.fill("#expr", "x1.constructor"));
    assert.ok(await page.isVisible("#expr-error"), "member access is a syntax error");

    await settle(page, () => page.fill("#expr", EXAMPLE));
    assert.equal(await page.getAttribute("body", "data-state"), "ready");
    assert.ok(!(await page.isVisible("#expr-error")), "the error is gone");
    await settle(page, () => page.fill('#vars input[data-var="x2"]', ""));
    assert.equal(await page.getAttribute("body", "data-state"), "error");
    assert.ok(
      await page.isVisible('#vars input[data-var="x2"] + .inline-error'),
      "the field says what is wrong",
    );
    await settle(page, () => page.fill('#vars input[data-var="x2"]', "2"));
    assert.equal(await page.getAttribute("body", "data-state"), "ready");
    assert.equal(await page.locator("#graph .node").count(), 5);
  });

  test("odd input never breaks the page", async () => {
    const cases: [string, "ready" | "error"][] = [
      ["log(x - 2)", "ready"], // NaN at x = 1: shown as NaN
      ["1 / (x - 1)", "ready"], // Infinity at x = 1
      ["2 + pi", "ready"], // a constant: no variables, no graph
      ["", "error"],
      ["x @ y", "error"],
      ["π * x", "error"],
      ["sin(x,)", "error"],
      ["constructor(x)", "error"],
      ["__proto__ + x", "ready"], // just a variable name
      [`${"(".repeat(300)}x${")".repeat(300)}`, "error"], // nested too deep
      [Array.from({ length: 40 }, (_, i) => `sin(x * ${i + 1})`).join(" + "), "ready"],
    ];
    for (const [expr, want] of cases) {
      await settle(page, () => page.fill("#expr", expr));
      assert.equal(await page.getAttribute("body", "data-state"), want, `state after ${expr.slice(0, 40)}`);
      if (want === "error") assert.ok(await page.isVisible("#expr-error"), `an error is shown for ${expr}`);
    }
    assert.match((await page.textContent("#graph"))!, /constant has no computational graph|v\d/);
    await settle(page, () => page.fill("#expr", EXAMPLE));
    assert.equal(await page.getAttribute("body", "data-state"), "ready");
  });

  test("nothing went wrong in the page; a screenshot", async (t) => {
    await page.click('button[data-mode="reverse"]');
    await page.waitForSelector('#graph svg[data-animation="done"]');
    const update = process.env.ADJOINT_SCREENSHOT === "1" || !existsSync(SCREENSHOT);
    const path = update ? SCREENSHOT : join(tmpdir(), `adjoint-playground-${process.pid}.png`);
    mkdirSync(join(path, ".."), { recursive: true });
    await page.screenshot({ path });
    const png = readFileSync(path);
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG file");
    assert.ok(statSync(path).size > 20_000, "the screenshot has content");
    t.diagnostic(`screenshot: ${path}`);
    if (!update) rmSync(path);
    assert.deepEqual(problems, []);
  });
});
