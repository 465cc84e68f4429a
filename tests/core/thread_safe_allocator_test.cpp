// Mutex and ThreadSafeAllocator. The 4-thread hammering of a non-thread-safe child is
// in composition_test.cpp.
#include <zheap/mutex.hpp>
#include <zheap/thread_safe_allocator.hpp>

#include <gtest/gtest.h>

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
