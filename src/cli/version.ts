/**
 * @file The package version that `adjoint --version` prints. Kept as a constant so the CLI needs
 * no file access; test/cli.test.ts checks that it equals package.json's `version`.
 */

/**
 * The version of the `adjoint` package.
 * @example
 * VERSION; // "0.1.0"
 */
export const VERSION = "0.1.0";
