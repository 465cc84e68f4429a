// RecentStacks: per thread, the stacks it captured lately and their stack-depot ids.
//
// For: the debug allocator names two stacks per allocation and free in the stack depot.
// The depot's lookup hashes every frame, then loads a slot of its table, the record's
// index entry and the record: dependent loads from large, sparsely used mappings, mostly
// cache misses (hash and lookup were 8% of sqlite's time under debug mode). A thread
// allocating in a loop captures the same few stacks again and again; a small
// direct-mapped cache of them per thread, indexed by a cheap mix of the innermost frames
// and the depth, answers those with one comparison of the frames against memory the
// thread touched lately. A miss costs that comparison more than the depot alone.
//
// Layout: kThreadSlots caches (thread_slot.hpp) of kEntries entries, each a stack of at
// most kMaxFrames frames and its id; deeper stacks always go to the depot. Static storage
// (66 KiB per slot, 4 MiB in all, touched only by the threads that use it).
// Thread safety: a thread uses its slot's cache only when it holds that slot exclusively
// (the first kThreadSlots threads); later threads, and a signal handler that interrupted
// its own thread's use, go to the depot, so no lock and no locked instruction. Ids never
// go stale: the depot never forgets a stack.
#pragma once

#include "debug/stack_depot.hpp"
#include "debug/thread_slot.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace zheap::debug {

class RecentStacks {
 public:
  static constexpr std::size_t kEntries = 256;
  static constexpr std::size_t kMaxFrames = 32;  // the default depth (30) and a little

  // In front of `depot`; with none, of stack_depot() (the process's instance).
  constexpr RecentStacks() noexcept = default;
  explicit RecentStacks(StackDepot& depot) noexcept;
  RecentStacks(const RecentStacks&) = delete;
  RecentStacks& operator=(const RecentStacks&) = delete;

  // The depot's id of `frames` (StackDepot::insert()'s answer), from the calling
  // thread's cache when it has this stack.
  StackId intern(std::span<const std::uintptr_t> frames) noexcept;

  // Tells this instance's ids from another's, also from one's that lived at the same
  // address before (tests make them on the stack, with depots of their own): 0 for the
  // process's, a number of its own for each one made with a depot.
  std::uint64_t serial() const noexcept { return serial_; }

 private:
  struct Entry {
    std::uint32_t count;  // frames; 0: empty
    StackId id;
    std::uintptr_t frames[kMaxFrames];
  };
  struct alignas(64) Cache {
    std::atomic<bool> busy{false};  // only against the thread itself (a signal handler)
    Entry entries[kEntries]{};
  };

  StackDepot& depot() noexcept { return depot_ != nullptr ? *depot_ : stack_depot(); }

  StackDepot* depot_ = nullptr;
  std::uint64_t serial_ = 0;
  Cache caches_[kThreadSlots];
};

// The process's, in front of stack_depot(); never destroyed.
RecentStacks& recent_stacks() noexcept;

}  // namespace zheap::debug
