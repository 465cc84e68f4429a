#!/usr/bin/env python3
"""ZHEAP_ALLOCATOR=jemalloc leaves jemalloc configured as jemalloc configures itself:
tests/programs/jemalloc_settings prints the same under libjemalloc.so.2 preloaded alone
and under the shim (the huge arena's eager purging, decay times, arena counts).

    compare_jemalloc_settings.py LIBZHEAP JEMALLOC_SETTINGS
"""
import os
import subprocess
import sys

libzheap, program = sys.argv[1:3]


def run(env_extra):
    env = dict(os.environ, **env_extra)
    result = subprocess.run([program], env=env, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        sys.exit(f"{program} under {env_extra} exited with {result.returncode}: {result.stderr}")
    return result.stdout


alone = run({"LD_PRELOAD": "libjemalloc.so.2"})
shim = run({"LD_PRELOAD": libzheap, "ZHEAP_ALLOCATOR": "jemalloc"})
print("jemalloc alone:\n" + alone)
print("ZHEAP_ALLOCATOR=jemalloc:\n" + shim)
if "-12345" in alone:
    sys.exit("a setting could not be read under jemalloc alone")
if alone != shim:
    sys.exit("the settings differ")
