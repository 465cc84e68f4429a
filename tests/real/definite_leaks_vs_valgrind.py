#!/usr/bin/env python3
"""Issue 4, Done-when 3: a real program from Debian reports no definitely lost leak under
zheap's debug mode where Valgrind's memcheck reports none.

Each job runs under `valgrind --leak-check=full` and under LD_PRELOAD=libzheap.so
ZHEAP_ALLOCATOR=debug. When Valgrind finds no definitely lost byte, zheap must not
either. When Valgrind does find some (perl frees nothing at exit, on purpose), zheap must
find some too, so that a debug mode that reported nothing at all would fail here.
Jobs whose program is not installed are skipped; all missing: 77 (meson: skipped).

  definite_leaks_vs_valgrind.py LIBZHEAP
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from leak_totals import valgrind_totals, zheap_totals  # noqa: E402

JOBS = [
    ["python3", "-c", "import json; print(json.dumps({'a': [1, 2, 3]}))"],
    ["sqlite3", ":memory:", "create table t(x); insert into t values (1), (2); select sum(x) from t;"],
    ["git", "--version"],
    ["bash", "-c", "echo $((6 * 7))"],
    ["perl", "-e", "print 6 * 7, qq(\\n)"],
]


def main():
    libzheap = sys.argv[1]
    if shutil.which("valgrind") is None:
        print("valgrind is not installed")
        return 77
    failures, ran = [], 0
    for job in JOBS:
        if shutil.which(job[0]) is None:
            print(f"{job[0]}: not installed, skipped")
            continue
        ran += 1
        valgrind, valgrind_text, _ = valgrind_totals(job)
        zheap, zheap_text = zheap_totals(libzheap, job)
        print(f"{job[0]}: definitely lost: valgrind {valgrind['definite'][0]} bytes in {valgrind['definite'][1]} "
              f"blocks, zheap {zheap['definite'][0]} bytes in {zheap['definite'][1]} blocks")
        if valgrind["definite"] == (0, 0) and zheap["definite"] != (0, 0):
            failures.append(f"{job[0]}: zheap reports a definite leak where valgrind reports none\n{zheap_text}")
        if valgrind["definite"] != (0, 0) and zheap["definite"] == (0, 0):
            failures.append(f"{job[0]}: valgrind reports a definite leak, zheap none\n{valgrind_text}\n{zheap_text}")
    for failure in failures:
        print("FAIL:", failure)
    if ran == 0:
        return 77
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
