#!/usr/bin/env bash
# dpt plot on a bench result of two pin policies: one chart, a line per
# pin, IQR error bars; hollow markers and a note only when the result is
# marked loaded. The gnuplot script is checked (DPT_GNUPLOT=true: nothing
# is drawn, the script stays).
set -euo pipefail
dpt=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "plot.sh: $*" >&2; exit 1; }
"$dpt" bench --synth linreg:n=500,d=4 --epochs 1 --threads 1,2 --pin compact,scatter --reps 3 \
    --warmup 0 --no-limits --json b.json --quiet >/dev/null 2>&1
# a quiet machine and a loaded one; identical samples: no spread warning
python3 - <<'PY'
import json
d = json.load(open("b.json"))
for r in d["results"]:
    m = r["seconds"]["median"]
    r["seconds"]["samples"] = [m, m, m]
d["context"]["load_average"] = [0.0, 0.0, 0.0]
for r in d["results"]:  # this run's own telemetry may have seen the other tests
    r.pop("telemetry", None)
json.dump(d, open("quiet.json", "w"))
d["context"]["load_average"] = [64.0, 64.0, 64.0]
json.dump(d, open("loaded.json", "w"))
PY
for f in quiet loaded; do
    DPT_GNUPLOT=true "$dpt" plot $f.json --out $f >/dev/null || fail "plot $f"
    gp=$(ls $f/*.gp)
    [ "$(ls $f/*.gp | wc -l)" -eq 1 ] || fail "$f: more than one chart: $(ls $f)"
    grep -q "title 'pin compact, full batch'" "$gp" && grep -q "title 'pin scatter, full batch'" "$gp" ||
        fail "$f: not a line per pin"
    grep -q "with yerrorlines" "$gp" || fail "$f: no error bars"
done
grep -q "LOADED OR DISTURBED RUN" loaded/*.gp || fail "no loaded note"
grep -q "pt 6 " loaded/*.gp || fail "no hollow markers on the loaded run"
if grep -q "LOADED" quiet/*.gp; then fail "the quiet run is marked loaded"; fi
grep -q "pt 7 " quiet/*.gp || fail "no filled markers on the quiet run"
echo ok
