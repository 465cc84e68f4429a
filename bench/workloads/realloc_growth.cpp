// realloc_growth: buffers that grow by realloc, as string builders and vectors of C
// code do.
//
// A set of buffers is grown side by side, a few bytes to a few pages at a time, so the
// allocator sees interleaved growth: whether it can extend in place (or mremap large
// blocks) instead of copying decides the time. Every buffer ends between 64 KiB and
// 1 MiB; then all are freed and the next round starts.
//
//   --buffers=N  buffers grown together (default 64)   --rounds=N  (default 12)
#include "workload.hpp"

int main(int argc, char** argv) {
  workload::Args args(argc, argv);
  const std::size_t buffer_count = static_cast<std::size_t>(args.integer("buffers", 64));
  const std::size_t rounds = args.scaled(static_cast<std::size_t>(args.integer("rounds", 12)));
  workload::Random random(args.seed());
  args.finish();

  struct Buffer {
    char* data = nullptr;
    std::size_t size = 0, target = 0;
  };
  std::vector<Buffer> buffers(buffer_count);
  std::uint64_t checksum = 0;

  for (std::size_t round = 0; round < rounds; ++round) {
    for (Buffer& buffer : buffers) buffer.target = random.between(64 << 10, 1 << 20);
    std::size_t growing = buffer_count;
    while (growing > 0) {
      growing = 0;
      for (Buffer& buffer : buffers) {
        if (buffer.size >= buffer.target) continue;
        ++growing;
        // Mostly small appends, sometimes a doubling, like a string builder.
        std::size_t step = random.below(8) == 0 ? buffer.size + 1 : random.between(1, 512);
        std::size_t new_size = std::min(buffer.size + step, buffer.target);
        buffer.data = static_cast<char*>(workload::checked_realloc(buffer.data, new_size));
        std::memset(buffer.data + buffer.size, static_cast<int>(new_size & 0xff), new_size - buffer.size);
        buffer.size = new_size;
      }
    }
    for (Buffer& buffer : buffers) {
      checksum += workload::fold(buffer.data, buffer.size) + buffer.data[buffer.size / 2];
      std::free(buffer.data);
      buffer = Buffer{};
    }
  }
  workload::print_checksum(checksum);
}
