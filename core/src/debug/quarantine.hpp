// Quarantine: the FIFO of freed blocks the debug allocator holds back from reuse.
//
// A freed block is poisoned and pushed here; it is really released only when it leaves
// (oldest first, once the bytes held pass the limit), and checked for writes after free
// then. Holding blocks back is what turns a use after free into a visible corruption
// instead of a silent read of someone else's data.
//
// Layout: a ring on one mapping (kCapacity entries; when full, the oldest leave early)
// behind one Mutex, fed by kThreadSlots batches (thread_slot.hpp). A thread pushes into
// its own slot's batch (threads beyond kThreadSlots share slots, hence a lock per batch,
// uncontended otherwise) and the whole batch moves into the ring, and the excess leaves it, under
// one acquisition of the ring's lock once the batch holds kBatchEntries entries or
// batch_bytes(). So 8 threads freeing at once meet on the ring's lock once per 32 frees
// instead of on every free. A block in a batch is quarantined like one in the ring (the
// block table says so from its free on; leak_check() checks its poison).
//
// The byte limit covers both: a slot that starts a batch reserves batch_bytes() of the
// limit (one atomic add per batch), and the ring keeps at most the limit less what the
// batches reserve. A batch left behind by a thread that exited stays counted and is moved
// on by the slot's next user, by flush_batches() (leak_check) or by drain().
// Order: FIFO per thread; across threads, by batch.
// Thread safety: every member may be called from any thread. The locks (one per slot,
// one for the ring) are held only to copy entries in or out; none is held while another
// is taken; the caller checks and releases what leaves with no lock held.
#pragma once

#include "debug/thread_slot.hpp"
#include <zheap/debug_allocator.hpp>
#include <zheap/mutex.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace zheap::debug {

class Quarantine {
 public:
  static constexpr std::size_t kCapacity = std::size_t{1} << 16;
  static constexpr std::size_t kBatchEntries = 32;
  // What one take_batch() may hand back for eviction: a whole batch refused by a full or
  // unmapped ring, and as many of the ring's oldest again.
  static constexpr std::size_t kMaxEvicted = 2 * kBatchEntries;

  // No default member initializers: the arrays of them that take_batch() and its callers keep
  // on the stack would be zeroed on every free (a kilobyte of stores).
  struct Entry {
    std::uintptr_t address;
    std::size_t bytes;
  };

  constexpr explicit Quarantine(std::size_t max_bytes) noexcept
      : max_bytes_(max_bytes), batch_bytes_(max_bytes / 128 > 0 ? max_bytes / 128 : 1) {}
  ~Quarantine();
  Quarantine(const Quarantine&) = delete;
  Quarantine& operator=(const Quarantine&) = delete;

  // Whether a block of `bytes` fits the limit at all: the caller releases a block that
  // does not at once (and need not poison it).
  bool could_hold(std::size_t bytes) const noexcept { return bytes <= max_bytes_; }

  // Holding `entry` (could_hold() true) takes two steps, so that the caller can work in
  // between (the debug allocator poisons the block there: the batch lock's locked
  // instruction then does not wait for the poison's stores). add_to_batch() puts `entry`
  // into the calling thread's batch; when that fills it, the batch is taken out into
  // `full` (room for kBatchEntries) and its count returned, and the caller must hand it
  // to take_batch(), which writes what must leave now (the oldest, past the limit; or the
  // batch itself when the ring cannot be mapped) to `evicted` (room for kMaxEvicted) and
  // returns how many; when that is kMaxEvicted, pop_excess() may have more.
  std::size_t add_to_batch(Entry entry, Entry* full) noexcept;
  std::size_t take_batch(const Entry* entries, std::size_t count, Entry* evicted) noexcept;
  // Whether an entry of `bytes`, once add_to_batch() returned, could leave the quarantine
  // through another thread's flush_batches() before the adding thread's next step. Only
  // a big one can: flush_batches() moves a batch only into a mapped ring, whose excess
  // leaves oldest first, and the newest entry leaves at once only when it is more than
  // the limit less what all batches may reserve (half the limit).
  bool could_leave_from_flush(std::size_t bytes) const noexcept { return bytes >= batch_bytes_; }
  // Up to `max` of the oldest entries while the bytes held exceed the limit or the ring
  // is full, under one lock acquisition; how many.
  std::size_t pop_excess(Entry* out, std::size_t max) noexcept;
  // Moves every batch into the ring; evict(entry) is called, with no lock held, for each
  // entry that must leave on the way (then pop_excess() may have more).
  template <class Evict>
  void flush_batches(Evict&& evict) noexcept {
    Entry evicted[kMaxEvicted];
    for (Batch& batch : batches_) {
      const std::size_t count = move_to_ring(batch, evicted);
      for (std::size_t i = 0; i < count; ++i) evict(evicted[i]);
    }
  }
  // The ring's oldest entry, whatever is held (to drain it; batches are not looked at).
  bool pop_any(Entry* out) noexcept;

  // Bytes held, in the ring and in the batches.
  std::size_t bytes() const noexcept;
  // The ring's mapping (it holds the addresses of quarantined blocks; a leak scan must not
  // take it for a root); empty before the first batch reached it. The batches live in
  // this object.
  AddressRange mapping() const noexcept;

  // For fork(): every lock (slots in order, then the ring), held across it by the
  // allocator's fork handlers.
  void lock() noexcept;
  void unlock() noexcept;

 private:
  struct alignas(64) Batch {
    Mutex lock;
    std::size_t count = 0;
    std::size_t bytes = 0;
    Entry entries[kBatchEntries] = {};
  };

  // Empties `batch` into the ring; what must leave goes to `evicted`; how many. Leaves
  // the batch where it is when the ring cannot be mapped (see could_leave_from_flush()).
  std::size_t move_to_ring(Batch& batch, Entry* evicted) noexcept;
  // Maps the ring if that was not done yet; false when it cannot be. _locked: lock_ held.
  bool map_ring() noexcept;
  bool map_ring_locked() noexcept;
  // Copies `batch`'s entries to `out` and empties it (its lock held); how many.
  static std::size_t empty_batch_locked(Batch& batch, Entry* out) noexcept;
  std::size_t pop_excess_locked(Entry* out, std::size_t max) noexcept;
  bool pop_locked(Entry* out) noexcept;

  const std::size_t max_bytes_;
  const std::size_t batch_bytes_;         // a batch moves on once it holds this much
  std::atomic<std::size_t> reserved_{0};  // batch_bytes_ per batch that holds entries
  Mutex lock_;                            // the ring's
  Entry* ring_ = nullptr;
  std::size_t head_ = 0;   // oldest
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;  // in the ring
  Batch batches_[kThreadSlots];
};

}  // namespace zheap::debug
