#!/usr/bin/env python3
"""64 threads churning with cross-thread frees lose no memory: under ZHEAP_STATS, the
blocks still live at exit after 2000 rounds per thread are exactly those of a run with
0 rounds (the same threads, started and joined), and in both runs allocations - frees
equals the live blocks the stats report.

    stats_balance.py LIBZHEAP THREAD_CHURN MODE
"""
import os
import re
import subprocess
import sys
import tempfile

libzheap, program, mode = sys.argv[1:4]


def run(rounds):
    with tempfile.TemporaryDirectory() as scratch:
        stats_file = os.path.join(scratch, "stats.txt")
        env = dict(os.environ, LD_PRELOAD=libzheap, ZHEAP_ALLOCATOR=mode, ZHEAP_STATS="1",
                   ZHEAP_STATS_FILE=stats_file)
        result = subprocess.run([program, str(rounds)], env=env, capture_output=True, text=True, timeout=240)
        if result.returncode != 0:
            sys.exit(f"{program} {rounds} exited with {result.returncode}: {result.stderr[-2000:]}")
        text = open(stats_file).read()
    def number(label):
        match = re.search(rf"{label}: (\d+)", text)
        if not match:
            sys.exit(f"no '{label}' in the stats:\n{text}")
        return int(match.group(1))
    allocations, frees, live = number("allocations"), number("frees"), number("live blocks")
    print(f"{mode}, {rounds} rounds: {allocations} allocations, {frees} frees, {live} live at exit")
    if allocations - frees != live:
        sys.exit(f"stats do not balance: {allocations} - {frees} != {live}")
    return allocations, live


baseline_allocations, baseline_live = run(0)
churn_allocations, churn_live = run(2000)
if churn_allocations < baseline_allocations + 64 * 2000:
    sys.exit("the churn run made fewer allocations than it should: the stats missed calls")
if churn_live != baseline_live:
    sys.exit(f"{churn_live - baseline_live} blocks lost by the churn (live at exit: {churn_live}, baseline {baseline_live})")
print("balanced: the churn left no block behind")
