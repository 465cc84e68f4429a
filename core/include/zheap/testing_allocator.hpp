// TestingAllocator: what std.testing.allocator is to Zig — an allocator for tests that
// knows every block still live, so a test can fail on a leak.
//
// For: tests. Pass allocator() to the code under test; at the end, leaked_blocks() and
// leaked_bytes() say what was not freed, and for_each_leaked_block() lists the blocks
// (tests/support/leak_check.hpp turns that into a GoogleTest failure).
// Layout: blocks come from the child unchanged (page_allocator() by default); their
// addresses, lengths and alignments sit in a LiveBlockTable on pages of its own, so the
// bookkeeping never calls malloc.
// Frees, resizes and remaps of an address it never handed out are refused (not passed
// to the child) and counted in invalid_calls(); checking the length and alignment of
// each call is ValidatingAllocator's job.
// Thread safety: the table is behind a Mutex; the child is called outside it, so the
// child must be thread-safe if the TestingAllocator is shared between threads.
// The destructor does not free leaked blocks (they are the evidence); call
// release_leaked_blocks() for that. Not copyable (handles point at it).
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/vtable_for.hpp>
#include <zheap/live_block_table.hpp>
#include <zheap/mutex.hpp>
#include <zheap/page_allocator.hpp>

namespace zheap {

class TestingAllocator {
 public:
  explicit TestingAllocator(Allocator child = page_allocator()) noexcept : child_(child) {}
  TestingAllocator(const TestingAllocator&) = delete;
  TestingAllocator& operator=(const TestingAllocator&) = delete;

  Allocator allocator() noexcept;

  // Blocks allocated and not freed yet, and their lengths summed (as last resized).
  std::size_t leaked_blocks() const noexcept;
  std::size_t leaked_bytes() const noexcept;
  // Calls on addresses this allocator did not hand out (or had already seen freed).
  std::size_t invalid_calls() const noexcept;
  // Calls f(const LiveBlockTable::Block&) for each live block; f must not allocate from
  // this allocator.
  template <class F>
  void for_each_leaked_block(F&& f) const {
    MutexLock lock(mutex_);
    live_.for_each(f);
  }
  // Frees every live block to the child; afterwards leaked_blocks() is 0.
  void release_leaked_blocks() noexcept;

  // alloc, resize, remap, free: THE CONTRACT's operations, with the signatures declared in
  // vtable_for.hpp; allocator() hands them out through vtable_for.
  ZHEAP_ALLOCATOR_OPERATIONS;

 private:
  bool is_live(const void* memory) noexcept;

  Allocator child_;
  mutable Mutex mutex_;
  LiveBlockTable live_;
  std::size_t invalid_calls_ = 0;
};

}  // namespace zheap
