// TestingAllocator and its GoogleTest glue (tests/support/leak_check.hpp).
#include <zheap/testing_allocator.hpp>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>


#include "leak_check.hpp"

namespace {
using zheap::Alignment;
using zheap::TestingAllocator;

TEST(TestingAllocator, CountsLiveBlocksAndBytes) {
  TestingAllocator testing;
  auto a = testing.allocator();
  auto first = a.alloc<char>(100);
  auto second = a.alloc<std::uint32_t>(10);
  EXPECT_EQ(testing.leaked_blocks(), 2u);
  EXPECT_EQ(testing.leaked_bytes(), 140u);
  ASSERT_TRUE(a.resize(first, 300));  // page_allocator grows within the page
  first = {first.data(), 300};
  EXPECT_EQ(testing.leaked_bytes(), 340u);
  a.free(second);
  EXPECT_EQ(testing.leaked_blocks(), 1u);
  a.free(first);
  EXPECT_EQ(testing.leaked_blocks(), 0u);
  EXPECT_EQ(testing.leaked_bytes(), 0u);
  EXPECT_EQ(testing.invalid_calls(), 0u);
}

TEST(TestingAllocator, FollowsABlockThatRemapMoves) {
  TestingAllocator testing;
  auto a = testing.allocator();
  auto block = a.alloc<char>(4096);
  auto moved = a.remap(block, 1 << 22);
  ASSERT_NE(moved.data(), nullptr);
  EXPECT_EQ(testing.leaked_blocks(), 1u);
  EXPECT_EQ(testing.leaked_bytes(), std::size_t{1} << 22);
  a.free(moved);
  EXPECT_EQ(testing.leaked_blocks(), 0u);
}

TEST(TestingAllocator, RefusesAndCountsCallsOnUnknownBlocks) {
  TestingAllocator testing;
  auto a = testing.allocator();
  char not_ours[32];
  a.free(std::span<char>(not_ours));
  EXPECT_FALSE(a.resize(std::span<char>(not_ours), 16));
  EXPECT_EQ(testing.invalid_calls(), 2u);
}

TEST(TestingAllocator, ReleaseLeakedBlocksFreesThemAll) {
  TestingAllocator testing;
  for (int i = 0; i < 1000; ++i) ASSERT_NE(testing.allocator().alloc<char>(8).data(), nullptr);
  EXPECT_EQ(testing.leaked_blocks(), 1000u);
  testing.release_leaked_blocks();
  EXPECT_EQ(testing.leaked_blocks(), 0u);
  EXPECT_EQ(testing.leaked_bytes(), 0u);
}

TEST(LeakCheck, ALeakFailsTheTestWithTheBlockCountAndSizes) {
  EXPECT_NONFATAL_FAILURE(
      {
        LeakCheck leaks;
        auto a = leaks.allocator();
        auto kept = a.alloc<char>(123);
        auto freed = a.alloc<char>(7);
        a.free(freed);
        (void)kept;
      },
      "leaked 1 block(s), 123 bytes:\n  123 bytes (align 1) at 0x");
}

TEST(LeakCheck, NoLeakNoFailure) {
  LeakCheck leaks;
  auto a = leaks.allocator();
  a.free(a.alloc<int>(10));
}

class LeakCheckedFixture : public LeakCheckedTest {};
TEST_F(LeakCheckedFixture, AFixtureTestThatFreesEverythingPasses) {
  auto block = gpa().alloc<double>(3);
  ASSERT_NE(block.data(), nullptr);
  gpa().free(block);
}

}  // namespace
