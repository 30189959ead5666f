#!/usr/bin/env bash
# libdpt.so exports the documented API and nothing else: every dynamic
# symbol it defines is a dpt_ function declared in include/dpt/, and every
# function declared there with DPT_API is exported.
#   symbols.sh LIBDPT_SO INCLUDE_DIR
set -uo pipefail
lib=${1:?usage: symbols.sh LIBDPT_SO INCLUDE_DIR}
inc=${2:?usage: symbols.sh LIBDPT_SO INCLUDE_DIR}
bad=0
exported=$(nm -D --defined-only "$lib" | awk '{ print $NF }' | sort -u)
[ -n "$exported" ] || { echo "FAIL: $lib exports nothing"; exit 1; }
declared=$(grep -ho 'DPT_API[^(]*\bdpt_[a-z0-9_]*(' "$inc"/dpt/*.h | grep -o 'dpt_[a-z0-9_]*(' |
    tr -d '(' | sort -u)
for s in $exported; do
    if ! grep -qx "$s" <<<"$declared"; then
        echo "FAIL: $lib exports $s, which no public header declares with DPT_API"
        bad=1
    fi
done
for s in $declared; do
    if ! grep -qx "$s" <<<"$exported"; then
        echo "FAIL: $s is declared with DPT_API but $lib does not export it"
        bad=1
    fi
done
[ $bad -eq 0 ] && echo "ok: $(wc -w <<<"$exported") symbols, all documented dpt_ API"
exit $bad
