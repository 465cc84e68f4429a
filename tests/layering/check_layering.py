#!/usr/bin/env python3
"""Fails when code depends on a layer above it, or calls the OS outside core/src/os.

The layers, bottom up (core/README.md): core/src/os -> core/src/support -> core allocators
(core/include/zheap, core/src) -> shim/ -> tools/. Tests may include anything.
Each rule is a (where, forbidden include prefix or call, why) triple; the test prints every
violation as FILE:LINE so it can be fixed where it is.
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2]

SOURCE_SUFFIXES = {".hpp", ".cpp", ".h", ".c", ".inc"}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
# Direct system calls that belong in core/src/os only.
SYSCALL = re.compile(r"(?<![\w:.>])(?:::)?(mmap|munmap|mremap|madvise|mprotect|syscall|getrandom|sysconf|sbrk|brk)\s*\(")

rules = [
    # (directory, predicate on an include path, message)
    ("core", lambda inc: inc.startswith(("shim/", "tools/")) or "/shim/" in inc, "core must not depend on shim/ or tools/"),
    ("core/include", lambda inc: inc.startswith(("os/", "support/")), "installed headers must not include core/src internals"),
    ("core/src/os", lambda inc: inc.startswith("zheap/") or inc.startswith("support/"), "the OS layer is the bottom: it includes no zheap header"),
    ("shim", lambda inc: inc.startswith("tools/"), "the shim must not depend on tools/"),
]

violations = []
for path in sorted(root.rglob("*")):
    if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
        continue
    rel = path.relative_to(root).as_posix()
    if rel.startswith(("build", "tests/", ".git")):
        continue
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        match = INCLUDE.match(line)
        if match:
            for directory, forbidden, message in rules:
                if rel.startswith(directory + "/") and forbidden(match.group(1)):
                    violations.append(f"{rel}:{number}: #include <{match.group(1)}>: {message}")
        code = line.split("//", 1)[0]
        if not rel.startswith("core/src/os/") and SYSCALL.search(code):
            violations.append(f"{rel}:{number}: {SYSCALL.search(code).group(1)}(): system calls live in core/src/os only")

for v in violations:
    print(v)
print(f"{len(violations)} layering violation(s)")
sys.exit(1 if violations else 0)
