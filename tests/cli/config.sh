#!/usr/bin/env bash
# A training rerun from its own --json (dpt train --config) gives the same
# bits: the saved model files are equal byte for byte; a flag beside
# --config overrides the file's.
set -euo pipefail
dpt=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "config.sh: $*" >&2; exit 1; }

"$dpt" train --synth teacher-mlp:n=1500,d=8,seed=3 --model mlp --hidden 12,6 --act tanh \
    --opt momentum --momentum 0.8 --lr 0.03 --batch 50 --lr-schedule step:3:0.5 \
    --weight-decay 1e-4 --clip 5 --epochs 6 --seed 11 --threads 2 --val 0.25 --standardize \
    --json a.json --save a.model --quiet >/dev/null
"$dpt" train --config a.json --save b.model --json b.json --quiet >/dev/null
cmp a.model b.model || fail "the rerun from a.json saved another model"
# the rerun's own record is the same configuration
python3 - <<'PY' || fail "the rerun's config differs"
import json
a = json.load(open("a.json"))["config"]; b = json.load(open("b.json"))["config"]
assert a == b, (a, b)
for k in ["synth", "model", "hidden", "act", "opt", "momentum", "lr", "batch", "lr-schedule",
          "weight-decay", "clip", "epochs", "seed", "threads", "val", "standardize", "pin",
          "reduce", "batching", "balance", "init", "shuffle", "isa"]:
    assert k in a, k
e = json.load(open("a.json"))["epochs"]
assert len(e) == 6 and all("loss" in x and "val" in x for x in e)
# the domains the engine used: one core a domain here, so no groups
d = json.load(open("a.json"))["domains"]
assert set(d) == {"level", "count", "groups", "package_level"}, d
assert d["count"] >= 1 and d["groups"] is False and d["package_level"] is False, d
PY
# a flag beside --config overrides the file's
"$dpt" train --config a.json --epochs 2 --json c.json --quiet >/dev/null
python3 -c 'import json,sys; d=json.load(open("c.json")); sys.exit(0 if len(d["epochs"])==2 and d["config"]["epochs"]==2 else 1)' ||
    fail "--epochs beside --config did not override it"
# a file that is not a train JSON: one line, exit 1
echo '{}' > bad.json
if "$dpt" train --config bad.json 2>err.txt; then fail "--config of {} succeeded"; fi
[ "$(wc -l <err.txt)" -eq 1 ] && grep -q 'bad.json' err.txt || fail "message: $(cat err.txt)"
echo ok
