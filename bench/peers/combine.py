#!/usr/bin/python3
"""Merge the dpt-bench/1 files of bench/peers/run into one file and a
markdown table.

    combine.py LIMITS.json OUT.json OUT.md RUN.json...

Each RUN file holds rows of one implementation from one round; the rows of
the same implementation, workload and thread count are merged (their
samples pooled, medians and type-7 IQR recomputed). Work per epoch is dpt's
honest count (the FLOPs each model performs, the bytes of X a linear model
reads), taken from dpt's rows and applied to every implementation alike;
%peak and %BW are against the limits `dpt limits` measured in the same run.
Only the standard library: it runs without numpy.
"""

import json
import os
import sys


def quantile(s, q):
    h = (len(s) - 1) * q
    lo = int(h)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (h - lo) * (s[hi] - s[lo])


def write(path, doc):
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    limits_path, out_json, out_md, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    with open(limits_path) as f:
        lim_doc = json.load(f)
    limits = {p["threads"]: p for p in lim_doc["limits"]["points"]}
    context = None
    rows = {}
    order = []
    for path in runs:
        with open(path) as f:
            doc = json.load(f)
        if doc["context"].get("cpu_model") and context is None:
            context = doc["context"]  # dpt's first file: the machine's description
        for r in doc["results"]:
            key = (r["workload"], r.get("implementation", "dpt"), r["threads"])
            if key not in rows:
                r = dict(r, implementation=key[1])
                r["seconds"] = dict(r["seconds"], samples=list(r["seconds"]["samples"]))
                rows[key] = r
                order.append(key)
            else:
                rows[key]["seconds"]["samples"] += r["seconds"]["samples"]
    # dpt's work per epoch: gflops x median (and GB/s x median) of its rows
    work = {}
    for (w, impl, t), r in rows.items():
        if impl == "dpt" and r["gflops"] is not None:
            work[w] = (r["gflops"] * r["seconds"]["median"],
                       (r["gbytes_per_second"] or 0) * r["seconds"]["median"] or None,
                       r["samples_per_second"] * r["seconds"]["median"])
    for (w, impl, t), r in rows.items():
        s = sorted(r["seconds"]["samples"])
        med = quantile(s, 0.5)
        r["reps"] = len(s)
        r["seconds"].update(median=med, min=s[0], max=s[-1],
                            iqr=quantile(s, 0.75) - quantile(s, 0.25))
        if w in work:
            gflop, gbyte, n = work[w]
            r["samples_per_second"] = n / med
            r["gflops"] = gflop / med
            r["gbytes_per_second"] = gbyte / med if gbyte else None
            lim = limits.get(t)
            if lim:
                r["fraction_of_peak"] = ratio(r["gflops"], lim["peak_gflops"])
                r["fraction_of_bandwidth"] = ratio(r["gbytes_per_second"],
                                                   lim["read_gbytes_per_second"])
    for (w, impl, t), r in rows.items():
        base = rows.get((w, impl, 1))
        r["speedup"] = ratio(base["seconds"]["median"], r["seconds"]["median"]) if base else None
        r["efficiency"] = r["speedup"] / t if r["speedup"] else None
    if context is None:
        context = lim_doc["context"]
    context["load_average"] = lim_doc["context"]["load_average"]
    doc = {"schema": "dpt-bench/1", "context": context, "limits": lim_doc["limits"],
           "results": [rows[k] for k in order]}
    write(out_json, doc)
    # one file per implementation beside it, for dpt compare PEER.json dpt.json
    for impl in sorted({k[1] for k in order}):
        one = dict(doc, results=[rows[k] for k in order if k[1] == impl])
        write(os.path.join(os.path.dirname(out_json) or ".", impl + ".json"), one)

    impls = []
    for k in order:
        if k[1] != "dpt" and k[1] not in impls:
            impls.append(k[1])
    workloads = []
    for k in order:
        if k[0] not in workloads:
            workloads.append(k[0])
    threads = sorted({k[2] for k in order})

    def pct(x):
        return f"{100 * x:.0f}%" if x is not None else "-"

    def num(x):
        return f"{x:,.0f}" if x is not None else "-"

    head = ["workload", "threads", "dpt samples/s"]
    for p in impls:
        head += [f"{p} samples/s", f"dpt / {p}"]
    head += ["dpt / best peer setting", "dpt %peak", "dpt %BW"]
    for p in impls:
        head += [f"{p} %peak"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in workloads:
        # a peer's best setting: its fastest thread count of those run
        best = [rows[k]["samples_per_second"] for k in order
                if k[0] == w and k[1] != "dpt" and rows[k]["samples_per_second"]]
        best = max(best) if best else None
        for t in threads:
            d = rows.get((w, "dpt", t))
            if not d:
                continue
            ds = d["samples_per_second"]
            cells = [w, str(t), num(ds)]
            for p in impls:
                r = rows.get((w, p, t))
                ps = r["samples_per_second"] if r else None
                cells += [num(ps), f"{ds / ps:.2f}x" if ps else "-"]
            cells += [f"{ds / best:.2f}x" if best else "-", pct(d["fraction_of_peak"]),
                      pct(d["fraction_of_bandwidth"])]
            for p in impls:
                r = rows.get((w, p, t))
                cells += [pct(r["fraction_of_peak"]) if r else "-"]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| threads | read GB/s (dpt limits) | FMA peak GFLOP/s |")
    lines.append("|---|---|---|")
    for t in threads:
        lim = limits.get(t)
        if lim:
            lines.append(f"| {t} | {lim['read_gbytes_per_second']:.1f} | "
                         f"{lim['peak_gflops']:.1f} |")
    lines.append("")
    lines.append("Final losses (full training set, after the timed epochs):")
    lines.append("")
    for w in workloads:
        items = [f"{k[1]} {k[2]}t {rows[k]['final_loss']:.6g}" for k in order
                 if k[0] == w and rows[k]["final_loss"] is not None]
        lines.append(f"- {w}: " + ", ".join(items))
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
