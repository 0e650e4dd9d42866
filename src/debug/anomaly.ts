/** @file `ad.detectAnomaly` / `ad.setDetectAnomaly`: the user-facing switch of anomaly detection. */

import { isAnomalyEnabled, setAnomalyEnabled } from "../core/anomaly-mode.js";
import { TransformError } from "../errors.js";

/**
 * Run `fn` with anomaly detection on and return its result: the first NaN/Inf created in a
 * forward or backward computation throws an `AnomalyError` naming the primitive, the pass and
 * the user's source line of the forward operation.
 * @example
 * ad.detectAnomaly(() => ad.grad((x) => ad.sqrt(x))(0)); // AnomalyError: sqrt: the backward pass produced Inf ...
 */
export function detectAnomaly<T>(fn: () => T): T {
  if (typeof fn !== "function") throw new TransformError("detectAnomaly: expected a function");
  const prev = isAnomalyEnabled();
  setAnomalyEnabled(true);
  try {
    return fn();
  } finally {
    setAnomalyEnabled(prev);
  }
}

/**
 * Turn anomaly detection on or off globally (off by default; free when off).
 * @example
 * ad.setDetectAnomaly(true);
 */
export function setDetectAnomaly(on: boolean): void {
  if (typeof on !== "boolean") throw new TransformError("setDetectAnomaly: expected a boolean");
  setAnomalyEnabled(on);
}
