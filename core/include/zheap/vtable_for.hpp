// vtable_for<Impl>: the Allocator::VTable of an allocator class whose objects are the ctx.
//
// For: every stateful allocator (arena, fixed buffer, the wrappers). Such a class writes
// the four operations of THE CONTRACT (allocator.hpp) as ordinary member functions, declared
// with ZHEAP_ALLOCATOR_OPERATIONS (or written inline, as a class template does), and hands
// out `Allocator(this, &vtable_for<Self>)`. The entries here only cast ctx back to the
// object and call the member; AllocatorImplementation states what they need.
// The members are public: calling one directly is the same call, under the same contract,
// as calling it through the handle (allocators built on another one do, e.g.
// StackFallbackAllocator on its FixedBufferAllocator, MemoryPool on its ArenaAllocator), and
// the concept can only check members it can see (private ones would need a friend that the
// concept does not get). Stateless allocators (page, c, jemalloc) have no object to call
// and keep their own free functions.
// One VTable per class, constant-initialised (no static constructor), shared by every
// object of the class.
#pragma once

#include <zheap/allocator.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>

namespace zheap {

// The four operations of THE CONTRACT as noexcept member functions, with the VTable's
// arguments less the ctx.
template <class Impl>
concept AllocatorImplementation = requires(Impl& impl, void* memory, std::size_t len, Alignment alignment,
                                           std::size_t new_len, std::uintptr_t ret_addr) {
  { impl.alloc(len, alignment, ret_addr) } noexcept -> std::same_as<void*>;
  { impl.resize(memory, len, alignment, new_len, ret_addr) } noexcept -> std::same_as<bool>;
  { impl.remap(memory, len, alignment, new_len, ret_addr) } noexcept -> std::same_as<void*>;
  { impl.free(memory, len, alignment, ret_addr) } noexcept -> std::same_as<void>;
};

// Declares those four members inside a class, so that their signatures are written here once
// rather than again in every allocator. Used as `ZHEAP_ALLOCATOR_OPERATIONS;` in the public
// section; the class defines the four members itself (usually in its .cpp).
#define ZHEAP_ALLOCATOR_OPERATIONS                                                                           \
  void* alloc(std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept;                      \
  bool resize(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,                      \
              std::uintptr_t ret_addr) noexcept;                                                            \
  void* remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,                      \
              std::uintptr_t ret_addr) noexcept;                                                            \
  void free(void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept

template <AllocatorImplementation Impl>
inline constexpr Allocator::VTable vtable_for{
    [](void* ctx, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept -> void* {
      return static_cast<Impl*>(ctx)->alloc(len, alignment, ret_addr);
    },
    [](void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
       std::uintptr_t ret_addr) noexcept -> bool {
      return static_cast<Impl*>(ctx)->resize(memory, len, alignment, new_len, ret_addr);
    },
    [](void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
       std::uintptr_t ret_addr) noexcept -> void* {
      return static_cast<Impl*>(ctx)->remap(memory, len, alignment, new_len, ret_addr);
    },
    [](void* ctx, void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
      static_cast<Impl*>(ctx)->free(memory, len, alignment, ret_addr);
    },
};

}  // namespace zheap
