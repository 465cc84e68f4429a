#!/usr/bin/env python3
"""Runs tests/programs/heap_bugs KIND under LD_PRELOAD=libzheap.so ZHEAP_ALLOCATOR=debug
and checks the report: the error's name, and the function and file:line of the line
marked `// bug: KIND` in the program's source.

  check_debug_report.py LIBZHEAP PROGRAM SOURCE KIND abort|report [--to-file]

abort: the default ZHEAP_ON_ERROR; the process must die of SIGABRT after the report.
report: ZHEAP_ON_ERROR=report; the process must carry on and exit 0.
--to-file: ZHEAP_REPORT=<temporary directory>/report.%p; the report must be in the file
named with the child's pid, and not on stderr.
"""
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile

# The error each bug must be reported as (the names in core/src/debug/debug_report.cpp).
EXPECTED_ERROR = {
    "double_free": "double-free",
    "malloc_delete": "alloc-dealloc-mismatch (malloc vs operator delete)",
    "new_array_delete": "alloc-dealloc-mismatch (operator new [] vs operator delete)",
    "overflow": "heap-buffer-overflow",
    "new_free": "alloc-dealloc-mismatch (operator new vs free)",
    "new_delete_array": "alloc-dealloc-mismatch (operator new vs operator delete [])",
    "wrong_size_delete": "new-delete-type-mismatch",
    "aligned_new_plain_delete": "alloc-dealloc-mismatch (operator new(align_val_t) vs operator delete)",
    "underflow": "heap-buffer-underflow",
    "write_after_free": "heap-use-after-free (write)",
    "realloc_of_freed": "realloc-of-freed-block",
    "stack_free": "bad-free",
    "global_free": "bad-free",
    "mmap_free": "bad-free",
    "interior_free": "bad-free (interior pointer)",
}
# Reported but not fatal, whatever ZHEAP_ON_ERROR says (real programs pass wrong sizes).
NON_FATAL = {"wrong_size_delete"}


def marked_line(source, kind):
    """(line number, function name) of the line marked `// bug: KIND`."""
    function = None
    with open(source) as f:
        for number, line in enumerate(f, 1):
            defined = re.match(r"\[\[gnu::noinline\]\] void (\w+)\(", line)
            if defined:
                function = defined.group(1)
            if line.rstrip().endswith("// bug: " + kind):
                return number, function
    sys.exit(f"no line marked '// bug: {kind}' in {source}")


def run_pid(run, files):
    """The pid the report's first line names (==PID==ERROR), which must name the file."""
    for name in files:
        first = open(name).readline()
        found = re.match(r"==(\d+)==", first)
        if found:
            return int(found.group(1))
    return -1


def main():
    libzheap, program, source, kind, on_error = sys.argv[1:6]
    line, function = marked_line(source, kind)
    to_file = sys.argv[6:] == ["--to-file"]
    env = dict(os.environ, LD_PRELOAD=libzheap, ZHEAP_ALLOCATOR="debug", ZHEAP_ON_ERROR=on_error)
    failures = []
    with tempfile.TemporaryDirectory() as directory:
        if to_file:
            env["ZHEAP_REPORT"] = os.path.join(directory, "report.%p")
        run = subprocess.run([program, kind], env=env, capture_output=True, text=True, timeout=60)
        report = run.stderr
        if to_file:
            if "ERROR: zheap:" in run.stderr:
                failures.append("the report went to stderr despite ZHEAP_REPORT")
            files = glob.glob(os.path.join(directory, "report.*"))
            pid_named = [f for f in files if f.endswith(".%d" % run_pid(run, files))]
            if len(files) != 1 or not pid_named:
                failures.append(f"expected one report file named after the pid, found {files}")
            report = open(files[0]).read() if files else ""
    if f"ERROR: zheap: {EXPECTED_ERROR[kind]}" not in report:
        failures.append(f"no '{EXPECTED_ERROR[kind]}' error")
    # A symbolized frame of the program: "in (anonymous namespace)::double_free() .../heap_bugs.cpp:24"
    frame = re.compile(r"#\d+ 0x[0-9a-f]+ in [^\n]*?\b" + function + r"\(\) \S*" +
                       re.escape(os.path.basename(source)) + ":" + str(line) + r"\b")
    if not frame.search(report):
        failures.append(f"no frame naming {function}() at {os.path.basename(source)}:{line}")
    # The error's first stack starts in the program's function: the shim's own frames are
    # neither walked nor kept (their call site is handed to the stack walk).
    first_frame = re.search(r"ERROR: zheap: [^\n]*\n(?:[^#\n]*\n)*?\s*#0 ([^\n]*)", report)
    if not first_frame or not re.search(r"\b" + function + r"\(\) \S*" + re.escape(os.path.basename(source)) + ":",
                                        first_frame.group(1)):
        failures.append(f"the first frame is not in {function}(): {first_frame.group(1) if first_frame else None!r}")
    if on_error == "abort" and kind not in NON_FATAL:
        if run.returncode != -signal.SIGABRT:
            failures.append(f"exit status {run.returncode}, expected death by SIGABRT")
    else:
        if run.returncode != 0 or f"survived {kind}" not in run.stdout:
            failures.append(f"exit status {run.returncode}, stdout {run.stdout!r}: expected to carry on")
        # Heap errors only: the leak report at exit ("ERROR: zheap: detected memory leaks")
        # is about what the program left, not about its bug.
        errors = len(re.findall(r"ERROR: zheap: (?!detected memory leaks)", report))
        if errors != 1:
            failures.append(f"{errors} errors reported, expected exactly 1")
    if failures:
        print(f"{kind} ({on_error}): " + "; ".join(failures))
        print("---- stderr ----\n" + report)
        return 1
    print(f"{kind} ({on_error}): reported as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
