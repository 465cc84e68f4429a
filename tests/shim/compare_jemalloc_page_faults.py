#!/usr/bin/env python3
"""ZHEAP_ALLOCATOR=jemalloc touches no more memory than jemalloc preloaded alone: the
program's page faults (minor and major, from wait4) under the shim are at most
jemalloc alone's plus a tolerance.

For the way start-up lays out jemalloc's address space (shim/mode_jemalloc.cpp, the reserve
and drain_preexisting_extents): on bench/realloc_growth, arena 0 growing one step ahead of
jemalloc alone cost 16% more page faults (24.8k against 21.4k). Page faults rather than
time: they repeat from run to run to within a few (the least of three runs is taken), on
any machine, whatever its load.

    compare_jemalloc_page_faults.py LIBZHEAP PROGRAM [ARGS...]
"""
import os
import subprocess
import sys

TOLERANCE = 1.05  # more than the runs' spread, far less than the gap it guards against
RUNS = 3

libzheap, command = sys.argv[1], sys.argv[2:]


def page_faults(env_extra):
    env = dict(os.environ, **env_extra)
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{command} under {env_extra} failed: status {status}")
    return usage.ru_minflt + usage.ru_majflt


sides = {"jemalloc alone": {"LD_PRELOAD": "libjemalloc.so.2"},
         "ZHEAP_ALLOCATOR=jemalloc": {"LD_PRELOAD": libzheap, "ZHEAP_ALLOCATOR": "jemalloc"}}
least = {name: None for name in sides}
for _ in range(RUNS):  # alternating, so that the two sides see the same machine
    for name, env_extra in sides.items():
        faults = page_faults(env_extra)
        least[name] = faults if least[name] is None else min(least[name], faults)
alone, shim = least["jemalloc alone"], least["ZHEAP_ALLOCATOR=jemalloc"]
print(f"page faults, least of {RUNS} runs: jemalloc alone {alone}, ZHEAP_ALLOCATOR=jemalloc {shim} "
      f"({shim / alone:.3f})")
if shim > alone * TOLERANCE:
    sys.exit(f"ZHEAP_ALLOCATOR=jemalloc took more than {TOLERANCE:.2f}x jemalloc alone's page faults")
