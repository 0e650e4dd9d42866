/** @file `ad.linalg`: linear algebra beyond matmul. (solve, inv, det, cholesky, ... come with the linalg issue.) */

export { type NormOptions, norm } from "./norm.js";
