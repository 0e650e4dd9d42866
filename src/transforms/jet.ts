/**
 * @file Taylor mode: the jet interpreter and `jet`. A tracer of a (fresh, per call) jet
 * interpreter carries a primal and the K derivative coefficients of its path through t = 0;
 * each primitive's `jet` rule (in its own definition, written with the recurrences of
 * `src/primitives/series.ts`) maps the input coefficients to the output ones in one pass.
 * Ownership is by identity, as in every transform, so jets nest with each other and with
 * `grad`, `jvp`, `vmap` and `jit`. A primitive whose inputs all have zero series runs one level
 * down untouched, and an output with zero series is not lifted (symbolic zeros).
 *
 * Convention (JAX's `jax.experimental.jet`): for the input path
 * x(t) = x_0 + x_1 t + x_2 t²/2! + … + x_K t^K/K!, `series[i] = [x_1, …, x_K]` holds derivative
 * coefficients x_k = dᵏx/dtᵏ(0), and the output series holds dᵏ/dtᵏ f(x(t)) at t = 0. With
 * series `[1, 0, 0, …]` for a scalar input, the k-th output term is f⁽ᵏ⁾(x_0).
 *
 * A primitive without a `jet` rule gets `jetViaJvp`: its coefficients by K nested JVPs of the
 * primitive along the polynomial path (exact, but its cost grows like 2^K).
 */

import { bind, currentInterpreter, type Interpreter, withInterpreter } from "../core/interpreter.js";
import type { Primitive } from "../core/primitive.js";
import { Tensor, type TraceState } from "../core/tensor.js";
import { isZero } from "../core/zero.js";
import { isFloat } from "../dtype.js";
import { DTypeError, ShapeError, TransformError } from "../errors.js";
import { scalarOf } from "../ops/convert.js";
import { add, astype, mul, zeros } from "../ops/index.js";
import type { Series } from "../primitives/series.js";
import { fmtShape, shapeEq } from "../shape.js";
import { flatten, showTreeDef, treeDefEqual, unflatten } from "../tree.js";
import { checkFunction, flattenOutput, outLeaf } from "./args.js";
import { JvpInterpreter } from "./jvp.js";
import type { JvpOut } from "./types.js";

interface JetState extends TraceState {
  readonly primal: Tensor;
  /** The K derivative coefficients `[x_1, …, x_K]`, each shaped and typed like the primal. */
  readonly series: readonly Tensor[];
}

/**
 * The interpreter of one `jet` call, truncating every series at `order` terms.
 * @example
 * const interp = new JetInterpreter(currentInterpreter(), 2);
 * const x = interp.lift(ad.scalar(0.5), [ad.scalar(1), ad.scalar(0)]);
 * const y = withInterpreter(interp, () => ad.exp(x));
 * interp.seriesOf(y); // [e^0.5, e^0.5]
 */
export class JetInterpreter implements Interpreter {
  constructor(
    readonly parent: Interpreter,
    readonly order: number,
  ) {}

  /** Wrap a primal and its derivative coefficients as a tracer of this interpreter. */
  lift(primal: Tensor, series: readonly Tensor[]): Tensor {
    const state: JetState = { owner: this, primal, series };
    return new Tensor(primal.shape, primal.dtype, primal.weakType, null, null, state);
  }

  primalOf(t: Tensor): Tensor {
    const s = t._trace;
    return s !== null && s.owner === this ? (s as JetState).primal : t;
  }

  /** The coefficients this interpreter sees for `t` (null for anything it does not own). */
  seriesOf(t: Tensor): Series {
    const s = t._trace;
    return s !== null && s.owner === this ? [...(s as JetState).series] : null;
  }

  process<P>(prim: Primitive<P>, args: readonly Tensor[], params: P): Tensor[] {
    let any = false;
    const primals: Tensor[] = new Array(args.length);
    const series: Series[] = new Array(args.length);
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      const s = a._trace;
      if (s !== null && s.owner === this) {
        primals[i] = (s as JetState).primal;
        series[i] = [...(s as JetState).series];
        any = true;
      } else {
        primals[i] = a;
        series[i] = null;
      }
    }
    return withInterpreter(this.parent, () => {
      const outs = bind(prim, primals, params);
      if (!any) return outs;
      const rule = prim.jet;
      const souts =
        rule !== undefined ? rule(primals, series, outs, params) : jetViaJvp(prim, primals, series, params);
      return outs.map((o, i) => {
        const s = souts[i];
        if (s === null || s === undefined || !isFloat(o.dtype)) return o;
        return this.lift(o, checkSeries(prim.name, s, o, this.order));
      });
    });
  }

  concrete(t: Tensor): Tensor {
    return (t._trace as JetState).primal;
  }
}

/** A rule's output series, checked against its output (a rule bug is an internal error). */
function checkSeries(op: string, s: readonly Tensor[], out: Tensor, K: number): Tensor[] {
  if (s.length !== K)
    throw new Error(
      `adjoint internal error: the jet rule of ${op} returned ${s.length} terms, expected ${K}`,
    );
  return s.map((t) => {
    if (!shapeEq(t.shape, out.shape))
      throw new Error(
        `adjoint internal error: the jet rule of ${op} returned a term of shape ${fmtShape(t.shape)} for an output of shape ${fmtShape(out.shape)}`,
      );
    return t.dtype === out.dtype ? t : astype(t, out.dtype);
  });
}

/**
 * The generic jet rule, for primitives without their own (higher-order primitives may use it
 * too): the derivatives of g(t) = prim(x(t)) at t = 0 along the polynomial input path
 * x(t) = x_0 + Σ_k x_k t^k/k!, by K nested forward-mode passes (each one differentiates the
 * previous one with tangent 1 for t). It uses the primitive's JVP rule and whatever its JVP rule
 * calls, so it agrees with nested `jvp` exactly; its cost grows like 2^K.
 * @example
 * jetViaJvp(expP, [ad.scalar(0)], [[ad.scalar(1), ad.scalar(0)]], {}); // [[1, 1]]
 */
export function jetViaJvp<P>(
  prim: Primitive<P>,
  primals: readonly Tensor[],
  series: readonly Series[],
  params: P,
): Series[] {
  let K = 0;
  for (const s of series) if (s !== null) K = s.length;
  // x(t) by Horner: x_0 + t (x_1 + t/2 (x_2 + t/3 (… + t/K x_K)))
  const path = (t: Tensor): Tensor[] =>
    primals.map((x, i) => {
      const s = series[i];
      if (s === null || s === undefined || s.length === 0) return x;
      let acc = s[K - 1]!;
      for (let k = K - 1; k >= 1; k--) acc = add(s[k - 1]!, mul(mul(t, 1 / (k + 1)), acc));
      return add(x, mul(t, acc));
    });
  // F_m(t) = [g(t), g'(t), …, g⁽ᵐ⁾(t)] (outputs concatenated): the primal part of one more JVP
  // of F_{m−1} gives g, its tangents give g', …, g⁽ᵐ⁾.
  let F = (t: Tensor): Tensor[] => bind(prim, path(t), params);
  for (let m = 1; m <= K; m++) {
    const G = F;
    F = (t: Tensor): Tensor[] => {
      const interp = new JvpInterpreter(currentInterpreter());
      const outs = withInterpreter(interp, () => G(interp.lift(t, scalarOf(1, t.dtype, false))));
      const n = outs.length / m;
      return [
        ...outs.slice(0, n).map((o) => interp.primalOf(o)),
        ...outs.map((o) => {
          const d = interp.tangentOf(o);
          return isZero(d) ? zeros(d.shape, { dtype: d.dtype }) : d;
        }),
      ];
    };
  }
  const all = F(scalarOf(0, "float64", true));
  const n = all.length / (K + 1);
  const res: Series[] = [];
  for (let j = 0; j < n; j++) {
    if (!isFloat(all[j]!.dtype)) {
      res.push(null);
      continue;
    }
    const terms: Tensor[] = [];
    for (let k = 1; k <= K; k++) terms.push(all[k * n + j]!);
    res.push(terms);
  }
  return res;
}

/**
 * @internal Taylor mode on a flat function (for the rules of higher-order primitives): its
 * outputs and their series (null = zero). Inputs with a null series are constants.
 * @example
 * const [outs, series] = jetFlat(([x]) => [ad.sin(x!)], [ad.scalar(0)], [[ad.scalar(1), ad.scalar(0)]]);
 * // outs = [0], series = [[cos 0, −sin 0]] = [[1, 0]]
 */
export function jetFlat(
  f: (xs: Tensor[]) => Tensor[],
  primals: readonly Tensor[],
  series: readonly Series[],
): [Tensor[], Series[]] {
  let K = 0;
  for (const s of series) if (s !== null) K = s.length;
  const interp = new JetInterpreter(currentInterpreter(), K);
  const args = primals.map((p, i) => {
    const s = series[i];
    return s === null || s === undefined || K === 0 ? p : interp.lift(p, s);
  });
  const outs = withInterpreter(interp, () => f(args));
  return [outs.map((o) => interp.primalOf(o)), outs.map((o) => interp.seriesOf(o))];
}

/**
 * Taylor mode (JAX's `jet`): the output of `f` and its derivative coefficients along a
 * polynomial input path, to any order K, in one forward pass.
 *
 * `primals` has one pytree per argument of `f`; `series[i]` is the list `[x_1, …, x_K]` of the
 * i-th argument's derivative coefficients (each a pytree like `primals[i]`; the same K for every
 * argument), for the path x(t) = x_0 + x_1 t + x_2 t²/2! + … . Returns `[f(x_0), [y_1, …, y_K]]`
 * with y_k = dᵏ/dtᵏ f(x(t)) at t = 0, each shaped like the output. Number primals give numbers.
 * @example
 * const [y, [d1, d2, d3]] = ad.jet((x: number) => ad.sin(x), [0], [[1, 0, 0]]);
 * // y = 0, d1 = cos 0 = 1, d2 = −sin 0 = 0, d3 = −cos 0 = −1
 */
export function jet<Out = unknown, const P extends readonly unknown[] = readonly unknown[]>(
  f: (...args: never[]) => Out,
  primals: P,
  series: readonly (readonly unknown[])[],
): [JvpOut<Out, P>, JvpOut<Out, P>[]] {
  return jetImpl(f, primals, series) as [JvpOut<Out, P>, JvpOut<Out, P>[]];
}

function jetImpl(
  f: (...args: never[]) => unknown,
  primals: readonly unknown[],
  series: readonly (readonly unknown[])[],
): [unknown, unknown[]] {
  checkFunction(f, "jet");
  if (!Array.isArray(primals) || !Array.isArray(series))
    throw new TransformError("jet: primals and series must be arrays (one entry per argument of f)");
  if (primals.length !== series.length)
    throw new TransformError(`jet: got ${primals.length} primals but ${series.length} series`);
  series.forEach((s, i) => {
    if (!Array.isArray(s))
      throw new TransformError(
        `jet: series ${i} must be an array of terms [x_1, ..., x_K] (each like primal ${i}), got ${typeof s}`,
      );
  });
  const K = series.length > 0 ? series[0]!.length : 0;
  series.forEach((s, i) => {
    if (s.length !== K)
      throw new TransformError(
        `jet: every series must have the same number of terms; series 0 has ${K} but series ${i} has ${s.length}`,
      );
  });
  const interp = new JetInterpreter(currentInterpreter(), K);
  const args = primals.map((p, i) => liftArg(interp, p, series[i]!, i));
  const out = withInterpreter(interp, () => (f as (...a: unknown[]) => unknown)(...args));
  const { leaves, def } = flattenOutput(out, "jet");
  // Numbers in, numbers out: when every primal leaf is a JS number, 0-d results are numbers.
  const numbersIn = primals.every((p) => flatten(p)[0].every((l) => typeof l === "number"));
  const ps: unknown[] = [];
  const terms: unknown[][] = Array.from({ length: K }, () => []);
  for (const l of leaves) {
    if (typeof l === "number") {
      ps.push(l);
      for (const t of terms) t.push(0);
      continue;
    }
    const p = interp.primalOf(l);
    const s = interp.seriesOf(l);
    ps.push(outLeaf(p, numbersIn));
    terms.forEach((t, k) => {
      t.push(outLeaf(s === null ? zeros(p.shape, { dtype: p.dtype }) : s[k]!, numbersIn));
    });
  }
  return [unflatten(def, ps), terms.map((t) => unflatten(def, t))];
}

/** Pair one argument pytree with its K terms (each a pytree like it) as tracers of `interp`. */
function liftArg(interp: JetInterpreter, primal: unknown, terms: readonly unknown[], i: number): unknown {
  const [pl, pd] = flatten(primal);
  const termLeaves = terms.map((t, k) => {
    const [tl, td] = flatten(t);
    if (!treeDefEqual(pd, td))
      throw new TransformError(
        `jet: term ${k} of series ${i} has structure ${showTreeDef(td)} but primal ${i} has structure ${showTreeDef(pd)}`,
      );
    return tl;
  });
  const K = terms.length;
  const lifted = pl.map((p, j) => {
    if (typeof p !== "number" && !(p instanceof Tensor)) return p;
    const pt = typeof p === "number" ? scalarOf(p, "float64", true) : p;
    if (K === 0) return pt;
    if (!isFloat(pt.dtype))
      throw new DTypeError(
        `jet: primal ${i} (leaf ${j}) has dtype ${pt.dtype}; only float32/float64 primals can have Taylor series`,
      );
    const s = termLeaves.map((tl, k) => {
      const t = tl[j];
      let tt: Tensor;
      if (typeof t === "number") tt = scalarOf(t, pt.dtype, false);
      else if (t instanceof Tensor) tt = t;
      else throw new TransformError(`jet: term ${k} of series ${i} (leaf ${j}) must be a Tensor or a number`);
      if (!shapeEq(tt.shape, pt.shape))
        throw new ShapeError(
          `jet: term ${k} of series ${i} has shape ${fmtShape(tt.shape)} but its primal has shape ${fmtShape(pt.shape)}`,
        );
      return tt.dtype === pt.dtype ? tt : tt.astype(pt.dtype);
    });
    return interp.lift(pt, s);
  });
  return unflatten(pd, lifted);
}
