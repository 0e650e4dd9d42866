/**
 * @file `ad.customRoot(f, x0, solve, tangentSolve)` (JAX's `lax.custom_root`): a root x* of
 * f(x) = 0 found by any solver, differentiated implicitly wrt whatever f closes over.
 *
 * Math: f(x*(θ), θ) = 0 ⇒ ∂f/∂x ẋ = −∂f/∂θ θ̇, so
 *   forward  ẋ = −tangentSolve(v ↦ ∂f/∂x·v, ∂f/∂θ·θ̇)
 *   reverse  u = tangentSolve(v ↦ (∂f/∂x)ᵀv, x̄),  θ̄ = −(∂f/∂θ)ᵀu
 * Both solves are custom linear solves (with `tangentSolve` for the matrix and its transpose,
 * as JAX does), so higher derivatives stay implicit.
 */

import { noGrad } from "../core/grad-mode.js";
import type { Tensor } from "../core/tensor.js";
import { isFloat } from "../dtype.js";
import { checkFunction } from "../transforms/args.js";
import { jvpFlat, type Leafy, type Traced } from "../transforms/control.js";
import { customVjp } from "../transforms/custom.js";
import { pushforward, record } from "../transforms/reverse.js";
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
  tensorLeaves,
  tensorsOf,
} from "./common.js";
import { linearSolveCore, type SolveSpec } from "./linear-solve.js";

/**
 * A root of `f` (f(x) = 0, x structured like `x0`) found by `solve(f, x0)` — bisection, Newton,
 * anything — with derivatives wrt whatever `f` closes over from the implicit function theorem.
 * `tangentSolve(g, y)` must solve the linear equation g(x) = y for a linear `g` (the Jacobian of
 * f at the root, or its transpose in reverse mode): for a scalar x, `(g, y) => ad.div(y, g(1))`;
 * in general a Krylov solve, `(g, y) => ad.solvers.gmres(g, y).x`. The solver's steps are never
 * differentiated; `x0` gets no derivative.
 * @example
 * // √a as the root of x² − a, by Newton's method; d√a/da = 1/(2√a)
 * const newton = (f: (x: ad.Tensor) => ad.Tensor, x0: ad.Tensor) => {
 *   let x = x0;
 *   for (let i = 0; i < 30; i++) x = ad.sub(x, ad.div(f(x), ad.grad((y: ad.Tensor) => f(y))(x)));
 *   return x;
 * };
 * const sqrt = (a: number) =>
 *   ad.customRoot((x: ad.Tensor) => ad.sub(ad.mul(x, x), a), 1, newton, (g, y) => ad.div(y, g(1)));
 * ad.grad(sqrt)(4); // 0.25
 */
export function customRoot<X>(
  f: (x: Traced<X>) => Leafy<X>,
  x0: X,
  solve: (f: (x: Traced<X>) => Traced<X>, x0: Traced<X>) => Leafy<X>,
  tangentSolve: (g: (x: Traced<X>) => Traced<X>, y: Traced<X>) => Leafy<X>,
): Traced<X> {
  const op = "customRoot";
  checkFunction(f, op);
  checkFunction(solve, op);
  checkFunction(tangentSolve, op);
  const [xl, xDef] = tensorLeaves(x0, "x0", op);
  const likes = xl.map(avalOf);
  const conv = closureConvert(f as (...a: never[]) => unknown, [unflatten(xDef, xl)], op);
  checkOut(conv.out, xDef, likes, "the output of f", op);
  const fFlat = (cs: readonly Tensor[], x: readonly Tensor[]): Tensor[] =>
    matchLeaves(conv.call(cs, [unflatten(xDef, x)]), xDef, likes, "the output of f", op);
  const tree = (def: TreeDef, g: (x: Tensor[]) => Tensor[]) => (x: unknown) =>
    unflatten(def, g(matchLeaves(x, def, likes, "the argument of the linear map", op)));
  const ts = (g: (x: unknown) => unknown, y: unknown): [unknown, Tensor[]] => [
    (tangentSolve as (g: unknown, y: unknown) => unknown)(g, y),
    [],
  ];
  const spec: SolveSpec = { op, solve: ts, transposeSolve: ts, symmetric: false };
  const floats = (cs: readonly Tensor[]) => cs.map((c) => isFloat(c.dtype));

  // `solve` runs one level below the transforms; staged now (as JAX does), the traced values it
  // captures become explicit inputs with no derivative (the root's derivative is implicit).
  const userSolve = solve as (f: unknown, x0: unknown) => unknown;
  const runSolve = (cs: readonly Tensor[], xs: readonly Tensor[]) =>
    userSolve(
      tree(xDef, (x) => fFlat(cs, x)),
      unflatten(xDef, xs),
    );
  const sConv = closureConvert(runSolve as (...a: never[]) => unknown, [conv.consts, xl], op);
  const ownConsts = sConv.consts.length;

  const last = new LastCall<Tensor[]>();
  const primal = (cs: Tensor[], xs: Tensor[], scs: Tensor[]): Tensor[] => {
    const root = ownConsts === 0 ? runSolve(cs, xs) : sConv.call(scs, [cs, xs]);
    const x = matchLeaves(root, xDef, likes, "the root solve returned", op);
    last.set(tensorsOf([cs, xs, scs]), x);
    return x;
  };

  const call: (cs: Tensor[], xs: Tensor[], scs: Tensor[]) => Tensor[] = customVjp(primal, {
    fwd: (cs, xs, scs) => {
      const x = noGrad(() => call(cs, xs, scs));
      return [x, { cs, x }];
    },
    bwd: (res: { cs: Tensor[]; x: Tensor[] }, xbar: Tensor[]) => {
      if (xbar === null || xbar.every((t) => t === null || t === undefined) || !floats(res.cs).some(Boolean))
        return [null, null, null];
      // u = (∂f/∂x)⁻ᵀ x̄ by tangentSolve on the VJP of f at the root.
      const [, pullX] = recordFlat(
        (x) => fFlat(res.cs, x),
        res.x,
        res.x.map(() => true),
      );
      const u = matchLeaves(
        linearSolveCore(
          tree(xDef, (v) => fillZeros(pullX(v), likes)),
          unflatten(xDef, fillZeros(xbar, likes)),
          null,
          spec,
        ).x,
        xDef,
        likes,
        "the adjoint",
        op,
      );
      // θ̄ = −(∂f/∂θ)ᵀ u
      const [, pull] = recordFlat((cs) => fFlat(cs, res.x), res.cs, floats(res.cs));
      return [pull(negL(u)), null, null];
    },
    jvp: ([cs, xs, scs], [dcs]) => {
      const x = last.get(tensorsOf([cs, xs, scs])) ?? call(cs, xs, scs);
      const tangents = (dcs as (Tensor | null)[]).map((t, i) => (isFloat(cs[i]!.dtype) ? t : null));
      const [, rhs] = jvpFlat((c) => fFlat(c, x), cs, tangents);
      if (rhs.every((t) => t === null)) return [null, null];
      // ẋ = −(∂f/∂x)⁻¹ (∂f/∂θ θ̇)
      const rec = record((xx: Tensor[]) => fFlat(cs, xx), [x], [0], false, op);
      const w = linearSolveCore(
        tree(xDef, (v) => pushforward(rec, [v])),
        unflatten(xDef, fillZeros(rhs, likes)),
        null,
        spec,
      ).x;
      return [null, negL(matchLeaves(w, xDef, likes, "ẋ", op))];
    },
  });

  return unflatten(xDef, call(conv.consts, xl, sConv.consts)) as Traced<X>;
}
