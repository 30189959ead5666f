#!/usr/bin/env bash
# Every subcommand's --help against the flags its parser accepts (the
# table that `dpt CMD --list-flags` prints), both ways: every accepted flag
# has its own help line ("  --flag ...") and, when it takes a value, its
# default ("default ..." or "required") on that line or its continuation;
# every --flag the help names is accepted; and the help says what the
# command prints.
set -uo pipefail
dpt=$1
bad=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
fail() { echo "help.sh: $*" >&2; bad=1; }

for cmd in train bench tune eval predict limits topo gen convert compare plot info; do
    flags=$("$dpt" $cmd --list-flags) || { fail "$cmd --list-flags failed"; continue; }
    help=$("$dpt" $cmd --help) || { fail "$cmd --help failed"; continue; }
    [ -n "$flags" ] || fail "$cmd: no flags listed"
    grep -qi 'prints\|writes\|shows' <<<"$help" || fail "$cmd --help does not say what it prints"
    names=$(sed 's/=$//' <<<"$flags" | sort -u)
    # compare --run BASE NEW [--pairs N] is parsed before the flag table
    [ $cmd = compare ] && names=$(printf '%s\nrun\npairs\n' "$names" | sort -u)
    while read -r line; do
        f=${line%=}
        [ "$f" = help ] && continue
        # the flag's block: its line and the deeper-indented lines after it
        block=$(awk -v f="--$f" '
            { t = $0; sub(/^ +/, "", t); ind = length($0) - length(t) }
            on && (ind <= 2 || t ~ /^--/ || t == "") { on = 0 }
            ind >= 1 && (index(t, f " ") == 1 || t == f || index(t, f "=") == 1) { on = 1; print; next }
            on { print }' <<<"$help")
        if [ -z "$block" ]; then
            fail "$cmd: --$f is accepted but has no help line"
        elif [ "$line" != "$f" ] && ! grep -qi 'default\|required' <<<"$block"; then
            fail "$cmd: --$f takes a value but its help gives no default: $block"
        fi
    done <<<"$flags"
    # flags of other commands, named as such ("dpt bench --json"), are not this one's
    others=$(sed -E 's/`(dpt|DPT) [a-z]+ [^`]*`//g; s/dpt [a-z]+( +--[a-z0-9-]+( +[A-Z][A-Z_.]*)?)+//g' <<<"$help")
    for f in $(grep -o -- '--[a-z][a-z0-9-]*' <<<"$others" | sort -u); do
        grep -qx -- "${f#--}" <<<"$names" || fail "$cmd --help names $f, which $cmd does not accept"
    done
done
# dpt help: the commands and topics; each topic; a command's --help; a typo
"$dpt" help | grep -q "^help topics" || fail "dpt help lists no topics"
for t in output workloads pinning gate install; do
    [ -n "$("$dpt" help $t)" ] || fail "dpt help $t is empty"
done
"$dpt" help output | grep -q "samples_per_second" || fail "dpt help output lacks the JSON names"
[ "$("$dpt" help bench)" = "$("$dpt" bench --help)" ] || fail "dpt help bench is not bench --help"
if "$dpt" help pining 2>err; then fail "dpt help pining succeeded"; fi
grep -q "did you mean pinning" err || fail "dpt help pining: $(cat err)"
exit $bad
