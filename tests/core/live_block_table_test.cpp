// LiveBlockTable: the address -> block map under TestingAllocator and ValidatingAllocator.
#include <zheap/live_block_table.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <unordered_map>

namespace {
using zheap::Alignment;

TEST(LiveBlockTable, AgreesWithAHashMapOverRandomInsertsAndErases) {
  zheap::LiveBlockTable table;
  std::unordered_map<std::uintptr_t, std::size_t> model;
  std::mt19937_64 random(7);
  std::size_t model_bytes = 0;
  for (int step = 0; step < 200000; ++step) {
    // Keys from a small range, 16-aligned, so probe runs collide and erase must shift.
    const std::uintptr_t key = 0x10000 + (random() % 5000) * 16;
    void* address = reinterpret_cast<void*>(key);
    const auto found = model.find(key);
    if (found == model.end()) {
      const std::size_t len = 1 + random() % 1000;
      ASSERT_TRUE(table.insert(address, len, Alignment::of_bytes(16)));
      model.emplace(key, len);
      model_bytes += len;
    } else if (random() % 4 == 0) {
      ASSERT_TRUE(table.set_len(address, found->second + 1));
      found->second += 1;
      model_bytes += 1;
    } else {
      ASSERT_TRUE(table.erase(address));
      model_bytes -= found->second;
      model.erase(found);
    }
    if (step % 1000 == 0) {
      for (const auto& [k, len] : model) {
        const auto* block = table.find(reinterpret_cast<void*>(k));
        ASSERT_NE(block, nullptr);
        ASSERT_EQ(block->len, len);
      }
    }
  }
  EXPECT_EQ(table.size(), model.size());
  EXPECT_EQ(table.total_bytes(), model_bytes);
  std::size_t visited = 0;
  table.for_each([&](const zheap::LiveBlockTable::Block& block) {
    ++visited;
    EXPECT_EQ(model.at(reinterpret_cast<std::uintptr_t>(block.address)), block.len);
  });
  EXPECT_EQ(visited, model.size());
  EXPECT_EQ(table.find(reinterpret_cast<void*>(0x8)), nullptr);
  EXPECT_FALSE(table.erase(reinterpret_cast<void*>(0x8)));
  EXPECT_FALSE(table.insert(nullptr, 1, Alignment::of_bytes(1)));
}
}  // namespace
