/**
 * @file Control-flow primitives: `cond`, `while` and `scan`. Each carries its branches or body
 * as sub-Programs (closed: values captured from outer transforms are explicit inputs, so every
 * transform sees them). At the bottom level `evaluate` runs the sub-programs with library ops
 * (eager autograd records them as usual). The derivative and batching rules are written with the
 * library's own control flow (`cond`, `scan`, `whileLoop`), `jvp`, `vjp` and `vmap` applied to
 * `Program.evaluate`, so they differentiate again, batch and stage under `jit` like any rule.
 * Taylor mode likewise runs `jet` on the sub-programs: a cond of jets, and loops whose carries
 * hold their K series terms next to their values.
 */

import { bind, evalInterpreter, withInterpreter } from "../core/interpreter.js";
import { type Aval, definePrimitive, type Primitive, type Tangent } from "../core/primitive.js";
import type { Program } from "../core/program.js";
import type { Tensor } from "../core/tensor.js";
import { isZero, Zero } from "../core/zero.js";
import { isFloat } from "../dtype.js";
import { ShapeError, TransformError } from "../errors.js";
import { add, astype, max, reshape, slice, stack, where, zeros } from "../ops/index.js";
import { fmtShape, shapeEq, sizeOf } from "../shape.js";
import {
  batchFlat,
  condFlat,
  jvpFlat,
  nonzeroOutputs,
  readPred,
  scanFlat,
  vjpFlat,
  whileFlat,
} from "../transforms/control.js";
import { jetFlat } from "../transforms/jet.js";
import { batchFirst, batchSize, moveAxis } from "./rules.js";
import { orderOf, type Series } from "./series.js";

/** A one-line summary of a sub-program: its primitives (the first few), for printing params. */
function summary(p: Program): string {
  const names = p.eqns.map((e) => e.prim.name);
  const shown = names.slice(0, 6).join(" ");
  return `{${shown}${names.length > 6 ? ` …+${names.length - 6}` : ""}}`;
}

function internal(name: string): never {
  throw new Error(`adjoint internal error: ${name} runs through evaluate, never impl`);
}

/** Check that the operands of a control-flow equation match what its sub-program takes. */
function checkInputs(op: string, avals: readonly Aval[], want: readonly Aval[], what: string): void {
  if (avals.length !== want.length)
    throw new TransformError(`${op}: ${what} takes ${want.length} operand(s), got ${avals.length}`);
  avals.forEach((a, i) => {
    const w = want[i]!;
    if (!shapeEq(a.shape, w.shape) || a.dtype !== w.dtype)
      throw new ShapeError(
        `${op}: operand ${i} is ${a.dtype}${fmtShape(a.shape)} but ${what} takes ${w.dtype}${fmtShape(w.shape)}`,
      );
  });
}

const avalOf = (a: Aval): Aval => ({ shape: a.shape, dtype: a.dtype, weakType: a.weakType });
const count = (m: readonly boolean[]): number => m.reduce((n, b) => n + (b ? 1 : 0), 0);
const zerosLikeAval = (a: Aval): Tensor => zeros(a.shape, { dtype: a.dtype });
/** Pick the entries of `xs` where `mask` is set. */
const pick = <T>(xs: readonly T[], mask: readonly boolean[]): T[] => xs.filter((_, i) => mask[i]);
/** Spread `vals` (one per set mask entry) over the positions of `mask`; `fill` elsewhere. */
function spread<T, F>(vals: readonly T[], mask: readonly boolean[], fill: F): (T | F)[] {
  let k = 0;
  return mask.map((m) => (m ? vals[k++]! : fill));
}
/** K zero series terms like `a`. */
const zerosK = (a: Aval, K: number): Tensor[] => Array.from({ length: K }, () => zerosLikeAval(a));
/** Cut a flat list of series terms into runs of K (one series per value). */
function chunks(xs: readonly Tensor[], K: number): Tensor[][] {
  const out: Tensor[][] = [];
  for (let i = 0; i < xs.length; i += K) out.push(xs.slice(i, i + K));
  return out;
}
/** The series of the masked values, flattened (K terms each; zeros for a null series). */
function flatSeries(
  ss: readonly Series[],
  mask: readonly boolean[],
  like: (i: number) => Aval,
  K: number,
): Tensor[] {
  return ss.flatMap((s, i) => (mask[i] ? (s ?? zerosK(like(i), K)) : []));
}
/** Inverse of `flatSeries`: one series per mask entry, null where the mask is unset. */
function unflatSeries(flat: readonly Tensor[], mask: readonly boolean[], K: number): Series[] {
  return spread<Tensor[], null>(chunks(flat, K), mask, null);
}

// ---- cond ----------------------------------------------------------------------------------

export interface CondParams {
  /** `[false branch, true branch]`: each maps `(consts..., operands...)` to the outputs. */
  readonly branches: readonly [Program, Program];
}

// cond(p, x) = branches[p](x); d cond = cond(p, d branch_false, d branch_true) (p is discrete)
export const condP = definePrimitive<CondParams>({
  name: "cond",
  saves: "inputs",
  abstractEval(avals, p) {
    const pred = avals[0];
    if (pred === undefined || sizeOf(pred.shape) !== 1)
      throw new ShapeError(
        `cond: the predicate must be a scalar (size 1), got shape ${pred ? fmtShape(pred.shape) : "none"}`,
      );
    const [f, t] = p.branches;
    checkInputs(
      "cond",
      avals.slice(1),
      f.inputs.map((v) => v.aval),
      "the false branch",
    );
    checkInputs(
      "cond",
      avals.slice(1),
      t.inputs.map((v) => v.aval),
      "the true branch",
    );
    return t.outputs.map((a) => avalOf(a.aval));
  },
  impl: () => internal("cond"),
  evaluate(args, p) {
    const branch = p.branches[readPred(args[0]!) ? 1 : 0];
    return withInterpreter(evalInterpreter, () => branch.evaluate(args.slice(1)));
  },
  jvp(primals, tangents, outs, p) {
    const ops = primals.slice(1);
    const tans = tangents.slice(1).map((t) => (isZero(t) ? null : t));
    const fOut = outs.map((o) => isFloat(o.dtype));
    // Each branch's tangents of the float outputs (zeros where the branch gives none).
    const branch = (prog: Program) => (): Tensor[] => {
      const [, touts] = jvpFlat((xs) => prog.evaluate(xs), ops, tans);
      return pick(
        touts.map((t, i) => t ?? zerosLikeAval(outs[i]!)),
        fOut,
      );
    };
    const res = condFlat(primals[0]!, branch(p.branches[1]), branch(p.branches[0]), "cond");
    return spread<Tangent, null>(res, fOut, null).map((t, i) => t ?? Zero.like(outs[i]!));
  },
  // jet: cond(p, jet branch_false, jet branch_true) (p is discrete)
  jet(primals, series, outs, p) {
    const ops = primals.slice(1);
    const ss = series.slice(1);
    const K = orderOf(ss);
    const inMask = ss.map((s) => s !== null);
    const [f, t] = p.branches;
    const nzT = nonzeroOutputs(t, inMask);
    const nzF = nonzeroOutputs(f, inMask);
    const mask = outs.map((o, i) => isFloat(o.dtype) && (nzT[i]! || nzF[i]!));
    if (count(mask) === 0) return outs.map(() => null);
    // Each branch's series of the masked outputs, flattened (zeros where the branch gives none).
    const branch = (prog: Program) => (): Tensor[] => {
      const [, so] = jetFlat((xs) => prog.evaluate(xs), ops, ss);
      return flatSeries(so, mask, (i) => outs[i]!, K);
    };
    return unflatSeries(condFlat(primals[0]!, branch(t), branch(f), "cond"), mask, K);
  },
  vjp(cts, primals, outs, p, needs) {
    const ops = primals.slice(1);
    const diff = ops.map((x, i) => needs[i + 1]! && isFloat(x.dtype));
    if (count(diff) === 0) return primals.map((x) => Zero.like(x));
    const outCts = cts.map((c, i) => (isFloat(outs[i]!.dtype) ? c : null));
    // Each branch's cotangents of the differentiated operands.
    const branch = (prog: Program) => (): Tensor[] => {
      const g = vjpFlat((xs) => prog.evaluate(xs), ops, diff, outCts);
      return pick(
        g.map((t, i) => t ?? zerosLikeAval(ops[i]!)),
        diff,
      );
    };
    const res = condFlat(primals[0]!, branch(p.branches[1]), branch(p.branches[0]), "cond");
    return [
      Zero.like(primals[0]!),
      ...spread<Tangent, null>(res, diff, null).map((t, i) => t ?? Zero.like(ops[i]!)),
    ];
  },
  batch(args, dims, p) {
    // Unbatched predicate: one cond over the batched branches. Batched: both branches, then a select.
    const n = batchSize(args, dims);
    const ops = args.slice(1);
    const opDims = dims.slice(1);
    const run = (prog: Program) => (): Tensor[] => batchFlat((xs) => prog.evaluate(xs), ops, opDims, n);
    const [f, t] = p.branches;
    const d0 = dims[0] ?? null;
    if (d0 === null) {
      const outs = condFlat(args[0]!, run(t), run(f), "cond");
      return [outs, outs.map(() => 0)];
    }
    const pred = reshape(moveAxis(args[0]!, d0, 0), [n]);
    const ft = run(t)();
    const ff = run(f)();
    const outs = ft.map((a, i) => where(reshape(pred, [n, ...a.shape.slice(1).map(() => 1)]), a, ff[i]!));
    return [outs, outs.map(() => 0)];
  },
  showParams: (p) => `true=${summary(p.branches[1])} false=${summary(p.branches[0])}`,
});

// ---- while ---------------------------------------------------------------------------------

export interface WhileParams {
  /** `(condConsts..., carry...)` → the scalar predicate. */
  readonly cond: Program;
  /** `(bodyConsts..., carry...)` → the next carry. */
  readonly body: Program;
  readonly numCondConsts: number;
  readonly numBodyConsts: number;
}

// while: c ← body(c) while cond(c); d while = a while over (c, dc) ← (body(c), ∂body·dc); no VJP
export const whileP = definePrimitive<WhileParams>({
  name: "while",
  saves: "none",
  abstractEval(avals, p) {
    const nCC = p.numCondConsts;
    const nBC = p.numBodyConsts;
    const carry = avals.slice(nCC + nBC);
    checkInputs(
      "whileLoop",
      [...avals.slice(0, nCC), ...carry],
      p.cond.inputs.map((v) => v.aval),
      "condFn",
    );
    checkInputs(
      "whileLoop",
      avals.slice(nCC),
      p.body.inputs.map((v) => v.aval),
      "bodyFn",
    );
    return carry.map(avalOf);
  },
  impl: () => internal("while"),
  evaluate(args, p) {
    const cc = args.slice(0, p.numCondConsts);
    const bc = args.slice(p.numCondConsts, p.numCondConsts + p.numBodyConsts);
    let carry = args.slice(p.numCondConsts + p.numBodyConsts);
    return withInterpreter(evalInterpreter, () => {
      while (readPred(p.cond.evaluate([...cc, ...carry])[0]!)) carry = p.body.evaluate([...bc, ...carry]);
      return carry;
    });
  },
  jvp(primals, tangents, outs, p) {
    const nCC = p.numCondConsts;
    const nBC = p.numBodyConsts;
    const cc = primals.slice(0, nCC);
    const bc = primals.slice(nCC, nCC + nBC);
    const init = primals.slice(nCC + nBC);
    const tbc = tangents.slice(nCC, nCC + nBC).map((t) => (isZero(t) ? null : t));
    const tinit = tangents.slice(nCC + nBC);
    const nC = init.length;
    // Which carries can have a tangent: a fixpoint over the body's dependencies.
    const bcMask = tbc.map((t) => t !== null);
    let mask = init.map((c, j) => isFloat(c.dtype) && !isZero(tinit[j]));
    for (;;) {
      const nzo = nonzeroOutputs(p.body, [...bcMask, ...mask]);
      const next = mask.map((m, j) => m || (nzo[j]! && isFloat(init[j]!.dtype)));
      if (next.every((m, j) => m === mask[j])) break;
      mask = next;
    }
    if (count(mask) === 0) return outs.map((o) => Zero.like(o));
    const t0 = pick(
      tinit.map((t, j) => (isZero(t) ? zerosLikeAval(init[j]!) : t)),
      mask,
    );
    const res = whileFlat(
      (c) => p.cond.evaluate([...cc, ...c.slice(0, nC)])[0]!,
      (c) => {
        const tc = spread(c.slice(nC), mask, null);
        const [o, to] = jvpFlat((xs) => p.body.evaluate(xs), [...bc, ...c.slice(0, nC)], [...tbc, ...tc]);
        return [
          ...o,
          ...pick(
            to.map((t, j) => t ?? zerosLikeAval(init[j]!)),
            mask,
          ),
        ];
      },
      [...init, ...t0],
      "whileLoop",
    );
    return spread<Tangent, null>(res.slice(nC), mask, null).map((t, j) => t ?? Zero.like(outs[j]!));
  },
  // jet: a while over (c, c_1..c_K) ← (body(c), jet body): the carries hold their series
  jet(primals, series, outs, p) {
    const nCC = p.numCondConsts;
    const nBC = p.numBodyConsts;
    const cc = primals.slice(0, nCC);
    const bc = primals.slice(nCC, nCC + nBC);
    const init = primals.slice(nCC + nBC);
    const sbc = series.slice(nCC, nCC + nBC);
    const sinit = series.slice(nCC + nBC);
    const K = orderOf(series);
    const nC = init.length;
    // Which carries can have a series: a fixpoint over the body's dependencies.
    const bcMask = sbc.map((s) => s !== null);
    let mask = init.map((c, j) => isFloat(c.dtype) && sinit[j] !== null);
    for (;;) {
      const nzo = nonzeroOutputs(p.body, [...bcMask, ...mask]);
      const next = mask.map((m, j) => m || (nzo[j]! && isFloat(init[j]!.dtype)));
      if (next.every((m, j) => m === mask[j])) break;
      mask = next;
    }
    if (count(mask) === 0) return outs.map(() => null);
    const like = (j: number): Aval => init[j]!;
    const res = whileFlat(
      (c) => p.cond.evaluate([...cc, ...c.slice(0, nC)])[0]!,
      (c) => {
        const sc = unflatSeries(c.slice(nC), mask, K);
        const [o, so] = jetFlat((xs) => p.body.evaluate(xs), [...bc, ...c.slice(0, nC)], [...sbc, ...sc]);
        return [...o, ...flatSeries(so, mask, like, K)];
      },
      [...init, ...flatSeries(sinit, mask, like, K)],
      "whileLoop",
    );
    return unflatSeries(res.slice(nC), mask, K);
  },
  vjp() {
    throw new TransformError(
      "reverse-mode differentiation of whileLoop is not supported (the number of iterations is unknown); use scan or fori with fixed bounds",
    );
  },
  batch(args, dims, p) {
    // Every carry is batched (axis 0). A batched predicate runs the loop while any example's
    // holds and freezes the examples whose predicate is false (a select), as JAX does.
    const n = batchSize(args, dims);
    const nCC = p.numCondConsts;
    const nK = nCC + p.numBodyConsts;
    const cc = args.slice(0, nCC);
    const bc = args.slice(nCC, nK);
    const init = args.slice(nK).map((a, j) => batchFirst(a, dims[nK + j] ?? null, n));
    const cDims = init.map(() => 0);
    const predOf = (c: Tensor[]): Tensor =>
      reshape(
        batchFlat((xs) => p.cond.evaluate(xs), [...cc, ...c], [...dims.slice(0, nCC), ...cDims], n)[0]!,
        [n],
      );
    const step = (c: Tensor[]): Tensor[] =>
      batchFlat((xs) => p.body.evaluate(xs), [...bc, ...c], [...dims.slice(nCC, nK), ...cDims], n);
    const outs = whileFlat(
      (c) => max(astype(predOf(c), "int32")),
      (c) => {
        const pr = predOf(c);
        return step(c).map((v, j) => where(reshape(pr, [n, ...v.shape.slice(1).map(() => 1)]), v, c[j]!));
      },
      init,
      "whileLoop",
    );
    return [outs, outs.map(() => 0)];
  },
  showParams: (p) => `cond=${summary(p.cond)} body=${summary(p.body)}`,
});

// ---- scan ----------------------------------------------------------------------------------

export interface ScanParams {
  /** `(consts..., carry..., x...)` → `(carry..., y...)`. */
  readonly body: Program;
  readonly length: number;
  readonly numConsts: number;
  readonly numCarry: number;
  /** Run from the last element to the first (ys keep their positions). */
  readonly reverse: boolean;
  /** Also output the carry entering every step, stacked (what reverse mode stores). */
  readonly saveCarries: boolean;
  /** Reverse mode only: the stacked carries saved by the forward pass (see `forwardWithResiduals`). */
  readonly residuals?: readonly Tensor[];
}

function scanParams(p: ScanParams, saveCarries: boolean): ScanParams {
  return {
    body: p.body,
    length: p.length,
    numConsts: p.numConsts,
    numCarry: p.numCarry,
    reverse: p.reverse,
    saveCarries,
  };
}

/** Element `t` of `x` along axis 0. */
function row(x: Tensor, t: number): Tensor {
  const rest = x.shape.slice(1);
  return reshape(slice(x, [t, ...rest.map(() => 0)], [1, ...rest]), rest);
}

/** Stack per-step values along a new axis 0 (an empty `[0, ...]` array for a zero-length scan). */
function stackSteps(vals: Tensor[], like: Aval): Tensor {
  return vals.length === 0 ? zeros([0, ...like.shape], { dtype: like.dtype }) : stack(vals, 0);
}

// scan: (c, y_t) = body(c, x_t) for t = 0..T-1; JVP: a scan of the JVP'd body; VJP: a reverse
// scan from the stored carries c_t: (c̄, k̄) ← body_vjp(c_t, x_t)(c̄, ȳ_t), x̄_t = ∂x
export const scanP: Primitive<ScanParams> = definePrimitive<ScanParams>({
  name: "scan",
  saves: "all",
  abstractEval(avals, p) {
    const nK = p.numConsts;
    const nC = p.numCarry;
    const bodyIn = p.body.inputs.map((v) => v.aval);
    checkInputs("scan", avals.slice(0, nK + nC), bodyIn.slice(0, nK + nC), "the body");
    const xs = avals.slice(nK + nC);
    const xIn = bodyIn.slice(nK + nC);
    if (xs.length !== xIn.length)
      throw new TransformError(`scan: the body takes ${xIn.length} x leaves, got ${xs.length}`);
    xs.forEach((x, i) => {
      const w = xIn[i]!;
      if (x.shape[0] !== p.length || !shapeEq(x.shape.slice(1), w.shape) || x.dtype !== w.dtype)
        throw new ShapeError(
          `scan: xs leaf ${i} is ${x.dtype}${fmtShape(x.shape)}, expected ${w.dtype}${fmtShape([p.length, ...w.shape])}`,
        );
    });
    const outs = p.body.outputs.map((a) => a.aval);
    const stacked = (a: Aval): Aval => ({
      shape: [p.length, ...a.shape],
      dtype: a.dtype,
      weakType: a.weakType,
    });
    return [
      ...outs.slice(0, nC).map(avalOf),
      ...outs.slice(nC).map(stacked),
      ...(p.saveCarries ? bodyIn.slice(nK, nK + nC).map(stacked) : []),
    ];
  },
  impl: () => internal("scan"),
  evaluate(args, p) {
    const nK = p.numConsts;
    const nC = p.numCarry;
    const T = p.length;
    const consts = args.slice(0, nK);
    let carry = args.slice(nK, nK + nC);
    const xs = args.slice(nK + nC);
    const yAvals = p.body.outputs.slice(nC).map((a) => a.aval);
    const ys: Tensor[][] = yAvals.map(() => new Array<Tensor>(T));
    const cs: Tensor[][] = p.saveCarries ? carry.map(() => new Array<Tensor>(T)) : [];
    return withInterpreter(evalInterpreter, () => {
      for (let k = 0; k < T; k++) {
        const t = p.reverse ? T - 1 - k : k;
        if (p.saveCarries) carry.forEach((c, j) => (cs[j]![t] = c));
        const outs = p.body.evaluate([...consts, ...carry, ...xs.map((x) => row(x, t))]);
        carry = outs.slice(0, nC);
        outs.slice(nC).forEach((y, j) => (ys[j]![t] = y));
      }
      const carryAvals = p.body.inputs.slice(nK, nK + nC).map((v) => v.aval);
      return [
        ...carry,
        ...ys.map((v, j) => stackSteps(v, yAvals[j]!)),
        ...cs.map((v, j) => stackSteps(v, carryAvals[j]!)),
      ];
    });
  },
  forwardWithResiduals(args, p): [Tensor[], ScanParams] {
    // Reverse mode stores the carry entering every step (and nothing else of the body).
    if (p.saveCarries) return [bind(scanP, args, p), p];
    const outs = bind(scanP, args, scanParams(p, true));
    const n = outs.length - p.numCarry;
    return [outs.slice(0, n), { ...scanParams(p, false), residuals: outs.slice(n) }];
  },
  jvp(primals, tangents, outs, p) {
    const nK = p.numConsts;
    const nC = p.numCarry;
    const body = p.body;
    const nY = body.outputs.length - nC;
    const consts = primals.slice(0, nK);
    const init = primals.slice(nK, nK + nC);
    const xs = primals.slice(nK + nC);
    const tK = tangents.slice(0, nK).map((t) => (isZero(t) ? null : t));
    const tC = tangents.slice(nK, nK + nC);
    const tX = tangents.slice(nK + nC).map((t) => (isZero(t) ? null : t));
    const kMask = tK.map((t) => t !== null);
    const xMask = tX.map((t) => t !== null);
    // Which carries can have a tangent: a fixpoint over the body's dependencies.
    let cMask = init.map((c, j) => isFloat(c.dtype) && !isZero(tC[j]));
    let nzo: boolean[];
    for (;;) {
      nzo = nonzeroOutputs(body, [...kMask, ...cMask, ...xMask]);
      const next = cMask.map((m, j) => m || (nzo[j]! && isFloat(init[j]!.dtype)));
      if (next.every((m, j) => m === cMask[j])) break;
      cMask = next;
    }
    const yMask = nzo.slice(nC).map((m, j) => m && isFloat(body.outputs[nC + j]!.aval.dtype));
    const nCM = count(cMask);
    const nYM = count(yMask);
    if (nCM + nYM === 0) return outs.map((o) => Zero.like(o));
    const carryAval = (j: number): Aval => body.inputs[nK + j]!.aval;
    const init2 = [
      ...init,
      ...pick(
        tC.map((t, j) => (isZero(t) ? zerosLikeAval(init[j]!) : t)),
        cMask,
      ),
    ];
    const xs2 = [...xs, ...pick(tX, xMask).map((t) => t!)];
    const nX = xs.length;
    const res = scanFlat(
      (c, x) => {
        const tc = spread(c.slice(nC), cMask, null);
        const tx = spread(x.slice(nX), xMask, null);
        const [o, to] = jvpFlat(
          (a) => body.evaluate(a),
          [...consts, ...c.slice(0, nC), ...x.slice(0, nX)],
          [...tK, ...tc, ...tx],
        );
        const tco = pick(
          to.slice(0, nC).map((t, j) => t ?? zerosLikeAval(carryAval(j))),
          cMask,
        );
        const tyo = pick(
          to.slice(nC).map((t, j) => t ?? zerosLikeAval(body.outputs[nC + j]!.aval)),
          yMask,
        );
        return [
          [...o.slice(0, nC), ...tco],
          [...o.slice(nC), ...tyo],
        ];
      },
      init2,
      xs2,
      { length: p.length, reverse: p.reverse, saveCarries: p.saveCarries },
    );
    // Layout: carry, carry tangents, ys, y tangents[, saved carries, saved carry tangents].
    let o = nC;
    const tCarry = res.slice(o, (o += nCM));
    o += nY;
    const tYs = res.slice(o, (o += nYM));
    o += nC;
    const tSaved = p.saveCarries ? res.slice(o, o + nCM) : [];
    const fill = (vals: Tensor[], mask: boolean[], like: readonly Tensor[]): Tangent[] =>
      spread<Tangent, null>(vals, mask, null).map((t, i) => t ?? Zero.like(like[i]!));
    return [
      ...fill(tCarry, cMask, outs.slice(0, nC)),
      ...fill(tYs, yMask, outs.slice(nC, nC + nY)),
      ...(p.saveCarries ? fill(tSaved, cMask, outs.slice(nC + nY)) : []),
    ];
  },
  // jet: a scan of the jet'd body; the carries (and xs, ys) hold their K series terms alongside
  jet(primals, series, outs, p) {
    const nK = p.numConsts;
    const nC = p.numCarry;
    const body = p.body;
    const nY = body.outputs.length - nC;
    const K = orderOf(series);
    const consts = primals.slice(0, nK);
    const init = primals.slice(nK, nK + nC);
    const xs = primals.slice(nK + nC);
    const sK = series.slice(0, nK);
    const sC = series.slice(nK, nK + nC);
    const sX = series.slice(nK + nC);
    const kMask = sK.map((s) => s !== null);
    const xMask = sX.map((s) => s !== null);
    // Which carries can have a series: a fixpoint over the body's dependencies.
    let cMask = init.map((c, j) => isFloat(c.dtype) && sC[j] !== null);
    let nzo: boolean[];
    for (;;) {
      nzo = nonzeroOutputs(body, [...kMask, ...cMask, ...xMask]);
      const next = cMask.map((m, j) => m || (nzo[j]! && isFloat(init[j]!.dtype)));
      if (next.every((m, j) => m === cMask[j])) break;
      cMask = next;
    }
    const yMask = nzo.slice(nC).map((m, j) => m && isFloat(body.outputs[nC + j]!.aval.dtype));
    const nCS = count(cMask) * K;
    const nYS = count(yMask) * K;
    if (nCS + nYS === 0) return outs.map(() => null);
    const carryAval = (j: number): Aval => body.inputs[nK + j]!.aval;
    const yAval = (j: number): Aval => body.outputs[nC + j]!.aval;
    const nX = xs.length;
    // Each x's terms are stacked like x ([T, ...]), so the scan hands the body its per-step terms.
    const res = scanFlat(
      (c, x) => {
        const sc = unflatSeries(c.slice(nC), cMask, K);
        const sx = unflatSeries(x.slice(nX), xMask, K);
        const [o, so] = jetFlat(
          (a) => body.evaluate(a),
          [...consts, ...c.slice(0, nC), ...x.slice(0, nX)],
          [...sK, ...sc, ...sx],
        );
        return [
          [...o.slice(0, nC), ...flatSeries(so.slice(0, nC), cMask, carryAval, K)],
          [...o.slice(nC), ...flatSeries(so.slice(nC), yMask, yAval, K)],
        ];
      },
      [...init, ...flatSeries(sC, cMask, carryAval, K)],
      [...xs, ...sX.flatMap((s) => s ?? [])],
      { length: p.length, reverse: p.reverse, saveCarries: p.saveCarries },
    );
    // Layout: carry, carry series, ys, y series[, saved carries, saved carry series].
    let o = nC;
    const sCarry = res.slice(o, (o += nCS));
    o += nY;
    const sYs = res.slice(o, (o += nYS));
    o += nC;
    const sSaved = p.saveCarries ? res.slice(o, o + nCS) : [];
    return [
      ...unflatSeries(sCarry, cMask, K),
      ...unflatSeries(sYs, yMask, K),
      ...(p.saveCarries ? unflatSeries(sSaved, cMask, K) : []),
    ];
  },
  vjp(cts, primals, outs, p, needs) {
    const nK = p.numConsts;
    const nC = p.numCarry;
    const body = p.body;
    const nY = body.outputs.length - nC;
    const consts = primals.slice(0, nK);
    const init = primals.slice(nK, nK + nC);
    const xs = primals.slice(nK + nC);
    const nX = xs.length;
    // The carry entering each step: an output (saveCarries), saved by the forward pass, or recomputed.
    const saved =
      p.saveCarries === true
        ? outs.slice(nC + nY)
        : (p.residuals ?? bind(scanP, primals, scanParams(p, true)).slice(nC + nY));
    const fC = init.map((c) => isFloat(c.dtype));
    const kNeed = consts.map((c, i) => needs[i]! && isFloat(c.dtype));
    const xNeed = xs.map((x, i) => needs[nK + nC + i]! && isFloat(x.dtype));
    const yF = body.outputs.slice(nC).map((a) => isFloat(a.aval.dtype));
    const nFC = count(fC);
    const nKN = count(kNeed);
    if (nFC + nKN + count(xNeed) === 0) return primals.map((x) => Zero.like(x));
    const ctC = cts.slice(0, nC);
    const ctY = cts.slice(nC, nC + nY);
    const ctSaved = p.saveCarries ? pick(cts.slice(nC + nY), fC) : [];
    const nYF = count(yF);
    // Reverse scan. Carry: cotangents of the float carries, accumulated cotangents of the needed
    // consts. xs: the stored carries, xs, the ys' cotangents (and the stored carries' cotangents).
    const revInit = [...pick(ctC, fC), ...pick(consts, kNeed).map((c) => zerosLikeAval(c))];
    const revXs = [...saved, ...xs, ...pick(ctY, yF), ...ctSaved];
    const diff = [...kNeed, ...fC, ...xNeed];
    const res = scanFlat(
      (carry, x) => {
        const ctc = carry.slice(0, nFC);
        const ctk = carry.slice(nFC);
        let o = 0;
        const ct = x.slice(o, (o += nC));
        const xt = x.slice(o, (o += nX));
        const cty = x.slice(o, (o += nYF));
        const cts2 = x.slice(o);
        const outCts = [...spread(ctc, fC, null), ...spread(cty, yF, null)];
        const g = vjpFlat((a) => body.evaluate(a), [...consts, ...ct, ...xt], diff, outCts);
        const gk = g.slice(0, nK);
        const gc = g.slice(nK, nK + nC);
        const gx = g.slice(nK + nC);
        let s = 0;
        const newCtc = pick(gc, fC).map((v, j) => {
          const base = v ?? zerosLikeAval(pick(init, fC)[j]!);
          return p.saveCarries ? add(base, cts2[s++]!) : base;
        });
        let r = 0;
        const newCtk = pick(gk, kNeed).map((v) => {
          const acc = ctk[r++]!;
          return v === null ? acc : add(acc, v);
        });
        const ys = xNeed.flatMap((m, i) =>
          m ? [gx[i] ?? zerosLikeAval(body.inputs[nK + nC + i]!.aval)] : [],
        );
        return [[...newCtc, ...newCtk], ys];
      },
      revInit,
      revXs,
      { length: p.length, reverse: !p.reverse, saveCarries: false },
    );
    const ctInit = spread(res.slice(0, nFC), fC, null);
    const ctK = spread(res.slice(nFC, nFC + nKN), kNeed, null);
    const ctX = spread(res.slice(nFC + nKN), xNeed, null);
    return [
      ...ctK.map((t, i) => t ?? Zero.like(consts[i]!)),
      ...ctInit.map((t, j) => t ?? Zero.like(init[j]!)),
      ...ctX.map((t, i) => t ?? Zero.like(xs[i]!)),
    ];
  },
  batch(args, dims, p) {
    // Batch inside the body: carries batched on axis 0, xs (and their per-step slices) on axis 1 / 0.
    const n = batchSize(args, dims);
    const nK = p.numConsts;
    const nC = p.numCarry;
    const consts = args.slice(0, nK);
    const kDims = dims.slice(0, nK).map((d) => d ?? null);
    const init = args.slice(nK, nK + nC).map((a, j) => batchFirst(a, dims[nK + j] ?? null, n));
    const xDims: (number | null)[] = [];
    const xs = args.slice(nK + nC).map((x, i) => {
      const d = dims[nK + nC + i] ?? null;
      xDims.push(d === null ? null : 0);
      return d === null ? x : moveAxis(x, d, 1);
    });
    const outs = scanFlat(
      (c, x) => {
        const r = batchFlat(
          (a) => p.body.evaluate(a),
          [...consts, ...c, ...x],
          [...kDims, ...c.map(() => 0), ...xDims],
          n,
        );
        return [r.slice(0, nC), r.slice(nC)];
      },
      init,
      xs,
      { length: p.length, reverse: p.reverse, saveCarries: p.saveCarries },
    );
    return [outs, outs.map((_, i) => (i < nC ? 0 : 1))];
  },
  showParams: (p) =>
    `length=${p.length}${p.reverse ? " reverse" : ""}${p.saveCarries ? " save_carries" : ""} consts=${p.numConsts} carry=${p.numCarry} body=${summary(p.body)}`,
});
