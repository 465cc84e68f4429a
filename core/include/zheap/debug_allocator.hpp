// DebugAllocator: finds heap bugs and leaks in code that allocates through it.
//
// For: tests and debugging sessions (Zig's DebugAllocator: `leak_check()` is its
// `deinit()`), and, through its extended entry points, the preload shim's debug mode.
// Catches, each reported with every stack that matters (allocation, first free, now):
//   double free; write after free (freed blocks are poisoned and kept in a FIFO
//   quarantine of bounded bytes, checked when they leave it and at leak_check());
//   overflow and underflow (canary redzones on both sides, checked at free, realloc and
//   leak_check(); or, with guard_pages, a PROT_NONE page right after the block so the
//   faulting instruction itself is caught); a free through the wrong API family
//   (malloc/delete, new/free, new[]/delete, aligned new freed without its alignment); a
//   sized free whose size is wrong (reported, not fatal by default); a free of a pointer
//   it never returned (an interior pointer is named as such) and realloc of a freed block.
// Then aborts, reports and goes on, or ignores, as DebugOptions says.
//
// Layout: each block comes from the backing allocator as [record][left redzone][user
// bytes][right redzone]; redzones hold a canary byte pattern. A live block's record (size,
// alignment, family, stack ids: 48 bytes) lies in front of its left redzone, sealed, so an
// underflow that runs past the redzone is seen to have reached it (the block is then
// reported and forgotten, never released with a record it cannot trust); which addresses
// are live blocks is known apart, a bit per 16-byte granule, so a pointer that is none of
// them is answered without reading the memory in front of it. A freed block's record
// moves into the quarantine, where it travels with the block (a block leaving needs no
// lookup). Stacks are captured at every
// allocation and free (full depth, cached CFI unwinding) and stored once in a stack depot;
// they are symbolized (function, file:line) only when a report is printed.
// Thread safety: every member function may be called from any thread (sharded futex locks
// by address for the live blocks, each shard on a cache line of its own with its live counts; the
// quarantine is fed through per-thread batches that reach its shared ring 32 frees at a
// time, so threads freeing together rarely meet on its lock; no lock is held while a
// report is made).
// Refuses: nothing the contract allows; resize grows never (shrinks in place), remap
// never moves (callers then allocate, copy and free, which is what finds stale pointers).
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/c_allocator.hpp>
#include <zheap/call_site.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

namespace zheap {

// What happens after an error has been found.
enum class OnError : std::uint8_t {
  abort,   // report, then abort() (the default: the program is already wrong)
  report,  // report and carry on (the bad free is skipped, a mismatched one still frees)
  ignore,  // carry on silently
};

// The API a block was allocated or released with; a release must match its allocation.
enum class AllocationFamily : std::uint8_t {
  allocator,           // zheap::Allocator: sized free, length and alignment must match
  malloc,              // malloc, calloc, realloc, posix_memalign, aligned_alloc, ... / free
  new_object,          // operator new / operator delete
  new_array,           // operator new[] / operator delete[]
  new_object_aligned,  // operator new(size, align_val_t) / operator delete(p, align_val_t)
  new_array_aligned,   // operator new[](size, align_val_t) / operator delete[](p, align_val_t)
};

enum class DebugErrorKind : std::uint8_t {
  double_free,           // freed again while in quarantine
  write_after_free,      // a quarantined block's poison was overwritten
  buffer_overflow,       // the right redzone was written
  buffer_underflow,      // the left redzone was written
  mismatched_free,       // released through another family than it was allocated with
  wrong_size_free,       // a sized free/delete passed another size than was allocated
  wrong_alignment_free,  // an aligned free/delete passed another alignment
  invalid_free,          // a pointer this allocator never returned (or forgot long ago)
  interior_free,         // a pointer into the middle of a live block
  realloc_of_freed,      // realloc of a block that was freed
};

// Everything known about one error. Stacks are stack-depot ids (0: none); their frames
// come from debug_stack_frames(). Printable with write_debug_error().
struct DebugError {
  DebugErrorKind kind;
  const void* address = nullptr;        // the pointer the program passed
  const void* block = nullptr;          // the block concerned (its first user byte); null if none
  std::size_t block_size = 0;           // as requested at allocation
  std::size_t block_alignment = 0;
  AllocationFamily allocated_with = AllocationFamily::allocator;
  AllocationFamily released_with = AllocationFamily::allocator;
  std::size_t given_size = 0;           // the size a sized free passed (0: none)
  std::size_t given_alignment = 0;      // the alignment an aligned free passed (0: none)
  std::ptrdiff_t offset = 0;            // first corrupt byte (or the interior pointer) from `block`
  std::uint32_t allocation_stack = 0;
  std::uint32_t free_stack = 0;         // the (first) free of the block
  std::uint32_t current_stack = 0;      // where the error was noticed
};

using DebugErrorHandler = void (*)(void* context, const DebugError& error);

struct DebugOptions {
  // Where blocks (with their redzones) come from. In the shim this must not be malloc.
  Allocator backing = c_allocator();
  // Frames kept per stack (clamped to 1..120). Capture cost grows with depth; 30 shows the callers
  // of deep library code.
  std::size_t stack_depth = 30;
  // Freed blocks are kept (poisoned) while the quarantine holds at most this many bytes
  // of backing memory (redzones and guard pages included). 0: none.
  std::size_t quarantine_bytes = std::size_t{16} << 20;
  // Allocations that would take the requested bytes in use above this fail (nullptr).
  std::size_t memory_limit = SIZE_MAX;
  // Canary bytes on each side of a block (rounded up to the alignment on the left).
  std::size_t redzone_size = 16;
  // Each block gets its own mapping, ending at a PROT_NONE page: an overflow faults at
  // the instruction that makes it; freed blocks are made inaccessible while in
  // quarantine. Costs two pages or more per block.
  bool guard_pages = false;
  OnError on_error = OnError::abort;
  // A sized delete with the wrong size: real programs do it, so reported, not fatal.
  OnError on_wrong_size = OnError::report;
  // Receives every error that is not ignored; nullptr: write_debug_error() to stderr.
  // Called with no lock of the allocator held; it may allocate elsewhere.
  DebugErrorHandler error_handler = nullptr;
  void* error_context = nullptr;
};

// How a block still live at leak_check() is classified, as LeakSanitizer and Valgrind's
// memcheck do. A block is "pointed to" by any aligned word holding an address inside its
// user bytes (interior pointers count, as in LeakSanitizer; Valgrind would call a block
// reached only that way "possibly lost").
enum class LeakKind : std::uint8_t {
  definite,   // no root and no other live block points to it ("definitely lost"); in a
              // cycle of lost blocks with no way in, one block stands for the cycle
  indirect,   // pointed to only from lost blocks ("indirectly lost")
  reachable,  // a chain of pointers leads to it from a root ("still reachable")
};

// A start and end address, [begin, end).
struct AddressRange {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
};

struct LeakCheckOptions {
  // Roots: look for pointers in every readable, writable, private mapping of the process
  // (the globals and .bss of every loaded object, thread stacks and static TLS, other
  // anonymous mappings) and in the calling thread's registers. Blocks reached from them
  // are `reachable`. The allocator's own bookkeeping and the blocks themselves are never
  // roots. false: no roots, as Zig's deinit() (every live block is lost).
  bool scan_process_roots = false;
  // Writable memory that is not a root although mapped like one: the backing allocator's
  // region (its free lists and headers point at the memory blocks live in).
  std::span<const AddressRange> not_roots = {};
};

// Live blocks at leak_check() with one allocation stack and one kind.
struct LeakGroup {
  std::uint32_t stack = 0;  // stack-depot id of the allocation stack
  LeakKind kind = LeakKind::definite;
  std::size_t blocks = 0;
  std::size_t bytes = 0;    // requested sizes
};

struct LeakTotals {
  std::size_t blocks = 0;
  std::size_t bytes = 0;
};

class LeakReport {
 public:
  LeakReport() noexcept = default;
  LeakReport(LeakReport&& other) noexcept;
  LeakReport& operator=(LeakReport&& other) noexcept;
  LeakReport(const LeakReport&) = delete;
  LeakReport& operator=(const LeakReport&) = delete;
  ~LeakReport();

  // Leaks: the definite and indirect blocks (still-reachable ones are not leaks).
  std::size_t leaked_blocks() const noexcept { return totals(LeakKind::definite).blocks + totals(LeakKind::indirect).blocks; }
  std::size_t leaked_bytes() const noexcept { return totals(LeakKind::definite).bytes + totals(LeakKind::indirect).bytes; }
  bool ok() const noexcept { return leaked_blocks() == 0; }
  LeakTotals totals(LeakKind kind) const noexcept { return totals_[static_cast<int>(kind)]; }
  // Definite groups, then indirect, then reachable; within a kind largest bytes first.
  std::span<const LeakGroup> groups() const noexcept { return {groups_, group_count_}; }

  // LeakSanitizer's layout: a paragraph per definite ("Direct leak of ...") and indirect
  // ("Indirect leak of ...") group with its symbolized stack, still-reachable blocks as
  // one count line, then the SUMMARY line. Writes nothing when nothing leaked (blocks
  // still reachable alone are no report, as in LeakSanitizer).
  void write(int fd) const noexcept;

 private:
  friend class DebugAllocator;
  LeakGroup* groups_ = nullptr;  // on a mapping of its own
  std::size_t group_count_ = 0;
  std::size_t mapped_bytes_ = 0;
  LeakTotals totals_[3] = {};
};

class DebugAllocator {
 public:
  explicit DebugAllocator(DebugOptions options = {}) noexcept;
  // Gives every block still held (live or in quarantine) back to the backing allocator,
  // without reporting: call leak_check() first to know about leaks.
  ~DebugAllocator();
  DebugAllocator(const DebugAllocator&) = delete;
  DebugAllocator& operator=(const DebugAllocator&) = delete;

  Allocator allocator() noexcept { return Allocator(this, &vtable); }

  // ---- The extended entry points, for the shim (malloc-like, families checked).
  // `caller`: where the recorded stack starts, the program's call into the entry that
  // made this call (the shim passes its exported function's ZHEAP_CALL_SITE(), so that
  // the walk starts in the program's frame and never walks the shim's); nullptr: the
  // caller of this function. Only read during the call.
  void* allocate(std::size_t size, std::size_t alignment, AllocationFamily family,
                 const CallSite* caller = nullptr) noexcept;
  // `size`: a sized free's size, or 0; `alignment`: an aligned free's alignment, or 0.
  // nullptr is ignored.
  void release(void* ptr, AllocationFamily family, std::size_t size = 0, std::size_t alignment = 0,
               const CallSite* caller = nullptr) noexcept;
  // release() for a caller that has another owner in mind for pointers this allocator
  // never returned (the shim: glibc's): false, and nothing reported, for such a pointer
  // (or nullptr); true when it was handled (freed, or an error about it reported). One
  // lookup, where owns() then release() would take two.
  bool release_if_known(void* ptr, AllocationFamily family, std::size_t size = 0, std::size_t alignment = 0,
                        const CallSite* caller = nullptr) noexcept;
  // realloc for the malloc family: always moves (a stale pointer to the old block then
  // reads poison), nullptr `ptr` allocates. nullptr when out of memory or after an
  // error (realloc of a freed or foreign pointer); the old block is then untouched.
  // new_size 0 gives a zero-length block (realloc(p, 0)'s meaning is the shim's choice).
  void* reallocate(void* ptr, std::size_t new_size, const CallSite* caller = nullptr) noexcept;
  // The requested size of a live block; 0 for anything else.
  std::size_t usable_size(const void* ptr) const noexcept;
  // True when `ptr` is the start of a live block of this allocator.
  bool owns(const void* ptr) const noexcept;

  // Classifies the live blocks (LeakKind; the scan is described in
  // src/debug/leak_scan.hpp) and groups them by allocation stack and kind, then checks
  // every live block's redzones and every quarantined block's poison (reporting what is
  // wrong). Frees nothing. Every block-table lock is held during the scan: other threads'
  // allocations and frees wait for it. With scan_process_roots, the calling thread's
  // registers are roots; other threads' registers are not (they are not stopped).
  LeakReport leak_check(const LeakCheckOptions& options = {}) noexcept;

  // fork() support for the shim's pthread_atfork handlers: lock_for_fork() takes every
  // lock of this allocator and of the process's stack depot (in one fixed order; none of
  // them is ever held while waiting for another, so any order is deadlock-free), so that
  // no lock is copied into the child mid-update; unlock_after_fork() releases them, in
  // the parent and in the child.
  void lock_for_fork() noexcept;
  void unlock_after_fork() noexcept;

  std::size_t live_blocks() const noexcept;
  std::size_t live_bytes() const noexcept;         // requested sizes
  std::size_t quarantined_bytes() const noexcept;  // backing bytes, redzones included

  struct Impl;

 private:
  static void* vtable_alloc(void* ctx, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept;
  static bool vtable_resize(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                            std::uintptr_t ret_addr) noexcept;
  static void vtable_free(void* ctx, void* memory, std::size_t len, Alignment alignment,
                          std::uintptr_t ret_addr) noexcept;
  static const Allocator::VTable vtable;

  Impl* impl_;  // on pages of its own; nullptr when they could not be mapped
};

// ---- Reports (symbolization happens here, never on the allocation path).

// The frames of a stack-depot id, innermost first; empty for 0 or an unknown id.
std::span<const std::uintptr_t> debug_stack_frames(std::uint32_t stack_id) noexcept;

// One frame, symbolized (Boost.Stacktrace), cached per address for the life of the
// process. Strings are never freed; empty when unknown, line 0 when unknown.
struct SymbolizedFrame {
  const char* function = "";
  const char* file = "";
  unsigned line = 0;
};
SymbolizedFrame symbolize_frame(std::uintptr_t address) noexcept;

// An error in ASan's layout: what happened, then every stack that matters, symbolized.
void write_debug_error(int fd, const DebugError& error) noexcept;
const char* debug_error_name(DebugErrorKind kind) noexcept;
const char* allocation_family_name(AllocationFamily family) noexcept;

}  // namespace zheap
