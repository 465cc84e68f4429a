#!/bin/bash
# What the shim costs, interleaved runs, median user CPU seconds (not a test: no verdict).
#   measure_overhead.sh <libzheap.so> <malloc_churn> [rounds=7] [libzheap.so built -Djemalloc=disabled]
# Pairs: jemalloc preloaded vs zheap's jemalloc mode; glibc vs zheap's libc mode; on
# malloc_churn (pure malloc/free), sort -n of 2M lines, and a Python JSON round trip.
# Then start-up of /bin/true: peak RSS, and task-clock per run.
set -euo pipefail
zheap=$1 churn=$2 rounds=${3:-7} nojem=${4:-}
jemalloc=$(ls /usr/lib/*/libjemalloc.so.2 | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seq 1 2000000 | shuf --random-source=<(yes) > "$work/numbers"
cat > "$work/json_round_trip.py" <<'PY'
import json
d = {str(i): [str(j) for j in range(i % 50)] for i in range(100000)}
for _ in range(3):
    d = json.loads(json.dumps(d))
PY
declare -A env_of=(
  [glibc]="X=1"
  [zheap-libc]="LD_PRELOAD=$zheap ZHEAP_ALLOCATOR=libc"
  [jemalloc]="LD_PRELOAD=$jemalloc"
  [zheap-jemalloc]="LD_PRELOAD=$zheap ZHEAP_ALLOCATOR=jemalloc"
)
declare -A cmd_of=(
  [churn]="$churn 20000000"
  [sort]="sort -n -S 200M --parallel=1 $work/numbers"
  [python]="python3 $work/json_round_trip.py"
)
declare -A times
for ((r = 0; r < rounds; ++r)); do
  for w in churn sort python; do
    for v in glibc zheap-libc jemalloc zheap-jemalloc; do
      t=$( { /usr/bin/time -f "%U" env ${env_of[$v]} ${cmd_of[$w]} > /dev/null; } 2>&1 | tail -1) || { echo "$w under $v failed: $t" >&2; exit 1; }
      times[$w,$v]+="$t "
    done
  done
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-8s %8s %11s %9s %15s %9s %9s\n' workload glibc zheap-libc jemalloc zheap-jemalloc libc-x je-x
for w in churn sort python; do
  g=$(echo "${times[$w,glibc]}" | median); zl=$(echo "${times[$w,zheap-libc]}" | median)
  j=$(echo "${times[$w,jemalloc]}" | median); zj=$(echo "${times[$w,zheap-jemalloc]}" | median)
  printf '%-8s %8s %11s %9s %15s %9.3f %9.3f\n' "$w" "$g" "$zl" "$j" "$zj" "$(awk -v a="$zl" -v b="$g" 'BEGIN {print a / b}')" "$(awk -v a="$zj" -v b="$j" 'BEGIN {print a / b}')"
done
echo
echo "/bin/true start-up (peak RSS KB, task-clock ms per run over 300 runs):"
startup() {
  local label=$1; shift
  local rss; rss=$(/usr/bin/time -f %M env -i "$@" /bin/true 2>&1)
  local clock=n/a
  command -v perf > /dev/null && clock=$(perf stat -r 300 -e task-clock env -i "$@" /bin/true 2>&1 | awk '/task-clock/ {print $1}')
  printf '  %-34s %6s KB %8s ms\n' "$label" "$rss" "$clock"
}
startup "no preload" X=1
[ -n "$nojem" ] && startup "zheap built without jemalloc" "LD_PRELOAD=$nojem"
startup "zheap (libc mode)" "LD_PRELOAD=$zheap"
startup "zheap (jemalloc mode)" "LD_PRELOAD=$zheap" ZHEAP_ALLOCATOR=jemalloc
startup "zheap (arena mode)" "LD_PRELOAD=$zheap" ZHEAP_ALLOCATOR=arena
startup "jemalloc preloaded" "LD_PRELOAD=$jemalloc"
