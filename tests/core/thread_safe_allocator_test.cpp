// Mutex and ThreadSafeAllocator. The 4-thread hammering of a non-thread-safe child is
// in composition_test.cpp.
#include <zheap/mutex.hpp>
#include <zheap/thread_safe_allocator.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "leak_check.hpp"

namespace {

TEST(Mutex, ExcludesUnderContention) {
  zheap::Mutex mutex;
  long counter = 0;  // not atomic: only the mutex keeps the increments whole
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200000; ++i) {
        zheap::MutexLock lock(mutex);
        counter = counter + 1;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter, 800000);
}

TEST(Mutex, TryLockFailsWhileHeld) {
  zheap::Mutex mutex;
  ASSERT_TRUE(mutex.try_lock());
  bool other_got_it = true;
  std::thread([&] { other_got_it = mutex.try_lock(); }).join();
  EXPECT_FALSE(other_got_it);
  mutex.unlock();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

// While the process has one thread, lock and unlock are plain stores (mutex.hpp). A lock
// taken so must still exclude a thread created while it is held, and its release (by
// then in a process with two threads) must wake that thread if it sleeps. Run in a
// process of its own (a threadsafe death test re-executes the binary for it alone): this
// one has made threads already, and the flag never comes back.
void take_plainly_then_hand_over() {
  if (!zheap::process_is_single_threaded()) std::_Exit(2);  // the fast path is not reached
  zheap::Mutex mutex;
  mutex.lock();
  std::atomic<bool> entered{false};
  std::thread other([&] {
    zheap::MutexLock lock(mutex);
    entered.store(true);
  });
  if (zheap::process_is_single_threaded()) std::_Exit(3);  // pthread_create cleared the flag
  // Long enough for the other thread to spin out and sleep on the futex.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (entered.load()) std::_Exit(4);  // the plain lock did not exclude it
  mutex.unlock();
  other.join();  // hangs (the test times out) if the release did not wake it
  std::_Exit(entered.load() ? 0 : 5);
}

TEST(Mutex, APlainLockTakenAloneExcludesAThreadCreatedWhileItIsHeld) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(take_plainly_then_hand_over(), ::testing::ExitedWithCode(0), "");
}

constinit zheap::Mutex global_mutex;  // constexpr-constructible: no static constructor

TEST(Mutex, WorksAsAConstinitGlobal) {
  zheap::MutexLock lock(global_mutex);
  EXPECT_FALSE(global_mutex.try_lock());
}

class ThreadSafeAllocatorTest : public LeakCheckedTest {};

TEST_F(ThreadSafeAllocatorTest, PassesEveryCallToTheChild) {
  zheap::ThreadSafeAllocator wrapper(gpa());
  EXPECT_EQ(wrapper.child(), gpa());
  auto a = wrapper.allocator();
  auto block = a.alloc<int>(10);
  ASSERT_NE(block.data(), nullptr);
  EXPECT_EQ(leaks_.testing().leaked_blocks(), 1u);
  auto grown = a.realloc(block, 5000);
  ASSERT_NE(grown.data(), nullptr);
  EXPECT_EQ(leaks_.testing().leaked_bytes(), 5000 * sizeof(int));
  a.free(grown);
}
}  // namespace
