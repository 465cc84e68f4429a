// larson: the server pattern of Larson and Krishnan's benchmark, where threads free
// what other threads allocated.
//
// Each thread owns a table of live blocks (10-500 bytes) and repeatedly frees a random
// one and allocates a replacement. After every epoch the tables are passed on to the
// next thread, so most frees are of blocks another thread allocated: this exercises
// remote frees, the return of memory between thread caches, and lock contention.
//
//   --threads=N   worker threads (default 1)
//   --epochs=N    hand-overs (default 20)   --steps=N  free+alloc pairs per thread and
//   epoch (default 1000000)                  --slots=N  live blocks per table (default 2000)
#include <barrier>
#include <thread>

#include "workload.hpp"

namespace {

struct Table {
  std::vector<char*> blocks;
  std::vector<std::size_t> sizes;
};

char* new_block(workload::Random& random, std::size_t& size) {
  size = random.between(10, 500);
  char* block = static_cast<char*>(workload::checked_malloc(size));
  workload::fill(block, size, size);
  return block;
}

}  // namespace

int main(int argc, char** argv) {
  workload::Args args(argc, argv);
  const int threads = args.threads();
  const std::size_t epochs = static_cast<std::size_t>(args.integer("epochs", 20));
  const std::size_t steps = args.scaled(static_cast<std::size_t>(args.integer("steps", 1000000))) / threads;
  const std::size_t slots = static_cast<std::size_t>(args.integer("slots", 2000));
  const std::uint64_t seed = args.seed();
  args.finish();

  std::vector<Table> tables(threads);
  workload::Random setup(seed);
  for (Table& table : tables) {
    table.blocks.resize(slots);
    table.sizes.resize(slots);
    for (std::size_t i = 0; i < slots; ++i) table.blocks[i] = new_block(setup, table.sizes[i]);
  }

  std::vector<std::uint64_t> checksums(threads, 0);
  std::barrier epoch_end(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      workload::Random random(seed + 1 + t);
      for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
        // In epoch e, thread t works on the table that thread t-e filled: a hand-over.
        Table& table = tables[(t + epoch) % threads];
        for (std::size_t step = 0; step < steps; ++step) {
          std::size_t victim = random.below(slots);
          checksums[t] += workload::fold(table.blocks[victim], table.sizes[victim]);
          std::free(table.blocks[victim]);
          table.blocks[victim] = new_block(random, table.sizes[victim]);
        }
        epoch_end.arrive_and_wait();
      }
    });
  }
  for (std::thread& worker : workers) worker.join();

  std::uint64_t checksum = 0;
  for (std::uint64_t c : checksums) checksum += c;
  for (Table& table : tables)
    for (std::size_t i = 0; i < slots; ++i) {
      checksum += workload::fold(table.blocks[i], table.sizes[i]);
      std::free(table.blocks[i]);
    }
  workload::print_checksum(checksum);
}
