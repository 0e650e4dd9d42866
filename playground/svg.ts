/** @file Small helpers for building SVG and formatting numbers in the playground's views. */

const NS = "http://www.w3.org/2000/svg";

/**
 * Create an SVG element with attributes and children (strings become text nodes).
 * @example
 * svg("circle", { cx: 5, cy: 5, r: 2, class: "dot" });
 */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  ...children: (Node | string)[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/**
 * A number for display: up to `digits` significant digits, trailing zeros dropped, exponent
 * form for very large or small magnitudes.
 * @example
 * fmt(2.4623779024123156); // "2.462378"
 */
export function fmt(x: number, digits = 7): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  if (x === 0) return "0";
  const a = Math.abs(x);
  const s = a >= 1e7 || a < 1e-5 ? x.toExponential(digits - 1) : x.toPrecision(digits);
  const [m, e] = s.split("e") as [string, string | undefined];
  const mant = m.includes(".") ? m.replace(/0+$/, "").replace(/\.$/, "") : m;
  return (e === undefined ? mant : `${mant}e${e.replace("+", "")}`).replace(/^-/, "−");
}
