/** @file Every user-facing operation. No derivative rules live here: ops compose primitives. */

export * from "./compare-values.js";
export { astype, toTensor } from "./convert.js";
export * from "./creation.js";
export * from "./elementwise.js";
export * from "./linalg.js";
export * from "./nn.js";
export * from "./reduction.js";
export * from "./shape.js";
