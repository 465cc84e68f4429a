"""Leak totals as Valgrind's memcheck and zheap's debug mode print them, for the tests that
compare the two (tests/shim/compare_with_valgrind.py, tests/real/definite_leaks_vs_valgrind.py).

Each function runs a command and returns ({kind: (bytes, blocks)}, the tool's stderr) for
the kinds "definite", "indirect" and "reachable".
"""
import os
import re
import subprocess

KINDS = ("definite", "indirect", "reachable")


def _number(text):
    return int(text.replace(",", ""))


def valgrind_totals(argv, timeout=300):
    """`valgrind --leak-check=full argv`; its LEAK SUMMARY, and possibly lost bytes as the
    third item (interior pointers only: zheap counts those blocks as reachable)."""
    run = subprocess.run(["valgrind", "--leak-check=full"] + list(argv), capture_output=True, text=True,
                         timeout=timeout)
    totals = {}
    for kind, label in zip(KINDS, ("definitely lost", "indirectly lost", "still reachable")):
        found = re.search(label + r": ([\d,]+) bytes in ([\d,]+) blocks", run.stderr)
        totals[kind] = (_number(found.group(1)), _number(found.group(2))) if found else (0, 0)
    possibly = re.search(r"possibly lost: ([\d,]+) bytes", run.stderr)
    return totals, run.stderr, _number(possibly.group(1)) if possibly else 0


def zheap_totals(libzheap, argv, timeout=120):
    """argv under LD_PRELOAD=libzheap ZHEAP_ALLOCATOR=debug, its leak report on stderr."""
    env = dict(os.environ, LD_PRELOAD=libzheap, ZHEAP_ALLOCATOR="debug")
    for name in ("ZHEAP_REPORT", "ZHEAP_REPORT_FORMAT", "ZHEAP_SUPPRESSIONS"):
        env.pop(name, None)
    run = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=timeout)
    totals = {}
    for kind, header in (("definite", "Direct"), ("indirect", "Indirect")):
        groups = re.findall(header + r" leak of (\d+) byte\(s\) in (\d+) object\(s\) allocated from:", run.stderr)
        totals[kind] = (sum(int(g[0]) for g in groups), sum(int(g[1]) for g in groups))
    reachable = re.search(r"^(\d+) byte\(s\) in (\d+) object\(s\) still reachable", run.stderr, re.M)
    totals["reachable"] = (int(reachable.group(1)), int(reachable.group(2))) if reachable else (0, 0)
    return totals, run.stderr
