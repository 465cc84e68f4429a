// Allocators stacked on one another, as Zig code stacks them: an arena over a failing
// allocator over pages, a stack fallback over an arena, a thread-safe wrapper making a
// single-threaded allocator shareable.
#include <zheap/arena_allocator.hpp>
#include <zheap/c_allocator.hpp>
#include <zheap/failing_allocator.hpp>
#include <zheap/fixed_buffer_allocator.hpp>
#include <zheap/page_allocator.hpp>
#include <zheap/stack_fallback_allocator.hpp>
#include <zheap/testing_allocator.hpp>
#include <zheap/thread_safe_allocator.hpp>
#include <zheap/validating_allocator.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <mutex>
#include <latch>
#include <random>
#include <thread>
#include <vector>

#include "leak_check.hpp"
#include "violation_recorder.hpp"

namespace {
using zheap::Alignment;
using zheap::Allocator;

// ---- Arena over failing over page: out of memory at every step of the arena's life.

struct Record {
  Record* next;
  std::span<char> text;
  std::uint64_t check;  // derived from the text, to see the record intact later
};

std::uint64_t checksum(std::span<const char> text) {
  std::uint64_t sum = 1469598103934665603ull;
  for (char c : text) sum = (sum ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return sum;
}

// Builds a list of records with texts of growing size in the arena, stopping at the
// first allocation that fails; answers how many records it made, and checks that every
// one made is intact.
int build_records(Allocator arena, int wanted) {
  Record* head = nullptr;
  int made = 0;
  for (; made < wanted; ++made) {
    auto text = arena.alloc<char>(1 + static_cast<std::size_t>(made) * 37 % 5000);
    if (text.data() == nullptr) break;
    for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + (i + made) % 26);
    Record* record = arena.create<Record>(Record{head, text, checksum(text)});
    if (record == nullptr) break;
    head = record;
  }
  int intact = 0;
  for (Record* r = head; r != nullptr; r = r->next) intact += checksum(r->text) == r->check;
  EXPECT_EQ(intact, made);
  return made;
}

TEST(Composition, ArenaOverFailingOverPageHandlesOutOfMemoryAtEveryStep) {
  int full_run_records = -1;
  std::size_t k = 0;
  for (; k < 200; ++k) {
    SCOPED_TRACE(::testing::Message() << "fail_index " << k);
    LeakCheck leaks;
    zheap::FailingAllocator failing(leaks.allocator(), {.fail_index = k});
    {
      zheap::ArenaAllocator arena(failing.allocator());
      // One validator per arena generation: reset() ends every block without a free.
      int made;
      {
        zheap::ValidatingAllocator validating(arena.allocator(), fail_test_on_violation());
        made = build_records(validating.allocator(), 300);
      }
      // Keeping capacity needs one buffer as large as all: another child allocation, which
      // may be the one that fails; then reset says so, and the arena still holds nothing
      // it cannot give back.
      const bool kept = arena.reset(zheap::ResetMode::retain_capacity);
      int made_after_reset;
      {
        zheap::ValidatingAllocator validating(arena.allocator(), fail_test_on_violation());
        made_after_reset = build_records(validating.allocator(), 50);
      }
      if (!failing.has_induced_failure()) {
        EXPECT_EQ(made, 300);
        EXPECT_TRUE(kept);
        EXPECT_EQ(made_after_reset, 50);
        full_run_records = made;
      }
    }
    EXPECT_EQ(failing.allocations(), failing.deallocations()) << "the arena kept a buffer after its destructor";
    if (!failing.has_induced_failure()) break;
  }
  EXPECT_EQ(full_run_records, 300) << "never ran without a failure";
  EXPECT_GT(k, 2u) << "the arena should need several buffers for this";
}

// ---- Stack fallback over arena

TEST(Composition, StackFallbackOverArena) {
  LeakCheck leaks;
  zheap::ArenaAllocator arena(leaks.allocator());
  {
    zheap::StackFallbackAllocator<1024> stack(arena.allocator());
    zheap::ValidatingAllocator validating(stack.get(), fail_test_on_violation());
    const Allocator a = validating.allocator();

    auto small = a.alloc<char>(100);
    ASSERT_NE(small.data(), nullptr);
    EXPECT_TRUE(stack.owns_ptr(small.data()));
    EXPECT_EQ(arena.query_capacity(), 0u);  // the arena has not been asked yet

    auto big = a.alloc<char>(5000);  // more than the stack buffer: from the arena
    ASSERT_NE(big.data(), nullptr);
    EXPECT_FALSE(stack.owns_ptr(big.data()));
    EXPECT_GE(arena.query_capacity(), 5000u);
    std::memset(big.data(), 'b', big.size());

    // Grows past the stack buffer: realloc moves it to the arena, contents kept.
    std::memset(small.data(), 's', small.size());
    auto grown = a.realloc(small, 3000);
    ASSERT_NE(grown.data(), nullptr);
    EXPECT_FALSE(stack.owns_ptr(grown.data()));
    EXPECT_EQ(std::string_view(grown.data(), 100), std::string(100, 's'));
    for (char c : big) ASSERT_EQ(c, 'b');

    a.free(grown);
    a.free(big);
    // The stack buffer is free again: a small block lands there.
    auto again = a.alloc<char>(500);
    EXPECT_TRUE(stack.owns_ptr(again.data()));
    a.free(again);
  }
  EXPECT_GT(leaks.testing().leaked_blocks(), 0u);  // the arena's buffers, until...
  arena.reset(zheap::ResetMode::free_all);
  EXPECT_EQ(leaks.testing().leaked_blocks(), 0u);  // ...the arena gives them back
}

// ---- ThreadSafeAllocator: four threads on one allocator that is not thread-safe

// Every live block of every thread, to catch two threads handed overlapping memory the
// moment it happens (the fill patterns catch it later too).
class LiveRanges {
 public:
  void add(const void* p, std::size_t len) {
    const auto start = reinterpret_cast<std::uintptr_t>(p);
    std::lock_guard lock(mutex_);
    auto next = ranges_.upper_bound(start);
    if (next != ranges_.end() && start + len > next->first) overlaps_ += 1;
    if (next != ranges_.begin() && std::prev(next)->first + std::prev(next)->second > start) overlaps_ += 1;
    ranges_.emplace(start, len);
  }
  void remove(const void* p) {
    std::lock_guard lock(mutex_);
    ranges_.erase(reinterpret_cast<std::uintptr_t>(p));
  }
  int overlaps() {
    std::lock_guard lock(mutex_);
    return overlaps_;
  }

 private:
  std::mutex mutex_;
  std::map<std::uintptr_t, std::size_t> ranges_;
  int overlaps_ = 0;
};

constexpr int thread_count = 4;
constexpr int operations_per_thread = 20000;

// One thread's share: allocate, fill with a pattern of its own, sometimes grow with
// realloc, check and free; returns the number of corrupted blocks it found.
int hammer(Allocator a, LiveRanges& ranges, unsigned thread, std::latch& start) {
  struct Block {
    std::span<unsigned char> bytes;
    unsigned char mark;
  };
  std::mt19937 random(thread);
  std::vector<Block> live;
  live.reserve(64);
  int corrupted = 0;
  start.arrive_and_wait();  // all four at once, or they may never overlap
  auto intact = [](const Block& b) {
    for (unsigned char c : b.bytes)
      if (c != b.mark) return false;
    return true;
  };
  auto release = [&](std::size_t index) {
    corrupted += !intact(live[index]);
    ranges.remove(live[index].bytes.data());
    a.free(live[index].bytes);
    live[index] = live.back();
    live.pop_back();
  };
  for (int op = 0; op < operations_per_thread; ++op) {
    const unsigned choice = random() % 10;
    if (!live.empty() && (choice < 4 || live.size() >= 64)) {
      release(random() % live.size());
    } else if (!live.empty() && choice < 5) {
      Block& b = live[random() % live.size()];
      corrupted += !intact(b);
      ranges.remove(b.bytes.data());
      auto grown = a.realloc(b.bytes, b.bytes.size() + 1 + random() % 256);
      if (grown.data() == nullptr) return -1;
      std::memset(grown.data(), b.mark, grown.size());
      b.bytes = grown;
      ranges.add(grown.data(), grown.size());
    } else {
      auto bytes = a.alloc<unsigned char>(1 + random() % 512);
      if (bytes.data() == nullptr) return -1;
      const auto mark = static_cast<unsigned char>(thread * 61 + op);
      std::memset(bytes.data(), mark, bytes.size());
      ranges.add(bytes.data(), bytes.size());
      live.push_back({bytes, mark});
    }
  }
  while (!live.empty()) release(live.size() - 1);
  return corrupted;
}

void hammer_from_threads(Allocator shared) {
  LiveRanges ranges;
  std::vector<int> corrupted(thread_count);
  std::latch start(thread_count);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < thread_count; ++t)
    threads.emplace_back([&, t] { corrupted[t] = hammer(shared, ranges, t, start); });
  for (auto& thread : threads) thread.join();
  for (unsigned t = 0; t < thread_count; ++t) EXPECT_EQ(corrupted[t], 0) << "thread " << t;
  EXPECT_EQ(ranges.overlaps(), 0);
}

TEST(Composition, ThreadSafeArenaUnderFourThreads) {
  LeakCheck leaks;
  zheap::ArenaAllocator arena(leaks.allocator());
  zheap::ThreadSafeAllocator shared(arena.allocator());
  hammer_from_threads(shared.allocator());
}

TEST(Composition, ThreadSafeFixedBufferUnderFourThreads) {
  auto buffer = zheap::page_allocator().alloc<std::byte>(std::size_t{64} << 20);
  ASSERT_NE(buffer.data(), nullptr);
  {
    zheap::FixedBufferAllocator fixed(buffer);
    zheap::ThreadSafeAllocator shared(fixed.allocator());
    hammer_from_threads(shared.allocator());
  }
  zheap::page_allocator().free(buffer);
}

// FailingAllocator's counters are plain integers: only the wrapper's lock keeps every
// increment, so exact totals show that each call ran alone.
TEST(Composition, ThreadSafeFailingAllocatorCountsEveryCall) {
  zheap::FailingAllocator counting(zheap::c_allocator());  // a fast child: the counters are hot
  zheap::ThreadSafeAllocator shared(counting.allocator());
  hammer_from_threads(shared.allocator());
  EXPECT_EQ(counting.allocations(), counting.deallocations());
  EXPECT_EQ(counting.allocated_bytes(), counting.freed_bytes());
  EXPECT_GT(counting.allocations(), std::size_t{thread_count} * operations_per_thread / 3);
}

}  // namespace
