/**
 * @file `ad.optim`: the first steps of every optimizer against values computed independently
 * (PyTorch's documented update formulas, evaluated in Python/plain JS float64 and written out
 * here), in both the class form (`new optim.Adam(params, …).step()`) and the functional form
 * (`optim.adam(lr).update` + `applyUpdates`); parameter groups, optimizer state dicts, schedules
 * at given steps, `clipGradNorm`'s returned norm and scaling, `clipGradValue`, EMA, gradient
 * accumulation (class and `multiSteps`), `chain`/`clipByGlobalNorm`, and `jit` of a functional
 * step.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as ad from "adjoint";
import { assertClose } from "./helpers.js";

const f64 = (x: ad.TensorData) => ad.tensor(x, { dtype: "float64" });

// One parameter p0 = [1, −2] and a fixed sequence of gradients (set by hand, no model needed).
const P0 = [1, -2];
const GRADS = [
  [0.5, -1],
  [0.2, 0.4],
  [-0.3, 0.1],
];

/** Run a class optimizer for GRADS.length steps in float64; the parameter after each step. */
function runClass(make: (params: ad.Tensor[]) => ad.optim.Optimizer): number[][] {
  const p = ad.tensor(P0, { dtype: "float64", requiresGrad: true });
  const opt = make([p]);
  return GRADS.map((g) => {
    p.grad = f64(g);
    opt.step();
    opt.zeroGrad();
    return Array.from(p.data());
  });
}

/** The same with a functional transformation over the pytree {w: p}. */
function runFunctional(tx: ad.optim.GradientTransformation): number[][] {
  let params: { w: ad.Tensor } = { w: f64(P0) };
  let state = tx.init(params);
  return GRADS.map((g) => {
    const [u, s] = tx.update({ w: f64(g) }, state, params);
    params = ad.optim.applyUpdates(params, u);
    state = s;
    return Array.from(params.w.data());
  });
}

/** PyTorch's documented algorithms, scalar by scalar in float64 (independent of the library). */
const ref = {
  sgd(o: {
    lr: number;
    momentum?: number;
    dampening?: number;
    nesterov?: boolean;
    wd?: number;
    maximize?: boolean;
  }) {
    const p = [...P0];
    const buf: (number | null)[] = [null, null];
    return GRADS.map((gs) =>
      p.map((_, i) => {
        let g = o.maximize ? -gs[i]! : gs[i]!;
        g += (o.wd ?? 0) * p[i]!;
        const mu = o.momentum ?? 0;
        if (mu !== 0) {
          const b = buf[i] === null ? g : mu * buf[i]! + (1 - (o.dampening ?? 0)) * g;
          buf[i] = b;
          g = o.nesterov ? g + mu * b : b;
        }
        p[i] = p[i]! - o.lr * g;
        return p[i]!;
      }),
    );
  },
  adam(o: {
    lr: number;
    b1?: number;
    b2?: number;
    eps?: number;
    wd?: number;
    decoupled?: boolean;
    amsgrad?: boolean;
  }) {
    const [b1, b2, eps] = [o.b1 ?? 0.9, o.b2 ?? 0.999, o.eps ?? 1e-8];
    const p = [...P0];
    const m = [0, 0];
    const v = [0, 0];
    const vmax = [0, 0];
    return GRADS.map((gs, t0) => {
      const t = t0 + 1;
      return p.map((_, i) => {
        let g = gs[i]!;
        if (o.decoupled) p[i] = p[i]! * (1 - o.lr * (o.wd ?? 0));
        else g += (o.wd ?? 0) * p[i]!;
        m[i] = b1 * m[i]! + (1 - b1) * g;
        v[i] = b2 * v[i]! + (1 - b2) * g * g;
        vmax[i] = Math.max(vmax[i]!, v[i]!);
        const denom = Math.sqrt(o.amsgrad ? vmax[i]! : v[i]!) / Math.sqrt(1 - b2 ** t) + eps;
        p[i] = p[i]! - (o.lr / (1 - b1 ** t)) * (m[i]! / denom);
        return p[i]!;
      });
    });
  },
  rmsprop(o: {
    lr: number;
    alpha?: number;
    eps?: number;
    wd?: number;
    momentum?: number;
    centered?: boolean;
  }) {
    const [a, eps] = [o.alpha ?? 0.99, o.eps ?? 1e-8];
    const p = [...P0];
    const sq = [0, 0];
    const ga = [0, 0];
    const b = [0, 0];
    return GRADS.map((gs) =>
      p.map((_, i) => {
        const g = gs[i]! + (o.wd ?? 0) * p[i]!;
        sq[i] = a * sq[i]! + (1 - a) * g * g;
        let avg: number;
        if (o.centered) {
          ga[i] = a * ga[i]! + (1 - a) * g;
          avg = Math.sqrt(sq[i]! - ga[i]! ** 2) + eps;
        } else avg = Math.sqrt(sq[i]!) + eps;
        if ((o.momentum ?? 0) > 0) {
          b[i] = o.momentum! * b[i]! + g / avg;
          p[i] = p[i]! - o.lr * b[i]!;
        } else p[i] = p[i]! - (o.lr * g) / avg;
        return p[i]!;
      }),
    );
  },
};

const TOL = { rtol: 1e-13, atol: 1e-15 };

describe("first steps against written-out values", () => {
  test("SGD with momentum 0.9, lr 0.1 (by hand: buffer = g, then 0.9·buffer + g)", () => {
    const want = [
      [0.95, -1.9],
      [0.885, -1.85],
    ];
    assertClose(runClass((ps) => new ad.optim.SGD(ps, { lr: 0.1, momentum: 0.9 })).slice(0, 2), want, TOL);
    assertClose(runFunctional(ad.optim.sgd(0.1, { momentum: 0.9 })).slice(0, 2), want, TOL);
  });

  test("SGD with Nesterov momentum (g + 0.9·buffer)", () => {
    const want = [
      [0.905, -1.81],
      [0.8265, -1.805],
    ];
    assertClose(
      runClass((ps) => new ad.optim.SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true })).slice(0, 2),
      want,
      TOL,
    );
    assertClose(runFunctional(ad.optim.sgd(0.1, { momentum: 0.9, nesterov: true })).slice(0, 2), want, TOL);
  });

  test("SGD with weight decay 0.1 (g + 0.1·p)", () => {
    const want = [
      [0.94, -1.88],
      [0.9106, -1.9012],
    ];
    assertClose(runClass((ps) => new ad.optim.SGD(ps, { lr: 0.1, weightDecay: 0.1 })).slice(0, 2), want, TOL);
    assertClose(runFunctional(ad.optim.sgd(0.1, { weightDecay: 0.1 })).slice(0, 2), want, TOL);
  });

  test("Adam, lr 0.1, default betas and eps (values from PyTorch's formulas in Python float64)", () => {
    const want = [
      [0.900000002, -1.900000001],
      [0.8101424839029282, -1.865439416662626],
      [0.7805871509237353, -1.8447499006515093],
    ];
    assertClose(
      runClass((ps) => new ad.optim.Adam(ps, { lr: 0.1 })),
      want,
      TOL,
    );
    assertClose(runFunctional(ad.optim.adam(0.1)), want, TOL);
  });

  test("AdamW, lr 0.1, weight decay 0.1 (decoupled: p·(1 − lr·wd) first)", () => {
    const want = [
      [0.890000002, -1.880000001],
      [0.7912424838829282, -1.826639416652626],
      [0.753774726064906, -1.7876835064749832],
    ];
    assertClose(
      runClass((ps) => new ad.optim.AdamW(ps, { lr: 0.1, weightDecay: 0.1 })),
      want,
      TOL,
    );
    assertClose(runFunctional(ad.optim.adamw(0.1, { weightDecay: 0.1 })), want, TOL);
  });

  test("RMSprop, defaults (lr 0.01, alpha 0.99), and centered with momentum 0.9", () => {
    const plain = [
      [0.900000019999996, -1.900000009999999],
      [0.8626998346269039, -1.937300198851351],
      [0.9117141347584844, -1.94663133357197],
    ];
    assertClose(
      runClass((ps) => new ad.optim.RMSprop(ps)),
      plain,
      TOL,
    );
    assertClose(runFunctional(ad.optim.rmsprop()), plain, TOL);
    const centered = [
      [0.899496238676095, -1.8994962285750878],
      [0.7714253260326385, -1.8463996046484656],
      [0.7052746107199848, -1.8079533125749947],
    ];
    assertClose(
      runClass((ps) => new ad.optim.RMSprop(ps, { momentum: 0.9, centered: true })),
      centered,
      { rtol: 1e-12 },
    );
    assertClose(runFunctional(ad.optim.rmsprop(0.01, { momentum: 0.9, centered: true })), centered, {
      rtol: 1e-12,
    });
  });
});

describe("every option against the plain-JS reference", () => {
  const sgdCases: [string, Parameters<typeof ref.sgd>[0], ad.optim.SGDOptions][] = [
    ["plain", { lr: 0.3 }, { lr: 0.3 }],
    [
      "momentum + dampening",
      { lr: 0.1, momentum: 0.8, dampening: 0.3 },
      { lr: 0.1, momentum: 0.8, dampening: 0.3 },
    ],
    [
      "nesterov + weight decay",
      { lr: 0.1, momentum: 0.5, nesterov: true, wd: 0.2 },
      { lr: 0.1, momentum: 0.5, nesterov: true, weightDecay: 0.2 },
    ],
    ["maximize", { lr: 0.1, momentum: 0.9, maximize: true }, { lr: 0.1, momentum: 0.9, maximize: true }],
  ];
  for (const [name, r, o] of sgdCases)
    test(`SGD: ${name}`, () => {
      assertClose(
        runClass((ps) => new ad.optim.SGD(ps, o)),
        ref.sgd(r),
        TOL,
      );
      if (!o.maximize) assertClose(runFunctional(ad.optim.sgd(o.lr, { ...o })), ref.sgd(r), TOL);
    });

  const adamCases: [string, Parameters<typeof ref.adam>[0], ad.optim.AdamOptions][] = [
    ["betas and eps", { lr: 0.05, b1: 0.5, b2: 0.9, eps: 1e-3 }, { lr: 0.05, betas: [0.5, 0.9], eps: 1e-3 }],
    ["L2 weight decay", { lr: 0.1, wd: 0.3 }, { lr: 0.1, weightDecay: 0.3 }],
    ["amsgrad", { lr: 0.1, amsgrad: true }, { lr: 0.1, amsgrad: true }],
  ];
  for (const [name, r, o] of adamCases)
    test(`Adam: ${name}`, () => {
      assertClose(
        runClass((ps) => new ad.optim.Adam(ps, o)),
        ref.adam(r),
        TOL,
      );
      assertClose(runFunctional(ad.optim.adam(o.lr, o)), ref.adam(r), TOL);
    });

  test("AdamW: default weight decay 1e-2 and amsgrad", () => {
    const r = ref.adam({ lr: 0.1, wd: 0.01, decoupled: true, amsgrad: true });
    assertClose(
      runClass((ps) => new ad.optim.AdamW(ps, { lr: 0.1, amsgrad: true })),
      r,
      TOL,
    );
    assertClose(runFunctional(ad.optim.adamw(0.1, { amsgrad: true })), r, TOL);
  });

  test("RMSprop: weight decay, alpha, eps, momentum", () => {
    const r = ref.rmsprop({ lr: 0.02, alpha: 0.9, eps: 1e-4, wd: 0.1, momentum: 0.5 });
    const o = { lr: 0.02, alpha: 0.9, eps: 1e-4, weightDecay: 0.1, momentum: 0.5 };
    assertClose(
      runClass((ps) => new ad.optim.RMSprop(ps, o)),
      r,
      TOL,
    );
    assertClose(runFunctional(ad.optim.rmsprop(0.02, o)), r, TOL);
  });

  test("float32 parameters: the update is applied in the parameter's dtype", () => {
    const p = ad.tensor(P0, { requiresGrad: true });
    const opt = new ad.optim.Adam([p], { lr: 0.1 });
    p.grad = ad.tensor(GRADS[0]!);
    opt.step();
    assert.equal(p.dtype, "float32");
    assertClose(p, ref.adam({ lr: 0.1 })[0]!, { rtol: 1e-6 });
  });
});

describe("optimizer bookkeeping", () => {
  test("parameter groups with their own lr; the lr setter; zeroGrad; parameters without grad are skipped", () => {
    const a = ad.tensor([1], { dtype: "float64", requiresGrad: true });
    const b = ad.tensor([1], { dtype: "float64", requiresGrad: true });
    const c = ad.tensor([1], { dtype: "float64", requiresGrad: true });
    const opt = new ad.optim.SGD([{ params: [a] }, { params: [b], lr: 1 }], { lr: 0.1 });
    opt.addParamGroup({ params: [c], lr: 0.5 });
    a.grad = f64([1]);
    b.grad = f64([1]);
    opt.step();
    assert.deepEqual([a.item(), b.item(), c.item()], [0.9, 0, 1]);
    opt.lr = 0.01;
    assert.deepEqual(
      opt.paramGroups.map((g) => g.lr),
      [0.01, 0.01, 0.01],
    );
    opt.zeroGrad();
    assert.ok(a.grad === null && b.grad === null);
  });

  test("optimizer state dict: stopping and resuming gives the uninterrupted trajectory", () => {
    const mk = () => ad.tensor(P0, { dtype: "float64", requiresGrad: true });
    const p1 = mk();
    const o1 = new ad.optim.Adam([p1], { lr: 0.1, amsgrad: true });
    const p2 = mk();
    const o2 = new ad.optim.Adam([p2], { lr: 0.1, amsgrad: true });
    for (const g of GRADS.slice(0, 2)) {
      p1.grad = f64(g);
      o1.step();
      p2.grad = f64(g);
      o2.step();
    }
    const saved = o2.stateDict();
    assert.equal(saved.state["0"]!.step, 2);
    const p3 = ad.tensor(p2.toArray() as number[], { dtype: "float64", requiresGrad: true });
    const o3 = new ad.optim.Adam([p3], { lr: 0.5 });
    o3.loadStateDict(saved);
    assert.equal(o3.lr, 0.1);
    p1.grad = f64(GRADS[2]!);
    o1.step();
    p3.grad = f64(GRADS[2]!);
    o3.step();
    assertClose(p3, p1, TOL);
  });

  test("bad arguments are typed errors", () => {
    const p = ad.tensor([1], { requiresGrad: true });
    assert.throws(() => new ad.optim.SGD([p], {} as ad.optim.SGDOptions), ad.TransformError);
    assert.throws(() => new ad.optim.SGD([p], { lr: 0.1, nesterov: true }), ad.ShapeError);
    assert.throws(() => new ad.optim.Adam([p], { betas: [1, 0.9] }), ad.ShapeError);
    assert.throws(() => new ad.optim.Adam([], {}), ad.TransformError);
    assert.throws(() => new ad.optim.Adam([p, p], {}), ad.TransformError);
    assert.throws(() => new ad.optim.SGD([ad.tensor([1], { dtype: "int32" })], { lr: 1 }), ad.DTypeError);
    assert.throws(() => new ad.optim.SGD([p], { lr: -1 }), ad.ShapeError);
    const opt = new ad.optim.SGD([p], { lr: 1 });
    p.grad = ad.ones([2]);
    assert.throws(() => opt.step(), ad.ShapeError);
    assert.throws(() => ad.optim.adam(-1), ad.TransformError);
    assert.throws(
      () => ad.optim.adamw(0.1).update({ w: ad.ones([1]) }, ad.optim.adamw(0.1).init({ w: ad.ones([1]) })),
      ad.TransformError,
    );
  });
});

describe("schedules", () => {
  test("values at given steps", () => {
    const s = ad.optim.stepSchedule(0.1, 10, 0.5);
    assertClose([s(0), s(9), s(10), s(25)], [0.1, 0.1, 0.05, 0.025], TOL);
    const c = ad.optim.cosineSchedule(1, 100);
    assertClose([c(0), c(25), c(50), c(100), c(200)], [1, (1 + Math.SQRT1_2) / 2, 0.5, 0, 0], TOL);
    const cm = ad.optim.cosineSchedule(1, 10, { minValue: 0.1 });
    assertClose([cm(5), cm(10)], [0.55, 0.1], TOL);
    const w = ad.optim.warmupSchedule(1, 4);
    assertClose([w(0), w(1), w(3), w(4), w(10)], [0, 0.25, 0.75, 1, 1], TOL);
    const wi = ad.optim.warmupSchedule(2, 2, { init: 1, after: ad.optim.stepSchedule(2, 1, 0.5) });
    assertClose([wi(0), wi(1), wi(2), wi(3)], [1, 1.5, 2, 1], TOL);
    const wc = ad.optim.warmupCosineSchedule(1, 10, 110);
    assertClose([wc(0), wc(5), wc(10), wc(60), wc(110), wc(500)], [0, 0.5, 1, 0.5, 0, 0], TOL);
    assert.equal(ad.optim.constantSchedule(0.3)(1000), 0.3);
    assert.throws(() => ad.optim.stepSchedule(1, 0), ad.ShapeError);
    assert.throws(() => ad.optim.warmupCosineSchedule(1, 10, 5), ad.ShapeError);
  });

  test("LRScheduler drives a class optimizer: schedule(t) after the t-th step()", () => {
    const p = ad.tensor([0], { dtype: "float64", requiresGrad: true });
    const opt = new ad.optim.SGD([p], { lr: 123 });
    const sched = new ad.optim.LRScheduler(opt, ad.optim.warmupSchedule(1, 4));
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      p.grad = f64([-1]);
      seen.push(opt.lr);
      opt.step();
      sched.step();
    }
    assertClose(seen, [0, 0.25, 0.5, 0.75, 1, 1], TOL);
    assertClose(p.item(), 0 + 0.25 + 0.5 + 0.75 + 1 + 1, TOL);
    assert.equal(sched.lastLr, 1);
  });

  test("PyTorch's scheduler classes scale each group's initial lr (values at given steps)", () => {
    const run = (make: (o: ad.optim.SGD) => ad.optim.GroupScheduler, n: number) => {
      const a = ad.tensor([0], { requiresGrad: true });
      const b = ad.tensor([0], { requiresGrad: true });
      const opt = new ad.optim.SGD([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 1 });
      const sched = make(opt);
      const seen: number[][] = [sched.getLastLr()];
      for (let i = 0; i < n; i++) {
        opt.step();
        sched.step();
        seen.push(sched.getLastLr());
      }
      return seen;
    };
    assertClose(
      run((o) => new ad.optim.StepLR(o, 2, 0.5), 4),
      [
        [1, 0.5],
        [1, 0.5],
        [0.5, 0.25],
        [0.5, 0.25],
        [0.25, 0.125],
      ],
      TOL,
    );
    assertClose(
      run((o) => new ad.optim.ExponentialLR(o, 0.9), 2),
      [
        [1, 0.5],
        [0.9, 0.45],
        [0.81, 0.405],
      ],
      TOL,
    );
    // etaMin + (base − etaMin)(1 + cos(πt/4))/2 with etaMin 0.1
    const cos = (base: number, t: number) => 0.1 + ((base - 0.1) * (1 + Math.cos((Math.PI * t) / 4))) / 2;
    assertClose(
      run((o) => new ad.optim.CosineAnnealingLR(o, 4, 0.1), 4),
      [0, 1, 2, 3, 4].map((t) => [cos(1, t), cos(0.5, t)]),
      TOL,
    );
    assertClose(
      run((o) => new ad.optim.LinearLR(o, 0.25, 1, 3), 4),
      [
        [0.25, 0.125],
        [0.5, 0.25],
        [0.75, 0.375],
        [1, 0.5],
        [1, 0.5],
      ],
      TOL,
    );
    assertClose(
      run((o) => new ad.optim.LambdaLR(o, (t) => 1 / (t + 1)), 2),
      [
        [1, 0.5],
        [0.5, 0.25],
        [1 / 3, 1 / 6],
      ],
      TOL,
    );
    const p = ad.tensor([0], { requiresGrad: true });
    assert.throws(() => new ad.optim.StepLR(new ad.optim.SGD([p], { lr: 1 }), 0), ad.ShapeError);
  });

  test("a schedule as the functional learning rate: step k uses schedule(k) (0-based)", () => {
    const lrs: number[] = [];
    const tx = ad.optim.sgd((k) => {
      lrs.push(k);
      return 0.1 * (k + 1);
    });
    const out = runFunctional(tx);
    assert.deepEqual(lrs, [0, 1, 2]);
    assertClose(
      out,
      [
        [1 - 0.05, -2 + 0.1],
        [0.95 - 0.04, -1.9 - 0.08],
        [0.91 + 0.09, -1.98 - 0.03],
      ],
      TOL,
    );
  });
});

describe("clipping", () => {
  test("clipGradNorm returns the total norm and scales by maxNorm/(norm + 1e-6) only above it", () => {
    const a = ad.tensor([0, 0], { dtype: "float64", requiresGrad: true });
    const b = ad.tensor([0], { dtype: "float64", requiresGrad: true });
    const c = ad.tensor([0], { dtype: "float64", requiresGrad: true }); // no grad: ignored
    a.grad = f64([3, 4]);
    b.grad = f64([12]);
    const norm = ad.optim.clipGradNorm([a, b, c], 6.5);
    assert.equal(typeof norm, "number");
    assertClose(norm, 13, TOL);
    const k = 6.5 / (13 + 1e-6);
    assertClose(a.grad, [3 * k, 4 * k], TOL);
    assertClose(b.grad, [12 * k], TOL);
    assert.equal(c.grad, null);
    // below the maximum: unchanged, the norm is still returned
    a.grad = f64([3, 4]);
    const g = a.grad;
    assertClose(ad.optim.clipGradNorm(a, 10), 5, TOL);
    assert.equal(a.grad, g);
    // the max norm and the 1-norm
    a.grad = f64([3, -4]);
    assertClose(ad.optim.clipGradNorm([a], 100, { normType: Infinity }), 4, TOL);
    assertClose(ad.optim.clipGradNorm([a], 100, { normType: 1 }), 7, TOL);
    assertClose(ad.optim.clipGradNorm([a], 100, 1), 7, TOL); // PyTorch's positional norm_type
    // a module works as the parameter list
    const lin = new ad.nn.Linear(2, 1);
    lin.weight.grad = ad.tensor([[6, 8]]);
    assertClose(ad.optim.clipGradNorm(lin, 1), 10, { rtol: 1e-6 });
    assertClose(lin.weight.grad, [[0.6, 0.8]], { rtol: 1e-6 });
    a.grad = f64([Infinity, 1]);
    assert.throws(() => ad.optim.clipGradNorm([a], 1, { errorIfNonfinite: true }), ad.AnomalyError);
    assert.throws(() => ad.optim.clipGradNorm([a], -1), ad.ShapeError);
  });

  test("clipGradValue clamps every entry", () => {
    const a = ad.tensor([0, 0, 0], { dtype: "float64", requiresGrad: true });
    a.grad = f64([-3, 0.2, 5]);
    ad.optim.clipGradValue([a], 1);
    assert.deepEqual(a.grad.toArray(), [-1, 0.2, 1]);
  });

  test("functional: chain(clipByGlobalNorm, sgd) clips the global norm of the pytree", () => {
    const tx = ad.optim.chain(ad.optim.clipByGlobalNorm(6.5), ad.optim.sgd(1));
    const params = { a: f64([0, 0]), b: [f64([0])] };
    const [u] = tx.update({ a: f64([3, 4]), b: [f64([12])] }, tx.init(params), params);
    assertClose(u, { a: [-1.5, -2], b: [[-6]] }, TOL);
    const [u2] = tx.update({ a: f64([0.3, 0.4]), b: [f64([1.2])] }, tx.init(params), params);
    assertClose(u2, { a: [-0.3, -0.4], b: [[-1.2]] }, TOL);
  });
});

describe("EMA and gradient accumulation", () => {
  test("EMA: avg ← d·avg + (1 − d)·p; copyTo/store/restore; warmup decay", () => {
    const p = ad.tensor([0, 10], { dtype: "float64", requiresGrad: true });
    const ema = new ad.optim.EMA([p], { decay: 0.5 });
    ad.noGrad(() => p.copy_(f64([2, 2])));
    ema.update(); // [1, 6]
    ad.noGrad(() => p.copy_(f64([4, 0])));
    ema.update(); // [2.5, 3]
    assertClose(ema.shadow[0]!, [2.5, 3], TOL);
    ema.store();
    ema.copyTo();
    assertClose(p, [2.5, 3], TOL);
    ema.restore();
    assertClose(p, [4, 0], TOL);
    const w = new ad.optim.EMA([p], { decay: 0.99, warmup: true });
    assertClose([w.currentDecay()], [0.1], TOL); // (1 + 0)/(10 + 0)
    w.update();
    assertClose([w.currentDecay()], [2 / 11], TOL);
    const avg = ad.optim.emaUpdate({ w: f64([0]) }, { w: f64([1]) }, 0.9);
    assertClose(avg, { w: [0.1] }, TOL);
    assert.throws(() => new ad.optim.EMA([p]).restore(), ad.TransformError);
  });

  test("GradientAccumulator: k micro-batches give the step of their mean gradient", () => {
    const X = ad.random.normal(ad.random.key(1), [8, 3], { dtype: "float64" });
    const Y = ad.random.normal(ad.random.key(2), [8, 1], { dtype: "float64" });
    const mk = () => new ad.nn.Linear(3, 1, { key: ad.random.key(3), dtype: "float64" });
    const big = mk();
    const small = mk();
    const o1 = new ad.optim.SGD(big.parameters(), { lr: 0.1, momentum: 0.9 });
    const o2 = new ad.optim.SGD(small.parameters(), { lr: 0.1, momentum: 0.9 });
    const acc = new ad.optim.GradientAccumulator(o2, 4);
    for (let round = 0; round < 2; round++) {
      ad.nn.mseLoss(big.forward(X), Y).backward();
      o1.step();
      o1.zeroGrad();
      const updated: boolean[] = [];
      for (let m = 0; m < 4; m++) {
        const xb = ad.slice(X, [2 * m, 0], [2, 3]);
        const yb = ad.slice(Y, [2 * m, 0], [2, 1]);
        ad.nn.mseLoss(small.forward(xb), yb).backward();
        updated.push(acc.step());
      }
      assert.deepEqual(updated, [false, false, false, true]);
      assertClose(small.weight, big.weight, { rtol: 1e-12, atol: 1e-14 });
      assertClose(small.bias!, big.bias!, { rtol: 1e-12, atol: 1e-14 });
      assert.equal(small.weight.grad, null);
    }
  });

  test("functional multiSteps: zero updates in between, then the inner step on the mean gradient", () => {
    const tx = ad.optim.multiSteps(ad.optim.sgd(1), 3);
    let params = { w: f64([0]) };
    let state = tx.init(params);
    const out: number[] = [];
    for (const g of [3, 6, 9, 1, 1, 1]) {
      const [u, s] = tx.update({ w: f64([g]) }, state, params);
      params = ad.optim.applyUpdates(params, u);
      state = s;
      out.push(params.w.item());
    }
    assert.deepEqual(out, [0, 0, -6, -6, -6, -7]);
  });
});

describe("the functional form inside transforms", () => {
  test("jit of a whole training step equals the eager step", () => {
    const X = ad.random.normal(ad.random.key(4), [6, 2], { dtype: "float64" });
    const Y = ad.random.normal(ad.random.key(5), [6, 1], { dtype: "float64" });
    const model = new ad.nn.Linear(2, 1, { key: ad.random.key(6), dtype: "float64" });
    const tx = ad.optim.adam(0.05);
    const loss = (p: Record<string, ad.Tensor>) => ad.nn.mseLoss(ad.nn.functionalCall(model, p, X), Y);
    const step = (p: Record<string, ad.Tensor>, s: ad.optim.RuleState) => {
      const [u, s2] = tx.update(ad.grad(loss)(p), s, p);
      return [ad.optim.applyUpdates(p, u), s2] as const;
    };
    const jitted = ad.jit(step as (p: Record<string, ad.Tensor>, s: ad.optim.RuleState) => unknown) as (
      p: Record<string, ad.Tensor>,
      s: ad.optim.RuleState,
    ) => readonly [Record<string, ad.Tensor>, ad.optim.RuleState];
    let pe: Record<string, ad.Tensor> = model.stateDict();
    let se = tx.init(pe);
    let pj = pe;
    let sj = se;
    for (let i = 0; i < 3; i++) {
      [pe, se] = step(pe, se);
      [pj, sj] = jitted(pj, sj);
    }
    assertClose(pj, pe, { rtol: 1e-12, atol: 1e-14 });
    assertClose(Number(ad.tensor(sj.count as number).item()), 3, TOL);
  });

  test("numbers as parameters stay numbers", () => {
    const tx = ad.optim.sgd(0.5);
    const params = { a: 2, b: f64([1]) };
    const [u, s] = tx.update({ a: 1, b: f64([2]) }, tx.init(params), params);
    const next = ad.optim.applyUpdates(params, u);
    assert.equal(typeof next.a, "number");
    assertClose(next, { a: 1.5, b: [0] }, TOL);
    assert.equal(s.count, 1);
  });
});
