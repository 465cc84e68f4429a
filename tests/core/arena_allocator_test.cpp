// What is special to ArenaAllocator: buffers from the child, last-allocation rollback,
// reset modes and query_capacity. The shared contract is in the conformance suite.
#include <zheap/arena_allocator.hpp>
#include <zheap/page_allocator.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <utility>

#include "spy_allocator.hpp"

namespace {
using zheap::Alignment;
using zheap::ArenaAllocator;
using zheap::ResetMode;
using zheap::testing::SpyAllocator;

// The arena's per-buffer header: a next pointer and a length.
constexpr std::size_t header = 2 * sizeof(void*);

TEST(ArenaAllocator, HonoursAlignmentsFromOneByteToAbovePageSize) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  auto a = arena.allocator();
  for (std::size_t align = 1; align <= (std::size_t{1} << 16); align <<= 1) {
    for (std::size_t len : {std::size_t{1}, std::size_t{3}, std::size_t{100}, std::size_t{5000}}) {
      auto span = a.alloc<unsigned char>(len, Alignment::of_bytes(align));
      ASSERT_NE(span.data(), nullptr) << align << " " << len;
      EXPECT_TRUE(Alignment::of_bytes(align).check(span.data())) << align << " " << len;
      std::memset(span.data(), 0xab, len);
    }
  }
}

TEST(ArenaAllocator, ZeroLengthRequestsTouchNothing) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  auto span = arena.allocator().alloc<double>(0);
  EXPECT_NE(span.data(), nullptr);
  EXPECT_EQ(span.size(), 0u);
  EXPECT_EQ(child.alloc_calls, 0u);
  EXPECT_EQ(arena.query_capacity(), 0u);
}

TEST(ArenaAllocator, BlocksAreDistinctAndGrowthIsGeometric) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  auto a = arena.allocator();
  std::set<char*> seen;
  for (int i = 0; i < 20000; ++i) {
    auto span = a.alloc<char>(100);
    ASSERT_NE(span.data(), nullptr);
    span[0] = static_cast<char>(i);
    span[99] = static_cast<char>(i);
    EXPECT_TRUE(seen.insert(span.data()).second);
  }
  // 2 MB in blocks that grow by half each time: a few dozen child calls at most.
  EXPECT_LT(child.alloc_calls, 40u);
  EXPECT_GE(arena.query_capacity(), 20000u * 100u);
}

TEST(ArenaAllocator, FreeingTheLastAllocationRollsBack) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  auto a = arena.allocator();
  auto first = a.alloc<char>(64);
  auto last = a.alloc<char>(64);
  a.free(last);
  auto again = a.alloc<char>(64);
  EXPECT_EQ(again.data(), last.data());  // the space of the freed last block is reused

  a.free(first);  // not the last allocation: a no-op
  auto after = a.alloc<char>(64);
  EXPECT_NE(after.data(), first.data());
  EXPECT_GT(after.data(), again.data());
}

TEST(ArenaAllocator, OnlyTheLastAllocationGrowsInPlace) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  auto a = arena.allocator();
  a.free(a.alloc<char>(4096));  // leaves one buffer with room for what follows
  auto first = a.alloc<char>(32);
  auto last = a.alloc<char>(32);
  EXPECT_FALSE(a.resize(first, 64));  // would overwrite `last`
  EXPECT_TRUE(a.resize(first, 16));   // shrinking any block is fine
  EXPECT_TRUE(a.resize(last, 200));
  last = {last.data(), 200};
  EXPECT_TRUE(a.resize(last, 8));  // the last block shrinks, and the next one follows it
  auto next = a.alloc<char>(1);
  EXPECT_EQ(next.data(), last.data() + 8);
  // Beyond what the buffer holds: not in place.
  EXPECT_FALSE(a.resize(next, arena.query_capacity() + 1));
  // remap is resize or nothing: it never moves a block.
  auto moved = a.remap(next, 10);
  EXPECT_EQ(moved.data(), next.data());
  EXPECT_EQ(a.remap(moved, arena.query_capacity() + 1).data(), nullptr);
}

TEST(ArenaAllocator, QueryCapacityCountsUsableBytesOfEveryBuffer) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  EXPECT_EQ(arena.query_capacity(), 0u);
  auto a = arena.allocator();
  for (int i = 0; i < 50; ++i) ASSERT_NE(a.alloc<char>(1000).data(), nullptr);
  ASSERT_GE(child.live_blocks(), 1u);
  EXPECT_EQ(arena.query_capacity(), child.live_bytes() - header * child.live_blocks());
  EXPECT_GE(arena.query_capacity(), 50u * 1000u);
}

TEST(ArenaAllocator, ResetFreeAllReturnsEveryBuffer) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  for (int i = 0; i < 100; ++i) ASSERT_NE(arena.allocator().alloc<char>(4000).data(), nullptr);
  EXPECT_TRUE(arena.reset(ResetMode::free_all));
  EXPECT_EQ(child.live_blocks(), 0u);
  EXPECT_EQ(arena.query_capacity(), 0u);
  EXPECT_NE(arena.allocator().alloc<char>(10).data(), nullptr);  // still usable
}

TEST(ArenaAllocator, ResetRetainCapacityKeepsOneBufferAsLargeAsAll) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  for (int i = 0; i < 100; ++i) ASSERT_NE(arena.allocator().alloc<char>(4000).data(), nullptr);
  ASSERT_GT(child.live_blocks(), 1u);
  const std::size_t capacity = arena.query_capacity();
  EXPECT_TRUE(arena.reset(ResetMode::retain_capacity));
  EXPECT_EQ(child.live_blocks(), 1u);
  EXPECT_EQ(arena.query_capacity(), capacity);
  // The same work again is served without asking the child.
  const std::size_t calls = child.alloc_calls + child.resize_calls;
  for (int i = 0; i < 100; ++i) ASSERT_NE(arena.allocator().alloc<char>(4000).data(), nullptr);
  EXPECT_EQ(child.alloc_calls + child.resize_calls, calls);
}

TEST(ArenaAllocator, ResetRetainWithLimitKeepsAtMostTheLimit) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  for (int i = 0; i < 100; ++i) ASSERT_NE(arena.allocator().alloc<char>(4000).data(), nullptr);
  const std::size_t capacity = arena.query_capacity();
  EXPECT_TRUE(arena.reset(ResetMode::retain_with_limit, 10000));
  EXPECT_EQ(arena.query_capacity(), 10000u);
  EXPECT_EQ(child.live_blocks(), 1u);
  // A limit above the capacity keeps what there is.
  for (int i = 0; i < 100; ++i) ASSERT_NE(arena.allocator().alloc<char>(4000).data(), nullptr);
  const std::size_t grown = arena.query_capacity();
  EXPECT_TRUE(arena.reset(ResetMode::retain_with_limit, grown * 4));
  EXPECT_EQ(arena.query_capacity(), grown);
  EXPECT_GT(capacity, 0u);
  // A limit of zero is free_all.
  EXPECT_TRUE(arena.reset(ResetMode::retain_with_limit, 0));
  EXPECT_EQ(child.live_blocks(), 0u);
  EXPECT_EQ(arena.query_capacity(), 0u);
}

TEST(ArenaAllocator, ResetReportsFalseWhenTheRetainedBufferCannotBeHad) {
  SpyAllocator child;
  ArenaAllocator arena(child.allocator());
  for (int i = 0; i < 100; ++i) ASSERT_NE(arena.allocator().alloc<char>(4000).data(), nullptr);
  ASSERT_GT(child.live_blocks(), 1u);  // so the kept buffer would have to grow
  child.fail_alloc = true;
  child.fail_resize = true;
  EXPECT_FALSE(arena.reset(ResetMode::retain_capacity));
  EXPECT_EQ(child.live_blocks(), 0u);
  EXPECT_EQ(arena.query_capacity(), 0u);
  EXPECT_EQ(arena.allocator().alloc<char>(1).data(), nullptr);
  child.fail_alloc = false;
  EXPECT_NE(arena.allocator().alloc<char>(1).data(), nullptr);
}

TEST(ArenaAllocator, OutOfMemoryInTheChildIsAnEmptySpan) {
  SpyAllocator child;
  child.fail_alloc = true;
  ArenaAllocator arena(child.allocator());
  EXPECT_EQ(arena.allocator().alloc<char>(10).data(), nullptr);
  EXPECT_EQ(arena.allocator().alloc<char>(SIZE_MAX / 2).data(), nullptr);
  EXPECT_EQ(arena.query_capacity(), 0u);
}

TEST(ArenaAllocator, DestructorAndMoveHandBuffersOn) {
  SpyAllocator child;
  {
    ArenaAllocator arena(child.allocator());
    auto kept = arena.allocator().alloc<int>(1000);
    ASSERT_NE(kept.data(), nullptr);
    kept[999] = 42;
    ArenaAllocator moved(std::move(arena));
    EXPECT_EQ(arena.query_capacity(), 0u);
    EXPECT_GT(moved.query_capacity(), 0u);
    EXPECT_EQ(kept[999], 42);
    const std::size_t blocks = child.live_blocks();
    EXPECT_NE(moved.allocator().alloc<int>(1).data(), nullptr);
    EXPECT_EQ(child.live_blocks(), blocks);
    arena = std::move(moved);
    EXPECT_GT(arena.query_capacity(), 0u);
  }
  EXPECT_EQ(child.live_blocks(), 0u);
}

TEST(ArenaAllocator, GrowsOnePageAllocatorBufferInPlaceWhenItCan) {
  // Over page_allocator a full buffer is first grown with mremap; whether that succeeds
  // depends on the neighbouring mappings, so only the outcome is checked: every block is
  // usable and the capacity covers them.
  ArenaAllocator arena(zheap::page_allocator());
  auto a = arena.allocator();
  for (int i = 0; i < 1000; ++i) {
    auto span = a.alloc<char>(4096);
    ASSERT_NE(span.data(), nullptr);
    span[0] = span[4095] = 'x';
  }
  EXPECT_GE(arena.query_capacity(), 1000u * 4096u);
}
}  // namespace
