#!/usr/bin/env python3
"""Debug mode asks for transparent huge pages over its blocks' reserve, unless
ZHEAP_HUGE_PAGES=0; smp mode does not.

Each mode runs `cat /proc/self/smaps` under the shim, so that the mappings printed are
those of a process zheap serves. The reserve is the one mapping of 1 GiB or more (smp
reserves up to 1 TiB of address space; no other mapping of cat's is near that size);
its VmFlags must carry "hg" (MADV_HUGEPAGE) in debug mode and must not in debug mode with
ZHEAP_HUGE_PAGES=0 nor in smp mode, whose peak RSS huge pages would raise. Skipped (exit
77) on a kernel without THP.

    check_huge_pages.py LIBZHEAP
"""
import os
import re
import subprocess
import sys

libzheap = sys.argv[1]
if not os.path.exists("/sys/kernel/mm/transparent_hugepage/enabled"):
    print("the kernel has no transparent huge pages")
    sys.exit(77)


def reserve_flags(mode, **settings):
    env = dict(os.environ, LD_PRELOAD=libzheap, ZHEAP_ALLOCATOR=mode, **settings)
    result = subprocess.run(["cat", "/proc/self/smaps"], env=env, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        sys.exit(f"cat under {mode} mode exited with {result.returncode}: {result.stderr[-2000:]}")
    flags, size = [], 0
    for line in result.stdout.splitlines():
        if match := re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line):
            size = int(match.group(2), 16) - int(match.group(1), 16)
        elif line.startswith("VmFlags:") and size >= 1 << 30:
            flags.append(line.split()[1:])
    if not flags:
        sys.exit(f"{mode} mode: no mapping of 1 GiB or more, so no reserve found")
    return flags


failures = []
for flags in reserve_flags("debug"):
    if "hg" not in flags:
        failures.append(f"debug mode: a reserve mapping without 'hg': {' '.join(flags)}")
for flags in reserve_flags("debug", ZHEAP_HUGE_PAGES="0"):
    if "hg" in flags:
        failures.append(f"debug mode, ZHEAP_HUGE_PAGES=0: a reserve mapping with 'hg': {' '.join(flags)}")
for flags in reserve_flags("smp"):
    if "hg" in flags:
        failures.append(f"smp mode: a reserve mapping with 'hg': {' '.join(flags)}")
if failures:
    sys.exit("\n".join(failures))
print("debug mode's reserve asks for huge pages; with ZHEAP_HUGE_PAGES=0, and in smp mode, it does not")
