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

#include <cstddef>
#include <span>

namespace zheap {

template <std::size_t N>
class StackFallbackAllocator {
  static_assert(N > 0, "StackFallbackAllocator<0> would be the fallback itself");

 public:
  explicit StackFallbackAllocator(Allocator fallback) noexcept : fallback_(fallback) {}
  StackFallbackAllocator(const StackFallbackAllocator&) = delete;
  StackFallbackAllocator& operator=(const StackFallbackAllocator&) = delete;

  Allocator get() noexcept { return Allocator(this, &vtable); }
  Allocator fallback_allocator() const noexcept { return fallback_; }

  // Whether `p` lies in the inline buffer (then it was not served by the fallback).
  bool owns_ptr(const void* p) const noexcept { return inline_.owns_ptr(p); }

 private:
  static StackFallbackAllocator& self(void* ctx) noexcept { return *static_cast<StackFallbackAllocator*>(ctx); }

  static void* alloc(void* ctx, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
    if (void* p = self(ctx).inline_.alloc(len, alignment)) return p;
    return self(ctx).fallback_.raw_alloc(len, alignment, ret_addr);
  }
  static bool resize(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                     std::uintptr_t ret_addr) noexcept {
    if (self(ctx).owns_ptr(memory)) return self(ctx).inline_.resize(memory, len, new_len);
    return self(ctx).fallback_.raw_resize(memory, len, alignment, new_len, ret_addr);
  }
  static void* remap(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                     std::uintptr_t ret_addr) noexcept {
    if (self(ctx).owns_ptr(memory)) return self(ctx).inline_.resize(memory, len, new_len) ? memory : nullptr;
    return self(ctx).fallback_.raw_remap(memory, len, alignment, new_len, ret_addr);
  }
  static void free(void* ctx, void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
    if (self(ctx).owns_ptr(memory)) return self(ctx).inline_.free(memory, len);
    self(ctx).fallback_.raw_free(memory, len, alignment, ret_addr);
  }
  static constexpr Allocator::VTable vtable{alloc, resize, remap, free};

  Allocator fallback_;
  alignas(std::max_align_t) std::byte buffer_[N];
  FixedBufferAllocator inline_{std::span<std::byte>(buffer_, N)};
};

}  // namespace zheap
