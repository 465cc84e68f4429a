// The smp allocator's malloc-like interface, for smp_allocator() and the shim's smp mode.
// The design is described in zheap/smp_allocator.hpp.
//
// Every function here is thread-safe, never calls the public malloc and may run before
// main or after static destructors. The first allocation starts the allocator (start()
// may also be called explicitly, as the shim does).
#pragma once

#include <cstddef>
#include <cstdint>

namespace zheap::smp {

// Reserves the address range and the thread-exit key. Idempotent; false when the system
// refuses the reserve (then every allocation fails).
bool start() noexcept;

// `alignment` a power of two (any size); `size` may be 0 (a unique block). nullptr when
// out of memory or when the alignment cannot be met, with errno = ENOMEM (malloc's
// contract, so that the shim needs no glue); a release never changes errno.
void* allocate(std::size_t size, std::size_t alignment) noexcept;
// allocate(size, 16): malloc.
void* allocate_default(std::size_t size) noexcept;
// `ptr` non-null, from allocate() / reallocate(), not yet released. Any thread.
void release(void* ptr) noexcept;
// The same; `size` is ignored (the page knows its block size) and only documents intent.
void release_sized(void* ptr, std::size_t size) noexcept;
// The bytes the caller may use at `ptr` (>= what was asked). O(1).
std::size_t usable_size(const void* ptr) noexcept;
// Grows or shrinks in place when the block already has room (or a large block's mapping
// can grow); true when `ptr` now holds `new_size` bytes. Never moves.
bool resize_in_place(void* ptr, std::size_t new_size) noexcept;
// realloc: in place when possible, else allocate + copy + release. nullptr (ptr intact)
// when out of memory. size > 0. Alignment 16.
void* reallocate(void* ptr, std::size_t size) noexcept;

// Asks the kernel to back the reserve with transparent huge pages as it is used
// (os::advise_huge_pages). For the shim's debug mode: its blocks carry a record and
// redzones, and its quarantine keeps 16 MiB of freed blocks resident, so the heap a
// program walks is 2-3x what it is under glibc, over more 4 KiB pages than the TLB
// covers. Not for smp mode, whose peak RSS it would raise (a huge page is resident
// whole). After start(); false before it, or when the kernel refuses.
bool prefer_huge_pages() noexcept;

// Every block comes from [range_begin(), range_end()); both 0 before start().
std::uintptr_t range_begin() noexcept;
std::uintptr_t range_end() noexcept;
inline bool owns(const void* ptr) noexcept {
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  return p - range_begin() < range_end() - range_begin();
}

// fork: prepare takes every lock (in the order documented in smp.cpp); parent and
// child release them. In the child, other threads' heaps are left as they were: their
// blocks stay valid and may be freed, their free memory is not reused.
void fork_prepare() noexcept;
void fork_parent() noexcept;
void fork_child() noexcept;

// Called at thread exit (also registered as a pthread key destructor by start()): the
// thread's held-back remote frees are pushed, its current pages settled, and the heap
// waits for adoption by the next new thread with its freed pages still resident (up to
// exit_dirty_kept; beyond that they and its empty segments go back now). Frees from
// other threads into it stay valid meanwhile.
void thread_exit() noexcept;

// Freed pages a thread's heap keeps resident (new pages of any class take them first): each
// segment's for dirty_page_delay_ms after the first of them was freed, then all of that
// segment's go back (checked as pages are made or freed: an idle thread keeps them until
// trim(), and an exited thread's heap until its adopter makes or frees pages);
// never more than dirty_page_budget bytes: beyond it a freed page goes back at once.
// A program that frees a phase's blocks and allocates the next phase's, of any size,
// reuses the memory without page faults; memory not reused soon goes back.
inline constexpr std::size_t dirty_page_budget = std::size_t{256} << 20;
inline constexpr std::uint64_t dirty_page_delay_ms = 50;
// Empty pages a thread's heap keeps for their size class when other threads' frees
// emptied them (one-slice pages, up to this many bytes; given back by trim() and at thread
// exit): a thread whose blocks are freed elsewhere (a producer) cycles through a few pages
// a class, and each page given back would be made again and its blocks threaded anew.
inline constexpr std::size_t kept_empty_page_budget = std::size_t{2} << 20;
// What an exiting thread's heap keeps of its freed pages for the thread that adopts it.
inline constexpr std::size_t exit_dirty_kept = std::size_t{4} << 20;

// Freed large blocks (above 1 MiB, or grown by realloc past 128 KiB) kept committed for reuse: blocks of up to
// large_cache_entry_limit bytes, at most large_cache_limit in all, each for at most
// large_cache_hold_ms (a program that frees a batch of big buffers and allocates the next
// one skips the page faults; aged entries go back at the next large allocation or free,
// the oldest at once when the limit is reached, after the freed block's own committed
// tail beyond what its last holder asked for). Nothing is kept for good: the limit
// bounds what a phase of big blocks leaves resident beside the next phase.
inline constexpr std::size_t large_cache_entry_limit = std::size_t{16} << 20;
inline constexpr std::size_t large_cache_limit = std::size_t{48} << 20;
inline constexpr std::uint64_t large_cache_hold_ms = 200;

// Gives back cached memory now: the large-block cache, the empty segments, and the calling
// thread's freed pages, empty current pages and empty segments. (Idle memory otherwise
// goes back as it ages, see dirty_page_delay_ms and large_cache_hold_ms.)
void trim() noexcept;

struct Stats {
  std::size_t committed_bytes;  // segments and large blocks currently read-write
  std::size_t segments;         // 4 MiB segments in use by heaps (spares included)
  std::size_t cached_large_bytes;
  std::size_t cached_empty_segment_bytes;  // empty segments kept committed for reuse
  std::size_t dirty_page_bytes;            // the calling thread's freed pages kept resident
  std::size_t remote_held_blocks;          // the calling thread's frees held back for other heaps' pages
  std::size_t kept_empty_page_bytes;       // the calling thread's empty pages kept for their class
};
Stats stats() noexcept;

}  // namespace zheap::smp
