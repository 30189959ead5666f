#!/usr/bin/env bash
# Time to accuracy through the tool: train stops at the target and says
# when, in its text and its JSON; bench reports seconds to the target per
# configuration, or "not reached"; tune says it ranks by time to target.
set -euo pipefail
dpt=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "ttt.sh: $*" >&2; exit 1; }
job=(--synth teacher-mlp:n=1200,d=6,seed=2 --model mlp --hidden 10 --opt sgd --batch 32 --lr 0.05
     --val 0.25 --threads 1)

# the validation loss of each epoch without a target, then a target that
# the 5th epoch reaches first
"$dpt" train "${job[@]}" --epochs 12 --json all.json --quiet >/dev/null
target=$(python3 -c '
import json
v = [e["val"]["loss"] for e in json.load(open("all.json"))["epochs"]]
first = next(i for i in range(12) if v[i] <= v[4])
print(repr(v[4]), first + 1)')
read -r loss epoch <<<"$target"
"$dpt" train "${job[@]}" --epochs 12 --target-loss "$loss" --json t.json >out.txt
grep -q "^target loss <= .* on val: reached after epoch $epoch, " out.txt ||
    fail "no target line for epoch $epoch: $(cat out.txt)"
python3 - "$epoch" <<'PY' || fail "train JSON"
import json, sys
d = json.load(open("t.json")); want = int(sys.argv[1])
assert d["target"]["reached"] is True and d["target"]["epoch"] == want, d["target"]
assert d["target"]["on"] == "val" and d["target"]["seconds"] > 0
assert len(d["epochs"]) == want, "the run stops at the target"
assert d["config"]["target-loss"] > 0
PY
# out of reach: every epoch, and it says so
"$dpt" train "${job[@]}" --epochs 3 --target-loss 1e-12 --json n.json >out.txt
grep -q "^target loss <= 1e-12 on val: not reached in 3 epochs" out.txt || fail "$(cat out.txt)"
python3 -c 'import json,sys; t=json.load(open("n.json"))["target"]; sys.exit(t["reached"] or t["epoch"] is not None)' ||
    fail "not reached, in the JSON"
# accuracy needs a classifier
if "$dpt" train "${job[@]}" --target-accuracy 0.9 2>err.txt; then fail "accuracy on mse"; fi
grep -q -- "--target-accuracy needs a classifier" err.txt || fail "$(cat err.txt)"

# bench: a reachable and an unreachable target
"$dpt" bench "${job[@]}" --epochs 1 --reps 2 --warmup 0 --no-limits --target-loss "$loss" \
    --json b.json --quiet >out.txt 2>/dev/null
grep -q "^time to target (loss <= .* on val" out.txt || fail "no time-to-target table: $(cat out.txt)"
python3 - "$epoch" <<'PY' || fail "bench JSON"
import json, sys
t = json.load(open("b.json"))["time_to_target"]
r = t["rows"][0]
assert r["reached"] == 2 and r["epochs_median"] == int(sys.argv[1]) and r["seconds"]["median"] > 0, t
PY
"$dpt" bench "${job[@]}" --epochs 1 --reps 1 --warmup 0 --no-limits --target-loss 1e-12 \
    --target-epochs 2 --quiet >out.txt 2>/dev/null
grep -q "not reached" out.txt || fail "bench: $(cat out.txt)"

# tune over batch sizes ranks by time to target, and says so
"$dpt" tune "${job[@]}" --epochs 12 --batches 16,64 --target-loss "$loss" --quiet \
    --json tune.json >out.txt
grep -q "^ranked by time to target" out.txt || fail "tune: $(cat out.txt)"
python3 -c 'import json,sys; sys.exit(json.load(open("tune.json"))["ranked_by"]["metric"] != "seconds_to_target")' ||
    fail "tune JSON"
# without a target, a race over batch sizes is to what the job's own batch reaches
"$dpt" tune "${job[@]}" --epochs 2 --batches 16,64 --quiet >out.txt
grep -q "^ranked by time to target (loss <= .* on val, what the job's own batch size reaches in 2 epochs" out.txt ||
    fail "tune over batches without a target: $(cat out.txt)"
"$dpt" tune "${job[@]}" --epochs 2 --quiet >out.txt
grep -q "^ranked by median ms per epoch" out.txt || fail "tune over threads: $(cat out.txt)"
echo ok
