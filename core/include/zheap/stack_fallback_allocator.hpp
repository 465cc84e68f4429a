// StackFallbackAllocator<N>: N bytes held inside the object, then a fallback allocator
// (Zig's std.heap.StackFallbackAllocator / stackFallback(N, fallback)).
//
// For: functions whose scratch memory is usually small: declared as a local, the common case
// never leaves the stack, and the rare large case still works.
// Layout: an inline N-byte buffer (aligned like max_align_t) served by a FixedBufferAllocator;
// a request that does not fit there goes to the fallback. Each block stays with the allocator
// that made it: free, resize and remap go to the inline buffer when it owns the pointer
// (owns_ptr), to the fallback otherwise. Inline blocks follow the FixedBufferAllocator's
// rules (only the last one can really be freed or resized; remap is resize or nothing).
// Thread safety: none (the inline buffer is a plain bump allocator).
// Differences from Zig: get() only returns the handle; it does not reset the inline buffer
// (so calling it twice is harmless). Not copyable or movable: the handle points inside it.
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/fixed_buffer_allocator.hpp>
#include <zheap/vtable_for.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace zheap {

template <std::size_t N>
class StackFallbackAllocator {
  static_assert(N > 0, "StackFallbackAllocator<0> would be the fallback itself");

 public:
  explicit StackFallbackAllocator(Allocator fallback) noexcept : fallback_(fallback) {}
  StackFallbackAllocator(const StackFallbackAllocator&) = delete;
  StackFallbackAllocator& operator=(const StackFallbackAllocator&) = delete;

  Allocator get() noexcept { return Allocator(this, &vtable_for<StackFallbackAllocator>); }
  Allocator fallback_allocator() const noexcept { return fallback_; }

  // Whether `p` lies in the inline buffer (then it was not served by the fallback).
  bool owns_ptr(const void* p) const noexcept { return inline_.owns_ptr(p); }

  // THE CONTRACT's operations; get() hands them out through vtable_for.
  void* alloc(std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
    if (void* p = inline_.alloc(len, alignment, ret_addr)) return p;
    return fallback_.raw_alloc(len, alignment, ret_addr);
  }
  bool resize(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
              std::uintptr_t ret_addr) noexcept {
    if (owns_ptr(memory)) return inline_.resize(memory, len, alignment, new_len, ret_addr);
    return fallback_.raw_resize(memory, len, alignment, new_len, ret_addr);
  }
  void* remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
              std::uintptr_t ret_addr) noexcept {
    if (owns_ptr(memory)) return inline_.remap(memory, len, alignment, new_len, ret_addr);
    return fallback_.raw_remap(memory, len, alignment, new_len, ret_addr);
  }
  void free(void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
    if (owns_ptr(memory)) return inline_.free(memory, len, alignment, ret_addr);
    fallback_.raw_free(memory, len, alignment, ret_addr);
  }

 private:
  Allocator fallback_;
  alignas(std::max_align_t) std::byte buffer_[N];
  FixedBufferAllocator inline_{std::span<std::byte>(buffer_, N)};
};

}  // namespace zheap
