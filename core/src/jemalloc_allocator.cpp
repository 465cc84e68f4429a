#include <zheap/jemalloc_allocator.hpp>

#include <jemalloc/jemalloc.h>

namespace zheap {
namespace {

int flags_for(Alignment alignment) noexcept { return MALLOCX_LG_ALIGN(alignment.log2()); }

void* je_alloc(void*, std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  return ::mallocx(len, flags_for(alignment));
}

bool je_resize(void*, void* memory, std::size_t, Alignment alignment, std::size_t new_len, std::uintptr_t) noexcept {
  const int flags = flags_for(alignment);
  // xallocx returns the block's usable size afterwards, resized or not. "Resized" for the
  // contract means that size is exactly the class of new_len: sdallocx(memory, new_len)
  // must later name the block's real size class. A failed shrink leaves the old, larger
  // class, and then nothing changed, which is a legal answer.
  const std::size_t usable = ::xallocx(memory, new_len, 0, flags);
  return usable >= new_len && usable == ::nallocx(new_len, flags);
}

void* je_remap(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
               std::uintptr_t ret_addr) noexcept {
  if (je_resize(ctx, memory, len, alignment, new_len, ret_addr)) return memory;
  return ::rallocx(memory, new_len, flags_for(alignment));  // nullptr leaves `memory` valid
}

void je_free(void*, void* memory, std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  ::sdallocx(memory, len, flags_for(alignment));
}

constexpr Allocator::VTable jemalloc_vtable{je_alloc, je_resize, je_remap, je_free};

}  // namespace

Allocator jemalloc_allocator() noexcept { return Allocator(nullptr, &jemalloc_vtable); }

}  // namespace zheap
