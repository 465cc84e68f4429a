// What is special to jemalloc_allocator(): alignment flags, xallocx resize that keeps the
// sized free exact, rallocx remap.
#include <zheap/jemalloc_allocator.hpp>

#include <gtest/gtest.h>

#if ZHEAP_HAVE_JEMALLOC

#include <cstring>

#include <jemalloc/jemalloc.h>
#include <unistd.h>

namespace {
using zheap::Alignment;

const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));

// The size class jemalloc really holds for a block: what sdallocx must be told.
std::size_t real_size(const void* p, Alignment alignment) { return sallocx(p, MALLOCX_LG_ALIGN(alignment.log2())); }
std::size_t class_of(std::size_t len, Alignment alignment) { return nallocx(len, MALLOCX_LG_ALIGN(alignment.log2())); }

TEST(JemallocAllocator, HonoursAlignmentsFromOneByteToAbovePageSize) {
  auto a = zheap::jemalloc_allocator();
  for (std::size_t align = 1; align <= 256 * page; align <<= 1) {
    for (std::size_t len : {std::size_t{1}, std::size_t{24}, std::size_t{1000}, 3 * page}) {
      const auto alignment = Alignment::of_bytes(align);
      auto span = a.alloc<unsigned char>(len, alignment);
      ASSERT_NE(span.data(), nullptr) << align << " " << len;
      EXPECT_TRUE(alignment.check(span.data())) << align << " " << len;
      std::memset(span.data(), 0x5a, len);
      EXPECT_EQ(real_size(span.data(), alignment), class_of(len, alignment));
      a.free(span, alignment);
    }
  }
}

TEST(JemallocAllocator, ZeroLengthRequestsNeverReachJemalloc) {
  auto span = zheap::jemalloc_allocator().alloc<int>(0);
  EXPECT_NE(span.data(), nullptr);
  zheap::jemalloc_allocator().free(span);
}

TEST(JemallocAllocator, ResizeWithinTheSizeClassSucceeds) {
  auto a = zheap::jemalloc_allocator();
  const auto alignment = Alignment::of<char>();
  auto span = a.alloc<char>(100);
  ASSERT_NE(span.data(), nullptr);
  const std::size_t size_class = real_size(span.data(), alignment);
  ASSERT_GE(size_class, 100u);
  EXPECT_TRUE(a.resize(span, size_class));
  span = {span.data(), size_class};
  a.free(span);
}

TEST(JemallocAllocator, ASmallBlockCannotLeaveItsSizeClassInPlace) {
  auto a = zheap::jemalloc_allocator();
  auto span = a.alloc<char>(100);
  const std::size_t size_class = real_size(span.data(), Alignment::of<char>());
  // Shrinking to a smaller class would leave sdallocx(10) naming the wrong class, so it is
  // refused (nothing changed) and the block keeps its size.
  EXPECT_FALSE(a.resize(span, 10));
  EXPECT_EQ(real_size(span.data(), Alignment::of<char>()), size_class);
  EXPECT_FALSE(a.resize(span, size_class + 1));
  // realloc then moves it with rallocx.
  std::memset(span.data(), 's', span.size());
  auto shrunk = a.realloc(span, 10);
  ASSERT_NE(shrunk.data(), nullptr);
  for (char c : shrunk) ASSERT_EQ(c, 's');
  EXPECT_EQ(real_size(shrunk.data(), Alignment::of<char>()), class_of(10, Alignment::of<char>()));
  a.free(shrunk);
}

TEST(JemallocAllocator, ResizeOfLargeBlocksAgreesWithTheRealSize) {
  // Whether a large block grows or shrinks in place depends on its neighbours; whatever
  // the answer, the block's real size class must be the one the caller will free with.
  auto a = zheap::jemalloc_allocator();
  const auto alignment = Alignment::of_bytes(page);
  auto span = a.alloc<char>(64 * page, alignment);
  ASSERT_NE(span.data(), nullptr);
  for (std::size_t new_len : {128 * page, 32 * page, 33 * page + 5, 8 * page}) {
    if (a.resize(span, new_len, alignment)) span = {span.data(), new_len};
    EXPECT_EQ(real_size(span.data(), alignment), class_of(span.size(), alignment)) << new_len;
  }
  a.free(span, alignment);
}

TEST(JemallocAllocator, RemapMovesWithRallocxAndKeepsContentsAndAlignment) {
  auto a = zheap::jemalloc_allocator();
  for (std::size_t align : {std::size_t{8}, std::size_t{64}, 2 * page}) {
    const auto alignment = Alignment::of_bytes(align);
    auto span = a.alloc<std::uint32_t>(1000, alignment);
    ASSERT_NE(span.data(), nullptr);
    for (std::uint32_t i = 0; i < 1000; ++i) span[i] = i;
    auto grown = a.remap(span, 1 << 20, alignment);
    ASSERT_NE(grown.data(), nullptr) << align;
    EXPECT_TRUE(alignment.check(grown.data()));
    for (std::uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(grown[i], i);
    EXPECT_EQ(real_size(grown.data(), alignment), class_of(grown.size_bytes(), alignment));
    a.free(grown, alignment);
  }
}

TEST(JemallocAllocator, ImpossibleRequestsFailCleanly) {
  auto a = zheap::jemalloc_allocator();
  EXPECT_EQ(a.alloc<char>(SIZE_MAX / 2).data(), nullptr);
  EXPECT_EQ(a.alloc<char>(std::size_t{1} << 62).data(), nullptr);
}
}  // namespace

#else

TEST(JemallocAllocator, NotBuilt) { GTEST_SKIP() << "built without jemalloc (ZHEAP_HAVE_JEMALLOC is 0)"; }

#endif
