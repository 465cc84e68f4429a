// Recognising a block glibc's malloc handed out outside its brk heap, without trusting it.
//
// A library loaded with dlopen(RTLD_DEEPBIND) calls glibc's malloc directly; its blocks
// may come back to zheap's free/realloc/malloc_usable_size. The brk heap is one range
// compare (dispatch.hpp). glibc's other blocks are
//   mmapped chunks  (requests >= M_MMAP_THRESHOLD, 128 KiB at first): the size field has
//                   IS_MMAPPED, and prev_size + size spans whole pages from a page start;
//   thread arenas   (blocks malloc'ed on threads other than the first): the size field has
//                   NON_MAIN_ARENA, and the 64 MiB-aligned heap holding the chunk starts
//                   with a heap_info whose arena pointer leads to an arena that sits right
//                   after its own heap's heap_info.
// A stray pointer (stack, static data, the middle of a block or a mapping) fails one of
// these checks with overwhelming likelihood, so it is reported instead of handed to glibc,
// which would abort on it. Every word is read with os::read_if_readable (a system call,
// never a fault), so this is for the slow path of pointers no heap of zheap's owns.
#pragma once

namespace zheap::shim {

bool looks_like_glibc_chunk(const void* ptr) noexcept;

}  // namespace zheap::shim
