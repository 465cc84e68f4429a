#!/usr/bin/env python3
"""Debug mode's report options, end to end: runs tests/programs/leak_and_bug.c under
LD_PRELOAD=libzheap.so ZHEAP_ALLOCATOR=debug and checks what it reports and how it exits.

  check_report_options.py LIBZHEAP PROGRAM SOURCE ZHEAP CASE

CASE:
  json               ZHEAP_REPORT_FORMAT=json: every line parses, the error and leaks
                     records name the kind, the function and file:line of the marked lines;
                     `zheap report` of the file prints the text debug mode prints itself
                     (compared line by line, addresses and pids aside)
  suppressed         a suppressions file naming the leaking function: no leak reported,
                     "Suppressions used:" lists it, ZHEAP_LEAK_EXITCODE not applied
  not_suppressed     the same with a pattern that matches nothing: the leak is reported
                     and the exit code applied
  exit_code          ZHEAP_LEAK_EXITCODE=23: 23 with a leak, the program's own status
                     without one; stdout printed with printf before exit is not lost
  bad_values         a bad value of each option: one line on stderr, the program runs
  bad_suppressions   invalid lines of a suppressions file: one line each (file, line
                     number, text), the valid lines still apply

The leak is a block nothing points to (definitely lost, whatever the classification);
the suppressions files also name libstdc++.so, whose emergency pool (libstdc++ is loaded
with libzheap.so) is a definite leak until the leak classification calls it reachable,
and then not a leak at all, so it is never counted either way.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

LIBRARY_LEAKS = "# libstdc++'s emergency pool, loaded with libzheap.so (see the top of the test)\nleak:libstdc++.so\n"


def marked_line(source, mark):
    with open(source) as f:
        for number, line in enumerate(f, 1):
            if line.rstrip().endswith("/* " + mark + " */"):
                return number
    sys.exit(f"no line marked '{mark}' in {source}")


class Checker:
    def __init__(self, libzheap, program, source, zheap, directory):
        self.libzheap, self.program, self.source, self.zheap = libzheap, program, source, zheap
        self.directory = directory
        self.file_name = os.path.basename(source)
        self.leak_line = marked_line(source, "leak: definite")
        self.bug_line = marked_line(source, "bug: double_free")
        self.failures = []

    def run(self, what, status=0, **options):
        env = dict(os.environ, LD_PRELOAD=self.libzheap, ZHEAP_ALLOCATOR="debug", ZHEAP_ON_ERROR="report")
        for name in list(env):
            if name.startswith("ZHEAP_") and name[6:].lower() not in ("allocator", "on_error"):
                del env[name]
        env.update({"ZHEAP_" + name.upper(): str(value) for name, value in options.items()})
        return subprocess.run([self.program, what, str(status)], env=env, capture_output=True, text=True, timeout=60)

    def write(self, name, text):
        path = os.path.join(self.directory, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def expect(self, condition, message, run=None):
        if not condition:
            if run is not None:
                message += f"\n---- exit status {run.returncode}; stdout ----\n{run.stdout}---- stderr ----\n{run.stderr}"
            self.failures.append(message)
        return condition

    # A text frame of the program: "#1 0x... in leak_one_block ../tests/programs/leak_and_bug.c:29"
    def text_frame(self, function, line):
        return re.compile(r"#\d+ 0x[0-9a-f]+ in " + function + r" \S*" + re.escape(self.file_name) + ":" + str(line) + r"\b")

    def json_stack_has(self, stack, function, line):
        return any(frame.get("function") == function and frame.get("file", "").endswith(self.file_name)
                   and frame.get("line") == line and frame.get("module", "").endswith("leak_and_bug")
                   for frame in stack)

    def leak_text_reported(self, text):
        return bool(re.search(r"Direct leak of 48 byte\(s\) in 1 object\(s\) allocated from:\n(    #.*\n)*?    "
                              + self.text_frame("leak_one_block", self.leak_line).pattern, text))

    # ---- the cases -----------------------------------------------------------------

    def case_json(self):
        report_path = os.path.join(self.directory, "report.json")
        run = self.run("bug_and_leak", report_format="json", report=report_path, show_reachable=1)
        self.expect(run.returncode == 0 and "printed before exit by bug_and_leak" in run.stdout,
                    "the program did not run to its end", run)
        lines = open(report_path).read().splitlines() if os.path.exists(report_path) else []
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except ValueError as error:
                self.expect(False, f"line {number} of the JSON report does not parse ({error}): {line[:200]}")
        errors = [r for r in records if r.get("type") == "error"]
        leaks = [r for r in records if r.get("type") == "leaks"]
        self.expect(len(errors) == 1 and len(leaks) == 1,
                    f"expected one error and one leaks record, got types {[r.get('type') for r in records]}")
        for record in records:
            self.expect(record.get("version") == 1 and record.get("pid", 0) > 0, f"no version 1 or pid in {record}")
        if errors:
            error = errors[0]
            self.expect(error.get("kind") == "double_free" and error.get("title") == "double-free",
                        f"error kind {error.get('kind')!r}, title {error.get('title')!r}")
            self.expect(error.get("block_size") == 40 and error.get("allocated_with") == "malloc"
                        and error.get("released_with") == "malloc" and re.fullmatch(r"0x[0-9a-f]+", error.get("address", "")),
                        f"block fields wrong: {error}")
            stacks = error.get("stacks", {})
            self.expect(set(stacks) == {"current", "free", "allocation"}, f"stacks {list(stacks)}")
            self.expect(self.json_stack_has(stacks.get("current", []), "double_free", self.bug_line),
                        f"the current stack does not name double_free at {self.file_name}:{self.bug_line}: {stacks.get('current')}")
        if leaks:
            record = leaks[0]
            definite = [g for g in record.get("groups", []) if g.get("kind") == "definite"]
            ours = [g for g in definite if self.json_stack_has(g.get("stack", []), "leak_one_block", self.leak_line)]
            self.expect(len(ours) == 1 and ours[0]["blocks"] == 1 and ours[0]["bytes"] == 48,
                        f"no definite group of 1 block, 48 bytes from leak_one_block at {self.file_name}:{self.leak_line}: {definite}")
            totals = record.get("totals", {})
            self.expect(sum(g["bytes"] for g in definite) == totals.get("definite", {}).get("bytes"),
                        f"definite groups do not add up to the totals: {totals}")
            # ZHEAP_SHOW_REACHABLE=1: every still-reachable block is listed in a group.
            reachable = [g for g in record.get("groups", []) if g.get("kind") == "reachable"]
            self.expect(sum(g["blocks"] for g in reachable) == totals.get("reachable", {}).get("blocks"),
                        f"with show_reachable, reachable groups do not add up to the totals: {totals}")
            self.expect(record.get("show_reachable") is True and record.get("suppressions") == []
                        and record.get("suppressed") == {"blocks": 0, "bytes": 0}, f"leaks record fields: {record}")

        rendered = subprocess.run([self.zheap, "report", report_path], capture_output=True, text=True, timeout=60)
        self.expect(rendered.returncode == 0, f"zheap report failed: {rendered.stderr}")
        text = rendered.stdout
        self.expect("ERROR: zheap: double-free on 0x" in text and self.text_frame("double_free", self.bug_line).search(text),
                    f"zheap report does not show the double free at {self.file_name}:{self.bug_line}:\n{text}")
        self.expect(self.leak_text_reported(text), f"zheap report does not show the leak at line {self.leak_line}:\n{text}")

        # The same run in text: the same lines, but for addresses and pids.
        text_run = self.run("bug_and_leak", show_reachable=1)
        normalize = lambda s: re.sub(r"==\d+==", "==PID==", re.sub(r"0x[0-9a-f]+", "0xADDRESS", s))
        self.expect(normalize(text_run.stderr) == normalize(text),
                    "zheap report's text differs from debug mode's own:\n---- debug mode ----\n"
                    + text_run.stderr + "---- zheap report ----\n" + text)

    def case_suppressed(self):
        suppressions = self.write("suppressions.txt", "# the test's leak\n\nleak:leak_one_block\n" + LIBRARY_LEAKS)
        run = self.run("leak", leak_exitcode=23, suppressions=suppressions)
        self.expect(run.returncode == 0, "exit code applied although the only leak is suppressed", run)
        self.expect(not self.text_frame("leak_one_block", self.leak_line).search(run.stderr),
                    "the suppressed leak's stack is still printed", run)
        self.expect("Direct leak" not in run.stderr and "SUMMARY" not in run.stderr, "a leak is reported", run)
        self.expect(re.search(r"Suppressions used:\n  count      bytes template\n(.*\n)*?\s+1\s+48 leak_one_block\n",
                              run.stderr), "no 'Suppressions used:' line for leak_one_block (1 block, 48 bytes)", run)
        self.expect("printed before exit by leak" in run.stdout, "stdout lost", run)

    def case_not_suppressed(self):
        suppressions = self.write("suppressions.txt", "leak:no_such_function_anywhere\nleak:^leak_one$\n" + LIBRARY_LEAKS)
        run = self.run("leak", leak_exitcode=23, suppressions=suppressions)
        self.expect(self.leak_text_reported(run.stderr), "the leak is not reported", run)
        self.expect(run.returncode == 23, "exit code not applied", run)
        self.expect("no_such_function_anywhere" not in run.stderr and "^leak_one$" not in run.stderr,
                    "an unused suppression is listed", run)

    def case_exit_code(self):
        run = self.run("leak", status=0, leak_exitcode=23)
        self.expect(run.returncode == 23, "expected exit status 23 with a leak", run)
        self.expect(run.stdout == "printed before exit by leak\n", "stdout printed before exit was lost", run)
        self.expect(self.leak_text_reported(run.stderr), "the leak is not reported", run)
        suppressions = self.write("library.txt", LIBRARY_LEAKS)
        for status in (0, 7):
            run = self.run("clean", status=status, leak_exitcode=23, suppressions=suppressions)
            self.expect(run.returncode == status, f"expected the program's own status {status} without a leak", run)
            self.expect(run.stdout == "printed before exit by clean\n", "stdout lost", run)
        run = self.run("leak", status=5)
        self.expect(run.returncode == 5, "ZHEAP_LEAK_EXITCODE unset changed the program's status", run)

    def case_bad_values(self):
        bad = {"report_format": ("xml", "is not one of the choices"),
               "leak_exitcode": ("300", "is not an exit status"),
               "show_reachable": ("maybe", "is not a boolean"),
               "suppressions": (os.path.join(self.directory, "no-such-file"), "cannot read")}
        for option, (value, complaint) in bad.items():
            run = self.run("clean", status=3, **{option: value})
            variable = "ZHEAP_" + option.upper()
            said = [line for line in run.stderr.splitlines() if line.startswith("zheap: " + variable)]
            self.expect(len(said) == 1 and complaint in said[0], f"{variable}={value}: expected one line saying '{complaint}'", run)
            self.expect(run.returncode == 3 and run.stdout == "printed before exit by clean\n",
                        f"{variable}={value}: the program did not run as usual", run)

    def case_bad_suppressions(self):
        suppressions = self.write("suppressions.txt",
                                  "leak:leak_one_block\nnot a suppression\n  # a comment\n\nrace:foo\nleak:\n" + LIBRARY_LEAKS)
        run = self.run("leak", leak_exitcode=23, suppressions=suppressions)
        said = [line for line in run.stderr.splitlines() if line.startswith("zheap: ZHEAP_SUPPRESSIONS")]
        expected = [f'{suppressions}:2: not a suppression', '"not a suppression"',
                    f'{suppressions}:5: not a suppression', '"race:foo"', f'{suppressions}:6: not a suppression']
        self.expect(len(said) == 3 and all(any(piece in line for line in said) for piece in expected),
                    f"expected one line for each of lines 2, 5 and 6, got {said}", run)
        self.expect(run.returncode == 0 and "Direct leak" not in run.stderr,
                    "the valid suppression was not applied", run)


def main():
    libzheap, program, source, zheap, case = sys.argv[1:6]
    with tempfile.TemporaryDirectory() as directory:
        checker = Checker(libzheap, program, source, zheap, directory)
        getattr(checker, "case_" + case)()
    if checker.failures:
        print(f"{case}: FAILED\n" + "\n\n".join(checker.failures))
        return 1
    print(f"{case}: as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
