#!/usr/bin/env bash
# dpt under mpirun against the same run in one process.
#   mpi_test.sh CASE   with DPT_EXE (the dpt tool) and MPIRUN in the environment
# Cases:
#   float     -np 2 and -np 3 train to the single-process model within float
#             tolerance (losses and predictions), chunked all-reduce included,
#             and overlapped with the threads' sums (--comm-overlap on), and
#             with --balance adaptive within each rank
#   bitwise   --deterministic --leaves 12: identical model files and losses
#             for 1..3 ranks x 1..2 threads, chunked all-gather included, and
#             with --domain l3/package; without leaves, --domain l3 gives
#             the bits of --domain none; --split layer the data split's;
#             the default 16 leaves on 3 ranks (6/5/5, uneven) likewise
#   files     only rank 0 prints and writes --json / --save
#   errors    a bad data file on one rank, on every rank, a bad flag,
#             fewer --leaves than ranks: one "dpt train:" line, the same
#             non-zero status, no hang
#   topo      dpt topo prints every rank's placement, text and JSON
#   bench     dpt bench --ranks 1,2 on 2 ranks: a row per rank count, the
#             same final loss, efficiency = speedup / (ranks x threads);
#             --ranks beyond the job is a usage error; a run that fails on
#             the ranks that train ends the job, the idle rank included
#   part      per-rank loading with a fixed order: each rank generates or
#             reads (.dptb) only its rows, and training, the metrics and the
#             deterministic model match one process, in dpt train and dpt
#             bench, with leaves the ranks do not divide too; damage in rows
#             of rank 1 only is found by rank 1 alone;
#             dpt tune (rank 0 only) finishes; --balance adaptive cuts within
#             each rank's rows
#   shape     ranks that read data of other shapes or other rows: one
#             message naming the rank, the same non-zero status, no hang
set -uo pipefail

case_name=${1:?usage: mpi_test.sh CASE}
DPT=${DPT_EXE:?DPT_EXE is not set}
MPIRUN=${MPIRUN:-mpirun}
work=$(mktemp -d "${TMPDIR:-/tmp}/dpt-mpi-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

# Open MPI in a container: root, few cores, no CMA between ranks
mpiflags=()
if "$MPIRUN" --version 2>/dev/null | grep -q "Open MPI"; then
    mpiflags=(--oversubscribe --allow-run-as-root -x OMP_WAIT_POLICY)
    export OMPI_MCA_btl_vader_single_copy_mechanism=none
    export OMPI_MCA_rmaps_base_oversubscribe=1
    # the kernel choice travels to the ranks (meson test --setup scalar)
    [ -n "${DPT_ISA:-}" ] && mpiflags+=(-x DPT_ISA)
fi
# up to 6 threads on 2 cores: sleep in barriers instead of spinning
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

fail() {
    echo "FAIL ($case_name): $*" >&2
    exit 1
}

# mpirun NP ARGS...: the job, killed after 120 s (a hang is a failure)
mpi() {
    local np=$1
    shift
    # Open MPI's own allocations live until exit (LeakSanitizer shows only
    # Open MPI frames): no leak report under mpirun; the runs without it keep theirs
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        timeout 120 "$MPIRUN" "${mpiflags[@]}" -np "$np" "$@"
    local rc=$?
    [ $rc -eq 124 ] && fail "mpirun -np $np $* did not finish in 120 s"
    return $rc
}

# "epoch N loss X" of each epoch line
losses() { awk '$1 == "epoch" { print $4 }' "$1"; }

# close FILE_A FILE_B: same number of values, |a - b| <= 1e-4 * max(1, |a|)
close() {
    paste -d' ' "$1" "$2" | awk -v a="$1" -v b="$2" '
        NF != 2 { bad = "different lengths"; exit }
        { d = $1 - $2; if (d < 0) d = -d; m = $1 < 0 ? -$1 : $1; if (m < 1) m = 1;
          if (d > 1e-4 * m) { bad = sprintf("line %d: %s vs %s", NR, $1, $2); exit } }
        END { if (bad != "") { print a " vs " b ": " bad > "/dev/stderr"; exit 1 } }'
}

# one line of dpt's in FILE (mpirun's banners and dpt's warnings aside),
# matching PATTERN
one_message() {
    local n
    n=$(grep '^dpt' "$1" | grep -vc 'warning:')
    [ "$n" -eq 1 ] || fail "$n dpt lines instead of one: $(cat "$1")"
    grep -q -- "$2" "$1" || fail "the message lacks '$2': $(cat "$1")"
}

SGD="--synth teacher-mlp:n=3000,d=8,hidden=16,seed=5 --model mlp --hidden 16 --seed 5
     --opt momentum --momentum 0.9 --batch 100 --lr 0.02 --epochs 3 --shuffle epoch"
GD="--synth linreg:n=2000,d=16,seed=6 --model linear --opt gd --lr 0.1 --epochs 4"

case "$case_name" in
float)
    "$DPT" gen --synth teacher-mlp:n=64,d=8,hidden=16,seed=9 --out x.csv --quiet ||
        fail "dpt gen"
    for job in SGD GD; do
        # shellcheck disable=SC2086
        "$DPT" train ${!job} --threads 1 --save m1.dptm >o1 2>e1 || fail "$job: one process: $(cat e1)"
        losses o1 >l1
        [ -s l1 ] || fail "$job: no epoch lines"
        if [ "$job" = SGD ]; then
            "$DPT" predict --model-file m1.dptm --data x.csv --threads 1 >p1 2>e1 ||
                fail "predict: $(cat e1)"
        fi
        for np in 2 3; do
            for chunk in "" 64; do
                # shellcheck disable=SC2086
                DPT_MPI_CHUNK_BYTES=$chunk mpi $np -x DPT_MPI_CHUNK_BYTES "$DPT" train ${!job} \
                    --threads 1 --save m$np.dptm >o$np 2>e$np ||
                    fail "$job: -np $np (chunk '$chunk'): $(cat e$np)"
                grep -q "x $np ranks" o$np || fail "$job: -np $np: no '$np ranks' in $(cat o$np)"
                losses o$np >l$np
                close l1 l$np || fail "$job: -np $np losses differ beyond float tolerance"
                if [ "$job" = SGD ]; then
                    "$DPT" predict --model-file m$np.dptm --data x.csv --threads 1 >p$np 2>e1 ||
                        fail "predict: $(cat e1)"
                    tail -n +2 p1 | cut -d, -f1 >q1
                    tail -n +2 p$np | cut -d, -f1 >q$np
                    [ -s q1 ] || fail "no predictions"
                    close q1 q$np || fail "$job: -np $np predictions differ beyond tolerance"
                fi
            done
        done
    done
    # the all-reduce in chunks overlapped with the threads' sums (tiny
    # chunks: more pieces than request slots), 2 threads per rank
    # shellcheck disable=SC2086
    "$DPT" train $SGD --threads 1 >o1 2>e1 || fail "one process: $(cat e1)"
    losses o1 >l1
    for np in 2 3; do
        for chunk in "" 8; do
            # shellcheck disable=SC2086
            DPT_MPI_CHUNK_BYTES=$chunk mpi $np -x DPT_MPI_CHUNK_BYTES "$DPT" train $SGD \
                --threads 2 --comm-overlap on >o 2>e ||
                fail "--comm-overlap on, -np $np (chunk '$chunk'): $(cat e)"
            losses o >l
            close l1 l || fail "--comm-overlap on, -np $np: losses differ beyond float tolerance"
        done
    done
    # adaptive balancing moves rows between the threads of a rank, never
    # across ranks
    for np in 2 3; do
        # shellcheck disable=SC2086
        mpi $np "$DPT" train $SGD --threads 2 --balance adaptive >o 2>e ||
            fail "--balance adaptive, -np $np: $(cat e)"
        losses o >l
        close l1 l || fail "--balance adaptive, -np $np: losses differ beyond float tolerance"
    done
    ;;
bitwise)
    D="--deterministic --leaves 12"
    # shellcheck disable=SC2086
    "$DPT" train $SGD $D --threads 1 --save ref.dptm >o 2>e || fail "one process: $(cat e)"
    losses o >ref.loss
    for run in "1 1" "1 2" "2 1" "2 2" "3 1" "3 2" "2 1 256" "3 2 256"; do
        set -- $run
        np=$1 th=$2 chunk=${3:-}
        # shellcheck disable=SC2086
        DPT_MPI_CHUNK_BYTES=$chunk mpi "$np" -x DPT_MPI_CHUNK_BYTES "$DPT" train $SGD $D \
            --threads "$th" --save m.dptm >o 2>e ||
            fail "-np $np --threads $th: $(cat e)"
        cmp -s ref.dptm m.dptm ||
            fail "-np $np --threads $th (chunk '$chunk'): the model differs from one process's"
        losses o >l
        cmp -s ref.loss l || fail "-np $np --threads $th: printed losses differ"
    done
    # domains (each thread its own L3 here, or all in one package): the
    # deterministic bits, and without leaves the bits of the flat engine
    for dom in l3 package; do
        # shellcheck disable=SC2086
        mpi 2 "$DPT" train $SGD $D --threads 3 --domain "$dom" --save m.dptm >o 2>e ||
            fail "-np 2 --threads 3 --domain $dom: $(cat e)"
        cmp -s ref.dptm m.dptm || fail "-np 2 --threads 3 --domain $dom: the model differs"
    done
    # shellcheck disable=SC2086
    mpi 2 "$DPT" train $SGD --threads 3 --domain none --save flat.dptm >o 2>e ||
        fail "-np 2 --domain none: $(cat e)"
    # shellcheck disable=SC2086
    mpi 2 "$DPT" train $SGD --threads 3 --domain l3 --save dom.dptm >o 2>e ||
        fail "-np 2 --domain l3: $(cat e)"
    cmp -s flat.dptm dom.dptm || fail "-np 2 --threads 3: --domain l3 changed the bits"
    # the layer split (tanh: a relu 8-16-1 takes the fused tiny kernel): the
    # data split's bits, and with leaves the one-process bits
    for leaves in "" "$D"; do
        # shellcheck disable=SC2086
        "$DPT" train $SGD --act tanh $leaves --threads 1 --save one.dptm >o 2>e ||
            fail "one process, tanh: $(cat e)"
        for sp in data layer; do
            # shellcheck disable=SC2086
            mpi 2 "$DPT" train $SGD --act tanh $leaves --threads 3 --split $sp \
                --save $sp.dptm >o 2>e || fail "-np 2 --split $sp $leaves: $(cat e)"
        done
        cmp -s data.dptm layer.dptm || fail "-np 2 --threads 3 $leaves: --split layer changed the bits"
        [ -z "$leaves" ] || cmp -s one.dptm layer.dptm ||
            fail "-np 2 --threads 3 $leaves --split layer: not the one-process bits"
    done
    # 16 leaves on 3 ranks: uneven shares, the same bits
    # shellcheck disable=SC2086
    "$DPT" train $SGD --deterministic --threads 1 --save ref.dptm >o 2>e || fail "one process: $(cat e)"
    losses o >ref.loss
    for run in "3 1" "3 2 256"; do
        set -- $run
        np=$1 th=$2 chunk=${3:-}
        # shellcheck disable=SC2086
        DPT_MPI_CHUNK_BYTES=$chunk mpi "$np" -x DPT_MPI_CHUNK_BYTES "$DPT" train $SGD \
            --deterministic --threads "$th" --save m.dptm >o 2>e ||
            fail "16 leaves, -np $np --threads $th: $(cat e)"
        cmp -s ref.dptm m.dptm ||
            fail "16 leaves, -np $np --threads $th (chunk '$chunk'): the model differs from one process's"
        losses o >l
        cmp -s ref.loss l || fail "16 leaves, -np $np --threads $th: printed losses differ"
    done
    ;;
files)
    # shellcheck disable=SC2086
    mpi 2 "$DPT" train $GD --threads 1 --json r.json --save m.dptm >o 2>e || fail "$(cat e)"
    [ -s r.json ] && [ -s m.dptm ] || fail "no --json or --save output"
    grep -q '"ranks": *2' r.json || fail "the JSON does not say 2 ranks"
    n=$(grep -c '^final:' o)
    [ "$n" -eq 1 ] || fail "$n 'final:' lines on stdout instead of rank 0's one"
    n=$(grep -c '^dpt train:' o)
    [ "$n" -eq 1 ] || fail "$n header lines on stdout instead of rank 0's one: $(cat o)"
    ls ./*.tmp* .*.tmp* >/dev/null 2>&1 && fail "temporary files left: $(ls -a)"
    # a command that is not distributed runs once (on rank 0)
    mpi 2 "$DPT" gen --synth linreg:n=10,d=2 --out g.csv >o 2>e || fail "gen: $(cat e)"
    [ -s g.csv ] || fail "gen wrote nothing"
    ;;
errors)
    "$DPT" gen --synth linreg:n=300,d=4,seed=1 --out good.csv --quiet || fail "dpt gen"
    { head -n 5 good.csv; echo "1,2,oops,4,5"; } >bad.csv
    T="--model linear --opt gd --lr 0.1 --epochs 2 --threads 1"
    # shellcheck disable=SC2086
    mpi 1 "$DPT" train $T --data good.csv : -np 1 "$DPT" train $T --data bad.csv >o 2>e
    rc=$?
    [ $rc -eq 1 ] || fail "bad file on rank 1: status $rc, expected 1"
    one_message e "^dpt train: rank 1: bad.csv"
    # shellcheck disable=SC2086
    mpi 2 "$DPT" train $T --data good.csv : -np 1 "$DPT" train $T --data bad.csv >o 2>e
    rc=$?
    [ $rc -eq 1 ] || fail "bad file on rank 2 of 3: status $rc, expected 1"
    one_message e "^dpt train: rank 2: bad.csv"
    # shellcheck disable=SC2086
    mpi 1 "$DPT" train $T --data bad.csv : -np 2 "$DPT" train $T --data good.csv >o 2>e
    rc=$?
    [ $rc -eq 1 ] || fail "bad file on rank 0: status $rc, expected 1"
    one_message e "^dpt train: bad.csv"
    # shellcheck disable=SC2086
    mpi 3 "$DPT" train $T --data missing.csv >o 2>e
    rc=$?
    [ $rc -eq 1 ] || fail "missing file on every rank: status $rc, expected 1"
    one_message e "missing.csv"
    # shellcheck disable=SC2086
    mpi 2 "$DPT" train $T --data good.csv --frobnicate >o 2>e
    rc=$?
    [ $rc -eq 2 ] || fail "bad flag: status $rc, expected 2"
    one_message e "frobnicate"
    # shellcheck disable=SC2086
    mpi 3 "$DPT" train $T --data good.csv --deterministic --leaves 2 >o 2>e
    rc=$?
    [ $rc -eq 2 ] || fail "--leaves 2 on 3 ranks: status $rc, expected 2"
    one_message e "^dpt train: --leaves 2: fewer leaves than the 3 ranks"
    ;;
topo)
    mpi 2 "$DPT" topo >o 2>e || fail "$(cat e)"
    for r in 0 1; do
        grep -q "^== rank $r of 2 on .*, pid [0-9]*, .*CPU" o || fail "no header for rank $r: $(cat o)"
    done
    n=$(grep -c '^thread ' o)
    [ "$n" -eq 2 ] || fail "$n placement tables instead of 2: $(cat o)"
    mpi 2 "$DPT" topo --threads 1 --json >o 2>e || fail "$(cat e)"
    [ "$(wc -l <o)" -eq 1 ] || fail "JSON: not one line: $(cat o)"
    for r in 0 1; do
        grep -q "\"rank\": *$r,.*\"plan\"" o || fail "JSON lacks rank $r's plan: $(cat o)"
    done
    ;;
bench)
    # shellcheck disable=SC2086
    mpi 2 "$DPT" bench $GD --ranks 1,2 --threads 1 --reps 2 --warmup 0 --no-limits \
        --json b.json --csv b.csv >o 2>e || fail "$(cat e)"
    grep -q "ranks 1,2 of 2" e || fail "the header does not name the ranks: $(cat e)"
    grep -Eq '^workload +ranks +threads' o || fail "no ranks column: $(cat o)"
    for r in 1 2; do
        n=$(grep -c "\"ranks\": $r," b.json)
        [ "$n" -eq 1 ] || fail "$n rows of $r ranks in the JSON instead of 1"
    done
    # the same numbers in the CSV, columns found by name
    awk -F, '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        { rows++; r = $col["ranks"]; t = $col["threads"]; med[r "x" t] = $col["median_s"]
          sp[r "x" t] = $col["speedup"]; eff[r "x" t] = $col["efficiency"]
          loss[r "x" t] = $col["final_loss"] }
        function abs(x) { return x < 0 ? -x : x }
        function near(a, b, tol) { return abs(a - b) <= tol * (abs(a) > 1 ? abs(a) : 1) }
        END {
            if (rows != 2 || !("1x1" in med) || !("2x1" in med)) { print "rows: " rows; exit 1 }
            for (k in med) {
                split(k, rt, "x")
                if (!near(sp[k], med["1x1"] / med[k], 1e-9)) { print k ": speedup " sp[k]; exit 1 }
                if (!near(eff[k], sp[k] / (rt[1] * rt[2]), 1e-9)) { print k ": efficiency " eff[k]; exit 1 }
                if (!near(loss[k], loss["1x1"], 1e-4)) { print k ": loss " loss[k] " vs " loss["1x1"]; exit 1 }
            }
        }' b.csv >chk 2>&1 || fail "b.csv: $(cat chk): $(cat b.csv)"
    # more ranks than the job has; more than one without mpirun
    # shellcheck disable=SC2086
    mpi 2 "$DPT" bench $GD --ranks 3 --threads 1 >o 2>e
    rc=$?
    [ $rc -eq 2 ] || fail "--ranks 3 on 2 ranks: status $rc, expected 2"
    one_message e "^dpt bench: --ranks: 3 ranks asked, but mpirun started 2 (allowed: 1-2)"
    # shellcheck disable=SC2086
    "$DPT" bench $GD --ranks 1,2 --threads 1 >o 2>e
    rc=$?
    [ $rc -eq 2 ] || fail "--ranks 2 without mpirun: status $rc, expected 2"
    one_message e "^dpt bench: --ranks: 2 ranks asked, .*mpirun"
    # training diverges on rank 0 alone while rank 1 waits: one message, no hang
    # shellcheck disable=SC2086
    mpi 2 "$DPT" bench --synth linreg:n=2000,d=16,seed=6 --model linear --opt gd --lr 1e6 \
        --epochs 30 --ranks 1 --threads 1 --reps 1 --no-limits --quiet >o 2>e
    rc=$?
    [ $rc -eq 1 ] || fail "a diverging run on 1 of 2 ranks: status $rc, expected 1"
    one_message e "^dpt bench: training diverged"
    ;;
part)
    # metrics printed after each epoch: "train loss X ..." (distributed evaluation)
    train_metric() { awk '$1 == "epoch" { for (i = 1; i < NF; i++) if ($i == "train" && $(i+1) == "loss") print $(i+2) }' "$1"; }
    G="--model linear --opt gd --lr 0.1 --epochs 3 --threads 1"
    # shellcheck disable=SC2086
    "$DPT" train --synth linreg:n=2000,d=16,seed=6 $G >o1 2>e1 || fail "one process: $(cat e1)"
    # shellcheck disable=SC2086
    mpi 2 "$DPT" train --synth linreg:n=2000,d=16,seed=6 $G >o2 2>e2 || fail "-np 2: $(cat e2)"
    grep -q "per-rank loading: 1000 of 2000 rows per rank" o2 ||
        fail "--synth at -np 2: rank 0 did not generate just its half: $(cat o2)"
    losses o1 >l1
    losses o2 >l2
    close l1 l2 || fail "--synth per rank: losses differ"
    train_metric o1 >m1
    train_metric o2 >m2
    [ -s m1 ] || fail "no train metrics: $(cat o1)"
    close m1 m2 || fail "--synth per rank: train metrics (evaluated across ranks) differ"

    # a .dptb file, SGD with a fixed order, 3 ranks: of every 100-row batch
    # ranks 0 and 1 take 33 rows and rank 2 34; 30 batches
    "$DPT" gen --synth teacher-mlp:n=3000,d=8,hidden=16,seed=5 --out t.dptb --quiet || fail "gen"
    S="--data t.dptb --model mlp --hidden 16 --seed 5 --opt momentum --batch 100 --lr 0.02
       --epochs 2 --shuffle none"
    # shellcheck disable=SC2086
    "$DPT" train $S --threads 1 >o1 2>e1 || fail "one process: $(cat e1)"
    # shellcheck disable=SC2086
    mpi 3 "$DPT" train $S --threads 1 >o3 2>e3 || fail "-np 3: $(cat e3)"
    grep -q "per-rank loading: 990-1020 of 3000 rows per rank" o3 || fail ".dptb at -np 3: $(cat o3)"
    n=$(grep -c '^dpt train' o3)
    [ "$n" -eq 1 ] || fail "$n header lines instead of one: $(cat o3)"
    losses o1 >l1
    losses o3 >l3
    close l1 l3 || fail ".dptb per rank: losses differ"
    # adaptive balancing within each rank's rows, loaded per rank
    # shellcheck disable=SC2086
    mpi 3 "$DPT" train $S --threads 2 --balance adaptive >o3 2>e3 || fail "-np 3 adaptive: $(cat e3)"
    grep -q "per-rank loading: 990-1020 of 3000 rows per rank" o3 || fail "adaptive at -np 3: $(cat o3)"
    losses o3 >l3
    close l1 l3 || fail ".dptb per rank, --balance adaptive: losses differ"
    # bitwise with --deterministic, per-rank loading or not
    # shellcheck disable=SC2086
    "$DPT" train $S --deterministic --leaves 6 --threads 2 --save ref.dptm >o 2>e || fail "$(cat e)"
    # shellcheck disable=SC2086
    mpi 3 "$DPT" train $S --deterministic --leaves 6 --threads 1 --save m.dptm >o 2>e ||
        fail "-np 3 deterministic: $(cat e)"
    grep -q "per-rank loading: 990-1020 of 3000 rows per rank" o || fail "deterministic at -np 3: $(cat o)"
    cmp -s ref.dptm m.dptm || fail "--deterministic with per-rank loading: the model differs"
    # the default 16 leaves: ranks 0 and 1 take 5 (31 rows of a batch), rank 2 six (38)
    # shellcheck disable=SC2086
    "$DPT" train $S --deterministic --threads 2 --save ref.dptm >o 2>e || fail "$(cat e)"
    # shellcheck disable=SC2086
    mpi 3 "$DPT" train $S --deterministic --threads 1 --save m.dptm >o 2>e ||
        fail "-np 3 deterministic, 16 leaves: $(cat e)"
    grep -q "per-rank loading: 930-1140 of 3000 rows per rank" o ||
        fail "deterministic, 16 leaves at -np 3: $(cat o)"
    cmp -s ref.dptm m.dptm || fail "--deterministic (16 leaves) with per-rank loading: the model differs"

    # 20000 rows x 64 floats: 5 MiB, 5 checksum blocks; rank 0 of 2 holds
    # rows 1-10000 (blocks 0-2). A byte of row 18001 (block 4) is damaged:
    # only rank 1 reads it, and says so; one process reading all finds it too
    "$DPT" gen --synth linreg:n=20000,d=64,seed=3 --out big.dptb --quiet || fail "gen big"
    printf '\x55' | dd of=big.dptb bs=1 seek=$((64 + 18000 * 256 + 7)) conv=notrunc 2>/dev/null
    # shellcheck disable=SC2086
    "$DPT" train --data big.dptb $G >o 2>e
    rc=$?
    [ $rc -eq 1 ] || fail "damaged file, one process: status $rc, expected 1"
    one_message e "big.dptb: corrupt data in rows"
    # shellcheck disable=SC2086
    mpi 2 "$DPT" train --data big.dptb $G >o 2>e
    rc=$?
    [ $rc -eq 1 ] || fail "damaged rows of rank 1: status $rc, expected 1"
    one_message e "^dpt train: rank 1: big.dptb: corrupt data in rows"

    # dpt bench at the job's rank count loads per rank too; its final loss
    # (evaluated across the ranks) is the single process's
    B="--synth logreg:n=4000,d=8,seed=2 --model logistic --opt momentum --batch 100 --lr 0.1
       --epochs 2 --shuffle none --threads 1 --reps 1 --warmup 0 --no-limits"
    # shellcheck disable=SC2086
    "$DPT" bench $B >o1 2>e1 || fail "bench, one process: $(cat e1)"
    # shellcheck disable=SC2086
    mpi 2 "$DPT" bench $B >o2 2>e2 || fail "bench -np 2: $(cat e2)"
    grep -q "ranks 2 of 2, per-rank loading" e2 || fail "bench -np 2 loaded every row: $(cat e2)"
    awk '$1 == "custom" { print $NF }' o1 >f1
    awk '$1 == "custom" { print $NF }' o2 >f2
    [ -s f1 ] || fail "no bench row: $(cat o1)"
    close f1 f2 || fail "bench per rank: final loss differs"

    # a command that runs on rank 0 alone makes no collective call: no hang
    mpi 2 "$DPT" tune --synth linreg:n=2000,d=16,seed=6 $G --quiet >o 2>e ||
        fail "dpt tune under mpirun: $(cat e)"
    grep -q "recommend" o || fail "dpt tune printed no recommendation: $(cat o)"
    ;;
shape)
    "$DPT" gen --synth linreg:n=300,d=4,seed=1 --out d4.csv --quiet || fail "dpt gen"
    "$DPT" gen --synth linreg:n=300,d=6,seed=1 --out d6.csv --quiet || fail "dpt gen"
    "$DPT" gen --synth linreg:n=300,d=4,seed=2 --out other.csv --quiet || fail "dpt gen"
    T="--model linear --opt gd --lr 0.1 --epochs 2 --threads 1"
    # shellcheck disable=SC2086
    mpi 1 "$DPT" train $T --data d4.csv : -np 1 "$DPT" train $T --data d6.csv >o 2>e
    rc=$?
    [ $rc -eq 1 ] || fail "4 and 6 features: status $rc, expected 1"
    one_message e "^dpt train: rank 1 trains on other data than rank 0: 300 rows x 6 features"
    # the same shape, other rows: refused as well, never trained on silently
    # shellcheck disable=SC2086
    mpi 2 "$DPT" train $T --data d4.csv : -np 1 "$DPT" train $T --data other.csv >o 2>e
    rc=$?
    [ $rc -eq 1 ] || fail "other rows of the same shape: status $rc, expected 1"
    one_message e "^dpt train: rank 2 trains on other data than rank 0"
    # the same data on every rank still trains
    # shellcheck disable=SC2086
    mpi 2 "$DPT" train $T --data d4.csv >o 2>e || fail "same data: $(cat e)"
    # and so does dpt bench over rank counts
    # shellcheck disable=SC2086
    mpi 2 "$DPT" bench $T --data d4.csv --ranks 1,2 --reps 1 --warmup 0 --no-limits >o 2>e ||
        fail "bench, same data: $(cat e)"
    ;;
*)
    fail "unknown case"
    ;;
esac
exit 0
