// DebugAllocator::leak_check's classification (core/src/debug/leak_scan.hpp): definite,
// indirect (chains, cycles, a cycle hanging off a cycle), reachable from a global, from a
// local on the stack and from a register only; not_roots honoured; quarantined blocks
// neither counted nor read; grouping and order; interior pointers; and LeakReport::write's
// layout.
//
// The test keeps its pointers to blocks complemented (Hidden) and touches real pointers
// only inside noinline helpers, and scrubs the dead stack below it before each check, so
// that no stale copy of an address in its own frames or registers makes a block reachable
// that the test means to lose. Blocks come from page_allocator(): a freed block's memory
// is unmapped, so no stale pointer survives in a free list from one test to the next.
#include <zheap/debug_allocator.hpp>
#include <zheap/page_allocator.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <unistd.h>

namespace zheap {
namespace {

// The helpers that see real addresses, and the scrub and check below them, are not
// instrumented by AddressSanitizer (scripts/test's second stage): its frames put redzones
// around locals, which nothing writes after the function returns, so stale copies of
// block addresses would survive there, above the scan's start, out of reach of the scrub.
#define NOT_INSTRUMENTED __attribute__((no_sanitize_address))

// An address kept as its complement: no word holding it points at the block.
struct Hidden {
  std::uintptr_t bits = 0;
};

[[gnu::noinline]] NOT_INSTRUMENTED void* reveal(Hidden hidden) { return reinterpret_cast<void*>(~hidden.bits); }

[[gnu::noinline]] NOT_INSTRUMENTED Hidden allocate_hidden(DebugAllocator& debug, std::size_t size) {
  void* p = debug.allocate(size, 16, AllocationFamily::malloc);
  std::memset(p, 0, size);
  return Hidden{~reinterpret_cast<std::uintptr_t>(p)};
}

// A second allocation site, for grouping.
[[gnu::noinline]] NOT_INSTRUMENTED Hidden allocate_hidden_elsewhere(DebugAllocator& debug, std::size_t size) {
  void* p = debug.allocate(size, 16, AllocationFamily::malloc);
  std::memset(p, 0, size);
  asm volatile("" ::: "memory");
  return Hidden{~reinterpret_cast<std::uintptr_t>(p)};
}

// from's word `slot` points to `to`'s byte `offset`.
[[gnu::noinline]] NOT_INSTRUMENTED void link(Hidden from, std::size_t slot, Hidden to, std::size_t offset = 0) {
  static_cast<char**>(reveal(from))[slot] = static_cast<char*>(reveal(to)) + offset;
}

[[gnu::noinline]] NOT_INSTRUMENTED void release_hidden(DebugAllocator& debug, Hidden hidden) {
  debug.release(reveal(hidden), AllocationFamily::malloc);
}

[[gnu::noinline]] NOT_INSTRUMENTED void scrub_stack() {
  volatile char pad[32 << 10];
  for (std::size_t i = 0; i < sizeof pad; ++i) pad[i] = 0;
}

[[gnu::noinline]] NOT_INSTRUMENTED LeakReport check(DebugAllocator& debug, bool roots = true,
                                   std::span<const AddressRange> not_roots = {}) {
  scrub_stack();
  LeakCheckOptions options;
  options.scan_process_roots = roots;
  options.not_roots = not_roots;
  LeakReport report = debug.leak_check(options);
  asm volatile("" ::: "memory");
  return report;
}

DebugOptions page_backed() {
  DebugOptions options;
  options.backing = page_allocator();
  return options;
}

void* volatile global_root = nullptr;
[[gnu::noinline]] NOT_INSTRUMENTED void set_global_root(Hidden hidden, std::size_t offset = 0) {
  global_root = static_cast<char*>(reveal(hidden)) + offset;
}

// A global the test names as not a root.
void* volatile ignored_globals[4] = {};
[[gnu::noinline]] NOT_INSTRUMENTED void set_ignored_global(Hidden hidden) { ignored_globals[1] = reveal(hidden); }

TEST(LeakClassification, WithoutRootsEveryBlockIsLostAndInBlockPointersMakeIndirectOnes) {
  DebugAllocator debug(page_backed());
  // A -> B -> C, D alone, E <-> F (a cycle).
  const Hidden a = allocate_hidden(debug, 10), b = allocate_hidden(debug, 20), c = allocate_hidden(debug, 40);
  [[maybe_unused]] const Hidden d = allocate_hidden(debug, 80);
  const Hidden e = allocate_hidden(debug, 160), f = allocate_hidden(debug, 320);
  link(a, 0, b);
  link(b, 0, c);
  link(e, 0, f);
  link(f, 0, e);
  global_root = nullptr;
  const LeakReport report = check(debug, /*roots=*/false);
  // The cycle's leader is its lower address.
  const bool e_leads = ~e.bits < ~f.bits;
  EXPECT_EQ(report.totals(LeakKind::definite).blocks, 3u);
  EXPECT_EQ(report.totals(LeakKind::definite).bytes, 10u + 80u + (e_leads ? 160u : 320u));
  EXPECT_EQ(report.totals(LeakKind::indirect).blocks, 3u);
  EXPECT_EQ(report.totals(LeakKind::indirect).bytes, 20u + 40u + (e_leads ? 320u : 160u));
  EXPECT_EQ(report.totals(LeakKind::reachable).blocks, 0u);
  EXPECT_EQ(report.leaked_blocks(), 6u);
  EXPECT_EQ(report.leaked_bytes(), 630u);
}

TEST(LeakClassification, ABlockNothingPointsToIsDefinite) {
  DebugAllocator debug(page_backed());
  allocate_hidden(debug, 24);
  const LeakReport report = check(debug);
  EXPECT_EQ(report.totals(LeakKind::definite).blocks, 1u);
  EXPECT_EQ(report.totals(LeakKind::definite).bytes, 24u);
  EXPECT_EQ(report.totals(LeakKind::indirect).blocks, 0u);
  EXPECT_EQ(report.totals(LeakKind::reachable).blocks, 0u);
}

TEST(LeakClassification, APureCycleHasOneDefiniteLeader) {
  DebugAllocator debug(page_backed());
  const Hidden a = allocate_hidden(debug, 16), b = allocate_hidden(debug, 32), c = allocate_hidden(debug, 64);
  link(a, 1, b);
  link(b, 0, c, 8);  // an interior pointer counts
  link(c, 2, a);     // and back to the head: still one structure, A's
  const LeakReport report = check(debug);
  // A is pointed to by C, so the three are a cycle: its leader is the lowest address.
  EXPECT_EQ(report.totals(LeakKind::definite).blocks, 1u);
  EXPECT_EQ(report.totals(LeakKind::indirect).blocks, 2u);
  EXPECT_EQ(report.leaked_bytes(), 112u);
}

TEST(LeakClassification, AChainHangingOffALostHeadIsIndirect) {
  DebugAllocator debug(page_backed());
  const Hidden head = allocate_hidden(debug, 100), second = allocate_hidden(debug, 200),
               third = allocate_hidden(debug, 400);
  link(head, 0, second);
  link(second, 3, third);
  const LeakReport report = check(debug);
  EXPECT_EQ(report.totals(LeakKind::definite).blocks, 1u);
  EXPECT_EQ(report.totals(LeakKind::definite).bytes, 100u);
  EXPECT_EQ(report.totals(LeakKind::indirect).blocks, 2u);
  EXPECT_EQ(report.totals(LeakKind::indirect).bytes, 600u);
}

TEST(LeakClassification, ACycleReachedFromAnotherCycleIsIndirectWhicheverAddressComesFirst) {
  for (int order = 0; order < 2; ++order) {
    DebugAllocator debug(page_backed());
    // Two cycles, allocated in both orders so that either may have the lower addresses:
    // X1 <-> X2 points into Y1 <-> Y2. Only one leak is definite: X's leader.
    Hidden x1, x2, y1, y2;
    if (order == 0) {
      x1 = allocate_hidden(debug, 16), x2 = allocate_hidden(debug, 24);
      y1 = allocate_hidden(debug, 32), y2 = allocate_hidden(debug, 40);
    } else {
      y1 = allocate_hidden(debug, 32), y2 = allocate_hidden(debug, 40);
      x1 = allocate_hidden(debug, 16), x2 = allocate_hidden(debug, 24);
    }
    link(x1, 0, x2);
    link(x2, 0, x1);
    link(y1, 0, y2);
    link(y2, 0, y1);
    link(x2, 1, y1);
    const LeakReport report = check(debug);
    EXPECT_EQ(report.totals(LeakKind::definite).blocks, 1u) << "order " << order;
    EXPECT_EQ(report.totals(LeakKind::indirect).blocks, 3u) << "order " << order;
    const std::size_t definite_bytes = report.totals(LeakKind::definite).bytes;
    EXPECT_TRUE(definite_bytes == 16 || definite_bytes == 24) << "order " << order << ": " << definite_bytes;
  }
}

TEST(LeakClassification, BlocksReachableFromAGlobalAreNotLeaks) {
  DebugAllocator debug(page_backed());
  const Hidden a = allocate_hidden(debug, 16), b = allocate_hidden(debug, 32);
  const Hidden lost = allocate_hidden(debug, 64);
  link(a, 0, b);
  set_global_root(a);
  LeakReport report = check(debug);
  EXPECT_EQ(report.totals(LeakKind::reachable).blocks, 2u);
  EXPECT_EQ(report.totals(LeakKind::reachable).bytes, 48u);
  EXPECT_EQ(report.totals(LeakKind::definite).blocks, 1u);
  EXPECT_EQ(report.leaked_bytes(), 64u);

  set_global_root(a, 15);  // an interior pointer is enough
  report = check(debug);
  EXPECT_EQ(report.totals(LeakKind::reachable).blocks, 2u);

  global_root = nullptr;  // and without it, A leaks, B through A
  report = check(debug);
  EXPECT_EQ(report.totals(LeakKind::reachable).blocks, 0u);
  EXPECT_EQ(report.totals(LeakKind::definite).blocks, 2u);
  EXPECT_EQ(report.totals(LeakKind::indirect).blocks, 1u);
  release_hidden(debug, lost);
}

TEST(LeakClassification, AZeroSizeBlockIsReachedByItsExactAddress) {
  DebugAllocator debug(page_backed());
  const Hidden empty = allocate_hidden(debug, 0);
  set_global_root(empty);
  EXPECT_EQ(check(debug).totals(LeakKind::reachable).blocks, 1u);
  global_root = nullptr;
  EXPECT_EQ(check(debug).totals(LeakKind::definite).blocks, 1u);
}

TEST(LeakClassification, ALocalOnTheCallersStackIsARoot) {
  DebugAllocator debug(page_backed());
  const Hidden a = allocate_hidden(debug, 40);
  [[maybe_unused]] void* volatile local = reveal(a);
  const LeakReport report = check(debug);
  EXPECT_EQ(report.totals(LeakKind::reachable).blocks, 1u);
  EXPECT_TRUE(report.ok());
  local = nullptr;
  EXPECT_EQ(check(debug).totals(LeakKind::definite).blocks, 1u);
}

#if defined(__x86_64__)
// Calls fn(context) with r12 holding ~complemented and nothing else holding it: the value
// is in no memory until someone saves r12. r12 is callee-saved, so the callee keeps it or
// saves it on the stack.
extern "C" void leak_test_call_with_r12(void* context, void (*fn)(void*), std::uintptr_t complemented);
asm(R"(
  .text
  .p2align 4
  .type leak_test_call_with_r12, @function
leak_test_call_with_r12:
  .cfi_startproc
  push %r12
  .cfi_adjust_cfa_offset 8
  .cfi_rel_offset %r12, 0
  mov %rdx, %r12
  not %r12
  xor %edx, %edx
  call *%rsi
  pop %r12
  .cfi_adjust_cfa_offset -8
  .cfi_restore %r12
  ret
  .cfi_endproc
  .size leak_test_call_with_r12, .-leak_test_call_with_r12
)");

struct RegisterCheck {
  DebugAllocator* debug;
  LeakReport report;
};

[[gnu::noinline]] NOT_INSTRUMENTED void check_from_r12_caller(void* context) {
  auto* c = static_cast<RegisterCheck*>(context);
  LeakCheckOptions options;
  options.scan_process_roots = true;
  c->report = c->debug->leak_check(options);
  asm volatile("" ::: "memory");
}

TEST(LeakClassification, AValueOnlyInTheCallersRegisterIsARoot) {
  DebugAllocator debug(page_backed());
  const Hidden a = allocate_hidden(debug, 72);
  scrub_stack();
  RegisterCheck with{&debug, {}};
  leak_test_call_with_r12(&with, check_from_r12_caller, a.bits);
  EXPECT_EQ(with.report.totals(LeakKind::reachable).blocks, 1u);
  EXPECT_EQ(with.report.totals(LeakKind::definite).blocks, 0u);
  // The same call with r12 holding something else: the block is lost.
  scrub_stack();
  RegisterCheck without{&debug, {}};
  leak_test_call_with_r12(&without, check_from_r12_caller, 0);
  EXPECT_EQ(without.report.totals(LeakKind::definite).blocks, 1u);
}
#endif

TEST(LeakClassification, NotRootsAreNotScanned) {
  DebugAllocator debug(page_backed());
  const Hidden a = allocate_hidden(debug, 56);
  set_ignored_global(a);
  const auto begin = reinterpret_cast<std::uintptr_t>(&ignored_globals[0]);
  const AddressRange ignored[] = {{begin, begin + sizeof ignored_globals}};
  EXPECT_EQ(check(debug, true, ignored).totals(LeakKind::definite).blocks, 1u);
  EXPECT_EQ(check(debug, true, {}).totals(LeakKind::reachable).blocks, 1u);
  ignored_globals[1] = nullptr;
}

TEST(LeakClassification, QuarantinedBlocksAreNeitherCountedNorRead) {
  for (const bool guard_pages : {false, true}) {
    DebugOptions options = page_backed();
    options.guard_pages = guard_pages;  // freed guarded blocks are PROT_NONE: reading one would fault
    DebugAllocator debug(options);
    const Hidden freed = allocate_hidden(debug, 48);
    const Hidden kept = allocate_hidden(debug, 24);
    link(freed, 0, kept);
    release_hidden(debug, freed);
    set_global_root(freed);  // a dangling pointer: reaches nothing
    const LeakReport report = check(debug);
    EXPECT_EQ(report.totals(LeakKind::reachable).blocks, 0u) << "guard_pages=" << guard_pages;
    EXPECT_EQ(report.totals(LeakKind::definite).blocks, 1u) << "guard_pages=" << guard_pages;
    EXPECT_EQ(report.totals(LeakKind::definite).bytes, 24u) << "guard_pages=" << guard_pages;
    EXPECT_EQ(report.totals(LeakKind::indirect).blocks, 0u) << "guard_pages=" << guard_pages;
    global_root = nullptr;
  }
  // The allocators' teardown (instrumented under AddressSanitizer, its frames' redzones
  // never rewritten) left copies of these blocks' addresses below this frame, where the
  // next test's frame will lie, above its scan's start; a block of its own may then be
  // mapped at one of those addresses and be taken for reachable.
  scrub_stack();
}

const std::size_t* opaque_sizes(const std::size_t* p) {
  asm volatile("" : "+r"(p));
  return p;
}

#if defined(__clang__)
#define NO_UNROLL _Pragma("nounroll")
#else
#define NO_UNROLL _Pragma("GCC unroll 1")
#endif

// Blocks of the given sizes, all from one allocation stack (one call site: a loop whose
// trip count the compiler cannot know, not unrolled).
[[gnu::noinline]] NOT_INSTRUMENTED void allocate_many(DebugAllocator& debug, std::initializer_list<std::size_t> sizes, Hidden* out) {
  const std::size_t* size = opaque_sizes(sizes.begin());
  NO_UNROLL
  for (std::size_t i = 0; i < sizes.size(); ++i) out[i] = allocate_hidden(debug, size[i]);
  asm volatile("" ::: "memory");
}

TEST(LeakClassification, GroupsByKindThenStackLargestFirst) {
  DebugAllocator debug(page_backed());
  Hidden a[4], b[2], c[1], d[1];
  allocate_many(debug, {10, 10, 10, 10}, a);  // stack A
  allocate_many(debug, {100, 8}, b);          // stack B
  allocate_many(debug, {7}, c);               // stack C
  allocate_many(debug, {1000}, d);            // stack D
  link(b[0], 0, a[3]);  // A's fourth block hangs off B's first: indirect
  link(b[1], 0, c[0]);  // C's off B's second
  set_global_root(d[0]);
  const LeakReport report = check(debug);
  const auto groups = report.groups();
  std::string listed;
  for (const LeakGroup& g : groups)
    listed += std::to_string(static_cast<int>(g.kind)) + ": " + std::to_string(g.bytes) + " in " +
              std::to_string(g.blocks) + " (stack " + std::to_string(g.stack) + ")\n";
  ASSERT_EQ(groups.size(), 5u) << listed;
  EXPECT_EQ(groups[0].kind, LeakKind::definite);
  EXPECT_EQ(groups[0].bytes, 108u);  // B
  EXPECT_EQ(groups[0].blocks, 2u);
  EXPECT_EQ(groups[1].kind, LeakKind::definite);
  EXPECT_EQ(groups[1].bytes, 30u);  // A, less its indirect block
  EXPECT_EQ(groups[1].blocks, 3u);
  EXPECT_EQ(groups[2].kind, LeakKind::indirect);
  EXPECT_EQ(groups[2].bytes, 10u);  // A's fourth: the same stack, another kind, another group
  EXPECT_EQ(groups[2].stack, groups[1].stack);
  EXPECT_EQ(groups[3].kind, LeakKind::indirect);
  EXPECT_EQ(groups[3].bytes, 7u);
  EXPECT_EQ(groups[4].kind, LeakKind::reachable);
  EXPECT_EQ(groups[4].bytes, 1000u);
  EXPECT_NE(groups[0].stack, groups[1].stack);
  EXPECT_NE(groups[3].stack, groups[1].stack);
  EXPECT_EQ(report.leaked_bytes(), 155u);
  EXPECT_EQ(report.leaked_blocks(), 7u);
  global_root = nullptr;
}

std::string written(const LeakReport& report) {
  std::FILE* file = std::tmpfile();
  report.write(fileno(file));
  std::string text;
  std::rewind(file);
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text.append(buffer, n);
  std::fclose(file);
  return text;
}

TEST(LeakClassification, TheReportHasLeakSanitizersLayout) {
  DebugAllocator debug(page_backed());
  const Hidden head = allocate_hidden(debug, 30);
  link(head, 0, allocate_hidden_elsewhere(debug, 12));
  set_global_root(allocate_hidden(debug, 500));
  const std::string text = written(check(debug));
  const std::string pid = std::to_string(getpid());
  EXPECT_EQ(text.rfind("==" + pid + "==ERROR: zheap: detected memory leaks\n\n", 0), 0u) << text;
  EXPECT_NE(text.find("\nDirect leak of 30 byte(s) in 1 object(s) allocated from:\n    #0 "), std::string::npos)
      << text;
  EXPECT_NE(text.find("allocate_hidden("), std::string::npos) << text;
  EXPECT_NE(text.find("\n\nIndirect leak of 12 byte(s) in 1 object(s) allocated from:\n    #0 "), std::string::npos)
      << text;
  EXPECT_NE(text.find("\n\n500 byte(s) in 1 object(s) still reachable (not leaks); ZHEAP_SHOW_REACHABLE=1 lists them\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n\nSUMMARY: zheap: 42 byte(s) leaked in 2 allocation(s).\n"), std::string::npos) << text;
  EXPECT_LT(text.find("Direct leak"), text.find("Indirect leak"));
  global_root = nullptr;
}

TEST(LeakClassification, OnlyReachableBlocksWriteNothing) {
  DebugAllocator debug(page_backed());
  set_global_root(allocate_hidden(debug, 64));
  const LeakReport report = check(debug);
  EXPECT_EQ(report.totals(LeakKind::reachable).blocks, 1u);
  EXPECT_EQ(written(report), "");
  global_root = nullptr;
}

}  // namespace
}  // namespace zheap
