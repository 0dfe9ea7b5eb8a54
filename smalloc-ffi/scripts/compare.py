#!/usr/bin/env python3
"""Wall time and peak RSS of real programs on glibc's malloc and on smalloc, in one run.

    cargo build --release -p smalloc-ffi
    python3 smalloc-ffi/scripts/compare.py [--lib target/release/libsmalloc.so] [--runs 5]

Each program runs --runs times on each allocator, alternating (glibc, smalloc, glibc, ...), so
that both see the same machine load; the table shows the median wall time and the median peak
RSS (ru_maxrss of the process, from wait4). The outputs of the two allocators are compared too.
Inputs are generated deterministically, the same as the tests' (smalloc-ffi/tests/programs.rs).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "..", "tests", "scripts")


def xorshift(seed):
    mask = (1 << 64) - 1
    while True:
        seed ^= (seed << 13) & mask
        seed ^= seed >> 7
        seed ^= (seed << 17) & mask
        yield seed


def make_inputs(d):
    sql = ["CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL, payload BLOB);",
           "BEGIN;"]
    for i in range(100_000):
        sql.append(f"INSERT INTO t(name, value, payload) VALUES('name-{i * 7919 % 100_003}', "
                   f"{i % 1000}.25, zeroblob({i % 300}));")
    sql += ["COMMIT;", "CREATE INDEX t_name ON t(name);",
            "SELECT count(*), sum(value), sum(length(payload)) FROM t;",
            "SELECT id % 10 AS k, count(*), avg(value) FROM t GROUP BY k ORDER BY k;"]
    with open(os.path.join(d, "inserts.sql"), "w") as f:
        f.write("\n".join(sql) + "\n")
    rng = xorshift(0x2545F4914F6CDD1D)
    with open(os.path.join(d, "lines.txt"), "w") as f:
        f.writelines(f"{next(rng) & 0xFFFFFFFF:08x} {i % 977}\n" for i in range(1_000_000))
    rng = xorshift(99)
    data = bytearray()
    while len(data) < 3 << 20:
        r = next(rng)
        if r % 4 == 0:
            data += r.to_bytes(8, "little")
        else:
            data += f"record {r % 5000} value {r % 97}\n".encode()
    with open(os.path.join(d, "data"), "wb") as f:
        f.write(data)


def workloads(d):
    """(name, argv, stdin file or None, extra environment)."""
    return [
        ("python3 alloc_heavy.py", ["python3", os.path.join(SCRIPTS, "alloc_heavy.py")], None,
         {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}),
        ("sqlite3, 100k inserts in memory", ["sqlite3", ":memory:"],
         os.path.join(d, "inserts.sql"), {}),
        ("sort, 1M lines", ["sort", "-k1,1", os.path.join(d, "lines.txt")], None,
         {"LC_ALL": "C"}),
        ("xz -6, 3 MiB", ["xz", "-T1", "-6", "-c", os.path.join(d, "data")], None, {}),
        ("node objects.js", ["node", os.path.join(SCRIPTS, "objects.js")], None, {}),
    ]


def run_once(argv, stdin, env, out_path):
    """Runs argv; returns (wall seconds, peak RSS in KiB, exit status)."""
    with open(out_path, "wb") as out, open(stdin or os.devnull, "rb") as inp:
        start = time.monotonic()
        p = subprocess.Popen(argv, stdin=inp, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss, p.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", default=os.path.join(HERE, "..", "..", "target", "release",
                                                  "libsmalloc.so"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    lib = os.path.abspath(args.lib)
    if not os.path.exists(lib):
        sys.exit(f"{lib} not found: build it with `cargo build --release -p smalloc-ffi`")
    d = tempfile.mkdtemp(prefix="smalloc-compare-")
    try:
        make_inputs(d)
        base = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        print(f"library: {lib}\nruns per allocator: {args.runs} (alternating), medians shown\n")
        print("| program | glibc wall | smalloc wall | glibc peak RSS | smalloc peak RSS |")
        print("|---|---:|---:|---:|---:|")
        for name, argv, stdin, extra in workloads(d):
            if shutil.which(argv[0]) is None:
                print(f"| {name} | not installed | | | |")
                continue
            results = {"glibc": [], "smalloc": []}
            outputs = {}
            for _ in range(args.runs):
                for alloc in ("glibc", "smalloc"):
                    env = dict(base, **extra)
                    if alloc == "smalloc":
                        env["LD_PRELOAD"] = lib
                    out_path = os.path.join(d, f"out-{alloc}")
                    wall, rss, code = run_once(argv, stdin, env, out_path)
                    if code != 0:
                        sys.exit(f"{name} exited with {code} on {alloc}")
                    results[alloc].append((wall, rss))
                    with open(out_path, "rb") as f:
                        outputs[alloc] = f.read()
            if outputs["glibc"] != outputs["smalloc"]:
                sys.exit(f"{name}: the outputs differ between glibc and smalloc")
            med = {a: (statistics.median(w for w, _ in r), statistics.median(m for _, m in r))
                   for a, r in results.items()}
            print(f"| {name} | {med['glibc'][0]:.2f} s | {med['smalloc'][0]:.2f} s "
                  f"| {med['glibc'][1] / 1024:.1f} MiB | {med['smalloc'][1] / 1024:.1f} MiB |")
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()
