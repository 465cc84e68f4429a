// What is special to StackFallbackAllocator: small requests stay inline, the rest go to
// the fallback, and every block goes back to the allocator that made it.
#include <zheap/stack_fallback_allocator.hpp>

#include <gtest/gtest.h>

#include <cstring>

#include "spy_allocator.hpp"

namespace {
using zheap::Alignment;
using zheap::StackFallbackAllocator;
using zheap::testing::SpyAllocator;

TEST(StackFallbackAllocator, SmallRequestsStayInlineLargeOnesGoToTheFallback) {
  SpyAllocator fallback;
  StackFallbackAllocator<256> sfa(fallback.allocator());
  auto a = sfa.get();
  auto small = a.alloc<char>(100);
  ASSERT_NE(small.data(), nullptr);
  EXPECT_TRUE(sfa.owns_ptr(small.data()));
  EXPECT_EQ(fallback.alloc_calls, 0u);

  auto large = a.alloc<char>(1000);
  ASSERT_NE(large.data(), nullptr);
  EXPECT_FALSE(sfa.owns_ptr(large.data()));
  EXPECT_EQ(fallback.live_blocks(), 1u);

  // 156 bytes are left inline: 200 spill over, 100 still fit.
  auto spill = a.alloc<char>(200);
  EXPECT_FALSE(sfa.owns_ptr(spill.data()));
  auto fits = a.alloc<char>(100);
  EXPECT_TRUE(sfa.owns_ptr(fits.data()));

  a.free(large);
  a.free(spill);
  a.free(fits);
  a.free(small);
  EXPECT_EQ(fallback.live_blocks(), 0u);
  EXPECT_EQ(fallback.free_calls, 2u);  // inline blocks never reach the fallback
}

TEST(StackFallbackAllocator, GetTwiceDoesNotForgetInlineBlocks) {
  StackFallbackAllocator<128> sfa(zheap::c_allocator());
  auto first = sfa.get().alloc<char>(64);
  auto second = sfa.get().alloc<char>(32);
  EXPECT_TRUE(sfa.owns_ptr(first.data()));
  EXPECT_TRUE(sfa.owns_ptr(second.data()));
  EXPECT_GE(second.data(), first.data() + 64);
}

TEST(StackFallbackAllocator, HonoursAlignmentOnBothSides) {
  SpyAllocator fallback;
  StackFallbackAllocator<8192> sfa(fallback.allocator());
  auto a = sfa.get();
  for (std::size_t align = 1; align <= (std::size_t{1} << 14); align <<= 1) {
    auto span = a.alloc<char>(16, Alignment::of_bytes(align));
    ASSERT_NE(span.data(), nullptr) << align;
    EXPECT_TRUE(Alignment::of_bytes(align).check(span.data())) << align;
    a.free(span, Alignment::of_bytes(align));
  }
  EXPECT_EQ(fallback.live_blocks(), 0u);
}

TEST(StackFallbackAllocator, ResizeAndRemapGoToTheOwner) {
  SpyAllocator fallback;
  StackFallbackAllocator<256> sfa(fallback.allocator());
  auto a = sfa.get();
  auto inline_block = a.alloc<char>(100);
  EXPECT_TRUE(a.resize(inline_block, 256));  // the last inline block grows in place
  inline_block = {inline_block.data(), 256};
  EXPECT_FALSE(a.resize(inline_block, 257));
  EXPECT_EQ(fallback.resize_calls, 0u);

  std::memset(inline_block.data(), 'i', inline_block.size());
  // realloc past the inline buffer: remap fails inline, so it allocates from the fallback
  // and copies.
  auto moved = a.realloc(inline_block, 4096);
  ASSERT_NE(moved.data(), nullptr);
  EXPECT_FALSE(sfa.owns_ptr(moved.data()));
  for (std::size_t i = 0; i < 256; ++i) ASSERT_EQ(moved[i], 'i');

  auto grown = a.realloc(moved, 1 << 20);  // remapped by the fallback (c_allocator: realloc)
  ASSERT_NE(grown.data(), nullptr);
  for (std::size_t i = 0; i < 256; ++i) ASSERT_EQ(grown[i], 'i');
  a.free(grown);
  EXPECT_EQ(fallback.live_blocks(), 0u);
}
}  // namespace
