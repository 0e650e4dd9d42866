/**
 * @file What implicit differentiation saves, counted (not timed). The gradient of
 * L(θ) = Σ z⋆(θ), z⋆ = 0.995·sin(z⋆) + θ (a slowly converging contraction, run with tol 0 so
 * that exactly maxIter iterations happen) for maxIter = 10, 100, 1000:
 *
 * - `ad.fixedPoint` (implicit function theorem): the recorded tape holds one node whatever the
 *   iteration count — its inputs, output and residuals (θ and z⋆) are the saved bytes. The
 *   backward pass runs the adjoint iteration at the level below, recording nothing but one
 *   evaluation of f to take VJPs from.
 * - unrolled (a JS loop of z ← f(θ, z), differentiated through): the tape grows with maxIter.
 *
 * And the same for `ad.odeint` on dy/dt = −k·y over [0, 1, 2] with dopri5 at decreasing
 * tolerances (more steps): the adjoint method's tape is constant, the direct one grows.
 *
 * Saved bytes: distinct buffers held by the tape at the end of the forward pass (node inputs,
 * outputs, custom-rule residuals). Kernel evaluations: counted by an eval hook.
 *
 * Run: node --import tsx bench/implicit-memory.ts
 */

import { addEvalHook } from "../src/core/interpreter.js";
import type { Node } from "../src/core/tape.js";
import * as ad from "../src/index.js";
import { pullback, record } from "../src/transforms/reverse.js";
import { flatten } from "../src/tree.js";

const BYTES: Record<ad.DType, number> = {
  float32: 4,
  float64: 8,
  int32: 4,
  bool: 1,
  float16: 2,
  bfloat16: 2,
};

/** Nodes and distinct bytes a tape keeps (inputs, outputs, custom residuals). */
function tapeBytes(nodes: readonly Node[]): number {
  const seen = new Set<unknown>();
  let total = 0;
  const count = (t: unknown) => {
    if (!(t instanceof ad.Tensor)) return;
    const c = t._concrete();
    if (seen.has(c._buf)) return;
    seen.add(c._buf);
    total += c.size * BYTES[c.dtype];
  };
  for (const n of nodes) {
    for (const t of n.inputs) count(t);
    for (const t of n.outs) count(t);
    const res = (n.params as { residuals?: unknown } | null)?.residuals;
    if (res !== undefined) for (const t of flatten(res)[0]) count(t);
  }
  return total;
}

interface Measure {
  nodes: number;
  bytes: number;
  forwardEvals: number;
  backwardEvals: number;
  grad: ad.Tensor;
}

/** Record `loss` at `x`, count the tape, then pull back a 1 and count the backward kernels. */
function measure(loss: (x: ad.Tensor) => ad.Tensor, x: ad.Tensor): Measure {
  let evals = 0;
  const off = addEvalHook(() => evals++);
  try {
    const rec = record(loss as (...a: never[]) => unknown, [x], [0], false, "bench");
    const forwardEvals = evals;
    const nodes = rec.interp.nodes.length;
    const bytes = tapeBytes(rec.interp.nodes);
    const out = rec.interp.primalOf(rec.outLeaves[0] as ad.Tensor);
    const grad = pullback(rec, [ad.onesLike(out)])[0]![0]!;
    return { nodes, bytes, forwardEvals, backwardEvals: evals - forwardEvals, grad };
  } finally {
    off();
  }
}

function table(title: string, rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  console.log(`\n${title}`);
  for (const r of rows) console.log(r.map((s, c) => s.padStart(widths[c]!)).join("  "));
}

const maxDiff = (a: ad.Tensor, b: ad.Tensor) => ad.max(ad.abs(ad.sub(a, b))).item();

// ---- fixedPoint vs unrolling -----------------------------------------------------------------------

const theta = ad.tensor([0.01, -0.02, 0.015, 0.005, 0.03, -0.01, 0.0, 0.02], { dtype: "float64" });
const f = (t: ad.Tensor, z: ad.Tensor) => ad.add(ad.mul(ad.sin(z), 0.995), t);
const fpRows: string[][] = [
  [
    "maxIter",
    "IFT nodes",
    "IFT saved",
    "unrolled nodes",
    "unrolled saved",
    "IFT fwd evals",
    "IFT bwd evals",
    "unrolled bwd evals",
    "max |Δgrad|",
  ],
];
for (const maxIter of [10, 100, 1000]) {
  const ift = measure(
    (t) => ad.sum(ad.fixedPoint(f, t, ad.zerosLike(t), { tol: 0, maxIter }) as ad.Tensor),
    theta,
  );
  const unrolled = measure((t) => {
    let z = ad.zerosLike(t);
    for (let i = 0; i < maxIter; i++) z = f(t, z);
    return ad.sum(z);
  }, theta);
  fpRows.push([
    String(maxIter),
    String(ift.nodes),
    `${ift.bytes} B`,
    String(unrolled.nodes),
    `${unrolled.bytes} B`,
    String(ift.forwardEvals),
    String(ift.backwardEvals),
    String(unrolled.backwardEvals),
    maxDiff(ift.grad, unrolled.grad).toExponential(2),
  ]);
}
table(
  "fixedPoint (implicit) vs unrolled iterations: gradient of Σ z⋆, z = 0.995 sin z + θ, 8 float64 unknowns",
  fpRows,
);
console.log(
  "max |Δgrad|: implicit vs unrolled gradient (they differ while the iteration is far from converged, and agree as maxIter grows).",
);

// ---- odeint: adjoint vs direct -------------------------------------------------------------------------

const decay = (y: ad.Tensor, _t: ad.Tensor, k: ad.Tensor) => ad.mul(ad.neg(k), y);
const y0 = ad.tensor([1, 2, 3, 4], { dtype: "float64" });
const odeRows: string[][] = [
  ["rtol", "adjoint nodes", "adjoint saved", "direct nodes", "direct saved", "|Δgrad|", "|adjoint − exact|"],
];
for (const tol of [1e-4, 1e-7, 1e-10]) {
  const loss = (adjoint: boolean) => (k: ad.Tensor) =>
    ad.sum(ad.odeint(decay, y0, [0, 1, 2], k, { rtol: tol, atol: tol, adjoint }) as ad.Tensor);
  const k = ad.scalar(0.5, { dtype: "float64" });
  const a = measure(loss(true), k);
  const d = measure(loss(false), k);
  // d/dk Σ_i y0_i (e^{−k} + e^{−2k}) = −Σ y0 (e^{−k} + 2e^{−2k})
  const exact = -10 * (Math.exp(-0.5) + 2 * Math.exp(-1));
  odeRows.push([
    tol.toExponential(0),
    String(a.nodes),
    `${a.bytes} B`,
    String(d.nodes),
    `${d.bytes} B`,
    maxDiff(a.grad, d.grad).toExponential(2),
    Math.abs(a.grad.item() - exact).toExponential(2),
  ]);
}
table(
  "odeint: continuous adjoint vs differentiating through dopri5 (dy/dt = −k·y, 4 unknowns, ts = [0, 1, 2])",
  odeRows,
);
console.log(
  "nodes / saved: the recorded tape at the end of the forward pass (the adjoint's stays the same at every tolerance).",
);
