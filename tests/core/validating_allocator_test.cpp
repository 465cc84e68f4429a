// ValidatingAllocator: each kind of contract violation is seen, and a correct caller
// sees none.
#include <zheap/page_allocator.hpp>
#include <zheap/validating_allocator.hpp>

#include <gtest/gtest.h>

#include "leak_check.hpp"
#include "violation_recorder.hpp"

namespace {
using zheap::Alignment;
using zheap::ValidatingAllocator;
using zheap::ViolationKind;

class ValidatingAllocatorTest : public LeakCheckedTest {
 protected:
  ViolationRecorder recorder;
  ValidatingAllocator validating{gpa(), recorder.handler()};
  zheap::Allocator a = validating.allocator();

  ViolationKind last_kind() const { return recorder.seen.back().kind; }
};

TEST_F(ValidatingAllocatorTest, ACorrectCallerSeesNoViolation) {
  auto block = a.alloc<char>(100, Alignment::of_bytes(64));
  ASSERT_TRUE(a.resize(block, 200, Alignment::of_bytes(64)));
  block = {block.data(), 200};
  auto moved = a.realloc(block, 100000, Alignment::of_bytes(64));
  ASSERT_NE(moved.data(), nullptr);
  a.free(moved, Alignment::of_bytes(64));
  EXPECT_EQ(validating.violations(), 0u);
  EXPECT_TRUE(recorder.seen.empty());
  EXPECT_EQ(validating.live_blocks(), 0u);
}

TEST_F(ValidatingAllocatorTest, DoubleFree) {
  auto block = a.alloc<char>(10);
  a.free(block);
  a.free(block);
  ASSERT_EQ(validating.violations(), 1u);
  EXPECT_EQ(last_kind(), ViolationKind::double_free);
  EXPECT_STREQ(recorder.seen.back().operation, "free");
  EXPECT_EQ(recorder.seen.back().memory, block.data());
}

TEST_F(ValidatingAllocatorTest, UnknownPointer) {
  char not_ours[16];
  a.free(std::span<char>(not_ours));
  ASSERT_EQ(validating.violations(), 1u);
  EXPECT_EQ(last_kind(), ViolationKind::unknown_pointer);
  EXPECT_FALSE(a.resize(std::span<char>(not_ours), 8));
  EXPECT_EQ(a.remap(std::span<char>(not_ours), 32).data(), nullptr);
  EXPECT_EQ(validating.violations(), 3u);
}

TEST_F(ValidatingAllocatorTest, WrongLengthOnFreeIsReportedAndTheRightOneFreed) {
  auto block = a.alloc<char>(100);
  a.free(block.first(50));
  ASSERT_EQ(validating.violations(), 1u);
  EXPECT_EQ(last_kind(), ViolationKind::length_mismatch);
  EXPECT_EQ(recorder.seen.back().len, 50u);
  EXPECT_EQ(recorder.seen.back().recorded_len, 100u);
  EXPECT_EQ(validating.live_blocks(), 0u);  // and the leak check below sees it freed
}

TEST_F(ValidatingAllocatorTest, WrongAlignmentOnResizeIsRefused) {
  auto block = a.alloc<char>(100, Alignment::of_bytes(32));
  EXPECT_FALSE(a.resize(block, 120, Alignment::of_bytes(16)));
  ASSERT_EQ(validating.violations(), 1u);
  EXPECT_EQ(last_kind(), ViolationKind::alignment_mismatch);
  EXPECT_EQ(recorder.seen.back().recorded_alignment, Alignment::of_bytes(32));
  a.free(block, Alignment::of_bytes(32));
  EXPECT_EQ(validating.violations(), 1u);
}

TEST_F(ValidatingAllocatorTest, StaleLengthAfterResize) {
  auto block = a.alloc<char>(100);
  ASSERT_TRUE(a.resize(block, 10));
  a.free(block);  // still says 100
  EXPECT_EQ(last_kind(), ViolationKind::length_mismatch);
  EXPECT_EQ(recorder.seen.back().recorded_len, 10u);
}

TEST_F(ValidatingAllocatorTest, ZeroLengthReachingTheAllocator) {
  EXPECT_EQ(a.raw_alloc(0, Alignment::of_bytes(1), 0), nullptr);
  EXPECT_EQ(last_kind(), ViolationKind::zero_length);
  auto block = a.alloc<char>(10);
  EXPECT_FALSE(a.raw_resize(block.data(), 10, Alignment::of_bytes(1), 0, 0));
  EXPECT_EQ(validating.violations(), 2u);
  a.free(block);
}

// An allocator that breaks its side: a misaligned pointer, then the same block twice.
alignas(64) char arena_bytes[256];
void* misaligning_alloc(void* ctx, std::size_t, Alignment, std::uintptr_t) noexcept {
  auto& calls = *static_cast<int*>(ctx);
  return arena_bytes + (calls++ == 0 ? 1 : 64);
}
constexpr zheap::Allocator::VTable broken_vtable{misaligning_alloc, zheap::Allocator::no_resize,
                                                 zheap::Allocator::no_remap, zheap::Allocator::no_free};

TEST(ValidatingAllocatorOfABrokenAllocator, MisalignedAndAlreadyLiveResults) {
  int calls = 0;
  ViolationRecorder recorder;
  ValidatingAllocator validating(zheap::Allocator(&calls, &broken_vtable), recorder.handler());
  auto a = validating.allocator();
  a.alloc<std::uint64_t>(2);
  ASSERT_EQ(recorder.seen.size(), 1u);
  EXPECT_EQ(recorder.seen[0].kind, ViolationKind::misaligned_result);
  a.alloc<char>(8);
  a.alloc<char>(8);
  ASSERT_EQ(recorder.seen.size(), 2u);
  EXPECT_EQ(recorder.seen[1].kind, ViolationKind::result_already_live);
}

TEST(ValidatingAllocatorDeathTest, TheDefaultHandlerNamesTheViolationAndAborts) {
  EXPECT_DEATH(
      {
        ValidatingAllocator validating(zheap::page_allocator());
        auto a = validating.allocator();
        auto block = a.alloc<char>(10);
        a.free(block);
        a.free(block);
      },
      "zheap: allocator contract violation: double free in free\\(0x[0-9a-f]+, len=10, align=1\\)");
}
}  // namespace
