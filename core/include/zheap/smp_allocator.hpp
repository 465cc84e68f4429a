// smp_allocator(): the general-purpose, multi-threaded allocator (what `ZHEAP_ALLOCATOR=smp`
// serves malloc with).
//
// For: any program, any number of threads; small and large blocks, any alignment.
// Layout: one reserved address range (no memory until used) cut into 4 MiB segments.
// Each thread has a heap that owns segments; a segment is cut into 64 KiB pages (8 pages
// for blocks above 8 KiB), each page holds blocks of one of 48 size classes (16-byte steps
// to 128 bytes, then 4 per power of two to 128 KiB: at most 25% over the request). A
// block's page is found by masking its address (segments are aligned), so free and
// usable size are O(1) without headers. Blocks above 128 KiB get a span of their own,
// committed to the page; up to 20 MiB of freed ones are kept for reuse, each 200 ms at most.
// Thread safety: allocation pops from the calling thread's page (no lock, no atomic).
// A free by the owning thread pushes on the page's list; a free by any other thread
// pushes on the page's atomic list (one CAS), and the first such free announces the page
// to its owner, who takes the blocks back when it next runs out. Locks guard only the
// address-range source and the list of heaps of exited threads.
// Memory goes back to the system a segment at a time, as soon as a segment is empty
// (against thrashing, one empty segment per thread and four more process-wide are kept
// committed); freed pages stay resident up to 16 MiB per thread (new pages of any class
// take those first), beyond that they are decommitted at once; large blocks at free,
// beyond the cache. A thread's heap outlives it and is adopted by the next new thread.
// Never calls malloc; works before main and after static destructors.
// Refuses: alignments above 2^46 bytes (they fail, as out of memory does).
#pragma once

#include <zheap/allocator.hpp>

namespace zheap {

// A stateless handle over the process-wide smp allocator.
Allocator smp_allocator() noexcept;

}  // namespace zheap
