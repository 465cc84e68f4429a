// ThreadSafeAllocator: makes any allocator usable from several threads at once.
//
// For: sharing an allocator that keeps unsynchronised state (an arena, a fixed buffer,
// a pool, a failing or logging wrapper) between threads, as Zig's ThreadSafeAllocator.
// Layout: the child handle and one Mutex; nothing is added to the blocks.
// Thread safety: every alloc / resize / remap / free of the child runs under the one
// mutex, so the child sees calls one at a time. Calls made on the child directly,
// bypassing this wrapper, are not protected. The wrapper must outlive every handle
// obtained from allocator(), and it cannot be copied or moved (handles point at it).
// Refuses nothing the child accepts.
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/vtable_for.hpp>
#include <zheap/mutex.hpp>

namespace zheap {

class ThreadSafeAllocator {
 public:
  explicit ThreadSafeAllocator(Allocator child) noexcept : child_(child) {}
  ThreadSafeAllocator(const ThreadSafeAllocator&) = delete;
  ThreadSafeAllocator& operator=(const ThreadSafeAllocator&) = delete;

  Allocator allocator() noexcept;
  Allocator child() const noexcept { return child_; }

  // alloc, resize, remap, free: THE CONTRACT's operations, with the signatures declared in
  // vtable_for.hpp; allocator() hands them out through vtable_for.
  ZHEAP_ALLOCATOR_OPERATIONS;

 private:
  Allocator child_;
  Mutex mutex_;
};

}  // namespace zheap
