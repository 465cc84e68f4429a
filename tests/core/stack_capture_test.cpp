// capture_stack() (cached CFI rules) must give exactly the stacks that libgcc's
// _Unwind_Backtrace gives, in code built without frame pointers (this file is compiled
// with -O2 -fomit-frame-pointer), through libstdc++ frames, a shared library, a signal
// handler and a new thread.
#include "debug/frame_rule_cache.hpp"
#include "debug/recent_stacks.hpp"
#include "debug/stack_depot.hpp"
#include "debug/stack_capture.hpp"
#include "stack_capture_helper.hpp"

#include <gtest/gtest.h>

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <functional>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

// A frame the rule cache cannot express: its CFA is given by a DWARF expression
// (DW_CFA_def_cfa_expression: DW_OP_breg7 (rsp) + 16), as hand-written or unusual
// compiler output may do. Calls callback(arg).
extern "C" void cfi_expression_frame(void (*callback)(void*), void* arg);
__asm__(R"(
  .text
  .p2align 4
  .type cfi_expression_frame, @function
cfi_expression_frame:
  .cfi_startproc
  pushq %rbx
  .cfi_escape 0x0f, 0x02, 0x77, 0x10
  .cfi_offset %rbx, -16
  movq %rdi, %rax
  movq %rsi, %rdi
  call *%rax
  popq %rbx
  .cfi_def_cfa %rsp, 8
  ret
  .cfi_endproc
  .size cfi_expression_frame, .-cfi_expression_frame
)");

// Keeps a loop from being unrolled, so the calls in its body stay one call site.
#if defined(__clang__)
#define NO_UNROLL _Pragma("nounroll")
#else
#define NO_UNROLL _Pragma("GCC unroll 1")
#endif

namespace zheap::debug {
namespace {

struct BothStacks {
  std::uintptr_t fast[kMaxStackFrames];
  std::size_t fast_count = 0;
  std::uintptr_t reference[kMaxStackFrames];
  std::size_t reference_count = 0;
  std::uint64_t fallbacks = 0;  // capture_stack() fallbacks during this capture

  std::vector<std::uintptr_t> fast_frames() const { return {fast, fast + fast_count}; }
  std::vector<std::uintptr_t> reference_frames() const { return {reference, reference + reference_count}; }
};

// Both captures from one function; skip = 1 drops the two (different) call sites in it,
// so both stacks start at the return address into our caller and must be equal.
__attribute__((noinline)) void capture_both(BothStacks* out) {
  const std::uint64_t fallbacks_before = capture_fallback_count();
  out->fast_count = capture_stack(out->fast, kMaxStackFrames, 1);
  out->fallbacks = capture_fallback_count() - fallbacks_before;
  out->reference_count = capture_stack_unwind(out->reference, kMaxStackFrames, 1);
}

__attribute__((noinline)) int recurse(int depth, BothStacks* out) {
  if (depth == 0) {
    capture_both(out);
    return 0;
  }
  const int result = recurse(depth - 1, out);
  __asm__ volatile("" ::: "memory");  // no tail call: keep every frame
  return result + 1;
}

// A frame with a variable-length array: gcc addresses it from rbp (CFA = rbp + 16) even
// with -fomit-frame-pointer, so the rbp-based rules are exercised too.
__attribute__((noinline)) int recurse_with_alloca(int depth, BothStacks* out) {
  volatile char* scratch = static_cast<volatile char*>(__builtin_alloca(static_cast<std::size_t>(depth) * 16 + 8));
  scratch[0] = 1;
  const int result = depth == 0 ? (capture_both(out), 0) : recurse_with_alloca(depth - 1, out);
  __asm__ volatile("" ::: "memory");
  return result + scratch[0];
}

// An over-aligned local makes gcc realign the stack and address the frame from rbp.
__attribute__((noinline)) int realigned_frame(BothStacks* out) {
  alignas(64) volatile char aligned[64];
  aligned[0] = 1;
  const int result = recurse(4, out);
  __asm__ volatile("" ::: "memory");
  return result + aligned[0];
}

void expect_same_stacks(const BothStacks& stacks, std::size_t at_least) {
  EXPECT_GE(stacks.reference_count, at_least);
  EXPECT_EQ(stacks.fast_frames(), stacks.reference_frames());
}

TEST(StackCapture, DeepChainMatchesUnwindBacktraceWithoutFallingBack) {
  for (int depth : {1, 10, 40}) {
    BothStacks stacks;
    recurse(depth, &stacks);
    expect_same_stacks(stacks, static_cast<std::size_t>(depth) + 3);
    // Capture it again: now every rule comes from the cache, and nothing needs libgcc.
    BothStacks again;
    recurse(depth, &again);
    EXPECT_EQ(again.fallbacks, 0u) << "depth " << depth;
    expect_same_stacks(again, static_cast<std::size_t>(depth) + 3);
  }
}

TEST(StackCapture, RbpBasedFramesMatch) {
  BothStacks stacks;
  recurse_with_alloca(12, &stacks);
  expect_same_stacks(stacks, 15);
  EXPECT_EQ(stacks.fallbacks, 0u);
}

TEST(StackCapture, AFrameWithARealignedStackMatches) {
  BothStacks stacks;
  realigned_frame(&stacks);
  expect_same_stacks(stacks, 8);
}

void capture_then_recurse(void* arg) { recurse(2, static_cast<BothStacks*>(arg)); }

TEST(StackCapture, AFrameWhoseCfaIsADwarfExpressionFallsBackAndStaysCorrect) {
  BothStacks stacks;
  cfi_expression_frame(capture_then_recurse, &stacks);
  expect_same_stacks(stacks, 6);
  EXPECT_GE(stacks.fallbacks, 1u);  // correct before fast: only libgcc steps over this frame
}

TEST(StackCapture, ThroughStdSortComparator) {
  std::vector<int> values(64);
  for (int i = 0; i < 64; ++i) values[static_cast<std::size_t>(i)] = (i * 37) % 64;
  BothStacks stacks;
  bool captured = false;
  std::sort(values.begin(), values.end(), [&](int a, int b) {
    if (!captured) {
      captured = true;
      capture_both(&stacks);
    }
    return a < b;
  });
  ASSERT_TRUE(captured);
  expect_same_stacks(stacks, 5);
}

TEST(StackCapture, ThroughStdFunction) {
  BothStacks stacks;
  std::function<void(int)> call = [&](int depth) { recurse(depth, &stacks); };
  std::function<void()> outer = [&] { call(5); };
  outer();
  expect_same_stacks(stacks, 10);
}

void capture_into(void* arg) { capture_both(static_cast<BothStacks*>(arg)); }

TEST(StackCapture, ThroughASharedLibrary) {
  BothStacks stacks;
  stack_capture_helper_recurse(20, capture_into, &stacks);
  expect_same_stacks(stacks, 22);
  BothStacks again;
  stack_capture_helper_recurse(20, capture_into, &again);
  EXPECT_EQ(again.fallbacks, 0u);
  expect_same_stacks(again, 22);
}

BothStacks* signal_stacks = nullptr;
void on_signal(int) { recurse(3, signal_stacks); }

TEST(StackCapture, InsideASignalHandlerFallsBackAndMatches) {
  BothStacks stacks;
  signal_stacks = &stacks;
  struct sigaction action {};
  action.sa_handler = on_signal;
  struct sigaction previous {};
  ASSERT_EQ(sigaction(SIGUSR1, &action, &previous), 0);
  raise(SIGUSR1);
  sigaction(SIGUSR1, &previous, nullptr);
  // The walk reaches the kernel's signal trampoline (__restore_rt, a signal frame), which
  // only the general unwinder steps over.
  EXPECT_GE(stacks.fallbacks, 1u);
  expect_same_stacks(stacks, 8);
}

TEST(StackCapture, OnANewThreadTheStackEndsWhereUnwindBacktraceEnds) {
  BothStacks stacks;
  std::thread([&] { recurse(7, &stacks); }).join();
  expect_same_stacks(stacks, 9);
  BothStacks again;
  std::thread([&] { recurse(7, &again); }).join();
  EXPECT_EQ(again.fallbacks, 0u);
  expect_same_stacks(again, 9);
}

TEST(StackCapture, MaxAndSkipAreHonoured) {
  BothStacks full;
  recurse(20, &full);
  ASSERT_GE(full.fast_count, 20u);
  // Five frames from the same place: the first five of a full capture there.
  std::uintptr_t five[5];
  std::uintptr_t all[kMaxStackFrames];
  const std::size_t all_count = capture_stack(all, kMaxStackFrames, 0);
  const std::size_t five_count = capture_stack(five, 5, 0);
  ASSERT_EQ(five_count, 5u);
  ASSERT_GE(all_count, 6u);
  // Same caller, different call sites: frame 0 differs, the callers above it agree.
  for (std::size_t i = 1; i < 5; ++i) EXPECT_EQ(five[i], all[i]);
  std::uintptr_t skipped[kMaxStackFrames];
  const std::size_t skipped_count = capture_stack(skipped, kMaxStackFrames, 2);
  EXPECT_EQ(skipped_count, all_count - 2);
  for (std::size_t i = 0; i < skipped_count; ++i) EXPECT_EQ(skipped[i], all[i + 2]);
}

TEST(StackCapture, RulesAreCachedPerReturnAddress) {
  // The same stack again and again (one call site, so the same return addresses): once
  // warm, a capture needs no new rule. recurse() has one return address for its thirty
  // recursive frames. The loop must stay a loop: unrolled, it would be three call sites.
  std::size_t rules[3];
  NO_UNROLL
  for (std::size_t& count : rules) {
    BothStacks stacks;
    recurse(30, &stacks);
    count = frame_rule_cache().cached_count();
  }
  EXPECT_GT(rules[0], 3u);
  EXPECT_EQ(rules[2], rules[1]);
}

TEST(StackCapture, ForgottenRulesAreReadAgainAndStillMatch) {
  BothStacks warm;
  recurse(10, &warm);
  ASSERT_GT(frame_rule_cache().cached_count(), 0u);
  forget_frame_rules();
  EXPECT_EQ(frame_rule_cache().cached_count(), 0u);
  BothStacks again;
  recurse(10, &again);
  expect_same_stacks(again, 13);
  EXPECT_GT(frame_rule_cache().cached_count(), 3u);
  EXPECT_EQ(again.fallbacks, 0u);
}

// Two callers of the same shape: recurse() below either runs at the same stack pointers
// with the same return addresses, so the walker's memo of the previous capture matches
// every inner frame, and the stacks part only at the return address into the caller.
__attribute__((noinline)) int first_caller(BothStacks* out) {
  const int result = recurse(6, out);
  __asm__ volatile("" ::: "memory");
  return result + 1;
}
__attribute__((noinline)) int second_caller(BothStacks* out) {
  const int result = recurse(6, out);
  __asm__ volatile("" ::: "memory");
  return result + 2;
}

TEST(StackCapture, ConsecutiveCapturesThatPartOnlyFarOutStayExact) {
  // Alternating, so each capture follows one whose inner frames are identical and whose
  // outer ones are not: the walk must read where the stacks part, not reuse the memo.
  // One loop, kept a loop: each caller is called from one call site.
  BothStacks stacks[6];
  NO_UNROLL
  for (std::size_t i = 0; i < 6; ++i) {
    if (i % 2 == 0) first_caller(&stacks[i]);
    else second_caller(&stacks[i]);
    expect_same_stacks(stacks[i], 10);
  }
  EXPECT_EQ(stacks[2].fast_frames(), stacks[0].fast_frames());
  EXPECT_EQ(stacks[3].fast_frames(), stacks[1].fast_frames());
  EXPECT_NE(stacks[0].fast_frames(), stacks[1].fast_frames());
}

TEST(StackCapture, ConsecutiveCapturesFromRbpBasedFramesOfOtherSizesStayExact) {
  // recurse_with_alloca's frames take their CFA from rbp; with another depth they sit at
  // other stack pointers and hold other rbp values, interleaved with plain captures.
  for (int round = 0; round < 3; ++round) {
    for (int depth : {4, 6, 4, 5}) {
      BothStacks stacks;
      recurse_with_alloca(depth, &stacks);
      expect_same_stacks(stacks, static_cast<std::size_t>(depth) + 3);
      EXPECT_EQ(stacks.fallbacks, 0u);
      BothStacks plain;
      recurse(depth, &plain);
      expect_same_stacks(plain, static_cast<std::size_t>(depth) + 3);
    }
  }
}

TEST(StackCapture, RepeatedCapturesFromOneSiteAndFromOtherDepthsStayExact) {
  // The same depth again (the outer steps hit the memo at the same index as in the
  // previous capture), then other depths (they hit it at another index), mixed: every
  // capture must match libgcc without falling back, and equal depths give equal stacks.
  std::vector<std::uintptr_t> at_depth[8];
  for (int round = 0; round < 3; ++round) {
    NO_UNROLL
    for (int depth : {5, 5, 5, 7, 5, 3, 3, 7, 7, 5}) {
      BothStacks stacks;
      recurse(depth, &stacks);
      expect_same_stacks(stacks, static_cast<std::size_t>(depth) + 3);
      EXPECT_EQ(stacks.fallbacks, 0u);
      if (at_depth[depth].empty()) at_depth[depth] = stacks.fast_frames();
      EXPECT_EQ(stacks.fast_frames(), at_depth[depth]);
    }
  }
}

// capture_both() with at most `max` frames, `depth` frames below the caller.
__attribute__((noinline)) void capture_both_at_most(std::size_t max, BothStacks* out) {
  out->fast_count = capture_stack(out->fast, max, 1);
  out->reference_count = capture_stack_unwind(out->reference, max, 1);
}
__attribute__((noinline)) int recurse_at_most(int depth, std::size_t max, BothStacks* out) {
  if (depth == 0) {
    capture_both_at_most(max, out);
    return 0;
  }
  const int result = recurse_at_most(depth - 1, max, out);
  __asm__ volatile("" ::: "memory");
  return result + 1;
}

TEST(StackCapture, ShortAndFullCapturesFromOneSiteStayExact) {
  // A capture cut at `max` leaves a memo that ends early: the full capture after it
  // follows the memo to its end and must walk on from there; a short capture after a
  // full one must stop at `max` while following.
  NO_UNROLL
  for (std::size_t max : {4, 64, 4, 4, 9, 64, 64, 2, 64}) {
    BothStacks stacks;
    recurse_at_most(12, max, &stacks);
    EXPECT_EQ(stacks.fast_count, max < 16 ? max : stacks.reference_count);
    EXPECT_GE(stacks.reference_count, max < 16 ? max : 15u);
    EXPECT_EQ(stacks.fast_frames(), stacks.reference_frames()) << "max " << max;
  }
}

TEST(StackCapture, ManyThreadsCapturingAtOnceStayExact) {
  // Many threads capture at once from different depths; each result must match libgcc.
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, &mismatches] {
      for (int i = 0; i < 200; ++i) {
        BothStacks stacks;
        if ((i + t) % 3 == 0) first_caller(&stacks);
        else if ((i + t) % 3 == 1) second_caller(&stacks);
        else recurse(t + i % 5, &stacks);
        if (stacks.fast_frames() != stacks.reference_frames()) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// ---- capture_stack_at(): the stack from a call site, as an allocator's entry point takes
// it (ZHEAP_CALL_SITE()): the walk starts in the caller's frame, nothing above is walked.

struct SiteStacks {
  std::uintptr_t at[kMaxStackFrames];
  std::size_t at_count = 0;
  std::uintptr_t reference[kMaxStackFrames];  // from the same innermost frame, via libgcc
  std::size_t reference_count = 0;
  CallSite site;
  std::uint64_t fallbacks = 0;
};

__attribute__((noinline)) void nested_capture_at(int levels, std::size_t max, SiteStacks* out) {
  if (levels > 0) {
    nested_capture_at(levels - 1, max, out);
    __asm__ volatile("" ::: "memory");  // no tail call: keep every frame
    return;
  }
  const std::uint64_t fallbacks_before = capture_fallback_count();
  out->at_count = capture_stack_at(out->at, max, out->site);
  out->fallbacks = capture_fallback_count() - fallbacks_before;
  out->reference_count = capture_stack_unwind(out->reference, kMaxStackFrames, 0);
}

// Plays an allocator's entry point: its call site, then `levels` + 2 frames of its own
// above its caller.
__attribute__((noinline)) void entry_like(int levels, std::size_t max, SiteStacks* out) {
  out->site = ZHEAP_CALL_SITE();
  nested_capture_at(levels, max, out);
  __asm__ volatile("" ::: "memory");
}

// The reference's frames from the call site on (frames[0] of the reference is a different
// call site in nested_capture_at, so the site is searched for, not counted).
std::vector<std::uintptr_t> reference_from_site(const SiteStacks& stacks, std::size_t max) {
  const std::uintptr_t* begin =
      std::find(stacks.reference, stacks.reference + stacks.reference_count, stacks.site.return_address);
  const std::size_t available = static_cast<std::size_t>(stacks.reference + stacks.reference_count - begin);
  return {begin, begin + std::min(available, max)};
}

std::vector<std::uintptr_t> captured(const SiteStacks& stacks) { return {stacks.at, stacks.at + stacks.at_count}; }

__attribute__((noinline)) void call_entry_like_a(int levels, std::size_t max, SiteStacks* out) {
  entry_like(levels, max, out);
  __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void call_entry_like_b(int levels, std::size_t max, SiteStacks* out) {
  entry_like(levels, max, out);
  __asm__ volatile("nop" ::: "memory");  // not the same code as _a: not folded into one function
}

// A caller whose CFA comes from rbp (a variable-length array makes any compiler keep a
// frame pointer): the first step of the walk needs the site's rbp, which must be the
// caller's own, not the entry's.
volatile int scratch_bytes = 16;  // read at run time: the array's size is not a constant
__attribute__((noinline)) void call_entry_like_from_rbp_frame(int levels, std::size_t max, SiteStacks* out) {
  volatile char scratch[scratch_bytes];
  scratch[0] = 0;
  entry_like(levels, max, out);
  __asm__ volatile("" : : "r"(scratch) : "memory");
}

TEST(StackCaptureAt, StartsAtTheSiteAndKeepsMaxFramesFromThere) {
  for (std::size_t max : {std::size_t{1}, std::size_t{3}, std::size_t{30}}) {
    SiteStacks stacks;
    call_entry_like_a(3, max, &stacks);  // 5 frames above the site, more than `max` for 1 and 3
    ASSERT_GT(stacks.reference_count, 6u);
    ASSERT_GT(stacks.at_count, 0u);
    EXPECT_EQ(stacks.at[0], stacks.site.return_address);
    EXPECT_EQ(captured(stacks), reference_from_site(stacks, max)) << "max " << max;
  }
}

TEST(StackCaptureAt, ASiteFarBelowTheCaptureIsFoundByItsRegisters) {
  // 20 frames between the site and the capture: nothing searches for the site.
  NO_UNROLL
  for (int round = 0; round < 2; ++round) {
    SiteStacks stacks;
    call_entry_like_a(20, 12, &stacks);
    ASSERT_EQ(stacks.at_count, 12u);
    EXPECT_EQ(stacks.at[0], stacks.site.return_address);
    // (A fallback would not find the site that far down: this must walk without one.)
    EXPECT_EQ(captured(stacks), reference_from_site(stacks, 12));
    if (round > 0) {
      EXPECT_EQ(stacks.fallbacks, 0u);
    }
  }
}

TEST(StackCaptureAt, ACallerWithAFramePointerGetsItsOwnRbp) {
  NO_UNROLL
  for (int round = 0; round < 3; ++round) {
    SiteStacks stacks;
    call_entry_like_from_rbp_frame(2, 30, &stacks);
    ASSERT_GT(stacks.at_count, 3u);
    EXPECT_EQ(stacks.at[0], stacks.site.return_address);
    EXPECT_EQ(captured(stacks), reference_from_site(stacks, 30));
    if (round > 0) {
      EXPECT_EQ(stacks.fallbacks, 0u);
    }
  }
}

TEST(StackCaptureAt, AlternatingCallersStayExactAndFindTheirRules) {
  // Two callers in turn, as a program's allocation and free (the memo's previous capture
  // then always comes from the other one).
  NO_UNROLL
  for (int round = 0; round < 6; ++round) {
    SiteStacks a;
    call_entry_like_a(2, 30, &a);
    EXPECT_EQ(captured(a), reference_from_site(a, 30));
    SiteStacks b;
    std::thread([&] {}).join();  // other work between captures changes nothing
    call_entry_like_b(4, 30, &b);
    EXPECT_EQ(captured(b), reference_from_site(b, 30));
    EXPECT_NE(a.site.return_address, b.site.return_address);
    if (round > 0) {
      EXPECT_EQ(a.fallbacks, 0u);
      EXPECT_EQ(b.fallbacks, 0u);
    }
  }
}

TEST(StackCaptureAt, AFallbackStillStartsAtTheSite) {
  // A frame the rule cache cannot express above the site forces no fallback (it is never
  // walked); one below it does, and the fallback still starts at the site.
  struct Run {
    SiteStacks stacks;
    static void body(void* arg) {
      auto* self = static_cast<Run*>(arg);
      call_entry_like_a(1, 30, &self->stacks);
    }
  } run;
  cfi_expression_frame(&Run::body, &run);
  EXPECT_EQ(run.stacks.fallbacks, 1u);
  EXPECT_EQ(run.stacks.at[0], run.stacks.site.return_address);
  EXPECT_EQ(captured(run.stacks), reference_from_site(run.stacks, 30));
}


// ---- capture_stack_id(): the id of the stack at a call site. A capture that a recent one
// of its series would give again (the same start, the same stack words) reuses that
// capture's id, without walking or interning; it must never do so for a stack that
// differs anywhere, however far out.

struct IdContext {
  CaptureSeries series;
  RecentStacks* stacks;
  std::size_t max;
};

struct SiteId {
  StackId id = kNoStack;
  std::uint64_t reused = 0;  // capture_ids_reused() during this capture
  std::uintptr_t reference[kMaxStackFrames];
  std::size_t reference_count = 0;
  CallSite site;
};

__attribute__((noinline)) void nested_capture_id(int levels, const IdContext& context, SiteId* out) {
  if (levels > 0) {
    nested_capture_id(levels - 1, context, out);
    __asm__ volatile("" ::: "memory");  // no tail call: keep every frame
    return;
  }
  const std::uint64_t reused_before = capture_ids_reused();
  out->id = capture_stack_id(out->site, context.max, context.series, *context.stacks);
  out->reused = capture_ids_reused() - reused_before;
  out->reference_count = capture_stack_unwind(out->reference, kMaxStackFrames, 0);
}

__attribute__((noinline)) void entry_like_id(const IdContext& context, SiteId* out) {
  out->site = ZHEAP_CALL_SITE();
  nested_capture_id(2, context, out);
  __asm__ volatile("" ::: "memory");
}

// The program's side: `depth` frames of the same function down to the call site, under
// one of two outer callers of the same shape, so that both stacks are the same, stack
// pointers included, up to the return address into the outer caller.
__attribute__((noinline)) void inner_id(int depth, const IdContext& context, SiteId* out) {
  if (depth == 0) {
    entry_like_id(context, out);
  } else {
    inner_id(depth - 1, context, out);
  }
  __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void outer_id_a(const IdContext& context, SiteId* out) {
  inner_id(5, context, out);
  __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void outer_id_b(const IdContext& context, SiteId* out) {
  inner_id(5, context, out);
  __asm__ volatile("nop" ::: "memory");  // not the same code as _a: not folded into one function
}
// An outer caller whose CFA comes from rbp, its frame `bytes` big.
__attribute__((noinline)) void outer_id_rbp(int bytes, const IdContext& context, SiteId* out) {
  volatile char scratch[bytes];
  scratch[0] = 0;
  inner_id(5, context, out);
  __asm__ volatile("" : : "r"(scratch) : "memory");
}

std::vector<std::uintptr_t> frames_of(const StackDepot& depot, StackId id) {
  const std::span<const std::uintptr_t> frames = depot.get(id);
  return {frames.begin(), frames.end()};
}

// libgcc's frames from the site on, at most `max`.
std::vector<std::uintptr_t> reference_from_site(const SiteId& out, std::size_t max) {
  const std::uintptr_t* begin =
      std::find(out.reference, out.reference + out.reference_count, out.site.return_address);
  const std::size_t available = static_cast<std::size_t>(out.reference + out.reference_count - begin);
  return {begin, begin + std::min(available, max)};
}

TEST(StackCaptureId, ReusedForARecentStackAndNeverForAnother) {
  StackDepot depot;
  RecentStacks stacks(depot);
  const IdContext context{CaptureSeries::allocations, &stacks, 30};
  StackId id_of[2] = {kNoStack, kNoStack};
  std::uint64_t reused = 0;
  NO_UNROLL
  for (const char path : std::string_view("aaaabbbbabababaabb")) {
    SiteId out;
    if (path == 'a') {
      outer_id_a(context, &out);
    } else {
      outer_id_b(context, &out);
    }
    ASSERT_NE(out.id, kNoStack);
    ASSERT_GT(out.reference_count, 8u);
    EXPECT_EQ(frames_of(depot, out.id), reference_from_site(out, 30)) << "path " << path;
    StackId& expected = id_of[path - 'a'];
    if (expected == kNoStack) expected = out.id;
    EXPECT_EQ(out.id, expected) << "path " << path;
    reused += out.reused;
  }
  EXPECT_NE(id_of[0], id_of[1]);
  // Both stacks start at the same site, stack pointer included, and part only at the
  // return address into the outer caller: every capture after the first of each path
  // finds its own among the recent ones (16 of 18), and none takes the other's id (the
  // frames and ids above).
  EXPECT_EQ(reused, 16u);
}

// The same paths as outer_id_a/_b with `depth` frames of inner_id(): a stack for each
// depth and caller, its site's stack pointer shared by the two callers at one depth.
__attribute__((noinline)) void outer_id_deep_a(int depth, const IdContext& context, SiteId* out) {
  inner_id(depth, context, out);
  __asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void outer_id_deep_b(int depth, const IdContext& context, SiteId* out) {
  inner_id(depth, context, out);
  __asm__ volatile("nop" ::: "memory");
}

TEST(StackCaptureId, MoreStacksThanTheRecentOnesStayExact) {
  // 48 stacks in a cycle, three times round: more than the series keeps, so they replace
  // one another, and one start has two stacks. Every capture must still get its own
  // stack's id, whether it was found among the recent ones or walked again.
  StackDepot depot;
  RecentStacks stacks(depot);
  const IdContext context{CaptureSeries::allocations, &stacks, 30};
  constexpr int kDepths = 24;
  StackId id_of[kDepths][2] = {};
  NO_UNROLL
  for (int round = 0; round < 3; ++round) {
    NO_UNROLL
    for (int depth = 0; depth < kDepths; ++depth) {
      NO_UNROLL
      for (int caller = 0; caller < 2; ++caller) {
        SiteId out;
        (caller == 0 ? outer_id_deep_a : outer_id_deep_b)(depth, context, &out);
        ASSERT_EQ(frames_of(depot, out.id), reference_from_site(out, 30)) << "depth " << depth << " caller " << caller;
        StackId& expected = id_of[depth][caller];
        if (expected == kNoStack) expected = out.id;
        EXPECT_EQ(out.id, expected) << "depth " << depth << " caller " << caller;
      }
    }
  }
}

TEST(StackCaptureId, AnotherRecentStacksAtTheSameAddressGetsNoStaleId) {
  // A RecentStacks made where another was, in front of another depot (as tests make
  // them): the recent captures hold the first one's ids, which mean other stacks (or
  // nothing) in the second depot. Each round's depot first holds a stack of its own, so
  // the path's id differs from round to round.
  NO_UNROLL
  for (int round = 0; round < 3; ++round) {
    StackDepot depot;
    const std::uintptr_t others[] = {0x1000, 0x2000, 0x3000};
    for (int i = 0; i < round; ++i) ASSERT_NE(depot.insert({others, others + 1 + i}), kNoStack);
    RecentStacks stacks(depot);
    const IdContext context{CaptureSeries::allocations, &stacks, 30};
    NO_UNROLL
    for (int capture = 0; capture < 2; ++capture) {
      SiteId out;
      outer_id_a(context, &out);
      EXPECT_EQ(frames_of(depot, out.id), reference_from_site(out, 30)) << "round " << round;
    }
  }
}

TEST(StackCaptureId, EachSeriesRepeatsItselfWhileTheyAlternate) {
  // A program's allocations from one path and frees from another, in turn: each series
  // keeps its own recent captures, so after the first round every capture reuses its id.
  StackDepot depot;
  RecentStacks stacks(depot);
  const IdContext allocations{CaptureSeries::allocations, &stacks, 30};
  const IdContext frees{CaptureSeries::frees, &stacks, 30};
  constexpr int kRounds = 10;
  std::uint64_t reused = 0;
  NO_UNROLL
  for (int round = 0; round < kRounds; ++round) {
    SiteId allocated;
    outer_id_a(allocations, &allocated);
    SiteId freed;
    outer_id_b(frees, &freed);
    EXPECT_EQ(frames_of(depot, allocated.id), reference_from_site(allocated, 30));
    EXPECT_EQ(frames_of(depot, freed.id), reference_from_site(freed, 30));
    EXPECT_NE(allocated.id, freed.id);
    if (round >= 1) reused += allocated.reused + freed.reused;
  }
  EXPECT_EQ(reused, 2u * (kRounds - 1));
}

TEST(StackCaptureId, OtherDepthsAndFrameSizesGetTheirOwnIds) {
  // The same path with another `max` (the same frames, cut elsewhere), and under a
  // frame addressed from rbp whose size changes: never the previous id by mistake.
  StackDepot depot;
  RecentStacks stacks(depot);
  NO_UNROLL
  for (const std::size_t max : {30, 30, 30, 4, 4, 30, 9, 9, 30, 30}) {
    const IdContext context{CaptureSeries::frees, &stacks, max};
    SiteId out;
    outer_id_a(context, &out);
    EXPECT_EQ(frames_of(depot, out.id), reference_from_site(out, max)) << "max " << max;
  }
  NO_UNROLL
  for (const int bytes : {16, 16, 16, 48, 48, 16, 200, 16, 16}) {
    const IdContext context{CaptureSeries::frees, &stacks, 30};
    SiteId out;
    outer_id_rbp(bytes, context, &out);
    EXPECT_EQ(frames_of(depot, out.id), reference_from_site(out, 30)) << "bytes " << bytes;
  }
}

// ---- a wrong rule near the top of a stack
//
// A cached rule can be wrong for the code now at its address (a library unloaded and
// another mapped there before forget_frame_rules() ran). The walk must then not read
// past the top of the stack it is on. Stood in for here by a site whose return address
// has a large frame's (right) rule but whose stack pointer is a few words below the top
// of a thread's stack, with an inaccessible page range just above that stack.

constexpr std::size_t kLargeFrame = 64 * 1024;

// A return address whose rule is "CFA = rsp + 64 KiB + 16": the address right after the
// call in large_frame_call(), a frame of that size with plain CFI (in assembly, so that
// no compiler or sanitizer changes its size or moves it to rbp).
extern "C" void large_frame_call(void (*callback)(void*), void* arg);
__asm__(R"(
  .text
  .p2align 4
  .type large_frame_call, @function
large_frame_call:
  .cfi_startproc
  subq $65544, %rsp
  .cfi_adjust_cfa_offset 65544
  movq %rdi, %rax
  movq %rsi, %rdi
  call *%rax
  addq $65544, %rsp
  .cfi_adjust_cfa_offset -65544
  ret
  .cfi_endproc
  .size large_frame_call, .-large_frame_call
)");

__attribute__((noinline)) void note_return_address(void* out) {
  *static_cast<std::uintptr_t*>(out) =
      reinterpret_cast<std::uintptr_t>(__builtin_extract_return_addr(__builtin_return_address(0)));
}

std::uintptr_t return_address_in_a_large_frame() {
  std::uintptr_t address = 0;
  large_frame_call(note_return_address, &address);
  return address;
}

struct NearTheTop {
  std::size_t count = SIZE_MAX;
  std::uint64_t fallbacks = 0;
};

TEST(StackCaptureAt, AWrongRuleNearTheTopOfAThreadsStackDoesNotReadPastIt) {
  // The thread's stack, then twice the large frame of PROT_NONE right above it: with the
  // old plausibility bound (1 GiB above the start) the step read there and faulted.
  constexpr std::size_t kStack = 1024 * 1024;
  constexpr std::size_t kGuard = 2 * kLargeFrame;
  void* mapping = mmap(nullptr, kStack + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapping, MAP_FAILED);
  auto* base = static_cast<char*>(mapping);
  ASSERT_EQ(mprotect(base + kStack, kGuard, PROT_NONE), 0);
  const std::uintptr_t large_frame_return = return_address_in_a_large_frame();
  // Its rule, cached: the capture below finds it, as a stale rule would be found.
  const FrameRule rule = frame_rule_cache().rule_at(large_frame_return);
  ASSERT_EQ(rule.kind, FrameRule::Kind::step);
  ASSERT_EQ(rule.cfa_base, FrameRule::CfaBase::rsp);
  ASSERT_GT(rule.cfa_offset, static_cast<decltype(rule.cfa_offset)>(kLargeFrame)) << "the frame is not that large";

  pthread_attr_t attributes;
  ASSERT_EQ(pthread_attr_init(&attributes), 0);
  ASSERT_EQ(pthread_attr_setstack(&attributes, base, kStack), 0);
  struct Job {
    std::uintptr_t return_address;
    NearTheTop result;
  } job{large_frame_return, {}};
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, &attributes,
                [](void* arg) -> void* {
                  auto* job = static_cast<Job*>(arg);
                  // glibc keeps the thread pointer (TCB, static TLS below it) at the top of
                  // the stack it is given; the made-up site's stack pointer is just below.
                  const auto top = reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
                  const CallSite site{job->return_address, (top - 32) & ~std::uintptr_t{15}, 0};
                  std::uintptr_t frames[8];
                  const std::uint64_t before = capture_fallback_count();
                  job->result.count = capture_stack_at(frames, 8, site);
                  job->result.fallbacks = capture_fallback_count() - before;
                  return nullptr;
                },
                &job),
            0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attributes);
  munmap(mapping, kStack + kGuard);
  // The step would have gone past the top: the walk gave up on it and fell back, and
  // _Unwind_Backtrace, which walks the real stack, does not find the made-up site.
  EXPECT_EQ(job.result.fallbacks, 1u);
  EXPECT_EQ(job.result.count, 0u);
}

}  // namespace
}  // namespace zheap::debug
