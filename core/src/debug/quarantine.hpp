// Quarantine: the FIFO of freed blocks the debug allocator holds back from reuse.
//
// A freed block is poisoned and pushed here; it is really released only when it leaves
// (oldest first, once the bytes held pass the limit), and checked for writes after free
// then. Holding blocks back is what turns a use after free into a visible corruption
// instead of a silent read of someone else's data.
//
// An entry is the block's whole record (block_record.hpp, 48 bytes), moved here from the
// block table when the block is freed: the table then holds only live blocks and stays
// small, and a block leaving is checked and released from its entry alone, read in FIFO
// order from sequential memory, with no table lookup. The few paths that must know about
// a freed block (a double free, realloc of a freed pointer, an interior pointer, the
// leak check) search the quarantine instead: find(), find_containing(), linearly.
//
// Layout: a ring on one mapping (kCapacity entries, 3 MiB, its pages touched as it
// fills; when full, the oldest leave early) behind one Mutex, fed by kThreadSlots
// batches (thread_slot.hpp, 1.5 KiB each). A thread adds to its own slot's batch (threads
// beyond kThreadSlots share slots, hence a lock per batch, uncontended otherwise) and the
// whole batch moves into the ring, and the excess leaves it, under one acquisition of the
// ring's lock once the batch holds kBatchEntries entries or batch_bytes(). So 8 threads
// freeing at once meet on the ring's lock once per 32 frees instead of on every free.
//
// The byte limit covers both: a slot that starts a batch reserves batch_bytes() of the
// limit (one atomic add per batch), and the ring keeps at most the limit less what the
// batches reserve. A batch left behind by a thread that exited stays counted and is moved
// on by the slot's next user, by flush_batches() (leak_check) or by drain().
// Order: FIFO per thread; across threads, by batch.
// Thread safety: every member may be called from any thread. Lock order: a batch's lock,
// then the ring's (an entry moves from a batch to the ring under both, so that a search
// that looks at the batches, then the ring, never misses it); the debug allocator adds
// to a batch under a block-table shard lock, which comes before both. Nothing is reported
// or released under these locks: what leaves is copied out and handed to the caller.
#pragma once

#include "debug/block_record.hpp"
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
  // What one move_batch() may hand back for eviction: a whole batch refused by a full or
  // unmapped ring, and as many of the ring's oldest again.
  static constexpr std::size_t kMaxEvicted = 2 * kBatchEntries;

  // The block's record; base_len is what it counts for.
  using Entry = BlockRecord;

  constexpr explicit Quarantine(std::size_t max_bytes) noexcept
      : max_bytes_(max_bytes), batch_bytes_(max_bytes / 128 > 0 ? max_bytes / 128 : 1) {}
  ~Quarantine();
  Quarantine(const Quarantine&) = delete;
  Quarantine& operator=(const Quarantine&) = delete;

  // Whether a block of `bytes` fits the limit at all: the caller releases a block that
  // does not at once (and need not poison it).
  bool could_hold(std::size_t bytes) const noexcept { return bytes <= max_bytes_; }

  // Holding `entry` (could_hold() true) takes two steps, so that the caller can work in
  // between (the debug allocator poisons the block there, with no lock held; the batch
  // lock's locked instruction then does not wait for the poison's stores).
  //
  // add_to_batch() puts `entry` into the calling thread's batch (the debug allocator calls
  // it under the block's shard lock, so that the block is never in neither place). When
  // the batch is due to move on, the caller must then call move_batch(), which writes what
  // must leave now (the oldest, past the limit; or the batch itself when the ring cannot
  // be mapped) to `evicted` (room for kMaxEvicted) and returns how many; when that is
  // kMaxEvicted, pop_excess() may have more.
  // Bits of one byte: as three bools, GCC kept them across the batch's unlock as three
  // byte stores on the stack and returned them through one 16-bit load over two of
  // them, which store forwarding cannot serve (a stall on every free: half of
  // add_to_batch()'s samples on sqlite).
  struct Added {
    bool held : 1;         // false: no room anywhere (the ring cannot be mapped); release the block now
    bool batch_due : 1;    // call move_batch()
    bool evicted_one : 1;  // *evicted left the ring to make room: the caller releases it
  };
  static_assert(sizeof(Added) == 1);
  // Rarely the batch is full already (threads that share a slot, each between its add and
  // its move_batch()): then `entry` goes straight to the ring, whose oldest may leave to
  // make room (to *evicted).
  Added add_to_batch(const Entry& entry, Entry* evicted) noexcept;
  std::size_t move_batch(Entry* evicted) noexcept;
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
    take_from_each_batch<kMaxEvicted>(
        [&](Batch& batch, Entry* out) { return move_to_ring_locked(batch, out, false); }, evict);
  }
  // Empties the quarantine (batches, then ring): release(entry) for each, no lock held.
  template <class Release>
  void drain(Release&& release) noexcept {
    take_from_each_batch<kBatchEntries>([&](Batch& batch, Entry* out) { return empty_batch_locked(batch, out); },
                                        release);
    Entry entry;
    while (pop_any(&entry)) release(entry);
  }
  // The ring's oldest entry, whatever is held (to drain it; batches are not looked at).
  bool pop_any(Entry* out) noexcept;

  // The entry of the block at `address` (find) or of the one whose user bytes contain it
  // (find_containing), copied to *out; false when none. Linear searches, batches then ring,
  // one lock at a time: for error paths only.
  bool find(std::uintptr_t address, Entry* out) noexcept;
  bool find_containing(std::uintptr_t address, Entry* out) noexcept;
  // visit(entry) for each entry in the ring, the ring's lock held (visit must not take a
  // lock, allocate or report: it copies what it needs).
  template <class Visit>
  void for_each_in_ring(Visit&& visit) noexcept {
    MutexLock guard(lock_);
    for (std::size_t i = 0; i < count_; ++i) visit(static_cast<const Entry&>(ring_[(head_ + i) & (kCapacity - 1)]));
  }

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
    Entry entries[kBatchEntries];
  };

  // For each batch in turn: take(batch, out) under its lock puts up to N entries in `out`
  // and says how many; then act(entry) for each of them, with no lock held.
  template <std::size_t N, class Take, class Act>
  void take_from_each_batch(Take&& take, Act&& act) noexcept {
    Entry taken[N];
    for (Batch& batch : batches_) {
      std::size_t count;
      {
        MutexLock guard(batch.lock);
        count = take(batch, taken);
      }
      for (std::size_t i = 0; i < count; ++i) act(taken[i]);
    }
  }
  // Empties `batch` (its lock held) into the ring; what must leave goes to `evicted`; how
  // many. When the ring cannot be mapped the batch leaves whole when `leave_when_unmapped`
  // (its own thread, which has poisoned its entries), else stays where it is (another
  // thread's batch may hold an entry its thread has not poisoned yet).
  std::size_t move_to_ring_locked(Batch& batch, Entry* evicted, bool leave_when_unmapped) noexcept;
  // Maps the ring if that was not done yet; false when it cannot be. lock_ held.
  bool map_ring_locked() noexcept;
  // Copies `batch`'s entries to `out` and empties it, giving back its reservation (its
  // lock held); how many.
  std::size_t empty_batch_locked(Batch& batch, Entry* out) noexcept;
  std::size_t pop_excess_locked(Entry* out, std::size_t max) noexcept;
  bool pop_locked(Entry* out) noexcept;
  void push_locked(const Entry& entry) noexcept;
  // The first entry for which match(entry), batches then ring, to *out.
  template <class Match>
  bool search(Match&& match, Entry* out) noexcept;

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
