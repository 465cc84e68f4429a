// Which heap serves the calls: chosen once, at the first call, never changed.
//
// The active heap starts as `lazy_heap`, whose functions run start-up and then forward;
// so the hot path never asks "initialised?": it loads one pointer and makes one call.
// Start-up (dispatch.cpp) never waits: a call that arrives while start-up is running on
// another thread, or that re-enters the shim on the thread running it (dlopen, dlsym,
// pthread_atfork, a mode's own initialisation), is served by the bootstrap region; so is a
// call made before libc has set `environ` (the mode could not be read yet).
//
// Fork: the pthread_atfork handlers registered at start-up take every shim lock, in this
// order, and release them in the reverse order in parent and child:
//   1. the start-up lock (dispatch.cpp)
//   2. the active mode's locks, in the order the mode documents (fork_prepare)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "bootstrap.hpp"
#include "heap.hpp"

extern "C" void* __curbrk;  // glibc's current program break (libc.so.6 exports it)

namespace zheap::shim {

extern std::atomic<const Heap*> active_heap;

inline const Heap& heap() noexcept { return *active_heap.load(std::memory_order_acquire); }
// The active heap after making sure start-up has run (for calls that read the mode rather
// than allocate: mallopt, mallinfo, ...). The lazy heap while start-up is re-entered.
const Heap& started_heap() noexcept;

// True on the thread that is inside the shim's own start-up or a mode's slow path (which
// may call libc functions that allocate). Allocations made then come from bootstrap.
bool reentered() noexcept;
// Marks the calling thread as inside the shim for the guard's lifetime.
class ReentryGuard {
 public:
  ReentryGuard() noexcept;
  ~ReentryGuard();
  ReentryGuard(const ReentryGuard&) = delete;
  ReentryGuard& operator=(const ReentryGuard&) = delete;

 private:
  bool was_reentered_;
};

// Where a pointer handed to free/realloc/malloc_usable_size belongs.
enum class Owner : std::uint8_t { bootstrap, heap, glibc, unknown };

// glibc's brk heap: [the kernel's start_brk, current program break). zheap's
// modes never use brk, so a pointer in there came from glibc's malloc (called directly,
// e.g. by a library loaded with RTLD_DEEPBIND).
extern std::uintptr_t glibc_brk_start;
inline bool in_glibc_brk_heap(const void* ptr) noexcept {
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  return p >= glibc_brk_start && p < reinterpret_cast<std::uintptr_t>(__curbrk);
}

// A pointer outside the heap's range: glibc's brk heap, or a block glibc mmapped or took
// from a thread arena (checked without trusting the pointer, see glibc_chunks.hpp), is
// glibc's; anything else is unknown.
Owner owner_outside_heap(const void* ptr) noexcept;

// The hot question: does the heap own this (non-null) pointer? One or two compares.
inline bool heap_owns(const Heap& h, const void* ptr) noexcept {
  if (bootstrap::contains(ptr)) return false;
  if (h.owns == Ownership::everything) return true;
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  return p - h.range_begin < h.range_end - h.range_begin;
}

inline Owner owner_of(const Heap& h, const void* ptr) noexcept {
  if (heap_owns(h, ptr)) [[likely]] return Owner::heap;
  if (bootstrap::contains(ptr)) return Owner::bootstrap;
  return owner_outside_heap(ptr);
}

// The slow sides of release_pointer / usable_size_of, for pointers the heap does not own.
void release_elsewhere(Owner owner, void* ptr, const char* function) noexcept;
std::size_t usable_size_elsewhere(Owner owner, void* ptr) noexcept;
// The same, finding the owner first (out of line, so the hot paths stay frameless).
void release_not_owned(const Heap& h, void* ptr, const char* function) noexcept;
std::size_t usable_size_not_owned(const Heap& h, void* ptr) noexcept;

// free() of any non-null pointer: to the heap, bootstrap or glibc that owns it; an unknown
// pointer is reported once and ignored. `function` names the entry point in the report.
inline void release_pointer(const Heap& h, void* ptr, const char* function) noexcept {
  if (heap_owns(h, ptr)) [[likely]] {
    h.release(ptr);
    return;
  }
  release_not_owned(h, ptr, function);
}

// malloc_usable_size() of any non-null pointer; 0 for an unknown one (reported once).
inline std::size_t usable_size_of(const Heap& h, void* ptr) noexcept {
  if (heap_owns(h, ptr)) [[likely]] return h.usable_size(ptr);
  return usable_size_not_owned(h, ptr);
}

}  // namespace zheap::shim
