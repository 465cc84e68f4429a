// A test-and-test-and-set lock for the shim's few, short critical sections (start-up,
// the arena's span list and retired thread states). Never held across a call that can
// allocate or block on another thread. constinit-constructible; a fork child re-creates
// it with reset() (the parent's holder does not exist there).
#pragma once

#include <atomic>

#include <sched.h>

namespace zheap::shim {

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

}  // namespace zheap::shim
