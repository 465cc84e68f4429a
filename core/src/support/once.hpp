// Once: run an initialisation exactly once per process, for code that may run inside
// malloc (no mutex, no allocation, nothing held across fork).
//
// The first caller runs `init`; concurrent callers spin (yielding) until it is done: a few
// microseconds, once per process. Two cases cannot wait and are answered instead:
//   - a call re-entered on the initialising thread itself (a signal handler that
//     allocates during `init`): run() returns false and the caller falls back (except
//     in the few instructions before the runner has recorded its thread id);
//   - a child forked while another thread was initialising: that thread does not exist
//     in the child, so the child takes over and runs `init` itself.
// Once is constexpr-constructible: keep it constinit.
#pragma once

#include <atomic>

#include "os/os.hpp"

namespace zheap::support {

class Once {
 public:
  constexpr Once() noexcept = default;

  bool done() const noexcept { return state_.load(std::memory_order_acquire) == finished; }

  // True once `init` has run to completion (now or earlier); false only for a call made
  // re-entrantly from inside `init`.
  template <class Init>
  bool run(Init&& init) noexcept {
    if (done()) [[likely]] return true;
    int expected = not_started;
    if (state_.compare_exchange_strong(expected, running, std::memory_order_acquire)) {
      run_now(init);
      return true;
    }
    if (runner_thread_.load(std::memory_order_relaxed) == os::thread_id()) return false;
    while (!done()) {
      // 0: the runner has not recorded itself yet; keep waiting.
      int runner = runner_process_.load(std::memory_order_relaxed);
      const int self = os::process_id();
      if (runner != 0 && runner != self && runner_process_.compare_exchange_strong(runner, self)) {
        // Forked mid-initialisation: the runner is not in this process; this thread won
        // the takeover among the child's threads.
        finish(init);
        return true;
      }
      os::yield();
    }
    return true;
  }

 private:
  enum State : int { not_started, running, finished };

  template <class Init>
  void run_now(Init& init) noexcept {
    runner_process_.store(os::process_id(), std::memory_order_relaxed);
    finish(init);
  }
  template <class Init>
  void finish(Init& init) noexcept {
    runner_thread_.store(os::thread_id(), std::memory_order_relaxed);
    init();
    state_.store(finished, std::memory_order_release);
  }

  std::atomic<int> state_{not_started};
  std::atomic<int> runner_thread_{0};
  std::atomic<int> runner_process_{0};
};

}  // namespace zheap::support
