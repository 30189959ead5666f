#!/usr/bin/env bash
# dpt compare --run's sequential pairs (--max-pairs) and its retries of
# disturbed runs (--retries), driven with a stand-in for dpt whose bench
# writes a real report (one `dpt bench --json`, as a template) with the
# times and telemetry this script chooses, so the verdicts are known.
set -uo pipefail
dpt=$(realpath "$1")
dir=$(mktemp -d "${TMPDIR:-/tmp}/dpt-sequential.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
fail() { echo "sequential.sh: $*" >&2; exit 1; }

"$dpt" bench --synth linreg:n=256,d=4 --model linear --epochs 1 --threads 1 --warmup 0 \
    --no-limits --reps 1 --json tpl.json --quiet >/dev/null 2>&1 || fail "template bench"

# The stand-in: `fake bench ... [--side new] --reps R --json PATH --quiet`.
# Its n-th call (per side) times every repetition at base x ratio(n) and
# flags them disturbed as FAKE_MODE says; calls are logged.
cat >fake <<'PY'
#!/usr/bin/env python3
import json, os, sys
a = sys.argv
side = "new" if "new" in a else "base"
path, reps = a[a.index("--json") + 1], int(a[a.index("--reps") + 1])
count = f"{os.environ['FAKE_DIR']}/calls-{side}"
n = int(open(count).read()) if os.path.exists(count) else 0
open(count, "w").write(str(n + 1))
mode = os.environ["FAKE_MODE"]
t, disturbed = 1.0, False
if mode == "retry":          # every other call disturbed and twice as slow
    disturbed = n % 2 == 0
    t = 2.0 if disturbed else 1.0
elif mode == "same":         # both alike, a little jitter
    t = 1.0 + 0.001 * (n % 3)
elif mode == "slower":       # new 20% slower
    t = (1.2 if side == "new" else 1.0) + 0.001 * (n % 3)
elif mode == "noisy":        # new's ratio swings 0.9 / 1.2: no decision
    t = (0.9 if n % 2 else 1.2) if side == "new" else 1.0
d = json.load(open(os.environ["FAKE_TEMPLATE"]))
r = d["results"][0]
tel = dict(r["telemetry"][0], disturbed=disturbed, others_busy=1.0 if disturbed else 0.0,
           migrations=0.0, invol_switches=0.0, seconds=t)
r["reps"] = reps
r["seconds"] = {"median": t, "min": t, "max": t, "iqr": 0.0, "samples": [t] * reps}
r["telemetry"] = [tel] * reps
json.dump(d, open(path, "w"))
PY
chmod +x fake
export FAKE_DIR=$dir FAKE_TEMPLATE=$dir/tpl.json

# run MODE PAIRS MAX RETRIES: compare --run with the stand-in on both sides;
# sets st (the exit status), pairs (samples per side) and calls (base's).
run() {
    rm -f calls-*
    FAKE_MODE=$1 "$dpt" compare --run ./fake ./fake --pairing process --new-args "--side new" --pairs "$2" \
        --max-pairs "$3" --retries "$4" --threshold 5 --save-runs s- >out.txt 2>&1
    st=$?
    pairs=$(python3 -c 'import json; print(len(json.load(open("s-new.json"))["results"][0]["seconds"]["samples"]))')
    calls=$(cat calls-base)
}

run same 6 12 2
[ "$st" = 0 ] && [ "$pairs" = 6 ] || fail "decided A/A: status $st, $pairs pairs (want 0, 6)"
run slower 6 12 2
[ "$st" = 1 ] && [ "$pairs" = 6 ] || fail "20% slower: status $st, $pairs pairs (want 1, 6)"
run noisy 6 10 2
[ "$st" = 3 ] && [ "$pairs" = 10 ] || fail "undecided: status $st, $pairs pairs (want 3, 10)"
run noisy 2 2 2
[ "$st" = 3 ] && [ "$pairs" = 2 ] || fail "--max-pairs below 6: status $st, $pairs pairs (want 3, 2)"
# every run disturbed on its first call: one retry gives a clean sample
run retry 6 6 1
[ "$st" = 0 ] && [ "$calls" = 12 ] || fail "retries: status $st, $calls base calls (want 0, 12)"
python3 - <<'PY' || fail "retries: a disturbed sample was kept"
import json
for s in ("base", "new"):
    r = json.load(open(f"s-{s}.json"))["results"][0]
    assert r["seconds"]["samples"] == [1.0] * 6, r["seconds"]["samples"]
    assert not any(t["disturbed"] for t in r["telemetry"])
PY
run retry 6 6 0
[ "$calls" = 6 ] || fail "--retries 0 ran $calls base calls (want 6)"
python3 -c 'import json; r = json.load(open("s-base.json"))["results"][0]; assert 2.0 in r["seconds"]["samples"]' ||
    fail "--retries 0 kept no disturbed sample"
echo "sequential.sh: ok"
