// Mutex's slow paths: sleeping on and waking the futex word.
#include <zheap/mutex.hpp>

#include "os/os.hpp"

namespace zheap {

void Mutex::lock_contended() noexcept {
  // A short spin first: allocator critical sections are a few hundred instructions, so
  // the holder usually lets go before a system call would have returned.
  for (int spin = 0; spin < 100; ++spin) {
    std::uint32_t expected = 0;
    if (state_.load(std::memory_order_relaxed) == 0 &&
        state_.compare_exchange_weak(expected, 1, std::memory_order_acquire, std::memory_order_relaxed))
      return;
    os::cpu_relax();
  }
  // Mark "waiters may sleep" and sleep until the word is released; taking it with
  // state 2 (not 1) is what keeps later unlocks waking the other sleepers.
  while (state_.exchange(2, std::memory_order_acquire) != 0) os::futex_wait(&state_, 2);
}

void Mutex::wake_one() noexcept { os::futex_wake(&state_, 1); }

}  // namespace zheap
