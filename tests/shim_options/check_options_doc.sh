#!/bin/sh
# Usage: check_options_doc.sh ZHEAP_EXECUTABLE docs/OPTIONS.md
# Fails (and shows the difference) when the committed options reference is not what
# `zheap options --markdown` prints. To regenerate: build/tools/zheap options --markdown > docs/OPTIONS.md
set -eu
generated=$("$1" options --markdown)
if [ "$generated" != "$(cat "$2")" ]; then
  echo "$2 is out of date; regenerate it with: zheap options --markdown > docs/OPTIONS.md" >&2
  printf '%s\n' "$generated" | diff -u "$2" - >&2 || true
  exit 1
fi
