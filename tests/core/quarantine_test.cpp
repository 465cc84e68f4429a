// Quarantine: batches, the ring's FIFO order and byte limit, what another thread's
// flush_batches() may hand back (never a small entry its thread has just added), and the
// searches that find a freed block's record wherever it is (batch or ring).
#include "debug/quarantine.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

namespace zheap::debug {
namespace {

using Entry = Quarantine::Entry;

constexpr std::size_t kLimit = std::size_t{1} << 20;

Entry entry_at(std::uintptr_t address, std::size_t bytes, StackId free_stack = 7) {
  Entry entry{};
  entry.address = address;
  entry.size = bytes;
  entry.base_len = bytes;
  entry.state = BlockState::quarantined;
  entry.free_stack = free_stack;
  return entry;
}

// Holds `entry` as the debug allocator does; returns what must leave.
std::vector<std::uintptr_t> hold(Quarantine& quarantine, const Entry& entry) {
  Entry leaving[Quarantine::kMaxEvicted];
  Entry evicted;
  const Quarantine::Added added = quarantine.add_to_batch(entry, &evicted);
  EXPECT_TRUE(added.held);
  std::vector<std::uintptr_t> left;
  if (added.evicted_one) left.push_back(evicted.address);
  if (!added.batch_due) return left;
  const std::size_t count = quarantine.move_batch(leaving);
  for (std::size_t i = 0; i < count; ++i) left.push_back(leaving[i].address);
  return left;
}

TEST(Quarantine, ABatchMovesOnWhenFullAndTheOldestLeaveFirst) {
  auto quarantine = std::make_unique<Quarantine>(kLimit);
  Entry evicted;
  for (std::size_t i = 1; i < Quarantine::kBatchEntries; ++i) {
    const Quarantine::Added added = quarantine->add_to_batch(entry_at(0x1000 * i, 64), &evicted);
    EXPECT_TRUE(added.held);
    EXPECT_FALSE(added.batch_due);
  }
  const Quarantine::Added last = quarantine->add_to_batch(entry_at(0x1000 * Quarantine::kBatchEntries, 64), &evicted);
  ASSERT_TRUE(last.batch_due);
  EXPECT_FALSE(last.evicted_one);
  Entry leaving[Quarantine::kMaxEvicted];
  EXPECT_EQ(quarantine->move_batch(leaving), 0u);  // far under the limit
  EXPECT_EQ(quarantine->bytes(), 64 * Quarantine::kBatchEntries);
  EXPECT_EQ(quarantine->move_batch(leaving), 0u);  // nothing left to move

  // Entries of a sixteenth of the limit each: the first batches move on at once (a batch
  // moves on once it holds limit/128 bytes), and past the limit the oldest leave first.
  std::vector<std::uintptr_t> left;
  for (std::uintptr_t i = 0; i < 40; ++i)
    for (std::uintptr_t address : hold(*quarantine, entry_at(0x100000 + i, kLimit / 16))) left.push_back(address);
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
  for (std::uintptr_t i = 0; i < 64; ++i) hold(*quarantine, entry_at(0x200000 + i, kLimit / 32));
  std::vector<std::uintptr_t> just_added;
  for (std::uintptr_t t = 0; t < 8; ++t) just_added.push_back(0x900000 + t);
  for (std::uintptr_t address : just_added) {
    // Each thread adds one small entry and leaves it in its batch, as a freeing thread
    // does between add_to_batch() and poisoning the block.
    std::thread adder([&quarantine, address] {
      Entry evicted;
      const Quarantine::Added added = quarantine->add_to_batch(entry_at(address, kLimit / 128 - 1), &evicted);
      EXPECT_TRUE(added.held);
      EXPECT_FALSE(added.batch_due);
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

// The record travels with the block: a search finds it, whole, in the thread's batch, in
// the ring once the batch moved on, and nowhere once it left.
TEST(Quarantine, FindSeesAnEntryInItsBatchThenInTheRingUntilItLeaves) {
  auto quarantine = std::make_unique<Quarantine>(kLimit);
  Entry found;
  Entry evicted;
  ASSERT_TRUE(quarantine->add_to_batch(entry_at(0x5000, 100, 42), &evicted).held);
  ASSERT_TRUE(quarantine->find(0x5000, &found));  // in the batch
  EXPECT_EQ(found.size, 100u);
  EXPECT_EQ(found.free_stack, 42u);
  EXPECT_EQ(found.state, BlockState::quarantined);
  ASSERT_TRUE(quarantine->find_containing(0x5000 + 99, &found));
  EXPECT_EQ(found.address, 0x5000u);
  EXPECT_FALSE(quarantine->find_containing(0x5000 + 100, &found));
  EXPECT_FALSE(quarantine->find(0x5001, &found));

  // A flush (leak_check's) moves the batch into the ring.
  quarantine->flush_batches([](const Entry&) { FAIL() << "nothing is over the limit"; });
  std::size_t in_ring = 0;
  quarantine->for_each_in_ring([&](const Entry& entry) { in_ring += entry.address == 0x5000; });
  EXPECT_EQ(in_ring, 1u);
  ASSERT_TRUE(quarantine->find(0x5000, &found));  // in the ring
  EXPECT_EQ(found.free_stack, 42u);

  // Push it out: entries worth the whole limit behind it.
  std::vector<std::uintptr_t> left;
  for (std::uintptr_t i = 0; i < 40; ++i)
    for (std::uintptr_t address : hold(*quarantine, entry_at(0x100000 + i, kLimit / 16))) left.push_back(address);
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.front(), 0x5000u);
  EXPECT_FALSE(quarantine->find(0x5000, &found));
  EXPECT_FALSE(quarantine->find_containing(0x5000 + 50, &found));
}

// Threads that share a slot can find its batch due and not moved yet: an entry added
// then goes straight to the ring's end (and, the ring full, its oldest leaves for it).
TEST(Quarantine, AnEntryPastADueBatchGoesStraightToTheRing) {
  auto quarantine = std::make_unique<Quarantine>(kLimit);
  Entry evicted;
  // Fill the ring to kCapacity entries of one byte (far under the byte limit).
  for (std::uintptr_t i = 0; i < Quarantine::kCapacity; ++i) {
    const std::vector<std::uintptr_t> left = hold(*quarantine, entry_at(0x10000000 + 16 * i, 1));
    ASSERT_TRUE(left.empty());
  }
  // A due batch left where it is, as by a thread between its add and its move_batch().
  for (std::uintptr_t i = 0; i < Quarantine::kBatchEntries; ++i)
    quarantine->add_to_batch(entry_at(0x20000000 + 16 * i, 1), &evicted);
  const Quarantine::Added added = quarantine->add_to_batch(entry_at(0x30000000, 1), &evicted);
  EXPECT_TRUE(added.held);
  EXPECT_TRUE(added.batch_due);
  ASSERT_TRUE(added.evicted_one);
  EXPECT_EQ(evicted.address, 0x10000000u);  // the ring's oldest
  Entry found;
  EXPECT_TRUE(quarantine->find(0x30000000, &found));
  std::uintptr_t newest = 0;
  quarantine->for_each_in_ring([&](const Entry& entry) { newest = entry.address; });
  EXPECT_EQ(newest, 0x30000000u);
  // The due batch still moves on whole, behind it.
  Entry leaving[Quarantine::kMaxEvicted];
  const std::size_t count = quarantine->move_batch(leaving);
  ASSERT_EQ(count, Quarantine::kBatchEntries);  // room made in the full ring
  EXPECT_EQ(leaving[0].address, 0x10000000u + 16);
  EXPECT_TRUE(quarantine->find(0x20000000, &found));
}

TEST(Quarantine, DrainHandsBackEveryEntryInBatchesAndRing) {
  auto quarantine = std::make_unique<Quarantine>(kLimit);
  for (std::uintptr_t i = 0; i < 100; ++i) hold(*quarantine, entry_at(0x4000 + 16 * i, 8));
  std::vector<std::uintptr_t> drained;
  quarantine->drain([&](const Entry& entry) { drained.push_back(entry.address); });
  EXPECT_EQ(drained.size(), 100u);
  EXPECT_EQ(quarantine->bytes(), 0u);
  Entry found;
  EXPECT_FALSE(quarantine->find(0x4000, &found));
}

}  // namespace
}  // namespace zheap::debug
