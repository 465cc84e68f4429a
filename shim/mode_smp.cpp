// smp mode: malloc served by the core's smp allocator (core/src/smp, design in
// core/include/zheap/smp_allocator.hpp): thread heaps, lock-free fast paths, O(1) free
// and malloc_usable_size by masking the pointer, large blocks in spans of their own.
//
// This file only plugs it into the shim's Heap interface (the allocator already keeps
// malloc's errno conventions): ownership is one range compare (every block comes from the allocator's reserve).
// Thread exit: the allocator registers its own pthread key at start. Fork: its locks
// (start, abandoned heaps, spans, in that order) are taken before fork and released after
// in both processes.
#include <cstddef>

#include "heap.hpp"
#include "report.hpp"
#include "smp/smp.hpp"

namespace zheap::shim {

namespace {

std::size_t smp_usable_size(void* ptr) noexcept { return smp::usable_size(ptr); }

constinit Heap smp_heap = {
    .name = "smp",
    .allocate = smp::allocate,
    .allocate_default = smp::allocate_default,
    .allocate_zeroed = nullptr,  // recycled blocks are not zero: allocate + memset
    .release = smp::release,
    .release_sized = smp::release_sized,
    .usable_size = smp_usable_size,
    .reallocate = smp::reallocate,
    .owns = Ownership::reserved_range,
    .libc_conformant = true,
    .range_begin = 0,  // the reserve, set at start
    .range_end = 0,
    .fork_prepare = smp::fork_prepare,
    .fork_release = smp::fork_parent,  // unlocking is right in the child too
    .detailed = nullptr,
};

}  // namespace

const Heap* start_smp_heap() noexcept {
  if (!smp::start()) {
    report_mode_unavailable("smp", "cannot reserve 1 GiB of address space", "libc");
    return nullptr;
  }
  smp_heap.range_begin = smp::range_begin();
  smp_heap.range_end = smp::range_end();
  return &smp_heap;
}

}  // namespace zheap::shim
