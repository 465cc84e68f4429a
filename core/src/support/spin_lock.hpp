// A test-and-test-and-set lock for the core's few, short critical sections (the smp
// allocator's span source and abandoned-heap list). Never held across a call that can
// allocate or wait for another thread. constinit-constructible; a fork child that
// inherited it locked calls reset() (the parent's holder does not exist there).
// (shim/spin_lock.hpp is the same lock; the shim may switch to this one.)
#pragma once

#include <atomic>

#include <sched.h>

namespace zheap::support {

class SpinLock {
 public:
  constexpr SpinLock() noexcept = default;
  bool try_lock() noexcept { return !locked_.exchange(true, std::memory_order_acquire); }
  void lock() noexcept {
    while (!try_lock()) {
      while (locked_.load(std::memory_order_relaxed)) ::sched_yield();
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }
  void reset() noexcept { locked_.store(false, std::memory_order_relaxed); }

 private:
  std::atomic<bool> locked_{false};
};

class SpinLockGuard {
 public:
  explicit SpinLockGuard(SpinLock& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~SpinLockGuard() { lock_.unlock(); }
  SpinLockGuard(const SpinLockGuard&) = delete;
  SpinLockGuard& operator=(const SpinLockGuard&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace zheap::support
