#include <zheap/alignment.hpp>

#include <gtest/gtest.h>

namespace {
using zheap::Alignment;

TEST(Alignment, StoresLog2AndRoundTripsBytes) {
  for (unsigned log2 = 0; log2 < 40; ++log2) {
    const Alignment a = Alignment::from_log2(log2);
    EXPECT_EQ(a.log2(), log2);
    EXPECT_EQ(a.bytes(), std::size_t{1} << log2);
    EXPECT_EQ(Alignment::of_bytes(a.bytes()), a);
  }
  EXPECT_EQ(sizeof(Alignment), 1u);
}

TEST(Alignment, ForwardBackwardCheck) {
  const Alignment a = Alignment::of_bytes(64);
  EXPECT_EQ(a.forward(0), 0u);
  EXPECT_EQ(a.forward(1), 64u);
  EXPECT_EQ(a.forward(64), 64u);
  EXPECT_EQ(a.forward(65), 128u);
  EXPECT_EQ(a.backward(127), 64u);
  EXPECT_TRUE(a.check(std::uintptr_t{128}));
  EXPECT_FALSE(a.check(std::uintptr_t{129}));
}

TEST(Alignment, ValidityAndOrdering) {
  EXPECT_TRUE(Alignment::is_valid(1));
  EXPECT_TRUE(Alignment::is_valid(4096));
  EXPECT_FALSE(Alignment::is_valid(0));
  EXPECT_FALSE(Alignment::is_valid(24));
  EXPECT_LT(Alignment::of<char>(), Alignment::of<double>());
  EXPECT_EQ(Alignment::of<char>().max(Alignment::of_bytes(32)).bytes(), 32u);
  EXPECT_EQ(Alignment::max_fundamental().bytes(), alignof(std::max_align_t));
}
}  // namespace
