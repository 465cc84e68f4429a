// fragmentation: how much memory an allocator holds on to after a mixed workload
// shrinks, and whether it can reuse the holes.
//
// Phase 1 allocates many blocks of mixed sizes (16 bytes to 4 KiB, skewed small).
// Phase 2 frees most of them at random, leaving one in ten alive and spread across the
// whole heap. Phase 3 allocates again, the same number of bytes in a different size mix
// (larger blocks), which fits in the holes only if the allocator can merge or reuse them.
// The peak RSS that scripts/bench reports, and the RSS this program prints on stderr
// after each phase, show the cost.
//
//   --blocks=N  blocks in phase 1 (default 300000)   --rounds=N  (default 2)
#include "workload.hpp"

namespace {

std::size_t small_skewed_size(workload::Random& random) {
  // Seven in eight blocks small (16-256 B), the rest up to 4 KiB.
  return random.below(8) != 0 ? random.between(16, 256) : random.between(257, 4096);
}

void report(const char* phase) {
  workload::ResidentSet rss = workload::resident_set();
  std::fprintf(stderr, "fragmentation: %-22s rss %7ld KiB  peak %7ld KiB\n", phase, rss.current_kib, rss.peak_kib);
}

}  // namespace

int main(int argc, char** argv) {
  workload::Args args(argc, argv);
  const std::size_t block_count = args.scaled(static_cast<std::size_t>(args.integer("blocks", 300000)));
  const std::size_t rounds = static_cast<std::size_t>(args.integer("rounds", 2));
  workload::Random random(args.seed());
  args.finish();

  struct Block {
    void* data;
    std::size_t size;
  };
  std::vector<Block> blocks;
  std::vector<Block> refill;
  std::uint64_t checksum = 0;

  for (std::size_t round = 0; round < rounds; ++round) {
    // Phase 1: many mixed blocks.
    std::size_t live_bytes = 0;
    blocks.clear();
    for (std::size_t i = 0; i < block_count; ++i) {
      std::size_t size = small_skewed_size(random);
      void* data = workload::checked_malloc(size);
      workload::fill(data, size, i);
      blocks.push_back({data, size});
      live_bytes += size;
    }
    report("after allocating");

    // Phase 2: free nine in ten, chosen at random, so the survivors pin pages everywhere.
    std::size_t freed_bytes = 0;
    std::size_t kept = 0;
    for (Block& block : blocks) {
      if (random.below(10) != 0) {
        checksum += workload::fold(block.data, block.size);
        freed_bytes += block.size;
        std::free(block.data);
      } else {
        blocks[kept++] = block;
      }
    }
    blocks.resize(kept);
    report("after freeing 90%");

    // Phase 3: the same number of bytes again, in blocks twice as large on average.
    refill.clear();
    for (std::size_t bytes = 0; bytes < freed_bytes;) {
      std::size_t size = 2 * small_skewed_size(random);
      void* data = workload::checked_malloc(size);
      workload::fill(data, size, bytes);
      refill.push_back({data, size});
      bytes += size;
    }
    report("after reallocating");

    for (Block& block : blocks) {
      checksum += workload::fold(block.data, block.size);
      std::free(block.data);
    }
    for (Block& block : refill) {
      checksum += workload::fold(block.data, block.size);
      std::free(block.data);
    }
    (void)live_bytes;
  }
  report("at exit");
  workload::print_checksum(checksum);
}
