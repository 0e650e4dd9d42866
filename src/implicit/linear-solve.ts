/**
 * @file `ad.customLinearSolve` (JAX's `lax.custom_linear_solve`) and the core every other
 * implicit function builds on: a linear solve x = A⁻¹b whose derivatives are again linear solves,
 * never the unrolled iterations of the solver.
 *
 * Math, with A = A(θ) given matrix-free by `matvec` (θ: whatever matvec closes over):
 *   forward   ẋ = A⁻¹(ḃ − Ȧx)                      (one more solve with A)
 *   reverse   b̄ = A⁻ᵀx̄,  θ̄ = −(∂(A(θ)x)/∂θ)ᵀ b̄   (one solve with Aᵀ)
 * Aᵀ is matrix-free too: u ↦ the VJP of x ↦ A x (or A itself when `symmetric`). The tangent and
 * transposed solves are themselves custom linear solves, so every order of derivative stays
 * implicit. Memory: the rules keep θ and x, nothing of the solver's iterations.
 *
 * User solvers (`customLinearSolve`'s `solve` and `transposeSolve`) may close over traced values
 * too (`(mv, r) => ad.div(r, d)` with `d` being differentiated). They run one level below the
 * transforms, and the transposed solve runs during the backward pass, when those tracers are no
 * longer usable; so, as JAX does, they are staged once at the call with their matrix given
 * (`solve(matvec, ·)`, `transposeSolve(matvecᵀ, ·)`), and the values they capture become
 * explicit, non-differentiated inputs ("solve consts"). Their derivative never matters: the rules
 * differentiate the linear system, not the solver.
 */

import { noGrad } from "../core/grad-mode.js";
import type { Aval } from "../core/primitive.js";
import { Tensor } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { TransformError } from "../errors.js";
import { checkFunction } from "../transforms/args.js";
import { jvpFlat, type Leafy, type Traced } from "../transforms/control.js";
import { customVjp } from "../transforms/custom.js";
import { type TreeDef, unflatten } from "../tree.js";
import { closureConvert } from "./closure.js";
import {
  avalOf,
  checkOut,
  fillZeros,
  LastCall,
  matchLeaves,
  negL,
  recordFlat,
  subL,
  tensorLeaves,
} from "./common.js";

/**
 * A solve on pytrees: `(matvec, b, guess, consts) => [x, diagnostics]` (diagnostics: tensors, no
 * derivative). `consts` are the values the solve was staged with (see `SolveSpec.solveConsts`).
 */
export type SolveFn = (
  matvec: (x: unknown) => unknown,
  b: unknown,
  guess: unknown | null,
  consts: readonly Tensor[],
) => [unknown, readonly Tensor[]];

/** How `linearSolveCore` solves with A and with Aᵀ. */
export interface SolveSpec {
  readonly op: string;
  /** Solves A x = b. */
  readonly solve: SolveFn;
  /** Solves Aᵀ x = b (given Aᵀ as its matvec); null: `solve` is used for Aᵀ too. */
  readonly transposeSolve: SolveFn | null;
  /** A = Aᵀ: the transposed matvec is `matvec` itself and `solve` solves with it. */
  readonly symmetric: boolean;
  /**
   * The solve functions are user code that may close over traced values: stage them at the call
   * (see the file comment). The internal solvers (cg, gmres, the fixed-point adjoint) need not.
   */
  readonly stage?: boolean;
  /** Non-differentiated inputs handed to `solve` as its `consts` (default none). */
  readonly solveConsts?: readonly Tensor[];
  /** Likewise for `transposeSolve`. */
  readonly transposeConsts?: readonly Tensor[];
}

/** The result of `linearSolveCore`: the solution (structured like b) and the solver's diagnostics. */
export interface LinearSolved {
  readonly x: unknown;
  readonly diagnostics: readonly Tensor[];
}

/** The spec of the transposed problem: solving with Aᵀ, whose own transpose is A again. */
function transposed(spec: SolveSpec, scs: readonly Tensor[], tcs: readonly Tensor[]): SolveSpec {
  if (spec.symmetric) return { ...spec, stage: false, solveConsts: scs, transposeConsts: tcs };
  const own = spec.transposeSolve === null;
  return {
    op: spec.op,
    solve: spec.transposeSolve ?? spec.solve,
    transposeSolve: own ? null : spec.solve,
    symmetric: false,
    solveConsts: own ? scs : tcs,
    transposeConsts: scs,
  };
}

/** The same problem with the solve consts given (for the tangent solve of the forward rule). */
function withConsts(spec: SolveSpec, scs: readonly Tensor[], tcs: readonly Tensor[]): SolveSpec {
  return { ...spec, stage: false, solveConsts: scs, transposeConsts: tcs };
}

/**
 * Stage a user solve with its matrix given (`solver(matvec(mcs), ·)`, `mcs` the matvec's consts)
 * and turn the values it captures into explicit consts. Returns the spec entry and its consts:
 * the solve itself when it captures nothing (or cannot be staged because it reads values), else
 * the staged program, called with `[own consts, mcs]`.
 */
function stageSolve(
  solver: SolveFn,
  mvOf: (mcs: readonly Tensor[]) => (x: unknown) => unknown,
  mcs: readonly Tensor[],
  b: unknown,
  op: string,
): [SolveFn, Tensor[]] {
  const conv = closureConvert(
    ((cs: Tensor[], rhs: unknown) => solver(mvOf(cs), rhs, null, [])[0]) as (...a: never[]) => unknown,
    [mcs, b],
    op,
  );
  if (conv.consts.length === 0) return [solver, []];
  const own = conv.consts.length;
  const fn: SolveFn = (_mv, rhs, _guess, consts) => [
    conv.call(consts.slice(0, own), [consts.slice(own), rhs]),
    [],
  ];
  return [fn, [...conv.consts, ...mcs]];
}

/**
 * x = A⁻¹b with implicit derivatives (see the file comment). `matvec` may close over values that
 * enclosing transforms trace; they get cotangents.
 * @internal
 */
export function linearSolveCore(
  matvec: (x: unknown) => unknown,
  b: unknown,
  guess: unknown | null,
  spec0: SolveSpec,
): LinearSolved {
  let spec = spec0;
  const op = spec.op;
  const [bl, bDef] = tensorLeaves(b, "b", op);
  const likes: Aval[] = bl.map(avalOf);
  const conv = closureConvert(matvec as (...a: never[]) => unknown, [unflatten(bDef, bl)], op);
  checkOut(conv.out, bDef, likes, "matvec's output", op);
  const gl = guess === null ? [] : matchLeaves(guess, bDef, likes, "x0", op);

  const mvFlat = (cs: readonly Tensor[], xl: readonly Tensor[]): Tensor[] =>
    matchLeaves(conv.call(cs, [unflatten(bDef, xl)]), bDef, likes, "matvec's output", op);
  const asTree = (def: TreeDef, mv: (xl: Tensor[]) => Tensor[]) => (x: unknown) =>
    unflatten(def, mv(matchLeaves(x, def, likes, "the argument of matvec", op)));

  if (spec.stage) {
    // Stage the user's solvers now, while the values they capture are still usable.
    const mvOf = (mcs: readonly Tensor[]) => asTree(bDef, (xl) => mvFlat(mcs, xl));
    const b0 = unflatten(bDef, bl);
    const [solve, scs] = stageSolve(spec.solve, mvOf, conv.consts, b0, op);
    let transposeSolve = spec.transposeSolve;
    let tcs: Tensor[] = [];
    // A staged solve has A built in, so Aᵀ needs its own staged solve (`solve` itself by default).
    if (!spec.symmetric && (transposeSolve !== null || scs.length > 0)) {
      const mvTOf = (mcs: readonly Tensor[]) => {
        const [, pull] = recordFlat(
          (xl) => mvFlat(mcs, xl),
          bl,
          bl.map(() => true),
        );
        return asTree(bDef, (u) => fillZeros(pull(u), likes));
      };
      [transposeSolve, tcs] = stageSolve(transposeSolve ?? spec.solve, mvTOf, conv.consts, b0, op);
    }
    spec = { ...spec, stage: false, solve, transposeSolve, solveConsts: scs, transposeConsts: tcs };
  }

  type Out = [Tensor[], Tensor[]];
  const last = new LastCall<Tensor[]>();
  const primal = (cs: Tensor[], bs: Tensor[], gs: Tensor[], scs: Tensor[]): Out => {
    const [x, diag] = spec.solve(
      asTree(bDef, (xl) => mvFlat(cs, xl)),
      unflatten(bDef, bs),
      gs.length === 0 ? null : unflatten(bDef, gs),
      scs,
    );
    const xl = matchLeaves(x, bDef, likes, "the solution solve returned", op);
    const dl = diag.map((d) => {
      if (!(d instanceof Tensor))
        throw new Error(`adjoint internal error: ${op} diagnostics must be tensors`);
      return d;
    });
    last.set([...cs, ...bs, ...gs, ...scs], xl);
    return [xl, dl];
  };

  type Res = { cs: Tensor[]; x: Tensor[]; scs: Tensor[]; tcs: Tensor[] };
  const call: (cs: Tensor[], bs: Tensor[], gs: Tensor[], scs: Tensor[], tcs: Tensor[]) => Out = customVjp(
    (cs: Tensor[], bs: Tensor[], gs: Tensor[], scs: Tensor[], _tcs: Tensor[]) => primal(cs, bs, gs, scs),
    {
      // The solution at the level below, itself a custom solve there (so derivatives nest).
      fwd: (cs, bs, gs, scs, tcs) => {
        const out = noGrad(() => call(cs, bs, gs, scs, tcs));
        return [out, { cs, x: out[0], scs, tcs }];
      },
      bwd: (res: Res, ct: Out) => {
        const xbar = ct?.[0] ?? [];
        if (xbar.every((t) => t === null || t === undefined)) return [null, null, null, null, null];
        // Aᵀ: matvec itself, or the VJP of x ↦ A x (linear: any point will do; x is at hand).
        let mvT: (u: Tensor[]) => Tensor[];
        if (spec.symmetric) mvT = (u) => mvFlat(res.cs, u);
        else {
          const [, pull] = recordFlat(
            (xl) => mvFlat(res.cs, xl),
            res.x,
            res.x.map(() => true),
          );
          mvT = (u) => fillZeros(pull(u), likes);
        }
        const bbar = matchLeaves(
          linearSolveCore(
            asTree(bDef, mvT),
            unflatten(bDef, fillZeros(xbar, likes)),
            null,
            transposed(spec, res.scs, res.tcs),
          ).x,
          bDef,
          likes,
          "b̄",
          op,
        );
        // θ̄ = −(∂(A(θ)x)/∂θ)ᵀ b̄
        let cbar: (Tensor | null)[] = res.cs.map(() => null);
        if (res.cs.some((c) => isFloat(c.dtype))) {
          const [, pull] = recordFlat(
            (cs) => mvFlat(cs, res.x),
            res.cs,
            res.cs.map((c) => isFloat(c.dtype)),
          );
          cbar = pull(negL(bbar));
        }
        return [cbar, bbar, null, null, null];
      },
      jvp: ([cs, bs, gs, scs, tcs], [dcs, dbs]) => {
        const x = last.get([...cs, ...bs, ...gs, ...scs]) ?? call(cs, bs, gs, scs, tcs)[0];
        let rhs = dbs as Tensor[];
        if (cs.some((c) => isFloat(c.dtype))) {
          const [, dA] = jvpFlat(
            (c) => mvFlat(c, x),
            cs,
            (dcs as (Tensor | null)[]).map((t, i) => (isFloat(cs[i]!.dtype) ? t : null)),
          );
          rhs = subL(rhs, fillZeros(dA, likes));
        }
        const xdot = matchLeaves(
          linearSolveCore(
            asTree(bDef, (v) => mvFlat(cs, v)),
            unflatten(bDef, rhs),
            null,
            withConsts(spec, scs, tcs),
          ).x,
          bDef,
          likes,
          "ẋ",
          op,
        );
        return [null, [xdot, null]];
      },
    },
  );

  const [xl, diag] = call(
    conv.consts,
    bl,
    gl,
    [...(spec.solveConsts ?? [])],
    [...(spec.transposeConsts ?? [])],
  );
  return { x: unflatten(bDef, xl), diagnostics: diag };
}

/** Options of `customLinearSolve`. */
export interface LinearSolveOptions<B> {
  /**
   * Solves Aᵀ x = b given the transposed matvec: `(matvecT, b) => x`. Default: `solve` itself
   * applied to Aᵀ (which JAX would refuse; give one when `solve` only handles A).
   */
  transposeSolve?: (matvecT: (x: Traced<B>) => Traced<B>, b: Traced<B>) => Leafy<B>;
  /** A is symmetric: Aᵀ is `matvec` itself and `solve` handles it (e.g. conjugate gradients). */
  symmetric?: boolean;
}

/**
 * The solution of A x = b, with A given by `matvec` and found by `solve(matvec, b)` — any solver
 * at all (a dense factorisation, a Krylov method, a hand-written iteration) — differentiated
 * implicitly: derivatives come from further linear solves with A (forward mode) or Aᵀ (reverse
 * mode), never from the solver's iterations, wrt `b` and anything `matvec` closes over. `b` may
 * be a pytree (`matvec` maps pytrees of its structure).
 * @example
 * // a diagonal system solved elementwise; the gradient wrt the diagonal d is −x ⊙ A⁻ᵀ1
 * const solveDiag = (d: ad.Tensor, b: ad.Tensor) =>
 *   ad.customLinearSolve((x: ad.Tensor) => ad.mul(d, x), b, (mv, r) => ad.div(r, d), { symmetric: true });
 * ad.grad((d: ad.Tensor) => ad.sum(solveDiag(d, ad.tensor([2, 3]))))(ad.tensor([1, 2])); // [-2, -0.75]
 */
export function customLinearSolve<B>(
  matvec: (x: Traced<B>) => Leafy<B>,
  b: B,
  solve: (matvec: (x: Traced<B>) => Traced<B>, b: Traced<B>) => Leafy<B>,
  opts: LinearSolveOptions<B> = {},
): Traced<B> {
  const op = "customLinearSolve";
  checkFunction(matvec, op);
  checkFunction(solve, op);
  if (opts === null || typeof opts !== "object")
    throw new TransformError(`${op}: options must be an object {transposeSolve?, symmetric?}`);
  if (opts.transposeSolve !== undefined) checkFunction(opts.transposeSolve, op);
  const wrap =
    (s: (mv: never, b: never) => unknown): SolveFn =>
    (mv, rhs) => [(s as (m: unknown, r: unknown) => unknown)(mv, rhs), []];
  const spec: SolveSpec = {
    op,
    solve: wrap(solve),
    transposeSolve: opts.transposeSolve === undefined ? null : wrap(opts.transposeSolve),
    symmetric: opts.symmetric ?? false,
    stage: true,
  };
  return linearSolveCore(matvec as (x: unknown) => unknown, b, null, spec).x as Traced<B>;
}
