/**
 * @file The plot of f, f′ and f″ along one variable as SVG: axes with round ticks, the three
 * curves (broken where a value is not finite), the tangent line of f at the chosen point, and
 * a marker there. The y range covers the bulk of the finite values so a pole (tan, 1/x) does
 * not flatten everything else.
 */

import type { Samples } from "./model.js";
import { fmt, svg } from "./svg.js";

const W = 760;
const H = 270;
const M = { left: 52, right: 16, top: 14, bottom: 30 };

/** Round tick positions covering [lo, hi], about `count` of them. */
function ticks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

/** The y range: the 2nd to 98th percentile of the finite values, widened a little. */
function yRange(series: readonly (readonly number[])[]): [number, number] {
  const vals = series
    .flat()
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  if (vals.length === 0) return [-1, 1];
  let lo = vals[Math.floor(vals.length * 0.02)]!;
  let hi = vals[Math.min(vals.length - 1, Math.ceil(vals.length * 0.98))]!;
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const pad = (hi - lo) * 0.08;
  return [lo - pad, hi + pad];
}

/** A polyline path through the points, broken at non-finite or far out-of-range values. */
function pathOf(
  xs: readonly number[],
  ys: readonly number[],
  sx: (x: number) => number,
  sy: (y: number) => number,
): string {
  let d = "";
  let pen = false;
  const limit = H * 4;
  ys.forEach((y, i) => {
    const py = sy(y);
    if (!Number.isFinite(py) || Math.abs(py) > limit) {
      pen = false;
      return;
    }
    d += `${pen ? "L" : "M"}${sx(xs[i]!).toFixed(2)} ${py.toFixed(2)}`;
    pen = true;
  });
  return d;
}

/** What the plot marks: the point on the axis and the values there. */
export interface PlotMark {
  readonly variable: string;
  readonly at: number;
  readonly value: number;
  readonly slope: number;
}

/**
 * Draw the samples into `host`, replacing what was there.
 * @example
 * renderPlot(document.querySelector("#plot")!, samples, { variable: "x1", at: 1, value: 2.52, slope: 2.46 });
 */
export function renderPlot(host: HTMLElement, s: Samples, mark: PlotMark): void {
  const x0 = s.xs[0]!;
  const x1 = s.xs[s.xs.length - 1]!;
  const [y0, y1] = yRange([s.f, s.d1, s.d2]);
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const sy = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const root = svg("svg", { class: "plot", viewBox: `0 0 ${W} ${H}`, role: "img" });
  root.setAttribute("aria-label", `f, f′ and f″ along ${mark.variable}`);
  const clipId = "plot-clip";
  const clip = svg("clipPath", { id: clipId });
  clip.append(
    svg("rect", { x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom }),
  );
  root.append(svg("defs", {}, clip));

  const grid = svg("g", { class: "grid" });
  for (const t of ticks(x0, x1, 8)) {
    grid.append(svg("line", { x1: sx(t), x2: sx(t), y1: M.top, y2: H - M.bottom }));
    grid.append(
      svg("text", { class: "tick", x: sx(t), y: H - M.bottom + 16, "text-anchor": "middle" }, fmt(t, 4)),
    );
  }
  for (const t of ticks(y0, y1, 6)) {
    grid.append(svg("line", { x1: M.left, x2: W - M.right, y1: sy(t), y2: sy(t) }));
    grid.append(svg("text", { class: "tick", x: M.left - 8, y: sy(t) + 4, "text-anchor": "end" }, fmt(t, 4)));
  }
  root.append(grid);
  const axes = svg("g", { class: "axes" });
  if (y0 < 0 && y1 > 0) axes.append(svg("line", { x1: M.left, x2: W - M.right, y1: sy(0), y2: sy(0) }));
  if (x0 < 0 && x1 > 0) axes.append(svg("line", { x1: sx(0), x2: sx(0), y1: M.top, y2: H - M.bottom }));
  axes.append(
    svg("text", { class: "axis-label", x: W - M.right, y: H - 4, "text-anchor": "end" }, mark.variable),
  );
  root.append(axes);

  const curves = svg("g", { "clip-path": `url(#${clipId})` });
  // The tangent line of f at the point: slope f′ from reverse mode.
  const tl = (x: number) => mark.value + mark.slope * (x - mark.at);
  if (Number.isFinite(mark.value) && Number.isFinite(mark.slope))
    curves.append(
      svg("line", { class: "tangent-line", x1: sx(x0), y1: sy(tl(x0)), x2: sx(x1), y2: sy(tl(x1)) }),
    );
  curves.append(
    svg("line", { class: "marker-line", x1: sx(mark.at), x2: sx(mark.at), y1: M.top, y2: H - M.bottom }),
  );
  for (const [cls, ys] of [
    ["curve-d2", s.d2],
    ["curve-d1", s.d1],
    ["curve-f", s.f],
  ] as const) {
    curves.append(svg("path", { class: `curve ${cls}`, d: pathOf(s.xs, ys, sx, sy) }));
  }
  if (Number.isFinite(mark.value))
    curves.append(svg("circle", { class: "marker-dot", cx: sx(mark.at), cy: sy(mark.value), r: 4.5 }));
  root.append(curves);
  host.replaceChildren(root);
}
