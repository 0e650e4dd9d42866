/**
 * @file A small SVG line chart, written from scratch for `adjoint train`'s loss curve (no plotting
 * dependency): linear or logarithmic y axis with "nice" ticks, a legend, thin and thick lines and
 * markers. Non-finite points break a line instead of corrupting the drawing. Long series are
 * averaged into at most `maxPoints` buckets, so the file stays small for long runs.
 */

/** One line (or set of markers) of the chart. */
export interface Series {
  readonly label: string;
  /** [x, y] pairs in increasing x. */
  readonly points: readonly (readonly [number, number])[];
  readonly color: string;
  /** Stroke width (default 1.5). */
  readonly width?: number;
  /** Stroke opacity (default 1). */
  readonly opacity?: number;
  /** Draw markers instead of a line. */
  readonly markers?: boolean;
}

/** Options of `lineChartSvg`. */
export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly width?: number;
  readonly height?: number;
  /** Logarithmic y axis: true, false, or "auto" (default: when the data span more than 20×). */
  readonly logY?: boolean | "auto";
  /** Series longer than this are averaged into buckets (default 1500). */
  readonly maxPoints?: number;
}

/** Text safe inside an SVG element or attribute. */
function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!,
  );
}

/** A number with few digits for a tick label: 0.05, 1, 2.5, 1e-4. */
function tickLabel(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0).replace("+", "");
  return String(Number(v.toPrecision(3)));
}

/**
 * Evenly spaced round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k), about `count`.
 * @example
 * linearTicks(0, 800, 5); // [0, 200, 400, 600, 800]
 */
export function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/**
 * Tick values for a log axis over [lo, hi] (lo > 0): 1, 2, 5 × 10^k when the range spans few
 * decades, powers of ten otherwise.
 * @example
 * logTicks(0.03, 2.3); // [0.05, 0.1, 0.2, 0.5, 1, 2]
 */
export function logTicks(lo: number, hi: number): number[] {
  const d0 = Math.floor(Math.log10(lo));
  const d1 = Math.ceil(Math.log10(hi));
  const mults = d1 - d0 <= 3 ? [1, 2, 5] : [1];
  const out: number[] = [];
  for (let d = d0; d <= d1; d++)
    for (const m of mults) {
      const v = Number((m * 10 ** d).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  return out;
}

/** The nearest value 1, 2 or 5 × 10^k below (or above) `v` > 0. */
function niceLog(v: number, dir: "down" | "up"): number {
  const d = Math.floor(Math.log10(v));
  const cands = [-1, 0, 1].flatMap((k) =>
    [1, 2, 5].map((mult) => Number((mult * 10 ** (d + k)).toPrecision(12))),
  );
  return dir === "down" ? Math.max(...cands.filter((c) => c <= v)) : Math.min(...cands.filter((c) => c >= v));
}

/** Average consecutive points into at most `max` buckets (x and y averaged; non-finite y kept as gaps). */
function downsample(points: readonly (readonly [number, number])[], max: number): [number, number][] {
  if (points.length <= max) return points.map(([x, y]) => [x, y]);
  const out: [number, number][] = [];
  const size = points.length / max;
  for (let b = 0; b < max; b++) {
    const from = Math.floor(b * size);
    const to = Math.floor((b + 1) * size);
    let sx = 0;
    let sy = 0;
    let n = 0;
    for (let i = from; i < to; i++) {
      const [x, y] = points[i]!;
      if (!Number.isFinite(y)) continue;
      sx += x;
      sy += y;
      n++;
    }
    out.push(n === 0 ? [points[from]![0], Number.NaN] : [sx / n, sy / n]);
  }
  return out;
}

/**
 * Draw series as an SVG line chart; returns the SVG document.
 * @example
 * const svg = lineChartSvg([{ label: "loss", points: [[1, 2.3], [2, 1.1], [3, 0.6]], color: "#1f77b4" }],
 *   { title: "Training loss", xLabel: "step", yLabel: "loss" });
 */
export function lineChartSvg(series: readonly Series[], opts: ChartOptions): string {
  const W = opts.width ?? 720;
  const H = opts.height ?? 420;
  const m = { left: 70, right: 20, top: 48, bottom: 52 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const data = series.map((s) => ({ ...s, pts: downsample(s.points, opts.maxPoints ?? 1500) }));
  const finite = data.flatMap((s) => s.pts.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  let x0 = Math.min(...finite.map(([x]) => x));
  let x1 = Math.max(...finite.map(([x]) => x));
  let y0 = Math.min(...finite.map(([, y]) => y));
  let y1 = Math.max(...finite.map(([, y]) => y));
  if (finite.length === 0) [x0, x1, y0, y1] = [0, 1, 0, 1];
  if (x1 === x0) x1 = x0 + 1;
  const logY = opts.logY === "auto" || opts.logY === undefined ? y0 > 0 && y1 / y0 > 20 : opts.logY && y0 > 0;
  if (y1 === y0) [y0, y1] = [y0 - 0.5 * Math.abs(y0 || 1), y1 + 0.5 * Math.abs(y1 || 1)];
  let yTicks: number[];
  if (logY) {
    // Widen to the neighbouring 1-2-5 values so that the curve never touches the frame.
    y0 = niceLog(y0, "down");
    y1 = niceLog(y1, "up");
    yTicks = logTicks(y0, y1);
  } else {
    const pad = (y1 - y0) * 0.05;
    y0 = y0 >= 0 && y0 - pad < 0 ? 0 : y0 - pad;
    y1 += pad;
    yTicks = linearTicks(y0, y1, 5);
  }
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = logY
    ? (y: number) => m.top + (1 - (Math.log(y) - Math.log(y0)) / (Math.log(y1) - Math.log(y0))) * ph
    : (y: number) => m.top + (1 - (y - y0) / (y1 - y0)) * ph;
  const f = (v: number) => v.toFixed(1);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="600">${escapeXml(opts.title)}</text>`,
  );
  // Grid and tick labels.
  for (const t of yTicks) {
    const y = f(sy(t));
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#444">${tickLabel(t)}</text>`,
    );
  }
  for (const t of linearTicks(x0, x1, 6)) {
    const x = f(sx(t));
    out.push(
      `<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + ph}" stroke="#f0f0f0"/>`,
      `<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle" fill="#444">${tickLabel(t)}</text>`,
    );
  }
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`,
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(opts.yLabel)}${logY ? " (log scale)" : ""}</text>`,
  );
  // The series, clipped to the plot area.
  out.push(
    `<clipPath id="plot"><rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}"/></clipPath>`,
    `<g clip-path="url(#plot)">`,
  );
  for (const s of data) {
    const ok = ([x, y]: [number, number]) => Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
    if (s.markers) {
      for (const p of s.pts)
        if (ok(p))
          out.push(`<circle cx="${f(sx(p[0]))}" cy="${f(sy(p[1]))}" r="4" fill="${s.color}" stroke="#fff"/>`);
      continue;
    }
    let d = "";
    let pen = false;
    for (const p of s.pts) {
      if (!ok(p)) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${f(sx(p[0]))} ${f(sy(p[1]))}`;
      pen = true;
    }
    if (d !== "")
      out.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.width ?? 1.5}" stroke-opacity="${s.opacity ?? 1}" stroke-linejoin="round"/>`,
      );
  }
  out.push("</g>");
  // Legend, top right inside the plot.
  // About 6.5 pixels per character at 12px.
  const legendWidth = 44 + 6.5 * Math.max(...series.map((s) => s.label.length));
  const lx = m.left + pw - legendWidth;
  out.push(
    `<rect x="${f(lx - 8)}" y="${m.top + 4}" width="${f(legendWidth)}" height="${series.length * 18 + 6}" fill="#ffffff" fill-opacity="0.85"/>`,
  );
  series.forEach((s, i) => {
    const y = m.top + 16 + i * 18;
    out.push(
      s.markers
        ? `<circle cx="${lx + 12}" cy="${y}" r="4" fill="${s.color}"/>`
        : `<line x1="${lx}" x2="${lx + 24}" y1="${y}" y2="${y}" stroke="${s.color}" stroke-width="${Math.max(2, s.width ?? 1.5)}" stroke-opacity="${s.opacity ?? 1}"/>`,
      `<text x="${lx + 32}" y="${y}" dominant-baseline="middle">${escapeXml(s.label)}</text>`,
    );
  });
  out.push("</svg>", "");
  return out.join("\n");
}
