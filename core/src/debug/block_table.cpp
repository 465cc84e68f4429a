#include "debug/block_table.hpp"

#include "os/os.hpp"

namespace zheap::debug {

namespace {
constexpr std::size_t kInitialCapacity = 64;

std::size_t hash_address(std::uintptr_t address) noexcept {
  // Locality-preserving: blocks of one 64 KiB stretch of memory (allocated one after
  // another, freed in similar order) get neighbouring slots, so a run of allocations
  // touches a few cache lines of the table rather than one line each; the stretch itself
  // is mixed (all bits of its number), so stretches spread over the whole table.
  std::uint64_t h = (address >> 16) * 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return static_cast<std::size_t>(h + ((address & 0xffff) >> 4));
}

// Puts `record` in the first empty slot of its probe chain in `slots` (capacity mask + 1,
// at least one slot empty); `record.address` is not in the table.
[[gnu::always_inline]] inline void place(BlockRecord* slots, std::size_t mask, const BlockRecord& record) noexcept {
  std::size_t i = hash_address(record.address) & mask;
  while (slots[i].address != 0) i = (i + 1) & mask;
  slots[i] = record;
}
}  // namespace

BlockTable::~BlockTable() {
  for (Shard& shard : shards_)
    if (shard.slots != nullptr) os::unmap(shard.slots, shard.capacity * sizeof(BlockRecord));
}

BlockTable::Shard& BlockTable::shard_for(std::uintptr_t address) noexcept {
  return shards_[(hash_address(address) >> 58) & (kShards - 1)];
}

void BlockTable::prefetch(std::uintptr_t address) noexcept {
  Shard& shard = shard_for(address);
  // Read without the lock (atomically, so no torn values): a stale pair, from a table
  // since grown, names memory that may be unmapped by now, which a prefetch may name
  // harmlessly (it never faults). Both are checked under the lock by whatever follows.
  BlockRecord* const slots = __atomic_load_n(&shard.slots, __ATOMIC_RELAXED);
  const std::size_t capacity = __atomic_load_n(&shard.capacity, __ATOMIC_RELAXED);
  if (capacity == 0) return;
  // The slot and the next one, whole: a 48-byte record straddles two cache lines half
  // the time, an insert probes on past the home slot, and an erase pulls the next slot
  // back (their misses were most of insert's and erase's time on larson).
  const auto* slot = reinterpret_cast<const char*>(slots + (hash_address(address) & (capacity - 1)));
  __builtin_prefetch(slot, 1);
  __builtin_prefetch(slot + 64, 1);
  __builtin_prefetch(slot + 2 * sizeof(BlockRecord) - 1, 1);
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

// Places every record of `from` (any order, any placement) into a new mapping of
// `new_capacity` slots, unmaps `from` and publishes the new array.
bool BlockTable::rehash_into_new_mapping(Shard& shard, BlockRecord* from, std::size_t from_capacity,
                                         std::size_t new_capacity) noexcept {
  auto* slots = static_cast<BlockRecord*>(os::map(new_capacity * sizeof(BlockRecord)));
  if (slots == nullptr) return false;
  for (std::size_t i = 0; i < from_capacity; ++i)
    if (from[i].address != 0) place(slots, new_capacity - 1, from[i]);
  if (from != nullptr) os::unmap(from, from_capacity * sizeof(BlockRecord));
  publish(shard, slots, new_capacity);
  return true;
}

void BlockTable::publish(Shard& shard, BlockRecord* slots, std::size_t capacity) noexcept {
  // Atomic stores for prefetch()'s lock-free reads (readers under the lock need no more).
  __atomic_store_n(&shard.slots, slots, __ATOMIC_RELAXED);
  __atomic_store_n(&shard.capacity, capacity, __ATOMIC_RELAXED);
}

// Moves every record that an empty slot separates from its home to the first empty slot
// from its home, pass after pass, until none moves. Each move brings a record nearer its
// home and moves nothing else, so the passes end; then every record is found by probing
// from its home, whatever the placement was.
void BlockTable::repair_probe_chains(BlockRecord* slots, std::size_t capacity) noexcept {
  const std::size_t mask = capacity - 1;
  for (bool moved = true; moved;) {
    moved = false;
    for (std::size_t i = 0; i < capacity; ++i) {
      if (slots[i].address == 0) continue;
      std::size_t j = hash_address(slots[i].address) & mask;
      while (j != i && slots[j].address != 0) j = (j + 1) & mask;
      if (j == i) continue;
      slots[j] = slots[i];
      slots[i] = BlockRecord{};
      moved = true;
    }
  }
}

// Doubling in place: mremap() keeps the array's pages (moving them if it must) and adds
// an upper half of fresh zero pages, so a growth faults in only the new half; a copy into
// a new mapping faulted in the whole new array, and the arrays of all growths added up to
// twice the last (the side table's growth was 42% of the containers workload's page
// faults). Then every record is taken out and put back where the doubled table wants it,
// in the order of the old slots from just after an empty one: that order keeps almost
// every probe chain whole (a record's new home is its old home h or h + old capacity;
// from h, the slots up to its old place were re-placed before it, and its own old slot,
// now empty, bounds the probe), all but a probe that runs off the end of the doubled
// table into first slots still holding records not yet re-placed. repair_probe_chains()
// then makes sure of every record, whatever the placement came to (with nothing to mend,
// one read of the table).
bool BlockTable::grow(Shard& shard) noexcept {
  if (shard.capacity == 0) return rehash_into_new_mapping(shard, nullptr, 0, kInitialCapacity);
  const std::size_t old_capacity = shard.capacity;
  const std::size_t new_capacity = old_capacity * 2;
  auto* slots = static_cast<BlockRecord*>(os::remap(shard.slots, old_capacity * sizeof(BlockRecord),
                                                    new_capacity * sizeof(BlockRecord), true));
  if (slots == nullptr) return rehash_into_new_mapping(shard, shard.slots, old_capacity, new_capacity);
  std::size_t empty = 0;
  while (slots[empty].address != 0) ++empty;  // one exists: grown at 70% full
  for (std::size_t k = 1; k <= old_capacity; ++k) {
    const std::size_t i = (empty + k) & (old_capacity - 1);
    if (slots[i].address == 0) continue;
    const BlockRecord record = slots[i];
    slots[i] = BlockRecord{};
    place(slots, new_capacity - 1, record);
  }
  repair_probe_chains(slots, new_capacity);
  publish(shard, slots, new_capacity);
  return true;
}

bool BlockTable::insert(Shard& shard, const BlockRecord& record) noexcept {
  if ((shard.used + 1) * 10 > shard.capacity * 7 && !grow(shard)) return false;
  place(shard.slots, shard.capacity - 1, record);  // never present twice: the allocator owns the address
  ++shard.used;
  return true;
}

void BlockTable::erase(Shard& shard, BlockRecord* record) noexcept {
  // Backward-shift deletion: pull later members of the probe chain into the hole, so no
  // tombstones build up under churn and lookups stay short.
  const std::size_t mask = shard.capacity - 1;
  std::size_t hole = static_cast<std::size_t>(record - shard.slots);
  for (std::size_t j = (hole + 1) & mask; shard.slots[j].address != 0; j = (j + 1) & mask) {
    const std::size_t home = hash_address(shard.slots[j].address) & mask;
    // The record at j may move to the hole unless its home lies cyclically in (hole, j].
    const bool home_after_hole = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (home_after_hole) continue;
    shard.slots[hole] = shard.slots[j];
    hole = j;
  }
  shard.slots[hole] = BlockRecord{};
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

std::size_t BlockTable::mappings_while_locked(AddressRange* out, std::size_t max) const noexcept {
  std::size_t count = 0;
  for (const Shard& shard : shards_) {
    if (shard.slots == nullptr) continue;
    const auto begin = reinterpret_cast<std::uintptr_t>(shard.slots);
    if (count < max) out[count] = {begin, begin + shard.capacity * sizeof(BlockRecord)};
    ++count;
  }
  return count;
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
