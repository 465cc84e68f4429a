#include "debug/stack_capture.hpp"

#include "debug/frame_rule_cache.hpp"
#include "debug/thread_slot.hpp"

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <emmintrin.h>
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

// ---- the recent captures and their ids
//
// A walk's result depends only on where it starts (the site's return address and stack
// pointer, and rbp when a step computes its CFA from rbp), on the rules (the same within a
// generation of the rule cache), and on the stack words it read: each step's return
// address, and the saved rbp values that later steps computed their CFA from. A capture
// whose start and words are those of a recent capture of the series would walk the same
// steps to the same frames, so it takes that capture's id: no walk, no interning, one load
// and compare per word. Each series keeps its recent captures as those words (where, and
// what they held) with their ids. A thread's allocations (and its frees) cycle through a
// few dozen stacks: sqlite under debug mode, 808 distinct stacks in 1.56 million captures,
// finds 99.9% of its captures among the series' last 32 (24% in the previous one alone),
// larson and containers 99.96% and more.

// Words checked per capture: 30 frames' return addresses (the default depth) and room for
// rbp values. A capture that reads more is not kept (deeper stack_depth settings walk).
constexpr std::size_t kRecentCaptureWords = 40;
// How many a series keeps, a new one replacing the oldest. Not in sets by
// their start: the stacks that start at one site (the program's allocation wrapper at one
// depth) differ only further out, sqlite's cycle has 16 of them at one site, and sets of
// 8 filled up whenever two busy sites shared one (83% found instead of 99.9%, by where
// the stack happened to lie).
constexpr std::size_t kRecentCaptures = 32;

struct RecentCapture {
  std::uintptr_t pc = 0;  // the start
  std::uintptr_t sp = 0;
  std::uintptr_t rbp = 0;  // compared only when rbp_matters
  StackId id = kNoStack;
  std::uint16_t max = 0;        // the depth asked for: another depth cuts the stack elsewhere
  std::uint8_t words = 0;
  bool rbp_matters = false;  // a step computed its CFA from the site's own rbp
  std::uint32_t offset[kRecentCaptureWords];     // each word's address, from sp
  std::uintptr_t expected[kRecentCaptureWords];  // what it held
};

// The previous capture of one series (CaptureSeries) on one thread, and its recent ones.
// Two buffers: the walk reads the previous capture from one while writing the new one into
// the other. The previous capture is a window of its buffer: a capture that ends by
// following the previous one to its end keeps the steps it shares with it where they are
// and writes only its own inner steps just before them (MemoLease::follow()), instead of
// copying the shared steps (most of a deep stack) into the other buffer.
struct SeriesMemo {
  std::uint8_t previous = 0;  // which buffer holds the previous capture
  std::uint32_t previous_count = 0;
  const MemoFrame* window = frames[0];  // the previous capture: previous_count steps of that buffer
  std::uint8_t next_replaced = 0;       // the recent capture that the next one replaces
  std::uint64_t ids_from = 0;           // the RecentStacks::serial() whose ids the recent captures hold
  MemoFrame frames[2][kMemoFrames]{};
  // Each recent capture's start, mixed (recent_capture_tag()), dense: a lookup compares
  // the tags (one line, four vector compares), and reads an entry (about half a KiB) only
  // where its tag is the start's. Tag 0: an empty entry.
  alignas(64) std::uint16_t recent_tags[kRecentCaptures]{};
  RecentCapture recent[kRecentCaptures]{};
};

// A start's tag: never 0.
std::uint16_t recent_capture_tag(std::uintptr_t pc, std::uintptr_t sp) noexcept {
  return static_cast<std::uint16_t>(((pc ^ (sp * 0xC2B2AE3D27D4EB4Full)) * 0x9E3779B97F4A7C15ull) >> 48) | 1;
}

// Which of the series' recent captures have `tag`: a bit per entry. (SSE2, which every
// x86-64 has: a loop over the entries took a fifth of sqlite's instructions.)
std::uint32_t recent_captures_tagged(const SeriesMemo& series, std::uint16_t tag) noexcept {
  static_assert(kRecentCaptures == 32, "four vectors of eight tags, a bit per entry in 32 bits");
  const __m128i wanted = _mm_set1_epi16(static_cast<short>(tag));
  const auto* tags = reinterpret_cast<const __m128i*>(series.recent_tags);
  const auto equal = [&](int i) { return _mm_cmpeq_epi16(_mm_load_si128(tags + i), wanted); };
  // Each pack narrows two vectors of 16-bit results to one of bytes, in entry order.
  const auto low = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_packs_epi16(equal(0), equal(1))));
  const auto high = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_packs_epi16(equal(2), equal(3))));
  return low | high << 16;
}

void forget_recent_captures(SeriesMemo& series) noexcept {
  for (std::uint16_t& tag : series.recent_tags) tag = 0;
}

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
  // capture_stack_id() calls that found a recent capture's id (written by the owner only,
  // with plain stores; read by capture_ids_reused()).
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
      for (SeriesMemo& each : memo->series) {
        each.previous_count = 0;
        forget_recent_captures(each);
      }
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

  // The walk is complete: the new capture becomes the previous one.
  void commit() noexcept { committed_ = true; }

  // Keeps the committed capture, whose id in `stacks` is `id`, among the series' recent
  // ones: the words its walk read, replayed from its steps (see RecentCapture). The walk
  // started at `site` with `max` and gave `frames` (`count` of them). Not kept when it
  // may read more words than an entry holds (a deeper `max`), when its steps do not
  // account for its frames, or when a word lies outside the 4 GiB above the start.
  void remember(const CallSite& site, std::size_t max, const std::uintptr_t* frames, std::size_t count, StackId id,
                const RecentStacks& stacks) noexcept {
    // Deeper walks are never kept, so the memo (kMemoFrames steps) holds every step.
    static_assert(kRecentCaptureWords < kMemoFrames);
    if (memo_ == nullptr || !committed_ || id == kNoStack || count == 0 || max > kRecentCaptureWords) return;
    SeriesMemo& series = *series_;
    const MemoFrame* const steps = in_place_count_ != 0 ? series.frames[series.previous] + in_place_base_ : fresh_;
    const std::size_t step_count = in_place_count_ != 0 ? in_place_count_ : fresh_count_;
    // A step per frame (its pc), and a walk that stopped at `max` took one frame more,
    // read by the last step; any other walk ended at its last step.
    if (step_count == 0 || (count != step_count && !(count == max && count == step_count + 1))) return;

    if (series.ids_from != stacks.serial()) {
      forget_recent_captures(series);
      series.ids_from = stacks.serial();
    }
    // The oldest entry is replaced (first in, first out: on logged captures of sqlite and
    // cc1plus it finds within 1% of what the least recently used would, with no
    // bookkeeping on a hit). Written in place, its tag set last: until then it is empty.
    const std::size_t replaced = series.next_replaced;
    series.next_replaced = static_cast<std::uint8_t>((replaced + 1) % kRecentCaptures);
    series.recent_tags[replaced] = 0;
    RecentCapture& entry = series.recent[replaced];
    std::size_t words = 0;
    // Records one word a later lookup compares; false when the entry cannot hold it.
    const auto keep_word = [&](std::uintptr_t address, std::uintptr_t value) {
      if (words == kRecentCaptureWords || address - site.stack_pointer > UINT32_MAX) return false;
      entry.offset[words] = static_cast<std::uint32_t>(address - site.stack_pointer);
      entry.expected[words] = value;
      ++words;
      return true;
    };
    bool rbp_matters = false;
    std::uintptr_t rbp_loaded_from = 0;  // where the walk's rbp came from; 0: the site's own
    for (std::size_t i = 0; i < step_count; ++i) {
      const MemoFrame& step = steps[i];
      if ((step.cfa_and_flag & kCfaFromRbp) != 0) {
        if (rbp_loaded_from == 0) {
          rbp_matters = true;
        } else if (!keep_word(rbp_loaded_from, step.rbp)) {
          return;
        }
      }
      if (step.cfa_and_flag == 0) break;  // the stack's end (the last step)
      if (step.rbp_saved_at != 0) rbp_loaded_from = step.rbp_saved_at;
      const std::uintptr_t read = i + 1 < step_count ? steps[i + 1].pc : (count == max ? frames[count - 1] : 0);
      if (!keep_word((step.cfa_and_flag & ~kCfaFromRbp) - 8, read)) return;
    }
    entry.pc = site.return_address;
    entry.sp = site.stack_pointer;
    entry.rbp = site.frame_pointer;
    entry.id = id;
    entry.max = static_cast<std::uint16_t>(max);
    entry.words = static_cast<std::uint8_t>(words);
    entry.rbp_matters = rbp_matters;
    series.recent_tags[replaced] = recent_capture_tag(site.return_address, site.stack_pointer);
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
  // Not 0: follow() left the capture in the previous buffer, this window of it.
  std::size_t in_place_base_ = 0;
  std::size_t in_place_count_ = 0;
};

// The id in `stacks` of a recent capture of the calling thread's `series` that a walk
// from `site` with `max` would give again, frame for frame; else kNoStack. Nothing is
// walked: the same start, and every word the recent capture's walk depended on still
// holds what it read (RecentCapture). The rules are of the same generation (the memo is
// emptied when they are not), so the walk would take the same steps to the same end; its
// span check, relative to the start, would pass as that walk's did.
StackId recent_capture_id(const CallSite& site, std::size_t max, CaptureSeries series,
                          const RecentStacks& stacks) noexcept {
  const std::size_t slot = exclusive_thread_slot();
  if (slot == kThreadSlots) return kNoStack;
  StackMemo& memo = memos[slot];
  SelfLease lease;
  if (!lease.take(memo.busy) || memo.generation != frame_rule_cache().generation()) return kNoStack;
  const SeriesMemo& recent = memo.series[static_cast<std::size_t>(series)];
  if (recent.ids_from != stacks.serial()) return kNoStack;
  for (std::uint32_t matches = recent_captures_tagged(recent, recent_capture_tag(site.return_address, site.stack_pointer));
       matches != 0; matches &= matches - 1) {
    const auto i = static_cast<std::size_t>(std::countr_zero(matches));
    const RecentCapture& capture = recent.recent[i];
    if (capture.pc != site.return_address || capture.sp != site.stack_pointer || capture.max != max ||
        (capture.rbp_matters && capture.rbp != site.frame_pointer))
      continue;
    std::size_t word = 0;
    while (word < capture.words &&
           *reinterpret_cast<const std::uintptr_t*>(site.stack_pointer + capture.offset[word]) ==
               capture.expected[word])
      ++word;
    if (word != capture.words) continue;  // the same start, another stack further out
    count_reuse(memo);
    return capture.id;
  }
  return kNoStack;
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
  memo.commit();
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
// capture_stack_id() when the stack is none of the series' recent ones: walked, interned,
// and kept among the recent ones.
[[gnu::noinline]] StackId walk_and_intern(const CallSite& site, std::size_t max, CaptureSeries series,
                                          RecentStacks& stacks) noexcept {
  std::uintptr_t frames[kMaxStackFrames];
  FrameRuleCache& cache = frame_rule_cache();
  MemoLease memo(cache.generation(), series);
  const std::size_t count =
      walk(cache, memo, frames, max, 0, site.return_address, site.stack_pointer, site.frame_pointer);
  const StackId id = stacks.intern({frames, count});
  memo.remember(site, max, frames, count, id, stacks);
  return id;
}
}  // namespace

StackId capture_stack_id(const CallSite& site, std::size_t max, CaptureSeries series, RecentStacks& stacks) noexcept {
  if (max > kMaxStackFrames) max = kMaxStackFrames;
  if (const StackId recent = recent_capture_id(site, max, series, stacks); recent != kNoStack) return recent;
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
