#!/usr/bin/env python3
"""Turns the microbenchmarks' JSON into the Markdown table of docs/BENCHMARKS.md: for each
benchmark and size, CPU nanoseconds per item of each zheap allocator beside its malloc or
new twin, and the ratio (below 1: faster than malloc).

    build/bench/micro --benchmark_min_time=0.2 --benchmark_format=json > micro.json
    scripts/micro_table.py micro.json
"""
import collections
import json
import sys

report = json.load(open(sys.argv[1]))
# "BM_AllocFreePair/arena/64" -> per (benchmark, size): {allocator: ns per item}
rows = collections.defaultdict(dict)
for bench in report["benchmarks"]:
    if bench.get("run_type", "iteration") != "iteration":
        continue
    name, allocator, size = bench["name"].split("/")[:3]
    items_per_second = bench.get("items_per_second")
    if not items_per_second:
        continue
    rows[(name, int(size))][allocator] = 1e9 / items_per_second  # rates are per CPU second

BASELINES = ("malloc", "new")
context = report["context"]
print(f"{context['date']}, {context['num_cpus']} CPUs, load average "
      f"{', '.join(f'{x:.2f}' for x in context.get('load_avg', []))}\n")
print("| benchmark | size (B) | baseline | ns/item | zheap allocator | ns/item | ratio |")
print("|---|---:|---|---:|---|---:|---:|")
for (name, size), by_allocator in sorted(rows.items()):
    baseline = next((b for b in BASELINES if b in by_allocator), None)
    if baseline is None:
        continue
    for allocator, ns in sorted(by_allocator.items()):
        if allocator in BASELINES:
            continue
        base_ns = by_allocator[baseline]
        print(f"| {name.removeprefix('BM_')} | {size} | {baseline} | {base_ns:.2f} | {allocator} | {ns:.2f} | {ns / base_ns:.2f} |")
