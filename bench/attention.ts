/**
 * @file What the FlashAttention-style custom VJP of `ad.nn.scaledDotProductAttention` saves for
 * the backward pass, against the plain composition softmax(Q·Kᵀ/√d)·V, for sequence lengths
 * T = 64 … 1024 (4 heads of width 32, float32, gradient wrt Q, K and V).
 *
 * - Saved residual bytes: the distinct buffers held by the recorded tape at the end of the
 *   forward pass — every node's inputs and outputs plus a custom VJP's residuals — leaving out
 *   Q, K and V themselves (they are the inputs, alive anyway). The plain composition keeps the
 *   T×T scores and probabilities (O(T²)); the custom VJP keeps the output and one log-sum-exp
 *   per query row (O(T)) and recomputes the probabilities block by block in the backward pass.
 * - Time: the wall time of one gradient (forward + backward), median of a few runs, on the
 *   default backend.
 * - max |Δgrad|: the largest difference between the two gradients.
 *
 * Run: `node --import tsx bench/attention.ts` (add a number to cap T, e.g. `… attention.ts 256`).
 */

import type { Node } from "../src/core/tape.js";
import * as ad from "../src/index.js";
import { pullback, record } from "../src/transforms/reverse.js";

const HEADS = 4;
const D = 32;
const BYTES: Record<ad.DType, number> = {
  float32: 4,
  float64: 8,
  int32: 4,
  bool: 1,
  float16: 2,
  bfloat16: 2,
};

type Attn = (q: ad.Tensor, k: ad.Tensor, v: ad.Tensor) => ad.Tensor;

const plain: Attn = (q, k, v) =>
  ad.matmul(ad.softmax(ad.mul(ad.matmul(q, ad.transpose(k, [0, 2, 1])), 1 / Math.sqrt(D)), -1), v);
const flash: Attn = (q, k, v) => ad.nn.scaledDotProductAttention(q, k, v);

/** Bytes of the distinct buffers a tape holds (inputs, outputs, custom-VJP residuals), minus `exclude`. */
function tapeBytes(nodes: readonly Node[], exclude: ReadonlySet<unknown>): number {
  const seen = new Set<unknown>(exclude);
  let total = 0;
  const count = (x: unknown) => {
    if (!(x instanceof ad.Tensor)) return;
    const c = x._concrete();
    if (seen.has(c._buf)) return;
    seen.add(c._buf);
    total += c.size * BYTES[c.dtype];
  };
  for (const n of nodes) {
    n.inputs.forEach(count);
    n.outs.forEach(count);
    const residuals = (n.params as { residuals?: unknown } | null)?.residuals;
    if (residuals !== undefined) ad.tree.leaves(residuals).forEach(count);
  }
  return total;
}

function measure(f: Attn, T: number): { saved: number; grads: ad.Tensor[] } {
  const [kq, kk, kv] = ad.random.split(ad.random.key(T), 3);
  const q = ad.random.normal(kq!, [HEADS, T, D]);
  const k = ad.random.normal(kk!, [HEADS, T, D]);
  const v = ad.random.normal(kv!, [HEADS, T, D]);
  const loss = (a: ad.Tensor, b: ad.Tensor, c: ad.Tensor) => ad.sum(ad.tanh(f(a, b, c)));
  const rec = record(loss as (...a: never[]) => unknown, [q, k, v], [0, 1, 2], false, "bench");
  const saved = tapeBytes(rec.interp.nodes, new Set([q._buf, k._buf, v._buf]));
  const out = rec.outLeaves[0] as ad.Tensor;
  const grads = pullback(rec, [ad.onesLike(rec.interp.primalOf(out))]).flat();
  return { saved, grads };
}

function medianMs(fn: () => unknown, reps: number): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)]!;
}

function maxDiff(a: readonly ad.Tensor[], b: readonly ad.Tensor[]): number {
  let m = 0;
  a.forEach((t, i) => {
    const x = t.data();
    const y = b[i]!.data();
    for (let j = 0; j < x.length; j++) m = Math.max(m, Math.abs(x[j]! - y[j]!));
  });
  return m;
}

const fmtBytes = (b: number) =>
  b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(2)} MiB` : `${(b / 2 ** 10).toFixed(1)} KiB`;

// The largest T: a number argument, 256 with `quick` (as bench/all.ts passes it), else 1024.
const numeric = process.argv.slice(2).find((a) => /^\d+$/.test(a));
const cap = numeric !== undefined ? Number(numeric) : process.argv.includes("quick") ? 256 : 1024;
const rows: string[][] = [
  [
    "T",
    "saved plain",
    "saved flash",
    "plain/flash",
    "plain/T²",
    "flash/T",
    "ms plain",
    "ms flash",
    "max |Δgrad|",
  ],
];
for (const T of [64, 128, 256, 512, 1024].filter((t) => t <= cap)) {
  const p = measure(plain, T);
  const fl = measure(flash, T);
  const reps = T >= 512 ? 3 : 5;
  const [kq, kk, kv] = ad.random.split(ad.random.key(T), 3);
  const args = [kq!, kk!, kv!].map((key) => ad.random.normal(key, [HEADS, T, D]));
  const g = (f: Attn) => () =>
    ad.grad((a: ad.Tensor, b: ad.Tensor, c: ad.Tensor) => ad.sum(ad.tanh(f(a, b, c))), {
      argnums: [0, 1, 2],
    })(args[0]!, args[1]!, args[2]!);
  rows.push([
    String(T),
    fmtBytes(p.saved),
    fmtBytes(fl.saved),
    (p.saved / fl.saved).toFixed(1),
    (p.saved / (T * T)).toFixed(1),
    (fl.saved / T).toFixed(0),
    medianMs(g(plain), reps).toFixed(1),
    medianMs(g(flash), reps).toFixed(1),
    maxDiff(p.grads, fl.grads).toExponential(1),
  ]);
}

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(
  `\nAttention residuals: softmax(QKᵀ/√d)V, ${HEADS} heads × d = ${D}, float32, gradient wrt Q, K, V`,
);
for (const r of rows) console.log(r.map((s, c) => s.padStart(widths[c]!)).join("  "));
console.log(
  "saved = bytes of the distinct buffers the tape holds after the forward pass (Q, K, V excluded);",
);
console.log(
  "plain/T² constant = quadratic memory; flash/T constant = linear memory (output + per-row log-sum-exp).",
);
