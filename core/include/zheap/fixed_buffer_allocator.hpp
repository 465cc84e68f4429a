// FixedBufferAllocator: a bump allocator over a buffer the caller provides (Zig's
// std.heap.FixedBufferAllocator).
//
// For: scratch memory with a known bound (often on the stack), no system calls at all.
// Layout: blocks are carved from the front of the buffer in order; `end_index` is the offset
// of the first free byte. Alignment is honoured by skipping bytes, so any power of two is
// served as long as the padding fits.
// Frees and resizes: only the LAST allocation can be freed (the end moves back to its
// start) or grown/shrunk in place; any other block can shrink (it keeps its bytes) and its
// free is a no-op. reset() frees everything at once.
// Thread safety: allocator() is for one thread at a time. thread_safe_allocator() may be
// used from many threads at once: it only allocates (a lock-free compare-and-swap of the
// end), its resize and remap always fail and its free does nothing. Do not mix the two
// handles while threads are running.
// Owns no memory and never calls malloc; the buffer must outlive the allocator, and the
// handles point to this object (do not move it while they are in use).
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/vtable_for.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace zheap {

class FixedBufferAllocator {
 public:
  explicit FixedBufferAllocator(std::span<std::byte> buffer) noexcept : buffer_(buffer) {}
  FixedBufferAllocator(const FixedBufferAllocator&) = delete;
  FixedBufferAllocator& operator=(const FixedBufferAllocator&) = delete;

  Allocator allocator() noexcept;
  // Allocation only, safe from several threads at once (see above).
  Allocator thread_safe_allocator() noexcept;

  // Forgets every allocation; the whole buffer is free again.
  void reset() noexcept { end_index_.store(0, std::memory_order_relaxed); }

  // Whether `p` points into the buffer (allocated or not).
  bool owns_ptr(const void* p) const noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    const auto start = reinterpret_cast<std::uintptr_t>(buffer_.data());
    return address >= start && address - start < buffer_.size();
  }
  // Whether all of `s` lies inside the buffer.
  template <class T>
  bool owns_slice(std::span<T> s) const noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(s.data());
    const auto start = reinterpret_cast<std::uintptr_t>(buffer_.data());
    return address >= start && address - start <= buffer_.size() && s.size_bytes() <= buffer_.size() - (address - start);
  }

  std::span<std::byte> buffer() const noexcept { return buffer_; }
  // Bytes from the start of the buffer to the end of the last allocation.
  std::size_t end_index() const noexcept { return end_index_.load(std::memory_order_relaxed); }

  // alloc, resize, remap, free: THE CONTRACT's operations (signatures in vtable_for.hpp);
  // allocator() hands them out through vtable_for, and allocators built on this one
  // (StackFallbackAllocator) call them directly. Return addresses are not recorded and
  // resize / free need no alignment: those arguments are ignored.
  ZHEAP_ALLOCATOR_OPERATIONS;
  void* alloc_concurrently(std::size_t len, Alignment alignment) noexcept;  // thread_safe_allocator()'s alloc

 private:
  // Whether [memory, memory + len) ends exactly where the next allocation would start.
  bool is_last_allocation(const void* memory, std::size_t len) const noexcept {
    return static_cast<const std::byte*>(memory) + len == buffer_.data() + end_index();
  }

  std::span<std::byte> buffer_;
  // Atomic only for thread_safe_allocator(); the single-threaded paths use relaxed loads and
  // stores, which compile to plain moves.
  std::atomic<std::size_t> end_index_{0};
};

}  // namespace zheap
