// A malloc-heavy workload for measuring the shim's cost (not a test: it checks nothing
// but its own arithmetic). Each thread keeps 1024 live blocks of 8..512 bytes and replaces
// one per step, in random order, touching each block once.
//   malloc_churn [steps per thread, default 20000000] [threads, default 1]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

std::uint64_t churn(std::uint64_t steps, unsigned seed) {
  constexpr std::size_t slots = 1024;
  void* live[slots] = {};
  std::uint64_t checksum = 0;
  for (std::uint64_t i = 0; i < steps; ++i) {
    seed = seed * 1664525u + 1013904223u;
    const std::size_t slot = (seed >> 10) % slots;
    const std::size_t size = 8 + ((seed >> 20) % 64) * 8;
    free(live[slot]);
    auto* p = static_cast<unsigned char*>(malloc(size));
    p[0] = static_cast<unsigned char>(i);
    checksum += p[0];
    live[slot] = p;
  }
  for (void* p : live) free(p);
  return checksum;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t steps = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000000;
  const unsigned thread_count = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 1;
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> sums(thread_count);
  for (unsigned t = 0; t < thread_count; ++t) threads.emplace_back([&, t] { sums[t] = churn(steps, t + 1); });
  for (auto& t : threads) t.join();
  std::uint64_t total = 0;
  for (auto s : sums) total += s;
  std::printf("%llu\n", static_cast<unsigned long long>(total));
  return 0;
}
