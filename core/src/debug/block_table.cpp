#include "debug/block_table.hpp"

#include <cstring>

namespace zheap::debug {

BlockTable::Shard& BlockTable::shard_for(std::uintptr_t address) noexcept {
  // By 64 KiB stretch: blocks allocated one after another mostly share a lock, whose line
  // then stays in the allocating core's cache; the stretch number is mixed so that
  // stretches spread over all the shards.
  const std::uint64_t stretch = (address >> 16) * 0x9E3779B97F4A7C15ull;
  return shards_[stretch >> 58];
}

bool BlockTable::insert(Shard& shard, const BlockRecord& record) noexcept {
  if (!BlockStartMap::mappable(record.address)) return false;
  BlockRecord* slot = record_at(record.address);
  *slot = record;
  slot->seal = BlockRecord::kSeal;
  if (!starts_.mark(record.address)) return false;
  ++shard.used;
  return true;
}

void BlockTable::erase(Shard& shard, BlockRecord* record) noexcept {
  const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(record) + header_offset_;
  starts_.unmark(address);
  std::memset(static_cast<void*>(record), 0, sizeof *record);
  --shard.used;
}

std::size_t BlockTable::live_blocks() const noexcept {
  std::size_t blocks = 0;
  for (const Shard& shard : shards_) blocks += __atomic_load_n(&shard.live_blocks, __ATOMIC_RELAXED);
  return blocks;
}

std::size_t BlockTable::live_bytes() const noexcept {
  std::size_t bytes = 0;
  for (const Shard& shard : shards_) bytes += __atomic_load_n(&shard.live_bytes, __ATOMIC_RELAXED);
  return bytes;
}

std::size_t BlockTable::size_while_locked() const noexcept {
  std::size_t records = 0;
  for (const Shard& shard : shards_) records += shard.used;
  return records;
}

bool BlockTable::find_containing(std::uintptr_t address, BlockRecord* out) noexcept {
  bool found = false;
  for_each([&](const BlockRecord& record, std::uintptr_t start) {
    if (found || !intact(record, start)) return;
    const std::size_t extent = record.size == 0 ? 1 : record.size;
    if (address >= start && address - start < extent) {
      *out = record;
      found = true;
    }
  });
  return found;
}

}  // namespace zheap::debug
