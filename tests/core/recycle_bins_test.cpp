// RecycleBins: a kept block comes back only to its own thread, only for a length it
// covers, within the per-class and per-thread bounds; drain() gives back every block.
#include "debug/recycle_bins.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace zheap::debug {
namespace {

using Block = RecycleBins::Block;

// Distinct fake addresses: the bins never touch the memory they keep.
void* fake(std::uintptr_t n) { return reinterpret_cast<void*>(0x100000 + n * 0x1000); }

class RecycleBinsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(exclusive_thread_slot(), kThreadSlots) << "the bins serve the first threads only"; }
  std::unique_ptr<RecycleBins> bins = std::make_unique<RecycleBins>();
};

TEST_F(RecycleBinsTest, AKeptBlockComesBackForItsLengthWithItsOwner) {
  ASSERT_TRUE(bins->keep({fake(1), 80, 7}));
  Block out{};
  ASSERT_TRUE(bins->take(80, &out));
  EXPECT_EQ(out.base, fake(1));
  EXPECT_EQ(out.length, 80u);
  EXPECT_EQ(out.owner, 7u);
  EXPECT_FALSE(bins->take(80, &out));  // taken once
}

TEST_F(RecycleBinsTest, ABlockServesOnlyLengthsItCovers) {
  ASSERT_TRUE(bins->keep({fake(1), 80, 0}));
  Block out{};
  EXPECT_FALSE(bins->take(81, &out));
  EXPECT_FALSE(bins->take(96, &out));
  ASSERT_TRUE(bins->take(65, &out));  // the same granule class: 80 bytes cover 65
  EXPECT_EQ(out.base, fake(1));
}

TEST_F(RecycleBinsTest, TheLatestKeptIsTakenFirst) {
  ASSERT_TRUE(bins->keep({fake(1), 48, 0}));
  ASSERT_TRUE(bins->keep({fake(2), 48, 0}));
  Block out{};
  ASSERT_TRUE(bins->take(48, &out));
  EXPECT_EQ(out.base, fake(2));  // the one most likely still in cache
  ASSERT_TRUE(bins->take(48, &out));
  EXPECT_EQ(out.base, fake(1));
}

TEST_F(RecycleBinsTest, BigBlocksAreRefused) {
  EXPECT_FALSE(bins->keep({fake(1), RecycleBins::kMaxBytes + RecycleBins::kGranule, 0}));
  EXPECT_TRUE(bins->keep({fake(2), RecycleBins::kMaxBytes, 0}));
  Block out{};
  EXPECT_FALSE(bins->take(RecycleBins::kMaxBytes + 1, &out));
}

TEST_F(RecycleBinsTest, AClassHoldsAtMostItsShareAndAThreadAtMostItsBytes) {
  for (std::size_t i = 0; i < RecycleBins::kPerClass; ++i) ASSERT_TRUE(bins->keep({fake(i), 32, 0}));
  EXPECT_FALSE(bins->keep({fake(100), 32, 0}));
  // Fill the other classes with the largest blocks until the thread's bytes refuse one.
  std::size_t kept_bytes = RecycleBins::kPerClass * 32;
  std::size_t n = 200;
  for (std::size_t length = RecycleBins::kMaxBytes; length > 32; length -= RecycleBins::kGranule) {
    for (std::size_t i = 0; i < RecycleBins::kPerClass; ++i) {
      const bool kept = bins->keep({fake(n++), length, 0});
      EXPECT_EQ(kept, kept_bytes + length <= RecycleBins::kMaxBytesPerThread) << length;
      if (kept) kept_bytes += length;
    }
  }
  Block out{};
  ASSERT_TRUE(bins->take(RecycleBins::kMaxBytes, &out));  // taking makes room again
  EXPECT_TRUE(bins->keep({fake(n++), RecycleBins::kMaxBytes, 0}));
}

TEST_F(RecycleBinsTest, AnotherThreadDoesNotTakeWhatThisOneKept) {
  ASSERT_TRUE(bins->keep({fake(1), 64, 0}));
  bool taken_there = true;
  std::thread([&] {
    Block out{};
    taken_there = bins->take(64, &out);
  }).join();
  EXPECT_FALSE(taken_there);
  Block out{};
  EXPECT_TRUE(bins->take(64, &out));
}

TEST_F(RecycleBinsTest, DrainGivesBackEveryThreadsBlocksOnce) {
  ASSERT_TRUE(bins->keep({fake(1), 64, 0}));
  ASSERT_TRUE(bins->keep({fake(2), 512, 0}));
  std::thread([&] { ASSERT_TRUE(bins->keep({fake(3), 64, 1})); }).join();
  std::multiset<void*> released;
  bins->drain([&](const Block& block) { released.insert(block.base); });
  EXPECT_EQ(released, (std::multiset<void*>{fake(1), fake(2), fake(3)}));
  Block out{};
  EXPECT_FALSE(bins->take(64, &out));
  released.clear();
  bins->drain([&](const Block& block) { released.insert(block.base); });
  EXPECT_TRUE(released.empty());
}

}  // namespace
}  // namespace zheap::debug
