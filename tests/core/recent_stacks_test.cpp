// RecentStacks: always the depot's id, whether the thread's cache has the stack or not.
#include "debug/recent_stacks.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace zheap::debug {
namespace {

std::vector<std::uintptr_t> stack_of(std::size_t depth, std::uintptr_t seed) {
  std::vector<std::uintptr_t> frames(depth);
  for (std::size_t i = 0; i < depth; ++i) frames[i] = 0x400000 + seed * 0x1000 + i * 16;
  return frames;
}

class RecentStacksTest : public ::testing::Test {
 protected:
  StackDepot depot{4096, 1 << 18};
  std::unique_ptr<RecentStacks> recent = std::make_unique<RecentStacks>(depot);
};

TEST_F(RecentStacksTest, AStackAskedAgainGetsTheDepotsIdWithoutANewStack) {
  const std::vector<std::uintptr_t> a = stack_of(30, 1);
  const StackId id = recent->intern(a);
  ASSERT_NE(id, kNoStack);
  EXPECT_EQ(recent->intern(a), id);
  EXPECT_EQ(depot.insert(a), id);
  EXPECT_EQ(depot.stack_count(), 1u);
}

TEST_F(RecentStacksTest, StacksThatShareTheirInnermostFramesKeepTheirOwnIds) {
  // Same depth and same first four frames: the same cache entry; they differ further out.
  std::vector<std::vector<std::uintptr_t>> stacks;
  for (std::uintptr_t outer = 0; outer < 8; ++outer) {
    std::vector<std::uintptr_t> frames = stack_of(12, 7);
    frames[11] = 0x900000 + outer;
    stacks.push_back(frames);
  }
  std::vector<StackId> ids;
  for (int round = 0; round < 3; ++round)
    for (std::size_t i = 0; i < stacks.size(); ++i) {
      const StackId id = recent->intern(stacks[i]);
      if (round == 0) ids.push_back(id);
      EXPECT_EQ(id, ids[i]);
      EXPECT_EQ(id, depot.insert(stacks[i]));
    }
  EXPECT_EQ(depot.stack_count(), stacks.size());
}

TEST_F(RecentStacksTest, APrefixIsAnotherStack) {
  const std::vector<std::uintptr_t> full = stack_of(20, 3);
  const std::vector<std::uintptr_t> prefix(full.begin(), full.begin() + 10);
  const StackId full_id = recent->intern(full);
  const StackId prefix_id = recent->intern(prefix);
  EXPECT_NE(full_id, prefix_id);
  EXPECT_EQ(recent->intern(full), full_id);
  EXPECT_EQ(recent->intern(prefix), prefix_id);
}

TEST_F(RecentStacksTest, StacksDeeperThanItKeepsAndEmptyOnesGoToTheDepot) {
  const std::vector<std::uintptr_t> deep = stack_of(RecentStacks::kMaxFrames + 10, 5);
  const StackId id = recent->intern(deep);
  EXPECT_EQ(recent->intern(deep), id);
  EXPECT_EQ(depot.insert(deep), id);
  EXPECT_EQ(recent->intern({}), kNoStack);
}

TEST_F(RecentStacksTest, ManyStacksThroughOneThreadAllKeepTheirIds) {
  // More stacks than entries: evicted ones come back with the id they had.
  std::vector<StackId> ids;
  for (std::uintptr_t seed = 0; seed < 3 * RecentStacks::kEntries; ++seed) ids.push_back(recent->intern(stack_of(30, seed)));
  for (std::uintptr_t seed = 0; seed < 3 * RecentStacks::kEntries; ++seed) {
    EXPECT_EQ(recent->intern(stack_of(30, seed)), ids[seed]);
    EXPECT_EQ(depot.insert(stack_of(30, seed)), ids[seed]);
  }
}

TEST_F(RecentStacksTest, ThreadsAtOnceGetTheSameIdsAsTheDepot) {
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<int> mismatches(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round)
        for (std::uintptr_t seed = 0; seed < 40; ++seed) {
          const std::vector<std::uintptr_t> frames = stack_of(10 + seed % 20, seed + (round % 2) * 100);
          if (recent->intern(frames) != depot.insert(frames)) ++mismatches[t];
        }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  EXPECT_EQ(depot.stack_count(), 80u);
}

}  // namespace
}  // namespace zheap::debug
