// What is special to the smp allocator: size classes, O(1) usable size, alignments, realloc
// in place, frees from other threads, thread exit, large-block reuse, memory given back,
// fork. (The multi-threaded randomized stress test is smp_stress_test.cpp.)
#include <zheap/smp_allocator.hpp>

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "smp/size_classes.hpp"
#include "smp/smp.hpp"

namespace {

namespace smp = zheap::smp;
using zheap::Alignment;

constexpr std::size_t MiB = std::size_t{1} << 20;

unsigned char pattern_byte(const void* block, std::size_t i) {
  return static_cast<unsigned char>((reinterpret_cast<std::uintptr_t>(block) >> 4) + i * 7);
}
void fill(void* block, std::size_t len) {
  auto* bytes = static_cast<unsigned char*>(block);
  for (std::size_t i = 0; i < len; ++i) bytes[i] = pattern_byte(block, i);
}
bool intact(const void* block, std::size_t len, const void* filled_as) {
  const auto* bytes = static_cast<const unsigned char*>(block);
  for (std::size_t i = 0; i < len; ++i) {
    if (bytes[i] != pattern_byte(filled_as, i)) return false;
  }
  return true;
}

TEST(SmpSizeClasses, EveryClassIsTheSmallestThatFits) {
  static_assert(smp::class_table_is_consistent());
  for (std::size_t c = 0; c < smp::class_count; ++c) {
    const std::size_t size = smp::class_size(c);
    EXPECT_EQ(size % 16, 0u) << c;
    EXPECT_EQ(smp::class_of(size), c);
    if (c + 1 < smp::class_count) {
      EXPECT_EQ(smp::class_of(size + 1), c + 1);
    }
    if (c > 0) {
      // The waste bound the header promises: a block is under 1.25x the request (or 16 bytes more).
      const std::size_t smallest_request = smp::class_size(c - 1) + 1;
      EXPECT_TRUE(size * 4 < smallest_request * 5 || size - smallest_request < 16) << size;
    }
  }
}

TEST(SmpAllocator, UsableSizeIsTheClassSizeAndAtLeastTheRequest) {
  for (std::size_t size = 0; size <= 300000; size = size < 2048 ? size + 1 : size * 9 / 8) {
    void* p = smp::allocate(size, 16);
    ASSERT_NE(p, nullptr) << size;
    const std::size_t usable = smp::usable_size(p);
    EXPECT_GE(usable, size);
    if (size <= smp::max_class_size) {
      EXPECT_EQ(usable, smp::class_size(smp::class_of(size))) << size;
    }
    EXPECT_TRUE(Alignment::of_bytes(16).check(p)) << size;
    EXPECT_TRUE(smp::owns(p));
    std::memset(p, 0x5a, usable);  // all of it is the caller's
    smp::release(p);
  }
}

TEST(SmpAllocator, ZeroSizedBlocksAreDistinct) {
  void* a = smp::allocate(0, 16);
  void* b = smp::allocate(0, 16);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  smp::release(a);
  smp::release(b);
}

TEST(SmpAllocator, HonoursAlignmentsFromOneByteToAboveTheSegmentSize) {
  for (std::size_t align = 1; align <= 16 * MiB; align <<= 1) {
    for (std::size_t len : {std::size_t{1}, std::size_t{24}, std::size_t{100}, std::size_t{5000}, std::size_t{300000}}) {
      void* p = smp::allocate(len, align);
      ASSERT_NE(p, nullptr) << align << " " << len;
      EXPECT_TRUE(Alignment::of_bytes(align).check(p)) << align << " " << len;
      EXPECT_GE(smp::usable_size(p), len);
      fill(p, len);
      EXPECT_TRUE(intact(p, len, p));
      smp::release(p);
    }
  }
}

TEST(SmpAllocator, AllocatorHandleKeepsTheContract) {
  zheap::Allocator a = zheap::smp_allocator();
  auto s = a.alloc<std::uint64_t>(10);
  ASSERT_NE(s.data(), nullptr);
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = i;
  // 80 bytes live in the 80-byte class: growing past it cannot happen in place.
  EXPECT_FALSE(a.resize(s, 11));
  EXPECT_TRUE(a.resize(s, 5));
  s = s.first(5);
  auto grown = a.realloc(s, 1000);
  ASSERT_NE(grown.data(), nullptr);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(grown[i], i);
  a.free(grown);

  auto big = a.alloc<unsigned char>(2 * MiB, Alignment::of_bytes(4096));
  ASSERT_NE(big.data(), nullptr);
  fill(big.data(), big.size());
  // A large block (above 1 MiB) grows in place inside its span.
  ASSERT_TRUE(a.resize(big, 3 * MiB));
  big = {big.data(), 3 * MiB};
  EXPECT_TRUE(intact(big.data(), 2 * MiB, big.data()));
  std::memset(big.data() + 2 * MiB, 1, MiB);
  a.free(big);
}

TEST(SmpAllocator, ReallocKeepsContentsWhileGrowingAndShrinking) {
  std::size_t size = 1;
  void* p = smp::allocate(size, 16);
  fill(p, size);
  const void* filled_as = p;
  std::vector<unsigned char> expected(static_cast<unsigned char*>(p), static_cast<unsigned char*>(p) + size);
  while (size < 6 * MiB) {
    const std::size_t next = size * 3 / 2 + 1;
    void* q = smp::reallocate(p, next);
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(std::memcmp(q, expected.data(), size), 0) << size << " -> " << next;
    expected.resize(next);
    for (std::size_t i = size; i < next; ++i) expected[i] = static_cast<unsigned char>(i * 13);
    std::memcpy(static_cast<unsigned char*>(q) + size, expected.data() + size, next - size);
    p = q;
    size = next;
  }
  (void)filled_as;
  for (std::size_t shrink : {std::size_t{100000}, std::size_t{1000}, std::size_t{10}}) {
    void* q = smp::reallocate(p, shrink);
    ASSERT_NE(q, nullptr);
    ASSERT_EQ(std::memcmp(q, expected.data(), shrink), 0) << shrink;
    p = q;
  }
  smp::release(p);
}

TEST(SmpAllocator, ReallocWithinTheClassStaysInPlace) {
  void* p = smp::allocate(100, 16);  // the 112-byte class
  EXPECT_EQ(smp::reallocate(p, 112), p);
  EXPECT_EQ(smp::reallocate(p, 60), p);
  smp::release(p);
}

TEST(SmpAllocator, ProducerConsumerFreesComeBackToTheProducer) {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<void*> queue;
  bool done = false;
  constexpr int rounds = 30;
  constexpr int per_round = 20000;
  std::size_t committed_after_first_round = 0;
  std::size_t committed_at_end = 0;
  std::size_t bad = 0;

  std::thread consumer([&] {
    for (;;) {
      std::unique_lock lock(mutex);
      ready.wait(lock, [&] { return done || !queue.empty(); });
      if (queue.empty()) return;
      void* p = queue.front();
      queue.pop_front();
      lock.unlock();
      if (!intact(p, 64, p)) ++bad;
      smp::release(p);
    }
  });
  std::thread producer([&] {
    for (int round = 0; round < rounds; ++round) {
      for (int i = 0; i < per_round; ++i) {
        void* p = smp::allocate(64, 16);
        fill(p, 64);
        std::lock_guard lock(mutex);
        queue.push_back(p);
        ready.notify_one();
      }
      // Let the consumer catch up, so that each round can reuse the last one's blocks.
      for (;;) {
        std::lock_guard lock(mutex);
        if (queue.empty()) break;
      }
      if (round == 0) committed_after_first_round = smp::stats().committed_bytes;
    }
    committed_at_end = smp::stats().committed_bytes;
    std::lock_guard lock(mutex);
    done = true;
    ready.notify_one();
  });
  producer.join();
  consumer.join();
  EXPECT_EQ(bad, 0u);
  // 30 rounds of 1.25 MiB: without remote frees coming back this grows by ~37 MiB.
  EXPECT_LE(committed_at_end, committed_after_first_round + 8 * MiB);
}

// Small blocks freed by another thread are held back and pushed to their page a batch at
// a time: when 16 are held, when the next one is for another page, when the freeing
// thread makes a page, trims or exits.
TEST(SmpAllocator, RemoteFreesArePushedInBatches) {
  std::vector<void*> same_page;
  std::atomic<int> stage{0};  // 1: blocks made; 2: freer done
  // The owner lives on while the other thread frees (a new thread would adopt the heap of
  // an exited one, and its frees would be local).
  std::thread owner([&] {
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i) blocks.push_back(smp::allocate(64, 16));
    const auto page_of = [](void* p) { return reinterpret_cast<std::uintptr_t>(p) >> 16; };
    for (void* p : blocks) {
      if (page_of(p) == page_of(blocks[50])) same_page.push_back(p);
      else smp::release(p);
    }
    stage = 1;
    while (stage != 2) std::this_thread::yield();
  });
  while (stage != 1) std::this_thread::yield();
  ASSERT_GE(same_page.size(), 40u);
  std::thread freer([&] {
    smp::release(smp::allocate(64, 16));  // a heap of its own to hold frees in
    for (std::size_t i = 0; i < 3; ++i) smp::release(same_page[i]);
    EXPECT_EQ(smp::stats().remote_held_blocks, 3u);
    for (std::size_t i = 3; i < 16; ++i) smp::release(same_page[i]);
    EXPECT_EQ(smp::stats().remote_held_blocks, 0u);  // full: pushed
    for (std::size_t i = 16; i < 20; ++i) smp::release(same_page[i]);
    EXPECT_EQ(smp::stats().remote_held_blocks, 4u);
    smp::trim();
    EXPECT_EQ(smp::stats().remote_held_blocks, 0u);
    for (std::size_t i = 20; i < same_page.size(); ++i) smp::release(same_page[i]);
    EXPECT_EQ(smp::stats().remote_held_blocks, (same_page.size() - 20) % 16);
    // Exit pushes the rest.
  });
  freer.join();
  stage = 2;
  owner.join();
  // Every block came back to the page: the next thread (adopting a heap) can take all
  // of them again, and none is handed out twice.
  std::set<void*> seen;
  for (int i = 0; i < 2000; ++i) {
    void* p = smp::allocate(64, 16);
    EXPECT_TRUE(seen.insert(p).second);
  }
  for (void* p : seen) smp::release(p);
}

// Bigger blocks are held back up to 4 KiB of them a page: the owner cannot reuse them
// meanwhile.
TEST(SmpAllocator, RemoteFreesOfBigBlocksArePushedEvery4KiB) {
  std::vector<void*> blocks;
  std::atomic<int> stage{0};
  std::thread owner([&] {
    for (int i = 0; i < 6; ++i) blocks.push_back(smp::allocate(1024, 16));
    stage = 1;
    while (stage != 2) std::this_thread::yield();
  });
  while (stage != 1) std::this_thread::yield();
  std::vector<std::size_t> held;
  std::thread freer([&] {
    smp::release(smp::allocate(1024, 16));
    for (void* p : blocks) {
      smp::release(p);
      held.push_back(smp::stats().remote_held_blocks);
    }
  });
  freer.join();
  stage = 2;
  owner.join();
  // The six blocks are made in a row (one page, unless the owner's page ran out).
  if ((reinterpret_cast<std::uintptr_t>(blocks.front()) >> 16) != (reinterpret_cast<std::uintptr_t>(blocks.back()) >> 16)) {
    GTEST_SKIP() << "the blocks span two pages";
  }
  EXPECT_EQ(held, (std::vector<std::size_t>{1, 2, 3, 0, 1, 2}));
}

// A thread that frees other threads' blocks without ever allocating (a consumer) holds
// them back in batches too: it gets a heap at its first remote free.
TEST(SmpAllocator, AThreadThatOnlyFreesHoldsRemoteFreesInBatches) {
  std::vector<void*> blocks;
  std::atomic<int> stage{0};  // 1: blocks made; 2: freer done
  std::thread owner([&] {  // lives on while the other thread frees (see above)
    for (int i = 0; i < 3; ++i) blocks.push_back(smp::allocate(48, 16));
    stage = 1;
    while (stage != 2) std::this_thread::yield();
  });
  while (stage != 1) std::this_thread::yield();
  std::size_t held = 0;
  std::thread freer([&] {
    for (void* p : blocks) smp::release(p);
    held = smp::stats().remote_held_blocks;
  });
  freer.join();  // its exit pushes what it held
  stage = 2;
  owner.join();
  EXPECT_EQ(held, blocks.size());
  // The owner's heap, adopted by the next thread, has the three blocks back.
  std::set<void*> seen;
  std::thread adopter([&] {
    for (int i = 0; i < 3000; ++i) seen.insert(smp::allocate(48, 16));
  });
  adopter.join();
  for (void* p : blocks) EXPECT_EQ(seen.count(p), 1u);
  for (void* p : seen) smp::release(p);
}

// After thread_exit() (later pthread key destructors may still free), frees of other
// threads' blocks are pushed at once: no heap is made to hold them, which nothing would
// give back.
TEST(SmpAllocator, FreesAfterThreadExitAreNotHeldBack) {
  void* block = nullptr;
  std::atomic<int> stage{0};
  std::thread owner([&] {
    block = smp::allocate(48, 16);
    stage = 1;
    while (stage != 2) std::this_thread::yield();
  });
  while (stage != 1) std::this_thread::yield();
  std::size_t held = SIZE_MAX;
  std::thread freer([&] {
    smp::release(smp::allocate(48, 16));
    smp::thread_exit();
    smp::release(block);
    held = smp::stats().remote_held_blocks;
  });
  freer.join();
  stage = 2;
  owner.join();
  EXPECT_EQ(held, 0u);
}

// The blocks of one whole 64 KiB page of `block_size` (not the thread's current page),
// allocated by the calling thread (after a trim, so that an adopted heap's empty pages
// are gone); the other blocks made on the way stay allocated, in `others`.
std::vector<void*> a_whole_page_of(std::size_t block_size, std::vector<void*>& others) {
  smp::trim();
  const std::size_t per_page = (std::size_t{64} << 10) / block_size;
  const auto page_of = [](void* p) { return reinterpret_cast<std::uintptr_t>(p) >> 16; };
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < 4 * per_page; ++i) blocks.push_back(smp::allocate(block_size, 16));
  std::vector<void*> page;
  for (void* p : blocks) {
    const bool whole = std::count_if(blocks.begin(), blocks.end(), [&](void* q) { return page_of(q) == page_of(p); }) ==
                       static_cast<std::ptrdiff_t>(per_page);
    if (page.empty() && whole && page_of(p) != page_of(blocks.back())) {
      for (void* q : blocks) {
        if (page_of(q) == page_of(p)) page.push_back(q);
      }
    }
  }
  for (void* p : blocks) {
    if (std::find(page.begin(), page.end(), p) == page.end()) others.push_back(p);
  }
  return page;
}

// On a thread that stays alive: a whole page of `size` blocks, the first `local` freed
// locally and the next `remote` by another thread; then 200 more blocks of `size` are
// taken, and each freed block must be among them exactly once.
void freed_blocks_come_back_once(std::size_t size, std::size_t local, std::size_t remote) {
  std::vector<void*> page, others, again;
  std::atomic<int> stage{0};  // 1: blocks made and some freed locally; 2: freer done
  std::thread owner([&] {
    page = a_whole_page_of(size, others);
    for (std::size_t i = 0; i < local; ++i) smp::release(page[i]);
    stage = 1;
    while (stage != 2) std::this_thread::yield();
    for (int i = 0; i < 200; ++i) again.push_back(smp::allocate(size, 16));
    for (void* p : again) smp::release(p);
    for (void* p : others) smp::release(p);
  });
  while (stage != 1) std::this_thread::yield();
  ASSERT_GE(page.size(), local + remote);
  std::thread freer([&] {
    for (std::size_t i = local; i < local + remote; ++i) smp::release(page[i]);
  });  // its exit pushes them
  freer.join();
  stage = 2;
  owner.join();
  EXPECT_EQ(std::set<void*>(again.begin(), again.end()).size(), again.size());
  for (std::size_t i = 0; i < local + remote; ++i) EXPECT_EQ(std::count(again.begin(), again.end(), page[i]), 1) << i;
  for (std::size_t i = local + remote; i < page.size(); ++i) smp::release(page[i]);
}

// A page with free blocks of its own (here: freed locally) keeps the blocks other threads
// free into it on its remote list until it runs dry, then takes them all.
TEST(SmpAllocator, RemoteFreesIntoAPageWithFreeBlocksAreTakenWhenItRunsDry) { freed_blocks_come_back_once(3072, 5, 10); }

// When they are its last blocks out, the page is threaded anew rather than the list walked.
TEST(SmpAllocator, APageWhoseLastBlocksComeBackFromAnotherThreadIsThreadedAnew) { freed_blocks_come_back_once(1024, 10, 54); }

// On a thread that stays alive: a whole page of 3584-byte blocks, half freed locally and
// half by another thread; then the heap looks at its announced pages (blocks of another
// class are taken until its page, made beforehand, runs out of threaded blocks: not a new
// page, which would take the memory of the kept one); then `after(page)`.
void empty_a_page_half_remotely(const std::function<void(const std::vector<void*>&)>& after) {
  std::vector<void*> page, others;
  std::atomic<int> stage{0};
  std::thread owner([&] {
    page = a_whole_page_of(3584, others);
    for (std::size_t i = 0; i < page.size() / 2; ++i) smp::release(page[i]);
    others.push_back(smp::allocate(1700, 16));  // 2 blocks a 4 KiB extension
    stage = 1;
    while (stage != 2) std::this_thread::yield();
    for (int i = 0; i < 4; ++i) others.push_back(smp::allocate(1700, 16));
    after(page);
    for (void* p : others) smp::release(p);
  });
  while (stage != 1) std::this_thread::yield();
  ASSERT_GE(page.size(), 16u);
  std::thread freer([&] {
    for (std::size_t i = page.size() / 2; i < page.size(); ++i) smp::release(page[i]);
  });
  freer.join();
  stage = 2;
  owner.join();
}

// A page that other threads' frees emptied stays with its class, its blocks ready (a
// producer whose blocks a consumer frees cycles through a few pages a class: given back,
// each would be made and threaded again), until its class takes it again or trim().
TEST(SmpAllocator, APageEmptiedByAnotherThreadIsKeptForItsClass) {
  std::size_t kept_after_drain = 0, kept_after_reuse = SIZE_MAX;
  std::vector<void*> again;
  bool all_once = false;
  empty_a_page_half_remotely([&](const std::vector<void*>& page) {
    kept_after_drain = smp::stats().kept_empty_page_bytes;
    for (int i = 0; i < 60; ++i) again.push_back(smp::allocate(3584, 16));
    kept_after_reuse = smp::stats().kept_empty_page_bytes;
    all_once = std::all_of(page.begin(), page.end(), [&](void* p) { return std::count(again.begin(), again.end(), p) == 1; });
    for (void* p : again) smp::release(p);
  });
  EXPECT_EQ(kept_after_drain, std::size_t{64} << 10);
  EXPECT_TRUE(all_once);
  EXPECT_EQ(kept_after_reuse, 0u);
}

// A class that needs a new page while pages of other classes are kept takes the memory of
// the oldest of them (resident already) instead of fresh memory.
TEST(SmpAllocator, ANewPageOfAnotherClassTakesTheMemoryOfAKeptPage) {
  std::size_t kept_before = 0, kept_after = SIZE_MAX;
  std::uintptr_t probe_page = 0, kept_page = 0;
  empty_a_page_half_remotely([&](const std::vector<void*>& page) {
    kept_before = smp::stats().kept_empty_page_bytes;
    void* probe = smp::allocate(2500, 16);
    kept_after = smp::stats().kept_empty_page_bytes;
    probe_page = reinterpret_cast<std::uintptr_t>(probe) >> 16;
    kept_page = reinterpret_cast<std::uintptr_t>(page[0]) >> 16;
    smp::release(probe);
  });
  EXPECT_EQ(kept_before, std::size_t{64} << 10);
  EXPECT_EQ(kept_after, 0u);
  EXPECT_EQ(probe_page, kept_page);
}

TEST(SmpAllocator, TrimGivesBackTheKeptPages) {
  std::size_t kept_after_drain = 0, kept_after_trim = SIZE_MAX;
  empty_a_page_half_remotely([&](const std::vector<void*>&) {
    kept_after_drain = smp::stats().kept_empty_page_bytes;
    smp::trim();
    kept_after_trim = smp::stats().kept_empty_page_bytes;
  });
  EXPECT_EQ(kept_after_drain, std::size_t{64} << 10);
  EXPECT_EQ(kept_after_trim, 0u);
}

TEST(SmpAllocator, BlocksOfAnExitedThreadStayValidAndCanBeFreedElsewhere) {
  std::vector<void*> blocks;
  std::thread([&] {
    for (int i = 0; i < 50000; ++i) {
      const std::size_t size = 16 + (i % 50) * 24;
      void* p = smp::allocate(size, 16);
      fill(p, size);
      blocks.push_back(p);
    }
  }).join();
  // The heap waits for adoption; a new thread takes it over and frees half of them there.
  std::thread([&] {
    for (std::size_t i = 0; i < blocks.size(); i += 2) {
      const std::size_t size = 16 + (i % 50) * 24;
      ASSERT_TRUE(intact(blocks[i], size, blocks[i]));
      smp::release(blocks[i]);
      blocks[i] = nullptr;
    }
    void* p = smp::allocate(40, 16);
    ASSERT_NE(p, nullptr);
    smp::release(p);
  }).join();
  for (std::size_t i = 1; i < blocks.size(); i += 2) {
    const std::size_t size = 16 + (i % 50) * 24;
    ASSERT_TRUE(intact(blocks[i], size, blocks[i]));
    smp::release(blocks[i]);
  }
}

// A thread that exits leaves its freed pages resident for the next new thread, which adopts
// its heap (a thread per task then pays no madvise and no page faults per thread), as long
// as they are at most exit_dirty_kept; beyond that they go back at exit.
std::size_t dirty_bytes_left_by_a_thread_freeing(std::size_t bytes) {
  std::thread([bytes] {
    smp::release(smp::allocate(16, 16));  // adopts a heap an earlier test's thread left,
    smp::trim();                          // and starts from none of its freed pages
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < bytes / 256; ++i) blocks.push_back(smp::allocate(256, 16));
    for (void* p : blocks) std::memset(p, 5, 256);
    for (void* p : blocks) smp::release(p);
  }).join();
  const auto exited = std::chrono::steady_clock::now();
  std::size_t adopted_dirty = 0;
  bool in_time = false;
  std::thread([&] {
    void* p = smp::allocate(16, 16);  // adopts the heap; its new page takes one dirty slice
    adopted_dirty = smp::stats().dirty_page_bytes;
    in_time = std::chrono::steady_clock::now() - exited < std::chrono::milliseconds(smp::dirty_page_delay_ms);
    smp::release(p);
    smp::trim();
  }).join();
  // Past the delay the adopter would rightly have purged them: nothing to tell then.
  return in_time ? adopted_dirty : SIZE_MAX;
}

TEST(SmpAllocator, AnExitedThreadsFreedPagesWaitForTheThreadThatAdoptsItsHeap) {
  const std::size_t within = dirty_bytes_left_by_a_thread_freeing(smp::exit_dirty_kept / 2);
  if (within == SIZE_MAX) GTEST_SKIP() << "the adopting thread started after the purge delay (a loaded machine)";
  EXPECT_GE(within, smp::exit_dirty_kept / 2 - 2 * 64 * 1024);
  EXPECT_EQ(dirty_bytes_left_by_a_thread_freeing(2 * smp::exit_dirty_kept), 0u);
}

TEST(SmpAllocator, FreedLargeBlocksAreReused) {
  void* a = smp::allocate(3 * MiB, 16);
  ASSERT_NE(a, nullptr);
  std::memset(a, 1, 3 * MiB);
  smp::release(a);
  void* b = smp::allocate(3 * MiB, 16);
  EXPECT_EQ(a, b);  // the cache's newest entry that fits
  smp::release(b);
}

// A large block reused by a smaller one keeps its predecessor's committed tail (less than
// the trim threshold); freed when the cache is short of room, it gives back that tail
// rather than pushing an older entry out whole.
TEST(SmpAllocator, AFullLargeCacheTakesBackAnInheritedTailBeforeEvicting) {
  smp::trim();
  void* big = smp::allocate(3 * MiB + 512 * 1024, 16);
  ASSERT_NE(big, nullptr);
  smp::release(big);
  void* smaller = smp::allocate(2 * MiB + 768 * 1024, 16);
  ASSERT_EQ(smaller, big);  // reused, with 768 KiB of committed tail beyond what it asked for
  std::vector<void*> fill;  // untouched: committed, not resident
  for (int i = 0; i < 3; ++i) fill.push_back(smp::allocate(15 * MiB, 16));
  for (void* p : fill) ASSERT_NE(p, nullptr);
  for (void* p : fill) smp::release(p);
  const std::size_t filled = smp::stats().cached_large_bytes;
  ASSERT_GE(filled, 45 * MiB);
  ASSERT_GT(filled + 3 * MiB + 512 * 1024, smp::large_cache_limit);  // the big tail would not fit
  smp::release(smaller);
  const std::size_t cached = smp::stats().cached_large_bytes;
  EXPECT_GE(cached, filled + 2 * MiB + 768 * 1024);  // nothing evicted
  EXPECT_LT(cached, filled + 2 * MiB + 768 * 1024 + 64 * 1024);  // the tail went back
  smp::trim();
}

// Pages a block grows into by realloc are faulted in with the growth (one system call),
// not one page fault at a time as they are written.
TEST(SmpAllocator, PagesAReallocGrowsIntoAreResidentAtOnce) {
  const long page = ::sysconf(_SC_PAGESIZE);
  void* probe = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(probe, MAP_FAILED);
  const bool kernel_populates = ::madvise(probe, page, MADV_POPULATE_WRITE) == 0;
  ::munmap(probe, page);
  if (!kernel_populates) GTEST_SKIP() << "no MADV_POPULATE_WRITE (Linux < 5.14)";
  smp::trim();  // no cached block: the grown ones are fresh memory
  auto resident_pages = [page](void* p, std::size_t len) {
    const auto begin = reinterpret_cast<std::uintptr_t>(p) & ~static_cast<std::uintptr_t>(page - 1);
    const auto end = reinterpret_cast<std::uintptr_t>(p) + len;
    std::vector<unsigned char> in_core((end - begin + page - 1) / page);
    EXPECT_EQ(::mincore(reinterpret_cast<void*>(begin), end - begin, in_core.data()), 0);
    std::size_t count = 0;
    for (unsigned char c : in_core) count += c & 1;
    return std::make_pair(count, in_core.size());
  };
  void* p = smp::allocate(100 * 1024, 16);
  std::memset(p, 5, 100 * 1024);
  p = smp::reallocate(p, 300 * 1024);  // becomes a large block
  ASSERT_NE(p, nullptr);
  auto [resident, pages] = resident_pages(p, 300 * 1024);
  EXPECT_EQ(resident, pages);
  p = smp::reallocate(p, 700 * 1024);  // grows in place
  ASSERT_NE(p, nullptr);
  std::tie(resident, pages) = resident_pages(p, 700 * 1024);
  EXPECT_EQ(resident, pages);
  EXPECT_EQ(static_cast<unsigned char*>(p)[100 * 1024 - 1], 5);
  smp::release(p);
  smp::trim();
}

// Blocks above 8 KiB live in 512 KiB pages; freed, those pages stay resident up to the
// thread's budget (the next batch reuses them without page faults), and trim() purges them.
TEST(SmpAllocator, FreedBigPagesStayResidentUpToTheBudgetUntilTrim) {
  smp::trim();
  ASSERT_EQ(smp::stats().dirty_page_bytes, 0u);
  std::vector<void*> blocks;
  for (int i = 0; i < 4096; ++i) blocks.push_back(smp::allocate(12 * 1024, 16));  // 48 MiB, ~100 pages
  for (void* p : blocks) std::memset(p, 3, 12 * 1024);
  for (void* p : blocks) smp::release(p);
  const std::size_t dirty = smp::stats().dirty_page_bytes;
  EXPECT_GT(dirty, 0u);
  EXPECT_LE(dirty, smp::dirty_page_budget);
  // The next batch takes the resident pages first (a page holds 42 such blocks).
  blocks.clear();
  for (int i = 0; i < 200; ++i) blocks.push_back(smp::allocate(12 * 1024, 16));
  EXPECT_LT(smp::stats().dirty_page_bytes, dirty);
  for (void* p : blocks) smp::release(p);
  smp::trim();
  EXPECT_EQ(smp::stats().dirty_page_bytes, 0u);
}

// Small pages count against the same budget: freed, they stay resident for the next page
// of any class, which takes them before fresh memory.
TEST(SmpAllocator, FreedSmallPagesStayResidentAndAreReusedByAnotherClass) {
  smp::trim();
  std::vector<void*> blocks;
  for (int i = 0; i < 8192; ++i) blocks.push_back(smp::allocate(256, 16));  // 2 MiB, 32 pages
  for (void* p : blocks) std::memset(p, 5, 256);
  for (void* p : blocks) smp::release(p);
  const std::size_t dirty = smp::stats().dirty_page_bytes;
  EXPECT_GE(dirty, 16 * 64 * 1024u);
  EXPECT_LE(dirty, 16 * MiB);
  blocks.clear();
  for (int i = 0; i < 4096; ++i) blocks.push_back(smp::allocate(96, 16));  // another class
  EXPECT_LT(smp::stats().dirty_page_bytes, dirty);
  for (void* p : blocks) smp::release(p);
  smp::trim();
  EXPECT_EQ(smp::stats().dirty_page_bytes, 0u);
}

// Nothing stays in the large-block cache for good: an entry older than the hold time
// goes back at the next large allocation.
TEST(SmpAllocator, CachedLargeBlocksGoBackAfterTheHoldTime) {
  smp::trim();
  void* a = smp::allocate(2 * MiB, 16);
  ASSERT_NE(a, nullptr);
  std::memset(a, 1, 2 * MiB);
  smp::release(a);
  EXPECT_GE(smp::stats().cached_large_bytes, 2 * MiB);
  std::this_thread::sleep_for(std::chrono::milliseconds(smp::large_cache_hold_ms + 100));
  void* b = smp::allocate(6 * MiB, 16);  // a span the cached one cannot serve
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(smp::stats().cached_large_bytes, 0u);
  smp::release(b);
  smp::trim();
}

// Blocks up to 1 MiB live in segments: a freed one's pages stay resident and the next
// block takes them, with no new memory.
TEST(SmpAllocator, MediumBlocksLiveInSegmentsAndAreReused) {
  void* a = smp::allocate(MiB, 16);
  ASSERT_NE(a, nullptr);
  EXPECT_NE(reinterpret_cast<std::uintptr_t>(a) & (4 * MiB - 1), 0u);  // not a large block's segment start
  EXPECT_EQ(smp::usable_size(a), MiB);
  std::memset(a, 1, MiB);
  smp::release(a);
  const smp::Stats freed = smp::stats();
  EXPECT_GE(freed.dirty_page_bytes, MiB);
  void* b = smp::allocate(MiB - 1000, 16);
  EXPECT_EQ(a, b);  // the run with the most resident slices
  EXPECT_EQ(smp::stats().committed_bytes, freed.committed_bytes);
  EXPECT_EQ(smp::stats().dirty_page_bytes, freed.dirty_page_bytes - MiB);
  smp::release(b);
}

// Freed pages do not stay resident for good: past the delay, the next page freed by the
// thread sends back those of segments that have had them that long.
TEST(SmpAllocator, FreedPagesGoBackAfterTheDelay) {
  smp::trim();
  std::vector<void*> blocks;
  for (int i = 0; i < 256; ++i) blocks.push_back(smp::allocate(20 * 1024, 16));  // 5 MiB, 8-slice pages
  for (void* p : blocks) std::memset(p, 2, 20 * 1024);
  for (void* p : blocks) smp::release(p);
  EXPECT_GE(smp::stats().dirty_page_bytes, 4 * MiB);
  std::this_thread::sleep_for(std::chrono::milliseconds(smp::dirty_page_delay_ms + 50));
  smp::release(smp::allocate(300 * 1024, 16));  // a one-block page, freed at once
  EXPECT_LE(smp::stats().dirty_page_bytes, 5 * 64 * 1024u);  // that page's alone
}

TEST(SmpAllocator, MemoryGoesBackAfterEverythingIsFreed) {
  smp::trim();
  const std::size_t before = smp::stats().committed_bytes;
  std::vector<void*> blocks;
  for (int i = 0; i < 64 * 1024; ++i) blocks.push_back(smp::allocate(1000, 16));  // 64 MiB
  for (int i = 0; i < 12; ++i) blocks.push_back(smp::allocate(5 * MiB, 16));      // 60 MiB
  for (void* p : blocks) std::memset(p, 7, 1000);
  EXPECT_GE(smp::stats().committed_bytes, before + 120 * MiB);
  for (void* p : blocks) smp::release(p);
  // Freed pages stay a while; past the delay, the next page freed sends them back, with
  // the segments they kept.
  std::this_thread::sleep_for(std::chrono::milliseconds(smp::dirty_page_delay_ms + 50));
  smp::release(smp::allocate(200 * 1024, 16));  // a one-block page, freed at once
  // Left: the large-block cache, the empty segments kept, the spare segment, the segment
  // of the (now empty) current page of the 1008-byte class, and the one whose resident
  // slices the 200 KiB page took (empty again, its page freshly freed).
  const smp::Stats kept = smp::stats();
  EXPECT_LE(kept.dirty_page_bytes, MiB);
  EXPECT_LE(kept.cached_large_bytes, smp::large_cache_limit);
  EXPECT_LE(kept.cached_empty_segment_bytes, 4 * 4 * MiB);
  EXPECT_LE(kept.committed_bytes, before + kept.cached_large_bytes + kept.cached_empty_segment_bytes + 3 * 4 * MiB);
  smp::trim();
  EXPECT_LE(smp::stats().committed_bytes, before);
  EXPECT_EQ(smp::stats().cached_large_bytes, 0u);
  EXPECT_EQ(smp::stats().cached_empty_segment_bytes, 0u);
}

TEST(SmpAllocator, OwnsExactlyItsRange) {
  void* p = smp::allocate(10, 16);
  int on_stack = 0;
  EXPECT_TRUE(smp::owns(p));
  EXPECT_FALSE(smp::owns(&on_stack));
  EXPECT_FALSE(smp::owns(nullptr));
  smp::release(p);
}

TEST(SmpAllocator, ForkChildAllocatesFromEveryThread) {
  std::vector<void*> before_fork;
  for (int i = 0; i < 1000; ++i) before_fork.push_back(smp::allocate(48, 16));
  smp::fork_prepare();
  const pid_t pid = ::fork();
  if (pid == 0) {
    smp::fork_child();
    for (void* p : before_fork) smp::release(p);
    std::thread([] {
      for (int i = 0; i < 10000; ++i) smp::release(smp::allocate(static_cast<std::size_t>(i % 3000), 16));
    }).join();
    void* big = smp::allocate(8 * MiB, 16);
    std::memset(big, 3, 8 * MiB);
    smp::release(big);
    ::_exit(0);
  }
  smp::fork_parent();
  ASSERT_GT(pid, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (void* p : before_fork) smp::release(p);
}

}  // namespace
