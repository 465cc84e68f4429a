// The OS layer's answers that other code relies on for correctness.
#include "os/os.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace {

// The shim tells glibc's brk-heap pointers from its own by this range, also in a process
// where glibc used brk long before anyone asked: the start must be the kernel's start_brk,
// not the break at the time of the call.
TEST(Os, InitialProgramBreakIsWhereTheBrkHeapStartsNotWhereItIsNow) {
  // Move the break as glibc's main arena does (sbrk, not malloc: under a sanitizer or a
  // preloaded allocator malloc may never touch brk). The 4 KiB are left to the process.
  void* grown = ::sbrk(4096);
  ASSERT_NE(grown, reinterpret_cast<void*>(-1));
  const auto start = zheap::os::initial_program_break();
  const auto now = reinterpret_cast<std::uintptr_t>(::sbrk(0));
  const auto block = reinterpret_cast<std::uintptr_t>(grown);
  EXPECT_LT(start, now);
  EXPECT_GE(block, start);
  EXPECT_LT(block, now);
}

TEST(Os, GetenvReadsTheEnvironmentDirectly) {
  ::setenv("ZHEAP_OS_TEST_VARIABLE", "some value", 1);
  ASSERT_NE(zheap::os::getenv("ZHEAP_OS_TEST_VARIABLE"), nullptr);
  EXPECT_STREQ(zheap::os::getenv("ZHEAP_OS_TEST_VARIABLE"), "some value");
  EXPECT_EQ(zheap::os::getenv("ZHEAP_OS_TEST_VARIABL"), nullptr);  // a prefix is not a match
  EXPECT_EQ(zheap::os::getenv("ZHEAP_OS_TEST_VARIABLE_NOT_SET"), nullptr);
}

TEST(Os, MapAlignedHonoursLargeAlignments) {
  const std::size_t alignment = std::size_t{1} << 21;
  void* p = zheap::os::map_aligned(3 * zheap::os::page_size(), alignment);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0u);
  std::memset(p, 1, 3 * zheap::os::page_size());
  zheap::os::unmap(p, 3 * zheap::os::page_size());
}

}  // namespace
