// What is special to c_allocator(): it is the process's malloc, over-aligned blocks come
// from posix_memalign, resize answers from malloc_usable_size, remap is realloc.
#include <zheap/c_allocator.hpp>

#include <gtest/gtest.h>

#include <cstring>

#include <malloc.h>
#include <unistd.h>

namespace {
using zheap::Alignment;

const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));

TEST(CAllocator, HonoursAlignmentsFromOneByteToAbovePageSize) {
  auto a = zheap::c_allocator();
  for (std::size_t align = 1; align <= 64 * page; align <<= 1) {
    for (std::size_t len : {std::size_t{1}, std::size_t{24}, std::size_t{1000}, 3 * page}) {
      auto span = a.alloc<unsigned char>(len, Alignment::of_bytes(align));
      ASSERT_NE(span.data(), nullptr) << align << " " << len;
      EXPECT_TRUE(Alignment::of_bytes(align).check(span.data())) << align << " " << len;
      std::memset(span.data(), 0x5a, len);
      EXPECT_GE(malloc_usable_size(span.data()), len);  // a real malloc block
      a.free(span, Alignment::of_bytes(align));
    }
  }
}

TEST(CAllocator, ZeroLengthRequestsNeverReachMalloc) {
  auto span = zheap::c_allocator().alloc<int>(0);
  EXPECT_NE(span.data(), nullptr);
  EXPECT_EQ(span.size(), 0u);
  zheap::c_allocator().free(span);  // would crash if handed to free()
}

TEST(CAllocator, BlocksCanBeHandedToCCodeThatCallsFree) {
  auto span = zheap::c_allocator().alloc<char>(100);
  ASSERT_NE(span.data(), nullptr);
  std::free(span.data());
}

TEST(CAllocator, ResizeGrowsOnlyWithinTheUsableSize) {
  auto a = zheap::c_allocator();
  auto span = a.alloc<char>(20);
  ASSERT_NE(span.data(), nullptr);
  const std::size_t usable = malloc_usable_size(span.data());
  ASSERT_GE(usable, 20u);
  EXPECT_TRUE(a.resize(span, usable));
  span = {span.data(), usable};
  EXPECT_FALSE(a.resize(span, usable + 1));
  EXPECT_TRUE(a.resize(span, 1));  // shrinking always succeeds
  a.free(span.first(1));
}

TEST(CAllocator, RemapIsReallocAndKeepsTheContents) {
  auto a = zheap::c_allocator();
  auto span = a.alloc<std::size_t>(100);
  for (std::size_t i = 0; i < span.size(); ++i) span[i] = i * 3;
  auto grown = a.remap(span, 1 << 18);
  ASSERT_NE(grown.data(), nullptr);
  for (std::size_t i = 0; i < 100; ++i) ASSERT_EQ(grown[i], i * 3);
  EXPECT_GE(malloc_usable_size(grown.data()), (std::size_t{1} << 18) * sizeof(std::size_t));
  a.free(grown);
}

TEST(CAllocator, RemapRefusesOverAlignedBlocksButReallocStillWorks) {
  auto a = zheap::c_allocator();
  const auto alignment = Alignment::of_bytes(page);
  auto span = a.alloc<char>(100, alignment);
  ASSERT_NE(span.data(), nullptr);
  std::memset(span.data(), 'p', span.size());
  // realloc() would not keep the page alignment, so remap declines...
  EXPECT_EQ(a.remap(span, 1 << 20, alignment).data(), nullptr);
  // ...and realloc goes through alloc + copy + free, keeping it.
  auto moved = a.realloc(span, 1 << 20, alignment);
  ASSERT_NE(moved.data(), nullptr);
  EXPECT_TRUE(alignment.check(moved.data()));
  for (std::size_t i = 0; i < 100; ++i) ASSERT_EQ(moved[i], 'p');
  a.free(moved, alignment);
}

TEST(CAllocator, ImpossibleRequestsFailCleanly) {
  auto a = zheap::c_allocator();
  EXPECT_EQ(a.alloc<char>(SIZE_MAX / 2).data(), nullptr);
  EXPECT_EQ(a.alloc<char>(SIZE_MAX / 2, Alignment::of_bytes(4096)).data(), nullptr);
}
}  // namespace
