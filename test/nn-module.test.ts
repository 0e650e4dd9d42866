/**
 * @file `nn.Module` bookkeeping and the two training styles: parameter discovery and dotted
 * names ("layers.0.weight"), buffers, state-dict round trips (flat, nested, through
 * safetensors), strict/non-strict loading, train/eval reaching nested Dropout, freezing, and
 * `functionalCall` under `grad`, `vmap`, `hessian` and a MAML-style inner loop — checked against
 * the eager gradients of the same module.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose } from "./helpers.js";

class Block extends ad.nn.Module {
  fc = new ad.nn.Linear(4, 4, { key: ad.random.key(1) });
  norm = new ad.nn.LayerNorm(4);
  drop = new ad.nn.Dropout(0.5, { key: ad.random.key(2) });
  forward(x: ad.Tensor): ad.Tensor {
    return this.drop.forward(this.norm.forward(ad.relu(this.fc.forward(x))));
  }
}

class Net extends ad.nn.Module {
  embed = new ad.nn.Linear(3, 4, { key: ad.random.key(0) });
  layers = [new Block(), new Block()];
  head = { out: new ad.nn.Linear(4, 2, { key: ad.random.key(3) }) };
  scale = ad.tensor([1.5], { requiresGrad: true });
  _cache: ad.Tensor | null = ad.ones([9]); // private: not a parameter
  constructor() {
    super();
    this.registerBuffer("steps", ad.zeros([1]));
  }
  forward(x: ad.Tensor): ad.Tensor {
    let h = this.embed.forward(x);
    for (const l of this.layers) h = l.forward(h);
    return this.head.out.forward(h).mul(this.scale);
  }
}

const names = [
  "embed.weight",
  "embed.bias",
  "layers.0.fc.weight",
  "layers.0.fc.bias",
  "layers.0.norm.weight",
  "layers.0.norm.bias",
  "layers.1.fc.weight",
  "layers.1.fc.bias",
  "layers.1.norm.weight",
  "layers.1.norm.bias",
  "head.out.weight",
  "head.out.bias",
  "scale",
];

describe("parameters, names and buffers", () => {
  test("dotted names from fields, arrays and objects, in declaration order", () => {
    const net = new Net();
    assert.deepEqual(
      net.namedParameters().map(([n]) => n),
      names,
    );
    assert.equal(net.parameters().length, names.length);
    assert.ok(net.parameters().every((p) => p.requiresGrad && p.isLeaf));
    assert.deepEqual(
      net.namedBuffers().map(([n]) => n),
      ["steps"],
    );
    assert.deepEqual(Object.keys(net.stateDict()), [...names, "steps"]);
    assert.deepEqual(
      net.namedModules().map(([n]) => n),
      [
        "",
        "embed",
        "layers.0",
        "layers.0.fc",
        "layers.0.norm",
        "layers.0.drop",
        "layers.1",
        "layers.1.fc",
        "layers.1.norm",
        "layers.1.drop",
        "head.out",
      ],
    );
    assert.deepEqual(
      net.namedChildren().map(([n]) => n),
      ["embed", "layers.0", "layers.1", "head.out"],
    );
  });

  test("Sequential names its children 0, 1, …, as PyTorch", () => {
    const seq = new ad.nn.Sequential(new ad.nn.Linear(2, 3), new ad.nn.ReLU(), new ad.nn.Linear(3, 1));
    assert.deepEqual(Object.keys(seq.stateDict()), ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert.equal(String(seq).split("\n")[1], "  (0): Linear(inFeatures=2, outFeatures=3, bias=true)");
  });

  test("a shared (tied) tensor is one parameter, under its first name", () => {
    class Tied extends ad.nn.Module {
      a = new ad.nn.Linear(2, 2, { bias: false });
      b = new ad.nn.Linear(2, 2, { bias: false });
      constructor() {
        super();
        this.b.weight = this.a.weight;
      }
      forward(x: ad.Tensor) {
        return this.b.forward(this.a.forward(x));
      }
    }
    const m = new Tied();
    assert.deepEqual(
      m.namedParameters().map(([n]) => n),
      ["a.weight"],
    );
    assert.deepEqual(Object.keys(m.stateDict()), ["a.weight", "b.weight"]);
  });

  test("registerParameter and registerModule (PyTorch's register_parameter / add_module)", () => {
    class Custom extends ad.nn.Module {
      constructor() {
        super();
        this.registerParameter("scale", ad.ones([3]));
        this.registerModule("proj", new ad.nn.Linear(3, 3, { bias: false }));
        this.registerBuffer("count", ad.zeros([1]));
      }
      forward(x: ad.Tensor): ad.Tensor {
        const self = this as unknown as { scale: ad.Tensor; proj: ad.nn.Linear };
        return self.proj.forward(x.mul(self.scale));
      }
    }
    const m = new Custom();
    assert.deepEqual(
      m.namedParameters().map(([n, p]) => [n, p.requiresGrad]),
      [
        ["scale", true],
        ["proj.weight", true],
      ],
    );
    assert.deepEqual(Object.keys(m.stateDict()), ["scale", "proj.weight", "count"]);
    assert.throws(() => m.registerParameter("a.b", ad.ones([1])), ad.TransformError);
    assert.throws(() => m.registerModule("x", {} as ad.nn.Linear), ad.TransformError);
  });

  test("manualSeed makes default initialisation reproducible", () => {
    ad.nn.manualSeed(42);
    const a = new ad.nn.Linear(3, 3);
    ad.nn.manualSeed(42);
    const b = new ad.nn.Linear(3, 3);
    const c = new ad.nn.Linear(3, 3);
    assert.deepEqual(a.weight.toArray(), b.weight.toArray());
    assert.notDeepEqual(b.weight.toArray(), c.weight.toArray());
  });
});

describe("state dicts", () => {
  test("stateDict is a snapshot; loadStateDict copies in place (optimizers keep their tensors)", () => {
    const a = new Net();
    const b = new Net();
    ad.nn.manualSeed(7);
    const c = new Net(); // other layers created with explicit keys: change some values by hand
    c.embed.loadStateDict({ weight: ad.ones([4, 3]), bias: ad.zeros([4]) });
    const sd = c.stateDict();
    const w = b.embed.weight;
    b.loadStateDict(sd);
    assert.equal(b.embed.weight, w, "the same tensor object, updated in place");
    assert.deepEqual(b.embed.weight.toArray(), ad.ones([4, 3]).toArray());
    for (const [n, t] of Object.entries(b.stateDict())) assert.deepEqual(t.toArray(), sd[n]!.toArray(), n);
    // a later in-place update does not change the snapshot
    ad.noGrad(() => c.embed.weight.add_(1));
    assert.deepEqual(sd["embed.weight"]!.toArray(), ad.ones([4, 3]).toArray());
    assert.notDeepEqual(a.embed.weight.toArray(), sd["embed.weight"]!.toArray());
  });

  test("nested state (as loadSafetensors returns) loads; round trip through safetensors bytes", () => {
    const src = new ad.nn.Sequential(
      new ad.nn.Linear(2, 3, { key: ad.random.key(5) }),
      new ad.nn.Tanh(),
      new ad.nn.Linear(3, 2, { key: ad.random.key(6) }),
    );
    const dst = new ad.nn.Sequential(new ad.nn.Linear(2, 3), new ad.nn.Tanh(), new ad.nn.Linear(3, 2));
    const bytes = ad.io.saveSafetensors(src.stateDict());
    const tree = ad.io.loadSafetensors(bytes);
    assert.ok(!Array.isArray(tree)); // keys 0 and 2 of a Sequential: {"0": …, "2": …} is not 0…n−1
    dst.loadStateDict(tree);
    const x = ad.tensor([[0.3, -1.2]]);
    assert.deepEqual(dst.forward(x).toArray(), src.forward(x).toArray());
    const net = new Net();
    const net2 = new Net();
    ad.noGrad(() => net.layers[1]!.norm.weight!.fill_(3));
    net2.loadStateDict(ad.io.loadSafetensors(ad.io.saveSafetensors(net.stateDict())));
    assert.deepEqual(net2.layers[1]!.norm.weight!.toArray(), [3, 3, 3, 3]);
  });

  test("strict loading: missing and unexpected names are StateDictErrors; non-strict reports them", () => {
    const fc = new ad.nn.Linear(2, 2);
    assert.throws(
      () => fc.loadStateDict({ weight: ad.zeros([2, 2]) }),
      (e: Error) =>
        e instanceof ad.nn.StateDictError && e instanceof ad.AdError && /missing "bias"/.test(e.message),
    );
    assert.throws(
      () => fc.loadStateDict({ weight: ad.zeros([2, 2]), bias: ad.zeros([2]), extra: ad.zeros([1]) }),
      /unexpected "extra"/,
    );
    const r = fc.loadStateDict({ weight: ad.full([2, 2], 2), extra: ad.zeros([1]) }, { strict: false });
    assert.deepEqual(r, { missingKeys: ["bias"], unexpectedKeys: ["extra"] });
    assert.deepEqual(fc.weight.toArray(), [
      [2, 2],
      [2, 2],
    ]);
    assert.throws(
      () => fc.loadStateDict({ weight: ad.zeros([3, 2]), bias: ad.zeros([2]) }),
      (e: Error) => e instanceof ad.ShapeError && /\[3, 2\]/.test(e.message) && /\[2, 2\]/.test(e.message),
    );
    const traced = () =>
      ad.grad((w: ad.Tensor) => {
        fc.loadStateDict({ weight: w, bias: ad.zeros([2]) });
        return w.sum();
      })(ad.zeros([2, 2]));
    assert.throws(traced, ad.TransformError);
  });
});

describe("modes and freezing", () => {
  test("train()/eval() reach nested Dropout; eval output is deterministic", () => {
    const net = new Net();
    const x = ad.random.normal(ad.random.key(9), [5, 3]);
    net.eval();
    assert.ok(net.modules().every((m) => m.training === false));
    assert.deepEqual(net.forward(x).toArray(), net.forward(x).toArray());
    net.train();
    assert.ok(net.layers[0]!.drop.training);
    assert.notDeepEqual(net.forward(x).toArray(), net.forward(x).toArray());
  });

  test("requiresGrad_(false) freezes: no gradient is stored and the optimizer skips them", () => {
    const net = new Net();
    net.embed.requiresGrad_(false);
    const before = net.embed.weight.toArray();
    const opt = new ad.optim.SGD(net.parameters(), { lr: 0.1 });
    net.eval();
    net
      .forward(ad.ones([2, 3]))
      .sum()
      .backward();
    assert.equal(net.embed.weight.grad, null);
    assert.notEqual(net.layers[0]!.fc.weight.grad, null);
    opt.step();
    assert.deepEqual(net.embed.weight.toArray(), before);
    net.zeroGrad();
    assert.ok(net.parameters().every((p) => p.grad === null));
  });
});

describe("functionalCall: module parameters under the functional transforms", () => {
  const net = new Net().eval();
  const x = ad.random.normal(ad.random.key(10), [4, 3]);
  const y = ad.random.normal(ad.random.key(11), [4, 2]);
  const params = Object.fromEntries(net.namedParameters().map(([n, p]) => [n, p.detach()]));
  const loss = (p: Record<string, ad.Tensor>) => ad.nn.mseLoss(ad.nn.functionalCall(net, p, x), y);

  test("grad over a params pytree equals the eager gradients (both styles agree)", () => {
    const g = ad.grad(loss)(params) as Record<string, ad.Tensor>;
    assert.deepEqual(Object.keys(g), names);
    net.zeroGrad();
    ad.nn.mseLoss(net.forward(x), y).backward();
    for (const [n, p] of net.namedParameters()) assertClose(g[n]!, p.grad!, { rtol: 1e-5, atol: 1e-7 });
    net.zeroGrad();
  });

  test("nested params, a subset of names, and the module is left unchanged", () => {
    const w = net.head.out.weight;
    const out = ad.nn.functionalCall(net, { head: { out: { weight: ad.zeros([2, 4]) } } }, x);
    // zero weight: output = bias · scale
    const b = Array.from(net.head.out.bias!.data()).map((v) => v * 1.5);
    assertClose(out, [b, b, b, b], { rtol: 1e-6 });
    assert.equal(net.head.out.weight, w);
    assert.throws(() => ad.nn.functionalCall(net, { nope: ad.zeros([1]) }, x), ad.nn.StateDictError);
    assert.throws(() => ad.nn.functionalCall(net, { scale: ad.zeros([2]) }, x), ad.ShapeError);
  });

  test("vmap over stacked parameters: an ensemble of models in one call", () => {
    const lin = new ad.nn.Linear(3, 2, { key: ad.random.key(12) });
    const ws = ad.random.normal(ad.random.key(13), [5, 2, 3]);
    const bs = ad.random.normal(ad.random.key(14), [5, 2]);
    const ens = ad.vmap((w: ad.Tensor, b: ad.Tensor) => ad.nn.functionalCall(lin, { weight: w, bias: b }, x))(
      ws,
      bs,
    );
    assert.deepEqual(ens.shape, [5, 4, 2]);
    const third = ad.nn.linear(
      x,
      ad.slice(ws, [2, 0, 0], [1, 2, 3]).reshape([2, 3]),
      ad.slice(bs, [2, 0], [1, 2]).reshape([2]),
    );
    assertClose(ad.slice(ens, [2, 0, 0], [1, 4, 2]).reshape([4, 2]), third, { rtol: 1e-6 });
  });

  test("hessian wrt module parameters equals the analytic one (least squares: 2XᵀX/n)", () => {
    const lin = new ad.nn.Linear(3, 1, { bias: false, dtype: "float64" });
    const X = ad.random.normal(ad.random.key(15), [6, 3], { dtype: "float64" });
    const t = ad.random.normal(ad.random.key(16), [6, 1], { dtype: "float64" });
    const H = ad.hessian((p: { weight: ad.Tensor }) => ad.nn.mseLoss(ad.nn.functionalCall(lin, p, X), t))({
      weight: lin.weight.detach(),
    }) as unknown as { weight: { weight: ad.Tensor } };
    const want = ad.mul(ad.matmul(ad.transpose(X), X), 2 / 6).reshape([1, 3, 1, 3]);
    assertClose(H.weight.weight, want, { rtol: 1e-10 });
  });

  test("MAML: the meta-gradient through one inner SGD step equals the analytic formula", () => {
    // Scalar model y = w·x, loss L(w) = mean((w·x − t)²); inner step w' = w − α L'(w);
    // meta-gradient d L(w')/dw = L'(w')·(1 − α L''(w)).
    const lin = new ad.nn.Linear(1, 1, { bias: false, dtype: "float64" });
    const xs = ad.tensor([[1], [2], [-1]], { dtype: "float64" });
    const ts = ad.tensor([[0.5], [2], [1]], { dtype: "float64" });
    const alpha = 0.1;
    const inner = (p: { weight: ad.Tensor }) => ad.nn.mseLoss(ad.nn.functionalCall(lin, p, xs), ts);
    const meta = (p: { weight: ad.Tensor }) => {
      const g = ad.grad(inner)(p) as { weight: ad.Tensor };
      return inner(ad.optim.applyUpdates(p, { weight: ad.mul(g.weight, -alpha) }));
    };
    const w = 0.7;
    const gMeta = (
      ad.grad(meta)({ weight: ad.tensor([[w]], { dtype: "float64" }) }) as { weight: ad.Tensor }
    ).weight.item();
    const xv = [1, 2, -1];
    const tv = [0.5, 2, 1];
    const dL = (v: number) => (2 / 3) * xv.reduce((s, xi, i) => s + (v * xi - tv[i]!) * xi, 0);
    const d2L = (2 / 3) * xv.reduce((s, xi) => s + xi * xi, 0);
    const w2 = w - alpha * dL(w);
    assertClose(gMeta, dL(w2) * (1 - alpha * d2L), { rtol: 1e-12 });
  });
});

describe("both training styles converge on the same problem", () => {
  const X = ad.random.normal(ad.random.key(20), [32, 3]);
  const Y = ad.matmul(X, ad.tensor([[1], [-2], [0.5]])).add(0.3);

  test("eager: backward() + optimizer.step()", () => {
    const model = new ad.nn.Linear(3, 1, { key: ad.random.key(21) });
    const opt = new ad.optim.Adam(model.parameters(), { lr: 0.1 });
    let last = Infinity;
    for (let i = 0; i < 150; i++) {
      opt.zeroGrad();
      const l = ad.nn.mseLoss(model.forward(X), Y);
      l.backward();
      opt.step();
      last = l.item();
    }
    assert.ok(last < 1e-3, `loss ${last}`);
    assertClose(model.weight, [[1, -2, 0.5]], { atol: 0.05 });
  });

  test("functional: ad.grad over the params pytree + optim.adam + applyUpdates", () => {
    const model = new ad.nn.Linear(3, 1, { key: ad.random.key(21) });
    let params: Record<string, ad.Tensor> = model.stateDict();
    const tx = ad.optim.adam(0.1);
    let state = tx.init(params);
    const lossFn = (p: Record<string, ad.Tensor>) => ad.nn.mseLoss(ad.nn.functionalCall(model, p, X), Y);
    for (let i = 0; i < 150; i++) {
      const g = ad.grad(lossFn)(params);
      const [u, s] = tx.update(g, state, params);
      params = ad.optim.applyUpdates(params, u);
      state = s;
    }
    assert.ok(lossFn(params).item() < 1e-3);
    assertClose(params.weight!, [[1, -2, 0.5]], { atol: 0.05 });
  });
});
