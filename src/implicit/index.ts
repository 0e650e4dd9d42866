/**
 * @file Implicit differentiation (API §3): `fixedPoint`, `customLinearSolve` and `customRoot`,
 * whose derivatives come from the implicit function theorem — linear solves at the solution —
 * instead of the solver's iterations.
 */

export { type FixedPointOptions, fixedPoint } from "./fixed-point.js";
export { customLinearSolve, type LinearSolveOptions } from "./linear-solve.js";
export { customRoot } from "./root.js";
