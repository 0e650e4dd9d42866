/**
 * @file A character-level transformer language model trained on twelve of Shakespeare's sonnets
 * (examples/data/sonnets.txt, public domain, 6.9 KB): token and position embeddings, pre-norm
 * transformer blocks (causal `nn.MultiHeadAttention` and a GELU MLP, each with `nn.LayerNorm` and a
 * residual connection), AdamW with warmup and cosine decay, gradient clipping, then sampling.
 *
 * The last sonnet (CXXX, 9% of the text) is held out. Losses are in nats per character; for
 * reference, on the held-out sonnet a uniform guess over the 58 characters costs ln 58 = 4.060,
 * the character frequencies of the training text (unigram model) 3.086, and a count-based bigram
 * model (add-0.1 smoothing) 2.406 (computed by `baselines`).
 *
 * Measured (defaults: width 48, 4 heads, 1 block, context 32, 300 steps of 16 windows, peak lr
 * 1e-2): 2.112 nats/char on the training text and 2.333 on the held-out sonnet, below the bigram
 * model's 2.406; 27 s of CPU time (81 s wall-clock on a shared 2-core machine).
 *
 * Run: npx tsx examples/char-lm.ts
 */

import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import * as ad from "adjoint";

/** The bundled text. */
export function loadSonnets(): string {
  return readFileSync(new URL("./data/sonnets.txt", import.meta.url), "utf8");
}

/** A character vocabulary: sorted distinct characters and the encode/decode maps. */
export interface Vocab {
  chars: string[];
  encode(s: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
}

/**
 * The vocabulary of `text` (every distinct character).
 * @example
 * makeVocab("abca").chars; // ["a", "b", "c"]
 */
export function makeVocab(text: string): Vocab {
  const chars = [...new Set(text)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  return {
    chars,
    encode: (s) => Int32Array.from(s, (c) => index.get(c) ?? 0),
    decode: (ids) => Array.from(ids, (i) => chars[i] ?? "?").join(""),
  };
}

/** Split the text into training text and the held-out last sonnet. */
export function splitText(text: string): { train: string; heldOut: string } {
  const at = text.lastIndexOf("\n\nCXXX\n");
  return { train: text.slice(0, at + 2), heldOut: text.slice(at + 2) };
}

/** Model sizes. */
export interface LMConfig {
  vocab: number;
  context: number;
  dim: number;
  heads: number;
  layers: number;
}

/** One pre-norm transformer block: x + attn(LN x), then x + MLP(LN x). */
class Block extends ad.nn.Module {
  ln1: ad.nn.LayerNorm;
  attn: ad.nn.MultiHeadAttention;
  ln2: ad.nn.LayerNorm;
  fc1: ad.nn.Linear;
  fc2: ad.nn.Linear;
  constructor(dim: number, heads: number, key: ad.Tensor) {
    super();
    const [k1, k2, k3] = ad.random.split(key, 3);
    this.ln1 = new ad.nn.LayerNorm(dim);
    this.attn = new ad.nn.MultiHeadAttention(dim, heads, { key: k1! });
    this.ln2 = new ad.nn.LayerNorm(dim);
    this.fc1 = new ad.nn.Linear(dim, 4 * dim, { key: k2! });
    this.fc2 = new ad.nn.Linear(4 * dim, dim, { key: k3! });
  }
  forward(x: ad.Tensor): ad.Tensor {
    const a = this.ln1.forward(x);
    x = ad.add(x, this.attn.forward(a, a, a, { causal: true }));
    return ad.add(x, this.fc2.forward(ad.gelu(this.fc1.forward(this.ln2.forward(x)))));
  }
}

/**
 * A decoder-only transformer over characters: ids `[batch, T]` → logits `[batch, T, vocab]`.
 * @example
 * const lm = new CharTransformer({ vocab: 58, context: 32, dim: 48, heads: 4, layers: 1 }, ad.random.key(0));
 * lm.forward(ad.zeros([2, 32], { dtype: "int32" })).shape; // [2, 32, 58]
 */
export class CharTransformer extends ad.nn.Module {
  tokens: ad.nn.Embedding;
  positions: ad.Tensor;
  blocks: Block[];
  lnF: ad.nn.LayerNorm;
  head: ad.nn.Linear;
  readonly config: LMConfig;
  constructor(config: LMConfig, key: ad.Tensor) {
    super();
    this.config = config;
    const keys = ad.random.split(key, config.layers + 3);
    this.tokens = new ad.nn.Embedding(config.vocab, config.dim, { key: keys[0]! });
    // Learned positions, small at the start so that the tokens dominate.
    this.positions = ad.tensor(ad.mul(ad.random.normal(keys[1]!, [config.context, config.dim]), 0.02), {
      requiresGrad: true,
    });
    this.blocks = Array.from(
      { length: config.layers },
      (_, i) => new Block(config.dim, config.heads, keys[3 + i]!),
    );
    this.lnF = new ad.nn.LayerNorm(config.dim);
    this.head = new ad.nn.Linear(config.dim, config.vocab, { key: keys[2]! });
  }
  forward(ids: ad.Tensor): ad.Tensor {
    const t = ids.shape[1]!;
    const pos =
      t === this.config.context ? this.positions : ad.slice(this.positions, [0, 0], [t, this.config.dim]);
    let x = ad.add(this.tokens.forward(ids), pos);
    for (const b of this.blocks) x = b.forward(x);
    return this.head.forward(this.lnF.forward(x));
  }
}

/** Random training windows: inputs `[batch, T]` and next-character targets `[batch, T]`. */
function batchOf(
  data: Int32Array,
  context: number,
  starts: ArrayLike<number>,
): { x: ad.Tensor; y: ad.Tensor } {
  const n = starts.length;
  const x = new Int32Array(n * context);
  const y = new Int32Array(n * context);
  for (let b = 0; b < n; b++) {
    const s = starts[b]!;
    x.set(data.subarray(s, s + context), b * context);
    y.set(data.subarray(s + 1, s + context + 1), b * context);
  }
  return {
    x: ad.tensor(x, { dtype: "int32", shape: [n, context] }),
    y: ad.tensor(y, { dtype: "int32", shape: [n, context] }),
  };
}

/** Mean next-character loss (nats) of `text`, predicting every character after the first. */
export function evaluateLoss(model: CharTransformer, vocab: Vocab, text: string): number {
  const data = vocab.encode(text);
  const t = model.config.context;
  // Non-overlapping windows, each target predicted from the window's earlier characters: the
  // full windows as one batch, then the shorter remainder.
  const full = Math.floor((data.length - 1) / t);
  const rest = data.length - 1 - full * t;
  let total = 0;
  ad.noGrad(() => {
    const sum = (len: number, starts: number[]) => {
      const { x, y } = batchOf(data, len, starts);
      const logits = ad.reshape(model.forward(x), [starts.length * len, -1]);
      return ad.nn.crossEntropy(logits, ad.reshape(y, [-1]), { reduction: "sum" }).item();
    };
    if (full > 0)
      total += sum(
        t,
        Array.from({ length: full }, (_, i) => i * t),
      );
    if (rest > 0) total += sum(rest, [full * t]);
  });
  return total / (data.length - 1);
}

/** Unigram and bigram baselines (nats per character on `heldOut`) and ln(vocabulary size). */
export function baselines(
  train: string,
  heldOut: string,
  vocab: Vocab,
): { uniform: number; unigram: number; bigram: number } {
  const v = vocab.chars.length;
  const tr = vocab.encode(train);
  const te = vocab.encode(heldOut);
  const uni = new Float64Array(v).fill(0.1);
  const bi = new Float64Array(v * v).fill(0.1);
  for (let i = 0; i < tr.length; i++) {
    uni[tr[i]!]! += 1;
    if (i > 0) bi[tr[i - 1]! * v + tr[i]!]! += 1;
  }
  const uniSum = uni.reduce((a, b) => a + b, 0);
  let uniLoss = 0;
  let biLoss = 0;
  for (let i = 1; i < te.length; i++) {
    uniLoss -= Math.log(uni[te[i]!]! / uniSum);
    let row = 0;
    for (let j = 0; j < v; j++) row += bi[te[i - 1]! * v + j]!;
    biLoss -= Math.log(bi[te[i - 1]! * v + te[i]!]! / row);
  }
  return { uniform: Math.log(v), unigram: uniLoss / (te.length - 1), bigram: biLoss / (te.length - 1) };
}

/** Options of `trainLM`. */
export interface TrainLMOptions {
  steps?: number;
  batch?: number;
  context?: number;
  dim?: number;
  heads?: number;
  layers?: number;
  lr?: number;
  seed?: number;
}

/** What `trainLM` returns. */
export interface TrainLMResult {
  model: CharTransformer;
  vocab: Vocab;
  /** Training loss per step. */
  losses: number[];
  trainLoss: number;
  heldOutLoss: number;
  seconds: number;
}

/**
 * Train the character transformer on the sonnets.
 * @example
 * const r = trainLM({ steps: 50 });
 */
export function trainLM(opts: TrainLMOptions = {}): TrainLMResult {
  const text = loadSonnets();
  const vocab = makeVocab(text);
  const { train, heldOut } = splitText(text);
  const data = vocab.encode(train);
  const context = opts.context ?? 32;
  const steps = opts.steps ?? 300;
  const batch = opts.batch ?? 16;
  const [kModel, kData] = ad.random.split(ad.random.key(opts.seed ?? 0));
  const model = new CharTransformer(
    {
      vocab: vocab.chars.length,
      context,
      dim: opts.dim ?? 48,
      heads: opts.heads ?? 4,
      layers: opts.layers ?? 1,
    },
    kModel!,
  );
  const optimizer = new ad.optim.AdamW(model.parameters(), { lr: opts.lr ?? 1e-2, weightDecay: 0.01 });
  const scheduler = new ad.optim.LRScheduler(
    optimizer,
    ad.optim.warmupCosineSchedule(opts.lr ?? 1e-2, Math.round(steps / 10), steps),
  );
  // All window starts at once: uniform integers in [0, len − context − 1].
  const starts = ad
    .floor(ad.mul(ad.random.uniform(kData!, [steps, batch], { dtype: "float64" }), data.length - context - 1))
    .data();
  const losses: number[] = [];
  const t0 = performance.now();
  for (let step = 0; step < steps; step++) {
    const { x, y } = batchOf(data, context, starts.subarray(step * batch, (step + 1) * batch));
    const logits = model.forward(x);
    const loss = ad.nn.crossEntropy(
      ad.reshape(logits, [batch * context, -1]),
      ad.reshape(y, [batch * context]),
    );
    loss.backward();
    ad.optim.clipGradNorm(model.parameters(), 1.0);
    optimizer.step();
    optimizer.zeroGrad();
    scheduler.step();
    losses.push(loss.item());
  }
  const seconds = (performance.now() - t0) / 1000;
  model.eval();
  return {
    model,
    vocab,
    losses,
    trainLoss: evaluateLoss(model, vocab, train),
    heldOutLoss: evaluateLoss(model, vocab, heldOut),
    seconds,
  };
}

/**
 * Continue `prompt` by sampling `length` characters at `temperature`.
 * @example
 * sample(r.model, r.vocab, "Shall I", 100, ad.random.key(0));
 */
export function sample(
  model: CharTransformer,
  vocab: Vocab,
  prompt: string,
  length: number,
  key: ad.Tensor,
  temperature = 0.8,
): string {
  const ids = Array.from(vocab.encode(prompt));
  const keys = ad.random.split(key, length);
  const t = model.config.context;
  ad.noGrad(() => {
    for (const k of keys) {
      const window = ids.slice(-t);
      const logits = model.forward(ad.tensor([window], { dtype: "int32" }));
      const last = ad.reshape(ad.slice(logits, [0, window.length - 1, 0], [1, 1, vocab.chars.length]), [-1]);
      ids.push(ad.random.categorical(k, ad.div(last, temperature)).item());
    }
  });
  return vocab.decode(ids);
}

function main(): void {
  const r = trainLM();
  const { train, heldOut } = splitText(loadSonnets());
  const b = baselines(train, heldOut, r.vocab);
  console.log(`trained ${r.losses.length} steps in ${r.seconds.toFixed(1)} s`);
  console.log(
    `baselines on the held-out sonnet: uniform ${b.uniform.toFixed(3)}, unigram ${b.unigram.toFixed(3)}, bigram ${b.bigram.toFixed(3)} nats/char`,
  );
  console.log(
    `transformer: training text ${r.trainLoss.toFixed(3)}, held-out sonnet ${r.heldOutLoss.toFixed(3)} nats/char`,
  );
  console.log("sample:");
  console.log(sample(r.model, r.vocab, "Shall I", 300, ad.random.key(7)));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
