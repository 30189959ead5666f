#!/usr/bin/env bash
# README.md's "Reading the output" names every key of a train --json file
# (config's keys are flag names: each must be a flag of dpt train) and of a
# bench result row, as `key`.
set -euo pipefail
dpt=$1
root=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
"$dpt" train --synth logreg:n=600,d=4 --model logistic --epochs 2 --val 0.25 --threads 1 \
    --target-accuracy 0.99 --patience 5 --json t.json --quiet >/dev/null
"$dpt" bench --synth linreg:n=600,d=4 --epochs 1 --threads 1 --reps 2 --warmup 0 --no-limits \
    --json b.json --quiet >/dev/null 2>&1
"$dpt" train --list-flags | sed 's/=$//' >flags.txt
python3 - "$root/README.md" <<'PY'
import json, re, sys
readme = open(sys.argv[1]).read()
sec = readme[readme.index("## Reading the output"):]
sec = sec[:sec.index("\n## ", 5)]
sec = re.sub(r"```.*?```", "", sec, flags=re.S)
named = set(re.findall(r"`([^`]+)`", sec))
words = set(w for n in named for w in re.split(r"[\s.:,\[\]()]+", n) if w)
flags = set(open("flags.txt").read().split())
missing = []
def walk(v, where):
    if isinstance(v, dict):
        for k, x in v.items():
            if where == "config":
                if k not in flags: missing.append("config." + k + " (not a flag)")
                continue
            if k not in words: missing.append(where + "." + k if where else k)
            walk(x, k)
    elif isinstance(v, list) and v and isinstance(v[0], dict):
        walk(v[0], where)
walk(json.load(open("t.json")), "")
walk(json.load(open("b.json"))["results"][0], "results")
if missing:
    sys.exit("README.md, Reading the output, does not name: " + ", ".join(sorted(set(missing))))
PY
echo ok
