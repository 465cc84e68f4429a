// Quarantine: batches, the ring's FIFO order and byte limit, and what another thread's
// flush_batches() may hand back (never a small entry its thread has just added).
#include "debug/quarantine.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace zheap::debug {
namespace {

using Entry = Quarantine::Entry;

constexpr std::size_t kLimit = std::size_t{1} << 20;

// Holds `entry` as the debug allocator does; returns what must leave.
std::vector<std::uintptr_t> hold(Quarantine& quarantine, Entry entry) {
  Entry full[Quarantine::kBatchEntries];
  Entry leaving[Quarantine::kMaxEvicted];
  const std::size_t batch = quarantine.add_to_batch(entry, full);
  std::vector<std::uintptr_t> left;
  if (batch == 0) return left;
  const std::size_t count = quarantine.take_batch(full, batch, leaving);
  for (std::size_t i = 0; i < count; ++i) left.push_back(leaving[i].address);
  return left;
}

TEST(Quarantine, ABatchMovesOnWhenFullAndTheOldestLeaveFirst) {
  auto quarantine = std::make_unique<Quarantine>(kLimit);
  Entry full[Quarantine::kBatchEntries];
  for (std::size_t i = 1; i < Quarantine::kBatchEntries; ++i)
    EXPECT_EQ(quarantine->add_to_batch({0x1000 * i, 64}, full), 0u);
  ASSERT_EQ(quarantine->add_to_batch({0x1000 * Quarantine::kBatchEntries, 64}, full), Quarantine::kBatchEntries);
  for (std::size_t i = 0; i < Quarantine::kBatchEntries; ++i) EXPECT_EQ(full[i].address, 0x1000 * (i + 1));
  Entry leaving[Quarantine::kMaxEvicted];
  EXPECT_EQ(quarantine->take_batch(full, Quarantine::kBatchEntries, leaving), 0u);  // far under the limit
  EXPECT_EQ(quarantine->bytes(), 64 * Quarantine::kBatchEntries);

  // Entries of a sixteenth of the limit each: the first batches move on at once (a batch
  // moves on once it holds limit/128 bytes), and past the limit the oldest leave first.
  std::vector<std::uintptr_t> left;
  for (std::uintptr_t i = 0; i < 40; ++i)
    for (std::uintptr_t address : hold(*quarantine, {0x100000 + i, kLimit / 16})) left.push_back(address);
  ASSERT_FALSE(left.empty());
  for (std::size_t i = 0; i < Quarantine::kBatchEntries; ++i) EXPECT_EQ(left[i], 0x1000 * (i + 1));
  for (std::size_t i = Quarantine::kBatchEntries + 1; i < left.size(); ++i) EXPECT_LT(left[i - 1], left[i]);
  EXPECT_LE(quarantine->bytes(), kLimit);
}

TEST(Quarantine, OnlyBigEntriesCouldLeaveThroughAnotherThreadsFlush) {
  auto quarantine = std::make_unique<Quarantine>(kLimit);
  EXPECT_FALSE(quarantine->could_leave_from_flush(kLimit / 128 - 1));
  EXPECT_TRUE(quarantine->could_leave_from_flush(kLimit / 128));
  EXPECT_TRUE(quarantine->could_leave_from_flush(kLimit));
}

TEST(Quarantine, AnotherThreadsFlushNeverHandsBackASmallEntryJustAdded) {
  auto quarantine = std::make_unique<Quarantine>(kLimit);
  // The ring at its limit with entries of other threads, so that a flush must evict.
  for (std::uintptr_t i = 0; i < 64; ++i) hold(*quarantine, {0x200000 + i, kLimit / 32});
  std::vector<std::thread> adders;
  std::vector<std::uintptr_t> just_added;
  for (std::uintptr_t t = 0; t < 8; ++t) just_added.push_back(0x900000 + t);
  for (std::uintptr_t address : just_added) {
    // Each thread adds one small entry and leaves it in its batch, as a freeing thread
    // does between add_to_batch() and poisoning the block.
    std::thread adder([&quarantine, address] {
      Entry full[Quarantine::kBatchEntries];
      EXPECT_EQ(quarantine->add_to_batch({address, kLimit / 128 - 1}, full), 0u);
    });
    adder.join();
  }
  std::vector<std::uintptr_t> flushed;
  quarantine->flush_batches([&](const Entry& entry) { flushed.push_back(entry.address); });
  Entry leaving[Quarantine::kMaxEvicted];
  for (std::size_t count; (count = quarantine->pop_excess(leaving, Quarantine::kMaxEvicted)) != 0;)
    for (std::size_t i = 0; i < count; ++i) flushed.push_back(leaving[i].address);
  ASSERT_FALSE(flushed.empty());  // the ring was over its limit: older entries left
  for (std::uintptr_t address : flushed)
    for (std::uintptr_t added : just_added) EXPECT_NE(address, added);
  EXPECT_LE(quarantine->bytes(), kLimit);
}

}  // namespace
}  // namespace zheap::debug
