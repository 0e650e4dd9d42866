/**
 * @file The memory/compute trade of checkpointing, counted (not timed): the gradient of a chain
 * of L layers v_k = tanh(W_k v_{k-1}) (width 32, float32, with respect to x and every W_k) with
 * and without √L segment checkpointing (`ad.checkpointSequential(layers, round(√L), x)`).
 *
 * - Saved residual bytes: the distinct buffers held by the recorded tape at the end of the
 *   forward pass (node inputs, outputs and policy-kept values; the parameters W_k and the input
 *   x are not residuals and are left out), plus — for the checkpointed chain — the largest tape
 *   a recomputation builds during the backward pass (reported by an internal observer just before
 *   that recomputation's own backward sweep). The sum bounds the peak from above, as the outer
 *   tape is alive for the whole backward pass.
 * - Primitive evaluations: kernels run by the eval interpreter (an internal eval hook), for the
 *   forward pass alone and for the whole gradient.
 *
 * Run with `npm run bench` (after bench/run.ts) or `node --import tsx bench/checkpoint.ts`.
 */

import { addEvalHook } from "../src/core/interpreter.js";
import type { Node } from "../src/core/tape.js";
import * as ad from "../src/index.js";
import { observeCheckpointReplays } from "../src/transforms/checkpoint.js";
import { pullback, record } from "../src/transforms/reverse.js";

const WIDTH = 32;
const BYTES: Record<ad.DType, number> = {
  float32: 4,
  float64: 8,
  int32: 4,
  bool: 1,
  float16: 2,
  bfloat16: 2,
};

/** Bytes of the distinct buffers a tape holds, leaving out the buffers in `exclude`. */
function tapeBytes(nodes: readonly Node[], exclude: ReadonlySet<unknown>): number {
  const seen = new Set<unknown>(exclude);
  let total = 0;
  const count = (t: ad.Tensor) => {
    const c = t._concrete();
    if (seen.has(c._buf)) return;
    seen.add(c._buf);
    total += c.size * BYTES[c.dtype];
  };
  for (const n of nodes) {
    for (const t of n.inputs) count(t);
    for (const t of n.outs) count(t);
    const saved = (n.params as { saved?: readonly ad.Tensor[] } | null)?.saved;
    if (saved !== undefined) for (const t of saved) count(t);
  }
  return total;
}

interface Measure {
  savedBytes: number;
  forwardEvals: number;
  gradEvals: number;
  grads: ad.Tensor[];
}

function measure(L: number, segments: number | null): Measure {
  const keys = ad.random.split(ad.random.key(L), L + 1);
  const Ws = Array.from({ length: L }, (_, k) =>
    ad.mul(ad.random.normal(keys[k]!, [WIDTH, WIDTH]), 1 / Math.sqrt(WIDTH)),
  );
  const x = ad.random.normal(keys[L]!, [WIDTH, 1]);
  const loss = (ws: ad.Tensor[], v: ad.Tensor): ad.Tensor => {
    const fs = ws.map((w) => (h: ad.Tensor) => ad.tanh(ad.matmul(w, h)));
    if (segments === null) return ad.sum(fs.reduce((h, f) => f(h), v));
    return ad.sum(ad.checkpointSequential(fs, segments, v));
  };
  const exclude = new Set<unknown>([...Ws, x].map((t) => t._buf));
  let evals = 0;
  const off = addEvalHook(() => evals++);
  let replayPeak = 0;
  observeCheckpointReplays((nodes) => {
    replayPeak = Math.max(replayPeak, tapeBytes(nodes, exclude));
  });
  try {
    const rec = record(loss as (...a: never[]) => unknown, [Ws, x], [0, 1], false, "bench");
    const forwardEvals = evals;
    const atEnd = tapeBytes(rec.interp.nodes, exclude);
    const out = rec.outLeaves[0] as ad.Tensor;
    const g = pullback(rec, [ad.onesLike(rec.interp.primalOf(out))]);
    return { savedBytes: atEnd + replayPeak, forwardEvals, gradEvals: evals, grads: g.flat() };
  } finally {
    off();
    observeCheckpointReplays(null);
  }
}

function maxDiff(a: readonly ad.Tensor[], b: readonly ad.Tensor[]): number {
  let m = 0;
  a.forEach((t, i) => {
    const x = t.data();
    const y = b[i]!.data();
    for (let k = 0; k < x.length; k++) m = Math.max(m, Math.abs(x[k]! - y[k]!));
  });
  return m;
}

const rows: string[][] = [
  [
    "L",
    "segments",
    "saved plain",
    "saved √L-ckpt",
    "plain/ckpt",
    "ckpt/√L",
    "fwd evals",
    "grad evals plain",
    "grad evals ckpt",
    "extra/fwd",
    "max |Δgrad|",
  ],
];
for (const L of [16, 64, 256]) {
  const segments = Math.round(Math.sqrt(L));
  const plain = measure(L, null);
  const ck = measure(L, segments);
  rows.push([
    String(L),
    String(segments),
    `${plain.savedBytes} B`,
    `${ck.savedBytes} B`,
    (plain.savedBytes / ck.savedBytes).toFixed(2),
    (ck.savedBytes / Math.sqrt(L)).toFixed(0),
    String(plain.forwardEvals),
    String(plain.gradEvals),
    String(ck.gradEvals),
    ((ck.gradEvals - plain.gradEvals) / plain.forwardEvals).toFixed(2),
    String(maxDiff(plain.grads, ck.grads)),
  ]);
}

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(
  `\nCheckpointing v_k = tanh(W_k v_{k-1}), width ${WIDTH}, float32, gradient wrt x and every W_k (counts, not timings)`,
);
for (const r of rows) console.log(r.map((s, c) => s.padStart(widths[c]!)).join("  "));
console.log(
  "saved = peak bytes of saved residuals (tape at the end of the forward pass + the largest recomputation tape);",
);
console.log(
  "extra/fwd = (grad evals ckpt - grad evals plain) / forward evals: the recomputation, in forward passes.",
);
