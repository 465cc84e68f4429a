#include "debug/block_table.hpp"

#include "os/os.hpp"

namespace zheap::debug {

namespace {
constexpr std::size_t kInitialCapacity = 256;

std::size_t hash_address(std::uintptr_t address) noexcept {
  // Blocks are at least 16-byte aligned and often share high bits: mix them all.
  std::uint64_t h = address * 0x9E3779B97F4A7C15ull;
  return static_cast<std::size_t>(h ^ (h >> 29));
}
}  // namespace

BlockTable::~BlockTable() {
  for (Shard& shard : shards_)
    if (shard.slots != nullptr) os::unmap(shard.slots, shard.capacity * sizeof(BlockRecord));
}

BlockTable::Shard& BlockTable::shard_for(std::uintptr_t address) noexcept {
  return shards_[(hash_address(address) >> 58) & (kShards - 1)];
}

BlockRecord* BlockTable::find(Shard& shard, std::uintptr_t address) noexcept {
  if (shard.capacity == 0) return nullptr;
  const std::size_t mask = shard.capacity - 1;
  for (std::size_t i = hash_address(address) & mask;; i = (i + 1) & mask) {
    BlockRecord& slot = shard.slots[i];
    if (slot.address == address) return &slot;
    if (slot.address == 0) return nullptr;  // never full: grown at 70%
  }
}

bool BlockTable::grow(Shard& shard) noexcept {
  std::size_t records = 0;
  for (std::size_t i = 0; i < shard.capacity; ++i) records += shard.slots[i].address > kTombstone ? 1 : 0;
  // Mostly tombstones (blocks come and go): rehash at the same size instead of doubling.
  std::size_t new_capacity = shard.capacity == 0 ? kInitialCapacity : shard.capacity;
  if (records * 10 > new_capacity * 3) new_capacity *= 2;
  auto* slots = static_cast<BlockRecord*>(os::map(new_capacity * sizeof(BlockRecord)));
  if (slots == nullptr) return false;
  const std::size_t mask = new_capacity - 1;
  std::size_t used = 0;
  for (std::size_t i = 0; i < shard.capacity; ++i) {
    const BlockRecord& record = shard.slots[i];
    if (record.address <= kTombstone) continue;  // tombstones are dropped here
    std::size_t j = hash_address(record.address) & mask;
    while (slots[j].address != 0) j = (j + 1) & mask;
    slots[j] = record;
    ++used;
  }
  if (shard.slots != nullptr) os::unmap(shard.slots, shard.capacity * sizeof(BlockRecord));
  shard.slots = slots;
  shard.capacity = new_capacity;
  shard.used = used;
  return true;
}

bool BlockTable::insert(Shard& shard, const BlockRecord& record) noexcept {
  if ((shard.used + 1) * 10 > shard.capacity * 7 && !grow(shard)) return false;
  const std::size_t mask = shard.capacity - 1;
  std::size_t i = hash_address(record.address) & mask;
  // A tombstone could be reused only after checking the key is absent further on; the
  // allocator never inserts an address twice, so take the first empty slot.
  while (shard.slots[i].address != 0) i = (i + 1) & mask;
  shard.slots[i] = record;
  ++shard.used;
  return true;
}

void BlockTable::erase(Shard&, BlockRecord* record) noexcept {
  *record = BlockRecord{};
  record->address = kTombstone;  // keeps later probe chains intact; `used` still counts it
}

bool BlockTable::find_containing(std::uintptr_t address, BlockRecord* out) noexcept {
  bool found = false;
  for_each([&](const BlockRecord& record) {
    const std::size_t extent = record.size == 0 ? 1 : record.size;
    if (!found && address >= record.address && address - record.address < extent) {
      *out = record;
      found = true;
    }
  });
  return found;
}

}  // namespace zheap::debug
