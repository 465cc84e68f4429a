#!/usr/bin/env python3
"""Debug mode's leak classification against Valgrind's (issue 4, Done-when 2): runs
tests/programs/leak_kinds under `valgrind --leak-check=full` and under LD_PRELOAD=libzheap.so
ZHEAP_ALLOCATOR=debug, and requires the same definitely lost, indirectly lost and still
reachable totals (bytes and blocks).

Still reachable is compared as the difference from `leak_kinds baseline` (which leaks one
byte and nothing else) under each tool: a zheap process holds libstdc++'s emergency
exception pool (libjemalloc needs libstdc++), which Valgrind frees before it counts
(__gnu_cxx::__freeres). Skipped (77) when valgrind is not installed.

  compare_with_valgrind.py LIBZHEAP PROGRAM
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from leak_totals import KINDS, valgrind_totals, zheap_totals  # noqa: E402


def minus(a, b):
    return (a[0] - b[0], a[1] - b[1])


def main():
    libzheap, program = sys.argv[1:3]
    if shutil.which("valgrind") is None:
        print("valgrind is not installed")
        return 77
    valgrind, valgrind_text, possibly = valgrind_totals([program])
    if possibly != 0:
        print("valgrind reports possibly lost blocks: the program must not hold interior pointers\n" + valgrind_text)
        return 1
    valgrind_base, _, _ = valgrind_totals([program, "baseline"])
    zheap, zheap_text = zheap_totals(libzheap, [program])
    zheap_base, _ = zheap_totals(libzheap, [program, "baseline"])
    failures = []
    for kind in ("definite", "indirect"):
        if zheap[kind] != valgrind[kind]:
            failures.append(f"{kind}: zheap {zheap[kind]}, valgrind {valgrind[kind]} (bytes, blocks)")
    own_zheap = minus(zheap["reachable"], zheap_base["reachable"])
    own_valgrind = minus(valgrind["reachable"], valgrind_base["reachable"])
    if own_zheap != own_valgrind:
        failures.append(f"still reachable beyond the baseline: zheap {own_zheap}, valgrind {own_valgrind}")
    if valgrind["definite"] == (0, 0):
        failures.append("valgrind found no definite leak: the program is not doing its job")
    if failures:
        print("; ".join(failures))
        print("---- zheap ----\n" + zheap_text + "\n---- valgrind ----\n" + valgrind_text)
        return 1
    print("agree: " + ", ".join(f"{kind} {zheap[kind][0]} bytes in {zheap[kind][1]} blocks" for kind in KINDS[:2]) +
          f", still reachable (the program's own) {own_zheap[0]} bytes in {own_zheap[1]} blocks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
