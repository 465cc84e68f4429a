#!/bin/bash
# Programs nobody here wrote, run under LD_PRELOAD=libzheap.so in one mode; each must
# exit 0 and print what it prints without zheap.
#   real_programs.sh <libzheap.so> <mode>
set -euo pipefail
lib=$1 mode=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() { LD_PRELOAD=$lib ZHEAP_ALLOCATOR=$mode "$@"; }

seq 1 200000 | shuf --random-source=<(yes) > "$work/numbers"
sort -n "$work/numbers" > "$work/sorted.expected"
run sort -n "$work/numbers" > "$work/sorted"
cmp "$work/sorted" "$work/sorted.expected"

run sort --parallel=4 -S 1M -n "$work/numbers" > "$work/sorted"   # threads and temp files
cmp "$work/sorted" "$work/sorted.expected"

run gzip -c "$work/numbers" | run gzip -dc | cmp - "$work/numbers"
run tar -C "$work" -cf "$work/archive.tar" numbers sorted
[ "$(run tar -tf "$work/archive.tar" | wc -l)" -eq 2 ]

out=$(run python3 -c '
import threading, json, subprocess
d = {str(i): list(range(i % 100)) for i in range(20000)}
s = json.dumps(d); assert json.loads(s) == d
def work(): sum(len(str(x)) for x in range(200000))
ts = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(subprocess.run(["echo", "child"], capture_output=True, text=True).stdout.strip())
')
[ "$out" = "child" ]

[ "$(run bash -c 'x=$(for i in $(seq 1 2000); do echo $i; done | wc -l); echo $x')" = "2000" ]
run find /usr/include -name '*.h' > /dev/null

# The C++ compiler (cc1plus allocates heavily), and the program it builds.
printf '#include <iostream>\n#include <map>\n#include <string>\nint main() { std::map<std::string, int> m; for (int i = 0; i < 1000; ++i) m[std::to_string(i)] = i; std::cout << m.size() << "\\n"; }\n' > "$work/map.cpp"
run c++ -O1 -o "$work/map" "$work/map.cpp"
[ "$(run "$work/map")" = "1000" ]

# The others scripts/setup installs, when present.
if command -v xz > /dev/null; then
  run xz -T2 -c "$work/numbers" | run xz -dc | cmp - "$work/numbers"
fi
if command -v perl > /dev/null; then
  [ "$(run perl -e 'my %h; $h{$_} = [1 .. ($_ % 30)] for 1 .. 100000; print scalar(keys %h)')" = "100000" ]
fi
if command -v sqlite3 > /dev/null; then
  out=$(run sqlite3 "$work/db" 'create table t(a, b); with recursive n(i) as (select 1 union all select i + 1 from n where i < 50000) insert into t select i, hex(randomblob(40)) from n; create index ti on t(b); select count(*) from t;')
  [ "$out" = "50000" ]
fi
if command -v git > /dev/null; then
  run git -C "$work" init -q repo
  cp "$work/numbers" "$work/repo/"
  run git -C "$work/repo" add numbers
  run git -C "$work/repo" -c user.name=t -c user.email=t@t commit -qm numbers
  [ "$(run git -C "$work/repo" log --oneline | wc -l)" -eq 1 ]
fi
echo "real programs under $mode: ok"
