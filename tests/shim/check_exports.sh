#!/bin/bash
# nm -D --defined-only libzheap.so must list exactly the expected symbols (and the version
# script must export exactly those too): nothing missing, nothing of zheap's leaking out.
# Also: no libstdc++ dependency, and only initial-exec TLS.
#   check_exports.sh <libzheap.so> <exported_symbols.txt> <libzheap.map>
set -eu
lib=$1 expected=$2 map=$3
actual=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
wanted=$(grep -v '^#' "$expected" | sed '/^$/d' | sort -u)
in_map=$(sed -n '/global:/,/local:/p' "$map" | grep -v -e 'global:' -e 'local:' | tr -d ' ;' | sed '/^$/d' | sort -u)
status=0
if [ "$actual" != "$wanted" ]; then
  echo "exported symbols differ from $expected (< exported, > expected):"
  diff <(echo "$actual") <(echo "$wanted") || true
  status=1
fi
if [ "$in_map" != "$wanted" ]; then
  echo "libzheap.map's global list differs from $expected"
  status=1
fi
# libzheap.so itself must not pull in the C++ runtime (1 MiB and ~1 ms per preloaded
# process; see shim/operator_new.cpp).
if readelf -d "$lib" | grep -q 'NEEDED.*libstdc++'; then
  echo "libzheap.so depends on libstdc++"
  status=1
fi
# Only initial-exec (static) TLS: the general-dynamic model calls __tls_get_addr, which may
# allocate (glibc gives a dlopen()ed module's TLS block on first use), and so may call
# back into the malloc being served.
if nm -D --undefined-only "$lib" | grep -q '__tls_get_addr'; then
  echo "libzheap.so uses dynamic TLS (__tls_get_addr): a thread_local lacks [[gnu::tls_model(\"initial-exec\")]]"
  status=1
fi
[ "$status" -eq 0 ] && echo "exported symbols: $(echo "$actual" | wc -l), as listed"
exit $status
