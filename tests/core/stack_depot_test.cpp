// StackDepot: one id per distinct stack, the frames back from an id, bounded, thread-safe.
#include "debug/stack_depot.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace zheap::debug {
namespace {

std::vector<std::uintptr_t> frames_of(const StackDepot& depot, StackId id) {
  const std::span<const std::uintptr_t> frames = depot.get(id);
  return {frames.begin(), frames.end()};
}

TEST(StackDepot, EqualStacksShareAnIdAndDifferentOnesDoNot) {
  StackDepot depot(1024, 1 << 16);
  const std::vector<std::uintptr_t> a{0x1000, 0x2000, 0x3000};
  const std::vector<std::uintptr_t> b{0x1000, 0x2000, 0x3001};
  const std::vector<std::uintptr_t> prefix{0x1000, 0x2000};
  const StackId id_a = depot.insert(a);
  EXPECT_NE(id_a, kNoStack);
  EXPECT_EQ(depot.insert(a), id_a);
  EXPECT_NE(depot.insert(b), id_a);
  EXPECT_NE(depot.insert(prefix), id_a);
  EXPECT_EQ(depot.stack_count(), 3u);
  EXPECT_EQ(frames_of(depot, id_a), a);
  EXPECT_EQ(frames_of(depot, depot.insert(b)), b);
}

TEST(StackDepot, EmptyStacksAndUnknownIdsHaveNoFrames) {
  StackDepot depot(16, 256);
  EXPECT_EQ(depot.insert({}), kNoStack);
  EXPECT_TRUE(depot.get(kNoStack).empty());
  EXPECT_TRUE(depot.get(12345).empty());
}

TEST(StackDepot, RefusesStacksPastItsLimitButKeepsServingOldOnes) {
  StackDepot depot(8, 1024);
  std::vector<StackId> ids;
  for (std::uintptr_t i = 1; i <= 8; ++i) ids.push_back(depot.insert(std::vector<std::uintptr_t>{i, i + 1}));
  for (StackId id : ids) EXPECT_NE(id, kNoStack);
  EXPECT_EQ(depot.insert(std::vector<std::uintptr_t>{99, 100}), kNoStack);
  EXPECT_EQ(depot.refused_count(), 1u);
  EXPECT_EQ(depot.insert(std::vector<std::uintptr_t>{3, 4}), ids[2]);
  EXPECT_EQ(frames_of(depot, ids[7]), (std::vector<std::uintptr_t>{8, 9}));
}

TEST(StackDepot, ConcurrentInsertsOfTheSameStacksAgreeOnIds) {
  StackDepot depot(1 << 12, 1 << 16);
  constexpr int kStacks = 500;
  std::vector<std::vector<StackId>> seen(4, std::vector<StackId>(kStacks));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        for (int s = 0; s < kStacks; ++s) {
          const int i = (s * 7 + t * 13) % kStacks;
          const std::uintptr_t frames[3] = {static_cast<std::uintptr_t>(i), 0xabc, static_cast<std::uintptr_t>(i) * 3};
          seen[static_cast<std::size_t>(t)][static_cast<std::size_t>(i)] = depot.insert(frames);
        }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(depot.stack_count(), static_cast<std::size_t>(kStacks));
  for (int t = 1; t < 4; ++t) EXPECT_EQ(seen[static_cast<std::size_t>(t)], seen[0]);
}

}  // namespace
}  // namespace zheap::debug
