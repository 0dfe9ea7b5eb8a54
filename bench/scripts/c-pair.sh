#!/usr/bin/env bash
# ns per malloc(64)/free pair through the C ABI: a tiny C program, run plain (glibc), under
# LD_PRELOAD of smalloc's libsmalloc.so, and under the jemalloc, mimalloc and tcmalloc preloads
# where Debian's packages are installed (libjemalloc2, libmimalloc2.0, libtcmalloc-minimal4;
# absent ones are skipped with a message). For comparison, the same pair in Rust, two ways:
# through the global allocator (`pair_global`: `std::alloc::alloc` and `dealloc`, a call each, as
# every `Box` and `Vec` pays; the counterpart of the C program) and inlined into the loop
# (`bench pair64 --allocator smalloc`).
#
# The C program reads the size from its command line (so the compiler cannot fold it), stores
# every pointer into a volatile (so the pair cannot be elided), and times the loop with
# clock_gettime(CLOCK_MONOTONIC) after a short warm-up. Each allocator runs RUNS times (default
# 5), the allocators alternating run by run; the median is printed, with the min and max.
#
# Usage: bench/scripts/c-pair.sh [PAIRS]     (default 10000000; RUNS=n in the environment)
# Run from the workspace root; builds smalloc-ffi and bench (release) first. Needs gcc.
set -euo pipefail
pairs=${1:-10000000}
runs=${RUNS:-5}
dir=${CARGO_TARGET_DIR:-target}/release
libdir=/usr/lib/x86_64-linux-gnu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v gcc >/dev/null || { echo "c-pair: needs gcc" >&2; exit 1; }
cargo build --release -q -p smalloc-ffi -p bench
smalloc_so=$(realpath "$dir/libsmalloc.so")
bench=$dir/bench
pair_global=$dir/pair_global

cat >"$tmp/pair.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    long pairs = argc > 1 ? atol(argv[1]) : 10000000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 64; /* a run-time size */
    void *volatile sink;
    for (int i = 0; i < 10000; i++) { /* warm-up: the allocator's first-use set-up */
        void *p = malloc(size);
        sink = p;
        free(p);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < pairs; i++) {
        void *p = malloc(size);
        if (!p) abort();
        sink = p; /* the pointer escapes: the pair cannot be elided */
        free(p);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    printf("%.3f\n", ns / (double)pairs);
    (void)sink;
    return 0;
}
EOF
gcc -O2 -fno-builtin-malloc -fno-builtin-free -o "$tmp/pair" "$tmp/pair.c"

# name, then the preload (empty: none). The Rust path is run as "rust".
names=(glibc smalloc)
preloads=("" "$smalloc_so")
for pair in jemalloc:libjemalloc.so.2 mimalloc:libmimalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4; do
    name=${pair%%:*} so=$libdir/${pair#*:}
    if [ -e "$so" ]; then
        names+=("$name")
        preloads+=("$so")
    else
        echo "c-pair: no $so, skipping $name" >&2
    fi
done

for ((run = 1; run <= runs; run++)); do
    for i in "${!names[@]}"; do
        # The dynamic loader only warns when a preload fails and runs the program on glibc:
        # such a figure must not be reported under the preload's name.
        if ! LD_PRELOAD=${preloads[$i]} "$tmp/pair" "$pairs" 64 >>"$tmp/${names[$i]}" 2>"$tmp/err" ||
            grep -q "cannot be preloaded" "$tmp/err"; then
            echo "c-pair: ${names[$i]} failed:" >&2
            cat "$tmp/err" >&2
            exit 1
        fi
    done
    "$pair_global" "$pairs" 64 >>"$tmp/rust-global"
    "$bench" pair64 --allocator smalloc --iters "$pairs" |
        sed -n 's/.*ns_per_pair=\([0-9.]*\).*/\1/p' >>"$tmp/rust"
    echo "c-pair: run $run/$runs done" >&2
done

# median [min-max] of the figures in file $1
stats() {
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f [%.2f-%.2f]", m, v[1], v[NR] }'
}

echo "malloc(64)/free pairs: $pairs per run, $runs runs, ns/pair median [min-max]"
printf '%-34s %s\n' "C, glibc (no preload)" "$(stats "$tmp/glibc")"
printf '%-34s %s\n' "C, LD_PRELOAD libsmalloc.so" "$(stats "$tmp/smalloc")"
for i in "${!names[@]}"; do
    case ${names[$i]} in glibc | smalloc) continue ;; esac
    printf '%-34s %s\n' "C, LD_PRELOAD $(basename "${preloads[$i]}")" "$(stats "$tmp/${names[$i]}")"
done
printf '%-34s %s\n' "Rust, global allocator (smalloc)" "$(stats "$tmp/rust-global")"
printf '%-34s %s\n' "Rust, inlined: bench pair64" "$(stats "$tmp/rust")"
