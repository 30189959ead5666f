#!/usr/bin/env bash
# dpt predict --json: the same predictions as the CSV, one per row, for a
# classifier and a regression model; a bad output path is refused.
set -uo pipefail
dpt=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/dpt-predict.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
fail() { echo "predict.sh: $*" >&2; exit 1; }
for kind in logreg linreg; do
    "$dpt" gen --synth $kind:n=300,d=6,seed=3 --out $kind.csv >/dev/null || fail "gen $kind"
    model=logistic; [ $kind = linreg ] && model=linear
    "$dpt" train --data $kind.csv --model $model --epochs 2 --threads 1 --save m.dptm --quiet \
        >/dev/null 2>&1 || fail "train $kind"
    "$dpt" predict --model-file m.dptm --data $kind.csv >p.csv || fail "predict csv $kind"
    "$dpt" predict --model-file m.dptm --data $kind.csv --json p.json >/dev/null ||
        fail "predict json $kind"
    python3 - "$kind" <<'PY' || fail "$kind: JSON and CSV disagree"
import csv, json, sys
rows = list(csv.reader(open("p.csv")))[1:]
d = json.load(open("p.json"))
assert d["schema"] == "dpt-predictions/1" and d["rows"] == 300 == len(d["predictions"])
for r, p in zip(rows, d["predictions"]):
    if sys.argv[1] == "linreg":
        assert abs(float(r[0]) - p) <= 1e-6 * max(1, abs(p)), (r, p)
    else:
        assert int(r[0]) == p["class"] and abs(float(r[2]) - p["p"][1]) < 1e-5, (r, p)
PY
done
"$dpt" predict --model-file m.dptm --data linreg.csv --json /nonexistent/dir/p.json \
    >/dev/null 2>err && fail "an unwritable --json was accepted"
[ "$(wc -l <err)" -eq 1 ] || fail "not one error line: $(cat err)"
echo ok
