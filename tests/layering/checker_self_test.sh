#!/usr/bin/env bash
# The layering checker must itself fail on planted violations, or its pass means nothing.
set -u
checker=$1
tree=$(mktemp -d); trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/core/src/os" "$tree/core/include/zheap" "$tree/shim"
echo '#include "shim/heap.hpp"' > "$tree/core/src/arena.cpp"
echo '#include "os/os.hpp"' > "$tree/core/include/zheap/leaky.hpp"
echo 'void* p = ::mmap(nullptr, 1, 0, 0, -1, 0);' > "$tree/shim/mode.cpp"
echo 'void* q = os::map(1);  // mmap( in a comment is fine' > "$tree/shim/ok.cpp"
out=$(python3 "$checker" "$tree"); rc=$?
echo "$out"
[ "$rc" -eq 1 ] || { echo "checker passed a tree with violations"; exit 1; }
for expected in "core/src/arena.cpp:1" "core/include/zheap/leaky.hpp:1" "shim/mode.cpp:1"; do
  grep -q "^$expected:" <<<"$out" || { echo "missed $expected"; exit 1; }
done
grep -q "^shim/ok.cpp" <<<"$out" && { echo "false positive on shim/ok.cpp"; exit 1; }
echo "checker catches every planted violation and nothing else"
