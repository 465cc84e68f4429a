#include <zheap/fixed_buffer_allocator.hpp>

#include "support/bump.hpp"

namespace zheap {
namespace {

// Where a block of `len` bytes goes in `buffer` after `end_index`; false when it does not fit.
bool place(std::span<std::byte> buffer, std::size_t end_index, std::size_t len, Alignment alignment,
           support::Placement* out) noexcept {
  return support::place_after(buffer.data(), end_index, len, alignment, out) && out->end <= buffer.size();
}

}  // namespace

void* FixedBufferAllocator::alloc(std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  support::Placement placement;
  if (!place(buffer_, end_index(), len, alignment, &placement)) return nullptr;
  end_index_.store(placement.end, std::memory_order_relaxed);
  return buffer_.data() + placement.start;
}

bool FixedBufferAllocator::resize(void* memory, std::size_t len, Alignment, std::size_t new_len,
                                  std::uintptr_t) noexcept {
  if (!is_last_allocation(memory, len)) return new_len <= len;  // a shrink keeps the tail unused
  const std::size_t start = static_cast<std::size_t>(static_cast<std::byte*>(memory) - buffer_.data());
  if (new_len > buffer_.size() - start) return false;
  end_index_.store(start + new_len, std::memory_order_relaxed);
  return true;
}

// Moving cannot be cheaper than the caller's copy, so remap is resize or nothing.
void* FixedBufferAllocator::remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                                  std::uintptr_t ret_addr) noexcept {
  return resize(memory, len, alignment, new_len, ret_addr) ? memory : nullptr;
}

void FixedBufferAllocator::free(void* memory, std::size_t len, Alignment, std::uintptr_t) noexcept {
  if (is_last_allocation(memory, len)) end_index_.store(end_index() - len, std::memory_order_relaxed);
}

// The thread-safe path: claim [start, new_end) with one compare-and-swap of the end.
// Relaxed ordering is enough: the atomic read-modify-write alone makes the claimed ranges
// disjoint, and the bytes themselves are not published through end_index_.
void* FixedBufferAllocator::alloc_concurrently(std::size_t len, Alignment alignment) noexcept {
  std::size_t end = end_index_.load(std::memory_order_relaxed);
  for (;;) {
    support::Placement placement;
    if (!place(buffer_, end, len, alignment, &placement)) return nullptr;
    if (end_index_.compare_exchange_weak(end, placement.end, std::memory_order_relaxed)) {
      return buffer_.data() + placement.start;
    }
  }
}

namespace {

void* fba_alloc_concurrently(void* ctx, std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  return static_cast<FixedBufferAllocator*>(ctx)->alloc_concurrently(len, alignment);
}
constexpr Allocator::VTable fba_thread_safe_vtable{fba_alloc_concurrently, Allocator::no_resize, Allocator::no_remap,
                                                   Allocator::no_free};

}  // namespace

Allocator FixedBufferAllocator::allocator() noexcept { return Allocator(this, &vtable_for<FixedBufferAllocator>); }
Allocator FixedBufferAllocator::thread_safe_allocator() noexcept { return Allocator(this, &fba_thread_safe_vtable); }

}  // namespace zheap
