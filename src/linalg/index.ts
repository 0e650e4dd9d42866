/** @file `ad.linalg`: linear algebra beyond matmul (solves, inverses, determinants, decompositions, norms). */

export { type CholeskyOptions, cholesky } from "./cholesky.js";
export { det, slogdet } from "./det.js";
export { eigh } from "./eigh.js";
export { type NormOptions, norm } from "./norm.js";
export {
  inv,
  type LuFactorization,
  luFactor,
  solve,
  type TriangularSolveOptions,
  triangularSolve,
} from "./solve.js";
