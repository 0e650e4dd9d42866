/**
 * @file The whitelist of the CLI's expression language: the functions an expression may call,
 * with their number of arguments, and the check that an expression uses only those and only the
 * variables given with `--at`. Nothing here loads the differentiation library, so a mistake in
 * the input is reported without paying for that.
 */

import { CliError, type Expr } from "./parse.js";

/**
 * Every function an expression may call: its number of arguments, a one-line description and,
 * where the usual `x` / `x, y` would mislead, the names of its arguments.
 * `interpret.ts` maps each one to adjoint operations (its table is typed by these keys, so the
 * two cannot drift apart).
 */
export const FUNCTION_SPECS = {
  sin: { arity: 1, doc: "sine" },
  cos: { arity: 1, doc: "cosine" },
  tan: { arity: 1, doc: "tangent" },
  asin: { arity: 1, doc: "arcsine" },
  acos: { arity: 1, doc: "arccosine" },
  atan: { arity: 1, doc: "arctangent" },
  sinh: { arity: 1, doc: "hyperbolic sine" },
  cosh: { arity: 1, doc: "hyperbolic cosine" },
  tanh: { arity: 1, doc: "hyperbolic tangent" },
  exp: { arity: 1, doc: "e ** x" },
  log: { arity: 1, doc: "natural logarithm" },
  log1p: { arity: 1, doc: "log(1 + x)" },
  expm1: { arity: 1, doc: "exp(x) - 1" },
  log2: { arity: 1, doc: "base-2 logarithm" },
  log10: { arity: 1, doc: "base-10 logarithm" },
  sqrt: { arity: 1, doc: "square root" },
  square: { arity: 1, doc: "x * x" },
  abs: { arity: 1, doc: "absolute value (derivative 0 at 0)" },
  sigmoid: { arity: 1, doc: "1 / (1 + exp(-x))" },
  relu: { arity: 1, doc: "max(x, 0) (derivative 0 at 0)" },
  softplus: { arity: 1, doc: "log(1 + exp(x))" },
  erf: { arity: 1, doc: "error function" },
  gelu: { arity: 1, doc: "x * Phi(x), exact erf form" },
  floor: { arity: 1, doc: "round down (derivative 0)" },
  ceil: { arity: 1, doc: "round up (derivative 0)" },
  round: { arity: 1, doc: "round to nearest (derivative 0)" },
  sign: { arity: 1, doc: "-1, 0 or 1 (derivative 0)" },
  max: { arity: 2, doc: "the larger (a tie splits the derivative)" },
  min: { arity: 2, doc: "the smaller (a tie splits the derivative)" },
  pow: { arity: 2, doc: "x ** y" },
  atan2: { arity: 2, args: "y, x", doc: "the angle of the point (x, y)" },
  hypot: { arity: 2, doc: "sqrt(x**2 + y**2)" },
} as const satisfies Record<string, { readonly arity: number; readonly doc: string; readonly args?: string }>;

/** The name of a whitelisted function. */
export type FunctionName = keyof typeof FUNCTION_SPECS;

/**
 * The whitelisted function names, in a `Set` rather than looked up on an object, so names such
 * as `constructor` or `__proto__` are simply unknown.
 * @example
 * FUNCTION_NAMES.has("sin"); // true
 * FUNCTION_NAMES.has("constructor"); // false
 */
export const FUNCTION_NAMES: ReadonlySet<string> = new Set(Object.keys(FUNCTION_SPECS));

/**
 * Narrow a name to a whitelisted function.
 * @example
 * isFunctionName("cos"); // true
 */
export function isFunctionName(name: string): name is FunctionName {
  return FUNCTION_NAMES.has(name);
}

/**
 * Check that every function `e` calls is whitelisted and gets the right number of arguments,
 * and that every variable is one of `variables`. Throws the first problem as a one-line
 * `CliError` naming its column.
 * @example
 * checkExpression(parseExpression("foo(x)"), ["x"]); // throws CliError: unknown function 'foo' ...
 */
export function checkExpression(e: Expr, variables: readonly string[]): void {
  const names = new Set(variables);
  const walk = (n: Expr): void => {
    switch (n.kind) {
      case "call": {
        const col = n.pos + 1;
        if (!isFunctionName(n.name))
          throw new CliError(
            `unknown function '${n.name}' at column ${col} (known: ${[...FUNCTION_NAMES].join(", ")})`,
            col,
          );
        const arity = FUNCTION_SPECS[n.name].arity;
        if (n.args.length !== arity) {
          const want = `${arity} argument${arity === 1 ? "" : "s"}`;
          throw new CliError(`${n.name}() takes ${want}, got ${n.args.length} (at column ${col})`, col);
        }
        n.args.forEach(walk);
        return;
      }
      case "variable":
        if (!names.has(n.name)) {
          const given =
            variables.length === 0 ? "no variables were given" : `--at gives ${variables.join(", ")}`;
          throw new CliError(
            `unknown variable '${n.name}' at column ${n.pos + 1}: give its value with --at ${n.name}=... (${given})`,
            n.pos + 1,
          );
        }
        return;
      case "unary":
        walk(n.arg);
        return;
      case "binary":
        walk(n.left);
        walk(n.right);
        return;
      default:
        return;
    }
  };
  walk(e);
}
