// FailingAllocator: fault injection, to prove that code handles out of memory.
//
// For: tests. Wraps a child and makes the (fail_index + 1)-th allocation fail, as Zig's
// std.testing.FailingAllocator: `fail_index` allocations succeed, then that one and
// every later one return nullptr (the count only advances on success). Likewise
// `resize_fail_index` for resize and remap together (they share one count).
// A test typically runs a scenario once to count its allocations, then again for every
// k below that count with fail_index = k, checking that nothing leaks.
// Counters: allocations / deallocations made through the child, and the bytes they
// covered (resize and remap move allocated_bytes / freed_bytes by the difference).
// Layout: nothing added to the blocks. Thread safety: none; wrap in a
// ThreadSafeAllocator to share it. Not copyable (handles point at it).
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/vtable_for.hpp>

#include <cstdint>

namespace zheap {

struct FailingOptions {
  std::size_t fail_index = SIZE_MAX;
  std::size_t resize_fail_index = SIZE_MAX;
};

class FailingAllocator {
 public:
  explicit FailingAllocator(Allocator child, FailingOptions options = {}) noexcept
      : child_(child), options_(options) {}
  FailingAllocator(const FailingAllocator&) = delete;
  FailingAllocator& operator=(const FailingAllocator&) = delete;

  Allocator allocator() noexcept;

  std::size_t allocations() const noexcept { return allocations_; }
  std::size_t deallocations() const noexcept { return deallocations_; }
  std::size_t allocated_bytes() const noexcept { return allocated_bytes_; }
  std::size_t freed_bytes() const noexcept { return freed_bytes_; }
  // Whether a failure was injected (not: whether the child itself ran out).
  bool has_induced_failure() const noexcept { return has_induced_failure_; }

  // alloc, resize, remap, free: THE CONTRACT's operations, with the signatures declared in
  // vtable_for.hpp; allocator() hands them out through vtable_for.
  ZHEAP_ALLOCATOR_OPERATIONS;

 private:
  void account_resize(std::size_t len, std::size_t new_len) noexcept;

  Allocator child_;
  FailingOptions options_;
  std::size_t alloc_index_ = 0;
  std::size_t resize_index_ = 0;
  std::size_t allocations_ = 0;
  std::size_t deallocations_ = 0;
  std::size_t allocated_bytes_ = 0;
  std::size_t freed_bytes_ = 0;
  bool has_induced_failure_ = false;
};

}  // namespace zheap
