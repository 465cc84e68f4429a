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

TEST(Os, ReadIfReadableCopiesMappedBytesAndRefusesUnreadableOnes) {
  const std::size_t page = zheap::os::page_size();
  auto* p = static_cast<unsigned char*>(zheap::os::map(2 * page));
  ASSERT_NE(p, nullptr);
  p[page - 1] = 7;
  p[page] = 9;
  unsigned char copy[2] = {};
  EXPECT_TRUE(zheap::os::read_if_readable(copy, p + page - 1, 2));
  EXPECT_EQ(copy[0], 7);
  EXPECT_EQ(copy[1], 9);
  ASSERT_TRUE(zheap::os::protect_none(p + page, page));
  EXPECT_FALSE(zheap::os::read_if_readable(copy, p + page - 1, 2));  // straddles into PROT_NONE
  zheap::os::unmap(p + page, page);
  EXPECT_FALSE(zheap::os::read_if_readable(copy, p + page, 1));  // not mapped at all
  EXPECT_TRUE(zheap::os::read_if_readable(copy, p, 1));
  zheap::os::unmap(p, page);
}

TEST(Os, ReserveLargestHalvesUntilTheSystemGrants) {
  std::size_t len = 0;
  void* p = zheap::os::reserve_largest(std::size_t{1} << 30, std::size_t{1} << 20, &len);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(len, std::size_t{1} << 20);
  EXPECT_LE(len, std::size_t{1} << 30);
  zheap::os::unmap(p, len);
  // Nothing can be reserved when the largest size asked is below the smallest accepted.
  EXPECT_EQ(zheap::os::reserve_largest(std::size_t{1} << 20, std::size_t{1} << 21, &len), nullptr);
}

}  // namespace

namespace {
int writable_global = 1;
}

TEST(Os, ReadWholeFileReadsAProcFileWhoseSizeIsUnknown) {
  zheap::os::FileContents maps;
  ASSERT_TRUE(zheap::os::read_whole_file("/proc/self/maps", &maps));
  ASSERT_GT(maps.size, 0u);
  EXPECT_LE(maps.size, maps.mapped);
  EXPECT_EQ(maps.data[maps.size - 1], '\n');
  zheap::os::unmap(maps.data, maps.mapped);
  zheap::os::FileContents missing;
  EXPECT_FALSE(zheap::os::read_whole_file("/no/such/file", &missing));
  EXPECT_EQ(missing.data, nullptr);
}

TEST(Os, NextMemoryMappingParsesProcSelfMapsLines) {
  const char text[] =
      "7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0                          [heap]\n"
      "7f1c2b000000-7f1c2b001000 r--s 00001000 fe:00 1234   /dev/shm/some file\n"
      "7f1c2c000000-7f1c2c001000 ---p 00000000 00:00 0\n";
  const char* cursor = text;
  const char* end = text + sizeof text - 1;
  zheap::os::MemoryMapping m;
  ASSERT_TRUE(zheap::os::next_memory_mapping(&cursor, end, &m));
  EXPECT_EQ(m.begin, 0x7f1c2a000000u);
  EXPECT_EQ(m.end, 0x7f1c2a021000u);
  EXPECT_TRUE(m.readable && m.writable && !m.shared);
  EXPECT_TRUE(m.named("[heap]"));
  ASSERT_TRUE(zheap::os::next_memory_mapping(&cursor, end, &m));
  EXPECT_TRUE(m.readable && !m.writable && m.shared);
  EXPECT_TRUE(m.named("/dev/shm/some file"));
  EXPECT_TRUE(m.name_starts_with("/dev/"));
  ASSERT_TRUE(zheap::os::next_memory_mapping(&cursor, end, &m));
  EXPECT_FALSE(m.readable || m.writable);
  EXPECT_EQ(m.name_length, 0u);
  EXPECT_FALSE(zheap::os::next_memory_mapping(&cursor, end, &m));

  // And the real file: this global is in a private read-write mapping, the stack is named.
  zheap::os::FileContents maps;
  ASSERT_TRUE(zheap::os::read_whole_file("/proc/self/maps", &maps));
  const auto global = reinterpret_cast<std::uintptr_t>(&writable_global);
  bool found_global = false, found_stack = false;
  cursor = maps.data;
  while (zheap::os::next_memory_mapping(&cursor, maps.data + maps.size, &m)) {
    if (global >= m.begin && global < m.end) found_global = m.readable && m.writable && !m.shared;
    found_stack = found_stack || m.named("[stack]");
  }
  zheap::os::unmap(maps.data, maps.mapped);
  EXPECT_TRUE(found_global);
  EXPECT_TRUE(found_stack);
}

TEST(Os, PageMapTellsTouchedPagesFromUntouchedOnes) {
  const std::size_t page = zheap::os::page_size();
  auto* memory = static_cast<volatile char*>(zheap::os::map(4 * page));
  ASSERT_NE(memory, nullptr);
  memory[1 * page] = 1;
  memory[3 * page + 7] = 1;
  zheap::os::PageMap page_map;
  EXPECT_EQ(page_map.pages_with_data(reinterpret_cast<std::uintptr_t>(memory), 4), 0b1010u);
  zheap::os::unmap(const_cast<char*>(memory), 4 * page);
}
