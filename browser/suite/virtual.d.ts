/** @file Types of the module the suite's build generates: one loader per test file that runs in the browser. */

declare module "virtual:adjoint-test-files" {
  /** [file name, loader] in the order Node runs them (sorted by name). */
  export const files: readonly (readonly [string, () => Promise<unknown>])[];
}
