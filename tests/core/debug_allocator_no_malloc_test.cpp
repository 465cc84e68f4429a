// The debug allocator's allocation path never calls malloc: under the shim, malloc is the
// debug allocator itself. This executable defines malloc & co. (forwarding to glibc's
// __libc_* functions) and counts the calls made while a window is open, around
// allocations and frees that capture new stacks through a cold unwind-rule cache, insert
// them in the depot, map new granules of the block table and cycle the quarantine.
#include <zheap/debug_allocator.hpp>
#include <zheap/page_allocator.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> counting{false};
std::atomic<int> calls_while_counting{0};

void note_call() {
  if (counting.load(std::memory_order_relaxed)) calls_while_counting.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(std::size_t size) {
  note_call();
  return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) {
  note_call();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) {
  note_call();
  return __libc_realloc(p, size);
}
void free(void* p) {
  note_call();
  __libc_free(p);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  note_call();
  *out = __libc_memalign(alignment, size);
  return *out == nullptr ? 12 /* ENOMEM */ : 0;
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  note_call();
  return __libc_memalign(alignment, size);
}
}

namespace zheap {
namespace {

// Distinct call chains, so captures meet return addresses the rule cache has not seen.
template <int N>
__attribute__((noinline)) void* allocate_at_depth(DebugAllocator& debug, std::size_t size) {
  void* p;
  if constexpr (N == 0) {
    p = debug.allocate(size, 16, AllocationFamily::malloc);
  } else {
    p = allocate_at_depth<N - 1>(debug, size);
  }
  __asm__ volatile("" ::: "memory");
  return p;
}

TEST(DebugAllocatorNoMalloc, AllocationAndFreePathsNeverCallMalloc) {
  for (bool guard_pages : {false, true}) {
    DebugOptions options;
    options.backing = page_allocator();
    options.quarantine_bytes = 64 * 1024;
    options.guard_pages = guard_pages;
    DebugAllocator debug(options);
    void* held[512];
    counting = true;
    for (int round = 0; round < 4; ++round) {
      for (std::size_t i = 0; i < 512; ++i) {
        held[i] = (i % 3 == 0)   ? allocate_at_depth<3>(debug, i + 1)
                  : (i % 3 == 1) ? allocate_at_depth<9>(debug, i * 8)
                                 : allocate_at_depth<17>(debug, 24);
      }
      for (void* p : held) debug.release(p, AllocationFamily::malloc);
    }
    void* moved = debug.reallocate(nullptr, 10);
    moved = debug.reallocate(moved, 100000);
    debug.release(moved, AllocationFamily::malloc);
    const LeakReport report = debug.leak_check();
    // And the scan of the whole process for roots (/proc/self/maps, process_vm_readv).
    LeakCheckOptions with_roots;
    with_roots.scan_process_roots = true;
    const LeakReport scanned = debug.leak_check(with_roots);
    counting = false;
    EXPECT_TRUE(scanned.ok());
    EXPECT_EQ(calls_while_counting.load(), 0) << "guard_pages=" << guard_pages;
    EXPECT_TRUE(report.ok());
    calls_while_counting = 0;
  }
}

}  // namespace
}  // namespace zheap
