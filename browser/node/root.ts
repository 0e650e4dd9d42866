/** @file The repository root, for the Node-side browser tooling (which lives two folders down). */

import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Absolute path of the repository root. */
export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
