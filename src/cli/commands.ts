/**
 * @file The work of the `adjoint` commands, once `run.ts` has checked the input: evaluate the
 * point, then `grad` (value and gradient), `hessian` (value and Hessian matrix) or `explain`
 * (the trace tables), and render the result as text, JSON or one of explain's formats. This is
 * the only CLI module that loads the differentiation library.
 */

import type { TensorLike } from "../core/tensor.js";
import * as ad from "../index.js";
import { compile } from "./interpret.js";
import { CliError, type Expr } from "./parse.js";

/** The commands that compute something. */
export type CommandName = "explain" | "grad" | "hessian";

/** A value given on the command line, parsed and checked but not evaluated yet. */
export interface ValueSpec {
  /** The text as given. */
  readonly raw: string;
  /** Its parse: a constant expression (no variables, whitelisted functions only). */
  readonly expr: Expr;
  /** Where it came from, for messages: `--at x1`. */
  readonly what: string;
}

/** A checked command line: what `run.ts` hands over. */
export interface Request {
  readonly command: CommandName;
  /** The expression as typed. */
  readonly source: string;
  readonly expr: Expr;
  /** The variables, in the order of `--at`. */
  readonly names: readonly string[];
  readonly values: readonly ValueSpec[];
  /** explain only: the tangent of each variable. */
  readonly seed: readonly (ValueSpec | number)[];
  readonly format: string;
  /** Decimals in text output (grad, hessian). */
  readonly digits: number;
}

/** A JS number from a scalar tensor or a number. */
function toNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (v instanceof ad.Tensor) return v.item();
  throw new Error(`expected a scalar, got ${String(v)}`);
}

/** Evaluate a checked constant; it must be finite. */
function evaluate(v: ValueSpec | number): number {
  if (typeof v === "number") return v;
  const x = toNumber(compile(v.expr, [])());
  if (!Number.isFinite(x)) throw new CliError(`${v.what}: '${v.raw}' is not a finite number`);
  return x;
}

/**
 * A number for people: `digits` decimals with trailing zeros dropped (2.4624, 802, -0.5), and
 * scientific notation for very large or very small magnitudes (1.5e-7).
 * @example
 * formatNumber(2.4623779024123156, 4); // "2.4624"
 */
export function formatNumber(v: number, digits: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v === 0) return "0";
  const a = Math.abs(v);
  const trim = (s: string) => s.replace(/\.?0+$/, "");
  if (a >= 1e15 || a < 10 ** -Math.max(digits - 2, 1)) {
    const [m, x] = v.toExponential(Math.max(digits, 1)).split("e");
    return `${m!.includes(".") ? trim(m!) : m}e${x!.replace("+", "")}`;
  }
  const s = v.toFixed(digits);
  return s.includes(".") ? trim(s) : s;
}

/** JSON for a float64, with NaN and infinities as strings (JSON has no literal for them). */
function jsonNumber(v: number): number | string {
  return Number.isFinite(v) ? v : formatNumber(v, 0);
}

interface Problem {
  readonly req: Request;
  readonly fn: (...values: TensorLike[]) => TensorLike;
  readonly values: number[];
}

function header(p: Problem): string[] {
  const { names, source, digits } = p.req;
  return [
    `f(${names.join(", ")}) = ${source.trim()}`,
    `at ${names.map((n, i) => `${n} = ${formatNumber(p.values[i]!, digits)}`).join(", ")}`,
    "",
  ];
}

function jsonHead(p: Problem): Record<string, unknown> {
  return {
    expression: p.req.source,
    at: Object.fromEntries(p.req.names.map((n, i) => [n, p.values[i]])),
  };
}

function grad(p: Problem): string {
  const { names, format, digits } = p.req;
  const argnums = names.map((_, i) => i);
  const [value, grads] = ad.valueAndGrad(p.fn, { argnums })(...p.values) as [unknown, unknown[]];
  const f = toNumber(value);
  const g = grads.map(toNumber);
  if (format === "json") {
    const gradient = Object.fromEntries(names.map((n, i) => [n, jsonNumber(g[i]!)]));
    return `${JSON.stringify({ ...jsonHead(p), value: jsonNumber(f), gradient })}\n`;
  }
  const labels = ["f", ...names.map((n) => `df/d${n}`)];
  const width = Math.max(...labels.map((l) => l.length));
  const nums = [f, ...g];
  const lines = labels.map((l, i) => `${l.padEnd(width)} = ${formatNumber(nums[i]!, digits)}`);
  return [...header(p), ...lines, ""].join("\n");
}

function hessian(p: Problem): string {
  const { names, format, digits } = p.req;
  const argnums = names.map((_, i) => i);
  const value = toNumber(p.fn(...p.values));
  const rows = ad.hessian(p.fn, { argnums })(...p.values) as unknown as unknown[][];
  const h = rows.map((r) => r.map(toNumber));
  if (format === "json") {
    const out = {
      ...jsonHead(p),
      value: jsonNumber(value),
      variables: names,
      hessian: h.map((r) => r.map(jsonNumber)),
    };
    return `${JSON.stringify(out)}\n`;
  }
  const cells = h.map((r) => r.map((v) => formatNumber(v, digits)));
  const rowLabel = Math.max(...names.map((n) => n.length));
  const widths = names.map((n, j) => Math.max(n.length, ...cells.map((r) => r[j]!.length)));
  const line = (label: string, row: readonly string[]) =>
    `${label.padEnd(rowLabel)}  ${row.map((c, j) => c.padStart(widths[j]!)).join("  ")}`;
  const table = [line("", names), ...cells.map((r, i) => line(names[i]!, r))];
  return [
    ...header(p),
    `f = ${formatNumber(value, digits)}`,
    "",
    "Hessian (row u, column v: d2f/du dv):",
    ...table,
    "",
  ].join("\n");
}

function explain(p: Problem): string {
  const { names, source, format } = p.req;
  const tangents = p.req.seed.map(evaluate);
  const e = ad.explain(p.fn, p.values, { tangents, names });
  const formula = `f(${names.join(", ")}) = ${source.trim()}`;
  const render: Record<string, () => string> = {
    text: () => `${formula}\n\n${e.toString()}`,
    markdown: () => `\`${formula}\`\n\n${e.toMarkdown()}`,
    html: () => e.toHTML(),
    dot: () => e.toDot(),
    mermaid: () => e.toMermaid(),
  };
  const text = render[format]!();
  return text.endsWith("\n") ? text : `${text}\n`;
}

/**
 * Run a checked command and return its output. Throws `CliError` for a value that is not a
 * finite number.
 * @example
 * runCommand(request); // "f(x) = x * x\nat x = 3\n\nf     = 9\ndf/dx = 6\n"
 */
export function runCommand(req: Request): string {
  const values = req.values.map(evaluate);
  const p: Problem = { req, fn: compile(req.expr, req.names), values };
  switch (req.command) {
    case "grad":
      return grad(p);
    case "hessian":
      return hessian(p);
    case "explain":
      return explain(p);
  }
}
