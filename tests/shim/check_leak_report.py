#!/usr/bin/env python3
"""Runs tests/programs/leaks SCENARIO under LD_PRELOAD=libzheap.so ZHEAP_ALLOCATOR=debug and
checks the leak report at exit against the program's source: every line marked
  // leak: <scenario>[,<scenario>...] <Direct|Indirect> <bytes> <objects>
must have its paragraph ("Direct leak of 100 byte(s) in 1 object(s) allocated from:") with a
frame naming the marked line's function and file:line; no other leak may be reported, and
the SUMMARY line must add them up. A scenario without markers must report nothing at all
(its blocks are freed, or still reachable, which LeakSanitizer's layout does not print).

  check_leak_report.py LIBZHEAP PROGRAM SOURCE SCENARIO
"""
import os
import re
import subprocess
import sys

MARKER = re.compile(r"// leak: (\S+) (Direct|Indirect) (\d+) (\d+)\s*$")
FUNCTION = re.compile(r"\[\[gnu::noinline\]\] [\w:<>*& ]*?\b(\w+)\(")
PARAGRAPH = re.compile(r"^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\) allocated from:$", re.M)


def expected_leaks(source, scenario):
    """[(kind, bytes, objects, line, function)] for the scenario's marked lines."""
    found = []
    function = None
    with open(source) as f:
        for number, line in enumerate(f, 1):
            defined = FUNCTION.search(line)
            if defined:
                function = defined.group(1)
            marked = MARKER.search(line)
            if marked and scenario in marked.group(1).split(","):
                found.append((marked.group(2), int(marked.group(3)), int(marked.group(4)), number, function))
    return found


def main():
    libzheap, program, source, scenario = sys.argv[1:5]
    expected = expected_leaks(source, scenario)
    env = dict(os.environ, LD_PRELOAD=libzheap, ZHEAP_ALLOCATOR="debug")
    env.pop("ZHEAP_REPORT", None)
    run = subprocess.run([program, scenario], env=env, capture_output=True, text=True, timeout=60)
    report = run.stderr
    failures = []
    if run.returncode != 0 or f"ran {scenario}" not in run.stdout:
        failures.append(f"exit status {run.returncode}, stdout {run.stdout!r}")
    if not expected:
        if "ERROR: zheap:" in report:
            failures.append("a clean scenario reported an error or a leak")
    else:
        # One paragraph per group: its header line, then its frames up to a blank line.
        paragraphs = [p for p in report.split("\n\n") if PARAGRAPH.match(p)]
        for kind, size, objects, line, function in expected:
            frame = re.compile(r"#\d+ 0x[0-9a-f]+ in [^\n]*?\b" + function + r"\([^\n]*\) \S*" +
                               re.escape(os.path.basename(source)) + ":" + str(line) + r"\b")
            header = f"{kind} leak of {size} byte(s) in {objects} object(s) allocated from:"
            match = next((p for p in paragraphs if p.startswith(header) and frame.search(p)), None)
            if match is None:
                failures.append(f"no '{header}' naming {function}() at {os.path.basename(source)}:{line}")
            else:
                paragraphs.remove(match)
        for extra in paragraphs:
            failures.append("an unexpected leak: " + extra.splitlines()[0])
        total_bytes = sum(e[1] for e in expected)
        total_objects = sum(e[2] for e in expected)
        summary = f"SUMMARY: zheap: {total_bytes} byte(s) leaked in {total_objects} allocation(s)."
        if summary not in report:
            failures.append(f"no '{summary}'")
        if not re.search(r"==\d+==ERROR: zheap: detected memory leaks\n\n", report):
            failures.append("no '==PID==ERROR: zheap: detected memory leaks' heading")
    if failures:
        print(f"{scenario}: " + "; ".join(failures))
        print("---- stderr ----\n" + report)
        return 1
    print(f"{scenario}: " + (f"{len(expected)} leak(s) reported as expected" if expected else "no leak reported"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
