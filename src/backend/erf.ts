/** @file A double-precision error function (Taylor series near 0, Chebyshev erfc elsewhere; ~1e-16). */

// Chebyshev coefficients of erfc from Numerical Recipes (3rd ed., §6.2.2).
const COF = [
  -1.3026537197817094, 6.419697923564902e-1, 1.9476473204185836e-2, -9.561514786808631e-3,
  -9.46595344482036e-4, 3.66839497852761e-4, 4.2523324806907e-5, -2.0278578112534e-5, -1.624290004647e-6,
  1.30365583558e-6, 1.5626441722e-8, -8.5238095915e-8, 6.529054439e-9, 5.059343495e-9, -9.91364156e-10,
  -2.27365122e-10, 9.6467911e-11, 2.394038e-12, -6.886027e-12, 8.94487e-13, 3.13092e-13, -1.12708e-13,
  3.81e-16, 7.106e-15, -1.523e-15, -9.4e-17, 1.21e-16, -2.8e-17,
];

function erfcCheb(z: number): number {
  let d = 0;
  let dd = 0;
  const t = 2 / (2 + z);
  const ty = 4 * t - 2;
  for (let j = COF.length - 1; j > 0; j--) {
    const tmp = d;
    d = ty * d - dd + COF[j]!;
    dd = tmp;
  }
  return t * Math.exp(-z * z + 0.5 * (COF[0]! + ty * d) - dd);
}

const TWO_OVER_SQRT_PI = 1.1283791670955126;

/** erf(x) to about 1e-16 relative error. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const ax = Math.abs(x);
  if (ax < 0.5) {
    // Maclaurin series: keeps full relative precision near 0.
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; n < 30; n++) {
      term *= -x2 / n;
      const c = term / (2 * n + 1);
      sum += c;
      if (Math.abs(c) < 1e-17 * Math.abs(sum)) break;
    }
    return TWO_OVER_SQRT_PI * sum;
  }
  const r = 1 - erfcCheb(ax);
  return x >= 0 ? r : -r;
}
