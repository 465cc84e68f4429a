// What is special to MemoryPool: objects built and destroyed in slots, LIFO slot reuse,
// preheating, the non-growable cap, and reset.
#include <zheap/memory_pool.hpp>

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>

#include "spy_allocator.hpp"

namespace {
using zheap::Alignment;
using zheap::MemoryPool;
using zheap::MemoryPoolOptions;
using zheap::ResetMode;
using zheap::testing::SpyAllocator;

struct Counted {
  static inline int alive = 0;
  explicit Counted(int value, std::string name) : value(value), name(std::move(name)) { ++alive; }
  ~Counted() { --alive; }
  int value;
  std::string name;
};

TEST(MemoryPool, CreateConstructsAndDestroyRunsTheDestructor) {
  SpyAllocator backing;
  MemoryPool<Counted> pool(backing.allocator());
  Counted* c = pool.create(7, std::string(40, 'n'));  // a heap-allocated string: ~T must run
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->value, 7);
  EXPECT_EQ(c->name, std::string(40, 'n'));
  EXPECT_EQ(Counted::alive, 1);
  pool.destroy(c);
  EXPECT_EQ(Counted::alive, 0);
  pool.destroy(nullptr);
}

TEST(MemoryPool, TheSlotFreedLastIsReusedFirst) {
  SpyAllocator backing;
  MemoryPool<long> pool(backing.allocator());
  long* a = pool.create(1);
  long* b = pool.create(2);
  long* c = pool.create(3);
  EXPECT_TRUE(a != b && b != c && a != c);
  pool.destroy(a);
  pool.destroy(c);
  pool.destroy(b);
  EXPECT_EQ(pool.create(0), b);
  EXPECT_EQ(pool.create(0), c);
  EXPECT_EQ(pool.create(0), a);
  EXPECT_EQ(pool.slot_count(), 3u);  // no new slot was made
}

TEST(MemoryPool, SlotsHoldAPointerAndKeepTheAskedAlignment) {
  static_assert(MemoryPool<char>::slot_size == sizeof(void*));
  static_assert(MemoryPool<char>::slot_alignment == alignof(void*));
  using Aligned = MemoryPool<int, MemoryPoolOptions{.alignment = 64}>;
  static_assert(Aligned::slot_alignment == 64 && Aligned::slot_size == 64);
  using PageAligned = MemoryPool<int, MemoryPoolOptions{.alignment = 4096}>;

  SpyAllocator backing;
  Aligned pool(backing.allocator());
  PageAligned pages(backing.allocator());
  std::set<int*> seen;
  for (int i = 0; i < 300; ++i) {
    int* p = pool.create(i);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(Alignment::of_bytes(64).check(p));
    EXPECT_TRUE(seen.insert(p).second);
    int* q = pages.create(i);
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(Alignment::of_bytes(4096).check(q));
  }
}

TEST(MemoryPool, PreheatedSlotsServeCreateWithoutTheBackingAllocator) {
  SpyAllocator backing;
  auto pool = MemoryPool<double>::preheated(backing.allocator(), 100);
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ(pool->slot_count(), 100u);
  const std::size_t calls = backing.alloc_calls + backing.resize_calls;
  for (int i = 0; i < 100; ++i) ASSERT_NE(pool->create(1.0), nullptr);
  EXPECT_EQ(backing.alloc_calls + backing.resize_calls, calls);
  EXPECT_EQ(pool->slot_count(), 100u);
}

TEST(MemoryPool, ANonGrowablePoolStopsAtItsPreheatedSlots) {
  using Fixed = MemoryPool<int, MemoryPoolOptions{.growable = false}>;
  SpyAllocator backing;
  {
    Fixed empty(backing.allocator());
    EXPECT_EQ(empty.create(1), nullptr);  // never preheated: no slots at all
  }
  auto pool = Fixed::preheated(backing.allocator(), 3);
  ASSERT_TRUE(pool.has_value());
  EXPECT_EQ(pool->slot_limit(), 3u);
  int* a = pool->create(1);
  int* b = pool->create(2);
  int* c = pool->create(3);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(pool->create(4), nullptr);
  pool->destroy(b);
  EXPECT_EQ(pool->create(5), b);
  EXPECT_EQ(pool->create(6), nullptr);

  // After a reset the same number of slots can be made again, and no more.
  EXPECT_TRUE(pool->reset(ResetMode::retain_capacity));
  for (int i = 0; i < 3; ++i) EXPECT_NE(pool->create(i), nullptr);
  EXPECT_EQ(pool->create(9), nullptr);

  EXPECT_TRUE(pool->preheat(2));  // preheating raises the cap
  EXPECT_NE(pool->create(10), nullptr);
  EXPECT_NE(pool->create(11), nullptr);
  EXPECT_EQ(pool->create(12), nullptr);
}

TEST(MemoryPool, ResetFreeAllReturnsTheMemory) {
  SpyAllocator backing;
  MemoryPool<long> pool(backing.allocator());
  for (int i = 0; i < 1000; ++i) ASSERT_NE(pool.create(i), nullptr);
  EXPECT_GT(backing.live_blocks(), 0u);
  EXPECT_TRUE(pool.reset(ResetMode::free_all));
  EXPECT_EQ(backing.live_blocks(), 0u);
  EXPECT_EQ(pool.slot_count(), 0u);
  EXPECT_EQ(pool.query_capacity(), 0u);
  EXPECT_NE(pool.create(1), nullptr);
}

TEST(MemoryPool, ResetRetainingCapacityServesTheSameWorkAgainWithoutTheBacking) {
  SpyAllocator backing;
  MemoryPool<long> pool(backing.allocator());
  for (int i = 0; i < 1000; ++i) ASSERT_NE(pool.create(i), nullptr);
  EXPECT_TRUE(pool.reset(ResetMode::retain_capacity));
  EXPECT_EQ(backing.live_blocks(), 1u);
  const std::size_t calls = backing.alloc_calls + backing.resize_calls;
  for (int i = 0; i < 1000; ++i) ASSERT_NE(pool.create(i), nullptr);
  EXPECT_EQ(backing.alloc_calls + backing.resize_calls, calls);
}

TEST(MemoryPool, OutOfMemoryIsNullptr) {
  SpyAllocator backing;
  backing.fail_alloc = true;
  MemoryPool<int> pool(backing.allocator());
  EXPECT_EQ(pool.create(1), nullptr);
  EXPECT_FALSE(pool.preheat(10));
  EXPECT_FALSE(MemoryPool<int>::preheated(backing.allocator(), 10).has_value());
  EXPECT_FALSE(pool.preheat(SIZE_MAX));  // count * slot size overflows
}

TEST(MemoryPool, AThrowingConstructorLeavesTheSlotFree) {
  struct Throws {
    explicit Throws(bool fail) {
      if (fail) throw std::runtime_error("constructor failed");
    }
  };
  SpyAllocator backing;
  MemoryPool<Throws> pool(backing.allocator());
  Throws* first = pool.create(false);
  pool.destroy(first);
  EXPECT_THROW(pool.create(true), std::runtime_error);
  EXPECT_EQ(pool.create(false), first);  // the slot went back on the free list
}

TEST(MemoryPool, MovingKeepsTheSlots) {
  SpyAllocator backing;
  MemoryPool<int> pool(backing.allocator());
  int* kept = pool.create(42);
  int* freed = pool.create(0);
  pool.destroy(freed);
  MemoryPool<int> moved(std::move(pool));
  EXPECT_EQ(*kept, 42);
  EXPECT_EQ(moved.create(1), freed);
  EXPECT_EQ(pool.slot_count(), 0u);
  EXPECT_NE(pool.create(2), nullptr);  // the moved-from pool is empty but usable
}
}  // namespace
