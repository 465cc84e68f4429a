#include <zheap/fixed_buffer_allocator.hpp>

namespace zheap {

std::size_t FixedBufferAllocator::place(std::size_t end, std::size_t len, Alignment alignment,
                                        std::size_t* start) const noexcept {
  const auto base = reinterpret_cast<std::uintptr_t>(buffer_.data());
  const std::uintptr_t unaligned = base + end;
  const std::uintptr_t aligned = alignment.forward(unaligned);
  if (aligned < unaligned) return 0;  // wrapped around the address space
  const std::size_t offset = aligned - base;
  std::size_t new_end;
  if (__builtin_add_overflow(offset, len, &new_end) || new_end > buffer_.size()) return 0;
  *start = offset;
  return new_end;
}

void* FixedBufferAllocator::alloc(std::size_t len, Alignment alignment) noexcept {
  std::size_t start;
  const std::size_t new_end = place(end_index(), len, alignment, &start);
  if (new_end == 0) return nullptr;  // len > 0, so a real placement never ends at 0
  end_index_.store(new_end, std::memory_order_relaxed);
  return buffer_.data() + start;
}

bool FixedBufferAllocator::resize(void* memory, std::size_t len, std::size_t new_len) noexcept {
  if (!is_last_allocation(memory, len)) return new_len <= len;  // a shrink keeps the tail unused
  const std::size_t start = static_cast<std::size_t>(static_cast<std::byte*>(memory) - buffer_.data());
  if (new_len > buffer_.size() - start) return false;
  end_index_.store(start + new_len, std::memory_order_relaxed);
  return true;
}

void FixedBufferAllocator::free(void* memory, std::size_t len) noexcept {
  if (is_last_allocation(memory, len)) end_index_.store(end_index() - len, std::memory_order_relaxed);
}

namespace {

FixedBufferAllocator& self(void* ctx) noexcept { return *static_cast<FixedBufferAllocator*>(ctx); }

void* fba_alloc(void* ctx, std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  return self(ctx).alloc(len, alignment);
}
bool fba_resize(void* ctx, void* memory, std::size_t len, Alignment, std::size_t new_len, std::uintptr_t) noexcept {
  return self(ctx).resize(memory, len, new_len);
}
// Moving cannot be cheaper than the caller's copy, so remap is resize or nothing.
void* fba_remap(void* ctx, void* memory, std::size_t len, Alignment, std::size_t new_len, std::uintptr_t) noexcept {
  return self(ctx).resize(memory, len, new_len) ? memory : nullptr;
}
void fba_free(void* ctx, void* memory, std::size_t len, Alignment, std::uintptr_t) noexcept {
  self(ctx).free(memory, len);
}

constexpr Allocator::VTable fba_vtable{fba_alloc, fba_resize, fba_remap, fba_free};

}  // namespace

// The thread-safe path: claim [start, new_end) with one compare-and-swap of the end.
// Relaxed ordering is enough: the atomic read-modify-write alone makes the claimed ranges
// disjoint, and the bytes themselves are not published through end_index_.
void* FixedBufferAllocator::alloc_concurrently(std::size_t len, Alignment alignment) noexcept {
  std::size_t end = end_index_.load(std::memory_order_relaxed);
  for (;;) {
    std::size_t start;
    const std::size_t new_end = place(end, len, alignment, &start);
    if (new_end == 0) return nullptr;
    if (end_index_.compare_exchange_weak(end, new_end, std::memory_order_relaxed)) return buffer_.data() + start;
  }
}

namespace {
void* fba_alloc_concurrently(void* ctx, std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  return self(ctx).alloc_concurrently(len, alignment);
}
constexpr Allocator::VTable fba_thread_safe_vtable{fba_alloc_concurrently, Allocator::no_resize, Allocator::no_remap,
                                                   Allocator::no_free};
}  // namespace

Allocator FixedBufferAllocator::allocator() noexcept { return Allocator(this, &fba_vtable); }
Allocator FixedBufferAllocator::thread_safe_allocator() noexcept { return Allocator(this, &fba_thread_safe_vtable); }

}  // namespace zheap
