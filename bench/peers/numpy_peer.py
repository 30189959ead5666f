#!/usr/bin/python3
"""dpt's canonical workloads in NumPy, as its users write them: matrix
products through the BLAS numpy links (OpenBLAS on Debian with
libopenblas0-pthread), the backward pass by hand, momentum as PyTorch.
Threads: OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, set here before numpy loads.
Writes one dpt-bench/1 row (implementation "numpy").

    numpy_peer.py --workload linreg --data linreg.dptb --threads 2 --json out.json
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

args = common.parse_args("numpy")
common.set_thread_env(args.threads)

import numpy as np  # noqa: E402

spec = common.WORKLOADS[args.workload]
X, y = common.read_dptb(args.data)
n = X.shape[0]
ce = spec["loss"] == "ce"
labels = y.astype(np.int64) if ce else None
yc = None if ce else y[:, None]
epochs = args.epochs or spec["epochs"]
params = None


def forward(params, x):
    """Activations of every layer: [x, h1, ..., out]."""
    acts = [x]
    for k, (W, b) in enumerate(params):
        z = acts[-1] @ W.T
        if b is not None:
            z += b
        if k < len(params) - 1:
            np.maximum(z, 0, out=z)
        acts.append(z)
    return acts


def grads(params, xb, lo, hi):
    acts = forward(params, xb)
    out, m = acts[-1], xb.shape[0]
    if ce:
        e = np.exp(out - out.max(axis=1, keepdims=True))
        d = e / e.sum(axis=1, keepdims=True)
        d[np.arange(m), labels[lo:hi]] -= 1
        d /= m
    else:
        d = (out - yc[lo:hi]) * (2.0 / m)
    g = [None] * len(params)
    for k in range(len(params) - 1, -1, -1):
        W, b = params[k]
        gW = d.T @ acts[k]
        g[k] = (gW, d.sum(axis=0) if b is not None else None)
        if k:
            d = d @ W
            d *= acts[k] > 0
    return g


def train_once(nepochs):
    global params
    params = [(W.copy(), None if b is None else b.copy()) for W, b in common.init_weights(spec)]
    vel = [(np.zeros_like(W), None if b is None else np.zeros_like(b)) for W, b in params]
    B = spec["batch"] or n
    lr, mu = np.float32(spec["lr"]), np.float32(spec["momentum"])
    rng = np.random.default_rng(spec["seed"])
    with common.Timer() as t:
        for _ in range(nepochs):
            perm = rng.permutation(n) if spec["shuffle"] else None
            for lo in range(0, n, B):
                hi = min(lo + B, n)
                if perm is None:
                    xb = X[lo:hi]
                    g = grads(params, xb, lo, hi)
                else:
                    idx = perm[lo:hi]
                    g = grads_rows(idx)
                for (W, b), (vW, vb), (gW, gb) in zip(params, vel, g):
                    if mu:
                        vW *= mu
                        vW += gW
                        gW = vW
                    W -= lr * gW
                    if b is not None:
                        if mu:
                            vb *= mu
                            vb += gb
                            gb = vb
                        b -= lr * gb
    return t.seconds


def grads_rows(idx):
    """A shuffled batch: gather its rows and labels first."""
    global labels, yc
    keep = labels, yc
    if ce:
        labels = keep[0][idx]
    else:
        yc = keep[1][idx]
    try:
        return grads(params, X[idx], 0, len(idx))
    finally:
        labels, yc = keep


samples = common.time_runs(train_once, args.reps, epochs)
out = forward(params, X)[-1].astype(np.float64)
acc = None
if ce:
    z = out - out.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = float(-logp[np.arange(n), labels].mean())
    acc = float((out.argmax(1) == labels).mean())
else:
    loss = float(((out - yc) ** 2).mean())
common.write_report(args.json, "numpy", f"numpy {np.__version__}", args, spec, n, samples, loss,
                    acc)
