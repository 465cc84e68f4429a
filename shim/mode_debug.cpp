// debug mode: every allocation through the core's DebugAllocator (design in
// core/include/zheap/debug_allocator.hpp, docs/DEBUG_ALLOCATOR.md): redzones, a poisoned
// quarantine, a record of every block with its allocation and free stacks; double
// free, write after free, overflow, mismatched and invalid frees are reported with
// symbolized stacks, then abort / report / ignore (ZHEAP_ON_ERROR). How reports are written
// (format, destination, suppressions, leak exit code) is debug_report_output.cpp's business.
//
// The Heap: not libc_conformant and with DetailedEntries, so every entry point passes its
// API family, a sized delete's size, an aligned delete's alignment and its caller (where
// the recorded stacks start). Ownership is `everything`: every non-bootstrap pointer
// reaches this file, which sends glibc's (its brk heap, or a chunk glibc_chunks.hpp
// recognizes) to glibc and everything else to the DebugAllocator, which reports the
// pointers it never returned (stack, globals, interior pointers) instead of passing them on.
//
// Storage: one DebugAllocator constructed in place in static storage at start-up (its
// state is on mappings of its own); blocks come from the core's smp allocator (never
// malloc).
//
// Reports allocate (Boost.Stacktrace symbolizes with std::string, the symbol cache with
// new): the error handler marks the thread as inside the shim (ReentryGuard), and while it
// is, this heap serves allocations from glibc's malloc (bootstrap without glibc) and
// hands them back there; an error found then is one unsymbolized line (no nested report,
// so no deadlock on the symbolizer's lock). Reports go to stderr, or to ZHEAP_REPORT.
//
// Exit: a destructor checks every block once more and reports the leaks, classified
// (report_leaks_at_exit; the scan is core/src/debug/leak_scan.hpp).
// Fork: the report lock, the DebugAllocator's locks (and the stack depot's), then the smp
// allocator's, are taken before fork and released after it in both processes.
#include <zheap/debug_allocator.hpp>
#include <zheap/mutex.hpp>
#include <zheap/smp_allocator.hpp>

#include <cstring>
#include <new>

#include "debug_report_output.hpp"
#include "dispatch.hpp"
#include "glibc_chunks.hpp"
#include "options.hpp"
#include "os/os.hpp"
#include "report.hpp"
#include "smp/smp.hpp"

namespace zheap::shim {

namespace {

alignas(DebugAllocator) constinit unsigned char debug_storage[sizeof(DebugAllocator)] = {};
constinit DebugAllocator* debug_heap = nullptr;  // set once, at start-up, before any use

constexpr std::size_t default_alignment = 16;

constinit Mutex report_lock;  // serializes reports (report_debug_error)

AllocationFamily allocation_family(Api api) noexcept {
  switch (api) {
    case Api::new_:
    case Api::new_nothrow:
      return AllocationFamily::new_object;
    case Api::new_array:
    case Api::new_array_nothrow:
      return AllocationFamily::new_array;
    case Api::new_aligned:
      return AllocationFamily::new_object_aligned;
    case Api::new_array_aligned:
      return AllocationFamily::new_array_aligned;
    default:
      return AllocationFamily::malloc;
  }
}

// The family a release names: an aligned delete (alignment given) frees an aligned new.
AllocationFamily release_family(Api api, std::size_t alignment) noexcept {
  switch (api) {
    case Api::delete_:
      return alignment != 0 ? AllocationFamily::new_object_aligned : AllocationFamily::new_object;
    case Api::delete_array:
      return alignment != 0 ? AllocationFamily::new_array_aligned : AllocationFamily::new_array;
    default:
      return AllocationFamily::malloc;
  }
}

// A pointer glibc's malloc handed out (the shim's own report-time blocks, or a library
// bound to glibc directly). Only asked about pointers the DebugAllocator does not hold.
bool is_glibc_block(const void* ptr) noexcept {
  return glibc().free != nullptr && (in_glibc_brk_heap(ptr) || looks_like_glibc_chunk(ptr));
}

// --- while the shim is busy on this thread (a report is being made) ----------------

void* allocate_elsewhere(std::size_t size, std::size_t alignment) noexcept {
  if (glibc().memalign != nullptr) {
    return alignment <= default_alignment ? glibc().malloc(size) : glibc().memalign(alignment, size);
  }
  return bootstrap::allocate(size, alignment);
}

void release_elsewhere_or_debug(void* ptr, AllocationFamily family, std::size_t size, std::size_t alignment,
                                const CallSite* caller) noexcept {
  if (debug_heap->owns(ptr)) {
    debug_heap->release(ptr, family, size, alignment, caller);
  } else if (glibc().free != nullptr) {
    glibc().free(ptr);
  }
}

// --- DetailedEntries -----------------------------------------------------------------

void* debug_allocate_detailed(std::size_t size, std::size_t alignment, Api family, const CallSite* caller) noexcept {
  if (reentered()) [[unlikely]] return allocate_elsewhere(size, alignment);
  return debug_heap->allocate(size, alignment, allocation_family(family), caller);
}

void debug_release_detailed(void* ptr, Api api, std::size_t size, std::size_t alignment,
                            const CallSite* caller) noexcept {
  const AllocationFamily family = release_family(api, alignment);
  if (reentered()) [[unlikely]] {
    release_elsewhere_or_debug(ptr, family, size, alignment, caller);
    return;
  }
  // Live and freed blocks (a double free is reported); then glibc's blocks; everything
  // else (a stack or global address, an interior pointer) the DebugAllocator reports.
  if (debug_heap->release_if_known(ptr, family, size, alignment, caller)) [[likely]] return;
  if (is_glibc_block(ptr)) {
    glibc().free(ptr);
    return;
  }
  debug_heap->release(ptr, family, size, alignment, caller);
}

void* debug_reallocate_detailed(void* ptr, std::size_t size, const CallSite* caller) noexcept {
  if (debug_heap->owns(ptr)) return debug_heap->reallocate(ptr, size, caller);
  if (reentered()) [[unlikely]] return glibc().realloc != nullptr ? glibc().realloc(ptr, size) : nullptr;
  if (is_glibc_block(ptr)) {  // moves into the debug heap
    void* moved = debug_heap->allocate(size, default_alignment, AllocationFamily::malloc, caller);
    if (moved == nullptr) return nullptr;
    const std::size_t old_size = glibc().malloc_usable_size(ptr);
    std::memcpy(moved, ptr, old_size < size ? old_size : size);
    glibc().free(ptr);
    return moved;
  }
  return debug_heap->reallocate(ptr, size, caller);  // freed or foreign: reported
}

constinit const DetailedEntries debug_entries = {
    .allocate = debug_allocate_detailed,
    .release = debug_release_detailed,
    .reallocate = debug_reallocate_detailed,
};

// --- the plain Heap entries (start-up's forwarding, bootstrap blocks moving in) -------

void* debug_allocate(std::size_t size, std::size_t alignment) noexcept {
  return debug_allocate_detailed(size, alignment, Api::malloc, nullptr);
}
void* debug_allocate_default(std::size_t size) noexcept {
  return debug_allocate_detailed(size, default_alignment, Api::malloc, nullptr);
}
void debug_release(void* ptr) noexcept { debug_release_detailed(ptr, Api::free, 0, 0, nullptr); }
void* debug_reallocate(void* ptr, std::size_t size) noexcept { return debug_reallocate_detailed(ptr, size, nullptr); }

std::size_t debug_usable_size(void* ptr) noexcept {
  if (debug_heap->owns(ptr)) return debug_heap->usable_size(ptr);
  if (is_glibc_block(ptr)) return glibc().malloc_usable_size(ptr);
  return 0;
}

void debug_fork_prepare() noexcept {
  report_lock.lock();
  debug_heap->lock_for_fork();
  smp::fork_prepare();
}
void debug_fork_release() noexcept {
  smp::fork_parent();  // unlocking is right in the child too
  debug_heap->unlock_after_fork();
  report_lock.unlock();
}

// --- reports -------------------------------------------------------------------------

void report_debug_error(void* /*context*/, const DebugError& error) noexcept {
  if (reentered()) {
    report_nested_debug_error(debug_error_name(error.kind), error.address);
    return;
  }
  const ReentryGuard symbolizing;  // its allocations go to glibc (see the top of the file)
  // One report at a time, so that threads finding errors together do not interleave
  // their lines. Never taken by a nested report (above), so it cannot deadlock.
  report_lock.lock();
  write_error_report(error);
  report_lock.unlock();
}

OnError on_error(ErrorAction action) noexcept {
  switch (action) {
    case ErrorAction::abort: return OnError::abort;
    case ErrorAction::report: return OnError::report;
    case ErrorAction::ignore: return OnError::ignore;
  }
  return OnError::abort;
}

DebugOptions debug_options() noexcept {
  const Options& o = options();
  DebugOptions d;
  d.backing = smp_allocator();
  d.stack_depth = static_cast<std::size_t>(o.stack_depth);
  d.quarantine_bytes = o.quarantine;
  d.redzone_size = o.redzone;
  d.guard_pages = o.guard;
  d.on_error = on_error(o.on_error);
  // A wrong sized-delete size stays a report (real programs do it), unless told to be quiet.
  if (d.on_error == OnError::ignore) d.on_wrong_size = OnError::ignore;
  d.error_handler = report_debug_error;
  return d;
}

constinit const Heap debug_heap_entries = {
    .name = "debug",
    .allocate = debug_allocate,
    .allocate_default = debug_allocate_default,
    .allocate_zeroed = nullptr,
    .release = debug_release,
    .release_sized = nullptr,  // sized frees go through DetailedEntries, size checked
    .usable_size = debug_usable_size,
    .reallocate = debug_reallocate,
    .owns = Ownership::everything,
    .libc_conformant = false,
    .range_begin = 0,
    .range_end = 0,
    .fork_prepare = debug_fork_prepare,
    .fork_release = debug_fork_release,
    .detailed = &debug_entries,
};

// The leak report: every live block classified (roots: the whole process's writable
// memory, this thread's registers; core/src/debug/leak_scan.hpp), then rendered with the
// output options (debug_report_output.hpp) and ZHEAP_LEAK_EXITCODE applied.
void report_leaks_at_exit() noexcept {
  // The smp allocator's region is where blocks live: its free lists and page headers
  // point into it, and must not count as roots.
  const AddressRange smp_region[] = {{smp::range_begin(), smp::range_end()}};
  LeakCheckOptions check;
  check.scan_process_roots = true;
  check.not_roots = smp_region;
  const LeakReport report = debug_heap->leak_check(check);  // reports redzone/poison errors itself
  const ReentryGuard symbolizing;  // its allocations go to glibc (see the top of the file)
  report_lock.lock();
  write_leak_report(report);
  report_lock.unlock();
  apply_leak_exit_code(report);
}

// At exit (after the program's atexit handlers and static destructors; see exports.cpp):
// every live block's redzones and every quarantined block's poison are checked, so an
// overflow of a block never freed, or a write after free still in quarantine, is found;
// then the leaks are reported.
[[gnu::destructor]] void check_blocks_at_exit() {
  if (debug_heap == nullptr || reentered()) return;
  report_leaks_at_exit();
}

}  // namespace

const Heap* start_debug_heap() noexcept {
  if (!smp::start()) {
    report_mode_unavailable("debug", "cannot reserve address space for its blocks", "libc");
    return nullptr;
  }
  // Huge pages for the blocks (smp.hpp says why): 0.93 of containers' CPU time, 0.95 of
  // sqlite's, 5-18% more peak RSS (docs/DEBUG_ALLOCATOR.md, round 15). Where the kernel
  // has none, 4 KiB pages.
  if (options().huge_pages) smp::prefer_huge_pages();
  if (debug_heap == nullptr) debug_heap = new (debug_storage) DebugAllocator(debug_options());
  return &debug_heap_entries;
}

}  // namespace zheap::shim
