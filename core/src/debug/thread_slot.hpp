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

// The calling thread's slot, in [0, kThreadSlots). No allocation, no lock.
std::size_t thread_slot() noexcept;

// The calling thread's slot when it is the only thread that will ever be given it (the
// first kThreadSlots threads of the process: slots are handed out in turn and never twice
// until the count wraps), else kThreadSlots. Per-slot state such a thread keeps needs no
// lock against other threads, only against itself (a signal handler on the same thread).
std::size_t exclusive_thread_slot() noexcept;

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
