// Mutex: the lock zheap's allocators take, a futex word and nothing else.
//
// Why not std::mutex: this one is 4 bytes, constexpr-constructible (so it can sit in
// constinit globals of the shim), never allocates, and its slow path is one futex
// system call behind os.hpp. Uncontended lock/unlock is one atomic exchange each.
// Not recursive; not fair. The shim takes it across fork() only through its own
// pthread_atfork handlers, in the order it documents there.
//
// States (Drepper, "Futexes are tricky", mutex 3): 0 unlocked, 1 locked with no
// waiter, 2 locked and someone may be sleeping (unlock must wake).
#pragma once

#include <atomic>
#include <cstdint>

namespace zheap {

class Mutex {
 public:
  constexpr Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() noexcept {
    std::uint32_t expected = 0;
    if (state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    lock_contended();
  }
  bool try_lock() noexcept {
    std::uint32_t expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    if (state_.exchange(0, std::memory_order_release) == 2) wake_one();
  }

 private:
  void lock_contended() noexcept;
  void wake_one() noexcept;

  std::atomic<std::uint32_t> state_{0};
};

// Scoped lock for Mutex (std::lock_guard works too; this one needs no <mutex>).
class MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) noexcept : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() { mutex_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mutex_;
};

}  // namespace zheap
