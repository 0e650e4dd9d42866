/**
 * @file Turns a parsed CLI expression into a JS function of its variables built from adjoint's
 * operations, so every transform (grad, hessian, explain) can differentiate it. Only the
 * whitelisted functions of `whitelist.ts` exist, each mapped here to adjoint operations; the
 * expression is interpreted node by node, never turned into JS source.
 */

import type { Tensor, TensorLike } from "../core/tensor.js";
import * as ad from "../index.js";
import type { BinaryOp, Expr } from "./parse.js";
import { checkExpression, type FunctionName } from "./whitelist.js";

type Impl = (args: readonly TensorLike[]) => Tensor;
const unary =
  (f: (x: TensorLike) => Tensor): Impl =>
  (a) =>
    f(a[0]!);
const binary =
  (f: (x: TensorLike, y: TensorLike) => Tensor): Impl =>
  (a) =>
    f(a[0]!, a[1]!);

/** Each whitelisted function as adjoint operations (typed by the whitelist: none can be missing). */
const IMPLEMENTATIONS: Readonly<Record<FunctionName, Impl>> = {
  sin: unary(ad.sin),
  cos: unary(ad.cos),
  tan: unary(ad.tan),
  asin: unary(ad.asin),
  acos: unary(ad.acos),
  atan: unary(ad.atan),
  sinh: unary(ad.sinh),
  cosh: unary(ad.cosh),
  tanh: unary(ad.tanh),
  exp: unary(ad.exp),
  log: unary(ad.log),
  log1p: unary(ad.log1p),
  expm1: unary(ad.expm1),
  log2: unary((x) => ad.div(ad.log(x), Math.LN2)),
  log10: unary((x) => ad.div(ad.log(x), Math.LN10)),
  sqrt: unary(ad.sqrt),
  square: unary(ad.square),
  abs: unary(ad.abs),
  sigmoid: unary(ad.sigmoid),
  relu: unary(ad.relu),
  softplus: unary(ad.softplus),
  erf: unary(ad.erf),
  gelu: unary((x) => ad.gelu(x)),
  floor: unary(ad.floor),
  ceil: unary(ad.ceil),
  round: unary(ad.round),
  sign: unary(ad.sign),
  max: binary(ad.maximum),
  min: binary(ad.minimum),
  pow: binary(ad.pow),
  atan2: binary(ad.atan2),
  hypot: binary((x, y) => ad.sqrt(ad.add(ad.square(x), ad.square(y)))),
};

const BINARY: Readonly<Record<BinaryOp, (x: TensorLike, y: TensorLike) => Tensor>> = {
  "+": ad.add,
  "-": ad.sub,
  "*": ad.mul,
  "/": ad.div,
  "**": ad.pow,
};

const FOLD: Readonly<Record<BinaryOp, (x: number, y: number) => number>> = {
  "+": (x, y) => x + y,
  "-": (x, y) => x - y,
  "*": (x, y) => x * y,
  "/": (x, y) => x / y,
  "**": (x, y) => x ** y,
};

/**
 * Compile an expression into `(...values) => result`, the values of `variables` in that order.
 * Only whitelisted operations run. Literals are JS numbers (float64 inside transforms), and
 * arithmetic on two constants is folded, so `2 * pi` is one constant in the Wengert list.
 * Throws `CliError` for an unknown function or variable or a wrong number of arguments.
 * @example
 * const f = compile(parseExpression("(x1 + x2) * sin(x1)"), ["x1", "x2"]);
 * ad.grad(f, { argnums: [0, 1] })(1, 2); // [2.4623..., 0.8414...]
 */
export function compile(e: Expr, variables: readonly string[]): (...values: TensorLike[]) => TensorLike {
  checkExpression(e, variables);
  const index = new Map(variables.map((v, i) => [v, i]));
  return (...values: TensorLike[]): TensorLike => {
    const ev = (n: Expr): TensorLike => {
      switch (n.kind) {
        case "number":
        case "constant":
          return n.value;
        case "variable":
          return values[index.get(n.name)!]!;
        case "unary": {
          const x = ev(n.arg);
          if (n.op === "+") return x;
          return typeof x === "number" ? -x : ad.neg(x);
        }
        case "binary": {
          const x = ev(n.left);
          const y = ev(n.right);
          if (typeof x === "number" && typeof y === "number") return FOLD[n.op](x, y);
          return BINARY[n.op](x, y);
        }
        case "call":
          return IMPLEMENTATIONS[n.name as FunctionName](n.args.map(ev));
      }
    };
    return ev(e);
  };
}
