"""What the peers share: the workloads' settings, reading the bytes `dpt gen
--workload` wrote, the deterministic initial weights, the timing protocol and
the dpt-bench/1 file they write.

The settings and the weight generator follow docs/workloads.md; the data is
never regenerated here, it is read from the .dptb file dpt wrote, so dpt and
the peers train on the same bytes. Only numpy and the standard library are
imported here: the thread count must be set in the environment before
numpy or torch load their BLAS (see threads_from_argv).
"""

import argparse
import datetime
import json
import os
import struct
import sys
import time

# name: model, loss, optimizer settings as in src/run/workload.c
WORKLOADS = {
    "linreg": dict(layers=[64, 1], act=None, loss="mse", opt="gd", lr=0.05, momentum=0.0,
                   batch=0, epochs=20, seed=1, shuffle=False, init="zero"),
    "mlp-seed": dict(layers=[10, 20, 1], act="relu", loss="mse", opt="gd", lr=0.01,
                     momentum=0.0, batch=0, epochs=20, seed=3, shuffle=False, init="uniform"),
    "mlp-seed-sgd": dict(layers=[10, 20, 1], act="relu", loss="mse", opt="momentum", lr=0.01,
                         momentum=0.9, batch=256, epochs=2, seed=3, shuffle=False,
                         init="uniform"),
    "mlp-wide": dict(layers=[256, 512, 512, 10], act="relu", loss="ce", opt="momentum", lr=0.05,
                     momentum=0.9, batch=512, epochs=1, seed=4, shuffle=False, init="uniform"),
    "fmnist-mlp": dict(layers=[784, 256, 128, 10], act="relu", loss="ce", opt="momentum",
                       lr=0.01, momentum=0.9, batch=128, epochs=15, seed=1, shuffle=True,
                       init="uniform"),
}


def parse_args(impl):
    p = argparse.ArgumentParser(description=f"{impl} version of dpt's canonical workloads")
    p.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    p.add_argument("--data", required=True, help=".dptb file from dpt gen --workload NAME")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=0, help="0: the workload's own")
    p.add_argument("--json", required=True, help="dpt-bench/1 file to write")
    a = p.parse_args()
    if a.threads < 1:
        p.error("--threads: must be >= 1")
    return a


def set_thread_env(threads):
    """Before numpy/torch are imported: OpenBLAS and OpenMP read these once."""
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(threads)


def read_dptb(path):
    """X (n, d) float32, y (n,) float32: the rows of a .dptb file (src/data/dptb.c)."""
    import numpy as np

    with open(path, "rb") as f:
        head = f.read(64)
    if head[:8] != b"DPTB\r\n\x1a\n":
        sys.exit(f"{path}: not a .dptb file (write one with dpt gen --workload NAME --out FILE)")
    n, d, ld = struct.unpack("<QQQ", head[16:40])
    x = np.memmap(path, dtype=np.float32, mode="r", offset=64, shape=(n, ld))
    y = np.memmap(path, dtype=np.float32, mode="r", offset=64 + n * ld * 4, shape=(n,))
    return np.array(x[:, :d]), np.array(y)  # copies: writable, in memory like a user's arrays


# ---- the initial weights: counter-based SplitMix64, stream 3 (docs/workloads.md)
GAMMA = 0x9E3779B97F4A7C15
M64 = (1 << 64) - 1


def _mix64(z):
    import numpy as np

    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def init_weights(spec):
    """[(W (out, in), b (out,)), ...] float32, uniform(+-1/sqrt(fan_in)) as dpt draws them."""
    import numpy as np

    layers = spec["layers"]
    if spec["init"] == "zero":
        return [(np.zeros((o, i), np.float32), None) for i, o in zip(layers, layers[1:])]
    key = int(_mix64((spec["seed"] * 256 + 3 + GAMMA) & M64))
    out, j = [], 0
    for fan_in, fan_out in zip(layers, layers[1:]):
        arrs = []
        for count in (fan_in * fan_out, fan_out):
            idx = np.arange(j + 1, j + 1 + count, dtype=np.uint64)
            with np.errstate(over="ignore"):
                u = _mix64(np.uint64(key) + idx * np.uint64(GAMMA))
            u = ((u >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
            arrs.append(((2 * u - 1) / np.sqrt(fan_in)).astype(np.float32))
            j += count
        out.append((arrs[0].reshape(fan_out, fan_in), arrs[1]))
    return out


def time_runs(train_once, reps, epochs):
    """One untimed warm-up epoch, then reps runs from the initial weights;
    seconds per epoch of each (the loop only: train_once times itself)."""
    train_once(1)
    return [train_once(epochs) / epochs for _ in range(reps)]


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def _quantile(s, q):
    """Type-7 quantile, as dpt/stats.h."""
    h = (len(s) - 1) * q
    lo = int(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


def write_report(path, impl, version, args, spec, n, samples, loss, accuracy):
    s = sorted(samples)
    med = _quantile(s, 0.5)
    row = {
        "workload": args.workload, "implementation": impl, "ranks": 1,
        # pin: bench/peers/run starts the peers under taskset on the cores dpt's
        # compact placement takes; isa: the peers' kernels are their own business
        "threads": args.threads, "pin": os.environ.get("DPT_PEER_PIN", "none"),
        "isa": "unknown", "batch": spec["batch"],
        "reps": len(samples),
        "seconds": {"median": med, "min": s[0], "max": s[-1],
                    "iqr": _quantile(s, 0.75) - _quantile(s, 0.25), "samples": samples},
        "samples_per_second": n / med, "speedup": None, "efficiency": None,
        "gbytes_per_second": None, "gflops": None, "fraction_of_bandwidth": None,
        "fraction_of_peak": None, "final_loss": loss,
        "phases": {"compute": None, "reduce": None, "update": None, "wait": None},
        "imbalance": None,
    }
    if accuracy is not None:
        row["final_accuracy"] = accuracy
    try:
        load = list(os.getloadavg())
    except OSError:
        load = [None] * 3
    ctx = {k: None for k in ("cpu_model", "packages", "numa_nodes", "cores", "pus", "isa",
                             "compiler", "cflags", "dpt_version", "git_revision", "openmp",
                             "governor", "boost", "engine")}
    ctx["compiler"] = version
    ctx["load_average"] = load
    ctx["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {"schema": "dpt-bench/1", "context": ctx, "limits": {"points": []}, "results": [row]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)
    print(f"{impl} {args.workload} {args.threads} thread(s): {med * 1e3:.3f} ms/epoch, "
          f"{n / med:.0f} samples/s, final loss {loss:.6g}", file=sys.stderr)
