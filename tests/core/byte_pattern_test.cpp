// filled_with() agrees with a byte-by-byte check for every length and alignment, with a
// wrong byte at every position, and never reads outside its range; first_not() and
// last_not() find the wrong byte nearest each end.
#include "debug/byte_pattern.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace zheap::debug {
namespace {

constexpr std::uint8_t kPattern = 0xFD;
constexpr std::size_t kMaxLength = 300;  // several 64-byte steps and every tail

// Two pages, the second PROT_NONE: a range that ends at the boundary faults on any read
// past its end. The first page is filled with the pattern except for one byte just before
// every tested range, which a read before the range would see (and answer false for).
class ByteRange {
 public:
  ByteRange() {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    void* p = mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    mapping_ = static_cast<std::uint8_t*>(p);
    if (mprotect(mapping_ + page_, page_, PROT_NONE) != 0) return;
    ok_ = true;
  }
  ~ByteRange() {
    if (mapping_ != nullptr) munmap(mapping_, 2 * page_);
  }
  ByteRange(const ByteRange&) = delete;
  ByteRange& operator=(const ByteRange&) = delete;

  bool ok() const { return ok_; }
  // `length` pattern bytes that end `gap` bytes before the guard page, a wrong byte just
  // before them.
  std::uint8_t* fill(std::size_t length, std::size_t gap) {
    std::uint8_t* end = mapping_ + page_ - gap;
    std::memset(mapping_, kPattern, page_);
    std::uint8_t* begin = end - length;
    begin[-1] = 0;
    return begin;
  }

 private:
  std::size_t page_ = 0;
  std::uint8_t* mapping_ = nullptr;
  bool ok_ = false;
};

bool filled_bytewise(const std::uint8_t* begin, const std::uint8_t* end) {
  for (; begin < end; ++begin)
    if (*begin != kPattern) return false;
  return true;
}

TEST(BytePattern, AgreesWithAByteLoopForEveryLengthAlignmentAndWrongByte) {
  ByteRange range;
  ASSERT_TRUE(range.ok());
  for (std::size_t gap = 0; gap < 16; ++gap) {  // the range's end at every alignment
    for (std::size_t length = 0; length <= kMaxLength; ++length) {
      std::uint8_t* begin = range.fill(length, gap);
      std::uint8_t* end = begin + length;
      ASSERT_TRUE(filled_with(begin, end, kPattern)) << "length " << length << " gap " << gap;
      EXPECT_EQ(first_not(begin, end, kPattern), end);
      EXPECT_EQ(last_not(begin, end, kPattern), nullptr);
      for (std::size_t wrong = 0; wrong < length; ++wrong) {
        begin[wrong] = static_cast<std::uint8_t>(kPattern ^ 0x01);  // one bit, the least change
        ASSERT_EQ(filled_with(begin, end, kPattern), filled_bytewise(begin, end));
        ASSERT_FALSE(filled_with(begin, end, kPattern)) << "length " << length << " gap " << gap << " wrong " << wrong;
        ASSERT_EQ(first_not(begin, end, kPattern), begin + wrong);
        ASSERT_EQ(last_not(begin, end, kPattern), begin + wrong);
        begin[wrong] = kPattern;
      }
    }
  }
}

TEST(BytePattern, FirstAndLastNotFindTheWrongBytesNearestEachEnd) {
  std::uint8_t bytes[100];
  std::memset(bytes, kPattern, sizeof bytes);
  bytes[17] = 0;
  bytes[70] = 0;
  EXPECT_FALSE(filled_with(bytes, bytes + sizeof bytes, kPattern));
  EXPECT_EQ(first_not(bytes, bytes + sizeof bytes, kPattern), bytes + 17);
  EXPECT_EQ(last_not(bytes, bytes + sizeof bytes, kPattern), bytes + 70);
  EXPECT_TRUE(filled_with(bytes + 18, bytes + 70, kPattern));
  EXPECT_TRUE(filled_with(bytes + 18, bytes + 18, kPattern));  // empty
}

}  // namespace
}  // namespace zheap::debug
