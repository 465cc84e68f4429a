// c_allocator(): the process's malloc, as an Allocator (Zig's std.heap.c_allocator).
//
// For: handing malloc'd memory to C code that frees it with free(), and as a baseline.
// Layout: whatever malloc does. Alignments up to alignof(std::max_align_t) (16 on x86-64)
// are plain malloc; larger ones, of any power of two, go through posix_memalign.
// Resize: in place when malloc_usable_size() already covers the new length, and shrinking
// always succeeds (the block keeps its tail, free() does not need the length).
// Remap: realloc() for alignments up to max_align_t (it may move, contents kept); for
// larger alignments nullptr, since realloc does not keep an over-alignment.
// Thread safety: as malloc's, safe from any thread.
// Refuses: nothing beyond what malloc refuses.
// Note: it calls the *public* malloc. Inside a process running under the zheap shim that
// is zheap itself, so the shim must never use c_allocator() to reach glibc (use glibc's
// __libc_malloc family there).
#pragma once

#include <zheap/allocator.hpp>

namespace zheap {

Allocator c_allocator() noexcept;

}  // namespace zheap
