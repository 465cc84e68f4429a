// BlockTable: the debug allocator's records live in front of their blocks, found through
// the start map. Checked against a std::set under random churn, for their contents, for
// damage, and for pointers that are none of its blocks (the memory in front of which
// must not be read).
#include "debug/block_table.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <random>
#include <set>
#include <vector>

namespace zheap::debug {
namespace {

constexpr std::size_t kRedzone = 16;
constexpr std::size_t kOffset = BlockTable::header_offset_for(kRedzone);

// Memory for blocks: `slots` places, each with room for a record in front.
class Arena {
 public:
  explicit Arena(std::size_t slots) : bytes_(slots * kStride) {
    memory_ = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(memory_, MAP_FAILED);
  }
  ~Arena() { ::munmap(memory_, bytes_); }
  std::uintptr_t block(std::size_t slot) const {
    return reinterpret_cast<std::uintptr_t>(memory_) + slot * kStride + kOffset;
  }
  static constexpr std::size_t kStride = kOffset + 64;

 private:
  std::size_t bytes_;
  void* memory_;
};

BlockRecord record_at(std::uintptr_t address, std::size_t size = 16) {
  BlockRecord record{};
  record.address = address;
  record.size = size;
  record.allocation_stack = static_cast<StackId>(size * 3 + 1);
  return record;
}

BlockRecord* find(BlockTable& table, std::uintptr_t address) {
  BlockTable::Shard& shard = table.shard_for(address);
  MutexLock guard(shard.lock);
  return table.find(shard, address);
}

bool insert(BlockTable& table, const BlockRecord& record) {
  BlockTable::Shard& shard = table.shard_for(record.address);
  MutexLock guard(shard.lock);
  return table.insert(shard, record);
}

TEST(BlockTable, RandomChurnMatchesAModel) {
  Arena arena(4096);
  BlockTable table(kOffset);
  std::set<std::uintptr_t> model;
  std::mt19937_64 random(42);
  for (int step = 0; step < 200000; ++step) {
    const std::uintptr_t address = arena.block(random() % 4096);
    BlockTable::Shard& shard = table.shard_for(address);
    MutexLock guard(shard.lock);
    BlockRecord* found = table.find(shard, address);
    ASSERT_EQ(found != nullptr, model.count(address) == 1) << step;
    if (found != nullptr) {
      ASSERT_TRUE(BlockTable::intact(*found, address));
      ASSERT_EQ(found->size, address % 1000);
      table.erase(shard, found);
      model.erase(address);
    } else {
      ASSERT_TRUE(table.insert(shard, record_at(address, address % 1000)));
      model.insert(address);
    }
  }
  std::vector<std::uintptr_t> visited;
  table.for_each([&](const BlockRecord& record, std::uintptr_t address) {
    EXPECT_TRUE(BlockTable::intact(record, address));
    visited.push_back(address);
  });
  // Every block, once, in address order.
  EXPECT_EQ(visited, std::vector<std::uintptr_t>(model.begin(), model.end()));
  table.lock_all();
  EXPECT_EQ(table.size_while_locked(), model.size());
  table.unlock_all();
}

TEST(BlockTable, TheRecordIsInFrontOfItsBlockAndErasingWipesIt) {
  Arena arena(4);
  BlockTable table(kOffset);
  const std::uintptr_t address = arena.block(1);
  ASSERT_TRUE(insert(table, record_at(address, 100)));
  BlockRecord* found = find(table, address);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(found), address - kOffset);
  EXPECT_EQ(found->size, 100u);
  EXPECT_EQ(found->allocation_stack, 301u);
  EXPECT_EQ(found->seal, BlockRecord::kSeal);
  // Its neighbours are none of the table's.
  EXPECT_EQ(find(table, arena.block(0)), nullptr);
  EXPECT_EQ(find(table, arena.block(2)), nullptr);
  EXPECT_EQ(find(table, address + 16), nullptr);
  {
    BlockTable::Shard& shard = table.shard_for(address);
    MutexLock guard(shard.lock);
    table.erase(shard, found);
  }
  EXPECT_EQ(find(table, address), nullptr);
  const auto* wiped = reinterpret_cast<const unsigned char*>(address - kOffset);
  for (std::size_t i = 0; i < sizeof(BlockRecord); ++i) EXPECT_EQ(wiped[i], 0) << i;
}

TEST(BlockTable, ARecordAnUnderflowReachedIsNotIntact) {
  Arena arena(2);
  BlockTable table(kOffset);
  const std::uintptr_t address = arena.block(0);
  ASSERT_TRUE(insert(table, record_at(address, 64)));
  auto* bytes = reinterpret_cast<unsigned char*>(address);
  // The redzone alone: the record is untouched.
  std::memset(bytes - kRedzone, 0, kRedzone);
  ASSERT_TRUE(BlockTable::intact(*find(table, address), address));
  // One byte further: the seal, which sits next to the redzone.
  bytes[-static_cast<std::ptrdiff_t>(kRedzone) - 1] ^= 1;
  BlockRecord* damaged = find(table, address);
  ASSERT_NE(damaged, nullptr);  // still found: the map, not the record, says it is a block
  EXPECT_FALSE(BlockTable::intact(*damaged, address));
  damaged->seal = BlockRecord::kSeal;
  damaged->address ^= 0x40;  // a stray write into the record's first word
  EXPECT_FALSE(BlockTable::intact(*damaged, address));
  // Erasing a damaged record forgets its block all the same.
  {
    BlockTable::Shard& shard = table.shard_for(address);
    MutexLock guard(shard.lock);
    table.erase(shard, damaged);
  }
  EXPECT_EQ(find(table, address), nullptr);
}

TEST(BlockTable, PointersThatAreNoneOfItsBlocksAreAnsweredWithoutReadingInFrontOfThem) {
  // A page that cannot be read, then one that can: a pointer at the start of the second
  // has its would-be record on the first, so reading it would fault.
  const std::size_t page = 4096;
  auto* pages = static_cast<unsigned char*>(
      ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(pages, MAP_FAILED);
  ASSERT_EQ(::mprotect(pages, page, PROT_NONE), 0);
  Arena arena(2);
  BlockTable table(kOffset);
  ASSERT_TRUE(insert(table, record_at(arena.block(0))));  // the map exists
  int on_the_stack = 0;
  for (std::uintptr_t foreign : {reinterpret_cast<std::uintptr_t>(pages + page),
                                 reinterpret_cast<std::uintptr_t>(&on_the_stack), std::uintptr_t{0},
                                 std::uintptr_t{8}, arena.block(0) + 8, std::uintptr_t{1} << 47,
                                 ~std::uintptr_t{15}})
    EXPECT_EQ(find(table, foreign), nullptr) << std::hex << foreign;
  ::munmap(pages, 2 * page);
  // Nor can such an address be inserted.
  EXPECT_FALSE(insert(table, record_at(std::uintptr_t{1} << 47)));
}

TEST(BlockTable, FindContainingLooksInsideBlocks) {
  Arena arena(8);
  BlockTable table(kOffset);
  for (std::size_t slot : {1u, 3u, 5u}) ASSERT_TRUE(insert(table, record_at(arena.block(slot), 48)));
  BlockRecord out{};
  ASSERT_TRUE(table.find_containing(arena.block(3) + 47, &out));
  EXPECT_EQ(out.address, arena.block(3));
  EXPECT_FALSE(table.find_containing(arena.block(3) + 48, &out));
  EXPECT_FALSE(table.find_containing(arena.block(1) - 1, &out));
}

}  // namespace
}  // namespace zheap::debug
