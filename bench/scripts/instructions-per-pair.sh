#!/usr/bin/env bash
# Instructions per 64-byte alloc/free pair, for one allocator, counted one of two ways:
#
#   callgrind: total instructions of `bench pair64` at two iteration counts; the difference over
#              the iteration difference cancels start-up. Needs the allocator's address-space
#              reservation to fit in valgrind's address space (valgrind 3.19: 128 GiB), which
#              smalloc's 32 TiB and upstream smalloc's 64 TiB do not (under valgrind smalloc
#              serves from a small region through its slow paths, and `bench` refuses to count it).
#   icount:    the same difference, with every user-space instruction of the native process
#              counted by single-stepping it (devutils' `icount`). Works for every allocator;
#              slower, so the counts are smaller.
#
# Usage: bench/scripts/instructions-per-pair.sh ALLOCATOR [callgrind|icount] [--fixed]
# (--fixed: the 64 B size as a compile-time constant, as in `Box::new`; default: a run-time size)
# Run from the workspace root after `cargo build --release -p bench -p devutils` (set
# CARGO_TARGET_DIR if the binaries are not under ./target).
set -euo pipefail
alloc=${1:?usage: $0 ALLOCATOR [callgrind|icount]}
how=${2:-icount}
extra=${3:-}
dir=${CARGO_TARGET_DIR:-target}/release
bin=$dir/bench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case "$how" in
callgrind)
    n1=100000; n2=1100000
    count() {
        if ! valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" \
            "$bin" pair64 --allocator "$alloc" --iters "$1" $extra >/dev/null 2>"$tmp/log.$1"; then
            grep -v '^==' "$tmp/log.$1" >&2
            return 1
        fi
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/log.$1"
    } ;;
icount)
    n1=1000; n2=11000
    [ -x "$dir/icount" ] || { echo "no $dir/icount: cargo build --release -p devutils" >&2; exit 1; }
    count() {
        "$dir/icount" "$bin" pair64 --allocator "$alloc" --iters "$1" $extra 2>&1 >/dev/null |
            sed -n 's/^instructions: \([0-9]*\)$/\1/p'
    } ;;
*) echo "unknown method $how (callgrind or icount)" >&2; exit 2 ;;
esac
[ -x "$bin" ] || { echo "no $bin: build it first" >&2; exit 1; }
i1=$(count $n1) || exit 1
i2=$(count $n2) || exit 1
[ -n "$i1" ] && [ -n "$i2" ] || { echo "could not count instructions" >&2; exit 1; }
per=$(awk -v a="$i1" -v b="$i2" -v n=$((n2 - n1)) 'BEGIN { printf "%.2f", (b - a) / n }')
echo "$alloc ($how${extra:+ $extra}): $i1 instructions at $n1 pairs, $i2 at $n2 pairs: $per instructions/pair"
