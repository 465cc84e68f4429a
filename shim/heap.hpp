// The one narrow interface between the shim's entry points and the heap that serves them.
//
// Each mode (mode_libc.cpp, mode_jemalloc.cpp, mode_arena.cpp, mode_smp.cpp, mode_debug.cpp)
// fills one constinit Heap. The dispatch (dispatch.hpp) picks one at the first call and
// never changes it, so every operation costs one load and one predictable indirect call.
//
// Contract for the function pointers (libc semantics such as errno, overflow checks,
// realloc(p, 0) and null pointers are handled before them, in libc_semantics.hpp):
//   allocate(size, alignment)  alignment is a power of two >= 16; size may be 0 (then a
//                              unique pointer); nullptr when out of memory.
//   allocate_default(size)     the same with alignment 16: the hot path. A mode may point
//                              it straight at its backend's malloc (one call, no glue).
//   allocate_zeroed(size)      optional: zero-filled; null means allocate + memset.
//   release(ptr)               ptr non-null and owned by this heap.
//   release_sized(ptr, size)   optional: size is the one the block was asked with.
//   usable_size(ptr)           >= the size asked; the caller may use all of it.
//   reallocate(ptr, size)      optional: ptr owned, size > 0; nullptr leaves ptr intact.
//   owns                       which non-bootstrap pointers are this heap's (see Ownership).
//   libc_conformant            allocate_default and release behave as glibc's malloc and
//                              free at the edges: requests above PTRDIFF_MAX fail, a failure
//                              sets errno to ENOMEM, release and release_sized leave errno
//                              alone. Then malloc, free, realloc, sized frees and operator new
//                              reach allocate_default, release(_sized) and reallocate straight
//                              from the exported function when no layer
//                              is active (direct_routes.hpp; the route sets realloc's errno).
//                              With Ownership::everything, release and reallocate then also
//                              receive nullptr (glibc's own functions take it).
//   detailed                   optional (debug mode only; nullptr elsewhere): entries that
//                              receive everything the entry point knows (DetailedEntries).
//                              A heap that has them must not be libc_conformant, so that
//                              malloc and free take the paths that look at them; the other
//                              modes pay one predicted branch on operator new, nothing on
//                              malloc and free.
#pragma once

#include <zheap/call_site.hpp>

#include <cstddef>
#include <cstdint>

#include "api.hpp"

namespace zheap::shim {

enum class Ownership : std::uint8_t {
  everything,      // every pointer the shim did not serve from bootstrap (libc mode)
  reserved_range,  // exactly [range_begin, range_end): an address range reserved by zheap
};

// What debug mode needs to check a call: the entry point's family, a sized delete's size,
// an aligned delete's alignment (0: not given), and `caller`, the exported function's
// call site (entry_call_site.hpp), where the recorded stack starts, so that the shim's
// own frames are neither walked nor kept (nullptr: the DebugAllocator's own caller, for
// calls that have no program call site). `release` gets every non-bootstrap pointer (the
// heap's Ownership is `everything`): it tells foreign pointers apart itself.
struct DetailedEntries {
  void* (*allocate)(std::size_t size, std::size_t alignment, Api family, const CallSite* caller) noexcept;
  void (*release)(void* ptr, Api family, std::size_t size, std::size_t alignment, const CallSite* caller) noexcept;
  void* (*reallocate)(void* ptr, std::size_t size, const CallSite* caller) noexcept;
};

struct Heap {
  const char* name;
  void* (*allocate)(std::size_t size, std::size_t alignment) noexcept;
  void* (*allocate_default)(std::size_t size) noexcept;
  void* (*allocate_zeroed)(std::size_t size) noexcept;
  void (*release)(void* ptr) noexcept;
  void (*release_sized)(void* ptr, std::size_t size) noexcept;
  std::size_t (*usable_size)(void* ptr) noexcept;
  void* (*reallocate)(void* ptr, std::size_t size) noexcept;
  Ownership owns;
  bool libc_conformant;
  std::uintptr_t range_begin;
  std::uintptr_t range_end;
  // Fork: take every lock of this mode (in the order the mode documents) / give them back.
  void (*fork_prepare)() noexcept;
  void (*fork_release)() noexcept;
  const DetailedEntries* detailed = nullptr;
};

// Each mode's start-up: nullptr when the mode cannot run (the reason already printed).
const Heap* start_libc_heap() noexcept;
const Heap* start_jemalloc_heap() noexcept;
const Heap* start_arena_heap() noexcept;
const Heap* start_smp_heap() noexcept;
const Heap* start_debug_heap() noexcept;

// glibc's own allocator, for pointers that belong to it in every mode (a library loaded
// with RTLD_DEEPBIND calls it directly). Resolved by start_libc_heap's helper, which every
// mode runs first; see mode_libc.cpp for why these are not zheap's own aliases.
// Points a heap's default-alignment entries straight at a C allocator's own malloc family
// (glibc's, jemalloc's), so that malloc and free jump into it with no glue in between.
template <class MallocFamily>
void use_malloc_family(Heap& heap, const MallocFamily& functions) noexcept {
  heap.allocate_default = functions.malloc;
  heap.release = functions.free;
  heap.usable_size = functions.malloc_usable_size;
  heap.reallocate = functions.realloc;
}

struct GlibcFunctions {
  void* (*malloc)(std::size_t) noexcept;
  void (*free)(void*) noexcept;
  void* (*calloc)(std::size_t, std::size_t) noexcept;
  void* (*realloc)(void*, std::size_t) noexcept;
  void* (*memalign)(std::size_t, std::size_t) noexcept;
  std::size_t (*malloc_usable_size)(void*) noexcept;
  int (*mallopt)(int, int) noexcept;
  int (*malloc_trim)(std::size_t) noexcept;
  void (*malloc_stats)() noexcept;
  void* mallinfo;   // struct mallinfo (*)(); kept untyped: <malloc.h> stays out of here
  void* mallinfo2;  // struct mallinfo2 (*)()
};
// True once resolved; false when glibc's functions cannot be found (then libc mode is
// unavailable and foreign glibc pointers are only reported).
bool resolve_glibc() noexcept;
const GlibcFunctions& glibc() noexcept;

}  // namespace zheap::shim
