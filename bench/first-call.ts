/**
 * @file One first call of a jitted function in this (fresh) process: the 3000-op scalar chain
 * `y = sin(y) * 1.0001 + 0.1`, forward or gradient (the first argument), float32. Prints one JSON
 * line `{ wall, cpu }` in ms (wall clock and this process's CPU time, which includes the engine's
 * background compiler threads). bench/run.ts starts it several times and reports the spread:
 * issue 6 asks for ≤ 100 ms in a fresh process. Nothing else runs first except the package's
 * import, so this is the cost a program pays the first time it calls such a function.
 */

import * as ad from "adjoint";

const mode = process.argv[2] === "grad" ? "grad" : "forward";
const chain = (v: ad.Tensor) => {
  let y = v;
  for (let i = 0; i < 1000; i++) y = ad.add(ad.mul(ad.sin(y), 1.0001), 0.1);
  return y;
};
const x = ad.scalar(0.5);
const f = ad.jit(mode === "grad" ? (ad.grad(chain) as (v: ad.Tensor) => ad.Tensor) : chain);
const c0 = process.cpuUsage();
const t0 = performance.now();
f(x).item();
const wall = performance.now() - t0;
const c = process.cpuUsage(c0);
console.log(JSON.stringify({ wall, cpu: (c.user + c.system) / 1000 }));
