// support::BufferWriter: formatting into a fixed buffer, never past it.
#include "support/format.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace {
using zheap::support::BufferWriter;

TEST(BufferWriter, FormatsTextNumbersAndPointers) {
  char buffer[128];
  BufferWriter out(buffer);
  out.text("n=").unsigned_decimal(0).character(' ').unsigned_decimal(18446744073709551615u);
  out.character(' ').signed_decimal(-42).character(' ').signed_decimal(INT64_MIN);
  out.character(' ').hex(0).character(' ').hex(0xdeadbeef).character(' ').hex(UINT64_MAX);
  EXPECT_EQ(out.view(), "n=0 18446744073709551615 -42 -9223372036854775808 0x0 0xdeadbeef 0xffffffffffffffff");
  EXPECT_STREQ(out.c_str(), out.view().data());
  EXPECT_FALSE(out.truncated());
}

TEST(BufferWriter, CutsOffWhatDoesNotFitAndSaysSo) {
  char buffer[8];
  BufferWriter out(buffer);
  out.text("12345").unsigned_decimal(6789);
  EXPECT_EQ(out.view(), "1234567");  // 7 characters + NUL
  EXPECT_EQ(buffer[7], '\0');
  EXPECT_TRUE(out.truncated());
}

TEST(BufferWriter, IsUsableAtCompileTime) {
  constexpr auto formatted = [] {
    char buffer[16] = {};
    BufferWriter out(buffer);
    out.text("x").unsigned_decimal(12).hex(255);
    return out.size();
  }();
  static_assert(formatted == 7);  // "x120xff"
}

}  // namespace
