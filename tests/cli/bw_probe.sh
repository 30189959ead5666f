#!/usr/bin/env bash
# bench/bw_probe, the independent probe scripts/bw-agree checks dpt limits
# against: every element of every array is read once per repetition (the
# sum of the ones it read equals the count it should have read, for 1-8
# arrays, sizes that do not divide evenly, and more threads than CPUs), and
# bad arguments (not whole numbers, out of range, too many) get the usage
# line and exit 2.
set -uo pipefail
probe=$1
fail() { echo "bw_probe.sh: $*" >&2; exit 1; }
for args in "1 1 1 1" "1 1 1 3" "2 3 2 3" "3 5 3 4" "4 7 2 8" "2 2 1 5"; do
    out=$("$probe" $args) || fail "bw_probe $args exited $?"
    read_n=$(sed -n 's/.*(read \([0-9]*\) floats, expected \([0-9]*\)).*/\1/p' <<<"$out")
    want=$(sed -n 's/.*(read \([0-9]*\) floats, expected \([0-9]*\)).*/\2/p' <<<"$out")
    set -- $args
    # MIB over ARRAYS arrays of whole 16-float groups, REPS + 1 passes
    n=$(($2 * 1048576 / 4 / $4 / 16 * 16))
    [ -n "$read_n" ] && [ "$read_n" = "$want" ] && [ "$want" = $((n * $4 * ($3 + 1))) ] ||
        fail "bw_probe $args: read '$read_n' floats, expected '$want' (computed $((n * $4 * ($3 + 1)))): $out"
    grep -q "median [0-9.]* GB/s, best [0-9.]* GB/s" <<<"$out" || fail "bw_probe $args: no rates: $out"
done
for bad in "0" "1 0" "1 1 0" "1 1 1 0" "1 1 1 9" "1 1 1 1 1" "x" "1 12abc" "4097" "1 -5" \
    "1 99999999999999999999" "1 1048577"; do
    err=$("$probe" $bad 2>&1 >/dev/null)
    rc=$?
    [ $rc -eq 2 ] && grep -q "^usage: bw_probe" <<<"$err" || fail "bw_probe $bad: rc $rc, '$err'"
done
echo "bw_probe.sh: ok"
