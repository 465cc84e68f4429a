// thread_churn: threads that are created, allocate a little, and exit, over and over.
//
// The pattern of thread-per-request servers and of programs that use short-lived
// worker threads: thread start and exit cost of the allocator (thread cache set-up and
// return), and blocks that outlive the thread that allocated them (half of each
// thread's blocks are handed back to the main thread, which frees them after the join).
//
//   --threads=N  threads alive at once, one wave (default 4)
//   --created=N  threads created in all, in waves of --threads (default 8000), so the work
//                is the same whatever the thread count
//   --blocks=N   blocks each thread allocates (default 200)
#include <algorithm>
#include <thread>

#include "workload.hpp"

int main(int argc, char** argv) {
  workload::Args args(argc, argv);
  const int threads = args.threads(4);
  const std::size_t created = args.scaled(static_cast<std::size_t>(args.integer("created", 8000)));
  const std::size_t waves = std::max<std::size_t>(1, created / threads);
  const std::size_t blocks_per_thread = static_cast<std::size_t>(args.integer("blocks", 200));
  const std::uint64_t seed = args.seed();
  args.finish();

  struct Block {
    void* data;
    std::size_t size;
  };
  // What each thread of a wave leaves behind for the main thread to free.
  std::vector<std::vector<Block>> handed_back(threads);
  std::vector<std::uint64_t> checksums(threads, 0);
  std::uint64_t checksum = 0;

  for (std::size_t wave = 0; wave < waves; ++wave) {
    std::vector<std::thread> wave_threads;
    for (int t = 0; t < threads; ++t) {
      wave_threads.emplace_back([&, t] {
        workload::Random random(seed + wave * threads + t);
        std::vector<Block> own;
        own.reserve(blocks_per_thread);
        for (std::size_t i = 0; i < blocks_per_thread; ++i) {
          std::size_t size = random.between(16, 2048);
          void* data = workload::checked_malloc(size);
          workload::fill(data, size, i);
          own.push_back({data, size});
        }
        for (std::size_t i = 0; i < own.size(); ++i) {
          if (i % 2 == 0) {
            checksums[t] += workload::fold(own[i].data, own[i].size);
            std::free(own[i].data);
          } else {
            handed_back[t].push_back(own[i]);
          }
        }
      });
    }
    for (std::thread& thread : wave_threads) thread.join();
    for (int t = 0; t < threads; ++t) {
      for (Block& block : handed_back[t]) {
        checksum += workload::fold(block.data, block.size);
        std::free(block.data);
      }
      handed_back[t].clear();
      checksum += checksums[t];
      checksums[t] = 0;
    }
  }
  workload::print_checksum(checksum);
}
