// smp_allocator(): the general-purpose, multi-threaded allocator (what `ZHEAP_ALLOCATOR=smp`
// serves malloc with).
//
// For: any program, any number of threads; small and large blocks, any alignment.
// Layout: one reserved address range (no memory until used) cut into 4 MiB segments.
// Each thread has a heap that owns segments; a segment is cut into 64 KiB slices and
// pages of slices, each page holding blocks of one of 60 size classes (16-byte steps to
// 128 bytes, then 4 per power of two to 1 MiB: at most 25% over the request): 1 slice for
// blocks up to 8 KiB, 8 slices for blocks up to 128 KiB, one block per page (3 to 16
// slices) above. A block's page is found by masking its address (segments are aligned),
// so free and usable size are O(1) without headers. Blocks above 1 MiB (and those realloc
// grows past 128 KiB, which then grow in place) get a span of their own, committed to
// the page (pages realloc grows into are faulted in at once, up to 1 MiB a growth); up
// to 48 MiB of freed ones are kept for reuse, each 200 ms at most; short of room, a
// freed block first gives back the tail it inherited from a bigger predecessor.
// Thread safety: allocation pops from the calling thread's page (no lock, no atomic).
// A free by the owning thread pushes on the page's list; a free by any other thread
// pushes on the page's atomic list (one CAS; blocks up to 8 KiB are held back by the
// freeing thread, which gets a heap for it at its first such free, and pushed 16 or 4 KiB
// of a page at a time, or when it frees into another page, makes a page, trims or exits),
// and the first such push announces the page to its owner, who takes the blocks back
// when it next runs out (the list carries its count: taking it needs no walk). A page
// that such frees empty is kept for its class, its blocks ready, up to 2 MiB a thread
// (a producer whose blocks a consumer frees cycles through a few pages a class); a new
// page of another class takes the oldest one's memory. Locks guard only the
// address-range source and the list of heaps of exited threads.
// Memory: a freed page stays resident, and the next page of any class takes the free run
// with the most resident slices, so a program moving from one block size to another
// reuses the same memory; a segment's freed pages go back 50 ms after the first of them
// was freed (checked as the thread makes or frees pages), an empty segment with them, and at once
// beyond 256 MiB per thread. One empty segment per thread and four more process-wide are
// kept mapped (not resident); large blocks go back at free beyond the cache. A thread's
// heap outlives it and is adopted by the next new thread.
// Never calls malloc; works before main and after static destructors.
// Refuses: alignments above 2^46 bytes (they fail, as out of memory does).
#pragma once

#include <zheap/allocator.hpp>

namespace zheap {

// A stateless handle over the process-wide smp allocator.
Allocator smp_allocator() noexcept;

}  // namespace zheap
