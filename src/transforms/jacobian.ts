/**
 * @file Full Jacobians, Hessians and Hessian-vector products, all compositions of the tape
 * sweeps, `vmap` and `jvp`/`grad`. The function runs once; `jacfwd` then pushes a batch of
 * one-hot tangents (one per input element) forward along the tape in one vmapped sweep, `jacrev`
 * pulls a batch of one-hot cotangents (one per output element) back in one vmapped sweep, and
 * `jacobian` picks whichever needs the smaller batch. Shapes are `[...outShape, ...inShape]`.
 */

import type { Tensor } from "../core/tensor.js";
import { type DType, isFloat } from "../dtype.js";
import { TransformError } from "../errors.js";
import { eye, reshape, zeros } from "../ops/index.js";
import { moveAxis } from "../primitives/rules.js";
import { unflatten } from "../tree.js";
import { checkFunction, outLeaf, parseArgnums } from "./args.js";
import { jvpImpl } from "./jvp.js";
import { gradCore, pullback, pushforward, type Recording, record } from "./reverse.js";
import type { JacobianOf } from "./types.js";
import { batchCall } from "./vmap.js";

export interface JacobianOptions {
  /** Which argument(s) to differentiate (default 0; an array gives one block per argument). */
  argnums?: number | readonly number[];
  /** `f` returns `[output, aux]`; the result is then `[jacobian, aux]`. */
  hasAux?: boolean;
}

type Mode = "fwd" | "rev" | "auto";

/** Every one-hot tensor of `shape`, stacked: `[n, ...shape]` with n = size (the identity, reshaped). */
function bases(shape: readonly number[], n: number, dtype: DType): Tensor {
  // Integer/bool outputs have no derivative: their (unused) basis is built in float64.
  return reshape(eye(n, { dtype: isFloat(dtype) ? dtype : "float64" }), [n, ...shape]);
}

function shapeOf(l: Tensor | number): number[] {
  return typeof l === "number" ? [] : l.shape;
}

/** Assemble blocks[outLeaf][arg][leaf] (each [...O, ...I]) into the result structure. */
function assemble(rec: Recording, single: boolean, blocks: Tensor[][][]): unknown {
  const perOut = blocks.map((byArg) => {
    const trees = byArg.map((leaves, k) => {
      const a = rec.args[k]!;
      return unflatten(
        a.def,
        leaves.map((b, j) => outLeaf(b, a.wasNumber[j]! && rec.numbersIn)),
      );
    });
    return single ? trees[0] : trees;
  });
  return unflatten(rec.outDef, perOut);
}

function jacobianCore(
  f: (...a: never[]) => unknown,
  opts: JacobianOptions,
  args: unknown[],
  mode: Mode,
  op: string,
): unknown {
  checkFunction(f, op);
  const an = parseArgnums(opts.argnums, args.length, op);
  const rec = record(f, args, an.list, opts.hasAux ?? false, op);
  const outShapes = rec.outLeaves.map(shapeOf);
  const outDtypes = rec.outLeaves.map((l) => (typeof l === "number" ? "float64" : l.dtype));
  const inLeaves = rec.args.map((a) => a.leaves);
  const nIn = inLeaves.flat().reduce((n, l) => n + l.size, 0);
  const nOut = outShapes.reduce((n, s) => n + s.reduce((p, d) => p * d, 1), 0);
  const useFwd = mode === "fwd" || (mode === "auto" && nIn < nOut);
  const blocks: Tensor[][][] = outShapes.map(() => inLeaves.map((ls) => ls.map(() => zeros([]))));

  if (useFwd) {
    inLeaves.forEach((leaves, k) =>
      leaves.forEach((x, j) => {
        // One forward sweep for a batch of basis tangents, one per element of x: the columns.
        const n = x.size;
        const cols =
          n === 0
            ? outShapes.map((os) => zeros([0, ...os], { dtype: x.dtype }))
            : batchCall(
                (e) =>
                  pushforward(
                    rec,
                    inLeaves.map((ls, kk) => ls.map((_, jj) => (kk === k && jj === j ? e! : null))),
                  ),
                [bases(x.shape, n, x.dtype)],
                [0],
                n,
              );
        outShapes.forEach((os, o) => {
          // [n, ...os] -> [...os, n] -> [...os, ...x.shape]
          blocks[o]![k]![j] = reshape(moveAxis(cols[o]!, 0, os.length), [...os, ...x.shape]);
        });
      }),
    );
  } else {
    outShapes.forEach((os, o) => {
      // One backward sweep for a batch of basis cotangents, one per output element: the rows.
      const n = os.reduce((p, d) => p * d, 1);
      const rows =
        n === 0
          ? inLeaves.flat().map((x) => zeros([0, ...x.shape], { dtype: x.dtype }))
          : batchCall(
              (e) =>
                pullback(
                  rec,
                  rec.outLeaves.map((_, oo) => (oo === o ? e! : null)),
                ).flat(),
              [bases(os, n, outDtypes[o]!)],
              [0],
              n,
            );
      let r = 0;
      inLeaves.forEach((ls, k) =>
        ls.forEach((x, j) => {
          blocks[o]![k]![j] = reshape(rows[r++]!, [...os, ...x.shape]);
        }),
      );
    });
  }
  const jac = assemble(rec, an.single, blocks);
  return opts.hasAux ? [jac, rec.aux] : jac;
}

type Jac<A extends unknown[], R> = (...args: A) => JacobianOf<R, A[0]>;
type JacAux<A extends unknown[], R, Aux> = (...args: A) => [JacobianOf<R, A[0]>, Aux];

function makeJacobian(mode: Mode, op: string) {
  function jac<A extends unknown[], R, Aux>(
    f: (...args: A) => [R, Aux],
    opts: JacobianOptions & { hasAux: true },
  ): JacAux<A, R, Aux>;
  function jac<A extends unknown[], R>(f: (...args: A) => R, opts?: JacobianOptions): Jac<A, R>;
  function jac<A extends unknown[], R>(
    f: (...args: A) => R,
    opts: JacobianOptions = {},
  ): (...args: A) => unknown {
    checkFunction(f, op);
    return (...args: A) => jacobianCore(f as (...a: never[]) => unknown, opts, args, mode, op);
  }
  return jac;
}

/**
 * The Jacobian by forward mode (one vmapped JVP sweep over the basis tangents of the inputs),
 * shape `[...out, ...in]`.
 * @example
 * ad.jacfwd((x) => ad.mul(x, 2))(ad.tensor([1, 2])).toArray(); // [[2, 0], [0, 2]]
 */
export const jacfwd = makeJacobian("fwd", "jacfwd");

/**
 * The Jacobian by reverse mode (one vmapped VJP sweep over the basis cotangents of the outputs),
 * shape `[...out, ...in]`.
 * @example
 * ad.jacrev((x) => ad.sum(ad.square(x)))(ad.tensor([1, 2])).toArray(); // [2, 4]
 */
export const jacrev = makeJacobian("rev", "jacrev");

/**
 * The Jacobian, by forward mode when the inputs have fewer elements than the outputs and by
 * reverse mode otherwise.
 * @example
 * ad.jacobian((x) => ad.stack([x, ad.mul(x, x)]))(3); // tensor([1, 6])
 */
export const jacobian = makeJacobian("auto", "jacobian");

/**
 * The Hessian of a scalar function, forward-over-reverse (`jacfwd(jacrev(f))`), shape
 * `[...in, ...in]`.
 * @example
 * ad.hessian((x) => ad.sum(ad.pow(x, 3)))(ad.tensor([1, 2])).toArray(); // [[6, 0], [0, 12]]
 */
export function hessian<A extends unknown[], R>(
  f: (...args: A) => R,
  opts: Omit<JacobianOptions, "hasAux"> = {},
): (...args: A) => JacobianOf<R, A[0]> {
  checkFunction(f, "hessian");
  const grads = (...a: unknown[]) => jacobianCore(f as (...x: never[]) => unknown, opts, a, "rev", "hessian");
  return (...args: A) => jacobianCore(grads, opts, args, "fwd", "hessian") as JacobianOf<R, A[0]>;
}

/**
 * Hessian-vector products H·v without forming H (forward-over-reverse: the JVP of the gradient).
 * Returns one entry per primal.
 * @example
 * ad.hvp((x) => ad.sum(ad.pow(x, 3)), [ad.tensor([1, 2])], [ad.tensor([1, 0])])[0].toArray(); // [6, 0]
 */
export function hvp<A extends unknown[]>(f: (...args: A) => unknown, primals: A, tangents: A): A {
  checkFunction(f, "hvp");
  if (!Array.isArray(primals) || !Array.isArray(tangents))
    throw new TransformError("hvp: primals and tangents must be arrays (one entry per argument of f)");
  const argnums = primals.map((_, i) => i);
  const g = (...xs: unknown[]) => gradCore(f as (...a: never[]) => unknown, { argnums }, xs, "hvp").grads;
  return jvpImpl(g, primals, tangents, "hvp")[1] as A;
}
