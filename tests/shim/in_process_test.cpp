// The shim's C entry points called in-process, under the prefix zheap_test_ (the same
// exports.cpp and libc semantics as libzheap.so, without replacing this program's malloc).
// Run once per mode (ZHEAP_ALLOCATOR set by meson); mode-specific tests skip elsewhere.
#include <dlfcn.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap.hpp"
#include "debug/stack_capture.hpp"
#include "dispatch.hpp"
#include "glibc_chunks.hpp"
#include "heap.hpp"

extern "C" {
void* zheap_test_malloc(size_t);
void zheap_test_free(void*);
void* zheap_test_calloc(size_t, size_t);
void* zheap_test_realloc(void*, size_t);
void* zheap_test_aligned_alloc(size_t, size_t);
int zheap_test_posix_memalign(void**, size_t, size_t);
size_t zheap_test_malloc_usable_size(void*);
void zheap_test_free_sized(void*, size_t);
}

namespace {

std::string mode() {
  const char* m = std::getenv("ZHEAP_ALLOCATOR");
  return m == nullptr ? "debug" : m;
}

TEST(ShimInProcess, AllocatesAlignedWritableMemory) {
  for (std::size_t size : {0u, 1u, 24u, 1000u, 70000u, 3u << 20}) {
    auto* p = static_cast<unsigned char*>(zheap_test_malloc(size));
    ASSERT_NE(p, nullptr);
    // Fundamental alignment, as C requires it: jemalloc gives requests of 8 bytes or less
    // 8-byte alignment (nothing that small can need more), everything else 16.
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % (size <= 8 ? 8 : 16), 0u);
    EXPECT_GE(zheap_test_malloc_usable_size(p), size);
    std::memset(p, 0xee, size);
    zheap_test_free(p);
  }
}

TEST(ShimInProcess, ErrnoAndArgumentRules) {
  errno = 0;
  EXPECT_EQ(zheap_test_malloc(SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(zheap_test_calloc(SIZE_MAX / 4, 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(zheap_test_aligned_alloc(3, 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  void* untouched = &untouched;
  EXPECT_EQ(zheap_test_posix_memalign(&untouched, 4, 8), EINVAL);
  EXPECT_EQ(untouched, &untouched);
  void* p = zheap_test_malloc(8);
  errno = 77;
  zheap_test_free(p);
  EXPECT_EQ(errno, 77);
  p = zheap_test_malloc(8);
  EXPECT_EQ(zheap_test_realloc(p, 0), nullptr);  // frees
}

TEST(ShimInProcess, ActiveHeapIsTheSelectedMode) {
  zheap_test_free(zheap_test_malloc(1));  // starts the shim
  EXPECT_EQ(std::string(zheap::shim::heap().name), mode());
}

TEST(ShimInProcess, GlibcFunctionsAreGlibcsOwn) {
  ASSERT_TRUE(zheap::shim::resolve_glibc());
  const auto& glibc = zheap::shim::glibc();
  for (void* f : {reinterpret_cast<void*>(glibc.malloc), reinterpret_cast<void*>(glibc.free),
                  reinterpret_cast<void*>(glibc.realloc), reinterpret_cast<void*>(glibc.memalign)}) {
    Dl_info info{};
    ASSERT_NE(dladdr(f, &info), 0);
    EXPECT_NE(std::strstr(info.dli_fname, "libc.so.6"), nullptr) << info.dli_fname;
  }
}

TEST(ShimInProcess, BootstrapPointersAreRecognised) {
  auto* early = static_cast<unsigned char*>(zheap::shim::bootstrap::allocate(40, 16));
  ASSERT_NE(early, nullptr);
  ASSERT_TRUE(zheap::shim::bootstrap::contains(early));
  std::memset(early, 0x42, 40);
  EXPECT_GE(zheap_test_malloc_usable_size(early), 40u);
  auto* moved = static_cast<unsigned char*>(zheap_test_realloc(early, 4000));
  ASSERT_NE(moved, nullptr);
  EXPECT_FALSE(zheap::shim::bootstrap::contains(moved));
  EXPECT_EQ(moved[39], 0x42);
  zheap_test_free(moved);
  void* again = zheap::shim::bootstrap::allocate(8, 16);
  zheap_test_free(again);  // the latest bootstrap block: rolled back, no crash
}

// In every mode, a block from glibc's malloc handed to zheap's free goes back to glibc:
// glibc's own count of bytes in use drops. (glibc's functions are called through the
// shim's resolved table: this test program links jemalloc, whose malloc replaces glibc's.)
TEST(ShimInProcess, GlibcPointerIsFreedByGlibc) {
  zheap_test_free(zheap_test_malloc(1));  // start-up records where glibc's brk heap starts
  const auto& glibc = zheap::shim::glibc();
  const auto glibc_mallinfo2 = reinterpret_cast<struct mallinfo2 (*)()>(glibc.mallinfo2);
  ASSERT_NE(glibc_mallinfo2, nullptr);
  void* glibc_block = glibc.malloc(10000);
  ASSERT_NE(glibc_block, nullptr);
  const std::size_t in_use = glibc_mallinfo2().uordblks;
  EXPECT_GE(zheap_test_malloc_usable_size(glibc_block), 10000u);
  zheap_test_free(glibc_block);
  EXPECT_LE(glibc_mallinfo2().uordblks + 10000, in_use);
}

// glibc's blocks outside its brk heap are recognised from their headers; stray pointers
// are not, however they look.
TEST(ShimInProcess, GlibcChunksOutsideTheBrkHeapAreRecognisedAndStraysAreNot) {
  ASSERT_TRUE(zheap::shim::resolve_glibc());
  const auto& glibc = zheap::shim::glibc();
  // Above the largest mmap threshold glibc adapts to (32 MiB): always mmapped.
  void* mmapped = glibc.malloc(std::size_t{40} << 20);
  void* from_thread_arena = nullptr;
  std::thread([&] { from_thread_arena = glibc.malloc(100); }).join();
  ASSERT_NE(mmapped, nullptr);
  ASSERT_NE(from_thread_arena, nullptr);
  EXPECT_FALSE(zheap::shim::in_glibc_brk_heap(mmapped));
  EXPECT_FALSE(zheap::shim::in_glibc_brk_heap(from_thread_arena));
  EXPECT_TRUE(zheap::shim::looks_like_glibc_chunk(mmapped));
  EXPECT_TRUE(zheap::shim::looks_like_glibc_chunk(from_thread_arena));
  EXPECT_FALSE(zheap::shim::looks_like_glibc_chunk(static_cast<char*>(mmapped) + 4096));
  EXPECT_FALSE(zheap::shim::looks_like_glibc_chunk(static_cast<char*>(from_thread_arena) + 16));
  EXPECT_FALSE(zheap::shim::looks_like_glibc_chunk(static_cast<char*>(mmapped) + 1));

  static long static_data[4];
  long on_stack[4] = {};
  EXPECT_FALSE(zheap::shim::looks_like_glibc_chunk(&static_data[2]));
  EXPECT_FALSE(zheap::shim::looks_like_glibc_chunk(&on_stack[2]));
  EXPECT_FALSE(zheap::shim::looks_like_glibc_chunk(nullptr));
  // A forged mmapped-chunk header at the start of an unreadable page: not trusted.
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  auto* mapping = static_cast<unsigned char*>(
      mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mapping, MAP_FAILED);
  const std::size_t forged[2] = {0, (2 * page) | 0x2};  // prev_size 0, size 2 pages, IS_MMAPPED
  std::memcpy(mapping, forged, sizeof forged);
  EXPECT_TRUE(zheap::shim::looks_like_glibc_chunk(mapping + 16));  // indistinguishable from glibc's
  ASSERT_EQ(munmap(mapping + page, page), 0);
  EXPECT_FALSE(zheap::shim::looks_like_glibc_chunk(mapping + 16));  // its end is not mapped
  ASSERT_EQ(munmap(mapping, page), 0);
  EXPECT_FALSE(zheap::shim::looks_like_glibc_chunk(mapping + 16));  // nothing there: no fault

  glibc.free(mmapped);
  glibc.free(from_thread_arena);
}

// Everything jemalloc hands out comes from the range zheap reserved (huge blocks included,
// from an arena jemalloc creates on demand); the rest of the address space is not its.
TEST(ShimInProcess, JemallocMemoryIsOneReservedRange) {
  if (mode() != "jemalloc") GTEST_SKIP() << "jemalloc mode only";
  zheap_test_free(zheap_test_malloc(1));  // starts the shim
  const zheap::shim::Heap& h = zheap::shim::heap();
  ASSERT_EQ(h.owns, zheap::shim::Ownership::reserved_range);
  ASSERT_GE(h.range_end - h.range_begin, std::uintptr_t{1} << 30);
  // Blocks of this size are new to jemalloc here (the test program's own jemalloc blocks
  // from before start-up are smaller), so they cannot be reused from before the hooks.
  for (const std::size_t size : {std::size_t{10} << 20, std::size_t{70} << 20}) {
    void* p = zheap_test_malloc(size);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(zheap::shim::owner_of(h, p), zheap::shim::Owner::heap) << size;
    void* aligned = zheap_test_aligned_alloc(std::size_t{1} << 24, size);
    ASSERT_NE(aligned, nullptr);
    EXPECT_EQ(zheap::shim::owner_of(h, aligned), zheap::shim::Owner::heap) << size;
    zheap_test_free(aligned);
    zheap_test_free(p);
  }
  static long stray[2];
  EXPECT_EQ(zheap::shim::owner_of(h, &stray[1]), zheap::shim::Owner::unknown);
}

TEST(ShimInProcess, ArenaRollsBackTheLatestBlockAndGrowsItInPlace) {
  if (mode() != "arena") GTEST_SKIP() << "arena mode only";
  void* first = zheap_test_malloc(100);
  zheap_test_free(first);
  void* second = zheap_test_malloc(100);
  EXPECT_EQ(first, second);
  void* grown = zheap_test_realloc(second, 5000);
  EXPECT_EQ(grown, second);
  EXPECT_EQ(zheap_test_malloc_usable_size(grown), 5008u);  // 5000 rounded up to 16
  zheap_test_free(grown);
}

TEST(ShimInProcess, ArenaMemoryIsOneRangeAndStraysAreIgnored) {
  if (mode() != "arena") GTEST_SKIP() << "arena mode only";
  void* small = zheap_test_malloc(10);
  void* large = zheap_test_malloc(5 << 20);
  const zheap::shim::Heap& h = zheap::shim::heap();
  EXPECT_EQ(zheap::shim::owner_of(h, small), zheap::shim::Owner::heap);
  EXPECT_EQ(zheap::shim::owner_of(h, large), zheap::shim::Owner::heap);
  static long stray[2];
  EXPECT_EQ(zheap::shim::owner_of(h, &stray[1]), zheap::shim::Owner::unknown);
  zheap_test_free(&stray[1]);  // reported once, ignored
  EXPECT_EQ(zheap_test_malloc_usable_size(&stray[1]), 0u);
  zheap_test_free(large);
  zheap_test_free(small);
}

TEST(ShimInProcess, ArenaFreesFromOtherThreadsAreSafe) {
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(zheap_test_malloc(static_cast<std::size_t>(i) + 1));
  std::thread([&] {
    for (void* p : blocks) zheap_test_free(p);
  }).join();
  void* after = zheap_test_malloc(64);
  EXPECT_NE(after, nullptr);
  zheap_test_free(after);
}

// A thread's arena state is handed back when it exits: the next new thread carries on in
// the same chunk, right after the last block of the thread before.
TEST(ShimInProcess, ArenaReusesTheStateOfAnExitedThread) {
  if (mode() != "arena") GTEST_SKIP() << "arena mode only";
  std::uintptr_t first_thread_block = 0, second_thread_block = 0;
  std::thread([&] { first_thread_block = reinterpret_cast<std::uintptr_t>(zheap_test_malloc(100)); }).join();
  std::thread([&] { second_thread_block = reinterpret_cast<std::uintptr_t>(zheap_test_malloc(100)); }).join();
  EXPECT_EQ(second_thread_block, first_thread_block + 112 + 16);  // 100 -> 112, then a header
}

// ZHEAP_ARENA_LIMIT=64m (set by meson for this run): allocation fails with ENOMEM at the
// cap, and memory given back by large frees can be used again.
TEST(ShimInProcess, ArenaLimitCapsMappedBytes) {
  if (mode() != "arena" || std::getenv("ZHEAP_ARENA_LIMIT") == nullptr) GTEST_SKIP() << "needs ZHEAP_ARENA_LIMIT";
  std::vector<void*> blocks;
  errno = 0;
  for (;;) {
    void* p = zheap_test_malloc(1 << 20);
    if (p == nullptr) break;
    blocks.push_back(p);
    ASSERT_LT(blocks.size(), 100u) << "the limit was not enforced";
  }
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_GE(blocks.size(), 50u);  // 64 MiB minus the thread's first chunk and headers
  for (void* p : blocks) zheap_test_free(p);
  void* again = zheap_test_malloc(1 << 20);
  EXPECT_NE(again, nullptr);
  zheap_test_free(again);
}

// Debug mode's stacks start at the exported function's call site, with the program's rbp
// (entry_call_site.hpp). A caller whose CFA comes from rbp (a variable-length array makes
// the compiler keep a frame pointer) is the first frame walked: with a wrong rbp its step
// reads no return address (the array, filled with a pattern that is no code address, is
// what lies nearest), and the capture falls back to libgcc's unwinder; with the right one,
// warm captures never fall back.
volatile int scratch_bytes = 64;  // read at run time: the array's size is not a constant
__attribute__((noinline)) void allocate_from_rbp_frame() {
  volatile unsigned char scratch[scratch_bytes];
  for (int i = 0; i < scratch_bytes; ++i) scratch[i] = 0xa5;
  void* a = zheap_test_malloc(24);
  void* b = zheap_test_calloc(3, 8);
  b = zheap_test_realloc(b, 100);
  void* c = nullptr;
  EXPECT_EQ(zheap_test_posix_memalign(&c, 64, 32), 0);
  zheap_test_free(c);
  zheap_test_free(b);
  zheap_test_free_sized(a, 24);
  __asm__ volatile("" : : "r"(scratch) : "memory");
}

TEST(ShimInProcess, DebugStacksStartInTheProgramsFrameWithItsRbp) {
  if (mode() != "debug") GTEST_SKIP() << "debug mode only";
  allocate_from_rbp_frame();  // warm: every return address's rule is cached
  const std::uint64_t before = zheap::debug::capture_fallback_count();
  for (int i = 0; i < 3; ++i) allocate_from_rbp_frame();
  EXPECT_EQ(zheap::debug::capture_fallback_count(), before);
}

}  // namespace
