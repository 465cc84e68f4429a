// jemalloc_allocator(): jemalloc's non-standard API (mallocx, rallocx, xallocx, sdallocx)
// as an Allocator.
//
// For: a fast general-purpose allocator for direct use, without making jemalloc the
// process's malloc. libjemalloc is linked into libzheap-core (it cannot be dlopen()ed), but
// the program's `malloc` stays glibc's: libc precedes libjemalloc in the symbol search order
// (see core/meson.build), and zheap calls only the *allocx functions, which glibc lacks.
// Layout: jemalloc's size classes. Every call carries MALLOCX_LG_ALIGN(alignment), so any
// power-of-two alignment jemalloc supports is honoured, and sized free (sdallocx) gets the
// same flags as the allocation.
// Resize: xallocx in place; it succeeds when the block's usable size afterwards is the
// size class of the new length (so that the later sdallocx with that length is exact).
// Growing within the current size class always succeeds; shrinking succeeds when jemalloc
// can really shrink in place (a small block cannot leave its size class in place).
// Remap: rallocx, which may move (contents kept).
// Thread safety: jemalloc's, safe from any thread.
//
// Availability: declared only when this build found jemalloc (ZHEAP_HAVE_JEMALLOC is 1 in
// <zheap/config.hpp>; meson option `jemalloc`). Code that must build either way tests
// `#if ZHEAP_HAVE_JEMALLOC`; there is no stub that always fails, so a missing jemalloc is a
// compile error at the call, not an out-of-memory at run time.
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/config.hpp>

namespace zheap {

#if ZHEAP_HAVE_JEMALLOC
Allocator jemalloc_allocator() noexcept;
#endif

}  // namespace zheap
