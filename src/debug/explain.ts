/**
 * @file `explain`: the textbook trace tables of one evaluation. The function is recorded once
 * (the Wengert list of the reverse interpreter); every input leaf and every recorded primitive
 * output gets a name (v1, v2, …), its value, its tangent (forward mode, every intermediate kept)
 * and its adjoint (reverse mode, every intermediate and every `+=` contribution kept). The
 * result renders as plain-text, Markdown or HTML tables, and as a Graphviz or Mermaid graph.
 */

import type { Tangent } from "../core/primitive.js";
import type { Node, Ref } from "../core/tape.js";
import { Tensor } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { isFloat } from "../dtype.js";
import { TransformError } from "../errors.js";
import { add, astype, ones, zeros } from "../ops/index.js";
import { shapeEq } from "../shape.js";
import { checkFunction } from "../transforms/args.js";
import { matchLeaf, type Recording, record } from "../transforms/reverse.js";
import { flatten, showTreeDef, type TreeDef, treeDefEqual } from "../tree.js";

export interface ExplainOptions {
  /** One tangent per argument (like jvp's tangents); default: seed the first scalar input with 1, others 0. */
  tangents?: readonly unknown[];
  /** Names for the inputs (default: the parameter names parsed from f's source text, else x1, x2, ...). */
  names?: readonly string[];
}

/** One intermediate of the trace: an input leaf or one output of a recorded primitive. */
export interface ExplainRow {
  /** v1, v2, ... (inputs also carry the user's name, e.g. "v1 (x1)" is rendered from name + label). */
  name: string;
  /** The user's variable name for inputs, else null. */
  label: string | null;
  /** "input" for inputs, else the primitive's name (add, sin, mul, ...). */
  op: string;
  /** Operand names (or rendered literal constants such as "2"). */
  inputs: string[];
  /** A formula like "v1 + v2", "sin(v1)", "v3 × v4" for common primitives; else "op(v1, v2)". */
  expr: string;
  value: number | Tensor;
  tangent: number | Tensor;
  adjoint: number | Tensor;
  /** The tangent rule in words/symbols, e.g. "cos(v1)·v̇1", "v̇1 + v̇2", "v3·v̇4 + v4·v̇3". */
  tangentRule: string;
}

// ---------------------------------------------------------------------------------------------
// Rendering numbers and tensors
// ---------------------------------------------------------------------------------------------

/**
 * One number: integers below 10⁶ exactly, everything else with 4 significant digits and the
 * trailing zeros dropped (0.8415, 2.524), in exponent form below 10⁻⁴ or from 10⁶ (1.235e+6).
 */
function fmtNum(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x === 0) return "0";
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  const a = Math.abs(x);
  const s = a < 1e-4 || a >= 1e6 ? x.toExponential(3) : x.toPrecision(4);
  const [m, e] = s.split("e") as [string, string | undefined];
  const mant = m.includes(".") ? m.replace(/0+$/, "").replace(/\.$/, "") : m;
  return e === undefined ? mant : `${mant}e${e}`;
}

/** Tensors with at most this many elements are printed in full. */
const FULL_SIZE = 12;

/** A compact rendering of a value: `2.524`, `[1, 2]`, `[[1, 2], [3, 4]]`, `[1, 2, 3, …] (4×5)`. */
function fmtTensor(t: Tensor): string {
  const d = t._hostData();
  const el = (i: number): string => (t.dtype === "bool" ? String(d[i] !== 0) : fmtNum(d[i]!));
  if (t.shape.length === 0) return el(0);
  if (t.size > FULL_SIZE) {
    const head = Array.from({ length: 6 }, (_, i) => el(i)).join(", ");
    return `[${head}, …] (${t.shape.join("×")})`;
  }
  let off = 0;
  const build = (dim: number): string => {
    if (dim === t.shape.length) return el(off++);
    const parts: string[] = [];
    for (let i = 0; i < t.shape[dim]!; i++) parts.push(build(dim + 1));
    return `[${parts.join(", ")}]`;
  };
  return build(0);
}

/** A value substituted into a formula: negative numbers in parentheses. */
function operandText(t: Tensor): string {
  const s = fmtTensor(t);
  return s.startsWith("-") ? `(${s})` : s;
}

/** 0-d tensors as numbers, the rest as tensors (what `ExplainRow` holds). */
function publicValue(t: Tensor): number | Tensor {
  return t.shape.length === 0 ? t.item() : t;
}

const DOT = "\u0307"; // combining dot above: v̇
const BAR = "\u0304"; // combining macron: v̄
const dotOf = (name: string): string => `${name[0]}${DOT}${name.slice(1)}`;
const barOf = (name: string): string => `${name[0]}${BAR}${name.slice(1)}`;

// ---------------------------------------------------------------------------------------------
// Formula templates per primitive
// ---------------------------------------------------------------------------------------------

type Txt = (i: number) => string;
/** Tangent text of operand i, or null for a constant operand (zero tangent). */
type DTxt = (i: number) => string | null;

interface Rule {
  /** The operation as a formula of its operands (`a`) and rendered params (`p`, may be ""). */
  readonly expr?: (a: Txt, p: string) => string;
  /** The tangent rule; `y` is the output. Default: Σ ∂y/∂aⱼ·ȧⱼ from `partial`. */
  readonly jvp?: (a: Txt, d: DTxt, y: string) => string;
  /** Elementwise ops: ∂y/∂aⱼ (a cotangent contribution is then c·∂y/∂aⱼ). */
  readonly partial?: (j: number, a: Txt, y: string) => string;
  /** Other ops: the cotangent contribution to operand j given the output cotangent c. */
  readonly vjp?: (j: number, c: string, a: Txt, y: string) => string;
}

/** A signed sum: null terms are dropped, a leading "-" becomes a subtraction. */
function sum(...terms: (string | null | false)[]): string {
  const ts = terms.filter((t): t is string => typeof t === "string" && t !== "");
  if (ts.length === 0) return "0";
  return ts.reduce((acc, t) => (t.startsWith("-") ? `${acc} - ${t.slice(1)}` : `${acc} + ${t}`));
}

const unary = (name: string, partial: (a: Txt, y: string) => string): Rule => ({
  expr: (a) => `${name}(${a(0)})`,
  partial: (_j, a, y) => partial(a, y),
});
const zeroUnary = (name: string): Rule => ({
  expr: (a) => `${name}(${a(0)})`,
  jvp: () => "0",
  partial: () => "0",
});
const withParams = (s: string, p: string): string => (p === "" ? s : `${s}; ${p}`);
/** A linear structural op: the tangent is the op applied to the tangent. */
const linear = (vjp: (c: string) => string): Rule => ({
  vjp: (_j, c) => vjp(c),
});

const RULES: Readonly<Record<string, Rule>> = {
  add: {
    expr: (a) => `${a(0)} + ${a(1)}`,
    jvp: (_a, d) => sum(d(0), d(1)),
    partial: () => "1",
  },
  sub: {
    expr: (a) => `${a(0)} - ${a(1)}`,
    jvp: (_a, d) => sum(d(0), d(1) && `-${d(1)}`),
    partial: (j) => (j === 0 ? "1" : "(-1)"),
  },
  mul: {
    expr: (a) => `${a(0)} × ${a(1)}`,
    jvp: (a, d) => sum(d(1) && `${a(0)}·${d(1)}`, d(0) && `${a(1)}·${d(0)}`),
    partial: (j, a) => a(1 - j),
  },
  div: {
    expr: (a) => `${a(0)} / ${a(1)}`,
    jvp: (a, d) => sum(d(0) && `${d(0)}/${a(1)}`, d(1) && `-${a(0)}·${d(1)}/${a(1)}²`),
    partial: (j, a) => (j === 0 ? `(1/${a(1)})` : `(-${a(0)}/${a(1)}²)`),
  },
  pow: {
    expr: (a) => `${a(0)}^${a(1)}`,
    jvp: (a, d) =>
      sum(d(0) && `${a(1)}·${a(0)}^(${a(1)} - 1)·${d(0)}`, d(1) && `ln(${a(0)})·${a(0)}^${a(1)}·${d(1)}`),
    partial: (j, a) => (j === 0 ? `${a(1)}·${a(0)}^(${a(1)} - 1)` : `ln(${a(0)})·${a(0)}^${a(1)}`),
  },
  max: {
    expr: (a) => `max(${a(0)}, ${a(1)})`,
    jvp: (a, d) => `${d(0) ?? "0"} if ${a(0)} > ${a(1)}, else ${d(1) ?? "0"}`,
    partial: (j, a) => `[${a(j)} > ${a(1 - j)}]`,
  },
  min: {
    expr: (a) => `min(${a(0)}, ${a(1)})`,
    jvp: (a, d) => `${d(0) ?? "0"} if ${a(0)} < ${a(1)}, else ${d(1) ?? "0"}`,
    partial: (j, a) => `[${a(j)} < ${a(1 - j)}]`,
  },
  atan2: {
    expr: (a) => `atan2(${a(0)}, ${a(1)})`,
    jvp: (a, d) => `(${sum(d(0) && `${a(1)}·${d(0)}`, d(1) && `-${a(0)}·${d(1)}`)})/(${a(0)}² + ${a(1)}²)`,
    partial: (j, a) => (j === 0 ? `(${a(1)}/(${a(0)}² + ${a(1)}²))` : `(-${a(0)}/(${a(0)}² + ${a(1)}²))`),
  },
  neg: { expr: (a) => `-${a(0)}`, jvp: (_a, d) => `-${d(0) ?? "0"}`, partial: () => "(-1)" },
  exp: unary("exp", (a) => `exp(${a(0)})`),
  log: {
    expr: (a) => `log(${a(0)})`,
    jvp: (a, d) => `${d(0) ?? "0"}/${a(0)}`,
    partial: (_j, a) => `(1/${a(0)})`,
  },
  log1p: {
    expr: (a) => `log1p(${a(0)})`,
    jvp: (a, d) => `${d(0) ?? "0"}/(1 + ${a(0)})`,
    partial: (_j, a) => `(1/(1 + ${a(0)}))`,
  },
  expm1: unary("expm1", (a) => `exp(${a(0)})`),
  sqrt: {
    expr: (a) => `sqrt(${a(0)})`,
    jvp: (a, d) => `${d(0) ?? "0"}/(2·sqrt(${a(0)}))`,
    partial: (_j, a) => `(1/(2·sqrt(${a(0)})))`,
  },
  sin: unary("sin", (a) => `cos(${a(0)})`),
  cos: {
    expr: (a) => `cos(${a(0)})`,
    jvp: (a, d) => `-sin(${a(0)})·${d(0) ?? "0"}`,
    partial: (_j, a) => `(-sin(${a(0)}))`,
  },
  tan: unary("tan", (a) => `(1 + tan(${a(0)})²)`),
  asin: {
    expr: (a) => `asin(${a(0)})`,
    jvp: (a, d) => `${d(0) ?? "0"}/sqrt(1 - ${a(0)}²)`,
    partial: (_j, a) => `(1/sqrt(1 - ${a(0)}²))`,
  },
  acos: {
    expr: (a) => `acos(${a(0)})`,
    jvp: (a, d) => `-${d(0) ?? "0"}/sqrt(1 - ${a(0)}²)`,
    partial: (_j, a) => `(-1/sqrt(1 - ${a(0)}²))`,
  },
  atan: {
    expr: (a) => `atan(${a(0)})`,
    jvp: (a, d) => `${d(0) ?? "0"}/(1 + ${a(0)}²)`,
    partial: (_j, a) => `(1/(1 + ${a(0)}²))`,
  },
  sinh: unary("sinh", (a) => `cosh(${a(0)})`),
  cosh: unary("cosh", (a) => `sinh(${a(0)})`),
  tanh: unary("tanh", (_a, y) => `(1 - ${y}²)`),
  logistic: unary("σ", (_a, y) => `${y}·(1 - ${y})`),
  erf: unary("erf", (a) => `(2/√π)·exp(-${a(0)}²)`),
  abs: { expr: (a) => `|${a(0)}|`, partial: (_j, a) => `sign(${a(0)})` },
  sign: zeroUnary("sign"),
  floor: zeroUnary("floor"),
  ceil: zeroUnary("ceil"),
  round: zeroUnary("round"),
  stop_gradient: zeroUnary("stop_gradient"),
  select: {
    expr: (a) => `where(${a(0)}, ${a(1)}, ${a(2)})`,
    jvp: (a, d) => `where(${a(0)}, ${d(1) ?? "0"}, ${d(2) ?? "0"})`,
    vjp: (j, c, a) => (j === 1 ? `where(${a(0)}, ${c}, 0)` : `where(${a(0)}, 0, ${c})`),
  },
  matmul: {
    expr: (a) => `${a(0)} @ ${a(1)}`,
    jvp: (a, d) => sum(d(0) && `${d(0)} @ ${a(1)}`, d(1) && `${a(0)} @ ${d(1)}`),
    vjp: (j, c, a) => (j === 0 ? `${c} @ ${a(1)}ᵀ` : `${a(0)}ᵀ @ ${c}`),
  },
  reduce_sum: { expr: (a, p) => `sum(${withParams(a(0), p)})`, ...linear((c) => `broadcast(${c})`) },
  reduce_max: {
    expr: (a, p) => `max(${withParams(a(0), p)})`,
    jvp: (a, d) => `${d(0) ?? "0"} at the max of ${a(0)}`,
    vjp: (_j, c, a) => `${c} at the max of ${a(0)}`,
  },
  reduce_min: {
    expr: (a, p) => `min(${withParams(a(0), p)})`,
    jvp: (a, d) => `${d(0) ?? "0"} at the min of ${a(0)}`,
    vjp: (_j, c, a) => `${c} at the min of ${a(0)}`,
  },
  convert_element_type: {
    expr: (a, p) => `astype(${a(0)}, ${/new_dtype=(\w+)/.exec(p)?.[1] ?? "?"})`,
    ...linear((c) => `astype(${c})`),
  },
  reshape: linear((c) => `reshape(${c})`),
  transpose: linear((c) => `transpose(${c})`),
  broadcast_to: linear((c) => `sum(${c})`),
  slice: linear((c) => `pad(${c})`),
  pad: linear((c) => `slice(${c})`),
  concatenate: linear((c) => `slice(${c})`),
  rev: linear((c) => `rev(${c})`),
  gather: linear((c) => `scatter_add(${c})`),
};

/** Linear ops whose tangent rule is the op applied to the operand tangents. */
const LINEAR_OPS = new Set([
  "reduce_sum",
  "convert_element_type",
  "reshape",
  "transpose",
  "broadcast_to",
  "slice",
  "pad",
  "concatenate",
  "rev",
  "gather",
  "scatter_add",
]);

/** The formulas of one node output (symbolic names or substituted numbers). */
function exprOf(op: string, a: Txt, n: number, p: string): string {
  const rule = RULES[op];
  if (rule?.expr !== undefined) return rule.expr(a, p);
  return `${op}(${withParams(Array.from({ length: n }, (_, i) => a(i)).join(", "), p)})`;
}

function jvpOf(op: string, a: Txt, d: DTxt, n: number, y: string, p: string): string {
  const rule = RULES[op];
  if (rule?.jvp !== undefined) return rule.jvp(a, d, y);
  if (rule?.partial !== undefined) {
    const terms = Array.from({ length: n }, (_, j) => {
      const dj = d(j);
      if (dj === null) return null;
      const pj = rule.partial!(j, a, y);
      return pj === "1" ? dj : pj === "(-1)" ? `-${dj}` : `${pj}·${dj}`;
    });
    return sum(...terms);
  }
  if (LINEAR_OPS.has(op)) return exprOf(op, (i) => d(i) ?? a(i), n, p);
  return sum(...Array.from({ length: n }, (_, j) => d(j) && `∂${y}/∂${a(j)}·${d(j)}`));
}

function vjpOf(op: string, j: number, c: string, a: Txt, y: string, broadcast: boolean): string {
  const rule = RULES[op];
  if (rule?.partial !== undefined) {
    const s = `${c}·${rule.partial(j, a, y)}`;
    return broadcast ? `sum(${s})` : s;
  }
  if (rule?.vjp !== undefined) return rule.vjp(j, c, a, y);
  return `${c}·∂${y}/∂${a(j)}`;
}

// ---------------------------------------------------------------------------------------------
// Parameter names
// ---------------------------------------------------------------------------------------------

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** The parameter names of `f` parsed from its source text, or null (destructuring, rest, native …). */
function paramNames(f: (...args: never[]) => unknown): string[] | null {
  let src: string;
  try {
    src = Function.prototype.toString.call(f);
  } catch {
    return null;
  }
  src = src.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ");
  const single = /^\s*(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  if (single !== null) return [single[1]!];
  const open = src.indexOf("(");
  if (open < 0) return null;
  const head = src.slice(0, open);
  if (!/^\s*(?:async\b\s*)?(?:function\b\s*)?\*?\s*(?:[A-Za-z_$][\w$]*)?\s*$/.test(head)) return null;
  let depth = 0;
  let close = -1;
  for (let i = open; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if (ch === ")" || ch === "]" || ch === "}") {
      depth--;
      if (depth === 0) {
        close = i;
        break;
      }
    }
  }
  if (close < 0) return null;
  const parts: string[] = [];
  let cur = "";
  depth = 0;
  for (const ch of src.slice(open + 1, close)) {
    if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if (ch === ")" || ch === "]" || ch === "}") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  if (parts.length > 0 && parts[parts.length - 1]!.trim() === "") parts.pop();
  const names: string[] = [];
  for (const part of parts) {
    const name = part.split("=")[0]!.trim();
    if (!IDENT.test(name)) return null;
    names.push(name);
  }
  return names;
}

/** The label of each leaf of an argument named `name` (`p.w`, `xs[0]`, or just `name`). */
function leafLabels(def: TreeDef, name: string): string[] {
  const out: string[] = [];
  const walk = (d: TreeDef, path: string): void => {
    switch (d.kind) {
      case "leaf":
        out.push(path);
        return;
      case "none":
        return;
      case "array":
        d.children.forEach((c, i) => walk(c, `${path}[${i}]`));
        return;
      case "object":
        d.children.forEach((c, i) => {
          const k = d.keys[i]!;
          walk(c, IDENT.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`);
        });
    }
  };
  walk(def, name);
  return out;
}

/** Can argument `a` be differentiated (a non-empty pytree of numbers and float tensors)? */
function isDiffArg(a: unknown): boolean {
  const [ls] = flatten(a);
  return ls.length > 0 && ls.every((l) => typeof l === "number" || (l instanceof Tensor && isFloat(l.dtype)));
}

// ---------------------------------------------------------------------------------------------
// The document model shared by the text, Markdown and HTML renderers
// ---------------------------------------------------------------------------------------------

type Block =
  | { readonly kind: "heading"; readonly text: string }
  | { readonly kind: "para"; readonly text: string }
  | {
      readonly kind: "table";
      readonly cls: string;
      /** [css class, header] per column. */
      readonly columns: readonly (readonly [string, string])[];
      readonly rows: readonly (readonly string[])[];
    };

/** Display width: combining marks (v̇, v̄) take no column. */
const width = (s: string): number => [...s.replace(/[\u0300-\u036f]/g, "")].length;
const padTo = (s: string, w: number): string => s + " ".repeat(Math.max(0, w - width(s)));

function textTable(
  columns: readonly (readonly [string, string])[],
  rows: readonly (readonly string[])[],
): string {
  const all = [columns.map((c) => c[1]), ...rows];
  const ws = columns.map((_, i) => Math.max(...all.map((r) => width(r[i] ?? ""))));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => padTo(c, ws[i]!))
      .join("  ")
      .trimEnd();
  return [line(all[0]!), ws.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

const mdEscape = (s: string): string =>
  s
    .replace(/[\\`*_|]/g, (c) => `\\${c}`)
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;");

const htmlEscape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

// ---------------------------------------------------------------------------------------------
// The explanation
// ---------------------------------------------------------------------------------------------

/** One `+=` term of the reverse sweep. */
interface Contribution {
  /** Row receiving the cotangent. */
  readonly to: number;
  /** Row (node output) it comes from. */
  readonly from: number;
  /** Symbolic update, e.g. "v̄5·v3". */
  readonly formula: string;
  /** The same with numbers substituted (scalar nodes only), e.g. "1 × 3". */
  readonly numeric: string | null;
  readonly value: Tensor;
}

/** An operand of a row: another row, or a rendered constant. */
type Operand = { readonly row: number } | { readonly constant: string };

interface RowData {
  readonly name: string;
  readonly label: string | null;
  readonly op: string;
  readonly operands: readonly Operand[];
  readonly expr: string;
  readonly value: Tensor;
  readonly tangent: Tensor;
  readonly adjoint: Tensor;
  readonly tangentRule: string;
  /** The tangent rule with numbers substituted (scalar nodes only), e.g. "cos(1)·1". */
  readonly tangentNumeric: string | null;
}

/** @internal What `explain` computed; `Explanation` renders it. */
export interface ExplainData {
  readonly rows: readonly RowData[];
  /** Output rows (traced output leaves), in output order. */
  readonly outputRows: readonly number[];
  /** The rendered output leaves (row names or constants). */
  readonly outputNames: readonly string[];
  readonly contributions: readonly Contribution[];
  /** Seeds of the reverse sweep: row and value. */
  readonly seeds: readonly { readonly row: number; readonly value: Tensor }[];
  /** True when the output is one scalar (a gradient, not a vector–Jacobian product with ones). */
  readonly scalarOutput: boolean;
  /** Row whose tangent seed is a lone 1 (so the output tangent is ∂f/∂that input), or -1. */
  readonly oneHotInput: number;
}

/**
 * The trace of one evaluation of a function: every intermediate with its operation, value,
 * tangent and adjoint. Made by `explain`; render it with `toString()`, `toMarkdown()`,
 * `toHTML()`, `toDot()` or `toMermaid()`.
 * @example
 * const e = ad.explain((x1, x2) => ad.mul(ad.add(x1, x2), ad.sin(x1)), [1, 2]);
 * e.rows.map((r) => r.name); // ["v1", "v2", "v3", "v4", "v5"]
 * e.rows[4]!.tangent; // 2.4624 (3·cos 1 + sin 1 = ∂f/∂x1)
 */
export class Explanation {
  /** Inputs first, then every recorded primitive output, in forward order. */
  readonly rows: ExplainRow[];
  /** Name of the output row (names joined with ", " for several outputs; a rendered constant for an output that does not depend on the inputs). */
  readonly output: string;
  readonly #data: ExplainData;

  /** @internal Use `explain`. */
  constructor(data: ExplainData) {
    this.#data = data;
    this.output = data.outputNames.join(", ");
    this.rows = data.rows.map((r) => ({
      name: r.name,
      label: r.label,
      op: r.op,
      inputs: r.operands.map((o) => ("row" in o ? data.rows[o.row]!.name : o.constant)),
      expr: r.expr,
      value: publicValue(r.value),
      tangent: publicValue(r.tangent),
      adjoint: publicValue(r.adjoint),
      tangentRule: r.tangentRule,
    }));
  }

  /** The document: headings, paragraphs and tables, in order. */
  #blocks(): Block[] {
    const d = this.#data;
    const rows = d.rows;
    const blocks: Block[] = [];
    const inputs = rows.filter((r) => r.op === "input");
    const fname = `f(${inputs.map((r) => r.label ?? r.name).join(", ")})`;
    blocks.push({
      kind: "para",
      text:
        `Trace of ${fname}` +
        (inputs.length > 0
          ? ` at ${inputs.map((r) => `${r.label ?? r.name} = ${fmtTensor(r.value)}`).join(", ")}`
          : "") +
        `; output ${this.output}. Numbers are rounded to 4 significant digits.`,
    });

    // Forward mode
    const seedText = inputs.map((r) => `${dotOf(r.name)} = ${fmtTensor(r.tangent)}`).join(", ");
    blocks.push({
      kind: "heading",
      text: seedText === "" ? "Forward mode" : `Forward mode (tangent seed ${seedText})`,
    });
    blocks.push({
      kind: "table",
      cls: "adjoint-explain-forward",
      columns: [
        ["variable", "Variable"],
        ["operation", "Operation"],
        ["value", "Value"],
        ["tangent", `Tangent ${dotOf("v")}`],
        ["rule", "Rule"],
      ],
      rows: rows.map((r) => {
        const tan = fmtTensor(r.tangent);
        const tangent =
          r.tangentNumeric === null || r.tangentNumeric === tan ? tan : `${r.tangentNumeric} = ${tan}`;
        return [
          r.name,
          r.op === "input" ? `input ${r.label ?? r.name}` : r.expr,
          fmtTensor(r.value),
          tangent,
          r.tangentRule,
        ];
      }),
    });
    const outTangents = d.outputRows.map((i) => `${dotOf(rows[i]!.name)} = ${fmtTensor(rows[i]!.tangent)}`);
    if (outTangents.length > 0) {
      const oneHot = d.oneHotInput >= 0 && d.scalarOutput ? rows[d.oneHotInput]! : null;
      blocks.push({
        kind: "para",
        text:
          oneHot !== null
            ? `So ${outTangents[0]} = ∂f/∂${oneHot.label ?? oneHot.name}.`
            : `Output tangent: ${outTangents.join(", ")} (the Jacobian–vector product J·${dotOf("v")} with the seed above).`,
      });
    }

    // Reverse mode
    blocks.push({ kind: "heading", text: "Reverse mode" });
    blocks.push({ kind: "para", text: "Forward pass:" });
    blocks.push({
      kind: "table",
      cls: "adjoint-explain-primal",
      columns: [
        ["variable", "Variable"],
        ["value", "Value"],
      ],
      rows: rows.map((r) => [
        `${r.name} = ${r.op === "input" ? (r.label ?? r.name) : r.expr}`,
        fmtTensor(r.value),
      ]),
    });
    if (d.seeds.length === 0) {
      blocks.push({
        kind: "para",
        text: "The output does not depend on the inputs: every adjoint is 0.",
      });
      return blocks;
    }
    const init = d.seeds.map((s) => `${barOf(rows[s.row]!.name)} = ${fmtTensor(s.value)}`).join(", ");
    blocks.push({ kind: "para", text: `Backward pass (initialise ${init}):` });
    if (!d.scalarOutput)
      blocks.push({
        kind: "para",
        text: `The output is not a single scalar, so its adjoint is seeded with ones: the adjoints below are the vector–Jacobian product with ones (the gradient of the sum of the outputs).`,
      });
    const count = new Map<number, number>();
    for (const c of d.contributions) count.set(c.to, (count.get(c.to) ?? 0) + 1);
    const revRows: string[][] = d.seeds.map((s) => [
      barOf(rows[s.row]!.name),
      "initialise",
      fmtTensor(s.value),
    ]);
    for (const c of d.contributions) {
      const v = fmtTensor(c.value);
      const update = `from ${rows[c.from]!.name}: ${c.formula}${c.numeric !== null ? ` = ${c.numeric}` : ""}`;
      const isSeed = d.seeds.some((s) => s.row === c.to);
      revRows.push([barOf(rows[c.to]!.name), update, (count.get(c.to) ?? 0) > 1 || isSeed ? `+= ${v}` : v]);
    }
    blocks.push({
      kind: "table",
      cls: "adjoint-explain-reverse",
      columns: [
        ["variable", "Variable"],
        ["update", "Adjoint update"],
        ["value", "Value"],
      ],
      rows: revRows,
    });
    const finals = inputs.map((r) => {
      const i = rows.indexOf(r);
      const parts = d.contributions.filter((c) => c.to === i).map((c) => fmtTensor(c.value));
      const total = fmtTensor(r.adjoint);
      const sumText = parts.length > 1 ? `${parts.join(" + ")} = ` : "";
      const partial = d.scalarOutput ? ` = ∂f/∂${r.label ?? r.name}` : "";
      return `${barOf(r.name)} = ${sumText}${total}${partial}`;
    });
    blocks.push({ kind: "para", text: `Final adjoints: ${finals.join(", ")}.` });
    return blocks;
  }

  /**
   * Plain-text tables: the forward-mode table (Variable | Operation | Value | Tangent | Rule),
   * then reverse mode (the primal values, and Variable | Adjoint update | Value in reverse order
   * with one `+=` line per contribution).
   * @example
   * console.log(ad.explain((x) => ad.sin(x), [1]).toString());
   */
  toString(): string {
    return this.#blocks()
      .map((b) =>
        b.kind === "table"
          ? textTable(b.columns, b.rows)
          : b.kind === "heading"
            ? `${b.text}\n${"=".repeat(width(b.text))}`
            : b.text,
      )
      .join("\n\n");
  }

  /**
   * The same tables as Markdown.
   * @example
   * ad.explain((x) => ad.sin(x), [1]).toMarkdown(); // "Trace of f(x) …\n\n### Forward mode …"
   */
  toMarkdown(): string {
    return this.#blocks()
      .map((b) => {
        if (b.kind === "heading") return `### ${mdEscape(b.text)}`;
        if (b.kind === "para") return mdEscape(b.text);
        const row = (cells: readonly string[]) => `| ${cells.map(mdEscape).join(" | ")} |`;
        return [
          row(b.columns.map((c) => c[1])),
          `|${b.columns.map(() => " --- ").join("|")}|`,
          ...b.rows.map(row),
        ].join("\n");
      })
      .join("\n\n");
  }

  /**
   * The same tables as an HTML fragment (all text escaped): a `<section class="adjoint-explain">`
   * holding `<table>` elements whose cells carry one class per column (`variable`, `operation`,
   * `value`, `tangent`, `rule`, `update`).
   * @example
   * document.body.innerHTML = ad.explain((x) => ad.sin(x), [1]).toHTML();
   */
  toHTML(): string {
    const parts = this.#blocks().map((b) => {
      if (b.kind === "heading") return `<h3>${htmlEscape(b.text)}</h3>`;
      if (b.kind === "para") return `<p>${htmlEscape(b.text)}</p>`;
      const head = b.columns.map(([cls, h]) => `<th class="${cls}">${htmlEscape(h)}</th>`).join("");
      const body = b.rows
        .map(
          (r) =>
            `    <tr>${r.map((c, i) => `<td class="${b.columns[i]![0]}">${htmlEscape(c)}</td>`).join("")}</tr>`,
        )
        .join("\n");
      return `<table class="${b.cls}">\n  <thead><tr>${head}</tr></thead>\n  <tbody>\n${body}\n  </tbody>\n</table>`;
    });
    return `<section class="adjoint-explain">\n${parts.join("\n")}\n</section>`;
  }

  /** Nodes and edges of the Wengert list, shared by the graph renderers. */
  #graph(): {
    nodes: { id: string; lines: string[]; kind: "input" | "op" | "const" | "output" }[];
    edges: [string, string][];
  } {
    const d = this.#data;
    const outputs = new Set(d.outputRows);
    const nodes: { id: string; lines: string[]; kind: "input" | "op" | "const" | "output" }[] = [];
    const edges: [string, string][] = [];
    let nConst = 0;
    d.rows.forEach((r, i) => {
      const title = r.label !== null ? `${r.name} (${r.label})` : `${r.name} = ${r.expr}`;
      nodes.push({
        id: r.name,
        lines: [
          title,
          r.op,
          `value ${fmtTensor(r.value)}`,
          `tangent ${fmtTensor(r.tangent)}`,
          `adjoint ${fmtTensor(r.adjoint)}`,
        ],
        kind: outputs.has(i) ? "output" : r.op === "input" ? "input" : "op",
      });
      for (const o of r.operands) {
        if ("row" in o) edges.push([d.rows[o.row]!.name, r.name]);
        else {
          const id = `c${++nConst}`;
          nodes.push({ id, lines: [o.constant], kind: "const" });
          edges.push([id, r.name]);
        }
      }
    });
    return { nodes, edges };
  }

  /**
   * A Graphviz digraph of the Wengert list: one node per input and primitive output (name,
   * operation, value, tangent, adjoint), one per constant operand, edges along the data flow.
   * @example
   * ad.explain((x) => ad.sin(x), [1]).toDot(); // "digraph explain {\n  rankdir=LR; …"
   */
  toDot(): string {
    const { nodes, edges } = this.#graph();
    const q = (s: string): string =>
      `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
    const style = {
      input: "shape=box, style=rounded",
      op: "shape=box",
      const: "shape=plaintext",
      output: "shape=box, peripheries=2",
    };
    return [
      "digraph explain {",
      "  rankdir=LR;",
      '  node [fontname="monospace"];',
      ...nodes.map((n) => `  ${n.id} [label=${q(n.lines.join("\n"))}, ${style[n.kind]}];`),
      ...edges.map(([a, b]) => `  ${a} -> ${b};`),
      "}",
    ].join("\n");
  }

  /**
   * The same graph as a Mermaid flowchart.
   * @example
   * ad.explain((x) => ad.sin(x), [1]).toMermaid(); // "flowchart LR\n  v1[\"v1 (x)<br/>input…"
   */
  toMermaid(): string {
    const { nodes, edges } = this.#graph();
    const esc = (s: string): string =>
      s.replace(
        /[&"<>#]/g,
        (c) => ({ "&": "#amp;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;" })[c]!,
      );
    const shape = (n: { id: string; lines: string[]; kind: string }): string => {
      const label = `"${n.lines.map(esc).join("<br/>")}"`;
      return n.kind === "const"
        ? `${n.id}(${label})`
        : n.kind === "input"
          ? `${n.id}([${label}])`
          : `${n.id}[${label}]`;
    };
    const out = nodes.filter((n) => n.kind === "output").map((n) => n.id);
    return [
      "flowchart LR",
      ...nodes.map((n) => `  ${shape(n)}`),
      ...edges.map(([a, b]) => `  ${a} --> ${b}`),
      ...(out.length > 0 ? ["  classDef output stroke-width:3px", `  class ${out.join(",")} output`] : []),
    ].join("\n");
  }
}

// ---------------------------------------------------------------------------------------------
// explain
// ---------------------------------------------------------------------------------------------

/** A materialised tangent of the given value. */
const materialise = (t: Tangent | undefined, like: Tensor): Tensor =>
  t === undefined || isZero(t) ? zeros(like.shape, { dtype: like.dtype }) : t;

/** The per-argument, per-leaf tangent seeds (null = zero). */
function seedTangents(
  rec: Recording,
  args: readonly unknown[],
  argnums: readonly number[],
  tangents: readonly unknown[] | undefined,
): (Tensor | null)[][] {
  if (tangents === undefined) {
    const all = rec.args.flatMap((a, k) => a.leaves.map((l, j) => ({ k, j, l })));
    const first = all.find((e) => e.l.size === 1) ?? all[0];
    return rec.args.map((a, k) =>
      a.leaves.map((l, j) =>
        first !== undefined && first.k === k && first.j === j ? ones(l.shape, { dtype: l.dtype }) : null,
      ),
    );
  }
  if (!Array.isArray(tangents))
    throw new TransformError(`explain: tangents must be an array with one tangent per argument`);
  if (tangents.length !== args.length)
    throw new TransformError(
      `explain: expected ${args.length} tangent(s) (one per argument), got ${tangents.length}`,
    );
  return argnums.map((argIndex, k) => {
    const a = rec.args[k]!;
    const [tl, td] = flatten(tangents[argIndex]);
    if (!treeDefEqual(td, a.def))
      throw new TransformError(
        `explain: tangent ${argIndex} has structure ${showTreeDef(td)}, expected ${showTreeDef(a.def)}`,
      );
    return a.leaves.map((l, j) =>
      matchLeaf(
        tl[j],
        l,
        a.def.kind === "leaf" ? `explain: tangent ${argIndex}` : `explain: tangent ${argIndex} (leaf ${j})`,
      ),
    );
  });
}

/**
 * The textbook trace tables of `f(...args)`: every intermediate of the recorded Wengert list
 * (inputs first, then each primitive in forward order, named v1, v2, …) with its operation,
 * value, tangent (forward mode, seeded by `tangents`) and adjoint (reverse mode, seeded with 1
 * at the output; with ones, as the text says, when the output is not one scalar). Every float
 * argument (numbers, float tensors, pytrees of them) is an input; other arguments are passed
 * through as constants.
 * @example
 * const e = ad.explain((x1, x2) => ad.mul(ad.add(x1, x2), ad.sin(x1)), [1, 2]);
 * console.log(e.toString()); // the forward and reverse trace tables
 * e.rows[0]!.adjoint; // 2.4624 = ∂f/∂x1
 * ad.explain((x1, x2) => ad.mul(ad.add(x1, x2), ad.sin(x1)), [1, 2], { tangents: [0, 1] }).rows[4]!.tangent; // ∂f/∂x2
 */
export function explain(
  f: (...args: never[]) => unknown,
  args: readonly unknown[],
  opts: ExplainOptions = {},
): Explanation {
  checkFunction(f, "explain");
  if (!Array.isArray(args))
    throw new TransformError(
      `explain: args must be an array of the function's arguments, got ${typeof args}`,
    );
  if (
    opts.names !== undefined &&
    (!Array.isArray(opts.names) || !opts.names.every((n) => typeof n === "string"))
  )
    throw new TransformError("explain: names must be an array of strings");
  const argnums = args.map((_, i) => i).filter((i) => isDiffArg(args[i]));
  const rec = record(f, args, argnums, false, "explain");
  const seeds = seedTangents(rec, args, argnums, opts.tangents);

  const parsed = opts.names === undefined ? paramNames(f) : null;
  const argName = (i: number): string => opts.names?.[i] ?? parsed?.[i] ?? `x${i + 1}`;

  const rows: RowData[] = [];
  const rowOf = new Map<Node, number[]>();
  const rowOfRef = (r: Ref): number => rowOf.get(r.node)?.[r.index] ?? -1;
  const tan = new Map<Node, Tangent[]>();
  let oneHotInput = -1;
  let nonZeroSeeds = 0;

  // Inputs
  rec.leafNodes.forEach((nodes, k) => {
    const labels = leafLabels(rec.args[k]!.def, argName(argnums[k]!));
    nodes.forEach((n, j) => {
      const v = n.outs[0]!;
      const t = seeds[k]?.[j] ?? null;
      const tangent = materialise(t ?? undefined, v);
      if (t !== null) tan.set(n, [t]);
      const data = tangent._hostData();
      if (data.some((x) => x !== 0)) {
        nonZeroSeeds++;
        if (v.size === 1 && data[0] === 1) oneHotInput = rows.length;
      }
      rowOf.set(n, [rows.length]);
      rows.push({
        name: `v${rows.length + 1}`,
        label: labels[j] ?? null,
        op: "input",
        operands: [],
        expr: labels[j] ?? `v${rows.length + 1}`,
        value: v,
        tangent,
        adjoint: zeros(v.shape, { dtype: v.dtype }),
        tangentRule: `seed = ${fmtTensor(tangent)}`,
        tangentNumeric: null,
      });
    });
  });
  if (nonZeroSeeds !== 1) oneHotInput = -1;

  // Primitives, in forward order, with every intermediate tangent kept
  const nodes = rec.interp.nodes;
  const scalarNode = (n: Node): boolean =>
    n.outs.length === 1 && [...n.inputs, ...n.outs].every((t) => t.size === 1);
  for (const node of nodes) {
    const prim = node.prim!;
    let any = false;
    const ts = node.parents.map((p, i) => {
      const t = p === null ? undefined : tan.get(p.node)?.[p.index];
      if (t !== undefined && !isZero(t)) any = true;
      return t ?? Zero.like(node.inputs[i]!);
    });
    const outTs: Tangent[] = any
      ? prim.jvp(node.inputs as Tensor[], ts, node.outs as Tensor[], node.params)
      : node.outs.map((o) => Zero.like(o));
    tan.set(node, outTs);
    const operands: Operand[] = node.parents.map((p, i) =>
      p === null ? { constant: operandText(node.inputs[i]!) } : { row: rowOfRef(p) },
    );
    const symA: Txt = (i) => {
      const o = operands[i]!;
      return "row" in o ? (rows[o.row]?.name ?? "?") : o.constant;
    };
    const symD: DTxt = (i) => {
      const o = operands[i]!;
      return "row" in o ? dotOf(rows[o.row]?.name ?? "?") : null;
    };
    const numA: Txt = (i) => operandText(node.inputs[i]!);
    const numD: DTxt = (i) => {
      const o = operands[i]!;
      return "row" in o ? operandText(rows[o.row]!.tangent) : null;
    };
    const p = prim.showParams?.(node.params) ?? "";
    const n = node.inputs.length;
    const rule = RULES[prim.name];
    const numericRule = scalarNode(node) && (rule?.jvp !== undefined || rule?.partial !== undefined);
    const slots: number[] = [];
    node.outs.forEach((o, k) => {
      if (!isFloat(o.dtype)) {
        slots.push(-1);
        return;
      }
      const name = `v${rows.length + 1}`;
      const suffix = node.outs.length > 1 ? `[${k}]` : "";
      const tangent = materialise(outTs[k], o);
      slots.push(rows.length);
      rows.push({
        name,
        label: null,
        op: prim.name,
        operands,
        expr: exprOf(prim.name, symA, n, p) + suffix,
        value: o,
        tangent,
        adjoint: zeros(o.shape, { dtype: o.dtype }),
        tangentRule: jvpOf(prim.name, symA, symD, n, name, p) + suffix,
        tangentNumeric: numericRule ? jvpOf(prim.name, numA, numD, n, operandText(o), p) : null,
      });
    });
    rowOf.set(node, slots);
  }

  // Output and seeds of the reverse sweep
  const outputRows: number[] = [];
  const outputNames: string[] = [];
  const adj = new Map<number, Tensor>();
  const revSeeds: { row: number; value: Tensor }[] = [];
  for (const l of rec.outLeaves) {
    const ref = typeof l === "number" ? null : rec.interp.refOf(l);
    const row = ref === null ? -1 : rowOfRef(ref);
    if (row < 0) {
      outputNames.push(typeof l === "number" ? fmtNum(l) : operandText(rec.interp.primalOf(l)));
      continue;
    }
    outputRows.push(row);
    outputNames.push(rows[row]!.name);
    const v = rows[row]!.value;
    const seed = ones(v.shape, { dtype: v.dtype });
    const prev = adj.get(row);
    adj.set(row, prev === undefined ? seed : add(prev, seed));
    const s = revSeeds.find((e) => e.row === row);
    if (s === undefined) revSeeds.push({ row, value: seed });
    else s.value = add(s.value, seed);
  }
  const scalarOutput =
    rec.outLeaves.length === 1 && outputRows.length === 1 && rows[outputRows[0]!]!.value.size === 1;

  // The reverse sweep, keeping every adjoint and every contribution
  const contributions: Contribution[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    const prim = node.prim!;
    const slots = rowOf.get(node)!;
    if (!slots.some((r) => r >= 0 && adj.has(r))) continue;
    const outCts = node.outs.map((o, k) => adj.get(slots[k]!) ?? zeros(o.shape, { dtype: o.dtype }));
    const inCts = prim.vjp(outCts, node.inputs as Tensor[], node.outs as Tensor[], node.params, node.needs);
    const scalar = scalarNode(node);
    const partials = scalar
      ? prim.vjp(
          [ones(node.outs[0]!.shape, { dtype: node.outs[0]!.dtype })],
          node.inputs as Tensor[],
          node.outs as Tensor[],
          node.params,
          node.needs,
        )
      : null;
    const from = slots.find((r) => r >= 0)!;
    const fromRow = rows[from]!;
    const c =
      slots.length === 1
        ? barOf(fromRow.name)
        : `(${slots
            .filter((r) => r >= 0)
            .map((r) => barOf(rows[r]!.name))
            .join(", ")})`;
    const symA: Txt = (j) => {
      const o = fromRow.operands[j]!;
      return "row" in o ? rows[o.row]!.name : o.constant;
    };
    for (let j = node.parents.length - 1; j >= 0; j--) {
      const p = node.parents[j];
      const g = inCts[j];
      if (p === null || p === undefined || g === undefined || isZero(g)) continue;
      const x = node.inputs[j]!;
      const gv = g.dtype === x.dtype ? g : astype(g, x.dtype);
      const to = rowOfRef(p);
      if (to < 0) continue;
      const prev = adj.get(to);
      adj.set(to, prev === undefined ? gv : add(prev, gv));
      let numeric: string | null = null;
      if (partials !== null) {
        const pj = partials[j];
        const pt = pj === undefined || isZero(pj) ? "0" : operandText(pj);
        const ct = operandText(outCts[0]!);
        numeric = pt === "1" ? ct : `${ct} × ${pt}`;
      }
      contributions.push({
        to,
        from,
        formula: vjpOf(prim.name, j, c, symA, fromRow.name, !shapeEq(x.shape, node.outs[0]!.shape)),
        numeric,
        value: gv,
      });
    }
  }
  const finalRows = rows.map((r, i) => {
    const a = adj.get(i);
    return a === undefined ? r : { ...r, adjoint: a };
  });

  return new Explanation({
    rows: finalRows,
    outputRows,
    outputNames,
    contributions,
    seeds: revSeeds,
    scalarOutput,
    oneHotInput,
  });
}
