// small_objects: many small, short-lived objects on one thread.
//
// The pattern of a parser or an interpreter: bursts of 16-128 byte blocks, most freed
// soon after in roughly reverse order, a few kept alive for a while. This is the fast
// path of every allocator: per-size free lists, no locking, no cross-thread traffic.
//
//   --rounds=N    bursts (default 200000)   --burst=N   blocks per burst (default 100)
#include "workload.hpp"

int main(int argc, char** argv) {
  workload::Args args(argc, argv);
  const std::size_t rounds = args.scaled(static_cast<std::size_t>(args.integer("rounds", 200000)));
  const std::size_t burst = static_cast<std::size_t>(args.integer("burst", 100));
  workload::Random random(args.seed());
  args.finish();

  // Survivors: one block in 16 outlives its burst and is replaced later at random.
  constexpr std::size_t kSurvivors = 4096;
  std::vector<void*> survivors(kSurvivors, nullptr);
  std::vector<std::size_t> survivor_sizes(kSurvivors, 0);
  std::vector<void*> live(burst);
  std::vector<std::size_t> sizes(burst);
  std::uint64_t checksum = 0;

  for (std::size_t round = 0; round < rounds; ++round) {
    for (std::size_t i = 0; i < burst; ++i) {
      sizes[i] = random.between(16, 128);
      live[i] = workload::checked_malloc(sizes[i]);
      workload::fill(live[i], sizes[i], round + i);
    }
    for (std::size_t i = burst; i-- > 0;) {
      checksum += workload::fold(live[i], sizes[i]);
      if (random.below(16) == 0) {
        std::size_t slot = random.below(kSurvivors);
        std::free(survivors[slot]);
        survivors[slot] = live[i];
        survivor_sizes[slot] = sizes[i];
      } else {
        std::free(live[i]);
      }
    }
  }
  for (std::size_t slot = 0; slot < kSurvivors; ++slot) {
    if (survivors[slot] != nullptr) checksum += workload::fold(survivors[slot], survivor_sizes[slot]);
    std::free(survivors[slot]);
  }
  workload::print_checksum(checksum);
}
