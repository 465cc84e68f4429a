// ValidatingAllocator: checks, call by call, both sides of THE CONTRACT in allocator.hpp.
//
// For: tests (the conformance suite runs every allocator through it) and for hunting a
// misuse. The caller's side: lengths are never zero; free / resize / remap name a live
// block with exactly its address, length and alignment; nothing is freed twice or
// without having been allocated. The allocator's side: each pointer it returns honours
// the alignment asked for and is not a block that is already live.
// Each violation is counted and handed to a ViolationHandler — by default one line on
// stderr, then abort(); tests install one that records. After a violation the wrapper
// goes on as safely as it can: a free naming a live block with a wrong length or
// alignment is passed on with the recorded ones; a free of an unknown address, and a
// resize or remap that breaks the contract, do not reach the child (resize answers
// false, remap nullptr).
// Layout: blocks come from the child unchanged; the live blocks sit in a LiveBlockTable,
// and the last 64 freed addresses in a ring, to tell a double free from a wild one.
// Thread safety: its own state is behind a Mutex, the child is called outside it.
// Not copyable (handles point at it).
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/vtable_for.hpp>
#include <zheap/live_block_table.hpp>
#include <zheap/mutex.hpp>

#include <cstddef>

namespace zheap {

enum class ViolationKind {
  zero_length,          // a len or new_len of 0 reached the allocator
  misaligned_result,    // the allocator returned a pointer not aligned as asked
  result_already_live,  // the allocator returned a block that is still live
  double_free,          // free / resize / remap of a block already freed
  unknown_pointer,      // free / resize / remap of an address never handed out
  length_mismatch,      // len differs from the block's length
  alignment_mismatch,   // alignment differs from the block's alignment
};

// A short English name for the kind ("double free", ...).
const char* describe(ViolationKind kind) noexcept;

struct ContractViolation {
  ViolationKind kind = ViolationKind::unknown_pointer;
  const char* operation = "";       // "alloc", "resize", "remap", "free"
  const void* memory = nullptr;     // the address in the call, or the one returned
  std::size_t len = 0;              // as passed in the call
  Alignment alignment = Alignment::from_log2(0);
  std::size_t recorded_len = 0;     // the live block's, for the mismatch kinds
  Alignment recorded_alignment = Alignment::from_log2(0);
};

struct ViolationHandler {
  void (*handle)(void* ctx, const ContractViolation& violation);
  void* ctx;

  // One line on stderr naming the violation and the call, then abort().
  static ViolationHandler report_and_abort() noexcept;
};

class ValidatingAllocator {
 public:
  explicit ValidatingAllocator(Allocator child,
                               ViolationHandler handler = ViolationHandler::report_and_abort()) noexcept
      : child_(child), handler_(handler) {}
  ValidatingAllocator(const ValidatingAllocator&) = delete;
  ValidatingAllocator& operator=(const ValidatingAllocator&) = delete;

  Allocator allocator() noexcept;

  std::size_t violations() const noexcept;
  std::size_t live_blocks() const noexcept;

  // alloc, resize, remap, free: THE CONTRACT's operations, with the signatures declared in
  // vtable_for.hpp; allocator() hands them out through vtable_for.
  ZHEAP_ALLOCATOR_OPERATIONS;

 private:
  enum class Check { ok, unknown, mismatch };
  // Checks a call on an existing block; on a violation fills `violation` (and for a
  // mismatch, `recorded` with the live block, which a free then releases instead).
  Check check_existing_block(const char* operation, void* memory, std::size_t len, Alignment alignment,
                             ContractViolation& violation, LiveBlockTable::Block& recorded) noexcept;
  bool record_allocated(const char* operation, void* memory, std::size_t len, Alignment alignment) noexcept;
  void remember_freed(const void* memory) noexcept;  // caller holds mutex_
  void forget_freed(const void* memory) noexcept;    // caller holds mutex_
  bool was_freed(const void* memory) const noexcept;
  void report(const ContractViolation& violation) noexcept;

  static constexpr std::size_t freed_ring_size = 64;

  Allocator child_;
  ViolationHandler handler_;
  mutable Mutex mutex_;
  LiveBlockTable live_;
  const void* recently_freed_[freed_ring_size] = {};
  std::size_t next_freed_ = 0;
  std::size_t violations_ = 0;
};

}  // namespace zheap
