// StackDepot: every distinct stack stored once, named by a 32-bit id.
//
// For: the debug allocator records an allocation stack (and a free stack) per block; most
// blocks share a few thousand stacks, so a block keeps a 4-byte id instead of 30 frames.
//
// Layout, all on anonymous mappings made on the first insert:
//   table   open-addressing hash table of ids (2 slots per possible stack), keyed by a
//           hash of the frames; 0 marks an empty slot
//   index   id -> offset of its record in the store
//   store   records [hash][depth][frame 0]...[frame depth-1], 8-byte words, appended
// Records are immutable once published, so lookups take no lock: a reader loads a slot
// (acquire), the writer filled the record and its index entry before storing the slot
// (release). Inserts are serialised by one Mutex (they are rare: once per stack).
//
// Bounded: at most `max_stacks` stacks and `max_frames` frames in all; past either limit
// insert() answers kNoStack and counts the refusal (reports then say "stack not kept").
// Memory is reserved, not committed: pages are touched only as stacks arrive.
// Thread safety: everything may be called from any thread, inside malloc.
#pragma once

#include <zheap/debug_allocator.hpp>
#include <zheap/mutex.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace zheap::debug {

using StackId = std::uint32_t;
inline constexpr StackId kNoStack = 0;

class StackDepot {
 public:
  static constexpr std::size_t kDefaultMaxStacks = std::size_t{1} << 20;
  static constexpr std::size_t kDefaultMaxFrames = std::size_t{1} << 23;  // 64 MiB of frames

  constexpr StackDepot() noexcept = default;
  constexpr StackDepot(std::size_t max_stacks, std::size_t max_frames) noexcept
      : max_stacks_(max_stacks), max_frames_(max_frames) {}
  ~StackDepot();
  StackDepot(const StackDepot&) = delete;
  StackDepot& operator=(const StackDepot&) = delete;

  // The id of `frames`, stored now if this stack was never seen. kNoStack for an empty
  // stack or when the depot is full.
  StackId insert(std::span<const std::uintptr_t> frames) noexcept;

  // The frames of `id`; empty for kNoStack or an id this depot never gave out.
  std::span<const std::uintptr_t> get(StackId id) const noexcept;

  // For fork(): holds off inserts while the process is copied (lookups go on).
  void lock() noexcept { insert_lock_.lock(); }
  void unlock() noexcept { insert_lock_.unlock(); }

  // The depot's mappings (table, index, store: tens of MiB reserved, code addresses
  // only), at most `max` into `out`, for a leak scan to skip; how many there are (0 or 3).
  std::size_t mappings(AddressRange* out, std::size_t max) const noexcept;

  std::size_t stack_count() const noexcept { return count_.load(std::memory_order_acquire); }
  // Inserts refused because the depot was full.
  std::size_t refused_count() const noexcept { return refused_.load(std::memory_order_relaxed); }

 private:
  static std::uint64_t hash_frames(std::span<const std::uintptr_t> frames) noexcept;
  StackId find(std::span<const std::uintptr_t> frames, std::uint64_t hash) const noexcept;
  bool same_stack(StackId id, std::span<const std::uintptr_t> frames, std::uint64_t hash) const noexcept;
  bool map_storage() noexcept;
  std::size_t table_slots() const noexcept;

  std::size_t max_stacks_ = kDefaultMaxStacks;
  std::size_t max_frames_ = kDefaultMaxFrames;
  std::atomic<std::atomic<StackId>*> table_{nullptr};
  std::uint64_t* index_ = nullptr;  // written under the lock before any id is published
  std::uint64_t* store_ = nullptr;
  std::size_t store_used_ = 0;      // words, under the lock
  std::atomic<std::size_t> count_{0};
  std::atomic<std::size_t> refused_{0};
  Mutex insert_lock_;
};

// The process's depot (constinit), shared by every DebugAllocator: stacks are immutable,
// so sharing only saves memory.
StackDepot& stack_depot() noexcept;

}  // namespace zheap::debug
