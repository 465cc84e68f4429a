#!/usr/bin/env python3
"""The fast path stays short: instructions per malloc + free pair, counted by callgrind.

Runs tests/programs/malloc_free_loop under `valgrind --tool=callgrind` for two iteration
counts and divides the difference of the totals by the difference of the counts, so that
start-up cancels out. Instruction counts are deterministic (unlike time), so a bound on
them is a test that fails when a change lengthens the path, not when the machine is busy.

  count_fast_path.py LIBZHEAP LOOP_PROGRAM

Checks, for a 32-byte block (docs/BENCHMARKS.md records the figures):
  - zheap's smp mode: at most SMP_LIMIT instructions per pair (loop included);
  - zheap's jemalloc mode: at most DISPATCH_LIMIT more than jemalloc preloaded itself
    (with the program's call slots bound past the exported entries, shim/plt_binding.hpp:
    free's range compare and jump, 5 instructions; through the exported entries, 7);
  - zheap's libc mode: the same bound against glibc.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

SMP_LIMIT = 64
DISPATCH_LIMIT = 6
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
SMALL, LARGE = 50_000, 150_000


def instructions(program, env_extra, iterations):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZHEAP_") and k != "LD_PRELOAD"}
    env.update(env_extra)
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/cg.out", program,
             str(iterations), "32"], env=env, capture_output=True, text=True, timeout=300)
    match = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or not match:
        sys.exit(f"callgrind failed ({result.returncode}): {result.stderr[-2000:]}")
    return int(match.group(1))


def per_pair(program, env_extra):
    return (instructions(program, env_extra, LARGE) - instructions(program, env_extra, SMALL)) / (LARGE - SMALL)


def main():
    shim, program = sys.argv[1], sys.argv[2]
    if shutil.which("valgrind") is None:
        print("valgrind not installed (scripts/setup installs it)")
        return 77  # meson: skipped
    counts = {
        "glibc": per_pair(program, {}),
        "zheap-libc": per_pair(program, {"LD_PRELOAD": shim, "ZHEAP_ALLOCATOR": "libc"}),
        "zheap-smp": per_pair(program, {"LD_PRELOAD": shim, "ZHEAP_ALLOCATOR": "smp"}),
    }
    if os.path.exists(JEMALLOC):
        counts["jemalloc"] = per_pair(program, {"LD_PRELOAD": JEMALLOC})
        counts["zheap-jemalloc"] = per_pair(program, {"LD_PRELOAD": shim, "ZHEAP_ALLOCATOR": "jemalloc"})
    for name, count in counts.items():
        print(f"{name}: {count:.1f} instructions per malloc + free (loop included)")
    failures = []
    if counts["zheap-smp"] > SMP_LIMIT:
        failures.append(f"zheap-smp takes {counts['zheap-smp']:.1f} > {SMP_LIMIT}")
    for zheap, own in [("zheap-libc", "glibc"), ("zheap-jemalloc", "jemalloc")]:
        if zheap in counts and counts[zheap] - counts[own] > DISPATCH_LIMIT:
            failures.append(f"{zheap} adds {counts[zheap] - counts[own]:.1f} > {DISPATCH_LIMIT} to {own}")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
