/**
 * @file Elementwise fusion for `jit`: every maximal tree of elementwise equations whose inner
 * values have a single use becomes one `fused` equation evaluated in one pass over the output,
 * with no intermediate arrays. Each node keeps its dtype, so the fused kernel rounds exactly as
 * the separate kernels would: fused and unfused results are identical.
 */

import type { BinaryKernel, UnaryKernel } from "../backend/backend.js";
import type { FusedExpr } from "../backend/kernel.js";
import { exprSize } from "../backend/kernel.js";
import { type Atom, type Eqn, Lit, Program, Var } from "../core/program.js";
import type { DType } from "../dtype.js";
import { fusedP } from "../primitives/fused.js";
import { sizeOf } from "../shape.js";

const UNARY = new Set<string>([
  "neg",
  "exp",
  "log",
  "log1p",
  "expm1",
  "sqrt",
  "sin",
  "cos",
  "tan",
  "asin",
  "acos",
  "atan",
  "sinh",
  "cosh",
  "tanh",
  "logistic",
  "abs",
  "sign",
  "floor",
  "ceil",
  "round",
  "erf",
  "not",
]);
const BINARY = new Set<string>([
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "max",
  "min",
  "atan2",
  "eq",
  "ne",
  "lt",
  "le",
  "gt",
  "ge",
  "and",
  "or",
]);

/** Reshapes and broadcasts of a single value are free inside a kernel: the value is read everywhere. */
function scalarMove(e: Eqn): boolean {
  const n = e.prim.name;
  return (n === "broadcast_to" || n === "reshape") && sizeOf(e.inputs[0]!.aval.shape) === 1;
}

function fusable(e: Eqn): boolean {
  const n = e.prim.name;
  return (
    e.outs.length === 1 &&
    (UNARY.has(n) ||
      BINARY.has(n) ||
      n === "select" ||
      n === "convert_element_type" ||
      n === "stop_gradient" ||
      scalarMove(e))
  );
}

/** The expression node of one fusable equation over its operands' expressions. */
function node(e: Eqn, args: FusedExpr[]): FusedExpr {
  const n = e.prim.name;
  const dtype: DType = e.outs[0]!.aval.dtype;
  if (UNARY.has(n)) return { kind: "unary", op: n as UnaryKernel, arg: args[0]!, dtype };
  if (BINARY.has(n)) return { kind: "binary", op: n as BinaryKernel, a: args[0]!, b: args[1]!, dtype };
  if (n === "select") return { kind: "select", c: args[0]!, a: args[1]!, b: args[2]!, dtype };
  if (n === "convert_element_type") return { kind: "cast", arg: args[0]!, dtype };
  return args[0]!; // stop_gradient, and moves of a single value, are the identity when running
}

/** Fuse elementwise chains (returns a new program; the input is unchanged). */
export function fuse(program: Program): Program {
  const producer = new Map<Var, number>();
  const uses = new Map<Var, number>();
  program.eqns.forEach((e, i) => {
    for (const v of e.outs) producer.set(v, i);
    for (const a of e.inputs) if (a instanceof Var) uses.set(a, (uses.get(a) ?? 0) + 1);
  });
  // Program outputs must stay materialised.
  for (const a of program.outputs) if (a instanceof Var) uses.set(a, (uses.get(a) ?? 0) + 2);
  const absorbed = new Set<number>();
  const replaced = new Map<number, Eqn>();
  for (let i = program.eqns.length - 1; i >= 0; i--) {
    const root = program.eqns[i]!;
    if (absorbed.has(i) || !fusable(root)) continue;
    const leaves: Atom[] = [];
    const taken: number[] = [];
    const build = (a: Atom): FusedExpr => {
      if (a instanceof Lit && a.value.size === 1 && a.value._trace === null)
        return { kind: "const", value: a.value._hostData()[0]!, dtype: a.value.dtype };
      if (a instanceof Var) {
        const p = producer.get(a);
        if (p !== undefined && uses.get(a) === 1 && !absorbed.has(p) && fusable(program.eqns[p]!)) {
          absorbed.add(p);
          taken.push(p);
          const e = program.eqns[p]!;
          return node(e, e.inputs.map(build));
        }
      }
      let k = leaves.indexOf(a);
      if (k < 0) k = leaves.push(a) - 1;
      return { kind: "input", index: k, dtype: a.aval.dtype };
    };
    const expr = node(root, root.inputs.map(build));
    if (exprSize(expr) < 2) {
      for (const p of taken) absorbed.delete(p);
      continue;
    }
    replaced.set(i, {
      prim: fusedP as never,
      params: { expr, out: root.outs[0]!.aval },
      inputs: leaves,
      outs: root.outs,
    });
  }
  const eqns = program.eqns.flatMap((e, i) => (absorbed.has(i) ? [] : [replaced.get(i) ?? e]));
  return new Program(program.inputs, eqns, program.outputs);
}
