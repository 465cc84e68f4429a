#!/usr/bin/env bash
# Done-when of the foundation: a program written as a new user would, from DESIGN.md's
# names, builds against the INSTALLED headers and library through pkg-config, and works.
# Installs the build into a scratch DESTDIR, compiles the example with
# `pkg-config --cflags --libs zheap`, and runs it.
set -euo pipefail
build_dir=$1
source_dir=$2
program=$source_dir/examples/word_frequencies.cpp
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

meson install -C "$build_dir" --no-rebuild --quiet --destdir "$scratch/root" >/dev/null

pc_file=$(find "$scratch/root" -name zheap.pc | head -n1)
[ -n "$pc_file" ] || { echo "zheap.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc_file")
export PKG_CONFIG_SYSROOT_DIR=$scratch/root   # prefixes -I and -L with the scratch root

flags=$(pkg-config --cflags --libs zheap)
echo "pkg-config --cflags --libs zheap: $flags"
case "$flags" in *"$source_dir"*) echo "flags point into the source tree, not the install"; exit 1 ;; esac

${CXX:-c++} -std=c++20 -Wall -Wextra -Werror "$program" $flags -o "$scratch/word_frequencies"
libdir=$(dirname "$(find "$scratch/root" -name 'libzheap-core.so' | head -n1)")
printf 'the cat and the dog and the bird\nThe end\n' > "$scratch/input.txt"
LD_LIBRARY_PATH=$libdir "$scratch/word_frequencies" "$scratch/input.txt" | tee "$scratch/out.txt"
grep -q '^ *4 the$' "$scratch/out.txt" || { echo "unexpected output"; exit 1; }
# It must have run on the installed library, not on one from the build tree.
loaded=$(LD_LIBRARY_PATH=$libdir ldd "$scratch/word_frequencies" | grep libzheap-core || true)
echo "loads: $loaded"
grep -q "$scratch/root.*libzheap-core" <<<"$loaded" \
  || { echo "the program did not load the installed libzheap-core"; exit 1; }
echo "consumer program built and ran against the installed zheap"
