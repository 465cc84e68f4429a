// 64 threads allocate blocks, hand most of them to other threads through shared mailboxes
// and free what they receive (cross-thread frees), checking every block's contents; then
// the threads exit and a second generation does the same (thread state handed back and
// reused). Sizes span the small and the large (own mapping) paths.
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "check.hpp"

namespace {

constexpr int thread_count = 64;
constexpr int rounds = 2000;

struct Mailbox {
  std::mutex lock;
  std::vector<unsigned char*> blocks;
};
Mailbox mailboxes[thread_count];

std::size_t size_for(unsigned seed) {
  if (seed % 97 == 0) return (std::size_t{1} << 20) + seed % 50000;  // large
  return seed % 2000 + 1;
}

// Each block starts with its size and a byte pattern derived from it.
unsigned char* make_block(unsigned seed) {
  const std::size_t size = size_for(seed);
  auto* p = static_cast<unsigned char*>(malloc(size + sizeof(std::size_t)));
  CHECK(p != nullptr);
  CHECK(malloc_usable_size(p) >= size + sizeof(std::size_t));
  std::memcpy(p, &size, sizeof size);
  std::memset(p + sizeof size, static_cast<int>(size & 0xff), size);
  return p;
}

void check_and_free(unsigned char* p) {
  std::size_t size;
  std::memcpy(&size, p, sizeof size);
  for (std::size_t i = 0; i < size; i += 61) CHECK(p[sizeof size + i] == static_cast<unsigned char>(size & 0xff));
  free(p);
}

void worker(int id, unsigned seed) {
  std::vector<unsigned char*> own;
  for (int round = 0; round < rounds; ++round) {
    seed = seed * 1664525 + 1013904223;
    unsigned char* block = make_block(seed >> 4);
    if (seed % 4 == 0) {
      own.push_back(block);
    } else {
      Mailbox& to = mailboxes[(seed >> 12) % thread_count];
      std::lock_guard guard(to.lock);
      to.blocks.push_back(block);
    }
    if (round % 16 == 0) {
      std::vector<unsigned char*> received;
      {
        std::lock_guard guard(mailboxes[id].lock);
        received.swap(mailboxes[id].blocks);
      }
      for (unsigned char* p : received) check_and_free(p);
    }
    if (own.size() > 32) {
      check_and_free(own.back());  // LIFO frees: the arena's roll-back path
      own.pop_back();
    }
  }
  for (unsigned char* p : own) check_and_free(p);
}

void generation(unsigned base_seed) {
  std::vector<std::thread> threads;
  for (int i = 0; i < thread_count; ++i) threads.emplace_back(worker, i, base_seed + static_cast<unsigned>(i) * 7919);
  for (auto& t : threads) t.join();
  for (auto& box : mailboxes) {
    for (unsigned char* p : box.blocks) check_and_free(p);
    box.blocks.clear();
  }
}

}  // namespace

int main() {
  generation(1);
  generation(2);
  std::printf("thread_churn: ok\n");
  return 0;
}
