#include "debug/stack_capture.hpp"

#include "debug/frame_rule_cache.hpp"
#include "debug/thread_slot.hpp"

#include <atomic>
#include <cstring>

#include <unwind.h>

// ld.so's: the stack pointer the process started with (glibc exports it; no header declares it).
extern "C" void* __libc_stack_end;

// capture_stack()'s entry: reads the caller's registers as they are at the call and jumps
// (not calls) to the walker with them as extra arguments, so the walker returns straight
// to capture_stack()'s caller and the entry never appears on the stack.
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
constexpr std::uintptr_t kMaxStackSpan = std::uintptr_t{1} << 30;

// How far above `sp` (the walk's start) a walk may read: up to the top of the stack `sp`
// is on, where that is known. A cached rule can be wrong (a library unloaded and another
// one mapped at its addresses before forget_frame_rules() ran), and a wrong CFA must
// not make the walk read past the stack's mapping and fault in the program.
//  - A glibc thread's stack ends just below its thread pointer (x86-64 keeps the TCB at
//    the thread pointer, the static TLS just below it, and glibc puts both at the top of
//    the thread's stack mapping, user-supplied stacks included; the thread pointer is
//    pthread_self()).
//  - The main thread's frames all lie below the stack pointer the kernel started the
//    process with (__libc_stack_end; argc, argv, the environment and auxv above it).
//  - Anything else (a coroutine's or sigaltstack's stack, a clone() without glibc):
//    kMaxStackSpan, as plausibility only.
// pthread_getattr_np() would give exact bounds but allocates (the affinity mask, and for
// the main thread glibc reads /proc/self/maps with stdio).
std::uintptr_t readable_stack_span(std::uintptr_t sp) noexcept {
  const auto thread_top = reinterpret_cast<std::uintptr_t>(__builtin_thread_pointer());
  if (sp < thread_top && thread_top - sp <= kMaxStackSpan) return thread_top - sp;
  const auto main_top = reinterpret_cast<std::uintptr_t>(__libc_stack_end);
  if (sp < main_top && main_top - sp <= kMaxStackSpan) return main_top - sp;
  return kMaxStackSpan;
}

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
// frames. The frames above `first` are dropped by address, not by count, so inlining
// decisions cannot shift the result: for capture_stack() this function and the walker,
// for capture_stack_at() also the allocator's frames between its entry and the capture.
// Empty when `first` is not among them.
__attribute__((noinline)) std::size_t unwind_from(std::uintptr_t first, std::uintptr_t* frames, std::size_t max,
                                                  std::size_t skip) noexcept {
  constexpr std::size_t kAbove = 16;  // frames of ours above `first`, with room to spare
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

// ---- the memo of the previous capture
//
// Consecutive captures on a thread mostly share their outer frames (the same loop in the
// same function called from the same place), and a step's outcome depends only on the
// frame's state: its return address, its stack pointer, and rbp where the rule computes
// the CFA from rbp. The memo keeps, per thread slot, what each step of the previous
// capture came to (the CFA and where rbp was saved); a frame whose state equals the
// previous capture's frame at the same stack pointer takes that outcome instead of a
// rule-cache lookup and its checks. The return addresses and saved rbp values are still
// read from the stack at every step, so the result is exactly what the plain walk gives:
// the memo skips computing the rule, never reading the stack. What is saved is the
// lookup's dependent loads (hash, slot, rule: a likely L2/L3 miss per frame on a large
// program), and because a memo hit's next address does not depend on the stack word just
// loaded, the loads of consecutive frames overlap.

// One step of a walk: the frame's state, and where its rule took the walk.
struct MemoFrame {
  std::uintptr_t pc;
  std::uintptr_t sp;
  std::uintptr_t rbp;           // compared only when the CFA came from rbp
  std::uintptr_t cfa_and_flag;  // the CFA, bit 0 set when computed from rbp; 0: the stack ended here
  std::uintptr_t rbp_saved_at;  // where the frame saved its caller's rbp; 0 when it did not
};
constexpr std::uintptr_t kCfaFromRbp = 1;

// The allocator asks for 30 frames; deeper steps are simply not memoised (they take the
// rule cache, as without a memo).
constexpr std::size_t kMemoFrames = 64;

// Frames that miss the memo (the inner ones, whose stack pointers move from capture to
// capture) are mostly the same few return addresses again: the program's allocation
// wrappers and the loops that call them. Each memo keeps a small direct-mapped cache of the
// rules it looked up last, dense and hot in L1, in front of the process-wide rule cache
// (a 1 MiB table whose slots are spread apart by the hash: a cache miss per lookup).
struct RecentRule {
  std::uintptr_t pc;  // 0: empty (no return address is 0; a walk stops there)
  std::uint64_t rule;
};
constexpr std::size_t kRecentRules = 256;

// The previous capture of one series (CaptureSeries) on one thread. Two buffers: the walk
// reads the previous capture from one while writing the new one into the other. The
// previous capture is a window of its buffer: a capture that ends by following the
// previous one to its end keeps the steps it shares with it where they are and writes only
// its own inner steps just before them (MemoLease::follow()), instead of copying the
// shared steps (most of a deep stack) into the other buffer.
struct SeriesMemo {
  std::uint8_t previous = 0;  // which buffer holds the previous capture
  std::uint32_t previous_count = 0;
  const MemoFrame* window = frames[0];  // the previous capture: previous_count steps of that buffer
  // What else previous_again() and the walk's own check need of the previous capture: the
  // `max` it was walked with, its frame count, the word its last step read (the frame that
  // reached `max`, or the zero return address that ended the stack), and its id in
  // `id_from` (kNoStack: none known).
  std::uint32_t previous_max = 0;
  std::uint32_t previous_frames = 0;
  std::uintptr_t last_read = 0;
  StackId previous_id = kNoStack;
  const RecentStacks* id_from = nullptr;
  // The previous capture was the one before it again: the next is worth trying
  // previous_again() on (in a loop it is; on sqlite, three captures in four are not, and
  // a failed try costs a few frames' loads).
  bool repeating = false;
  MemoFrame frames[2][kMemoFrames]{};
};

// One per thread slot (thread_slot.hpp), used only by a thread that holds its slot
// exclusively (the first kThreadSlots threads of the process; later ones walk without a
// memo, as before it existed): taking a memo shared between threads would need a locked
// instruction, whose store-buffer drain cost a fifth of the walk on sqlite. `busy` only
// guards against the thread itself: a capture in a signal handler that interrupted one.
// A memo per series: a thread's allocations and frees alternate between call paths of
// their own, so each series repeats itself far more often than the two together do (the
// captures equal to the one before in the same series, against the one before of either:
// larson 99.99% against 0.4%, containers 69% against 46%, sqlite 25% against 20%).
struct alignas(64) StackMemo {
  std::atomic<bool> busy{false};
  std::uint64_t generation = 0;  // the rule cache's generation it was made with
  // capture_stack_id() calls that reused the previous capture's id (written by the
  // owner only, with plain stores; read by capture_ids_reused()).
  std::atomic<std::uint64_t> ids_reused{0};
  SeriesMemo series[kCaptureSeries];
  RecentRule recent[kRecentRules]{};  // shared by the series: the rules are the program's
};

constinit StackMemo memos[kThreadSlots];

void count_reuse(StackMemo& memo) noexcept {
  memo.ids_reused.store(memo.ids_reused.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// A walk's use of the calling thread's memo for one series: the lookups, the recording,
// and at the end either commit() (the new capture becomes the previous one) or, on a
// fallback, nothing (the memo is emptied: a walk that fell back has no complete record).
class MemoLease {
 public:
  MemoLease(std::uint64_t generation, CaptureSeries series) noexcept {
    const std::size_t slot = exclusive_thread_slot();
    if (slot == kThreadSlots) return;
    StackMemo* memo = &memos[slot];
    if (!lease_.take(memo->busy)) return;  // we interrupted our own capture
    memo_ = memo;
    if (memo->generation != generation) {  // rules were forgotten (dlclose): outcomes may differ
      memo->generation = generation;
      for (SeriesMemo& each : memo->series) each.previous_count = 0;
      for (RecentRule& entry : memo->recent) entry = RecentRule{};
    }
    series_ = &memo->series[static_cast<std::size_t>(series)];
    previous_ = series_->window;
    previous_count_ = series_->previous_count;
    fresh_ = series_->frames[series_->previous ^ 1];
  }

  ~MemoLease() {
    if (memo_ == nullptr) return;
    SeriesMemo& series = *series_;
    if (committed_ && in_place_count_ != 0) {
      series.window = series.frames[series.previous] + in_place_base_;
      series.previous_count = static_cast<std::uint32_t>(in_place_count_);
    } else if (committed_) {
      series.previous ^= 1;
      series.window = series.frames[series.previous];
      series.previous_count = static_cast<std::uint32_t>(fresh_count_);
    } else {
      series.previous_count = 0;
    }
    series.previous_max = static_cast<std::uint32_t>(max_);
    series.previous_frames = static_cast<std::uint32_t>(frames_);
    series.last_read = last_read_;
    series.previous_id = id_;
    series.id_from = id_from_;
    series.repeating = committed_ && same_as_previous_;
  }

  MemoLease(const MemoLease&) = delete;
  MemoLease& operator=(const MemoLease&) = delete;

  // The previous capture's step from this same state, or nullptr. Stack pointers grow
  // along a walk, so one cursor moving forward finds the candidate.
  [[gnu::always_inline]] const MemoFrame* previous_step(std::uintptr_t pc, std::uintptr_t sp,
                                                        std::uintptr_t rbp) noexcept {
    while (cursor_ < previous_count_ && previous_[cursor_].sp < sp) ++cursor_;
    if (cursor_ == previous_count_) return nullptr;
    const MemoFrame& step = previous_[cursor_];
    if (step.sp != sp || step.pc != pc) return nullptr;
    if ((step.cfa_and_flag & kCfaFromRbp) != 0 && step.rbp != rbp) return nullptr;
    return &step;
  }

  // The packed rule at `pc`: from the memo's recent rules, else from the process cache.
  [[gnu::always_inline]] std::uint64_t rule_at(std::uintptr_t pc, FrameRuleCache& cache) noexcept {
    if (memo_ == nullptr) return cache.packed_rule_at(pc);
    RecentRule& entry = memo_->recent[(pc * 0x9E3779B97F4A7C15ull) >> 56];
    static_assert(kRecentRules == 256, "the index above takes the hash's top 8 bits");
    if (entry.pc == pc) return entry.rule;
    const std::uint64_t rule = cache.packed_rule_at(pc);
    entry = RecentRule{pc, rule};
    return rule;
  }

  [[gnu::always_inline]] void record(const MemoFrame& step) noexcept {
    if (memo_ != nullptr && fresh_count_ < kMemoFrames) fresh_[fresh_count_++] = step;
  }

  // How follow() left the walk.
  enum class Followed {
    ended,     // the stack ended, or `max` frames were taken: the capture is complete
    diverged,  // (pc, sp, rbp) is a frame the previous capture did not reach in this state
    fallback,  // a step left the plausible stack span
  };

  // After previous_step() returned `known` for the frame just taken: takes the previous
  // capture's steps from there for as long as the stack still holds what it held then,
  // which in a loop is mostly to the end of the stack. A step's next frame is the stack
  // word at CFA-8 and rbp from where it was saved; while both equal the state the next
  // memo frame records (its sp is this step's CFA by construction), that frame's step is
  // known too. So per frame: two loads whose addresses come from the memo, not from the
  // word just loaded (they overlap), one comparison, and the steps go to the new memo at
  // once (a copy, or none when the capture ends here: see the end), instead of the
  // general loop's cursor search, checks and record.
  // Exactly the general loop's result, frames and memo alike (the same checks; the span
  // check once at the end, which fails exactly when one of the steps' would).
  [[gnu::always_inline]] Followed follow(const MemoFrame* known, std::uintptr_t* frames, std::size_t& count,
                                         std::size_t max, std::uintptr_t& pc, std::uintptr_t& sp,
                                         std::uintptr_t& rbp, std::uintptr_t stack_start,
                                         std::uintptr_t stack_span) noexcept {
    const bool from_first = known == previous_ && count == 1;
    const MemoFrame* step = known;
    const MemoFrame* const end = previous_ + previous_count_;
    std::uintptr_t cfa = 0;  // the last step's
    Followed outcome;
    for (;;) {
      const std::uintptr_t cfa_and_flag = step->cfa_and_flag;
      if (cfa_and_flag == 0) {  // the previous capture's end of stack
        ++step;
        outcome = Followed::ended;
        break;
      }
      cfa = cfa_and_flag & ~kCfaFromRbp;
      if (step->rbp_saved_at != 0) rbp = *reinterpret_cast<const std::uintptr_t*>(step->rbp_saved_at);
      pc = *reinterpret_cast<const std::uintptr_t*>(cfa - 8);
      ++step;
      if (step == end || step->pc != pc || ((step->cfa_and_flag & kCfaFromRbp) != 0 && step->rbp != rbp)) {
        // A zero return address ends the stack (the general loop's rule); no memo frame
        // holds one, so it is always a mismatch and costs nothing on the way here.
        outcome = pc == 0 ? Followed::ended : Followed::diverged;
        break;
      }
      frames[count++] = pc;
      if (count == max) {
        outcome = Followed::ended;
        break;
      }
    }
    if (cfa != 0) {
      // The span check once, on the last CFA: CFAs only grow along a memo (each step's
      // stack pointer is the CFA before it, and the CFA lies above it), so the last is
      // the farthest. The loads above were all of this thread's stack, read by the
      // capture that made the memo.
      if (cfa - stack_start > stack_span) return Followed::fallback;
      sp = cfa;
    }
    const std::size_t taken = static_cast<std::size_t>(step - known);
    if (outcome == Followed::ended) {
      followed_whole_ = from_first;
      // The walk is complete. When the steps taken so far fit just before `known` in the
      // previous buffer (whose steps before `known` no lookup will read again), they go
      // there and the capture is that window: what the copy below would have built.
      MemoFrame* const buffer = series_->frames[series_->previous];
      const auto known_index = static_cast<std::size_t>(known - buffer);
      if (fresh_count_ <= known_index) {
        in_place_base_ = known_index - fresh_count_;
        std::memcpy(buffer + in_place_base_, fresh_, fresh_count_ * sizeof(MemoFrame));
        in_place_count_ = fresh_count_ + taken;  // at least `known` itself: never 0
        return outcome;
      }
    }
    const std::size_t room = kMemoFrames - fresh_count_;
    std::memcpy(fresh_ + fresh_count_, known, (taken < room ? taken : room) * sizeof(MemoFrame));
    fresh_count_ += taken < room ? taken : room;
    cursor_ = static_cast<std::size_t>(step - previous_);
    return outcome;
  }

  // The walk (with `max`) is complete with `frames` frames: the new capture becomes the
  // previous one. `last_read`: the word its last step read (the frame that reached `max`,
  // else 0). It is the previous capture again when follow() took that capture whole:
  // entered at its first step with the first frame, ended, and with as many frames (so
  // neither walk stopped at another depth).
  void commit(std::size_t max, std::size_t frames, std::uintptr_t last_read) noexcept {
    committed_ = true;
    max_ = max;
    frames_ = frames;
    last_read_ = last_read;
    same_as_previous_ = followed_whole_ && frames == series_->previous_frames && max == series_->previous_max;
  }

  // The previous capture's id in `stacks` when the committed capture is the same stack;
  // else kNoStack.
  StackId previous_id_if_same(const RecentStacks& stacks) const noexcept {
    if (memo_ == nullptr || !same_as_previous_ || series_->id_from != &stacks) return kNoStack;
    return series_->previous_id;
  }

  void count_reuse() noexcept {
    if (memo_ != nullptr) debug::count_reuse(*memo_);
  }

  // This capture's id in `stacks`, for the next capture of the series.
  void remember_id(StackId id, const RecentStacks& stacks) noexcept {
    id_ = id;
    id_from_ = &stacks;
  }

 private:
  SelfLease lease_;  // first: released after the destructor's body has used the memo
  StackMemo* memo_ = nullptr;
  SeriesMemo* series_ = nullptr;
  const MemoFrame* previous_ = nullptr;
  std::size_t previous_count_ = 0;
  std::size_t cursor_ = 0;
  MemoFrame* fresh_ = nullptr;
  std::size_t fresh_count_ = 0;
  bool committed_ = false;
  std::size_t max_ = 0;
  std::size_t frames_ = 0;
  std::uintptr_t last_read_ = 0;
  bool followed_whole_ = false;    // follow() took the previous capture from its first step to the end
  bool same_as_previous_ = false;  // the committed capture is the previous one again
  StackId id_ = kNoStack;
  const RecentStacks* id_from_ = nullptr;
  // Not 0: follow() left the capture in the previous buffer, this window of it.
  std::size_t in_place_base_ = 0;
  std::size_t in_place_count_ = 0;
};

// The previous capture's id in `stacks`, when a walk of the calling thread's `series`
// from `site` with `max` would give that capture again, frame for frame; else kNoStack.
// Nothing is walked: same start, and every stack word the previous walk's result depended
// on still holds what it read: each step's return address (the next step's pc, or the
// last step's word), and the rbp values that later steps computed their CFA from, as
// follow() compares them. The steps' rules come from the same generation, so the walk
// would take the same steps to the same end; its span check, relative to the start, would
// pass as the previous walk's did. The memo stays as it is. Only where it holds the whole
// previous walk: at most kMemoFrames frames.
StackId previous_again(const CallSite& site, std::size_t max, CaptureSeries series,
                       const RecentStacks& stacks) noexcept {
  const std::size_t slot = exclusive_thread_slot();
  if (slot == kThreadSlots) return kNoStack;
  StackMemo& memo = memos[slot];
  const SeriesMemo& previous = memo.series[static_cast<std::size_t>(series)];
  // `repeating` read before the lease: only a signal handler of this thread writes it
  // meanwhile, and it is read again below.
  if (!previous.repeating) return kNoStack;
  SelfLease lease;
  if (!lease.take(memo.busy) || memo.generation != frame_rule_cache().generation()) return kNoStack;
  if (!previous.repeating || previous.previous_count == 0 || previous.previous_id == kNoStack ||
      previous.id_from != &stacks || previous.previous_max != max || max > kMemoFrames)
    return kNoStack;
  const MemoFrame* step = previous.window;
  std::uintptr_t rbp = site.frame_pointer;
  if (step->pc != site.return_address || step->sp != site.stack_pointer ||
      ((step->cfa_and_flag & kCfaFromRbp) != 0 && step->rbp != rbp))
    return kNoStack;
  const MemoFrame* const last = step + previous.previous_count - 1;
  for (; step != last; ++step) {  // a step before the last has a CFA (0 ends a walk)
    if (step->rbp_saved_at != 0) rbp = *reinterpret_cast<const std::uintptr_t*>(step->rbp_saved_at);
    const std::uintptr_t cfa = step->cfa_and_flag & ~kCfaFromRbp;
    if (*reinterpret_cast<const std::uintptr_t*>(cfa - 8) != step[1].pc) return kNoStack;
    if ((step[1].cfa_and_flag & kCfaFromRbp) != 0 && step[1].rbp != rbp) return kNoStack;
  }
  if (last->cfa_and_flag != 0 &&
      *reinterpret_cast<const std::uintptr_t*>((last->cfa_and_flag & ~kCfaFromRbp) - 8) != previous.last_read)
    return kNoStack;
  count_reuse(memo);
  return previous.previous_id;
}

// The walk: the stack from the frame whose registers are (pc, sp, rbp), minus `skip`
// frames, at most `max` (up to kMaxStackFrames), with `memo` (made with `cache`'s
// generation) for its lookups.
// Inlined into both callers: the lease's state then stays in registers (a call with the
// lease in memory cost sqlite 4% of its instructions).
[[gnu::always_inline]] inline std::size_t walk(FrameRuleCache& cache, MemoLease& memo, std::uintptr_t* frames,
                                               std::size_t max, std::size_t skip, std::uintptr_t pc,
                                               std::uintptr_t sp, std::uintptr_t rbp) noexcept {
  const std::uintptr_t first = pc;
  const std::size_t first_skip = skip;
  const std::uintptr_t stack_start = sp;
  const std::uintptr_t stack_span = readable_stack_span(sp);
  std::size_t count = 0;
  // follow() takes frames without counting `depth`; the bound still holds, as `count`
  // reaches `max` (at most kMaxStackFrames) first once no frame is skipped.
  for (std::size_t depth = 0; depth < kMaxStackFrames + first_skip; ++depth) {
    const bool skipped = skip > 0;
    if (skipped) {
      --skip;
    } else {
      if (count < max) frames[count++] = pc;
      if (count == max) break;
    }
    std::uintptr_t cfa;
    std::uintptr_t rbp_saved_at;
    if (const MemoFrame* known = memo.previous_step(pc, sp, rbp)) {
      if (!skipped) {  // frames[] holds this frame: follow() takes it from here
        switch (memo.follow(known, frames, count, max, pc, sp, rbp, stack_start, stack_span)) {
          case MemoLease::Followed::ended: goto complete;
          case MemoLease::Followed::diverged: continue;
          case MemoLease::Followed::fallback: goto fallback;
        }
      }
      memo.record({pc, sp, rbp, known->cfa_and_flag, known->rbp_saved_at});
      if (known->cfa_and_flag == 0) break;  // end of stack
      cfa = known->cfa_and_flag & ~kCfaFromRbp;
      rbp_saved_at = known->rbp_saved_at;
      // The one check that depends on more than the frame's state: the span from this
      // walk's start (the other checks passed when the memo was made).
      if (cfa - stack_start > stack_span) goto fallback;
    } else {
      const std::uint64_t rule = memo.rule_at(pc, cache);
      const FrameRule::Kind kind = FrameRule::packed_kind(rule);
      if (kind == FrameRule::Kind::end_of_stack) {
        memo.record({pc, sp, rbp, 0, 0});
        break;
      }
      if (kind != FrameRule::Kind::step) goto fallback;
      const bool from_rbp = FrameRule::packed_cfa_from_rbp(rule);
      const std::uintptr_t base = from_rbp ? rbp : sp;
      cfa = base + static_cast<std::uintptr_t>(FrameRule::packed_cfa_offset(rule));
      if (cfa <= sp || cfa - stack_start > stack_span || (cfa & 7) != 0) goto fallback;
      rbp_saved_at = FrameRule::packed_rbp_saved(rule)
                         ? cfa + static_cast<std::uintptr_t>(FrameRule::packed_rbp_offset(rule))
                         : 0;
      memo.record({pc, sp, rbp, cfa | (from_rbp ? kCfaFromRbp : 0), rbp_saved_at});
    }
    if (rbp_saved_at != 0) rbp = *reinterpret_cast<const std::uintptr_t*>(rbp_saved_at);
    pc = *reinterpret_cast<const std::uintptr_t*>(cfa - 8);
    sp = cfa;
    if (pc == 0) break;  // some outermost frames end the chain with a zero return address
  }
complete:
  memo.commit(max, count, count == max ? frames[count - 1] : 0);
  return count;

fallback:
  fallback_captures.fetch_add(1, std::memory_order_relaxed);
  return unwind_from(first, frames, max, first_skip);
}

}  // namespace

// The walker behind capture_stack() (through its assembly entry) and capture_stack_at(),
// in the allocations' series.
extern "C" __attribute__((visibility("hidden"), used, noinline)) std::size_t zheap_debug_walk_stack(
    std::uintptr_t* frames, std::size_t max, std::size_t skip, std::uintptr_t pc, std::uintptr_t sp,
    std::uintptr_t rbp) noexcept {
  if (max > kMaxStackFrames) max = kMaxStackFrames;
  FrameRuleCache& cache = frame_rule_cache();
  MemoLease memo(cache.generation(), CaptureSeries::allocations);
  return walk(cache, memo, frames, max, skip, pc, sp, rbp);
}

std::size_t capture_stack_at(std::uintptr_t* frames, std::size_t max, const CallSite& site) noexcept {
  return zheap_debug_walk_stack(frames, max, 0, site.return_address, site.stack_pointer, site.frame_pointer);
}

namespace {
// capture_stack_id() when the stack is not the series' previous one again: walked,
// interned, and remembered for the next capture.
[[gnu::noinline]] StackId walk_and_intern(const CallSite& site, std::size_t max, CaptureSeries series,
                                          RecentStacks& stacks) noexcept {
  std::uintptr_t frames[kMaxStackFrames];
  FrameRuleCache& cache = frame_rule_cache();
  MemoLease memo(cache.generation(), series);
  const std::size_t count =
      walk(cache, memo, frames, max, 0, site.return_address, site.stack_pointer, site.frame_pointer);
  if (const StackId same = memo.previous_id_if_same(stacks); same != kNoStack) {
    memo.remember_id(same, stacks);
    memo.count_reuse();
    return same;
  }
  const StackId id = stacks.intern({frames, count});
  memo.remember_id(id, stacks);
  return id;
}
}  // namespace

StackId capture_stack_id(const CallSite& site, std::size_t max, CaptureSeries series, RecentStacks& stacks) noexcept {
  if (max > kMaxStackFrames) max = kMaxStackFrames;
  if (const StackId again = previous_again(site, max, series, stacks); again != kNoStack) return again;
  return walk_and_intern(site, max, series, stacks);
}

std::size_t capture_stack_unwind(std::uintptr_t* frames, std::size_t max, std::size_t skip) noexcept {
  if (max > kMaxStackFrames) max = kMaxStackFrames;
  return unwind_from(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)), frames, max, skip);
}

AddressRange stack_memo_range() noexcept {
  const auto begin = reinterpret_cast<std::uintptr_t>(&memos[0]);
  return AddressRange{begin, begin + sizeof memos};
}

void forget_frame_rules() noexcept { frame_rule_cache().invalidate(); }

std::uint64_t capture_ids_reused() noexcept {
  std::uint64_t total = 0;
  for (const StackMemo& memo : memos) total += memo.ids_reused.load(std::memory_order_relaxed);
  return total;
}

std::uint64_t capture_fallback_count() noexcept { return fallback_captures.load(std::memory_order_relaxed); }

}  // namespace zheap::debug
