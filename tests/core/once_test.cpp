// support::Once: exactly once across threads, re-entry answered, fork mid-initialisation.
#include "support/once.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace {
using zheap::support::Once;

TEST(Once, RunsOnceForManyThreads) {
  static constinit Once once;
  static std::atomic<int> runs{0};
  static std::atomic<bool> seen_unfinished{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([] {
      const bool ok = once.run([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let the others pile up
        runs.fetch_add(1);
      });
      if (!ok || !once.done()) seen_unfinished = true;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_FALSE(seen_unfinished.load());
}

TEST(Once, ReentryFromTheRunnerIsAnsweredNotAwaited) {
  static constinit Once once;
  static int inner_result = -1;
  EXPECT_TRUE(once.run([] { inner_result = once.run([] {}) ? 1 : 0; }));
  EXPECT_EQ(inner_result, 0);
  EXPECT_TRUE(once.done());
}

TEST(Once, ChildForkedMidInitialisationTakesOver) {
  static constinit Once once;
  static std::atomic<bool> started{false}, release{false};
  static std::atomic<int> runs{0};
  std::thread runner([] {
    once.run([] {
      started = true;
      while (!release) std::this_thread::yield();
      runs.fetch_add(1);
    });
  });
  while (!started) std::this_thread::yield();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The runner thread does not exist here: without the takeover this would spin forever.
    const bool ok = once.run([] { runs.fetch_add(10); });
    ::_exit(ok && once.done() && runs.load() == 10 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  release = true;
  runner.join();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(runs.load(), 1);
}

}  // namespace
