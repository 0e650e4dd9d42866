/**
 * @file Forward mode: the JVP interpreter and `jvp`. Each call gets a fresh interpreter; a
 * tensor carries a tangent only for the interpreter that owns it (identity, not levels), so
 * nested derivatives never confuse their perturbations. Primitives whose inputs all have zero
 * tangents run one level down untouched (symbolic zeros).
 */

import { inTangent, isAnomalyEnabled } from "../core/anomaly-mode.js";
import { bind, currentInterpreter, type Interpreter, withInterpreter } from "../core/interpreter.js";
import type { Primitive, Tangent } from "../core/primitive.js";
import { Tensor, type TraceState } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { isFloat } from "../dtype.js";
import { DTypeError, ShapeError, TransformError } from "../errors.js";
import { scalarOf } from "../ops/convert.js";
import { zeros } from "../ops/index.js";
import { fmtShape, shapeEq } from "../shape.js";
import { flatten, showTreeDef, treeDefEqual, unflatten } from "../tree.js";
import { checkFunction, flattenOutput, outLeaf } from "./args.js";
import type { JvpOut } from "./types.js";

interface JvpState extends TraceState {
  readonly primal: Tensor;
  readonly tangent: Tensor;
}

export class JvpInterpreter implements Interpreter {
  constructor(readonly parent: Interpreter) {}

  /** Wrap a primal and its tangent as a tracer of this interpreter. */
  lift(primal: Tensor, tangent: Tensor): Tensor {
    const state: JvpState = { owner: this, primal, tangent };
    return new Tensor(primal.shape, primal.dtype, primal.weakType, null, null, state);
  }

  /** The tangent this interpreter sees for `t` (a Zero for anything it does not own). */
  tangentOf(t: Tensor): Tangent {
    const s = t._trace;
    return s !== null && s.owner === this ? (s as JvpState).tangent : Zero.like(t);
  }

  primalOf(t: Tensor): Tensor {
    const s = t._trace;
    return s !== null && s.owner === this ? (s as JvpState).primal : t;
  }

  process<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor[] {
    let any = false;
    const primals: Tensor[] = new Array(args.length);
    const tangents: Tangent[] = new Array(args.length);
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      const s = a._trace;
      if (s !== null && s.owner === this) {
        primals[i] = (s as JvpState).primal;
        tangents[i] = (s as JvpState).tangent;
        any = true;
      } else {
        primals[i] = a;
        tangents[i] = Zero.like(a);
      }
    }
    return withInterpreter(this.parent, () => {
      const outs = bind(prim, primals, params);
      if (!any) return outs;
      // Under anomaly detection a NaN/Inf from the rule names this primitive and the user's line.
      const touts = isAnomalyEnabled()
        ? inTangent(prim.name, () => prim.jvp(primals, tangents, outs, params))
        : prim.jvp(primals, tangents, outs, params);
      return outs.map((o, i) => {
        const t = touts[i];
        return t === undefined || isZero(t) || !isFloat(o.dtype) ? o : this.lift(o, t);
      });
    });
  }

  concrete(t: Tensor): Tensor {
    return (t._trace as JvpState).primal;
  }
}

/**
 * Forward-mode Jacobian-vector product in one pass: `[f(primals), J·tangents]`.
 * `primals` and `tangents` are arrays with one pytree per argument of `f`, of equal structure
 * and shapes. Number primals give number results.
 * @example
 * const [y, dy] = ad.jvp((x) => ad.sin(x), [0], [1]); // y = 0, dy = 1
 */
export function jvp<Out = unknown, const P extends readonly unknown[] = readonly unknown[]>(
  f: (...args: never[]) => Out,
  primals: P,
  tangents: readonly unknown[],
): [JvpOut<Out, P>, JvpOut<Out, P>] {
  return jvpImpl(f, primals, tangents, "jvp") as [JvpOut<Out, P>, JvpOut<Out, P>];
}

/** @internal `jvp` reporting errors as the transform `op` (hvp is built on it). */
export function jvpImpl(
  f: (...args: never[]) => unknown,
  primals: readonly unknown[],
  tangents: readonly unknown[],
  op: string,
): [unknown, unknown] {
  checkFunction(f, op);
  if (!Array.isArray(primals) || !Array.isArray(tangents))
    throw new TransformError(`${op}: primals and tangents must be arrays (one entry per argument of f)`);
  if (primals.length !== tangents.length)
    throw new TransformError(`${op}: got ${primals.length} primals but ${tangents.length} tangents`);
  const interp = new JvpInterpreter(currentInterpreter());
  const args = primals.map((p, i) => liftArg(interp, p, tangents[i], i, op));
  const out = withInterpreter(interp, () => (f as (...a: unknown[]) => unknown)(...args));
  const { leaves, def } = flattenOutput(out, op);
  // Numbers in, numbers out: when every primal leaf is a JS number, 0-d results are numbers.
  const numbersIn = primals.every((p) => flatten(p)[0].every((l) => typeof l === "number"));
  const ps: unknown[] = [];
  const ts: unknown[] = [];
  for (const l of leaves) {
    if (typeof l === "number") {
      ps.push(l);
      ts.push(0);
      continue;
    }
    const p = interp.primalOf(l);
    const t = interp.tangentOf(l);
    ps.push(outLeaf(p, numbersIn));
    ts.push(outLeaf(isZero(t) ? zeros(t.shape, { dtype: t.dtype }) : t, numbersIn));
  }
  return [unflatten(def, ps), unflatten(def, ts)];
}

/** Pair one argument pytree with its tangent pytree as tracers of `interp`. */
function liftArg(interp: JvpInterpreter, primal: unknown, tangent: unknown, i: number, op: string): unknown {
  const [pl, pd] = flatten(primal);
  const [tl, td] = flatten(tangent);
  if (!treeDefEqual(pd, td))
    throw new TransformError(
      `${op}: tangent ${i} has structure ${showTreeDef(td)} but primal ${i} has structure ${showTreeDef(pd)}`,
    );
  const lifted = pl.map((p, j) => {
    const t = tl[j];
    if (typeof p !== "number" && !(p instanceof Tensor)) return p;
    const pt = typeof p === "number" ? scalarOf(p, "float64", true) : p;
    if (!isFloat(pt.dtype))
      throw new DTypeError(
        `${op}: primal ${i} (leaf ${j}) has dtype ${pt.dtype}; only float32/float64 primals can have tangents`,
      );
    let tt: Tensor;
    if (typeof t === "number") tt = scalarOf(t, pt.dtype, false);
    else if (t instanceof Tensor) tt = t;
    else throw new TransformError(`${op}: tangent ${i} (leaf ${j}) must be a Tensor or a number`);
    if (!shapeEq(tt.shape, pt.shape))
      throw new ShapeError(
        `${op}: tangent ${i} has shape ${fmtShape(tt.shape)} but its primal has shape ${fmtShape(pt.shape)}`,
      );
    if (tt.dtype !== pt.dtype) tt = tt.astype(pt.dtype);
    return interp.lift(pt, tt);
  });
  return unflatten(pd, lifted);
}
