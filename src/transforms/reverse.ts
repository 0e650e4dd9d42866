/**
 * @file Reverse mode. The reverse interpreter records a `Node` for every primitive applied to
 * one of its tracers (the Wengert list), evaluating the primal one level down. `vjp`, `grad`,
 * `valueAndGrad`, `linearize` and the Jacobians all start from one `record` of the function and
 * then sweep the tape backward (adjoints) or forward (tangents).
 */

import { bindAt, currentInterpreter, type Interpreter, withInterpreter } from "../core/interpreter.js";
import type { Primitive, Tangent } from "../core/primitive.js";
import { backwardPass, Node, type Ref } from "../core/tape.js";
import { Tensor, type TraceState } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { isFloat } from "../dtype.js";
import { DTypeError, ShapeError, TransformError } from "../errors.js";
import { ones, zeros } from "../ops/index.js";
import { fmtShape, shapeEq } from "../shape.js";
import { flatten, showTreeDef, type TreeDef, treeDefEqual, map as treeMap, unflatten } from "../tree.js";
import {
  checkFunction,
  type FlatArg,
  flattenDiffArg,
  flattenOutput,
  outLeaf,
  parseArgnums,
  rebuildArg,
} from "./args.js";
import type { LeafOut, Picked, ScalarOut } from "./types.js";

/**
 * What a tracer of a reverse interpreter carries: its primal one level down, and where it came
 * from (it is its own `Ref`, output `index` of `node`, so lifting a value allocates one object).
 */
interface RevState extends TraceState, Ref {
  readonly primal: Tensor;
}

export class ReverseInterpreter implements Interpreter {
  /** Every recorded node, in evaluation (topological) order. */
  readonly nodes: Node[] = [];
  constructor(readonly parent: Interpreter) {}

  lift(primal: Tensor, ref: Ref): Tensor {
    const state: RevState = { owner: this, primal, node: ref.node, index: ref.index };
    return new Tensor(primal.shape, primal.dtype, primal.weakType, null, null, state);
  }

  /** The node output behind `t` if this interpreter owns it. */
  refOf(t: Tensor): Ref | null {
    const s = t._trace;
    return s !== null && s.owner === this ? (s as RevState) : null;
  }

  primalOf(t: Tensor): Tensor {
    const s = t._trace;
    return s !== null && s.owner === this ? (s as RevState).primal : t;
  }

  process<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor[] {
    // Runs once per primitive under grad/vjp: indexed loops, no closures.
    const n = args.length;
    let any = false;
    const inputs: Tensor[] = new Array(n);
    const parents: (Ref | null)[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const a = args[i]!;
      const s = a._trace;
      if (s !== null && s.owner === this) {
        inputs[i] = (s as RevState).primal;
        parents[i] = s as RevState;
        any = true;
      } else {
        inputs[i] = a;
        parents[i] = null;
      }
    }
    if (!any) return bindAt(this.parent, prim, inputs, params);
    let nodeParams = params;
    let outs: Tensor[];
    if (prim.forwardWithResiduals === undefined) outs = bindAt(this.parent, prim, inputs, params);
    else {
      const [o, p] = withInterpreter(this.parent, () => prim.forwardWithResiduals!(inputs, params));
      outs = o;
      nodeParams = p;
    }
    const m = outs.length;
    let anyFloat = false;
    for (let k = 0; k < m; k++) if (isFloat(outs[k]!.dtype)) anyFloat = true;
    if (!anyFloat) return outs;
    const node = new Node(prim as Primitive<unknown>, nodeParams, inputs, outs, parents);
    node.owner = this;
    this.nodes.push(node);
    const lifted: Tensor[] = new Array(m);
    for (let k = 0; k < m; k++) {
      const o = outs[k]!;
      if (!isFloat(o.dtype)) {
        lifted[k] = o;
        continue;
      }
      // Output 0's trace state is the node itself (see `Node`).
      const state: RevState = k === 0 ? (node as RevState) : { owner: this, primal: o, node, index: k };
      lifted[k] = new Tensor(o.shape, o.dtype, o.weakType, null, null, state);
    }
    return lifted;
  }

  concrete(t: Tensor): Tensor {
    return (t._trace as RevState).primal;
  }
}

/** The result of running a function once under a reverse interpreter. */
export interface Recording {
  readonly interp: ReverseInterpreter;
  readonly args: FlatArg[];
  /** Leaf nodes of the differentiated inputs, per argument, per leaf. */
  readonly leafNodes: Node[][];
  /** The output leaves as returned (tracers of `interp`, constants or numbers). */
  readonly outLeaves: (Tensor | number)[];
  readonly outDef: TreeDef;
  /** The output leaves one level down (what the user gets back). */
  readonly outPrimals: (Tensor | number)[];
  readonly aux: unknown;
  /** True when every differentiated leaf was a JS number (0-d results then come back as numbers). */
  readonly numbersIn: boolean;
}

/** Run `f(...args)` once, recording the Wengert list of everything that depends on `argnums`. */
export function record(
  f: (...args: never[]) => unknown,
  args: readonly unknown[],
  argnums: readonly number[],
  hasAux: boolean,
  op: string,
): Recording {
  const interp = new ReverseInterpreter(currentInterpreter());
  const flat = argnums.map((a) => flattenDiffArg(args[a], a, op));
  const leafNodes: Node[][] = [];
  const callArgs = args.slice();
  argnums.forEach((a, k) => {
    const fa = flat[k]!;
    const nodes = fa.leaves.map((l) => Node.leaf(l));
    leafNodes.push(nodes);
    callArgs[a] = unflatten(
      fa.def,
      fa.leaves.map((l, j) => interp.lift(l, { node: nodes[j]!, index: 0 })),
    );
  });
  const result = withInterpreter(interp, () => (f as (...a: unknown[]) => unknown)(...callArgs));
  let out = result;
  let aux: unknown;
  if (hasAux) {
    if (!Array.isArray(result) || result.length !== 2)
      throw new TransformError(`${op}: with hasAux the function must return a pair [output, aux]`);
    out = result[0];
    aux = treeMap((l: unknown) => (l instanceof Tensor ? interp.primalOf(l) : l), result[1]);
  }
  const { leaves, def } = flattenOutput(out, op);
  return {
    interp,
    args: flat,
    leafNodes,
    outLeaves: leaves,
    outDef: def,
    outPrimals: leaves.map((l) => (typeof l === "number" ? l : interp.primalOf(l))),
    aux,
    numbersIn: flat.every((a) => a.wasNumber.every((w) => w)),
  };
}

/** The user-facing output of a recording (numbers in, numbers out for 0-d results). */
export function recordedOutput(rec: Recording): unknown {
  return unflatten(
    rec.outDef,
    rec.outPrimals.map((p) => (typeof p === "number" ? p : outLeaf(p, rec.numbersIn))),
  );
}

/** Pull output cotangents (one per output leaf; null = zero) back to the inputs: per argument, per leaf. */
export function pullback(rec: Recording, cts: readonly (Tensor | null)[]): Tensor[][] {
  const seeds: [Ref, Tensor][] = [];
  rec.outLeaves.forEach((l, i) => {
    const ct = cts[i];
    if (ct === null || ct === undefined || typeof l === "number") return;
    const ref = rec.interp.refOf(l);
    if (ref !== null) seeds.push([ref, ct]);
  });
  // The recorded nodes are already in topological order: no sort needed.
  const adj = backwardPass(seeds, { order: rec.interp.nodes });
  return rec.leafNodes.map((nodes) =>
    nodes.map((n) => adj.get(n)?.[0] ?? zeros(n.outs[0]!.shape, { dtype: n.outs[0]!.dtype })),
  );
}

/** Push input tangents (per argument, per leaf; null = zero) forward along the tape. */
export function pushforward(rec: Recording, tangents: readonly (readonly (Tensor | null)[])[]): Tensor[] {
  const tan = new Map<Node, Tangent[]>();
  rec.leafNodes.forEach((nodes, a) =>
    nodes.forEach((n, j) => {
      const t = tangents[a]?.[j];
      if (t !== null && t !== undefined) tan.set(n, [t]);
    }),
  );
  for (const node of rec.interp.nodes) {
    let any = false;
    const ts = node.parents.map((p, i) => {
      const t = p === null ? undefined : tan.get(p.node)?.[p.index];
      if (t !== undefined && !isZero(t)) any = true;
      return t ?? Zero.like(node.inputs[i]!);
    });
    if (any) tan.set(node, node.prim!.jvp(node.inputs as Tensor[], ts, node.outs as Tensor[], node.params));
  }
  return rec.outLeaves.map((l) => {
    const shape = typeof l === "number" ? [] : l.shape;
    const dtype = typeof l === "number" ? "float64" : l.dtype;
    const ref = typeof l === "number" ? null : rec.interp.refOf(l);
    const t = ref === null ? undefined : tan.get(ref.node)?.[ref.index];
    return t === undefined || isZero(t) ? zeros(shape, { dtype }) : t;
  });
}

/** Convert a user cotangent/tangent leaf to a tensor of the expected shape and dtype. */
export function matchLeaf(
  v: unknown,
  like: { shape: readonly number[]; dtype: Tensor["dtype"] },
  what: string,
): Tensor {
  let t: Tensor;
  if (typeof v === "number") t = zeros(like.shape, { dtype: like.dtype }).add(v);
  else if (v instanceof Tensor) t = v;
  else throw new TransformError(`${what} must be a Tensor or a number`);
  if (!shapeEq(t.shape, like.shape))
    throw new ShapeError(`${what} has shape ${fmtShape(t.shape)}, expected ${fmtShape(like.shape)}`);
  return t.dtype === like.dtype ? t : t.astype(like.dtype);
}

export interface GradOptions {
  /** Which argument(s) to differentiate (default 0; an array gives an array of gradients). */
  argnums?: number | readonly number[];
  /** `f` returns `[output, aux]`; aux is passed through undifferentiated. */
  hasAux?: boolean;
}

function checkScalarOutput(rec: Recording, op: string): Tensor | number {
  if (rec.outLeaves.length !== 1 || rec.outDef.kind !== "leaf")
    throw new TransformError(
      `${op}: the function must return a scalar, got a pytree of ${rec.outLeaves.length} leaves`,
    );
  const out = rec.outLeaves[0]!;
  if (typeof out === "number") return out;
  if (out.size !== 1)
    throw new TransformError(
      `${op}: the function must return a scalar (a size-1 tensor), got shape ${fmtShape(out.shape)}; use vjp or jacrev for non-scalar outputs`,
    );
  if (!isFloat(out.dtype))
    throw new DTypeError(`${op}: the function must return a floating-point scalar, got ${out.dtype}`);
  return out;
}

/** @internal The gradient machinery behind grad/valueAndGrad/hvp, reporting errors as `op`. */
export function gradCore(
  f: (...args: never[]) => unknown,
  opts: GradOptions,
  args: unknown[],
  op: string,
): { value: unknown; grads: unknown; aux: unknown } {
  const an = parseArgnums(opts.argnums, args.length, op);
  const rec = record(f, args, an.list, opts.hasAux ?? false, op);
  const out = checkScalarOutput(rec, op);
  const seed = typeof out === "number" ? null : ones(out.shape, { dtype: out.dtype });
  const gs = pullback(rec, [seed]).map((leaves, k) => rebuildArg(rec.args[k]!, leaves));
  return { value: recordedOutput(rec), grads: an.single ? gs[0] : gs, aux: rec.aux };
}

/**
 * The gradient of a scalar function: `grad(f)(...args)` returns ∂f/∂args[argnums] with the
 * structure of that argument (a number for a number). `argnums` as an array gives an array.
 * @example
 * ad.grad((x) => ad.mul(x, x))(3); // 6
 * ad.grad((p) => p.w.mul(p.b).sum())({ w: ad.tensor([1, 2]), b: ad.tensor([3, 4]) }); // { w: [3, 4], b: [1, 2] }
 */
export function grad<A extends unknown[], Aux>(
  f: (...args: A) => [unknown, Aux],
  opts: { argnums?: 0; hasAux: true },
): (...args: A) => [A[0], Aux];
export function grad<A extends unknown[], const N extends readonly number[], Aux>(
  f: (...args: A) => [unknown, Aux],
  opts: { argnums: N; hasAux: true },
): (...args: A) => [Picked<A, N>, Aux];
export function grad<A extends unknown[], N extends number, Aux>(
  f: (...args: A) => [unknown, Aux],
  opts: { argnums: N; hasAux: true },
): (...args: A) => [A[N], Aux];
export function grad<A extends unknown[]>(
  f: (...args: A) => unknown,
  opts?: { argnums?: 0; hasAux?: false },
): (...args: A) => A[0];
export function grad<A extends unknown[], const N extends readonly number[]>(
  f: (...args: A) => unknown,
  opts: { argnums: N; hasAux?: false },
): (...args: A) => Picked<A, N>;
export function grad<A extends unknown[], N extends number>(
  f: (...args: A) => unknown,
  opts: { argnums: N; hasAux?: false },
): (...args: A) => A[N];
export function grad<A extends unknown[]>(
  f: (...args: A) => unknown,
  opts?: GradOptions,
): (...args: A) => unknown;
export function grad<A extends unknown[]>(
  f: (...args: A) => unknown,
  opts: GradOptions = {},
): (...args: A) => unknown {
  checkFunction(f, "grad");
  return (...args: A) => {
    const r = gradCore(f as (...a: never[]) => unknown, opts, args, "grad");
    return opts.hasAux ? [r.grads, r.aux] : r.grads;
  };
}

/**
 * `[value, gradient]` in one pass (with `hasAux`: `[[value, aux], gradient]`).
 * @example
 * const [v, g] = ad.valueAndGrad((x) => ad.mul(x, x))(3); // v = 9, g = 6
 */
export function valueAndGrad<A extends unknown[], R, Aux>(
  f: (...args: A) => [R, Aux],
  opts: { argnums?: 0; hasAux: true },
): (...args: A) => [[ScalarOut<R, A[0]>, Aux], A[0]];
export function valueAndGrad<A extends unknown[], R>(
  f: (...args: A) => R,
  opts?: { argnums?: 0; hasAux?: false },
): (...args: A) => [ScalarOut<R, A[0]>, A[0]];
export function valueAndGrad<A extends unknown[], R, const N extends readonly number[]>(
  f: (...args: A) => R,
  opts: { argnums: N; hasAux?: false },
): (...args: A) => [ScalarOut<R, A[N[0] & number]>, Picked<A, N>];
export function valueAndGrad<A extends unknown[], R, N extends number>(
  f: (...args: A) => R,
  opts: { argnums: N; hasAux?: false },
): (...args: A) => [ScalarOut<R, A[N]>, A[N]];
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => unknown,
  opts?: GradOptions,
): (...args: A) => [unknown, unknown];
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => unknown,
  opts: GradOptions = {},
): (...args: A) => [unknown, unknown] {
  checkFunction(f, "valueAndGrad");
  return (...args: A) => {
    const r = gradCore(f as (...a: never[]) => unknown, opts, args, "valueAndGrad");
    return opts.hasAux ? [[r.value, r.aux], r.grads] : [r.value, r.grads];
  };
}

/**
 * Reverse-mode vector-Jacobian product: `[f(...primals), vjpFn]`, where `vjpFn(cotangent)`
 * returns one cotangent per primal (same structures). `vjpFn` may be called many times.
 * @example
 * const [y, back] = ad.vjp((x) => ad.mul(x, 2), ad.tensor([1, 2]));
 * back(ad.tensor([1, 1]))[0].toArray(); // [2, 2]
 */
export function vjp<A extends unknown[], R>(
  f: (...args: A) => R,
  ...primals: A
): [LeafOut<R, A[0]>, (cotangent: unknown) => A] {
  checkFunction(f, "vjp");
  const rec = record(
    f as (...a: never[]) => unknown,
    primals,
    primals.map((_, i) => i),
    false,
    "vjp",
  );
  const vjpFn = (cotangent: unknown): A => {
    const [cl, cd] = flatten(cotangent);
    if (!treeDefEqual(cd, rec.outDef))
      throw new TransformError(
        `vjp: the cotangent has structure ${showTreeDef(cd)} but the output has ${showTreeDef(rec.outDef)}`,
      );
    const cts = rec.outLeaves.map((l, i) =>
      matchLeaf(
        cl[i],
        typeof l === "number" ? { shape: [], dtype: "float64" } : l,
        `vjp: cotangent leaf ${i}`,
      ),
    );
    return pullback(rec, cts).map((leaves, k) => rebuildArg(rec.args[k]!, leaves)) as A;
  };
  return [recordedOutput(rec) as LeafOut<R, A[0]>, vjpFn];
}

/**
 * `[f(...primals), jvpFn]` where `jvpFn(...tangents)` is the linear map t ↦ J·t. The function
 * is evaluated once; each `jvpFn` call sweeps the recorded tape forward with the JVP rules.
 * @example
 * const [y, lin] = ad.linearize((x) => ad.sin(x), 0);
 * lin(2); // 2
 */
export function linearize<A extends unknown[], R>(
  f: (...args: A) => R,
  ...primals: A
): [LeafOut<R, A[0]>, (...tangents: A) => LeafOut<R, A[0]>] {
  checkFunction(f, "linearize");
  const rec = record(
    f as (...a: never[]) => unknown,
    primals,
    primals.map((_, i) => i),
    false,
    "linearize",
  );
  const jvpFn = (...tangents: A): LeafOut<R, A[0]> => {
    if (tangents.length !== rec.args.length)
      throw new TransformError(`linearize: expected ${rec.args.length} tangent(s), got ${tangents.length}`);
    const ts = rec.args.map((a, k) => {
      const [tl, td] = flatten(tangents[k]);
      if (!treeDefEqual(td, a.def))
        throw new TransformError(
          `linearize: tangent ${k} has structure ${showTreeDef(td)}, expected ${showTreeDef(a.def)}`,
        );
      return a.leaves.map((l, j) => matchLeaf(tl[j], l, `linearize: tangent ${k} (leaf ${j})`));
    });
    const outs = pushforward(rec, ts);
    return unflatten(
      rec.outDef,
      outs.map((t) => outLeaf(t, rec.numbersIn)),
    );
  };
  return [recordedOutput(rec) as LeafOut<R, A[0]>, jvpFn];
}
