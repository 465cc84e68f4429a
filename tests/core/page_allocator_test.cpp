// What is special to page_allocator(); the shared contract is in the conformance suite.
#include <zheap/page_allocator.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

namespace {
using zheap::Alignment;

const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));

TEST(PageAllocator, BlocksArePageAlignedAndZeroed) {
  auto a = zheap::page_allocator();
  auto span = a.alloc<unsigned char>(100);
  ASSERT_NE(span.data(), nullptr);
  EXPECT_TRUE(Alignment::of_bytes(page).check(span.data()));
  for (unsigned char c : span) EXPECT_EQ(c, 0);
  a.free(span);
}

TEST(PageAllocator, AlignmentsAboveThePageSize) {
  auto a = zheap::page_allocator();
  for (std::size_t align = page * 2; align <= (std::size_t{1} << 24); align <<= 2) {
    auto span = a.alloc<char>(3 * page + 1, Alignment::of_bytes(align));
    ASSERT_NE(span.data(), nullptr) << align;
    EXPECT_TRUE(Alignment::of_bytes(align).check(span.data())) << align;
    span[span.size() - 1] = 'z';
    a.free(span, Alignment::of_bytes(align));
  }
}

TEST(PageAllocator, ResizeWithinTheLastPageAndShrinkInPlace) {
  auto a = zheap::page_allocator();
  auto span = a.alloc<char>(10);
  EXPECT_TRUE(a.resize(span, page));  // same page
  span = {span.data(), page};
  auto big = a.realloc(span, 10 * page);
  ASSERT_NE(big.data(), nullptr);
  big[10 * page - 1] = 'q';
  EXPECT_TRUE(a.resize(big, 2 * page));  // shrinking unmaps the tail
  a.free(std::span<char>(big.data(), 2 * page));
}

TEST(PageAllocator, RemapMovesLargeBlocksWithoutCopyingByHand) {
  auto a = zheap::page_allocator();
  auto span = a.alloc<std::size_t>(page);  // 8 pages
  for (std::size_t i = 0; i < span.size(); ++i) span[i] = i;
  auto moved = a.remap(span, 64 * page);
  ASSERT_NE(moved.data(), nullptr);
  for (std::size_t i = 0; i < page; ++i) ASSERT_EQ(moved[i], i);
  a.free(moved);
}

TEST(PageAllocator, ImpossibleSizesFailCleanly) {
  auto a = zheap::page_allocator();
  EXPECT_EQ(a.alloc<char>(SIZE_MAX - 10).data(), nullptr);
  EXPECT_EQ(a.alloc<char>(std::size_t{1} << 62).data(), nullptr);
}
}  // namespace
