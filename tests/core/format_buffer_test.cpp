// FormatBuffer (core/src/support): the no-allocation formatter under the logging
// allocator, the validating allocator's reports and the shim's messages.
#include "support/format_buffer.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace {
using zheap::support::FormatBuffer;
using zheap::support::StackFormatBuffer;

TEST(FormatBuffer, NumbersAndPointers) {
  StackFormatBuffer<128> text;
  text.append("n=").append_decimal(0).append(' ').append_decimal(UINT64_MAX);
  text.append(' ').append_signed(-42).append(' ').append_signed(INT64_MIN);
  text.append(' ').append_hex(0).append(' ').append_hex(0xdeadbeef).append(' ').append_pointer(nullptr);
  EXPECT_EQ(text.view(), "n=0 18446744073709551615 -42 -9223372036854775808 0x0 0xdeadbeef 0x0");
  EXPECT_FALSE(text.truncated());
  EXPECT_STREQ(text.c_str(), "n=0 18446744073709551615 -42 -9223372036854775808 0x0 0xdeadbeef 0x0");
}

TEST(FormatBuffer, TruncatesAtCapacityAndKeepsRoomForTheTerminator) {
  char storage[8];
  FormatBuffer text(storage, sizeof storage);
  text.append("abc").append_decimal(12345678);
  EXPECT_EQ(text.size(), 7u);
  EXPECT_EQ(text.view(), "abc1234");
  EXPECT_TRUE(text.truncated());
  EXPECT_STREQ(text.c_str(), "abc1234");
  text.clear();
  EXPECT_FALSE(text.truncated());
  text.append('x');
  EXPECT_EQ(text.view(), "x");
}
}  // namespace
