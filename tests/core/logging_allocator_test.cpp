// LoggingAllocator: one line per call, with what was asked and what came back.
#include <zheap/logging_allocator.hpp>
#include <zheap/page_allocator.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "leak_check.hpp"

namespace {
using zheap::Alignment;
using zheap::LoggingAllocator;
using zheap::LogSink;

struct CollectedLines {
  std::vector<std::string> lines;
  LogSink sink() {
    return LogSink{[](void* ctx, const char* line, std::size_t len) {
                     static_cast<CollectedLines*>(ctx)->lines.emplace_back(line, len);
                   },
                   this};
  }
};

std::string hex(const void* p) {
  char text[32];
  std::snprintf(text, sizeof text, "%#lx", static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(p)));
  return text;
}

class LoggingAllocatorTest : public LeakCheckedTest {};

TEST_F(LoggingAllocatorTest, EachCallIsOneLineWithItsArgumentsAndResult) {
  CollectedLines log;
  LoggingAllocator logging(zheap::page_allocator(), log.sink());
  auto a = logging.allocator();
  auto block = a.alloc<char>(100, Alignment::of_bytes(64));
  ASSERT_NE(block.data(), nullptr);
  ASSERT_TRUE(a.resize(block, 200, Alignment::of_bytes(64)));
  block = {block.data(), 200};
  a.free(block, Alignment::of_bytes(64));

  ASSERT_EQ(log.lines.size(), 3u);
  const std::string p = hex(block.data());
  EXPECT_EQ(log.lines[0], "alloc len=100 align=64 -> " + p + "\n");
  EXPECT_EQ(log.lines[1], "resize " + p + " len=100 align=64 new_len=200 -> ok\n");
  EXPECT_EQ(log.lines[2], "free " + p + " len=200 align=64\n");
}

TEST_F(LoggingAllocatorTest, FailuresAndRefusalsAreLoggedToo) {
  CollectedLines log;
  LoggingAllocator logging(gpa(), log.sink());
  auto a = logging.allocator();
  EXPECT_EQ(a.alloc<char>(std::size_t{1} << 62).data(), nullptr);
  auto block = a.alloc<char>(10);
  ASSERT_NE(block.data(), nullptr);
  // page_allocator() (under the TestingAllocator) cannot grow a block over a neighbour's
  // mapping without moving; the remap line shows the new address, whatever it is.
  auto moved = a.remap(block, 1 << 20);
  ASSERT_GE(log.lines.size(), 3u);
  EXPECT_EQ(log.lines[0], "alloc len=4611686018427387904 align=1 -> null\n");
  const std::string remap_prefix = "remap " + hex(block.data()) + " len=10 align=1 new_len=1048576 -> ";
  EXPECT_EQ(log.lines[2].substr(0, remap_prefix.size()), remap_prefix);
  if (moved.data() == nullptr) {
    EXPECT_EQ(log.lines[2], remap_prefix + "null\n");
    a.free(block);
  } else {
    EXPECT_EQ(log.lines[2], remap_prefix + hex(moved.data()) + "\n");
    a.free(moved);
  }
}

// One static block, never resized: to see a refusal logged.
char storage[16];
void* storage_alloc(void*, std::size_t, Alignment, std::uintptr_t) noexcept { return storage; }
constexpr zheap::Allocator::VTable refusing_vtable{storage_alloc, zheap::Allocator::no_resize,
                                                   zheap::Allocator::no_remap, zheap::Allocator::no_free};

TEST_F(LoggingAllocatorTest, ARefusedResizeSaysSo) {
  CollectedLines log;
  LoggingAllocator logging(zheap::Allocator(nullptr, &refusing_vtable), log.sink());
  void* p = logging.allocator().raw_alloc(16, Alignment::of_bytes(1), 0);
  EXPECT_EQ(p, storage);
  EXPECT_FALSE(logging.allocator().raw_resize(p, 16, Alignment::of_bytes(1), 32, 0));
  ASSERT_EQ(log.lines.size(), 2u);
  EXPECT_EQ(log.lines[1], "resize " + hex(storage) + " len=16 align=1 new_len=32 -> refused\n");
}

TEST_F(LoggingAllocatorTest, TheDefaultSinkIsStandardError) {
  LoggingAllocator logging(gpa());  // LogSink::stderr_sink()
  ::testing::internal::CaptureStderr();  // redirects file descriptor 2, which the sink writes
  auto block = logging.allocator().alloc<char>(5);
  logging.allocator().free(block);
  const std::string output = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(output, "alloc len=5 align=1 -> " + hex(block.data()) + "\nfree " + hex(block.data()) +
                        " len=5 align=1\n");
}

TEST_F(LoggingAllocatorTest, TheDiscardSinkDropsEverything) {
  LoggingAllocator logging(gpa(), LogSink::discard());
  ::testing::internal::CaptureStderr();
  logging.allocator().free(logging.allocator().alloc<char>(5));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}
}  // namespace
