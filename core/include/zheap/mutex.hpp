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
//
// While the process has one thread, lock and unlock are plain loads and stores, as glibc's
// malloc does (SINGLE_THREAD_P): the locked instructions of a lock and unlock cost 16 ns
// on the development machine, and the debug allocator takes three such locks per malloc
// and free. Safe because nothing can contend: glibc clears __libc_single_threaded in
// pthread_create before the second thread exists, in the thread that creates it (which
// holds none of our locks then: no zheap code creates threads), and never sets it again
// (glibc 2.36 leaves it clear even in a fork child). A lock taken plainly and released
// after the process gained threads is released by the exchange, which finds no sleeper
// or wakes one, as it must.
#pragma once

#include <atomic>
#include <cstdint>

#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define ZHEAP_KNOWS_SINGLE_THREADED 1
#endif

namespace zheap {

// Whether the calling thread is the only one in the process (false when unknown).
inline bool process_is_single_threaded() noexcept {
#ifdef ZHEAP_KNOWS_SINGLE_THREADED
  return __libc_single_threaded != 0;
#else
  return false;
#endif
}

class Mutex {
 public:
  constexpr Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() noexcept {
    if (process_is_single_threaded() && state_.load(std::memory_order_relaxed) == 0) {
      state_.store(1, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // the state, then the section
      return;
    }
    std::uint32_t expected = 0;
    if (state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) return;
    lock_contended();
  }
  bool try_lock() noexcept {
    std::uint32_t expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    if (process_is_single_threaded()) {
      std::atomic_signal_fence(std::memory_order_seq_cst);  // the section, then the state
      state_.store(0, std::memory_order_relaxed);
      return;
    }
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
