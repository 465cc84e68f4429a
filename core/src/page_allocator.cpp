#include <zheap/page_allocator.hpp>

#include <cstdint>

#include "os/os.hpp"

namespace zheap {
namespace {

std::size_t round_to_pages(std::size_t len) noexcept {
  const std::size_t page = os::page_size();
  return (len + page - 1) & ~(page - 1);
}

bool fits_in_address_space(std::size_t len) noexcept { return len <= SIZE_MAX / 2; }

void* page_alloc(void*, std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  if (!fits_in_address_space(len) || !fits_in_address_space(alignment.bytes())) return nullptr;
  return os::map_aligned(len, alignment.bytes());
}

bool page_resize(void*, void* memory, std::size_t len, Alignment, std::size_t new_len, std::uintptr_t) noexcept {
  if (!fits_in_address_space(new_len)) return false;
  const std::size_t old_span = round_to_pages(len);
  const std::size_t new_span = round_to_pages(new_len);
  if (new_span == old_span) return true;
  if (new_span < old_span) {
    os::unmap(static_cast<char*>(memory) + new_span, old_span - new_span);
    return true;
  }
  return os::remap(memory, old_span, new_span, /*may_move=*/false) != nullptr;
}

void* page_remap(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                 std::uintptr_t ret_addr) noexcept {
  if (page_resize(ctx, memory, len, alignment, new_len, ret_addr)) return memory;
  if (alignment.bytes() > os::page_size()) return nullptr;
  return os::remap(memory, round_to_pages(len), round_to_pages(new_len), /*may_move=*/true);
}

void page_free(void*, void* memory, std::size_t len, Alignment, std::uintptr_t) noexcept {
  os::unmap(memory, round_to_pages(len));
}

constexpr Allocator::VTable page_vtable{page_alloc, page_resize, page_remap, page_free};

}  // namespace

Allocator page_allocator() noexcept { return Allocator(nullptr, &page_vtable); }

}  // namespace zheap
