#include "debug/stack_capture.hpp"

#include "debug/frame_rule_cache.hpp"

#include <atomic>

#include <unwind.h>

// The entry: reads the caller's registers as they are at the call and jumps (not calls)
// to the walker with them as extra arguments, so the walker returns straight to
// capture_stack()'s caller and the entry never appears on the stack.
//   rdi frames, rsi max, rdx skip (untouched)  ->  rcx pc, r8 sp, r9 rbp
__asm__(R"(
  .text
  .p2align 4
  .globl zheap_debug_capture_stack
  .hidden zheap_debug_capture_stack
  .type zheap_debug_capture_stack, @function
zheap_debug_capture_stack:
  .cfi_startproc
  movq (%rsp), %rcx
  leaq 8(%rsp), %r8
  movq %rbp, %r9
  jmp zheap_debug_walk_stack
  .cfi_endproc
  .size zheap_debug_capture_stack, .-zheap_debug_capture_stack
)");

namespace zheap::debug {
namespace {

constinit std::atomic<std::uint64_t> fallback_captures{0};

// No thread stack on Linux is anywhere near this deep (the main thread's default limit is
// 8 MiB, `ulimit -s unlimited` aside); a step beyond it is a wrong rule, not a deep stack.
// The exact bounds (pthread_getattr_np) are not used because they allocate for the main
// thread (glibc reads /proc/self/maps with stdio).
constexpr std::uintptr_t kMaxStackSpan = std::uintptr_t{1} << 30;

struct UnwindBuffer {
  std::uintptr_t* frames;
  std::size_t count;
  std::size_t capacity;
};

_Unwind_Reason_Code collect_frame(_Unwind_Context* context, void* arg) {
  auto* buffer = static_cast<UnwindBuffer*>(arg);
  if (buffer->count == buffer->capacity) return _URC_END_OF_STACK;
  const std::uintptr_t ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  buffer->frames[buffer->count++] = ip;
  return _URC_NO_REASON;
}

// _Unwind_Backtrace's stack from the frame whose return address is `first`, minus `skip`
// frames. The frames above `first` (this function, the walker) are dropped by address,
// not by count, so inlining decisions cannot shift the result.
__attribute__((noinline)) std::size_t unwind_from(std::uintptr_t first, std::uintptr_t* frames, std::size_t max,
                                                  std::size_t skip) noexcept {
  constexpr std::size_t kAbove = 8;  // frames of ours above `first`, with room to spare
  std::uintptr_t all[kMaxStackFrames + kAbove];
  UnwindBuffer buffer{all, 0, kMaxStackFrames + kAbove};
  _Unwind_Backtrace(collect_frame, &buffer);
  std::size_t start = 0;
  while (start < buffer.count && start < kAbove && all[start] != first) ++start;
  if (start == buffer.count || all[start] != first) return 0;
  start += skip;
  std::size_t count = 0;
  for (std::size_t i = start; i < buffer.count && count < max; ++i) frames[count++] = all[i];
  return count;
}

}  // namespace

extern "C" __attribute__((visibility("hidden"), used)) std::size_t zheap_debug_walk_stack(
    std::uintptr_t* frames, std::size_t max, std::size_t skip, std::uintptr_t pc, std::uintptr_t sp,
    std::uintptr_t rbp) noexcept {
  if (max > kMaxStackFrames) max = kMaxStackFrames;
  const std::uintptr_t first = pc;
  const std::size_t first_skip = skip;
  const std::uintptr_t stack_start = sp;
  FrameRuleCache& cache = frame_rule_cache();
  std::size_t count = 0;
  for (std::size_t depth = 0; count < max && depth < kMaxStackFrames + skip; ++depth) {
    if (skip > 0) {
      --skip;
    } else {
      frames[count++] = pc;
      if (count == max) break;
    }
    const std::uint64_t rule = cache.packed_rule_at(pc);
    const FrameRule::Kind kind = FrameRule::packed_kind(rule);
    if (kind == FrameRule::Kind::end_of_stack) break;
    if (kind != FrameRule::Kind::step) goto fallback;
    {
      const std::uintptr_t base = FrameRule::packed_cfa_from_rbp(rule) ? rbp : sp;
      const std::uintptr_t cfa = base + static_cast<std::uintptr_t>(FrameRule::packed_cfa_offset(rule));
      if (cfa <= sp || cfa - stack_start > kMaxStackSpan || (cfa & 7) != 0) goto fallback;
      if (FrameRule::packed_rbp_saved(rule)) {
        const std::uintptr_t saved_at = cfa + static_cast<std::uintptr_t>(FrameRule::packed_rbp_offset(rule));
        rbp = *reinterpret_cast<const std::uintptr_t*>(saved_at);
      }
      pc = *reinterpret_cast<const std::uintptr_t*>(cfa - 8);
      sp = cfa;
      if (pc == 0) break;  // some outermost frames end the chain with a zero return address
    }
  }
  return count;

fallback:
  fallback_captures.fetch_add(1, std::memory_order_relaxed);
  return unwind_from(first, frames, max, first_skip);
}

std::size_t capture_stack_unwind(std::uintptr_t* frames, std::size_t max, std::size_t skip) noexcept {
  if (max > kMaxStackFrames) max = kMaxStackFrames;
  return unwind_from(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)), frames, max, skip);
}

void forget_frame_rules() noexcept { frame_rule_cache().invalidate(); }

std::uint64_t capture_fallback_count() noexcept { return fallback_captures.load(std::memory_order_relaxed); }

}  // namespace zheap::debug
