/**
 * @file Closure conversion for the implicit-differentiation rules (JAX's `closure_convert`).
 *
 * `fixedPoint`, `customLinearSolve`, `customRoot`, the Krylov solvers and `odeint({adjoint})` are
 * custom-VJP functions: their derivative rules run one interpreter level below the transforms that
 * call them, so a value the user's function merely *closes over* (`theta` in
 * `grad(theta => cg(v => ad.mul(theta, v), b).x)`) would be invisible to those transforms. Here the
 * user's function is staged once on abstract arguments; every captured value an enclosing
 * transform traces (or an eager tensor that requires grad) shows up as a literal of the staged
 * Program and becomes an explicit input, a "const". The rules then receive the consts as
 * ordinary arguments (so they get cotangents) and call the function as the Program with the
 * consts passed in.
 *
 * When the function captures nothing traced, the original function is used unchanged. When it
 * cannot be staged (it reads a value: a JS `if` on a tensor, `item()`), it is also used unchanged;
 * closures over traced values then fail with the custom-rule error that says to pass them as
 * arguments.
 */

import { withInterpreter } from "../core/interpreter.js";
import type { Aval } from "../core/primitive.js";
import { type Atom, Lit, Program, type Var } from "../core/program.js";
import { Tensor } from "../core/tensor.js";
import { AdError, TransformError } from "../errors.js";
import { describe } from "../ops/convert.js";
import { StagingInterpreter, toInputTensor } from "../transforms/stage.js";
import { flatten, type TreeDef, unflatten } from "../tree.js";

/** The result of `closureConvert`. */
export interface Converted {
  /** Captured values that an enclosing transform traces (or that require grad), in a fixed order. */
  readonly consts: Tensor[];
  /**
   * Call the function with these consts in place of the captured ones. `args` must have the
   * structure (and the same static leaves) as the arguments it was converted with.
   */
  readonly call: (consts: readonly Tensor[], args: readonly unknown[]) => unknown;
  /** The output structure and avals seen while staging, or null when staging was not possible. */
  readonly out: { readonly def: TreeDef; readonly avals: readonly Aval[] } | null;
}

const avalOf = (a: Aval): Aval => ({ shape: a.shape, dtype: a.dtype, weakType: a.weakType });

/** Whether a literal of a staged program is a value the conversion must turn into an input. */
function isCaptured(t: Tensor): boolean {
  return t._trace !== null || t._requiresGrad;
}

/**
 * Stage `fn(...args)` once and turn the traced values it captures into explicit inputs.
 * @internal
 */
export function closureConvert(
  fn: (...args: never[]) => unknown,
  args: readonly unknown[],
  op: string,
): Converted {
  const call0 = fn as (...a: unknown[]) => unknown;
  const raw = (out: Converted["out"]): Converted => ({
    consts: [],
    call: (_c, a) => call0(...a),
    out,
  });
  const interp = new StagingInterpreter(op);
  const [leaves, inDef] = flatten(args);
  const dynamic: boolean[] = [];
  const inputs: Var[] = [];
  const lifted = leaves.map((l) => {
    const t = toInputTensor(l);
    dynamic.push(t !== null);
    if (t === null) return l;
    const v = interp.newVar(t);
    inputs.push(v);
    return interp.tracer(v);
  });
  let result: unknown;
  try {
    result = withInterpreter(interp, () => call0(...unflatten<unknown[]>(inDef, lifted)));
  } catch (e) {
    // A function that reads values cannot be staged: use it as it is.
    if (e instanceof AdError) return raw(null);
    throw e;
  }
  const [outLeaves, outDef] = flatten(result);
  const outAtoms: Atom[] = [];
  for (const [i, l] of outLeaves.entries()) {
    const t = toInputTensor(l);
    if (t === null)
      throw new TransformError(
        `${op}: the function must return Tensors or numbers (or pytrees of them); output leaf ${i} is ${describe(l)}`,
      );
    outAtoms.push(interp.atom(t));
  }
  const out = { def: outDef, avals: outAtoms.map((a) => avalOf(a.aval)) };
  const constVars = new Map<Tensor, Var>();
  const consts: Tensor[] = [];
  const close = (a: Atom): Atom => {
    if (!(a instanceof Lit) || !isCaptured(a.value)) return a;
    let v = constVars.get(a.value);
    if (v === undefined) {
      v = interp.newVar(a.value);
      constVars.set(a.value, v);
      consts.push(a.value);
    }
    return v;
  };
  const eqns = interp.eqns.map((e) => ({
    prim: e.prim,
    params: e.params,
    inputs: e.inputs.map(close),
    outs: e.outs,
  }));
  const outputs = outAtoms.map(close);
  if (consts.length === 0) return raw(out);
  const program = new Program([...consts.map((c) => constVars.get(c)!), ...inputs], eqns, outputs);
  return {
    consts,
    out,
    call: (cs, a) => {
      const [ls] = flatten(a);
      if (ls.length !== dynamic.length)
        throw new Error(`adjoint internal error: ${op} called a converted function with another structure`);
      const ins: Tensor[] = [];
      ls.forEach((l, i) => {
        if (dynamic[i]) ins.push(l instanceof Tensor ? l : toInputTensor(l)!);
      });
      return unflatten(outDef, program.evaluate([...cs, ...ins]));
    },
  };
}
