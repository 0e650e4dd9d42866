/** @file Whether eager operations are recorded for autograd (`ad.noGrad` turns it off). */

let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

/** Run `fn` with recording on or off, restoring the previous mode afterwards. */
export function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = enabled;
  enabled = on;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/**
 * Run `fn` without recording anything for eager autograd (PyTorch's `torch.no_grad()`); returns
 * its result. Use it for parameter updates and evaluation.
 * @example
 * const w = ad.tensor([1, 2], { requiresGrad: true });
 * ad.noGrad(() => w.mul(2)).requiresGrad; // false
 */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}
