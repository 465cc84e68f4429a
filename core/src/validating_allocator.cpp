#include <zheap/validating_allocator.hpp>

#include <cstdlib>

#include "os/os.hpp"
#include "support/format.hpp"

namespace zheap {

namespace {

void report_to_stderr_and_abort(void*, const ContractViolation& v) {
  char buffer[256];
  support::BufferWriter line(buffer);
  line.text("zheap: allocator contract violation: ").text(describe(v.kind)).text(" in ");
  line.text(v.operation).character('(').pointer(v.memory).text(", len=").unsigned_decimal(v.len);
  line.text(", align=").unsigned_decimal(v.alignment.bytes()).character(')');
  if (v.kind == ViolationKind::length_mismatch || v.kind == ViolationKind::alignment_mismatch) {
    line.text("; the block has len=").unsigned_decimal(v.recorded_len);
    line.text(", align=").unsigned_decimal(v.recorded_alignment.bytes());
  }
  line.character('\n');
  os::write_stderr(line.c_str(), line.size());
  std::abort();
}

ContractViolation violation_of(ViolationKind kind, const char* operation, const void* memory, std::size_t len,
                               Alignment alignment) noexcept {
  return ContractViolation{kind, operation, memory, len, alignment, 0, Alignment::from_log2(0)};
}

}  // namespace

const char* describe(ViolationKind kind) noexcept {
  switch (kind) {
    case ViolationKind::zero_length: return "zero length";
    case ViolationKind::misaligned_result: return "misaligned result";
    case ViolationKind::result_already_live: return "result is a live block";
    case ViolationKind::double_free: return "double free";
    case ViolationKind::unknown_pointer: return "unknown pointer";
    case ViolationKind::length_mismatch: return "length mismatch";
    case ViolationKind::alignment_mismatch: return "alignment mismatch";
  }
  return "unknown violation";
}

ViolationHandler ViolationHandler::report_and_abort() noexcept {
  return ViolationHandler{report_to_stderr_and_abort, nullptr};
}

Allocator ValidatingAllocator::allocator() noexcept { return Allocator(this, &vtable_for<ValidatingAllocator>); }

std::size_t ValidatingAllocator::violations() const noexcept {
  MutexLock lock(mutex_);
  return violations_;
}

std::size_t ValidatingAllocator::live_blocks() const noexcept {
  MutexLock lock(mutex_);
  return live_.size();
}

void ValidatingAllocator::report(const ContractViolation& violation) noexcept {
  {
    MutexLock lock(mutex_);
    violations_ += 1;
  }
  handler_.handle(handler_.ctx, violation);  // outside the lock: it may abort, or call back in
}

void ValidatingAllocator::remember_freed(const void* memory) noexcept {
  recently_freed_[next_freed_] = memory;
  next_freed_ = (next_freed_ + 1) % freed_ring_size;
}

void ValidatingAllocator::forget_freed(const void* memory) noexcept {
  for (const void*& freed : recently_freed_)
    if (freed == memory) freed = nullptr;
}

bool ValidatingAllocator::was_freed(const void* memory) const noexcept {
  for (const void* freed : recently_freed_)
    if (freed == memory) return true;
  return false;
}

ValidatingAllocator::Check ValidatingAllocator::check_existing_block(const char* operation, void* memory,
                                                                     std::size_t len, Alignment alignment,
                                                                     ContractViolation& violation,
                                                                     LiveBlockTable::Block& recorded) noexcept {
  MutexLock lock(mutex_);
  const LiveBlockTable::Block* block = live_.find(memory);
  if (block == nullptr) {
    const ViolationKind kind = was_freed(memory) ? ViolationKind::double_free : ViolationKind::unknown_pointer;
    violation = violation_of(kind, operation, memory, len, alignment);
    return Check::unknown;
  }
  recorded = *block;
  if (block->len == len && block->alignment == alignment) return Check::ok;
  const ViolationKind kind = block->len != len ? ViolationKind::length_mismatch : ViolationKind::alignment_mismatch;
  violation = violation_of(kind, operation, memory, len, alignment);
  violation.recorded_len = block->len;
  violation.recorded_alignment = block->alignment;
  return Check::mismatch;
}

// Records a block the child just returned (from alloc, or a remap that moved it).
// false when the table cannot grow: the caller must give the block back.
bool ValidatingAllocator::record_allocated(const char* operation, void* memory, std::size_t len,
                                           Alignment alignment) noexcept {
  if (!alignment.check(memory)) report(violation_of(ViolationKind::misaligned_result, operation, memory, len, alignment));
  bool already_live;
  bool recorded;
  {
    MutexLock lock(mutex_);
    forget_freed(memory);
    already_live = live_.find(memory) != nullptr;
    if (already_live) live_.erase(memory);  // keep the newest: that is what the caller will free
    recorded = live_.insert(memory, len, alignment);
  }
  if (already_live) report(violation_of(ViolationKind::result_already_live, operation, memory, len, alignment));
  return recorded;
}

void* ValidatingAllocator::alloc(std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  if (len == 0) {
    report(violation_of(ViolationKind::zero_length, "alloc", nullptr, len, alignment));
    return nullptr;
  }
  void* memory = child_.raw_alloc(len, alignment, ret_addr);
  if (memory == nullptr) return nullptr;
  if (!record_allocated("alloc", memory, len, alignment)) {  // untracked, it would be a false report later
    child_.raw_free(memory, len, alignment, ret_addr);
    return nullptr;
  }
  return memory;
}

bool ValidatingAllocator::resize(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                                 std::uintptr_t ret_addr) noexcept {
  ContractViolation violation;
  LiveBlockTable::Block recorded;
  if (check_existing_block("resize", memory, len, alignment, violation, recorded) != Check::ok) {
    report(violation);
    return false;
  }
  if (new_len == 0) {
    report(violation_of(ViolationKind::zero_length, "resize", memory, new_len, alignment));
    return false;
  }
  if (!child_.raw_resize(memory, len, alignment, new_len, ret_addr)) return false;
  MutexLock lock(mutex_);
  live_.set_len(memory, new_len);
  return true;
}

void* ValidatingAllocator::remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                                 std::uintptr_t ret_addr) noexcept {
  ContractViolation violation;
  LiveBlockTable::Block recorded;
  if (check_existing_block("remap", memory, len, alignment, violation, recorded) != Check::ok) {
    report(violation);
    return nullptr;
  }
  if (new_len == 0) {
    report(violation_of(ViolationKind::zero_length, "remap", memory, new_len, alignment));
    return nullptr;
  }
  void* moved = child_.raw_remap(memory, len, alignment, new_len, ret_addr);
  if (moved == nullptr) return nullptr;
  if (moved == memory) {
    MutexLock lock(mutex_);
    live_.set_len(memory, new_len);
    return moved;
  }
  {
    MutexLock lock(mutex_);
    live_.erase(memory);
    remember_freed(memory);
  }
  // The erase above made room, so recording cannot need to grow the table and fail.
  record_allocated("remap", moved, new_len, alignment);
  return moved;
}

void ValidatingAllocator::free(void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  ContractViolation violation;
  LiveBlockTable::Block recorded;
  const Check check = check_existing_block("free", memory, len, alignment, violation, recorded);
  if (check == Check::unknown) {
    report(violation);
    return;
  }
  {
    MutexLock lock(mutex_);
    live_.erase(memory);
    remember_freed(memory);
  }
  if (check == Check::mismatch) report(violation);
  child_.raw_free(memory, recorded.len, recorded.alignment, ret_addr);
}

}  // namespace zheap
