// BlockStartMap: a bit per 16-byte granule, in leaves of 1 GiB of address space. Checked
// against a std::set across leaf boundaries, for its enumeration (complete, in order),
// and with threads marking in one new leaf at once. No memory is needed at the addresses:
// the map never reads them.
#include "debug/block_start_map.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <thread>
#include <vector>

namespace zheap::debug {
namespace {

constexpr std::uintptr_t kGiB = std::uintptr_t{1} << 30;

std::vector<std::uintptr_t> enumerate(const BlockStartMap& map) {
  std::vector<std::uintptr_t> seen;
  map.for_each_marked([&](std::uintptr_t address) { seen.push_back(address); });
  return seen;
}

TEST(BlockStartMap, MarksMatchAModelAcrossLeaves) {
  BlockStartMap map;
  std::set<std::uintptr_t> model;
  std::mt19937_64 random(3);
  // Around three leaf boundaries, including each leaf's first and last granule.
  const std::uintptr_t centres[] = {5 * kGiB, 6 * kGiB, 0x7fff00000000};
  for (int step = 0; step < 100000; ++step) {
    const std::uintptr_t centre = centres[random() % 3];
    const std::uintptr_t address = centre - 4096 * 16 + (random() % 8192) * 16;
    ASSERT_EQ(map.marked(address), model.count(address) == 1) << step;
    if (model.count(address) == 1) {
      map.unmark(address);
      model.erase(address);
    } else {
      ASSERT_TRUE(map.mark(address));
      model.insert(address);
    }
  }
  EXPECT_EQ(enumerate(map), std::vector<std::uintptr_t>(model.begin(), model.end()));
  for (std::uintptr_t centre : centres) {
    ASSERT_TRUE(map.mark(centre));  // the first granule of a leaf
    ASSERT_TRUE(map.mark(centre - 16));  // the last of the one before
    EXPECT_TRUE(map.marked(centre));
    EXPECT_TRUE(map.marked(centre - 16));
  }
  // Neighbouring granules stay apart.
  map.unmark(centres[0]);
  EXPECT_FALSE(map.marked(centres[0]));
  EXPECT_TRUE(map.marked(centres[0] - 16));
}

TEST(BlockStartMap, OnlyGranuleStartsBelowTheAddressLimitCanBeMarked) {
  BlockStartMap map;
  EXPECT_FALSE(map.mark(0));
  EXPECT_FALSE(map.mark(0x1008));
  EXPECT_FALSE(map.mark(std::uintptr_t{1} << 47));
  EXPECT_FALSE(map.marked(0x1008));
  EXPECT_FALSE(map.marked(std::uintptr_t{1} << 47));
  EXPECT_TRUE(map.mark(0x1000));
  EXPECT_TRUE(map.mark((std::uintptr_t{1} << 47) - 16));
  EXPECT_EQ(enumerate(map), (std::vector<std::uintptr_t>{0x1000, (std::uintptr_t{1} << 47) - 16}));
  // An address in a leaf never mapped is simply not marked.
  EXPECT_FALSE(map.marked(9 * kGiB));
}

TEST(BlockStartMap, ItsMappingsAreTheRootAndEachLeaf) {
  BlockStartMap map;
  AddressRange ranges[4];
  EXPECT_EQ(map.mappings(ranges, 4), 0u);
  ASSERT_TRUE(map.mark(3 * kGiB + 64));
  ASSERT_TRUE(map.mark(7 * kGiB + 64));
  ASSERT_EQ(map.mappings(ranges, 4), 3u);
  EXPECT_EQ(ranges[1].end - ranges[1].begin, BlockStartMap::kLeafBytes);
  EXPECT_EQ(ranges[2].end - ranges[2].begin, BlockStartMap::kLeafBytes);
  EXPECT_EQ(map.mappings(ranges, 1), 3u);  // says how many there are, writes what fits
}

TEST(BlockStartMap, ThreadsMarkingInOneNewLeafAtOnceLoseNothing) {
  // Each thread its own KiB-aligned words (the caller's ordering the map asks for), all
  // in one leaf that none of them finds mapped: they race to map it and to widen its
  // bounds, first and last word included.
  for (int round = 0; round < 20; ++round) {
    BlockStartMap map;
    constexpr int kThreads = 8;
    constexpr std::uintptr_t kPerThread = 64;  // granules: one word
    constexpr std::uintptr_t kLeaf = 11 * kGiB;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&map, t] {
        // Threads 0 and 1 take the leaf's first and last words, the rest words between.
        const std::uintptr_t word = t == 0 ? 0 : t == 1 ? kGiB - 1024 : static_cast<std::uintptr_t>(t) * 4096 * 1024;
        for (std::uintptr_t g = 0; g < kPerThread; ++g) ASSERT_TRUE(map.mark(kLeaf + word + g * 16));
      });
    }
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(enumerate(map).size(), kThreads * kPerThread) << round;
  }
}

}  // namespace
}  // namespace zheap::debug
