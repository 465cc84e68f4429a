// size_sweep: every size class from 8 bytes to 1 MiB.
//
// For each size (powers of two and the points a quarter, a half and three quarters of
// the way to the next), allocate a batch of blocks, touch them, free them. The number
// of blocks falls as the size grows so each size moves a similar number of bytes, up to
// a cap per size. Large sizes cross each allocator's switch from size classes to pages
// or mmap, where the differences between allocators are largest.
//
//   --bytes=N   bytes allocated per size (default 8 MiB)   --rounds=N  sweeps (default 10)
#include "workload.hpp"

int main(int argc, char** argv) {
  workload::Args args(argc, argv);
  const std::size_t bytes_per_size = static_cast<std::size_t>(args.integer("bytes", 8 << 20));
  const std::size_t rounds = args.scaled(static_cast<std::size_t>(args.integer("rounds", 10)));
  args.finish();

  std::vector<std::size_t> sizes;
  for (std::size_t power = 8; power <= (1u << 20); power *= 2) {
    sizes.push_back(power);
    if (power < (1u << 20))
      for (std::size_t quarter = 1; quarter < 4; ++quarter) sizes.push_back(power + power * quarter / 4);
  }

  std::uint64_t checksum = 0;
  std::vector<void*> blocks;
  for (std::size_t round = 0; round < rounds; ++round) {
    for (std::size_t size : sizes) {
      // At least 16 blocks so that even 1 MiB sees reuse; at most 64 Ki blocks.
      std::size_t count = std::max<std::size_t>(16, std::min<std::size_t>(bytes_per_size / size, 65536));
      blocks.resize(count);
      for (std::size_t i = 0; i < count; ++i) {
        blocks[i] = workload::checked_malloc(size);
        workload::fill(blocks[i], size, i + size);
      }
      for (std::size_t i = 0; i < count; ++i) {
        checksum += workload::fold(blocks[i], size);
        std::free(blocks[i]);
      }
    }
  }
  workload::print_checksum(checksum);
}
