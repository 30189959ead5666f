#!/usr/bin/env bash
# dpt bench --lockstep and dpt compare --run's lockstep pairing: the
# protocol of src/cli/lockstep.h driven by hand (rounds run when told, the
# report holds exactly those rounds), compare --run through it, and the
# fallback to one process per run for a dpt without --lockstep.
set -uo pipefail
dpt=$(realpath "$1")
dir=$(mktemp -d "${TMPDIR:-/tmp}/dpt-lockstep.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
fail() { echo "lockstep.sh: $*" >&2; exit 1; }
job=(--synth linreg:n=256,d=4 --model linear --epochs 1 --warmup 0)

# a descriptor that is not open: one line naming the flag, exit 2
"$dpt" bench "${job[@]}" --threads 1 --lockstep 77 --json x.json >out.txt 2>err.txt
st=$?
[ "$st" = 2 ] || fail "--lockstep on a closed descriptor exited $st"
grep -q -- "--lockstep 77" err.txt || fail "no message naming --lockstep: $(cat err.txt)"
[ ! -e x.json ] || fail "a report was written after the error"

# a descriptor that is no socket (standard input from /dev/null): the same
"$dpt" bench "${job[@]}" --threads 1 --lockstep 0 --json x.json </dev/null >out.txt 2>err.txt
st=$?
[ "$st" = 2 ] || fail "--lockstep on a non-socket exited $st"
grep -q "not a socket" err.txt || fail "no message saying not a socket: $(cat err.txt)"
[ ! -e x.json ] || fail "a report was written after the error"

# the protocol by hand: ready 2 (threads 1,2), three rounds of go, stop
/usr/bin/python3 - "$dpt" "${job[@]}" <<'PY' || fail "protocol"
import json, socket, subprocess, sys
a, b = socket.socketpair()
cmd = [sys.argv[1], "bench", *sys.argv[2:], "--threads", "1,2", "--reps", "10", "--json",
       "p.json", "--quiet", "--no-limits", "--lockstep", str(b.fileno())]
p = subprocess.Popen(cmd, pass_fds=[b.fileno()], stdout=subprocess.DEVNULL)
b.close()
f = a.makefile("r")
assert f.readline() == "ready 2\n"
for r in range(3):
    for k in range(2):
        a.sendall(b"go\n")
        w = f.readline().split()
        assert w[0] == "done" and float(w[1]) > 0 and w[2] in ("0", "1"), w
a.sendall(b"stop\n")
assert p.wait() == 0
d = json.load(open("p.json"))
assert [r["threads"] for r in d["results"]] == [1, 2]
for r in d["results"]:
    assert r["reps"] == 3 and len(r["seconds"]["samples"]) == 3, r["reps"]
    assert len(r["telemetry"]) == 3
    assert r["final_loss"] == r["final_loss"]  # round 0 evaluated
PY

# a peer that goes away: bench fails with one line, no report
/usr/bin/python3 - "$dpt" "${job[@]}" <<'PY' || fail "peer gone"
import os, socket, subprocess, sys
a, b = socket.socketpair()
cmd = [sys.argv[1], "bench", *sys.argv[2:], "--threads", "1", "--json", "g.json", "--quiet",
       "--no-limits", "--lockstep", str(b.fileno())]
p = subprocess.Popen(cmd, pass_fds=[b.fileno()], stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
b.close()
assert a.makefile("r").readline() == "ready 1\n"
a.close()
err = p.stderr.read().decode()
assert p.wait() != 0 and "went away" in err, err
assert not os.path.exists("g.json")
PY

# compare --run in lockstep: 5 pairs, both thread counts, no fallback note
"$dpt" compare --run "$dpt" "$dpt" "${job[@]}" --threads 1,2 --pairs 5 --max-pairs 5 \
    --run-reps 2 --save-runs l- >out.txt 2>err.txt
st=$?
case $st in 0 | 1 | 3) ;; *) fail "compare --run exited $st: $(cat err.txt)" ;; esac
grep -q "without" err.txt && fail "fell back: $(cat err.txt)"
/usr/bin/python3 - <<'PY' || fail "saved runs"
import json
for side in ("base", "new"):
    d = json.load(open(f"l-{side}.json"))
    assert [r["threads"] for r in d["results"]] == [1, 2]
    for r in d["results"]:
        assert len(r["seconds"]["samples"]) == 5 and len(r["telemetry"]) == 5
PY
grep -q "paired: 5 alternating runs" out.txt || fail "not 5 pairs: $(cat out.txt)"

# an older dpt (no --lockstep): the note, then one process per run
cat >older <<SH
#!/usr/bin/env bash
for a in "\$@"; do
    if [ "\$a" = --lockstep ]; then
        echo "dpt bench: unknown flag '--lockstep' (see dpt bench --help)" >&2
        exit 2
    fi
done
exec "$dpt" "\$@"
SH
chmod +x older
"$dpt" compare --run ./older "$dpt" "${job[@]}" --threads 1 --pairs 4 --max-pairs 4 \
    --save-runs o- >out.txt 2>err.txt
st=$?
case $st in 0 | 1 | 3) ;; *) fail "compare --run with an older dpt exited $st: $(cat err.txt)" ;; esac
grep -q "without bench --lockstep" err.txt || fail "no fallback note: $(cat err.txt)"
/usr/bin/python3 -c '
import json
assert len(json.load(open("o-base.json"))["results"][0]["seconds"]["samples"]) == 4' ||
    fail "fallback did not run 4 pairs"
echo "lockstep.sh: ok"
