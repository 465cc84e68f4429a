// THE CONTRACT of allocator.hpp, checked on every allocator zheap has (the fixtures in
// tests/support/allocator_fixtures.hpp), each wrapped in a ValidatingAllocator that
// fails the test on any contract violation. What is special to one allocator is tested
// in its own file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "allocator_fixtures.hpp"

namespace {
using zheap::Alignment;
using zheap::Allocator;

// A byte pattern that depends on the block and the offset, so a block overwritten by
// another (or moved without its contents) does not pass for intact.
unsigned char pattern_byte(std::size_t seed, std::size_t offset) {
  return static_cast<unsigned char>((seed * 131 + offset * 7 + (offset >> 8)) & 0xff);
}
void fill(std::span<unsigned char> block, std::size_t seed, std::size_t from = 0) {
  for (std::size_t i = from; i < block.size(); ++i) block[i] = pattern_byte(seed, i);
}
// The first offset whose byte is not the pattern's, or block.size() when all are.
std::size_t first_mismatch(std::span<const unsigned char> block, std::size_t seed) {
  for (std::size_t i = 0; i < block.size(); ++i)
    if (block[i] != pattern_byte(seed, i)) return i;
  return block.size();
}

template <class Fixture>
class Conformance : public ::testing::Test {
 protected:
  static constexpr AllocatorTraits traits = Fixture::traits;

  Conformance() : fixture_(zheap::page_allocator()), validating_(fixture_.allocator(), fail_test_on_violation()) {}
  void TearDown() override { EXPECT_EQ(validating_.live_blocks(), 0u) << "the test itself leaked"; }

  Allocator allocator() { return validating_.allocator(); }

  Fixture fixture_;
  zheap::ValidatingAllocator validating_;
};
TYPED_TEST_SUITE(Conformance, AllAllocatorFixtures, AllocatorFixtureNames);

TYPED_TEST(Conformance, EveryAlignmentUpToAndAboveThePageSize) {
  const Allocator a = this->allocator();
  for (unsigned log2 = 0; log2 <= 16; ++log2) {
    const Alignment alignment = Alignment::from_log2(log2);
    for (std::size_t len : {std::size_t{1}, std::size_t{24}, alignment.bytes() + 3}) {
      if (fitting_size(this->traits, len + alignment.bytes()) < len + alignment.bytes()) continue;
      auto block = a.alloc<unsigned char>(len, alignment);
      ASSERT_NE(block.data(), nullptr) << "len " << len << " align " << alignment.bytes();
      EXPECT_TRUE(alignment.check(block.data())) << "len " << len << " align " << alignment.bytes();
      fill(block, log2);
      EXPECT_EQ(first_mismatch(block, log2), len);
      a.free(block, alignment);
    }
  }
}

TYPED_TEST(Conformance, ZeroLengthRequestsNeverReachTheAllocator) {
  const Allocator a = this->allocator();
  auto empty = a.alloc<std::uint64_t>(0);
  EXPECT_NE(empty.data(), nullptr);
  EXPECT_TRUE(Alignment::of<std::uint64_t>().check(empty.data()));
  EXPECT_EQ(empty.size(), 0u);
  a.free(empty);
  EXPECT_TRUE(a.resize(empty, 0));
  auto grown = a.realloc(empty, 5);
  ASSERT_NE(grown.data(), nullptr);
  EXPECT_EQ(grown.size(), 5u);
  auto gone = a.realloc(grown, 0);  // frees
  EXPECT_EQ(gone.size(), 0u);
  EXPECT_EQ(this->validating_.live_blocks(), 0u);
}

TYPED_TEST(Conformance, ResizeIsInPlaceOrNothingChanges) {
  const Allocator a = this->allocator();
  auto block = a.alloc<unsigned char>(100);
  ASSERT_NE(block.data(), nullptr);
  fill(block, 1);
  for (std::size_t new_len : {std::size_t{40}, std::size_t{100}, std::size_t{4000}, fitting_size(this->traits, 300000),
                              std::size_t{7}}) {
    const bool resized = a.resize(block, new_len);
    const std::size_t kept = resized ? std::min(block.size(), new_len) : block.size();
    if (resized) block = {block.data(), new_len};
    // Either way the block is at the same address, with its contents up to `kept`.
    EXPECT_EQ(first_mismatch(block.first(kept), 1), kept) << "after resize to " << new_len;
    fill(block, 1, kept);
  }
  a.free(block);  // with the length of the last successful resize: the validator checks it
}

TYPED_TEST(Conformance, RemapPreservesContentsWhereverTheBlockEndsUp) {
  const Allocator a = this->allocator();
  auto block = a.alloc<unsigned char>(1000);
  ASSERT_NE(block.data(), nullptr);
  fill(block, 2);
  for (std::size_t new_len : {fitting_size(this->traits, 200000), std::size_t{3000}, std::size_t{10}}) {
    auto moved = a.remap(block, new_len);
    if (moved.data() == nullptr) {  // nothing changed
      EXPECT_EQ(first_mismatch(block, 2), block.size());
      continue;
    }
    const std::size_t kept = std::min(block.size(), new_len);
    EXPECT_EQ(first_mismatch(moved.first(kept), 2), kept) << "after remap to " << new_len;
    block = moved;
    fill(block, 2, kept);
  }
  a.free(block);
}

TYPED_TEST(Conformance, ReallocPreservesContentsGrowingAndShrinking) {
  const Allocator a = this->allocator();
  std::span<unsigned char> block;
  const std::size_t largest = fitting_size(this->traits, std::size_t{1} << 18);
  for (std::size_t len = 1; len <= largest; len *= 2) {
    const std::size_t kept = block.size();
    auto grown = a.realloc(block, len);
    ASSERT_NE(grown.data(), nullptr) << len;
    EXPECT_EQ(first_mismatch(grown.first(kept), 3), kept) << "growing to " << len;
    fill(grown, 3, kept);
    block = grown;
  }
  auto shrunk = a.realloc(block, 10);
  ASSERT_NE(shrunk.data(), nullptr);
  EXPECT_EQ(first_mismatch(shrunk, 3), 10u);
  a.free(shrunk);
}

TYPED_TEST(Conformance, OverAlignedReallocKeepsItsAlignment) {
  const Allocator a = this->allocator();
  const Alignment alignment = Alignment::of_bytes(256);
  auto block = a.alloc<unsigned char>(10, alignment);
  ASSERT_NE(block.data(), nullptr);
  fill(block, 4);
  auto grown = a.realloc(block, fitting_size(this->traits, 50000), alignment);
  ASSERT_NE(grown.data(), nullptr);
  EXPECT_TRUE(alignment.check(grown.data()));
  EXPECT_EQ(first_mismatch(grown.first(10), 4), 10u);
  a.free(grown, alignment);
}

struct Counted {
  static inline int alive = 0;
  explicit Counted(int v) : value(v) { ++alive; }
  ~Counted() { --alive; }
  int value;
  char padding[20];
};
struct alignas(128) OverAligned {
  double values[3];
};

TYPED_TEST(Conformance, CreateConstructsAndDestroyDestructs) {
  const Allocator a = this->allocator();
  Counted* counted = a.create<Counted>(42);
  ASSERT_NE(counted, nullptr);
  EXPECT_EQ(counted->value, 42);
  EXPECT_EQ(Counted::alive, 1);
  OverAligned* over = a.create<OverAligned>();
  ASSERT_NE(over, nullptr);
  EXPECT_TRUE(Alignment::of_bytes(128).check(over));
  over->values[2] = 1.5;
  a.destroy(over);
  a.destroy(counted);
  EXPECT_EQ(Counted::alive, 0);
  a.destroy(static_cast<Counted*>(nullptr));  // ignored
}

TYPED_TEST(Conformance, DupeCopies) {
  const Allocator a = this->allocator();
  const int source[] = {1, 2, 3, 5, 8};
  auto copy = a.dupe(std::span<const int>(source));
  ASSERT_EQ(copy.size(), 5u);
  EXPECT_TRUE(std::equal(copy.begin(), copy.end(), std::begin(source)));
  auto text = a.dupe_z("zig");
  ASSERT_EQ(text.size(), 4u);
  EXPECT_STREQ(text.data(), "zig");
  a.free(text);
  a.free(copy);
}

TYPED_TEST(Conformance, ManyBlocksFreedInRandomOrder) {
  const Allocator a = this->allocator();
  std::mt19937 random(20261121);
  std::vector<std::span<unsigned char>> blocks;
  for (int i = 0; i < 600; ++i) {
    const std::size_t len = 1 + random() % 512;
    auto block = a.alloc<unsigned char>(len);
    ASSERT_NE(block.data(), nullptr) << i;
    fill(block, blocks.size());
    blocks.push_back(block);
  }
  std::vector<std::size_t> order(blocks.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), random);
  for (std::size_t index : order) {
    EXPECT_EQ(first_mismatch(blocks[index], index), blocks[index].size()) << "block " << index;
    a.free(blocks[index]);
  }
}

TYPED_TEST(Conformance, FreedMemoryIsReclaimed) {
  const Allocator a = this->allocator();
  // 1000 rounds of 64 KiB: 64 MiB in all, sixteen times a bounded allocator's capacity,
  // so an allocator whose free reclaimed nothing would run out.
  const std::size_t len = fitting_size(this->traits, std::size_t{64} << 10);
  for (int round = 0; round < 1000; ++round) {
    auto block = a.alloc<unsigned char>(len);
    ASSERT_NE(block.data(), nullptr) << "round " << round;
    block[0] = block[len - 1] = 1;
    a.free(block);
  }
  if constexpr (TypeParam::traits.frees_only_last) {
    // What such an allocator does promise: the last block, freed, is the next one given.
    auto first = a.alloc<unsigned char>(100);
    auto last = a.alloc<unsigned char>(100);
    a.free(last);
    auto again = a.alloc<unsigned char>(100);
    EXPECT_EQ(again.data(), last.data());
    a.free(again);
    a.free(first);
  }
}

TYPED_TEST(Conformance, ImpossibleRequestsFailWithoutThrowing) {
  const Allocator a = this->allocator();
  auto huge = a.alloc<unsigned char>(std::size_t{1} << 62);
  EXPECT_EQ(huge.data(), nullptr);
  EXPECT_EQ(huge.size(), 0u);
  auto overflow = a.alloc<std::uint64_t>(SIZE_MAX / 4);  // n * 8 overflows
  EXPECT_EQ(overflow.data(), nullptr);
  if (this->traits.capacity != SIZE_MAX) {
    EXPECT_EQ(a.alloc<unsigned char>(this->traits.capacity + 1).data(), nullptr);
  }
}

// ---- Out of memory, injected with a FailingAllocator: every failure is handled and
// nothing leaks.

struct Node {
  std::span<char> label;
  Node* next;
};

// A small program in the style the contract asks for: grows a list with realloc,
// duplicates strings into it, creates a node; on any failure it frees what it has and
// answers false. About 5 KiB in all: more than a 4 KiB stack buffer holds.
bool build_and_tear_down(Allocator a) {
  std::span<std::span<char>> list;
  std::size_t used = 0;
  bool ok = true;
  for (int i = 0; i < 64 && ok; ++i) {
    if (used == list.size()) {
      auto grown = a.realloc(list, std::max<std::size_t>(2, list.size() * 2));
      if (grown.data() == nullptr) {
        ok = false;
        break;
      }
      list = grown;
    }
    char text[64];
    std::snprintf(text, sizeof text, "item %d, with text enough to need an allocation", i);
    auto copy = a.dupe_z(text);
    if (copy.data() == nullptr) {
      ok = false;
      break;
    }
    list[used++] = copy;
  }
  Node* node = ok ? a.create<Node>(Node{used != 0 ? list[0] : std::span<char>(), nullptr}) : nullptr;
  if (ok && node == nullptr) ok = false;
  a.destroy(node);
  for (std::size_t i = 0; i < used; ++i) a.free(list[i]);
  a.free(list);
  return ok;
}

struct FailureRun {
  bool succeeded;
  bool induced_failure;
};

// Runs the scenario once with `options`, the failing allocator placed under the
// fixture's allocator when it has a backing, over it otherwise, and a TestingAllocator
// at the bottom that must see every block returned once the fixture is gone.
template <class Fixture>
FailureRun run_with_failures(zheap::FailingOptions options) {
  FailureRun run{};
  if constexpr (Fixture::traits.uses_backing) {
    zheap::TestingAllocator leaks;
    zheap::FailingAllocator failing(leaks.allocator(), options);
    {
      Fixture fixture(failing.allocator());
      zheap::ValidatingAllocator validating(fixture.allocator(), fail_test_on_violation());
      run.succeeded = build_and_tear_down(validating.allocator());
      run.induced_failure = failing.has_induced_failure();
    }
    EXPECT_EQ(leaks.leaked_blocks(), 0u);
    leaks.release_leaked_blocks();
  } else {
    Fixture fixture(zheap::page_allocator());
    zheap::TestingAllocator leaks(fixture.allocator());
    zheap::FailingAllocator failing(leaks.allocator(), options);
    zheap::ValidatingAllocator validating(failing.allocator(), fail_test_on_violation());
    run.succeeded = build_and_tear_down(validating.allocator());
    run.induced_failure = failing.has_induced_failure();
    EXPECT_EQ(leaks.leaked_blocks(), 0u);
    leaks.release_leaked_blocks();
  }
  return run;
}

TYPED_TEST(Conformance, EveryAllocationFailureIsHandledWithoutLeaks) {
  std::size_t k = 0;
  for (; k < 1000; ++k) {
    SCOPED_TRACE(::testing::Message() << "fail_index " << k);
    const FailureRun run = run_with_failures<TypeParam>({.fail_index = k});
    if (!run.induced_failure) {
      EXPECT_TRUE(run.succeeded);
      break;
    }
    // Over the allocator, the scenario needs every allocation; under one with a backing,
    // the allocator may recover (retry smaller), so only the absence of leaks is checked.
    if (!this->traits.uses_backing) {
      EXPECT_FALSE(run.succeeded);
    }
  }
  EXPECT_LT(k, 1000u) << "the scenario never ran to the end";
  // Over the allocator every allocation counts; under one, an allocator that serves the
  // whole scenario from memory of its own (a stack buffer) may never reach its backing.
  if (!this->traits.uses_backing) {
    EXPECT_GT(k, 0u) << "no allocation was ever made";
  }
}

TYPED_TEST(Conformance, ResizeAndRemapFailuresFallBackToCopying) {
  for (std::size_t k = 0; k < 1000; ++k) {
    SCOPED_TRACE(::testing::Message() << "resize_fail_index " << k);
    const FailureRun run = run_with_failures<TypeParam>({.resize_fail_index = k});
    EXPECT_TRUE(run.succeeded);  // realloc copies when it cannot resize or remap
    if (!run.induced_failure) break;
  }
}

TYPED_TEST(Conformance, OutOfMemoryIsAnEmptySpanOrNullptr) {
  zheap::TestingAllocator leaks;
  zheap::FailingAllocator failing(leaks.allocator(), {.fail_index = 0, .resize_fail_index = 0});
  if constexpr (TypeParam::traits.uses_backing) {
    {
      TypeParam fixture(failing.allocator());
      const Allocator a = fixture.allocator();
      // Big enough that no allocator can serve it from memory it already holds.
      auto block = a.alloc<unsigned char>(std::size_t{1} << 24);
      EXPECT_EQ(block.data(), nullptr);
      EXPECT_EQ(block.size(), 0u);
    }
  } else {
    zheap::FailingAllocator over(this->allocator(), {.fail_index = 0});
    const Allocator a = over.allocator();
    EXPECT_EQ(a.alloc<unsigned char>(10).data(), nullptr);
    EXPECT_EQ(a.create<Counted>(1), nullptr);
    EXPECT_EQ(Counted::alive, 0);
  }
  EXPECT_EQ(leaks.leaked_blocks(), 0u);
}

}  // namespace
