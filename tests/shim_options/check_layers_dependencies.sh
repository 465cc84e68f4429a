#!/bin/sh
# Usage: check_layers_dependencies.sh libzheap-shim-layers.a
# The layers run inside malloc: they must not call the public allocation API, and must not
# need libstdc++ (exceptions, guard variables, string_view::substr's out_of_range...), which
# libzheap.so does not link. Fails listing every undefined symbol that breaks this.
set -eu
bad=$(nm --undefined-only "$1" | awk '{print $NF}' | grep -E \
  '^(malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|reallocarray)$|^_Z(nw|na|dl|da)|^_ZN?St|^_ZNK?St|^__cxa_|^__gxx_|^_Unwind_Resume$' \
  | sort -u || true)
if [ -n "$bad" ]; then
  echo "$1 needs symbols the shim's layers must not use:" >&2
  echo "$bad" >&2
  exit 1
fi
