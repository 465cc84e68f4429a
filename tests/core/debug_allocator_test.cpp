// DebugAllocator: one test per detection, checking the kind and that each reported stack
// names the function of this file that made the call (symbolized); leak_check's counts and
// groups; the quarantine's bound; and that correct use reports nothing.
#include <zheap/debug_allocator.hpp>
#include <zheap/fixed_buffer_allocator.hpp>
#include <zheap/page_allocator.hpp>
#include <zheap/testing_allocator.hpp>

#include "debug/thread_slot.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace zheap {
namespace {

// Keeps the call before it from being a tail call, so the calling function stays on the
// stack and in the recorded stacks.
#define KEEP_FRAME() __asm__ volatile("" ::: "memory")

// Keeps a loop from being unrolled, so the calls in its body stay one call site.
#if defined(__clang__)
#define NO_UNROLL _Pragma("nounroll")
#else
#define NO_UNROLL _Pragma("GCC unroll 1")
#endif

struct Recorded {
  DebugError error;
  std::vector<std::string> allocation;  // symbolized function names, innermost first
  std::vector<std::string> free;
  std::vector<std::string> current;
};

std::vector<std::string> functions_of(std::uint32_t stack) {
  std::vector<std::string> names;
  for (std::uintptr_t frame : debug_stack_frames(stack)) names.emplace_back(symbolize_frame(frame).function);
  return names;
}

bool mentions(const std::vector<std::string>& functions, const std::string& name) {
  return std::any_of(functions.begin(), functions.end(),
                     [&](const std::string& f) { return f.find(name) != std::string::npos; });
}

std::string joined(const std::vector<std::string>& functions) {
  std::string all;
  for (const std::string& f : functions) all += "  " + f + "\n";
  return all;
}

class Recorder {
 public:
  static void handle(void* context, const DebugError& error) {
    static_cast<Recorder*>(context)->errors.push_back(
        {error, functions_of(error.allocation_stack), functions_of(error.free_stack),
         functions_of(error.current_stack)});
  }
  DebugOptions options(DebugOptions base = {}) {
    base.on_error = OnError::report;
    base.error_handler = &Recorder::handle;
    base.error_context = this;
    return base;
  }
  std::vector<Recorded> errors;
};

// ---- the functions whose names the stacks must show

__attribute__((noinline)) void* allocate_here(DebugAllocator& debug, std::size_t size,
                                              AllocationFamily family = AllocationFamily::malloc,
                                              std::size_t alignment = 16) {
  void* p = debug.allocate(size, alignment, family);
  KEEP_FRAME();
  return p;
}
__attribute__((noinline)) void first_free_here(DebugAllocator& debug, void* p,
                                               AllocationFamily family = AllocationFamily::malloc) {
  debug.release(p, family);
  KEEP_FRAME();
}
__attribute__((noinline)) void second_free_here(DebugAllocator& debug, void* p,
                                                AllocationFamily family = AllocationFamily::malloc,
                                                std::size_t size = 0, std::size_t alignment = 0) {
  debug.release(p, family, size, alignment);
  KEEP_FRAME();
}
__attribute__((noinline)) void* realloc_here(DebugAllocator& debug, void* p, std::size_t size) {
  void* q = debug.reallocate(p, size);
  KEEP_FRAME();
  return q;
}

class DebugAllocatorTest : public ::testing::Test {
 protected:
  Recorder recorder;
};

TEST_F(DebugAllocatorTest, DoubleFreeShowsAllocationFirstFreeAndSecondFree) {
  DebugAllocator debug(recorder.options());
  void* p = allocate_here(debug, 24);
  first_free_here(debug, p);
  ASSERT_TRUE(recorder.errors.empty());
  second_free_here(debug, p);
  ASSERT_EQ(recorder.errors.size(), 1u);
  const Recorded& r = recorder.errors[0];
  EXPECT_EQ(r.error.kind, DebugErrorKind::double_free);
  EXPECT_EQ(r.error.block, p);
  EXPECT_EQ(r.error.block_size, 24u);
  EXPECT_TRUE(mentions(r.allocation, "allocate_here")) << joined(r.allocation);
  EXPECT_TRUE(mentions(r.free, "first_free_here")) << joined(r.free);
  EXPECT_TRUE(mentions(r.current, "second_free_here")) << joined(r.current);
  // The stacks reach the test body too: full depth, not just the immediate caller.
  EXPECT_TRUE(mentions(r.current, "DoubleFreeShowsAllocationFirstFreeAndSecondFree")) << joined(r.current);
}

TEST_F(DebugAllocatorTest, DoubleDeleteAndDoubleDeleteArray) {
  DebugAllocator debug(recorder.options());
  for (AllocationFamily family : {AllocationFamily::new_object, AllocationFamily::new_array}) {
    void* p = allocate_here(debug, 40, family);
    first_free_here(debug, p, family);
    second_free_here(debug, p, family);
  }
  ASSERT_EQ(recorder.errors.size(), 2u);
  for (const Recorded& r : recorder.errors) {
    EXPECT_EQ(r.error.kind, DebugErrorKind::double_free);
    EXPECT_TRUE(mentions(r.free, "first_free_here"));
    EXPECT_TRUE(mentions(r.current, "second_free_here"));
  }
  EXPECT_EQ(recorder.errors[1].error.released_with, AllocationFamily::new_array);
}

TEST_F(DebugAllocatorTest, WriteAfterFreeIsFoundWhenTheBlockLeavesQuarantine) {
  DebugOptions options;
  options.quarantine_bytes = 256;
  DebugAllocator debug(recorder.options(options));
  auto* p = static_cast<char*>(allocate_here(debug, 32));
  first_free_here(debug, p);
  p[5] = 'x';  // the bug
  ASSERT_TRUE(recorder.errors.empty());
  for (int i = 0; i < 16; ++i) debug.release(allocate_here(debug, 64), AllocationFamily::malloc);
  ASSERT_EQ(recorder.errors.size(), 1u);
  const Recorded& r = recorder.errors[0];
  EXPECT_EQ(r.error.kind, DebugErrorKind::write_after_free);
  EXPECT_EQ(r.error.offset, 5);
  EXPECT_EQ(r.error.address, p + 5);
  EXPECT_TRUE(mentions(r.allocation, "allocate_here")) << joined(r.allocation);
  EXPECT_TRUE(mentions(r.free, "first_free_here")) << joined(r.free);
}

TEST_F(DebugAllocatorTest, WriteAfterFreeIsFoundByLeakCheckWhileStillInQuarantine) {
  DebugAllocator debug(recorder.options());
  auto* p = static_cast<char*>(allocate_here(debug, 100));
  first_free_here(debug, p);
  p[99] = 0;
  const LeakReport report = debug.leak_check();
  EXPECT_EQ(report.leaked_blocks(), 0u);
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::write_after_free);
  EXPECT_EQ(recorder.errors[0].error.offset, 99);
}

TEST_F(DebugAllocatorTest, OverflowIsFoundAtFree) {
  DebugAllocator debug(recorder.options());
  auto* p = static_cast<char*>(allocate_here(debug, 10));
  p[10] = 1;  // one past the end
  first_free_here(debug, p);
  ASSERT_EQ(recorder.errors.size(), 1u);
  const Recorded& r = recorder.errors[0];
  EXPECT_EQ(r.error.kind, DebugErrorKind::buffer_overflow);
  EXPECT_EQ(r.error.offset, 10);
  EXPECT_TRUE(mentions(r.allocation, "allocate_here"));
  EXPECT_TRUE(mentions(r.current, "first_free_here")) << joined(r.current);
}

TEST_F(DebugAllocatorTest, UnderflowIsFoundAtFreeAndTheRecordInFrontSurvivesIt) {
  DebugAllocator debug(recorder.options());
  auto* p = static_cast<char*>(allocate_here(debug, 48));
  std::memset(p - 16, 0, 16);  // the whole left redzone; the record lies in front of it
  first_free_here(debug, p);
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::buffer_underflow);
  EXPECT_EQ(recorder.errors[0].error.offset, -1);
  EXPECT_EQ(recorder.errors[0].error.block_size, 48u);
  EXPECT_TRUE(mentions(recorder.errors[0].allocation, "allocate_here")) << joined(recorder.errors[0].allocation);
  EXPECT_EQ(debug.live_blocks(), 0u);
}

// An underflow that runs on past the redzone into the block's record: the record can no
// longer be trusted, so the block is reported (as an underflow, where the free or the
// leak check meets it) and forgotten, never released with a size or base it no longer
// knows; the allocator goes on working.
TEST_F(DebugAllocatorTest, AnUnderflowIntoTheRecordIsReportedAndTheBlockForgotten) {
  for (std::size_t redzone : {std::size_t{16}, std::size_t{0}}) {
    recorder.errors.clear();
    // The forgotten blocks stay with their backing: a buffer here, not malloc (where
    // LeakSanitizer, in the sanitizer stage, would rightly call them leaks).
    alignas(64) static std::byte buffer[64 * 1024];
    FixedBufferAllocator backing(buffer);
    DebugOptions options;
    options.backing = backing.allocator();
    options.redzone_size = redzone;
    DebugAllocator debug(recorder.options(options));
    auto* freed = static_cast<char*>(allocate_here(debug, 40));
    auto* kept = static_cast<char*>(allocate_here(debug, 40));
    std::memset(freed - redzone - 8, 0, redzone + 8);
    std::memset(kept - redzone - 8, 0, redzone + 8);
    first_free_here(debug, freed);
    ASSERT_EQ(recorder.errors.size(), 1u) << redzone;
    EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::buffer_underflow);
    EXPECT_EQ(recorder.errors[0].error.offset, -1);
    EXPECT_EQ(recorder.errors[0].error.block, freed);
    EXPECT_TRUE(mentions(recorder.errors[0].current, "first_free_here")) << joined(recorder.errors[0].current);
    EXPECT_EQ(debug.live_blocks(), 1u);
    EXPECT_FALSE(debug.owns(freed));
    // The other one, at the leak check.
    const LeakReport report = debug.leak_check();
    ASSERT_EQ(recorder.errors.size(), 2u);
    EXPECT_EQ(recorder.errors[1].error.kind, DebugErrorKind::buffer_underflow);
    EXPECT_EQ(recorder.errors[1].error.block, kept);
    EXPECT_EQ(report.leaked_blocks(), 0u);
    EXPECT_EQ(debug.live_blocks(), 0u);
    void* fresh = allocate_here(debug, 40);
    ASSERT_NE(fresh, nullptr);
    debug.release(fresh, AllocationFamily::malloc);
    EXPECT_EQ(recorder.errors.size(), 2u);
  }
}

TEST_F(DebugAllocatorTest, OverflowIsFoundAtReallocAndAtLeakCheck) {
  DebugAllocator debug(recorder.options());
  auto* p = static_cast<char*>(allocate_here(debug, 8));
  p[8] = 1;
  void* q = realloc_here(debug, p, 16);
  ASSERT_NE(q, nullptr);
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::buffer_overflow);
  EXPECT_TRUE(mentions(recorder.errors[0].current, "realloc_here")) << joined(recorder.errors[0].current);

  static_cast<char*>(q)[17] = 1;
  const LeakReport report = debug.leak_check();
  ASSERT_EQ(recorder.errors.size(), 2u);
  EXPECT_EQ(recorder.errors[1].error.kind, DebugErrorKind::buffer_overflow);
  EXPECT_EQ(recorder.errors[1].error.offset, 17);
  EXPECT_EQ(report.leaked_blocks(), 1u);
  debug.release(q, AllocationFamily::malloc);
}

TEST_F(DebugAllocatorTest, MismatchedFamiliesAreReported) {
  struct Case {
    AllocationFamily allocated, released;
  };
  const Case cases[] = {
      {AllocationFamily::malloc, AllocationFamily::new_object},       // malloc / delete
      {AllocationFamily::new_object, AllocationFamily::malloc},       // new / free
      {AllocationFamily::new_array, AllocationFamily::new_object},    // new[] / delete
      {AllocationFamily::new_object, AllocationFamily::new_array},    // new / delete[]
      {AllocationFamily::new_object_aligned, AllocationFamily::new_object},  // aligned new / plain delete
  };
  DebugAllocator debug(recorder.options());
  for (const Case& c : cases) second_free_here(debug, allocate_here(debug, 64, c.allocated, 64), c.released);
  ASSERT_EQ(recorder.errors.size(), std::size(cases));
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    const Recorded& r = recorder.errors[i];
    EXPECT_EQ(r.error.kind, DebugErrorKind::mismatched_free) << i;
    EXPECT_EQ(r.error.allocated_with, cases[i].allocated) << i;
    EXPECT_EQ(r.error.released_with, cases[i].released) << i;
    EXPECT_TRUE(mentions(r.current, "second_free_here")) << joined(r.current);
    EXPECT_TRUE(mentions(r.allocation, "allocate_here")) << joined(r.allocation);
  }
  // A mismatched free still frees: nothing is left over.
  EXPECT_EQ(debug.live_blocks(), 0u);
}

TEST_F(DebugAllocatorTest, WrongSizedDeleteIsReportedButNotFatalByDefault) {
  EXPECT_EQ(DebugOptions{}.on_wrong_size, OnError::report);
  EXPECT_EQ(DebugOptions{}.on_error, OnError::abort);
  DebugOptions options = recorder.options();
  options.on_error = OnError::abort;  // only the wrong size happens here: it must not abort
  options.on_wrong_size = OnError::report;
  DebugAllocator debug(options);
  void* p = allocate_here(debug, 24, AllocationFamily::new_object);
  second_free_here(debug, p, AllocationFamily::new_object, 32);
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::wrong_size_free);
  EXPECT_EQ(recorder.errors[0].error.given_size, 32u);
  EXPECT_EQ(recorder.errors[0].error.block_size, 24u);
  EXPECT_EQ(debug.live_blocks(), 0u);
}

TEST_F(DebugAllocatorTest, AlignedDeleteWithTheWrongAlignment) {
  DebugAllocator debug(recorder.options());
  void* p = allocate_here(debug, 24, AllocationFamily::new_object_aligned, 64);
  second_free_here(debug, p, AllocationFamily::new_object_aligned, 0, 32);
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::wrong_alignment_free);
  EXPECT_EQ(recorder.errors[0].error.given_alignment, 32u);
}

TEST_F(DebugAllocatorTest, FreeOfAPointerNeverReturned) {
  DebugAllocator debug(recorder.options());
  int on_stack = 0;
  static int global = 0;
  second_free_here(debug, &on_stack);
  second_free_here(debug, &global);
  ASSERT_EQ(recorder.errors.size(), 2u);
  for (const Recorded& r : recorder.errors) {
    EXPECT_EQ(r.error.kind, DebugErrorKind::invalid_free);
    EXPECT_EQ(r.error.block, nullptr);
    EXPECT_TRUE(mentions(r.current, "second_free_here")) << joined(r.current);
  }
  EXPECT_EQ(recorder.errors[0].error.address, &on_stack);
}

// The shim's free: a pointer the allocator never returned comes back unreported (its owner
// may be glibc); its own blocks, live or freed, are handled as release() handles them.
TEST_F(DebugAllocatorTest, ReleaseIfKnownLeavesForeignPointersUnreported) {
  DebugAllocator debug(recorder.options());
  int on_stack = 0;
  EXPECT_FALSE(debug.release_if_known(&on_stack, AllocationFamily::malloc));
  EXPECT_FALSE(debug.release_if_known(nullptr, AllocationFamily::malloc));
  EXPECT_TRUE(recorder.errors.empty());
  void* p = allocate_here(debug, 40);
  EXPECT_TRUE(debug.release_if_known(p, AllocationFamily::malloc));
  EXPECT_FALSE(debug.owns(p));
  EXPECT_TRUE(recorder.errors.empty());
  EXPECT_TRUE(debug.release_if_known(p, AllocationFamily::malloc));  // freed again: reported
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::double_free);
}

TEST_F(DebugAllocatorTest, FreeOfAnInteriorPointerNamesTheBlock) {
  DebugAllocator debug(recorder.options());
  auto* p = static_cast<char*>(allocate_here(debug, 100));
  second_free_here(debug, p + 40);
  ASSERT_EQ(recorder.errors.size(), 1u);
  const Recorded& r = recorder.errors[0];
  EXPECT_EQ(r.error.kind, DebugErrorKind::interior_free);
  EXPECT_EQ(r.error.block, p);
  EXPECT_EQ(r.error.offset, 40);
  EXPECT_TRUE(mentions(r.allocation, "allocate_here"));
  EXPECT_TRUE(debug.owns(p));  // the bad free did not touch the block
  first_free_here(debug, p);
  EXPECT_EQ(recorder.errors.size(), 1u);
}

TEST_F(DebugAllocatorTest, ReallocOfAFreedBlock) {
  DebugAllocator debug(recorder.options());
  void* p = allocate_here(debug, 16);
  first_free_here(debug, p);
  EXPECT_EQ(realloc_here(debug, p, 32), nullptr);
  ASSERT_EQ(recorder.errors.size(), 1u);
  const Recorded& r = recorder.errors[0];
  EXPECT_EQ(r.error.kind, DebugErrorKind::realloc_of_freed);
  EXPECT_TRUE(mentions(r.free, "first_free_here"));
  EXPECT_TRUE(mentions(r.current, "realloc_here")) << joined(r.current);
}

TEST_F(DebugAllocatorTest, ReallocMovesAndKeepsContents) {
  DebugAllocator debug(recorder.options());
  auto* p = static_cast<char*>(debug.reallocate(nullptr, 5));
  std::memcpy(p, "hello", 5);
  auto* q = static_cast<char*>(debug.reallocate(p, 1000));
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q, p);
  EXPECT_EQ(std::memcmp(q, "hello", 5), 0);
  EXPECT_FALSE(debug.owns(p));
  EXPECT_EQ(debug.usable_size(q), 1000u);
  debug.release(q, AllocationFamily::malloc);
  EXPECT_TRUE(recorder.errors.empty());
}

TEST_F(DebugAllocatorTest, ReallocIsTheNewBlocksAllocationAndTheOldOnesFree) {
  // realloc captures its stack once for both blocks: the moved block's allocation stack
  // and the old block's free stack are both the realloc call's.
  DebugAllocator debug(recorder.options());
  void* p = allocate_here(debug, 24);
  void* q = realloc_here(debug, p, 48);
  ASSERT_NE(q, nullptr);
  ASSERT_NE(q, p);
  second_free_here(debug, p);  // p was freed by realloc
  ASSERT_EQ(recorder.errors.size(), 1u);
  const Recorded& r = recorder.errors[0];
  EXPECT_EQ(r.error.kind, DebugErrorKind::double_free);
  EXPECT_TRUE(mentions(r.allocation, "allocate_here")) << joined(r.allocation);
  EXPECT_TRUE(mentions(r.free, "realloc_here")) << joined(r.free);
  EXPECT_TRUE(mentions(r.current, "second_free_here")) << joined(r.current);

  const LeakReport report = debug.leak_check();  // q is still live: its stack is realloc's
  ASSERT_EQ(report.groups().size(), 1u);
  EXPECT_EQ(report.groups()[0].bytes, 48u);
  EXPECT_TRUE(mentions(functions_of(report.groups()[0].stack), "realloc_here"))
      << joined(functions_of(report.groups()[0].stack));
  debug.release(q, AllocationFamily::malloc);
}

__attribute__((noinline)) void* leak_from_site_a(DebugAllocator& debug, std::size_t size) {
  void* p = debug.allocate(size, 8, AllocationFamily::new_object);
  KEEP_FRAME();
  return p;
}
__attribute__((noinline)) void* leak_from_site_b(DebugAllocator& debug, std::size_t size) {
  void* p = debug.allocate(size, 8, AllocationFamily::malloc);
  KEEP_FRAME();
  return p;
}

TEST_F(DebugAllocatorTest, LeakCheckCountsAndGroupsByAllocationStack) {
  DebugAllocator debug(recorder.options());
  EXPECT_TRUE(debug.leak_check().ok());
  void* a[3];
  NO_UNROLL  // one call site, so one stack (unrolled, it would be three)
  for (int i = 0; i < 3; ++i) a[i] = leak_from_site_a(debug, 10 * (i + 1));  // one call site, one stack
  void* b = leak_from_site_b(debug, 100);
  void* freed = leak_from_site_b(debug, 7);
  debug.release(freed, AllocationFamily::malloc);

  const LeakReport report = debug.leak_check();
  EXPECT_EQ(report.leaked_blocks(), 4u);
  EXPECT_EQ(report.leaked_bytes(), 160u);
  ASSERT_EQ(report.groups().size(), 2u);
  EXPECT_EQ(report.groups()[0].bytes, 100u);  // largest first
  EXPECT_EQ(report.groups()[0].blocks, 1u);
  EXPECT_TRUE(mentions(functions_of(report.groups()[0].stack), "leak_from_site_b"));
  EXPECT_EQ(report.groups()[1].bytes, 60u);
  EXPECT_EQ(report.groups()[1].blocks, 3u);
  EXPECT_TRUE(mentions(functions_of(report.groups()[1].stack), "leak_from_site_a"));
  EXPECT_TRUE(recorder.errors.empty());

  // The text report names the sites, with this file's name and the line.
  char path[] = "/tmp/zheap_leak_report_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  report.write(fd);
  std::string text(8192, '\0');
  text.resize(static_cast<std::size_t>(pread(fd, text.data(), text.size(), 0)));
  close(fd);
  unlink(path);
  EXPECT_NE(text.find("Direct leak of 100 byte(s) in 1 object(s) allocated from:"), std::string::npos) << text;
  EXPECT_NE(text.find("leak_from_site_a"), std::string::npos) << text;
  EXPECT_NE(text.find("debug_allocator_test.cpp:"), std::string::npos) << text;
  EXPECT_NE(text.find("SUMMARY: zheap: 160 byte(s) leaked in 4 allocation(s)."), std::string::npos) << text;

  for (void* p : a) debug.release(p, AllocationFamily::new_object);
  debug.release(b, AllocationFamily::malloc);
  EXPECT_TRUE(debug.leak_check().ok());
}

TEST_F(DebugAllocatorTest, QuarantineStaysWithinItsBytes) {
  DebugOptions options;
  options.quarantine_bytes = 4096;
  DebugAllocator debug(recorder.options(options));
  for (int i = 0; i < 200; ++i) debug.release(allocate_here(debug, 100), AllocationFamily::malloc);
  EXPECT_GT(debug.quarantined_bytes(), 0u);
  EXPECT_LE(debug.quarantined_bytes(), 4096u);
  // A block bigger than the whole quarantine is released at once.
  debug.release(debug.allocate(10000, 16, AllocationFamily::malloc), AllocationFamily::malloc);
  EXPECT_LE(debug.quarantined_bytes(), 4096u);
  EXPECT_TRUE(recorder.errors.empty());
}

TEST_F(DebugAllocatorTest, AlignmentsZeroLengthAndTheAllocatorInterface) {
  DebugAllocator debug(recorder.options());
  for (std::size_t alignment = 1; alignment <= 16384; alignment *= 2) {
    void* p = debug.allocate(alignment * 3 + 1, alignment, AllocationFamily::malloc);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0u) << alignment;
    std::memset(p, 0xab, alignment * 3 + 1);
    debug.release(p, AllocationFamily::malloc);
  }
  void* zero1 = debug.allocate(0, 16, AllocationFamily::malloc);
  void* zero2 = debug.allocate(0, 16, AllocationFamily::malloc);
  ASSERT_NE(zero1, nullptr);
  EXPECT_NE(zero1, zero2);
  debug.release(zero1, AllocationFamily::malloc);
  debug.release(zero2, AllocationFamily::malloc);

  Allocator gpa = debug.allocator();
  std::span<int> numbers = gpa.alloc<int>(100);
  ASSERT_EQ(numbers.size(), 100u);
  for (int i = 0; i < 100; ++i) numbers[static_cast<std::size_t>(i)] = i;
  EXPECT_TRUE(gpa.resize(numbers, 50));  // shrinks in place
  numbers = numbers.first(50);
  EXPECT_FALSE(gpa.resize(numbers, 500));  // never grows in place
  numbers = gpa.realloc(numbers, 500);
  ASSERT_EQ(numbers.size(), 500u);
  EXPECT_EQ(numbers[49], 49);
  gpa.free(numbers);
  auto* object = gpa.create<std::uint64_t>(7u);
  gpa.destroy(object);
  EXPECT_TRUE(recorder.errors.empty()) << debug_error_name(recorder.errors[0].error.kind);
  EXPECT_TRUE(debug.leak_check().ok());
}

TEST_F(DebugAllocatorTest, AllocatorFreeWithTheWrongLength) {
  DebugAllocator debug(recorder.options());
  Allocator gpa = debug.allocator();
  std::span<char> bytes = gpa.alloc<char>(64);
  gpa.free(bytes.first(32));
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::wrong_size_free);
  EXPECT_EQ(recorder.errors[0].error.given_size, 32u);
}

// resize() of a freed block finds it in the quarantine: a double free (the call frees).
TEST_F(DebugAllocatorTest, AllocatorResizeOfAFreedBlockIsADoubleFree) {
  DebugAllocator debug(recorder.options());
  Allocator gpa = debug.allocator();
  std::span<char> bytes = gpa.alloc<char>(64);
  gpa.free(bytes);
  ASSERT_TRUE(recorder.errors.empty());
  EXPECT_FALSE(gpa.resize(bytes, 32));
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::double_free);
  EXPECT_EQ(recorder.errors[0].error.block, bytes.data());
}

TEST_F(DebugAllocatorTest, MemoryLimitRefusesAllocations) {
  DebugOptions options;
  options.memory_limit = 1000;
  DebugAllocator debug(recorder.options(options));
  void* p = debug.allocate(600, 16, AllocationFamily::malloc);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(debug.allocate(600, 16, AllocationFamily::malloc), nullptr);
  debug.release(p, AllocationFamily::malloc);
  p = debug.allocate(600, 16, AllocationFamily::malloc);
  EXPECT_NE(p, nullptr);
  debug.release(p, AllocationFamily::malloc);
}

TEST_F(DebugAllocatorTest, ThreadsAllocatingAndFreeingReportNothing) {
  DebugAllocator debug(recorder.options());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&debug, t] {
      std::vector<void*> held;
      for (int i = 0; i < 5000; ++i) {
        held.push_back(debug.allocate(static_cast<std::size_t>(8 + (i * 7 + t) % 200), 16, AllocationFamily::malloc));
        if (held.size() > 50) {
          debug.release(held.front(), AllocationFamily::malloc);
          held.erase(held.begin());
        }
      }
      for (void* p : held) debug.release(p, AllocationFamily::malloc);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_TRUE(recorder.errors.empty());
  EXPECT_EQ(debug.live_blocks(), 0u);
  EXPECT_TRUE(debug.leak_check().ok());
}

// Frees are quarantined in per-thread batches that move to the shared ring 32 at a time
// (src/debug/quarantine.hpp). A block still in a batch, even one left behind by a thread
// that has exited, must be as quarantined as one in the ring.
TEST_F(DebugAllocatorTest, ABlockInAnExitedThreadsBatchIsStillQuarantined) {
  DebugAllocator debug(recorder.options());  // 16 MiB: a batch moves on only after 32 frees
  auto* written = static_cast<char*>(debug.allocate(64, 16, AllocationFamily::malloc));
  void* freed_twice = debug.allocate(64, 16, AllocationFamily::malloc);
  std::thread([&] {
    debug.release(written, AllocationFamily::malloc);
    debug.release(freed_twice, AllocationFamily::malloc);
  }).join();
  EXPECT_GE(debug.quarantined_bytes(), 128u);  // counted while in the batch
  written[3] = 'x';
  debug.release(freed_twice, AllocationFamily::malloc);
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::double_free);
  EXPECT_TRUE(debug.leak_check().ok());  // moves the batch into the ring and checks its poison
  ASSERT_EQ(recorder.errors.size(), 2u);
  EXPECT_EQ(recorder.errors[1].error.kind, DebugErrorKind::write_after_free);
  EXPECT_EQ(recorder.errors[1].error.offset, 3);
  EXPECT_GE(debug.quarantined_bytes(), 128u);
  EXPECT_EQ(debug.live_blocks(), 0u);
}

// A freed block's record leaves the block table for the quarantine (the thread's batch,
// then the ring): every check that needs it must find it there, with its stacks, once the
// batch has moved on too.
TEST_F(DebugAllocatorTest, AFreedBlockIsKnownInTheRingAfterItsBatchMovedOn) {
  DebugAllocator debug(recorder.options());  // 16 MiB: nothing leaves the ring here
  auto* p = static_cast<char*>(allocate_here(debug, 100));
  first_free_here(debug, p);
  NO_UNROLL for (int i = 0; i < 40; ++i) debug.release(debug.allocate(32, 16, AllocationFamily::malloc), AllocationFamily::malloc);
  ASSERT_TRUE(recorder.errors.empty());
  EXPECT_FALSE(debug.owns(p));
  EXPECT_EQ(debug.usable_size(p), 0u);

  second_free_here(debug, p);
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::double_free);
  EXPECT_EQ(recorder.errors[0].error.block, p);
  EXPECT_EQ(recorder.errors[0].error.block_size, 100u);
  EXPECT_TRUE(mentions(recorder.errors[0].allocation, "allocate_here")) << joined(recorder.errors[0].allocation);
  EXPECT_TRUE(mentions(recorder.errors[0].free, "first_free_here")) << joined(recorder.errors[0].free);
  EXPECT_TRUE(mentions(recorder.errors[0].current, "second_free_here")) << joined(recorder.errors[0].current);

  EXPECT_EQ(realloc_here(debug, p, 200), nullptr);
  ASSERT_EQ(recorder.errors.size(), 2u);
  EXPECT_EQ(recorder.errors[1].error.kind, DebugErrorKind::realloc_of_freed);
  EXPECT_TRUE(mentions(recorder.errors[1].free, "first_free_here"));

  second_free_here(debug, p + 10);  // inside the freed block
  ASSERT_EQ(recorder.errors.size(), 3u);
  EXPECT_EQ(recorder.errors[2].error.kind, DebugErrorKind::interior_free);
  EXPECT_EQ(recorder.errors[2].error.block, p);
  EXPECT_EQ(recorder.errors[2].error.offset, 10);

  p[7] = 'x';  // and its poison is still checked there
  EXPECT_TRUE(debug.leak_check().ok());
  ASSERT_EQ(recorder.errors.size(), 4u);
  EXPECT_EQ(recorder.errors[3].error.kind, DebugErrorKind::write_after_free);
  EXPECT_EQ(recorder.errors[3].error.offset, 7);
  EXPECT_EQ(debug.live_blocks(), 0u);
}

// A block freed by a thread that exited: its batch stays behind until leak_check() (or
// the slot's next user) moves it into the ring; a second free finds it in either.
TEST_F(DebugAllocatorTest, ADoubleFreeIsFoundAfterTheBlockLeftAnExitedThreadsBatch) {
  DebugAllocator debug(recorder.options());
  void* p = allocate_here(debug, 48);
  std::thread([&] { first_free_here(debug, p); }).join();
  EXPECT_TRUE(debug.leak_check().ok());  // the exited thread's batch moves into the ring
  ASSERT_TRUE(recorder.errors.empty());
  second_free_here(debug, p);
  ASSERT_EQ(recorder.errors.size(), 1u);
  EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::double_free);
  EXPECT_EQ(recorder.errors[0].error.block, p);
  EXPECT_TRUE(mentions(recorder.errors[0].free, "first_free_here")) << joined(recorder.errors[0].free);
}

// The byte limit covers the batches: threads that each keep a batch going (and exit with
// it) cannot take the quarantine past its bytes, and what leaves is checked.
TEST_F(DebugAllocatorTest, QuarantineBatchesOfManyThreadsStayWithinItsBytes) {
  DebugOptions options;
  options.quarantine_bytes = 64 << 10;
  DebugAllocator debug(recorder.options(options));
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&debug, t] {
      for (int i = 0; i < 3000 + 7 * t; ++i) {
        void* p = debug.allocate(static_cast<std::size_t>(16 + (i * 13) % 300), 16, AllocationFamily::malloc);
        debug.release(p, AllocationFamily::malloc);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(debug.quarantined_bytes(), std::size_t{64} << 10);
  EXPECT_GT(debug.quarantined_bytes(), 0u);
  EXPECT_TRUE(debug.leak_check().ok());
  EXPECT_LE(debug.quarantined_bytes(), std::size_t{64} << 10);
  EXPECT_TRUE(recorder.errors.empty());
}

// A block another thread got from the backing, freed and then evicted from the
// quarantine here, is kept for this thread's next allocation of its size
// (src/debug/recycle_bins.hpp) instead of going back to the backing; it comes back with
// fresh redzones, still checked, and the backing gets every block back in the end.
TEST_F(DebugAllocatorTest, ABlockOfAnotherThreadLeavingTheQuarantineHereIsReusedHereWithItsChecks) {
  ASSERT_NE(debug::exclusive_thread_slot(), debug::kThreadSlots) << "recycling serves the first threads only";
  TestingAllocator backing;
  {
    DebugOptions options;
    options.backing = backing.allocator();
    options.quarantine_bytes = 4 << 10;
    DebugAllocator debug(recorder.options(options));
    const std::size_t here = debug::thread_slot();
    void* theirs = nullptr;
    void* kept_to_the_end = nullptr;  // recycled and never taken: the destructor gives it back
    while (theirs == nullptr) {  // from a thread whose slot is not this one's
      std::thread([&] {
        if (debug::thread_slot() == here) return;
        theirs = debug.allocate(40, 16, AllocationFamily::malloc);
        kept_to_the_end = debug.allocate(200, 16, AllocationFamily::malloc);
      }).join();
    }
    debug.release(theirs, AllocationFamily::malloc);
    debug.release(kept_to_the_end, AllocationFamily::malloc);
    // Frees of this thread's own blocks push it out of the 4 KiB quarantine; their blocks
    // go back to the backing (this thread's frees of them are local there).
    NO_UNROLL for (int i = 0; i < 200; ++i) debug.release(debug.allocate(64, 16, AllocationFamily::malloc), AllocationFamily::malloc);
    ASSERT_TRUE(recorder.errors.empty());
    EXPECT_LT(debug.quarantined_bytes(), std::size_t{4} << 10);

    const std::size_t backing_blocks = backing.leaked_blocks();
    auto* again = static_cast<char*>(allocate_here(debug, 40));
    EXPECT_EQ(again, theirs);  // the same block,
    EXPECT_EQ(backing.leaked_blocks(), backing_blocks);  // not a new one from the backing
    EXPECT_EQ(debug.usable_size(again), 40u);
    again[40] = 'x';  // one past the end: the right redzone, written anew
    first_free_here(debug, again);
    ASSERT_EQ(recorder.errors.size(), 1u);
    EXPECT_EQ(recorder.errors[0].error.kind, DebugErrorKind::buffer_overflow);
    EXPECT_EQ(recorder.errors[0].error.offset, 40);
    EXPECT_TRUE(mentions(recorder.errors[0].allocation, "allocate_here")) << joined(recorder.errors[0].allocation);
  }
  EXPECT_EQ(backing.leaked_blocks(), 0u);  // recycled blocks included
  EXPECT_EQ(backing.invalid_calls(), 0u);
}

TEST_F(DebugAllocatorTest, TwoThreadsFreeingOneBlockGiveExactlyOneDoubleFree) {
  std::mutex recorder_lock;  // the handler runs on both threads
  struct Shared {
    Recorder* recorder;
    std::mutex* lock;
  } shared{&recorder, &recorder_lock};
  DebugOptions options = recorder.options();
  options.error_context = &shared;
  options.error_handler = [](void* context, const DebugError& error) {
    auto* s = static_cast<Shared*>(context);
    std::lock_guard<std::mutex> guard(*s->lock);
    Recorder::handle(s->recorder, error);
  };
  DebugAllocator debug(options);
  for (int round = 0; round < 200; ++round) {
    void* p = debug.allocate(32, 16, AllocationFamily::malloc);
    std::atomic<int> ready{0};
    auto free_it = [&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      debug.release(p, AllocationFamily::malloc);
    };
    std::thread a(free_it), b(free_it);
    a.join();
    b.join();
  }
  ASSERT_EQ(recorder.errors.size(), 200u);
  for (const Recorded& r : recorder.errors) EXPECT_EQ(r.error.kind, DebugErrorKind::double_free);
  EXPECT_EQ(debug.live_blocks(), 0u);
}

TEST_F(DebugAllocatorTest, GuardPagesServeAlignedBlocksRightBeforeTheGuard) {
  DebugOptions options;
  options.guard_pages = true;
  DebugAllocator debug(recorder.options(options));
  for (std::size_t alignment : {1u, 16u, 4096u}) {
    auto* p = static_cast<char*>(debug.allocate(100, alignment, AllocationFamily::malloc));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0u);
    std::memset(p, 1, 100);
    debug.release(p, AllocationFamily::malloc);
  }
  EXPECT_TRUE(recorder.errors.empty());
}

TEST_F(DebugAllocatorTest, IgnoreMeansNoReportAndTheProgramGoesOn) {
  DebugOptions options = recorder.options();
  options.on_error = OnError::ignore;
  options.on_wrong_size = OnError::ignore;
  DebugAllocator debug(options);
  void* p = allocate_here(debug, 8);
  first_free_here(debug, p);
  second_free_here(debug, p);
  int local = 0;
  second_free_here(debug, &local);
  EXPECT_TRUE(recorder.errors.empty());
}

// What the shim does: its malloc passes its own call site, so the recorded stack starts
// in the program, not in the shim.
__attribute__((noinline)) void* shim_like_malloc(DebugAllocator& debug, std::size_t size) {
  const CallSite site = ZHEAP_CALL_SITE();
  void* p = debug.allocate(size, 16, AllocationFamily::malloc, &site);
  KEEP_FRAME();
  return p;
}
__attribute__((noinline)) void* program_calling_malloc(DebugAllocator& debug) {
  void* p = shim_like_malloc(debug, 32);
  KEEP_FRAME();
  return p;
}

TEST_F(DebugAllocatorTest, AnExplicitCallSiteStartsTheStackThere) {
  DebugAllocator debug(recorder.options());
  void* p = program_calling_malloc(debug);
  const LeakReport report = debug.leak_check();
  ASSERT_EQ(report.groups().size(), 1u);
  const std::vector<std::string> functions = functions_of(report.groups()[0].stack);
  ASSERT_FALSE(functions.empty());
  EXPECT_NE(functions[0].find("program_calling_malloc"), std::string::npos) << joined(functions);
  EXPECT_FALSE(mentions(functions, "shim_like_malloc")) << joined(functions);
  debug.release(p, AllocationFamily::malloc);
}

TEST_F(DebugAllocatorTest, ForkWithTheLocksHeldLeavesAUsableAllocatorOnBothSides) {
  DebugAllocator debug(recorder.options());
  void* before = debug.allocate(64, 16, AllocationFamily::malloc);
  debug.lock_for_fork();
  const pid_t child = fork();
  debug.unlock_after_fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    void* p = debug.allocate(128, 16, AllocationFamily::malloc);
    debug.release(p, AllocationFamily::malloc);
    debug.release(before, AllocationFamily::malloc);
    _exit(debug.live_blocks() == 0 && recorder.errors.empty() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  debug.release(before, AllocationFamily::malloc);
  EXPECT_TRUE(recorder.errors.empty());
}

using DebugAllocatorDeathTest = DebugAllocatorTest;

TEST_F(DebugAllocatorDeathTest, DoubleFreeAbortsByDefaultWithASymbolizedReport) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        DebugAllocator debug;  // default options: abort, report on stderr
        void* p = allocate_here(debug, 24);
        first_free_here(debug, p);
        second_free_here(debug, p);
      },
      "ERROR: zheap: double-free(.|\n)*freed again here:(.|\n)*second_free_here(.|\n)*debug_allocator_test.cpp:[0-9]+"
      "(.|\n)*first freed here:(.|\n)*first_free_here(.|\n)*allocated here:(.|\n)*allocate_here");
}

TEST_F(DebugAllocatorDeathTest, GuardPageCatchesTheOverflowingWrite) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DebugOptions options;
  options.guard_pages = true;
  EXPECT_DEATH(
      {
        DebugAllocator debug(options);
        auto* p = static_cast<volatile char*>(debug.allocate(4000, 1, AllocationFamily::malloc));
        p[4000] = 1;
      },
      "");
}

TEST_F(DebugAllocatorDeathTest, GuardPageModeFaultsOnUseAfterFree) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  DebugOptions options;
  options.guard_pages = true;
  EXPECT_DEATH(
      {
        DebugAllocator debug(options);
        auto* p = static_cast<volatile char*>(debug.allocate(64, 16, AllocationFamily::malloc));
        debug.release(const_cast<char*>(p), AllocationFamily::malloc);
        p[0] = 1;
      },
      "");
}

}  // namespace
}  // namespace zheap
