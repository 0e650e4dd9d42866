"""The native reference for the side-by-side benchmark: NumPy (OpenBLAS) computing the same
workloads by hand where a closed form exists (matrix products, the MLP forward pass and its
hand-written backward pass, the Rosenbrock gradient, the Jacobian of tanh(Wx)). The same seeded
data as bench/peers/common.ts. Prints one `RESULT {json}` line per figure.

Run by bench/peers.ts: python3 bench/peers/numpy_ref.py [quick]
"""

import json
import statistics
import sys
import time

import numpy as np

QUICK = "quick" in sys.argv


def report(row, ms, check=None, note=None):
    r = {"row": row, "lib": "numpy (native)", "ms": ms}
    if check is not None:
        r["check"] = [float(c) for c in check]
    if note is not None:
        r["note"] = note
    print("RESULT " + json.dumps(r), flush=True)


def timeit(fn):
    warm, warm_s, min_reps, max_reps, budget = (1, 0.1, 3, 10, 0.3) if QUICK else (3, 0.8, 5, 60, 1.5)
    w0 = time.perf_counter()
    i = 0
    while i < 3000 and (i < warm or time.perf_counter() - w0 < warm_s):
        fn()
        i += 1
    ts = []
    start = time.perf_counter()
    while len(ts) < min_reps or (len(ts) < max_reps and time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)


def data(n, seed, scale=1.0):
    """The linear congruential generator of common.ts, value for value."""
    out = np.empty(n)
    s = seed & 0xFFFFFFFF
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = (s / 4294967296 - 0.5) * scale
    return out


def checksum(a):
    a = np.asarray(a).ravel()
    return [a.astype(np.float64).sum(), a[0], a[-1]]


def matmul():
    for dtype, n in [("float32", 128), ("float32", 256), ("float32", 512), ("float32", 1024), ("float64", 512)]:
        i = np.arange(n * n, dtype=np.float64)
        a = (np.sin(i * 0.37 + 1) * 0.5).astype(dtype).reshape(n, n)
        b = (np.sin(i * 0.37 + 2) * 0.5).astype(dtype).reshape(n, n)
        row = "W1 matmul %s n=%d" % ("f32" if dtype == "float32" else "f64", n)
        report(row, timeit(lambda: a @ b), checksum(a @ b))


def mlp():
    sizes = [784, 256, 256, 10]
    batch = 128
    a, b, c, d = sizes
    f = np.float32
    W1 = data(a * b, 11, 2 / np.sqrt(a)).astype(f).reshape(a, b)
    b1 = data(b, 12, 0.1).astype(f)
    W2 = data(b * c, 13, 2 / np.sqrt(b)).astype(f).reshape(b, c)
    b2 = data(c, 14, 0.1).astype(f)
    W3 = data(c * d, 15, 2 / np.sqrt(c)).astype(f).reshape(c, d)
    b3 = data(d, 16, 0.1).astype(f)
    x = data(batch * a, 17, 2).astype(f).reshape(batch, a)
    y = np.zeros((batch, d), dtype=f)
    for i in range(batch):
        y[i, (i * 7) % d] = 1

    def forward():
        h1 = np.maximum(x @ W1 + b1, 0)
        h2 = np.maximum(h1 @ W2 + b2, 0)
        z = h2 @ W3 + b3
        m = z.max(axis=-1, keepdims=True)
        lse = (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[:, 0]
        return (lse - (z * y).sum(axis=-1)).mean()

    def step():
        a1 = x @ W1 + b1
        h1 = np.maximum(a1, 0)
        a2 = h1 @ W2 + b2
        h2 = np.maximum(a2, 0)
        z = h2 @ W3 + b3
        m = z.max(axis=-1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(axis=-1, keepdims=True)
        loss = ((m + np.log(s))[:, 0] - (z * y).sum(axis=-1)).mean()
        dz = (e / s - y) / batch
        gW3 = h2.T @ dz
        gb3 = dz.sum(0)
        dh2 = (dz @ W3.T) * (a2 > 0)
        gW2 = h1.T @ dh2
        gb2 = dh2.sum(0)
        dh1 = (dh2 @ W2.T) * (a1 > 0)
        gW1 = x.T @ dh1
        gb1 = dh1.sum(0)
        return loss, gW1, gb1, gW2, gb2, gW3, gb3

    report("W2 MLP forward", timeit(forward), [forward()])
    r = step()
    report("W2 MLP forward+backward", timeit(step), [r[0] + r[1].astype(np.float64).sum()])
    report("W4 HVP of the MLP loss wrt W1", None, note="no closed form written")


def grads():
    for n in [10, 100_000]:
        x = (1 + data(n, 21, 1)).astype(np.float32)

        def g():
            head, tail = x[:-1], x[1:]
            t = tail - head * head
            out = np.zeros_like(x)
            out[:-1] = -400 * t * head - 2 * (1 - head)
            out[1:] += 200 * t
            return out

        report("W3 Rosenbrock gradient n=%d" % n, timeit(g), checksum(g()))


def jacobians():
    n = 200
    W = data(n * n, 31, 2 / np.sqrt(n)).astype(np.float32).reshape(n, n)
    x = data(n, 32, 2).astype(np.float32)

    def J():
        t = np.tanh(W @ x)
        return (1 - t * t)[:, None] * W

    for mode in ["jacfwd", "jacrev"]:
        report("W5 200x200 Jacobian of tanh(Wx), %s" % mode, timeit(J), checksum(J()))


only = next((a for a in sys.argv[1:] if a.startswith("W")), None)
if only in (None, "W1"):
    matmul()
if only in (None, "W2"):
    mlp()
if only in (None, "W3"):
    grads()
if only in (None, "W5"):
    jacobians()
