// Quarantine: the FIFO of freed blocks the debug allocator holds back from reuse.
//
// A freed block is poisoned and pushed here; it is really released only when it leaves
// (oldest first, once the bytes held pass the limit), and checked for writes after free
// then. Holding blocks back is what turns a use after free into a visible corruption
// instead of a silent read of someone else's data.
// Bounded twice: by bytes (the limit given) and by entries (a ring on one mapping,
// kCapacity entries; when full, the oldest leaves early).
// Thread safety: one Mutex, held only to push or pop an entry; the caller checks and
// releases what pop() hands back with no lock held.
#pragma once

#include <zheap/debug_allocator.hpp>
#include <zheap/mutex.hpp>

#include <cstddef>
#include <cstdint>

namespace zheap::debug {

class Quarantine {
 public:
  static constexpr std::size_t kCapacity = std::size_t{1} << 16;

  struct Entry {
    std::uintptr_t address = 0;
    std::size_t bytes = 0;
  };

  constexpr explicit Quarantine(std::size_t max_bytes) noexcept : max_bytes_(max_bytes) {}
  ~Quarantine();
  Quarantine(const Quarantine&) = delete;
  Quarantine& operator=(const Quarantine&) = delete;

  // false: not held (too big for the limit, or no memory for the ring); the caller
  // releases the block at once.
  bool push(Entry entry) noexcept;
  // Whether a block of `bytes` fits the limit at all (push may still refuse it): the
  // caller need not poison a block that can only be released at once.
  bool could_hold(std::size_t bytes) const noexcept { return bytes <= max_bytes_; }
  // The oldest entry, when the bytes held exceed the limit or the ring is full.
  bool pop_excess(Entry* out) noexcept;
  // The oldest entry, whatever is held (to drain it).
  bool pop_any(Entry* out) noexcept;
  // Calls visit(entry) for each held entry, oldest first, under the lock.
  template <class Visit>
  void for_each(Visit&& visit) noexcept {
    MutexLock guard(lock_);
    for (std::size_t i = 0; i < count_; ++i) visit(ring_[(head_ + i) & (kCapacity - 1)]);
  }

  std::size_t bytes() const noexcept;
  // The ring's mapping (it holds the addresses of quarantined blocks; a leak scan must not
  // take it for a root); empty before the first push.
  AddressRange mapping() const noexcept;

  // For fork(): held across it by the allocator's fork handlers.
  void lock() noexcept { lock_.lock(); }
  void unlock() noexcept { lock_.unlock(); }

 private:
  bool pop_locked(Entry* out) noexcept;

  std::size_t max_bytes_;
  Mutex lock_;
  Entry* ring_ = nullptr;
  std::size_t head_ = 0;   // oldest
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace zheap::debug
