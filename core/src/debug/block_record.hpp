// BlockRecord: what the debug allocator knows of one block (where it is, how it was
// allocated and freed). A live block's record is in front of the block (block_table.hpp); a
// quarantined block's travels with it in the quarantine (quarantine.hpp); a released
// block has none.
//
// No default member initializers: the quarantine's batches move through arrays of records
// on the stack of every free that fills one, which would be zeroed each time (kilobytes
// of stores). Declare one with `BlockRecord record{};` (all zero: no address, live).
#pragma once

#include "debug/stack_depot.hpp"
#include "debug/thread_slot.hpp"

#include <zheap/debug_allocator.hpp>

#include <cstddef>
#include <cstdint>

namespace zheap::debug {

enum class BlockState : std::uint8_t { live, quarantined };

struct BlockRecord {
  std::uintptr_t address;  // first user byte
  std::size_t size;        // requested
  void* base;              // what the backing allocator (or the guard mapping) gave
  std::size_t base_len;    // also what the block counts for in the quarantine
  StackId allocation_stack;
  StackId free_stack;
  std::uint8_t log2_alignment;
  AllocationFamily family;
  BlockState state;
  bool guarded;  // its own mapping with a guard page (base_len covers it all)
  // thread_slot() of the thread the backing allocator gave `base` to: in a per-thread heap
  // such as smp, the thread whose free of it is local (see recycle_bins.hpp).
  std::uint8_t backing_thread;
  std::uint8_t unused;
  // kSeal while the record is in front of its block (block_table.hpp): the bytes nearest
  // the left redzone, the first an underflow past the redzone overwrites.
  std::uint16_t seal;
  static constexpr std::uint16_t kSeal = 0x5EA1;

  std::size_t alignment() const noexcept { return std::size_t{1} << log2_alignment; }
};
static_assert(kThreadSlots <= 256, "backing_thread holds a thread slot in a byte");
static_assert(sizeof(BlockRecord) == 48, "six words: keep blocks and the quarantine compact");
static_assert(static_cast<int>(BlockState{}) == static_cast<int>(BlockState::live), "a zeroed record is live");

}  // namespace zheap::debug
