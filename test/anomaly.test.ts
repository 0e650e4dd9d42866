/** @file Anomaly detection: the first NaN/Inf created names the primitive, the pass and the source line. */

import assert from "node:assert/strict";
import { test } from "node:test";
import * as ad from "adjoint";

const anomaly = (re: RegExp) => (e: unknown) => e instanceof ad.AnomalyError && re.test((e as Error).message);

test("forward: a NaN created by log names log, the forward pass and this file's line", () => {
  assert.throws(
    () => ad.detectAnomaly(() => ad.log(ad.tensor([-1]))),
    anomaly(/^log: the forward pass produced NaN at .*anomaly\.test\.ts:\d+:\d+/),
  );
});

test("backward: an Inf from sqrt's VJP at 0 names sqrt, the backward pass and the forward line", () => {
  assert.throws(
    () => ad.detectAnomaly(() => ad.grad((x: number) => ad.sqrt(x))(0)),
    anomaly(/^sqrt: the backward pass produced Inf .*forward operation at .*anomaly\.test\.ts:\d+:\d+/),
  );
  assert.throws(
    () =>
      ad.detectAnomaly(() => {
        const x = ad.tensor([0, 1], { requiresGrad: true });
        ad.sqrt(x).sum().backward();
      }),
    anomaly(/^sqrt: the backward pass/),
  );
});

test("off by default and restored after detectAnomaly; NaN inputs are not blamed on the next op", () => {
  assert.ok(Number.isNaN(ad.log(ad.tensor([-1])).item()));
  ad.detectAnomaly(() => ad.exp(1));
  assert.ok(Number.isNaN(ad.log(ad.tensor([-1])).item()));
  assert.equal(
    ad.detectAnomaly(() => ad.add(ad.tensor([Number.NaN]), 1).size),
    1,
  );
  assert.equal(
    ad.detectAnomaly(() => 42),
    42,
  );
});

test("setDetectAnomaly switches it globally", () => {
  ad.setDetectAnomaly(true);
  try {
    assert.throws(() => ad.div(1, ad.tensor([0])), ad.AnomalyError);
  } finally {
    ad.setDetectAnomaly(false);
  }
  assert.equal(ad.div(1, ad.tensor([0])).item(), Infinity);
  assert.throws(() => ad.detectAnomaly(42 as unknown as () => void), ad.TransformError);
});
