// The smp allocator under 8 threads of random allocations, reallocations and frees, a
// third of the frees made by another thread than the one that allocated. Every block is
// filled with a pattern of its own and checked when it is freed or moved (an overlap
// or a lost byte shows up there); at the end all live blocks are checked for overlap.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "smp/smp.hpp"

namespace {

namespace smp = zheap::smp;

struct Block {
  unsigned char* data = nullptr;
  std::size_t size = 0;
  std::size_t alignment = 0;
  std::uint32_t tag = 0;  // the pattern: byte i is tag + i (mod 256) at the checked places
};

// Big blocks are checked at both ends and every 4 KiB, small ones entirely.
template <class F>
void for_checked_bytes(std::size_t size, F f) {
  if (size <= 4096) {
    for (std::size_t i = 0; i < size; ++i) f(i);
    return;
  }
  for (std::size_t i = 0; i < 256; ++i) f(i);
  for (std::size_t i = 4096; i < size; i += 4096) f(i);
  for (std::size_t i = size - 256; i < size; ++i) f(i);
}
void fill(const Block& b) {
  for_checked_bytes(b.size, [&](std::size_t i) { b.data[i] = static_cast<unsigned char>(b.tag + i); });
}
bool intact(const Block& b, std::size_t upto) {
  bool ok = true;
  for_checked_bytes(b.size, [&](std::size_t i) {
    if (i < upto && b.data[i] != static_cast<unsigned char>(b.tag + i)) ok = false;
  });
  return ok;
}

// Where a thread hands blocks to another for freeing.
struct Mailbox {
  std::mutex mutex;
  std::vector<Block> blocks;
};

std::size_t random_size(std::mt19937_64& rng) {
  const unsigned kind = rng() % 1000;
  if (kind < 700) return rng() % 257;
  if (kind < 950) return rng() % 16385;
  if (kind < 998) return rng() % (512 << 10);
  return rng() % (5 << 20);
}

std::size_t random_alignment(std::mt19937_64& rng) {
  if (rng() % 50 != 0) return 16;
  return std::size_t{1} << (rng() % 17);  // 1 .. 64 KiB
}

TEST(SmpStress, EightThreadsWithCrossThreadFreesKeepEveryBlockIntact) {
  constexpr int thread_count = 8;
  constexpr int operations = 120000;
  constexpr std::size_t slots = 1500;
  Mailbox mailboxes[thread_count];
  std::vector<Block> survivors[thread_count];
  std::atomic<int> failures{0};

  auto worker = [&](int self) {
    std::mt19937_64 rng(0x5eed + self);
    std::vector<Block> live(slots);
    std::uint32_t next_tag = static_cast<std::uint32_t>(self) << 24;
    auto check_and_release = [&](const Block& b) {
      if (!intact(b, b.size)) failures.fetch_add(1);
      if (b.alignment > 1 && reinterpret_cast<std::uintptr_t>(b.data) % b.alignment != 0) failures.fetch_add(1);
      smp::release(b.data);
    };
    for (int op = 0; op < operations; ++op) {
      Block& b = live[rng() % slots];
      const unsigned action = rng() % 10;
      if (b.data == nullptr) {
        b.size = random_size(rng);
        b.alignment = random_alignment(rng);
        b.data = static_cast<unsigned char*>(smp::allocate(b.size, b.alignment));
        if (b.data == nullptr || smp::usable_size(b.data) < b.size) failures.fetch_add(1);
        if (b.data == nullptr) continue;
        b.tag = ++next_tag;
        fill(b);
      } else if (action < 2 && b.alignment <= 16) {
        const std::size_t new_size = random_size(rng) + 1;
        auto* moved = static_cast<unsigned char*>(smp::reallocate(b.data, new_size));
        if (moved == nullptr) {
          failures.fetch_add(1);
          continue;
        }
        const Block old_view{moved, b.size, b.alignment, b.tag};
        if (!intact(old_view, std::min(b.size, new_size))) failures.fetch_add(1);
        b = {moved, new_size, 16, ++next_tag};
        fill(b);
      } else if (action < 5) {
        Mailbox& box = mailboxes[rng() % thread_count];
        std::lock_guard lock(box.mutex);
        box.blocks.push_back(b);
        b = {};
      } else {
        check_and_release(b);
        b = {};
      }
      if (op % 64 == 0) {
        std::vector<Block> mine;
        {
          std::lock_guard lock(mailboxes[self].mutex);
          mine.swap(mailboxes[self].blocks);
        }
        for (const Block& m : mine) check_and_release(m);
      }
    }
    for (const Block& b : live) {
      if (b.data != nullptr) survivors[self].push_back(b);
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < thread_count; ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();

  // Every block still live (in slots or mailboxes): intact, and no two overlap.
  std::vector<Block> all;
  for (int t = 0; t < thread_count; ++t) {
    all.insert(all.end(), survivors[t].begin(), survivors[t].end());
    all.insert(all.end(), mailboxes[t].blocks.begin(), mailboxes[t].blocks.end());
  }
  std::sort(all.begin(), all.end(), [](const Block& a, const Block& b) { return a.data < b.data; });
  for (std::size_t i = 0; i + 1 < all.size(); ++i) {
    EXPECT_LE(all[i].data + std::max<std::size_t>(all[i].size, 1), all[i + 1].data) << "overlap at " << i;
  }
  for (const Block& b : all) {
    EXPECT_TRUE(intact(b, b.size));
    smp::release(b.data);
  }
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
