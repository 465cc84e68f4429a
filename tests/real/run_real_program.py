#!/usr/bin/env python3
"""Runs a real program from Debian with and without zheap's shim and compares.

    run_real_program.py --shim <build>/shim/libzheap.so [--modes libc,jemalloc,arena] PROGRAM

PROGRAM is one of the jobs in JOBS below (python3, sqlite3, perl, sort, g++, git, xz, ...). The job
runs once on its own (the system malloc), then once per mode with
LD_PRELOAD=<shim> ZHEAP_ALLOCATOR=<mode>, each time in a fresh directory with freshly
generated inputs. The test passes when every run's exit status and stdout equal the
first run's. stderr is not compared (a mode may report on stderr at exit), but it is
shown when a run differs, as are debug mode's reports (written to ZHEAP_REPORT files), and a mode the shim rejects (its one line on stderr naming
ZHEAP_ALLOCATOR) fails the test rather than passing under the default mode.

Exit status: 0 pass, 1 a difference, 77 (meson's "skipped") when the program is not
installed. Every job is deterministic and small (a few seconds for all runs together).
"""

import argparse
import dataclasses
import difflib
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SKIP = 77


@dataclasses.dataclass
class Job:
    program: str  # the executable that must be installed
    summary: str
    prepare: object  # (workdir: Path) -> None, writes the inputs
    argv: list  # run in workdir


def write_lines(path, count, seed):
    """`count` lines of words and numbers, the same for a given seed."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(800)]
    with open(path, "w") as out:
        for i in range(count):
            out.write(f"{rng.choice(words)} {rng.randint(-5000, 5000)} {rng.choice(words)}-{i % 97} "
                      f"{rng.random():.6f}\n")


def no_inputs(_workdir):
    pass


def prepare_sqlite(workdir):
    rng = random.Random(7)
    lines = ["CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER, blob TEXT);", "BEGIN;"]
    for i in range(20000):
        key = "".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 6)))
        lines.append(f"INSERT INTO t(k, v, blob) VALUES('{key}', {rng.randint(0, 1000)}, '{'z' * rng.randint(0, 300)}');")
    lines += [
        "COMMIT;",
        "CREATE INDEX t_k ON t(k);",
        "SELECT k, count(*), sum(v), max(length(blob)) FROM t GROUP BY k ORDER BY count(*) DESC, k LIMIT 25;",
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5000) "
        "SELECT sum(x * x), group_concat(x, ',') LIKE '1,2,3%' FROM n;",
        "UPDATE t SET blob = upper(k) || blob WHERE v % 7 = 0;",
        "DELETE FROM t WHERE v < 100;",
        "VACUUM;",
        "SELECT count(*), sum(length(blob)), min(k), max(k) FROM t;",
    ]
    (workdir / "job.sql").write_text("\n".join(lines) + "\n")


PERL_SCRIPT = r"""
use strict; use warnings;
my (%count, %by_len, @rows);
open(my $in, '<', 'input.txt') or die;
while (my $line = <$in>) {
    chomp $line;
    my @f = split / /, $line;
    $count{$f[0]}++;
    push @{ $by_len{length $f[2]} }, $f[2];
    push @rows, [ $f[1], join('|', reverse @f) ];
}
my @sorted = sort { $a->[0] <=> $b->[0] or $a->[1] cmp $b->[1] } @rows;
my $text = join("\n", map { $_->[1] } @sorted);
(my $upper = $text) =~ s/([a-z]+)/\U$1/g;
my @top = (sort { $count{$b} <=> $count{$a} or $a cmp $b } keys %count)[0 .. 9];
print "words ", scalar(keys %count), " rows ", scalar(@rows), "\n";
print "top @top\n";
print "lengths ", join(',', map { "$_:" . scalar(@{ $by_len{$_} }) } sort { $a <=> $b } keys %by_len), "\n";
print "first $sorted[0][1]\nlast $sorted[-1][1]\n";
print "upper ", length($upper), " ", substr($upper, 0, 40), "\n";
"""


def prepare_lines(workdir):
    write_lines(workdir / "input.txt", 60000, seed=11)


GIT_SCRIPT = r"""
set -e
git init -q repo
cd repo
for round in 1 2 3 4 5 6; do
  for f in 1 2 3 4 5 6 7 8; do
    seq $((round * 100 + f)) $((round * 150 + f * 40)) | sed "s/^/line $round $f /" > "file$f.txt"
  done
  mkdir -p "dir$round"
  cp ../input.txt "dir$round/copy.txt"
  git add -A
  git commit -q -m "round $round"
  [ $round -ne 3 ] || git tag v3
done
git log --format='%H %s' --stat
git diff --stat v3 HEAD
git diff v3~1 v3 | head -n 200
git gc -q
git fsck --no-progress 2>&1
git count-objects -v | grep -v size
git rev-list --all | wc -l
git grep -c 'line 4' | head
"""


def prepare_git(workdir):
    write_lines(workdir / "input.txt", 3000, seed=5)


XZ_SCRIPT = r"""
set -e
xz -6 -T1 -c input.txt > input.txt.xz
sha256sum < input.txt.xz
xz -d -c input.txt.xz | sha256sum
xz -l --robot input.txt.xz | grep -v '^name'
xz -1 -T1 -c input.txt | xz -d -T1 | cmp - input.txt && echo round-trip ok
"""


def prepare_xz(workdir):
    write_lines(workdir / "input.txt", 25000, seed=3)


def python_interpreter():
    # Debian's CPython, not a pyenv shim (a shell script in front of another build).
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"


PYTHON_THREADS_SCRIPT = r"""
import json, subprocess, threading
d = {str(i): list(range(i % 100)) for i in range(20000)}
s = json.dumps(d)
assert json.loads(s) == d
totals = [0] * 8
def work(k):
    totals[k] = sum(len(str(x)) for x in range(100000 + k))
threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(len(s), totals)
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
"""

TAR_GZIP_SCRIPT = r"""
set -e
mkdir -p tree/a tree/b
split -l 5000 input.txt tree/a/part-
cp input.txt tree/b/whole.txt
tar -cf - tree | gzip -6 -c > tree.tar.gz
gzip -dc tree.tar.gz | tar -tf - | sort
gzip -dc tree.tar.gz | tar -xOf - tree/b/whole.txt | cmp - input.txt && echo extracted ok
gzip -9 -c input.txt | gzip -dc | md5sum
"""

BASH_SCRIPT = r"""
declare -A seen
for i in $(seq 1 3000); do seen[$((i % 257))]+="$i,"; done
echo "${#seen[@]} keys, ${#seen[7]} chars"
x=$(for i in $(seq 1 2000); do echo "line $i"; done | wc -l); echo "$x lines"
s=""; for i in $(seq 1 500); do s="$s$i"; done; echo "${#s} long"
"""

CXX_PROGRAM = r"""
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>
int main() {
  std::map<std::string, std::vector<int>> m;
  for (int i = 0; i < 20000; ++i) m[std::to_string(i % 1500)].push_back(i);
  std::vector<std::thread> threads;
  std::vector<std::size_t> sums(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] { for (int i = 0; i < 20000; ++i) sums[t] += std::make_unique<std::string>(i % 50 + 1, 'x')->size(); });
  for (auto& th : threads) th.join();
  try { throw std::runtime_error(std::string(1000, 'e')); } catch (const std::exception& e) { std::cout << "caught " << std::string(e.what()).size() << "\n"; }
  std::cout << m.size() << " " << m["7"].size() << " " << sums[0] + sums[3] << "\n";
}
"""


def prepare_cxx_program(workdir):
    (workdir / "program.cpp").write_text(CXX_PROGRAM)


JOBS = {
    "python3": Job(python_interpreter(), "bench/data/python_workload.py at a fifth of its size", no_inputs,
                   [python_interpreter(), str(REPO / "bench" / "data" / "python_workload.py"), "0.2"]),
    "sqlite3": Job("sqlite3", "inserts, an index, grouping, a recursive CTE, update, delete, vacuum", prepare_sqlite,
                   ["sqlite3", ":memory:", ".read job.sql"]),
    "perl": Job("perl", "hashes, arrays, sort, regex substitution over 60k lines", prepare_lines,
                ["perl", "-e", PERL_SCRIPT]),
    "sort": Job("sort", "a numeric sort on a key, then a unique sort, of 60k lines", prepare_lines,
                ["sh", "-c", "sort -k2,2n -k1,1 input.txt | md5sum; sort -u -k3,3 input.txt | head -n 50; "
                             "sort -r input.txt | tail -n 20"]),
    # The assembly g++ writes must not depend on the allocator under the compiler.
    "g++": Job("g++", "g++ -O2 -S of a workload that uses the standard containers", no_inputs,
               ["g++", "-std=c++20", "-O2", "-S", "-o", "-", str(REPO / "bench" / "workloads" / "containers.cpp")]),
    "git": Job("git", "init, six commits, tag, log, diff, gc, fsck, grep", prepare_git,
               ["bash", "-c", GIT_SCRIPT]),
    "python3-threads": Job(python_interpreter(), "json, 8 threads and a subprocess", no_inputs,
                           [python_interpreter(), "-c", PYTHON_THREADS_SCRIPT]),
    "sort-parallel": Job("sort", "a parallel sort with a 1 MiB buffer: threads and temporary files", prepare_lines,
                         ["sh", "-c", "sort --parallel=4 -S 1M -k2,2n -k1,1 input.txt | md5sum"]),
    "tar-gzip": Job("tar", "split, tar, gzip, list, extract, round trip", prepare_lines,
                    ["bash", "-c", TAR_GZIP_SCRIPT]),
    "bash": Job("bash", "associative arrays, command substitution, string growth", no_inputs,
                ["bash", "-c", BASH_SCRIPT]),
    # Both the compiler and the program it builds (threads, exceptions, containers) run
    # under the shim.
    "c++-build-run": Job("g++", "g++ builds a threaded C++ program, which then runs", prepare_cxx_program,
                         ["sh", "-c", "g++ -std=c++20 -O1 -pthread -o program program.cpp && ./program"]),
    "xz": Job("xz", "compress, list, decompress and a round trip of 1.2 MB of text", prepare_xz,
              ["bash", "-c", XZ_SCRIPT]),
}


def clean_environment():
    """The environment every run starts from: no preload, no zheap settings, fixed
    locale, and git with no user configuration and fixed identities and dates."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("ZHEAP_")}
    env.update({
        "LC_ALL": "C",
        "TZ": "UTC",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "zheap test", "GIT_AUTHOR_EMAIL": "test@zheap.invalid",
        "GIT_COMMITTER_NAME": "zheap test", "GIT_COMMITTER_EMAIL": "test@zheap.invalid",
        "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    })
    return env


def run(job, workdir, env):
    workdir.mkdir()
    job.prepare(workdir)
    # git init names its first branch; say which, so git does not print advice on stderr.
    if job.program == "git":
        env = dict(env, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="init.defaultBranch", GIT_CONFIG_VALUE_0="main")
    return subprocess.run(job.argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)


def show_difference(label, baseline, result):
    print(f"FAIL {label}: differs from the run without the shim")
    if result.returncode != baseline.returncode:
        print(f"  exit status {result.returncode}, without the shim {baseline.returncode}")
    if result.stdout != baseline.stdout:
        expected = baseline.stdout.decode(errors="replace").splitlines()
        got = result.stdout.decode(errors="replace").splitlines()
        diff = list(difflib.unified_diff(expected, got, "without shim", label, lineterm="", n=1))
        print("\n".join(["  stdout:", *("    " + line for line in diff[:40])]))
        if len(diff) > 40:
            print(f"    ... {len(diff) - 40} more diff lines")
    stderr = result.stderr.decode(errors="replace").strip().splitlines()
    if stderr:
        print("\n".join(["  stderr (last lines):", *("    " + line for line in stderr[-15:])]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shim", type=Path, required=True, help="path of libzheap.so")
    parser.add_argument("--modes", default="libc,jemalloc,arena", help="ZHEAP_ALLOCATOR values, comma-separated")
    parser.add_argument("program", choices=sorted(JOBS))
    args = parser.parse_args()

    job = JOBS[args.program]
    if shutil.which(job.program) is None:
        print(f"SKIP {args.program}: {job.program} is not installed (scripts/setup installs it)")
        return SKIP
    shim = args.shim.resolve()
    if not shim.exists():
        print(f"FAIL: {shim} does not exist")
        return 1

    env = clean_environment()
    failures = 0
    with tempfile.TemporaryDirectory(prefix=f"zheap-real-{args.program}-") as tmp:
        baseline = run(job, Path(tmp) / "baseline", env)
        print(f"{args.program}: {job.summary}")
        print(f"  without the shim: exit status {baseline.returncode}, {len(baseline.stdout)} bytes of stdout")
        if baseline.returncode != 0:
            # The job itself is broken (or the program is), not the shim: say so loudly.
            print("FAIL: the job fails without the shim:\n" + baseline.stderr.decode(errors="replace")[-2000:])
            return 1
        if not baseline.stdout:
            print("FAIL: the job prints nothing, so there is nothing to compare")
            return 1
        for mode in filter(None, args.modes.split(",")):
            label = f"LD_PRELOAD={shim.name} ZHEAP_ALLOCATOR={mode}"
            mode_env = dict(env, LD_PRELOAD=str(shim), ZHEAP_ALLOCATOR=mode)
            # Debug mode's reports (its leak report at exit, in every process) go to files of
            # their own, not into the job's output (a job may send stderr to stdout: git fsck
            # 2>&1): they are shown when the run differs.
            reports = Path(tmp) / f"reports-{mode}"
            reports.mkdir()
            mode_env["ZHEAP_REPORT"] = str(reports / "report.%p")
            result = run(job, Path(tmp) / f"mode-{mode}", mode_env)
            rejected = [line for line in result.stderr.decode(errors="replace").splitlines()
                        if "ZHEAP_ALLOCATOR" in line]
            if rejected:
                # The shim ran its default mode instead: passing would be a lie.
                print(f"FAIL {label}: the shim does not accept this mode: {rejected[0]}")
                failures += 1
            elif result.returncode == baseline.returncode and result.stdout == baseline.stdout:
                print(f"  ok   {label}")
            else:
                show_difference(label, baseline, result)
                for report in sorted(reports.iterdir()):
                    print(f"  {report.name} (ZHEAP_REPORT), first lines:")
                    print("\n".join("    " + line for line in report.read_text(errors="replace").splitlines()[:20]))
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
