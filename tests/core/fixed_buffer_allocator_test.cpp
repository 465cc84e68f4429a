// What is special to FixedBufferAllocator: placement inside the caller's buffer, the
// last-allocation rules, owns_ptr/owns_slice, and the lock-free thread-safe handle.
#include <zheap/fixed_buffer_allocator.hpp>

#include <gtest/gtest.h>

#include <cstdint>

#include <algorithm>
#include <cstring>
#include <latch>
#include <thread>
#include <vector>

namespace {
using zheap::Alignment;
using zheap::FixedBufferAllocator;

struct Fixture : ::testing::Test {
  alignas(4096) std::byte storage[64 * 1024];
  FixedBufferAllocator fba{std::span<std::byte>(storage)};
};
using FixedBufferAllocatorTest = Fixture;

TEST_F(FixedBufferAllocatorTest, HonoursAlignmentsInsideTheBuffer) {
  auto a = fba.allocator();
  for (std::size_t align = 1; align <= 4096; align <<= 1) {
    fba.reset();
    ASSERT_NE(a.alloc<char>(1).data(), nullptr);  // start off the buffer's own alignment
    auto span = a.alloc<char>(100, Alignment::of_bytes(align));
    ASSERT_NE(span.data(), nullptr) << align;
    EXPECT_TRUE(Alignment::of_bytes(align).check(span.data())) << align;
    EXPECT_TRUE(fba.owns_slice(span));
    // No more padding than the alignment needs.
    EXPECT_LT(static_cast<std::size_t>(reinterpret_cast<std::byte*>(span.data()) - storage), 1 + align);
  }
}

TEST_F(FixedBufferAllocatorTest, LargeAlignmentsFitOnlyWhenTheBoundaryIsInside) {
  auto a = fba.allocator();
  for (unsigned log2 : {16u, 20u, 30u, 40u}) {
    fba.reset();
    ASSERT_NE(a.alloc<char>(1).data(), nullptr);
    const auto alignment = Alignment::from_log2(log2);
    const auto base = reinterpret_cast<std::uintptr_t>(storage);
    const bool fits = alignment.forward(base + 1) + 8 <= base + sizeof storage;
    auto span = a.alloc<char>(8, alignment);
    if (fits) {
      ASSERT_NE(span.data(), nullptr) << log2;
      EXPECT_TRUE(alignment.check(span.data()));
    } else {
      EXPECT_EQ(span.data(), nullptr) << log2;
      EXPECT_EQ(fba.end_index(), 1u);  // a failed request changes nothing
    }
  }
}

TEST_F(FixedBufferAllocatorTest, RequestsLargerThanWhatIsLeftFail) {
  auto a = fba.allocator();
  EXPECT_EQ(a.alloc<char>(sizeof storage + 1).data(), nullptr);
  auto all = a.alloc<char>(sizeof storage);
  ASSERT_NE(all.data(), nullptr);
  EXPECT_EQ(a.alloc<char>(1).data(), nullptr);
  EXPECT_EQ(a.alloc<char>(SIZE_MAX).data(), nullptr);
}

TEST_F(FixedBufferAllocatorTest, ZeroLengthRequestsUseNoSpace) {
  auto span = fba.allocator().alloc<long>(0);
  EXPECT_NE(span.data(), nullptr);
  EXPECT_EQ(fba.end_index(), 0u);
  fba.allocator().free(span);
  EXPECT_EQ(fba.end_index(), 0u);
}

TEST_F(FixedBufferAllocatorTest, OnlyTheLastAllocationIsReallyFreed) {
  auto a = fba.allocator();
  auto first = a.alloc<char>(10);
  auto last = a.alloc<char>(20);
  a.free(first);
  EXPECT_EQ(fba.end_index(), 30u);
  a.free(last);
  EXPECT_EQ(fba.end_index(), 10u);
  EXPECT_EQ(a.alloc<char>(20).data(), last.data());
}

TEST_F(FixedBufferAllocatorTest, OnlyTheLastAllocationGrowsInPlace) {
  auto a = fba.allocator();
  auto first = a.alloc<char>(10);
  auto last = a.alloc<char>(20);
  EXPECT_FALSE(a.resize(first, 11));
  EXPECT_TRUE(a.resize(first, 5));  // shrinks keep the tail unused
  EXPECT_EQ(fba.end_index(), 30u);
  EXPECT_TRUE(a.resize(last, sizeof storage - 10));  // up to the very end
  EXPECT_EQ(fba.end_index(), sizeof storage);
  last = {last.data(), sizeof storage - 10};
  EXPECT_FALSE(a.resize(last, sizeof storage - 9));
  EXPECT_TRUE(a.resize(last, 1));
  EXPECT_EQ(fba.end_index(), 11u);
  // remap is resize or nothing.
  std::span<char> one(last.data(), 1);
  EXPECT_EQ(a.remap(one, 100).data(), last.data());
  EXPECT_EQ(a.remap(first.first(5), 100).data(), nullptr);
}

TEST_F(FixedBufferAllocatorTest, ResetMakesTheWholeBufferFreeAgain) {
  auto a = fba.allocator();
  auto span = a.alloc<char>(1000);
  fba.reset();
  EXPECT_EQ(fba.end_index(), 0u);
  EXPECT_EQ(a.alloc<char>(1000).data(), span.data());
}

TEST_F(FixedBufferAllocatorTest, OwnsPtrAndOwnsSliceMeanInsideTheBuffer) {
  EXPECT_TRUE(fba.owns_ptr(storage));
  EXPECT_TRUE(fba.owns_ptr(storage + sizeof storage - 1));
  EXPECT_FALSE(fba.owns_ptr(storage + sizeof storage));
  // The byte before the buffer, computed as an address: `storage - 1` would be UB.
  const auto* before = reinterpret_cast<const std::byte*>(reinterpret_cast<std::uintptr_t>(storage) - 1);
  EXPECT_FALSE(fba.owns_ptr(before));
  int elsewhere = 0;
  EXPECT_FALSE(fba.owns_ptr(&elsewhere));
  EXPECT_TRUE(fba.owns_slice(std::span<const std::byte>(storage, sizeof storage)));
  EXPECT_TRUE(fba.owns_slice(std::span<const std::byte>(storage + sizeof storage, 0)));
  EXPECT_FALSE(fba.owns_slice(std::span<const std::byte>(storage + 1, sizeof storage)));
  EXPECT_FALSE(fba.owns_slice(std::span<const std::byte>(before, 2)));
  EXPECT_TRUE(fba.owns_slice(std::span<int>(reinterpret_cast<int*>(storage) + 4, 4)));
}

TEST_F(FixedBufferAllocatorTest, ThreadSafeHandleOnlyAllocates) {
  auto a = fba.thread_safe_allocator();
  auto span = a.alloc<char>(10);
  ASSERT_NE(span.data(), nullptr);
  EXPECT_FALSE(a.resize(span, 20));
  EXPECT_EQ(a.remap(span, 20).data(), nullptr);
  a.free(span);
  EXPECT_EQ(fba.end_index(), 10u);  // even the last block stays
}

TEST(FixedBufferAllocatorThreads, FourThreadsGetDistinctNonOverlappingBlocks) {
  std::vector<std::byte> storage(1 << 20);
  FixedBufferAllocator fba{std::span<std::byte>(storage)};
  const zheap::Allocator shared = fba.thread_safe_allocator();

  struct Block {
    unsigned char* data;
    std::size_t len;
    unsigned char owner;
  };
  constexpr int threads = 4;
  std::vector<std::vector<Block>> blocks(threads);
  std::vector<std::thread> workers;
  std::latch start(threads);  // release all four together, so that they race for the end
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();
      std::size_t len = 1 + static_cast<std::size_t>(t);
      for (;;) {
        len = len % 61 + 1;
        const auto alignment = Alignment::of_bytes(std::size_t{1} << (len % 5));
        auto span = shared.alloc<unsigned char>(len, alignment);
        if (span.data() == nullptr) break;  // the buffer is used up
        EXPECT_TRUE(alignment.check(span.data()));
        std::memset(span.data(), t + 1, len);
        blocks[t].push_back({span.data(), len, static_cast<unsigned char>(t + 1)});
      }
    });
  }
  for (auto& w : workers) w.join();

  std::vector<Block> all;
  std::size_t total = 0;
  for (const auto& per_thread : blocks) {
    for (const Block& b : per_thread) {
      all.push_back(b);
      total += b.len;
      // Every byte still holds its writer's mark: no other thread wrote over it.
      for (std::size_t i = 0; i < b.len; ++i) ASSERT_EQ(b.data[i], b.owner);
    }
  }
  std::sort(all.begin(), all.end(), [](const Block& x, const Block& y) { return x.data < y.data; });
  for (std::size_t i = 1; i < all.size(); ++i) ASSERT_LE(all[i - 1].data + all[i - 1].len, all[i].data);
  for (const Block& b : all) ASSERT_TRUE(fba.owns_slice(std::span<unsigned char>(b.data, b.len)));
  EXPECT_LE(total, storage.size());
  EXPECT_GT(total, storage.size() / 2);  // padding costs under half of the buffer
}
}  // namespace
