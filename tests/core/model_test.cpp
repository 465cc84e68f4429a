// A randomized model test over every allocator: long reproducible sequences of alloc /
// resize / remap / realloc / free with random sizes and alignments, checked against a
// shadow model of the live blocks: no two live blocks overlap, every block honours its
// alignment, and every block keeps its fill pattern until it is freed.
//
// Seeds are fixed, so a failure names the seed and the step that reproduce it.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>

#include "allocator_fixtures.hpp"

namespace {
using zheap::Alignment;
using zheap::Allocator;

struct ShadowBlock {
  std::size_t len;
  Alignment alignment;
  std::uint64_t seed;  // what the block is filled from
};

unsigned char pattern_byte(std::uint64_t seed, std::size_t offset) {
  return static_cast<unsigned char>((seed >> ((offset & 7) * 8)) + offset);
}

class Model {
 public:
  Model(Allocator a, const AllocatorTraits& traits, std::uint64_t seed) : a_(a), traits_(traits), random_(seed) {}

  // Runs `steps` random operations; stops at the first broken property (the gtest
  // failure says which).
  void run(int steps) {
    for (step_ = 0; step_ < steps && !broken_; ++step_) {
      const unsigned op = random_() % 100;
      if (live_.size() >= max_live || (op < 25 && !live_.empty()))
        free_one();
      else if (op < 35 && !live_.empty())
        resize_one();
      else if (op < 45 && !live_.empty())
        remap_one();
      else if (op < 60 && !live_.empty())
        realloc_one();
      else
        alloc_one();
      if (step_ % 1000 == 0) check_all();
    }
    check_all();  // returns at once when broken
    while (!live_.empty() && !broken_) free_one();
  }

 private:
  static constexpr std::size_t max_live = 200;

  std::size_t random_len() {
    const unsigned kind = random_() % 100;
    std::size_t len;
    if (kind < 70)
      len = 1 + random_() % 128;
    else if (kind < 95)
      len = 129 + random_() % 4000;
    else
      len = 4097 + random_() % 60000;
    return std::max<std::size_t>(1, fitting_size(traits_, len));
  }
  Alignment random_alignment() {
    const unsigned kind = random_() % 100;
    if (kind < 70) return Alignment::from_log2(random_() % 5);        // 1..16
    if (kind < 97) return Alignment::from_log2(5 + random_() % 8);    // 32..4096
    return Alignment::from_log2(13 + random_() % 3);                  // 8 KiB..32 KiB
  }
  bool may_run_out() const { return traits_.capacity != SIZE_MAX; }

  // A broken property: a fatal failure naming the step, and the model stops (by its own
  // flag, which also works where gtest-spi intercepts the failure).
  void fail(const ::testing::Message& what) {
    broken_ = true;
    FAIL() << "step " << step_ << ": " << what;
  }

  void fill(unsigned char* p, const ShadowBlock& block, std::size_t from) {
    for (std::size_t i = from; i < block.len; ++i) p[i] = pattern_byte(block.seed, i);
  }
  void expect_intact(std::uintptr_t address, const ShadowBlock& block, std::size_t len) {
    const auto* p = reinterpret_cast<const unsigned char*>(address);
    for (std::size_t i = 0; i < len; ++i) {
      if (p[i] != pattern_byte(block.seed, i)) {
        return fail(::testing::Message() << "block " << reinterpret_cast<void*>(address) << " (len " << block.len
                                          << ") changed at offset " << i);
      }
    }
  }
  // A block just placed at `address` must honour its alignment and not overlap its
  // neighbours in the model.
  void expect_placed_well(std::uintptr_t address, const ShadowBlock& block) {
    if (!block.alignment.check(address))
      return fail(::testing::Message() << reinterpret_cast<void*>(address) << " not aligned to "
                                       << block.alignment.bytes());
    auto next = live_.upper_bound(address);
    if (next != live_.end() && address + block.len > next->first)
      return fail(::testing::Message() << "overlaps the next live block");
    if (next != live_.begin()) {
      auto previous = std::prev(next);
      if (previous->first == address) previous = previous == live_.begin() ? live_.end() : std::prev(previous);
      if (previous != live_.end() && previous->first + previous->second.len > address)
        return fail(::testing::Message() << "overlaps the previous live block");
    }
  }
  std::map<std::uintptr_t, ShadowBlock>::iterator random_block() {
    auto it = live_.begin();
    std::advance(it, static_cast<long>(random_() % live_.size()));
    return it;
  }

  void alloc_one() {
    ShadowBlock block{random_len(), random_alignment(), random_()};
    auto span = a_.alloc<unsigned char>(block.len, block.alignment);
    if (span.data() == nullptr) {
      if (!may_run_out()) fail(::testing::Message() << "out of memory allocating " << block.len);
      return;
    }
    const auto address = reinterpret_cast<std::uintptr_t>(span.data());
    expect_placed_well(address, block);
    fill(span.data(), block, 0);
    live_.emplace(address, block);
  }

  void free_one() {
    auto it = random_block();
    expect_intact(it->first, it->second, it->second.len);
    a_.free(std::span(reinterpret_cast<unsigned char*>(it->first), it->second.len), it->second.alignment);
    live_.erase(it);
  }

  void resize_one() {
    auto it = random_block();
    ShadowBlock& block = it->second;
    const std::size_t new_len = random_len();
    auto span = std::span(reinterpret_cast<unsigned char*>(it->first), block.len);
    if (!a_.resize(span, new_len, block.alignment)) {
      expect_intact(it->first, block, block.len);
      return;
    }
    const std::size_t kept = std::min(block.len, new_len);
    expect_intact(it->first, block, kept);
    block.len = new_len;
    expect_placed_well(it->first, block);
    fill(span.data(), block, kept);
  }

  // remap (may fail) and realloc (fails only when out of memory) both may move the block.
  void move_one(bool use_realloc) {
    auto it = random_block();
    const ShadowBlock old_block = it->second;
    const std::size_t new_len = random_len();
    auto span = std::span(reinterpret_cast<unsigned char*>(it->first), old_block.len);
    auto moved = use_realloc ? a_.realloc(span, new_len, old_block.alignment)
                             : a_.remap(span, new_len, old_block.alignment);
    if (moved.data() == nullptr) {
      if (use_realloc && !may_run_out()) return fail(::testing::Message() << "realloc to " << new_len << " failed");
      expect_intact(it->first, old_block, old_block.len);
      return;
    }
    live_.erase(it);
    ShadowBlock block = old_block;
    block.len = new_len;
    const auto address = reinterpret_cast<std::uintptr_t>(moved.data());
    const std::size_t kept = std::min(old_block.len, new_len);
    expect_intact(address, block, kept);
    expect_placed_well(address, block);
    fill(moved.data(), block, kept);
    live_.emplace(address, block);
  }
  void remap_one() { move_one(false); }
  void realloc_one() { move_one(true); }

  void check_all() {
    for (const auto& [address, block] : live_) {
      if (broken_) return;
      expect_intact(address, block, block.len);
    }
  }

  Allocator a_;
  AllocatorTraits traits_;
  std::mt19937_64 random_;
  std::map<std::uintptr_t, ShadowBlock> live_;
  int step_ = 0;
  bool broken_ = false;
};

template <class Fixture>
class RandomModel : public ::testing::Test {};
TYPED_TEST_SUITE(RandomModel, AllAllocatorFixtures, AllocatorFixtureNames);

TYPED_TEST(RandomModel, LongRandomSequencesKeepEveryBlockIntact) {
  for (std::uint64_t seed : {1u, 2u, 20261121u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    TypeParam fixture(zheap::page_allocator());
    zheap::ValidatingAllocator validating(fixture.allocator(), fail_test_on_violation());
    Model(validating.allocator(), TypeParam::traits, seed).run(6000);
    EXPECT_EQ(validating.live_blocks(), 0u);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// The model must catch an allocator that hands out overlapping blocks: this one bumps
// its pointer by only half of each request.
struct HalfBumpAllocator {
  alignas(4096) static inline unsigned char memory[std::size_t{64} << 20];
  static inline std::size_t used = 0;
  static void* alloc(void*, std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
    const std::size_t start = alignment.forward(used);
    if (start + len > sizeof memory) return nullptr;
    used = start + len / 2;
    return memory + start;
  }
  static constexpr Allocator::VTable vtable{alloc, Allocator::no_resize, Allocator::no_remap, Allocator::no_free};
  static void run_model() {
    used = 0;
    Model(Allocator(nullptr, &vtable), AllocatorTraits{}, 1).run(1000);
  }
};

TEST(RandomModelSelfCheck, CatchesOverlappingBlocks) {
  EXPECT_FATAL_FAILURE(HalfBumpAllocator::run_model(), "overlaps the previous live block");
}

}  // namespace
