/**
 * @file What the playground computes, without touching the page: the typed expression parsed
 * and compiled by the CLI's parser and interpreter (never `eval`), its value and gradient at
 * the chosen point, the `ad.explain` trace, the computational graph laid out in layers, and the
 * samples of f, f′ and f″ along one variable for the plot. Kept free of DOM types so the Node
 * tests can check it directly.
 */

import * as ad from "adjoint";
import { compile } from "../dist/cli/interpret.js";
import { CliError, type Expr, parseExpression, toSource, variablesOf } from "../dist/cli/parse.js";

type Fn = (...values: ad.TensorLike[]) => ad.TensorLike;

/** A parsed, checked expression ready to evaluate. */
export interface Problem {
  readonly source: string;
  readonly expr: Expr;
  /** The variables in order of first appearance. */
  readonly names: readonly string[];
  /** The expression with every operation parenthesised (how it was grouped). */
  readonly grouped: string;
  readonly fn: Fn;
}

/**
 * A mistake in the input, with the 1-based column it points at when it is about the expression.
 * @example
 * try { parseProblem("x +"); } catch (e) { (e as InputError).column; } // 4
 */
export class InputError extends Error {
  readonly column: number | undefined;
  constructor(message: string, column?: number) {
    super(message);
    this.name = "InputError";
    this.column = column;
  }
}

/**
 * Parse and compile an expression. Throws `InputError` (with the column) for a syntax error,
 * an unknown function or a wrong number of arguments.
 * @example
 * parseProblem("(x1 + x2) * sin(x1)").names; // ["x1", "x2"]
 */
export function parseProblem(source: string): Problem {
  if (source.trim() === "") throw new InputError("Type an expression, for example (x1 + x2) * sin(x1).");
  try {
    const expr = parseExpression(source);
    const names = variablesOf(expr);
    return { source, expr, names, grouped: toSource(expr), fn: compile(expr, names) };
  } catch (e) {
    if (e instanceof CliError) throw new InputError(e.message, e.column);
    throw e;
  }
}

/**
 * A number from a result that is a JS number or a one-element tensor.
 * @example
 * toNumber(ad.scalar(2)); // 2
 */
export function toNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (v instanceof ad.Tensor && v.size === 1) return v.item();
  throw new InputError(`expected a scalar result, got ${String(v)}`);
}

/** Everything shown for one point. */
export interface Evaluation {
  readonly value: number;
  /** ∂f/∂(each variable), in the order of `names`. */
  readonly gradient: readonly number[];
  readonly explanation: ad.Explanation;
  /** The variable whose tangent is seeded with 1 in forward mode (index into `names`). */
  readonly seed: number;
}

/**
 * Value, gradient (reverse mode, float64) and the explain trace with the forward-mode tangent
 * seeded on variable `seed`.
 * @example
 * evaluate(parseProblem("x * x"), [3], 0).gradient; // [6]
 */
export function evaluate(p: Problem, point: readonly number[], seed: number): Evaluation {
  point.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new InputError(`${p.names[i]} must be a finite number`);
  });
  if (p.names.length === 0) {
    const value = toNumber(p.fn());
    return { value, gradient: [], explanation: ad.explain(p.fn, [], { names: [] }), seed: -1 };
  }
  const argnums = p.names.map((_, i) => i);
  const [v, g] = ad.valueAndGrad(p.fn, { argnums })(...point) as [unknown, unknown[]];
  const tangents = p.names.map((_, i) => (i === seed ? 1 : 0));
  const explanation = ad.explain(p.fn, [...point], { names: [...p.names], tangents });
  return { value: toNumber(v), gradient: g.map(toNumber), explanation, seed };
}

// ---------------------------------------------------------------------------------------------
// The computational graph
// ---------------------------------------------------------------------------------------------

/** One node of the graph: an input or the output of one primitive (one row of `ad.explain`). */
export interface GraphNode {
  /** v1, v2, ... */
  readonly id: string;
  /** The variable name of an input, else null. */
  readonly label: string | null;
  /** "input" or the primitive's name. */
  readonly op: string;
  /** The operation as a formula of its operands ("v1 + v2"). */
  readonly expr: string;
  readonly value: number;
  readonly tangent: number;
  readonly adjoint: number;
  readonly kind: "input" | "op" | "output";
  /** Forward order (the row's position in the Wengert list). */
  readonly index: number;
  /** Column of the layout: 0 for inputs, else 1 + the deepest operand's column. */
  readonly layer: number;
  /** Constant operands, rendered ("2", "3.142"). */
  readonly constants: readonly string[];
}

/** Data flowing from one node into another. */
export interface GraphEdge {
  readonly from: string;
  readonly to: string;
}

export interface Graph {
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
  /** The output node's id (null for a constant expression). */
  readonly output: string | null;
}

/**
 * The graph of an explanation: one node per row (inputs and primitive outputs), one edge per
 * operand that is another row; constant operands stay on their node.
 * @example
 * graphOf(evaluate(parseProblem("(x1 + x2) * sin(x1)"), [1, 2], 0).explanation).nodes.length; // 5
 */
export function graphOf(e: ad.Explanation): Graph {
  const ids = new Set(e.rows.map((r) => r.name));
  const layer = new Map<string, number>();
  const edges: GraphEdge[] = [];
  const nodes = e.rows.map((r, index): GraphNode => {
    const operands = r.inputs.filter((i) => ids.has(i));
    for (const from of operands) edges.push({ from, to: r.name });
    const l = r.op === "input" ? 0 : 1 + Math.max(-1, ...operands.map((o) => layer.get(o) ?? 0));
    layer.set(r.name, l);
    return {
      id: r.name,
      label: r.label,
      op: r.op,
      expr: r.expr,
      value: toNumber(r.value),
      tangent: toNumber(r.tangent),
      adjoint: toNumber(r.adjoint),
      kind: r.name === e.output ? "output" : r.op === "input" ? "input" : "op",
      index,
      layer: l,
      constants: r.inputs.filter((i) => !ids.has(i)),
    };
  });
  return { nodes, edges, output: ids.has(e.output) ? e.output : null };
}

/** Where a node sits (its centre) in graph units. */
export interface Placed {
  readonly x: number;
  readonly y: number;
}

/** Sizes of the layout, in SVG user units. */
export const NODE_W = 176;
export const NODE_H = 96;
const GAP_X = 64;
const GAP_Y = 26;

/**
 * Place the nodes: one column per layer, left to right; within a column nodes are ordered by
 * the mean row of their neighbours in the previous column (fewer crossings), and each column
 * is centred vertically.
 * @example
 * const { positions, width, height } = layoutGraph(graph);
 */
export function layoutGraph(g: Graph): { positions: Map<string, Placed>; width: number; height: number } {
  const columns: GraphNode[][] = [];
  for (const n of g.nodes) (columns[n.layer] ??= []).push(n);
  const rowOf = new Map<string, number>();
  columns.forEach((col, c) => {
    if (c > 0) {
      const key = (n: GraphNode): number => {
        const ins = g.edges.filter((e) => e.to === n.id).map((e) => rowOf.get(e.from) ?? 0);
        return ins.length === 0 ? n.index : ins.reduce((a, b) => a + b, 0) / ins.length;
      };
      col.sort((a, b) => key(a) - key(b) || a.index - b.index);
    }
    col.forEach((n, i) => rowOf.set(n.id, i));
  });
  const tallest = Math.max(1, ...columns.map((c) => c.length));
  const height = tallest * NODE_H + (tallest - 1) * GAP_Y;
  const positions = new Map<string, Placed>();
  columns.forEach((col, c) => {
    const colHeight = col.length * NODE_H + (col.length - 1) * GAP_Y;
    const top = (height - colHeight) / 2;
    col.forEach((n, i) => {
      positions.set(n.id, {
        x: c * (NODE_W + GAP_X) + NODE_W / 2,
        y: top + i * (NODE_H + GAP_Y) + NODE_H / 2,
      });
    });
  });
  const width = columns.length * NODE_W + Math.max(0, columns.length - 1) * GAP_X;
  return { positions, width, height };
}

/**
 * The order in which derivatives flow in a mode: forward mode computes tangents in the order
 * of the Wengert list, reverse mode sweeps adjoints from the output back to the inputs.
 * @example
 * flowOrder(graph, "reverse")[0]; // the output node
 */
export function flowOrder(g: Graph, mode: "forward" | "reverse"): string[] {
  const ids = g.nodes.map((n) => n.id);
  return mode === "forward" ? ids : ids.reverse();
}

// ---------------------------------------------------------------------------------------------
// The plot
// ---------------------------------------------------------------------------------------------

/** f, f′ and f″ along one variable, the others held at the point. */
export interface Samples {
  readonly xs: readonly number[];
  readonly f: readonly number[];
  readonly d1: readonly number[];
  readonly d2: readonly number[];
}

/**
 * Sample f(…, t, …), df/dt and d²f/dt² at `n` evenly spaced t in [lo, hi] (variable `axis`
 * varies; the others keep their values from `point`). The derivatives are adjoint's own
 * (nested `grad`, vectorised with `vmap`), in float64.
 * @example
 * sampleAlong(parseProblem("x ** 3"), [1], 0, -2, 2, 5).d2; // [-12, -6, 0, 6, 12]
 */
export function sampleAlong(
  p: Problem,
  point: readonly number[],
  axis: number,
  lo: number,
  hi: number,
  n = 241,
): Samples {
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi))
    throw new InputError("the plot range needs from < to");
  const xs = Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
  const along = (t: ad.TensorLike): ad.TensorLike => p.fn(...point.map((v, i) => (i === axis ? t : v)));
  const d1 = ad.grad(along);
  const d2 = ad.grad(d1);
  const ts = ad.tensor(xs, { dtype: "float64" });
  // A constant result broadcasts to the sample grid (vmap of a constant is the constant).
  const run = (f: (t: ad.TensorLike) => ad.TensorLike): number[] => {
    const out = ad.vmap(f)(ts);
    const arr = out instanceof ad.Tensor ? out.toArray() : out;
    return typeof arr === "number" ? xs.map(() => arr) : (arr as number[]);
  };
  return { xs, f: run(along), d1: run(d1), d2: run(d2) };
}
