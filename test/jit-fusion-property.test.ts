/**
 * Property tests of jit's fusion into products and sums: random layer shapes (small enough for
 * the reference loops, large enough for packed and threaded products), random epilogues (bias,
 * activations, masks, scales, a second array), random sums of random elementwise programs over
 * random axes, and the reverse passes of small networks. Jitted results must equal the eager
 * ones bit for bit on either backend, whatever fusion chose.
 */

import { describe, test } from "node:test";
import * as ad from "adjoint";
import fc from "fast-check";
import { sameBits } from "./helpers.js";

type Act = (t: ad.Tensor, extra: ad.Tensor) => ad.Tensor;
const ACTS: Record<string, Act> = {
  relu: (t) => ad.relu(t),
  tanh: (t) => ad.tanh(t),
  scale: (t) => ad.mul(t, 0.5),
  mask: (t, e) => ad.where(ad.greater(t, e), t, ad.mul(e, 2)),
  residual: (t, e) => ad.sub(ad.add(t, e), 1),
  clamp: (t) => ad.minimum(ad.maximum(t, -1), 1),
  none: (t) => t,
};

const dims = fc.constantFrom(1, 3, 8, 17, 64, 130);
const dtypeArb = fc.constantFrom("float32" as const, "float64" as const);

describe("property: jit fusion is bit-identical to eager", () => {
  test("products with random epilogues (operands transposed or not)", () => {
    fc.assert(
      fc.property(
        dims,
        dims,
        dims,
        dtypeArb,
        fc.constantFrom(...Object.keys(ACTS)),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 2 ** 30 }),
        (m, k, n, dtype, act, bias, ta, tb, seed) => {
          const [k1, k2, k3, k4] = ad.random.split(ad.random.key(seed), 4);
          const a = ad.random.normal(k1!, ta ? [k, m] : [m, k], { dtype });
          const w = ad.random.normal(k2!, tb ? [n, k] : [k, n], { dtype });
          const b = ad.random.normal(k3!, [n], { dtype });
          const e = ad.random.normal(k4!, [m, n], { dtype });
          const f = (x: ad.Tensor, y: ad.Tensor, c: ad.Tensor, z: ad.Tensor) => {
            const p = ad.matmul(ta ? ad.transpose(x) : x, tb ? ad.transpose(y) : y);
            return ACTS[act]!(bias ? ad.add(p, c) : p, z);
          };
          sameBits(
            ad.jit(f)(a, w, b, e),
            f(a, w, b, e),
            `${m}x${k}x${n} ${dtype} ${act} bias=${bias} ${ta} ${tb}`,
          );
        },
      ),
      { numRuns: 40, seed: 20261207 },
    );
  });

  test("sums of random elementwise programs over random axes", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(1, 2, 5, 33, 64, 129), { minLength: 1, maxLength: 3 }),
        dtypeArb,
        fc.constantFrom(...Object.keys(ACTS)),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 2 ** 30 }),
        (shape, dtype, act, axisMask, keepdims, seed) => {
          const [k1, k2] = ad.random.split(ad.random.key(seed), 2);
          const x = ad.random.normal(k1!, shape, { dtype });
          const y = ad.random.normal(k2!, shape, { dtype });
          const axes = shape.map((_, i) => i).filter((i) => (axisMask >> i) & 1);
          const axis = axes.length === 0 ? undefined : axes;
          const f = (u: ad.Tensor, v: ad.Tensor) =>
            ad.sum(ACTS[act]!(ad.mul(ad.sub(u, v), ad.add(u, 0.25)), v), { axis, keepdims });
          sameBits(ad.jit(f)(x, y), f(x, y), `[${shape}] ${dtype} ${act} axes ${JSON.stringify(axis)}`);
        },
      ),
      { numRuns: 40, seed: 20261208 },
    );
  });

  test("value and gradient of random two-layer networks", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(2, 16, 40),
        fc.constantFrom(3, 32, 70),
        fc.constantFrom(1, 10, 24),
        fc.constantFrom("relu", "tanh", "clamp"),
        fc.integer({ min: 0, max: 2 ** 30 }),
        (batch, hidden, out, act, seed) => {
          const ks = ad.random.split(ad.random.key(seed), 5);
          const p = {
            w1: ad.random.normal(ks[0]!, [20, hidden]),
            b1: ad.random.normal(ks[1]!, [hidden]),
            w2: ad.random.normal(ks[2]!, [hidden, out]),
            b2: ad.random.normal(ks[3]!, [out]),
          };
          const x = ad.random.normal(ks[4]!, [batch, 20]);
          const loss = (q: typeof p) => {
            const h = ACTS[act]!(ad.add(ad.matmul(x, q.w1), q.b1), x);
            return ad.mean(ad.square(ad.add(ad.matmul(h, q.w2), q.b2)));
          };
          const vg = ad.valueAndGrad(loss);
          const [v1, g1] = ad.jit(vg)(p) as [ad.Tensor, typeof p];
          const [v2, g2] = vg(p) as [ad.Tensor, typeof p];
          const tag = `batch ${batch} hidden ${hidden} out ${out} ${act}`;
          sameBits(v1, v2, `${tag} value`);
          for (const k of ["w1", "b1", "w2", "b2"] as const) sameBits(g1[k], g2[k], `${tag} ${k}`);
        },
      ),
      { numRuns: 25, seed: 20261209 },
    );
  });
});
