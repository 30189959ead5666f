#!/usr/bin/python3
"""dpt's canonical workloads in PyTorch, as its users write them: torch.nn
modules, torch.optim.SGD, tensors sliced per batch (a DataLoader is several
times slower here), torch.set_num_threads. Reads the bytes `dpt gen
--workload NAME` wrote and writes one dpt-bench/1 row (implementation
"pytorch").

    torch_peer.py --workload mlp-wide --data mlp-wide.dptb --threads 2 --json out.json
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

args = common.parse_args("pytorch")
common.set_thread_env(args.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(args.threads)
spec = common.WORKLOADS[args.workload]
X_np, y_np = common.read_dptb(args.data)
n = X_np.shape[0]
X = torch.from_numpy(X_np)
ce = spec["loss"] == "ce"
y = torch.from_numpy(y_np).long() if ce else torch.from_numpy(y_np).unsqueeze(1)
init = common.init_weights(spec)


def build():
    mods = []
    sizes = spec["layers"]
    for k, (i, o) in enumerate(zip(sizes, sizes[1:])):
        lin = torch.nn.Linear(i, o, bias=init[k][1] is not None)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(init[k][0]))
            if lin.bias is not None:
                lin.bias.copy_(torch.from_numpy(init[k][1]))
        mods.append(lin)
        if k < len(sizes) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


loss_fn = torch.nn.CrossEntropyLoss() if ce else torch.nn.MSELoss()
epochs = args.epochs or spec["epochs"]
model = None


def train_once(nepochs):
    global model
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])
    B = spec["batch"] or n
    gen = torch.Generator().manual_seed(spec["seed"])
    with common.Timer() as t:
        for _ in range(nepochs):
            perm = torch.randperm(n, generator=gen) if spec["shuffle"] else None
            for i in range(0, n, B):
                if perm is None:
                    xb, yb = X[i:i + B], y[i:i + B]
                else:
                    idx = perm[i:i + B]
                    xb, yb = X[idx], y[idx]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
    return t.seconds


samples = common.time_runs(train_once, args.reps, epochs)
with torch.no_grad():
    out = model(X).double()
    if ce:
        loss = torch.nn.functional.cross_entropy(out, y).item()
        acc = (out.argmax(1) == y).double().mean().item()
    else:
        loss, acc = torch.nn.functional.mse_loss(out, y.double()).item(), None
common.write_report(args.json, "pytorch", f"torch {torch.__version__}", args, spec, n, samples,
                    loss, acc)
