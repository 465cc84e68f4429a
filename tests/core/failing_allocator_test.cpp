// FailingAllocator's own semantics (Zig's): which call fails, and the counters.
#include <zheap/failing_allocator.hpp>
#include <zheap/page_allocator.hpp>

#include <gtest/gtest.h>

#include "leak_check.hpp"

namespace {
using zheap::FailingAllocator;

class FailingAllocatorTest : public LeakCheckedTest {};

TEST_F(FailingAllocatorTest, FailIndexAllocationsSucceedThenEveryLaterOneFails) {
  FailingAllocator failing(gpa(), {.fail_index = 3});
  auto a = failing.allocator();
  std::span<int> blocks[3];
  for (auto& block : blocks) {
    block = a.alloc<int>(4);
    ASSERT_NE(block.data(), nullptr);
  }
  EXPECT_FALSE(failing.has_induced_failure());
  EXPECT_EQ(a.alloc<int>(4).data(), nullptr);
  EXPECT_TRUE(failing.has_induced_failure());
  // A free does not bring allocations back: the count advances only on success.
  a.free(blocks[0]);
  EXPECT_EQ(a.alloc<int>(1).data(), nullptr);
  EXPECT_EQ(a.create<int>(5), nullptr);
  a.free(blocks[1]);
  a.free(blocks[2]);
  EXPECT_EQ(failing.allocations(), 3u);
  EXPECT_EQ(failing.deallocations(), 3u);
  EXPECT_EQ(failing.allocated_bytes(), 3 * 4 * sizeof(int));
  EXPECT_EQ(failing.freed_bytes(), failing.allocated_bytes());
}

TEST_F(FailingAllocatorTest, FailIndexZeroFailsTheFirstAllocation) {
  FailingAllocator failing(gpa(), {.fail_index = 0});
  EXPECT_EQ(failing.allocator().alloc<char>(1).data(), nullptr);
  EXPECT_TRUE(failing.has_induced_failure());
  EXPECT_EQ(failing.allocations(), 0u);
}

TEST_F(FailingAllocatorTest, DefaultOptionsNeverFail) {
  FailingAllocator failing(gpa());
  auto a = failing.allocator();
  for (int i = 0; i < 100; ++i) {
    auto block = a.alloc<char>(10);
    ASSERT_NE(block.data(), nullptr);
    a.free(block);
  }
  EXPECT_FALSE(failing.has_induced_failure());
  EXPECT_EQ(failing.allocations(), 100u);
}

TEST_F(FailingAllocatorTest, ResizeFailIndexCoversResizeAndRemapTogether) {
  // page_allocator resizes within a page always succeed, so only the injection refuses.
  FailingAllocator failing(zheap::page_allocator(), {.resize_fail_index = 2});
  auto a = failing.allocator();
  auto block = a.alloc<char>(100);
  ASSERT_NE(block.data(), nullptr);
  ASSERT_TRUE(a.resize(block, 200));  // resize 0
  block = {block.data(), 200};
  auto same = a.remap(block, 50);  // remap 1 (shrinks in place)
  ASSERT_EQ(same.data(), block.data());
  block = same;
  EXPECT_FALSE(a.resize(block, 60));  // resize 2: injected
  EXPECT_TRUE(failing.has_induced_failure());
  EXPECT_EQ(a.remap(block, 60).data(), nullptr);
  // realloc still succeeds: it falls back to allocate + copy + free.
  auto moved = a.realloc(block, 60);
  ASSERT_NE(moved.data(), nullptr);
  EXPECT_EQ(failing.allocated_bytes(), 100u + 100u + 60u);
  EXPECT_EQ(failing.freed_bytes(), 150u + 50u);
  a.free(moved);
  EXPECT_EQ(failing.allocations(), 2u);
  EXPECT_EQ(failing.deallocations(), 2u);
}

TEST_F(FailingAllocatorTest, FailuresOfTheChildAreNotCountedAsInduced) {
  FailingAllocator failing(gpa());
  EXPECT_EQ(failing.allocator().alloc<char>(std::size_t{1} << 62).data(), nullptr);
  EXPECT_FALSE(failing.has_induced_failure());
  EXPECT_EQ(failing.allocations(), 0u);
}
}  // namespace
