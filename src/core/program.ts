/**
 * @file The Program IR: a function's Wengert list as typed ANF. Every equation applies one
 * primitive to variables or literal constants and binds fresh variables (`v3 = add v1 v2 :
 * float32[2,3]`). Programs are evaluated through `bind`, so every transform applies to them, and they print
 * one equation per line, as Graphviz and as Mermaid.
 */

import type { DType } from "../dtype.js";
import { TransformError } from "../errors.js";
import { fmtShape, shapeEq } from "../shape.js";
import { bind, type Interpreter } from "./interpreter.js";
import type { Aval, Primitive } from "./primitive.js";
import type { Tensor } from "./tensor.js";

/**
 * A variable: bound once, by a program input or an equation. It is its own aval (shape, dtype,
 * weak type), and the trace state of the staging tracers that stand for it (`owner`): staging
 * allocates one object per value, not three.
 */
export class Var implements Aval {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly weakType: boolean;
  /** @internal The staging interpreter whose tracers carry this variable (null for others). */
  owner: Interpreter | null = null;
  constructor(
    readonly id: number,
    aval: Aval,
  ) {
    this.shape = aval.shape;
    this.dtype = aval.dtype;
    this.weakType = aval.weakType;
  }
  /** The variable's type: the variable itself. */
  get aval(): Aval {
    return this;
  }
  toString(): string {
    return `v${this.id}`;
  }
}

let nextLitId = 1;

/** A literal constant (a concrete tensor captured while tracing). */
export class Lit {
  /** Creation order: a key for passes that hash atoms (variables are keyed by their `id`). */
  readonly id = nextLitId++;
  constructor(readonly value: Tensor) {}
  get aval(): Aval {
    return this.value;
  }
}

export type Atom = Var | Lit;

/** One equation: `outs = prim[params](inputs)`. */
export interface Eqn {
  readonly prim: Primitive<unknown>;
  readonly params: unknown;
  readonly inputs: readonly Atom[];
  readonly outs: readonly Var[];
}

/** `float32[2,3]` (with a trailing `~` for weakly typed values), dtypes named as in the API. */
export function showAval(a: Aval): string {
  return `${a.dtype}[${a.shape.join(",")}]${a.weakType ? "~" : ""}`;
}

function showLit(l: Lit): string {
  const t = l.value;
  if (t.size === 1 && t._trace === null) {
    const v = t._hostData()[0]!;
    return `${Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toPrecision(6)))}:${t.dtype}`;
  }
  return `const:${showAval(t)}`;
}

function showAtom(a: Atom): string {
  return a instanceof Var ? a.toString() : showLit(a);
}

/** A staged function: inputs, equations in evaluation order, outputs. */
export class Program {
  constructor(
    readonly inputs: readonly Var[],
    readonly eqns: readonly Eqn[],
    readonly outputs: readonly Atom[],
  ) {}

  /**
   * One equation per line, JAX style.
   * @example
   * String(ad.trace((x) => ad.sin(x).mul(2))(1));
   * // { lambda v1:float64[]~ .
   * //   v2 = sin v1 : float64[]~
   * //   v3 = mul v2 2:float64 : float64[]~
   * //   in (v3) }
   */
  toString(): string {
    const lines = [`{ lambda ${this.inputs.map((v) => `${v}:${showAval(v.aval)}`).join(" ")} .`];
    for (const e of this.eqns) {
      // `v3 = add v1 v2 : float32[2]`: the equation reads first, the result types follow it.
      const lhs = e.outs.map(String).join(" ");
      const types = e.outs.map((v) => showAval(v.aval)).join(" ");
      const p = e.prim.showParams?.(e.params as never);
      const rhs = `${e.prim.name}${p ? `[${p}]` : ""} ${e.inputs.map(showAtom).join(" ")}`.trimEnd();
      lines.push(`  ${lhs} = ${rhs} : ${types}`);
    }
    lines.push(`  in (${this.outputs.map(showAtom).join(", ")}) }`);
    return lines.join("\n");
  }

  /** The data-flow graph in Graphviz dot. */
  toDot(): string {
    const out = ["digraph program {", "  rankdir=TB;", '  node [fontname="monospace"];'];
    for (const v of this.inputs) out.push(`  ${v} [shape=box, label="${v}: ${showAval(v.aval)}"];`);
    this.eqns.forEach((e, i) => {
      out.push(`  e${i} [shape=ellipse, label="${e.prim.name}"];`);
      e.inputs.forEach((a, j) => {
        if (a instanceof Var) out.push(`  ${a} -> e${i};`);
        else {
          out.push(`  c${i}_${j} [shape=plaintext, label="${showLit(a)}"];`);
          out.push(`  c${i}_${j} -> e${i};`);
        }
      });
      for (const v of e.outs) {
        out.push(`  ${v} [shape=box, label="${v}: ${showAval(v.aval)}"];`);
        out.push(`  e${i} -> ${v};`);
      }
    });
    this.outputs.forEach((a, k) => {
      out.push(`  out${k} [shape=doublecircle, label="out ${k}"];`);
      if (a instanceof Var) out.push(`  ${a} -> out${k};`);
    });
    out.push("}");
    return out.join("\n");
  }

  /** The data-flow graph as a Mermaid flowchart. */
  toMermaid(): string {
    const out = ["flowchart TD"];
    for (const v of this.inputs) out.push(`  ${v}["${v}: ${showAval(v.aval)}"]`);
    this.eqns.forEach((e, i) => {
      out.push(`  e${i}(("${e.prim.name}"))`);
      e.inputs.forEach((a, j) => {
        if (a instanceof Var) out.push(`  ${a} --> e${i}`);
        else out.push(`  c${i}_${j}["${showLit(a)}"] --> e${i}`);
      });
      for (const v of e.outs) out.push(`  e${i} --> ${v}["${v}: ${showAval(v.aval)}"]`);
    });
    this.outputs.forEach((a, k) => {
      if (a instanceof Var) out.push(`  ${a} --> out${k}(["out ${k}"])`);
    });
    return out.join("\n");
  }

  /** Check that every variable is bound once before use and every equation's types agree with its shape rule. */
  typecheck(): void {
    const bound = new Set<Var>(this.inputs);
    const check = (a: Atom, where: string) => {
      if (a instanceof Var && !bound.has(a))
        throw new TransformError(`typecheck: ${a} is used before it is bound (${where})`);
    };
    for (const e of this.eqns) {
      e.inputs.forEach((a) => check(a, e.prim.name));
      const want = e.prim.abstractEval(
        e.inputs.map((a) => a.aval),
        e.params as never,
      );
      if (want.length !== e.outs.length)
        throw new TransformError(
          `typecheck: ${e.prim.name} has ${want.length} outputs, the equation binds ${e.outs.length}`,
        );
      e.outs.forEach((v, i) => {
        const w = want[i]!;
        if (!shapeEq(w.shape, v.aval.shape) || w.dtype !== v.aval.dtype)
          throw new TransformError(
            `typecheck: ${v} of ${e.prim.name} is ${showAval(v.aval)} but the shape rule gives ${fmtShape(w.shape)} ${w.dtype}`,
          );
        if (bound.has(v)) throw new TransformError(`typecheck: ${v} is bound twice`);
        bound.add(v);
      });
    }
    this.outputs.forEach((a) => check(a, "outputs"));
  }

  /** Evaluate through `bind` (so the current transforms apply). */
  evaluate(args: readonly Tensor[]): Tensor[] {
    if (args.length !== this.inputs.length)
      throw new TransformError(`program: expected ${this.inputs.length} inputs, got ${args.length}`);
    const env = new Map<Var, Tensor>();
    this.inputs.forEach((v, i) => env.set(v, args[i]!));
    const read = (a: Atom): Tensor => (a instanceof Var ? env.get(a)! : a.value);
    for (const e of this.eqns) {
      const outs = bind(e.prim, e.inputs.map(read), e.params);
      e.outs.forEach((v, i) => env.set(v, outs[i]!));
    }
    return this.outputs.map(read);
  }
}
