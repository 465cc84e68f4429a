#include <zheap/c_allocator.hpp>

#include <cstdlib>

#include <malloc.h>

namespace zheap {
namespace {

// The largest alignment plain malloc and realloc guarantee for every size.
bool malloc_aligns_to(Alignment alignment) noexcept { return alignment <= Alignment::max_fundamental(); }

void* c_alloc(void*, std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  if (malloc_aligns_to(alignment)) return std::malloc(len);
  void* memory = nullptr;
  // alignment > max_align_t, so it is a multiple of sizeof(void*) as posix_memalign needs.
  if (::posix_memalign(&memory, alignment.bytes(), len) != 0) return nullptr;
  return memory;
}

bool c_resize(void*, void* memory, std::size_t len, Alignment, std::size_t new_len, std::uintptr_t) noexcept {
  if (new_len <= len) return true;
  return ::malloc_usable_size(memory) >= new_len;
}

void* c_remap(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
              std::uintptr_t ret_addr) noexcept {
  if (c_resize(ctx, memory, len, alignment, new_len, ret_addr)) return memory;
  if (!malloc_aligns_to(alignment)) return nullptr;
  return std::realloc(memory, new_len);  // nullptr leaves `memory` as it was
}

void c_free(void*, void* memory, std::size_t, Alignment, std::uintptr_t) noexcept { std::free(memory); }

constexpr Allocator::VTable c_vtable{c_alloc, c_resize, c_remap, c_free};

}  // namespace

Allocator c_allocator() noexcept { return Allocator(nullptr, &c_vtable); }

}  // namespace zheap
