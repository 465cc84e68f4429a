// BlockTable: the debug allocator's side table, live block address -> BlockRecord.
//
// Only live blocks: a freed block's record leaves the table for the quarantine, where it
// travels with the block (quarantine.hpp), so the table stays as small as the live set
// and hot in cache (with the quarantined ones in it too it was several MiB, and every
// eviction's lookup a miss). Kept apart from the blocks (on mappings of its own) so that a
// buffer underflow cannot rewrite what a block is. Sharded by address: kShards
// open-addressing hash tables, each behind its own Mutex, each doubled when it is 70%
// full (in place: its mapping extended with mremap and the records re-placed, see
// grow()). Deletion shifts the probe chain back (no tombstones), so lookups stay short
// however many blocks come and go.
// Lock order: a shard lock comes first. Never another shard's with it, but a free adds the
// block to the quarantine under it (a batch's lock, then the ring's), so that a racing
// second free finds the block in one or the other; callers copy what they need and unlock
// before reporting. Only lock_all() takes them all, in shard order (fork, and the leak
// scan, which holds them so that no block is freed while it reads blocks).
#pragma once

#include "debug/block_record.hpp"
#include <zheap/mutex.hpp>

#include <zheap/debug_allocator.hpp>

#include <cstddef>
#include <cstdint>

namespace zheap::debug {

class BlockTable {
 public:
  static constexpr std::size_t kShards = 64;

  // Two cache lines each: threads working on different shards do not take each other's
  // lines away. The first is written on every lock and unlock; the second (where the
  // array is) changes only when the shard grows, so prefetch() reads it without a miss
  // although other cores take the lock all the time (with both in one line, that read
  // missed whenever another core had taken the lock last: larson, 8 threads).
  struct alignas(64) Shard {
    Mutex lock;
    std::size_t used = 0;  // records
    // The live blocks among them (a block freed with poison first is held in the
    // table as quarantined for a moment, see DebugAllocator) and their requested bytes. Counted
    // here, under the lock the caller holds anyway, rather than in atomics shared by all
    // threads (two more locked instructions per allocation and per free, each waiting for
    // the stores before it); written atomically so that live_totals() needs no lock.
    std::size_t live_blocks = 0;
    std::size_t live_bytes = 0;
    alignas(64) BlockRecord* slots = nullptr;
    std::size_t capacity = 0;  // a power of two, or 0 before the first insert
  };
  static_assert(sizeof(Shard) == 128, "the lock's line and the array's line");

  // Counts blocks that become live (+) or stop being live (-) in `shard`; its lock held.
  static void add_live(Shard& shard, std::ptrdiff_t blocks, std::ptrdiff_t bytes) noexcept {
    __atomic_store_n(&shard.live_blocks, shard.live_blocks + static_cast<std::size_t>(blocks), __ATOMIC_RELAXED);
    __atomic_store_n(&shard.live_bytes, shard.live_bytes + static_cast<std::size_t>(bytes), __ATOMIC_RELAXED);
  }
  // Sums of the shards' counts, without their locks (each shard's count is exact; the sum
  // is a moment's picture while other threads allocate).
  std::size_t live_blocks() const noexcept;
  std::size_t live_bytes() const noexcept;

  constexpr BlockTable() noexcept = default;
  ~BlockTable();
  BlockTable(const BlockTable&) = delete;
  BlockTable& operator=(const BlockTable&) = delete;

  Shard& shard_for(std::uintptr_t address) noexcept;

  // A hint, no lock needed: starts loading the slot where `address` would be found, so
  // that the caller can do other work (capture a stack) while the cache miss is served.
  // The table is large and the slot cold: the miss was most of a lookup's time.
  void prefetch(std::uintptr_t address) noexcept;

  // The following take the shard whose lock the caller holds.
  BlockRecord* find(Shard& shard, std::uintptr_t address) noexcept;
  // false when the table could not grow (out of memory). `record.address` must not be
  // in the table already.
  bool insert(Shard& shard, const BlockRecord& record) noexcept;
  // `record` points into the shard (from find()); other pointers into it become stale.
  void erase(Shard& shard, BlockRecord* record) noexcept;

  // Calls visit(record) for every record, one shard locked at a time; visit may change
  // the record's contents but not its address, and must not take a shard lock.
  template <class Visit>
  void for_each(Visit&& visit) noexcept {
    for (Shard& shard : shards_) {
      MutexLock guard(shard.lock);
      for (std::size_t i = 0; i < shard.capacity; ++i)
        if (shard.slots[i].address != 0) visit(shard.slots[i]);
    }
  }

  // The same with every shard lock already held by the caller (lock_all()).
  template <class Visit>
  void for_each_while_locked(Visit&& visit) noexcept {
    for (Shard& shard : shards_)
      for (std::size_t i = 0; i < shard.capacity; ++i)
        if (shard.slots[i].address != 0) visit(shard.slots[i]);
  }
  // Records in all shards; every shard lock held by the caller.
  std::size_t size_while_locked() const noexcept;
  // The table's own mappings (the shard arrays: every block's address is in them, so a
  // leak scan must not take them for roots), at most `max` into `out`; every shard lock
  // held by the caller. Returns how many there are (kShards at most).
  std::size_t mappings_while_locked(AddressRange* out, std::size_t max) const noexcept;

  // For fork() and the leak scan: every shard lock, in shard order, and back.
  void lock_all() noexcept {
    for (Shard& shard : shards_) shard.lock.lock();
  }
  void unlock_all() noexcept {
    for (Shard& shard : shards_) shard.lock.unlock();
  }

  // The record of the block whose user bytes [address, address + size) contain
  // `address`, copied into *out; false when none. Scans everything: for error paths.
  bool find_containing(std::uintptr_t address, BlockRecord* out) noexcept;

 private:
  bool grow(Shard& shard) noexcept;
  bool rehash_into_new_mapping(Shard& shard, BlockRecord* from, std::size_t from_capacity,
                               std::size_t new_capacity) noexcept;
  static void publish(Shard& shard, BlockRecord* slots, std::size_t capacity) noexcept;
  static void repair_probe_chains(BlockRecord* slots, std::size_t capacity) noexcept;

  Shard shards_[kShards];
};

}  // namespace zheap::debug
