// RecycleBins: per thread, small blocks that just left the quarantine, kept for that
// thread's next allocations of their size instead of going back to the backing allocator.
//
// For: a block leaves the quarantine after its poison was read, so its cache lines are in
// the evicting thread's cache just then. Released to the backing allocator (smp, whose
// blocks belong to the thread that owns their page), it went to another thread's free
// list whenever that thread owned it, and that thread's next allocation missed on the
// block's first line (larson at 8 threads: smp's allocate, one load, 16% of the samples).
// Kept here, the next allocation of the size on the evicting thread takes it while it is
// still hot, and neither the remote free nor the cold allocation happens. glibc's tcache
// and ASan's allocator caches serve freed blocks to the freeing thread in the same way.
// Only blocks another thread got from the backing are kept: a thread's own go back to
// the backing, whose free of them is local and whose next allocation reuses them hot
// (keeping those too made a single-threaded program slower, 5-12% on larson at 1 thread:
// two pools to reuse from instead of one).
// A kept block has left the quarantine for good (its poison was checked): keeping it
// longer takes nothing from the use-after-free checks.
//
// What is kept: blocks the backing gave with 16-byte alignment (DebugAllocator asks for
// at least that) of at most kMaxBytes, in bins of kGranule-byte classes by the length
// asked of the backing (DebugAllocator asks for whole granules, so a block serves
// requests of its own length), at most kPerClass per class and kMaxBytesPerThread per
// thread. A block is handed out only for a length it covers whole; its own length stays
// with it (it is what the backing must be given back).
// Thread safety: a thread uses only its own slot's bins, and only when it holds that slot
// exclusively (thread_slot.hpp: the first kThreadSlots threads), so no lock; a signal
// handler that interrupted its own thread's use finds the bins busy and does without.
// A thread that exits leaves its bins as they are (at most kMaxBytesPerThread): nothing is
// lost, they are released by drain() when the allocator is destroyed. The same holds in a
// fork() child for the bins of the parent's other threads (no lock to take for fork: each
// bin's count only ever covers written entries).
#pragma once

#include "debug/thread_slot.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace zheap::debug {

class RecycleBins {
 public:
  static constexpr std::size_t kGranule = 16;
  static constexpr std::size_t kMaxBytes = 1024;
  static constexpr std::size_t kClasses = kMaxBytes / kGranule + 1;
  static constexpr std::size_t kPerClass = 8;
  static constexpr std::size_t kMaxBytesPerThread = std::size_t{64} << 10;

  struct Block {
    void* base;
    std::size_t length;  // as asked of the backing allocator
    std::uint8_t owner;  // BlockRecord::backing_thread: it stays the backing's owner
  };

  constexpr RecycleBins() noexcept = default;
  RecycleBins(const RecycleBins&) = delete;
  RecycleBins& operator=(const RecycleBins&) = delete;

  // Keeps `block` (16-byte aligned, from the backing) for the calling thread; false when
  // it cannot (too big, no exclusive slot, bin or thread full): release it then.
  bool keep(Block block) noexcept {
    if (block.length > kMaxBytes) return false;
    Bins* bins = own_bins();
    if (bins == nullptr) return false;
    SelfLease lease;
    if (!lease.take(bins->busy)) return false;
    Bin& bin = bins->bins[block.length / kGranule];  // every block in it is at least 16 x index bytes
    if (bin.count == kPerClass || bins->bytes + block.length > kMaxBytesPerThread) return false;
    // The entry before the count that covers it: a fork() while this thread is here leaves
    // the child a bin with the block or without it, never a count over an unwritten entry
    // (drain() would give the backing whatever that entry held).
    bin.blocks[bin.count] = block;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    ++bin.count;
    bins->bytes += block.length;
    return true;
  }

  // A kept block of at least `length` bytes, taken out of the calling thread's bins;
  // false when there is none.
  bool take(std::size_t length, Block* out) noexcept {
    const std::size_t index = (length + kGranule - 1) / kGranule;  // blocks there are long enough
    if (index >= kClasses) return false;
    Bins* bins = own_bins();
    if (bins == nullptr) return false;
    SelfLease lease;
    if (!lease.take(bins->busy)) return false;
    Bin& bin = bins->bins[index];
    if (bin.count == 0) return false;
    *out = bin.blocks[--bin.count];
    bin.blocks[bin.count] = Block{};  // no stale address of a block that is live again
    bins->bytes -= out->length;
    return true;
  }

  // Calls release(block) for every kept block of every thread and empties the bins. For
  // teardown: no thread may use the bins meanwhile.
  template <class Release>
  void drain(Release&& release) noexcept {
    for (Bins& bins : slots_) {
      for (Bin& bin : bins.bins) {
        while (bin.count > 0) {
          release(bin.blocks[--bin.count]);
          bin.blocks[bin.count] = Block{};
        }
      }
      bins.bytes = 0;
    }
  }

 private:
  struct Bin {
    std::uint32_t count = 0;
    Block blocks[kPerClass]{};
  };
  struct alignas(64) Bins {
    std::atomic<bool> busy{false};
    std::size_t bytes = 0;
    Bin bins[kClasses];
  };

  Bins* own_bins() noexcept {
    const std::size_t slot = exclusive_thread_slot();
    return slot == kThreadSlots ? nullptr : &slots_[slot];
  }

  Bins slots_[kThreadSlots];
};

}  // namespace zheap::debug
