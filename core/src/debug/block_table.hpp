// BlockTable: where the debug allocator finds a live block's record (block_record.hpp).
//
// In the block itself, just in front of its left redzone:
//
//   [padding to the alignment][record, 48 bytes][left redzone][user bytes][right redzone]
//
// at a fixed distance below the user address (header_offset(), the same for every block
// of one allocator). Which addresses are live blocks is known apart from the blocks, in a
// BlockStartMap (a bit per 16-byte granule): find() looks there first, so the memory in
// front of a pointer is read only when that pointer is one of ours. A record in the block
// shares its lines with the canaries the allocation writes and the free checks anyway;
// in a hash table apart (before: open addressing, 64 shards) every allocation, free and
// lookup touched a random line of a shared array, missed on it, and on larson the lines
// bounced between cores (the table's probes were 15% of the containers workload's time
// and the hash table's code 14-16% of larson's).
//
// An underflow that runs past the left redzone overwrites the record: every record is
// sealed (BlockRecord::seal, next to the redzone, so it is the first thing such a write
// hits), and the allocator checks intact() before it trusts one.
//
// Sharded by address into kShards locks, which order everything done to one address
// (mark, record, unmark) and carry the live counts. Lock order: a shard lock comes first.
// Never another shard's with it, but a free adds the block to the quarantine under it (a
// batch's lock, then the ring's), so that a racing second free finds the block in one or
// the other; callers copy what they need and unlock before reporting. Only lock_all()
// takes them all, in shard order (fork, and the leak scan, which holds them so that no
// block is freed while it reads blocks).
#pragma once

#include "debug/block_record.hpp"
#include "debug/block_start_map.hpp"
#include <zheap/mutex.hpp>

#include <zheap/debug_allocator.hpp>

#include <cstddef>
#include <cstdint>

namespace zheap::debug {

class BlockTable {
 public:
  static constexpr std::size_t kShards = 64;

  // A cache line each: threads working on different shards do not take each other's lines.
  struct alignas(64) Shard {
    Mutex lock;
    std::size_t used = 0;  // records
    // The live blocks among them (a block freed with poison first is held in the table as
    // quarantined for a moment, see DebugAllocator) and their requested bytes. Counted
    // here, under the lock the caller holds anyway, rather than in atomics shared by all
    // threads (two more locked instructions per allocation and per free, each waiting for
    // the stores before it); written atomically so that live_totals() needs no lock.
    std::size_t live_blocks = 0;
    std::size_t live_bytes = 0;
  };
  static_assert(sizeof(Shard) == 64, "one line a shard");

  // Counts blocks that become live (+) or stop being live (-) in `shard`; its lock held.
  static void add_live(Shard& shard, std::ptrdiff_t blocks, std::ptrdiff_t bytes) noexcept {
    __atomic_store_n(&shard.live_blocks, shard.live_blocks + static_cast<std::size_t>(blocks), __ATOMIC_RELAXED);
    __atomic_store_n(&shard.live_bytes, shard.live_bytes + static_cast<std::size_t>(bytes), __ATOMIC_RELAXED);
  }
  // Sums of the shards' counts, without their locks (each shard's count is exact; the sum
  // is a moment's picture while other threads allocate).
  std::size_t live_blocks() const noexcept;
  std::size_t live_bytes() const noexcept;

  // How far below its block's user address a record lies: the record and a left redzone
  // of `redzone` bytes rounded up to 16, so that records and user addresses stay 16-byte
  // aligned.
  static constexpr std::size_t header_offset_for(std::size_t redzone) noexcept {
    return sizeof(BlockRecord) + ((redzone + 15) & ~std::size_t{15});
  }

  explicit constexpr BlockTable(std::size_t header_offset) noexcept : header_offset_(header_offset) {}
  BlockTable(const BlockTable&) = delete;
  BlockTable& operator=(const BlockTable&) = delete;

  std::size_t header_offset() const noexcept { return header_offset_; }

  Shard& shard_for(std::uintptr_t address) noexcept;

  // A hint, no lock needed: starts loading the record's line and the map's byte for
  // `address`, so that the caller can do other work (capture a stack) meanwhile.
  void prefetch(std::uintptr_t address) const noexcept {
    __builtin_prefetch(reinterpret_cast<const char*>(address - header_offset_), 1);
    starts_.prefetch(address);
  }

  // Whether the record `find` returned for `address` can be trusted: its seal and its
  // address are as insert() wrote them (an underflow past the left redzone breaks them).
  static bool intact(const BlockRecord& record, std::uintptr_t address) noexcept {
    return record.address == address && record.seal == BlockRecord::kSeal;
  }

  // The following take the shard whose lock the caller holds.
  // The record in front of the live (or being freed) block at `address`, or nullptr when
  // `address` is none; check intact() before reading it.
  BlockRecord* find(Shard& shard, std::uintptr_t address) noexcept {
    (void)shard;
    return starts_.marked(address) ? record_at(address) : nullptr;
  }
  // Writes `record` in front of its block (record.address, 16-byte aligned, with
  // header_offset() bytes of the block below it) and marks the address live; false when
  // the map cannot take it (out of memory, or an address beyond 47 bits).
  bool insert(Shard& shard, const BlockRecord& record) noexcept;
  // Forgets the block whose record find() returned (whether intact or not), and wipes the
  // record so that no stale copy of it lingers in the block's memory.
  void erase(Shard& shard, BlockRecord* record) noexcept;
  // Erases a live block whose record is not intact(), counting it out of the live blocks
  // (its bytes stay counted: its size is lost with its record).
  void forget_damaged(Shard& shard, BlockRecord* record) noexcept {
    add_live(shard, -1, 0);
    erase(shard, record);
  }

  // visit(record, address) for every block, in address order, every shard lock held by
  // the caller; the record may be damaged (check intact()); visit may change its contents
  // but must not erase it.
  template <class Visit>
  void for_each_while_locked(Visit&& visit) noexcept {
    starts_.for_each_marked([&](std::uintptr_t address) { visit(*record_at(address), address); });
  }
  // The same, taking every shard lock for the walk.
  template <class Visit>
  void for_each(Visit&& visit) noexcept {
    lock_all();
    for_each_while_locked(visit);
    unlock_all();
  }
  // Records in all shards; every shard lock held by the caller.
  std::size_t size_while_locked() const noexcept;
  // The table's own mappings (the start map's; they hold no addresses, so a leak scan
  // need not read them), at most `max` into `out`. Returns how many there are.
  std::size_t mappings_while_locked(AddressRange* out, std::size_t max) const noexcept {
    return starts_.mappings(out, max);
  }

  // For fork() and the leak scan: every shard lock, in shard order, and back.
  void lock_all() noexcept {
    for (Shard& shard : shards_) shard.lock.lock();
  }
  void unlock_all() noexcept {
    for (Shard& shard : shards_) shard.lock.unlock();
  }

  // The intact record of the block whose user bytes [address, address + size) contain
  // `address`, copied into *out; false when none. Scans everything: for error paths.
  bool find_containing(std::uintptr_t address, BlockRecord* out) noexcept;

 private:
  BlockRecord* record_at(std::uintptr_t address) const noexcept {
    return reinterpret_cast<BlockRecord*>(address - header_offset_);
  }

  const std::size_t header_offset_;
  BlockStartMap starts_;
  Shard shards_[kShards];
};

}  // namespace zheap::debug
