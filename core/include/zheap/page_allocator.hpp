// page_allocator(): every allocation is its own anonymous mapping from the kernel.
//
// For: backing other allocators (arena, pool, debug), and large buffers. A one-byte
// request takes a whole page, so it is wasteful for small objects.
// Layout: the block starts at the mapping; lengths are rounded up to pages. Alignments
// above the page size are served by over-mapping and trimming both ends.
// Resize: in place within the last page, by unmapping the tail, or by mremap without
// moving. Remap: mremap that may move (only for alignments up to the page size, since
// the kernel only promises page alignment for the new address).
// Thread safety: stateless, safe from any thread. Never calls malloc.
#pragma once

#include <zheap/allocator.hpp>

namespace zheap {

Allocator page_allocator() noexcept;

}  // namespace zheap
