// thread_slot(): a small number per thread, for per-thread state kept in fixed arrays.
//
// For: the debug allocator's per-thread parts (the quarantine's batches, the stack
// walker's memo of the previous capture) live in arrays of kThreadSlots entries rather
// than in thread-local storage of their own: initial-exec TLS must stay a few bytes (a
// library dlopen()ed with zheap's core inside gets only glibc's small static TLS
// surplus), and an entry in an array outlives its thread, so nothing is lost or left
// dangling at thread exit. Slots are handed out in turn, once per thread (kept in 4
// bytes of initial-exec TLS), so threads alive together rarely share one; beyond
// kThreadSlots threads they do, and every user must allow for that (a lock or a try-lock
// per entry).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace zheap::debug {

inline constexpr std::size_t kThreadSlots = 64;

namespace thread_slot_detail {
// The slot plus one, with kExclusive set for the first kThreadSlots threads; 0 until the
// thread first asks. Read inline: a slot is asked for several times per allocation and
// per free (the memo, the recent stacks, the quarantine batch, the recycle bins).
[[gnu::tls_model("initial-exec")]] extern constinit thread_local std::uint32_t slot_plus_one;
inline constexpr std::uint32_t kExclusive = std::uint32_t{1} << 31;
// Hands the calling thread its slot (the first time only) and returns slot_plus_one.
std::uint32_t assign_slot() noexcept;

inline std::uint32_t slot_bits() noexcept {
  const std::uint32_t bits = slot_plus_one;
  if (bits == 0) [[unlikely]] return assign_slot();
  return bits;
}
}  // namespace thread_slot_detail

// The calling thread's slot, in [0, kThreadSlots). No allocation, no lock.
inline std::size_t thread_slot() noexcept {
  return (thread_slot_detail::slot_bits() & ~thread_slot_detail::kExclusive) - 1;
}

// The calling thread's slot when it is the only thread that will ever be given it (the
// first kThreadSlots threads of the process: slots are handed out in turn and never twice
// until the count wraps), else kThreadSlots. Per-slot state such a thread keeps needs no
// lock against other threads, only against itself (a signal handler on the same thread).
inline std::size_t exclusive_thread_slot() noexcept {
  const std::uint32_t bits = thread_slot_detail::slot_bits();
  return (bits & thread_slot_detail::kExclusive) != 0 ? (bits & ~thread_slot_detail::kExclusive) - 1 : kThreadSlots;
}

// The hold of an exclusive slot's state (exclusive_thread_slot()) by its thread, against
// that thread itself only: a signal handler that interrupted its use must not use it too.
// No locked instruction (no other thread uses the state); compiler fences order the flag
// around the state's use.
class SelfLease {
 public:
  SelfLease() noexcept = default;
  SelfLease(const SelfLease&) = delete;
  SelfLease& operator=(const SelfLease&) = delete;
  ~SelfLease() {
    if (busy_ == nullptr) return;
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the state's use, then the flag
    busy_->store(false, std::memory_order_relaxed);
  }

  // Takes `busy` until destruction; false (nothing taken) when the thread holds it already.
  bool take(std::atomic<bool>& busy) noexcept {
    if (busy.load(std::memory_order_relaxed)) return false;
    busy.store(true, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the flag, then the state's use
    busy_ = &busy;
    return true;
  }

 private:
  std::atomic<bool>* busy_ = nullptr;
};

}  // namespace zheap::debug
