// BlockTable: the debug allocator's side table keeps every record findable through growth
// and backward-shift deletion (checked against std::set under random churn).
#include "debug/block_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace zheap::debug {
namespace {

BlockRecord record_at(std::uintptr_t address, std::size_t size = 16) {
  BlockRecord record{};
  record.address = address;
  record.size = size;
  return record;
}

bool contains(BlockTable& table, std::uintptr_t address) {
  BlockTable::Shard& shard = table.shard_for(address);
  MutexLock guard(shard.lock);
  return table.find(shard, address) != nullptr;
}

TEST(BlockTable, RandomChurnMatchesAModel) {
  BlockTable table;
  std::set<std::uintptr_t> model;
  std::mt19937_64 random(42);
  for (int step = 0; step < 200000; ++step) {
    // Few distinct addresses, 16-byte aligned like real blocks: long probe chains, many
    // erase-then-insert cycles on the same keys.
    const std::uintptr_t address = 0x10000 + (random() % 4096) * 16;
    BlockTable::Shard& shard = table.shard_for(address);
    MutexLock guard(shard.lock);
    BlockRecord* found = table.find(shard, address);
    ASSERT_EQ(found != nullptr, model.count(address) == 1) << step;
    if (found != nullptr) {
      ASSERT_EQ(found->address, address);
      table.erase(shard, found);
      model.erase(address);
    } else {
      ASSERT_TRUE(table.insert(shard, record_at(address)));
      model.insert(address);
    }
  }
  std::size_t visited = 0;
  table.for_each([&](const BlockRecord& record) {
    ++visited;
    EXPECT_EQ(model.count(record.address), 1u);
  });
  EXPECT_EQ(visited, model.size());
  for (std::uintptr_t address : model) EXPECT_TRUE(contains(table, address));
}

TEST(BlockTable, DenseClustersStayFindableThroughEveryGrowth) {
  // Blocks of one 64 KiB stretch take neighbouring slots (the hash keeps locality), so
  // dense stretches make long clusters, some of which wrap round the end of a shard's
  // array: the growth in place re-places them (and, when a probe runs off the end of the
  // doubled array, rehashes into a new mapping instead). Every record must be found after
  // each insert, with its contents, and erasing half of them must leave the rest.
  BlockTable table;
  std::vector<std::uintptr_t> addresses;
  std::mt19937_64 random(7);
  for (int stretch = 0; stretch < 48; ++stretch) {
    const std::uintptr_t base = (0x100000 + (random() % 100000)) << 16;
    const int blocks = 200 + static_cast<int>(random() % 2000);
    for (int b = 0; b < blocks; ++b) addresses.push_back(base + static_cast<std::uintptr_t>(b) * 16);
  }
  std::shuffle(addresses.begin(), addresses.end(), random);
  std::set<std::uintptr_t> model;
  for (std::size_t n = 0; n < addresses.size(); ++n) {
    const std::uintptr_t address = addresses[n];
    if (!model.insert(address).second) continue;  // two stretches may overlap
    BlockTable::Shard& shard = table.shard_for(address);
    {
      MutexLock guard(shard.lock);
      ASSERT_TRUE(table.insert(shard, record_at(address, n)));
    }
    if (n % 4096 == 0) {  // every record, now and then (a full check each insert is slow)
      for (std::uintptr_t known : model) ASSERT_TRUE(contains(table, known)) << n;
    }
  }
  for (std::uintptr_t address : model) {
    BlockTable::Shard& shard = table.shard_for(address);
    MutexLock guard(shard.lock);
    const BlockRecord* found = table.find(shard, address);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->address, address);
  }
  std::size_t erased = 0;
  for (auto it = model.begin(); it != model.end();) {
    if (erased++ % 2 == 0) {
      BlockTable::Shard& shard = table.shard_for(*it);
      MutexLock guard(shard.lock);
      table.erase(shard, table.find(shard, *it));
      it = model.erase(it);
    } else {
      ++it;
    }
  }
  for (std::uintptr_t address : model) ASSERT_TRUE(contains(table, address));
  std::size_t visited = 0;
  table.for_each([&](const BlockRecord&) { ++visited; });
  EXPECT_EQ(visited, model.size());
}

TEST(BlockTable, FindContainingLooksInsideBlocks) {
  BlockTable table;
  for (std::uintptr_t address : {0x1000u, 0x2000u, 0x3000u}) {
    BlockTable::Shard& shard = table.shard_for(address);
    MutexLock guard(shard.lock);
    ASSERT_TRUE(table.insert(shard, record_at(address, 0x100)));
  }
  BlockRecord out{};
  ASSERT_TRUE(table.find_containing(0x20ff, &out));
  EXPECT_EQ(out.address, 0x2000u);
  EXPECT_FALSE(table.find_containing(0x2100, &out));
  EXPECT_FALSE(table.find_containing(0xfff, &out));
}

}  // namespace
}  // namespace zheap::debug
