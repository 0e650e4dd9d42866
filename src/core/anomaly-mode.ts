/**
 * @file Anomaly detection state (PyTorch's `detect_anomaly`, JAX's `debug_nans`). When on, every
 * kernel result is checked for a NaN/Inf that its inputs did not have; the first one throws an
 * `AnomalyError` naming the primitive, the pass and the user's source line. Recorded nodes keep
 * the call site of their forward operation so a NaN in the backward pass points there. Off by
 * default; when off the only cost is one boolean test per operation.
 */

import { isFloat } from "../dtype.js";
import { AnomalyError } from "../errors.js";
import type { Tensor } from "./tensor.js";

let enabled = false;
/**
 * The primitive whose VJP (backward pass) or JVP rule (forward-mode tangent) is running, for
 * attribution (`site` undefined: read the stack when an anomaly is found).
 */
let ruleOf: { name: string; site: string | null | undefined; pass: string; what: string } | null = null;

export function isAnomalyEnabled(): boolean {
  return enabled;
}

export function setAnomalyEnabled(on: boolean): void {
  enabled = on;
}

// Frames from inside this package are skipped when naming a source line: its dist/ and src/
// folders (source maps report built frames under src/). The package root is read off this
// module's own stack frame, which works in Node and in browsers without platform types.
const libPrefixes = ((): string[] => {
  const here = (new Error().stack ?? "").split("\n").find((l) => l.includes("anomaly-mode")) ?? "";
  const m = /((?:[a-z]+:\/\/)?[^\s()]*?)\/(?:dist|src)\/core\/anomaly-mode/.exec(here);
  if (m === null) return [];
  const root = m[1]!;
  const roots = [root];
  if (root.startsWith("file://")) roots.push(decodeURIComponent(root.slice("file://".length)));
  return roots.flatMap((r) => [`${r}/dist/`, `${r}/src/`]);
})();

/** The first stack frame outside adjoint: "at f (file.ts:12:5)" → "file.ts:12:5". */
export function userSite(): string | null {
  // A user's frame can sit deep below transforms (V8 keeps 10 frames by default): look further.
  const E = Error as { stackTraceLimit?: number };
  const limit = E.stackTraceLimit;
  if (typeof limit === "number") E.stackTraceLimit = Math.max(limit, 200);
  const stack = new Error().stack ?? "";
  if (typeof limit === "number") E.stackTraceLimit = limit;
  for (const line of stack.split("\n").slice(1)) {
    const l = line.trim();
    if (libPrefixes.some((p) => l.includes(p)) || l.includes("node:internal") || !/\d+:\d+/.test(l)) continue;
    const m =
      /\(([^()]*:\d+:\d+)\)\s*$/.exec(l) ?? /at (\S*:\d+:\d+)\s*$/.exec(l) ?? /@(.*:\d+:\d+)$/.exec(l);
    return m ? m[1]! : l.replace(/^at /, "");
  }
  return null;
}

function inRule<T>(
  name: string,
  site: string | null | undefined,
  pass: string,
  what: string,
  fn: () => T,
): T {
  const prev = ruleOf;
  ruleOf = { name, site, pass, what };
  try {
    return fn();
  } finally {
    ruleOf = prev;
  }
}

/** Run a VJP with its node named, so anomalies in it are attributed to the backward pass. */
export function inBackward<T>(name: string, site: string | null, fn: () => T): T {
  return inRule(name, site, "backward pass", "gradient", fn);
}

/**
 * Run a JVP rule with its primitive named, so anomalies in it are attributed to forward mode. The
 * rule runs inside the user's call of the primitive, so the site is read only if one is found.
 */
export function inTangent<T>(name: string, fn: () => T): T {
  return inRule(name, undefined, "forward-mode tangent", "tangent", fn);
}

function badness(t: Tensor): { nan: boolean; inf: boolean } {
  let nan = false;
  let inf = false;
  if (!isFloat(t.dtype)) return { nan, inf };
  const d = t._hostData();
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (Number.isNaN(v)) nan = true;
    else if (v === Infinity || v === -Infinity) inf = true;
  }
  return { nan, inf };
}

/** Throw if a kernel created a NaN (or an Inf) that none of its inputs had. */
export function checkResult(prim: string, outs: readonly Tensor[], args: readonly Tensor[]): void {
  let outNan = false;
  let outInf = false;
  for (const o of outs) {
    const b = badness(o);
    outNan ||= b.nan;
    outInf ||= b.inf;
  }
  if (!outNan && !outInf) return;
  let inNan = false;
  let inInf = false;
  for (const a of args) {
    const b = badness(a);
    inNan ||= b.nan;
    inInf ||= b.inf;
  }
  const created = (outNan && !inNan) || (outInf && !inNan && !inInf);
  if (!created) return;
  const what = outNan && !inNan ? "NaN" : "Inf";
  if (ruleOf !== null) {
    const site = ruleOf.site === undefined ? userSite() : ruleOf.site;
    const where = site ? ` (forward operation at ${site})` : "";
    throw new AnomalyError(
      `${ruleOf.name}: the ${ruleOf.pass} produced ${what} (in ${prim} while computing the ${ruleOf.what} of ${ruleOf.name})${where}`,
    );
  }
  const site = userSite();
  throw new AnomalyError(`${prim}: the forward pass produced ${what}${site ? ` at ${site}` : ""}`);
}
