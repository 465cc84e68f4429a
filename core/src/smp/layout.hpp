// The smp allocator's memory layout: segments, pages and thread heaps.
//
//   reserved range (1 TiB down to 1 GiB of PROT_NONE address space, segment aligned)
//   └─ segment: 4 MiB, 4 MiB aligned, committed (read-write) while a heap uses it
//      ├─ slice 0 (64 KiB): the Segment header below (page descriptors), ~5 KiB touched
//      └─ slices 1..63: pages. A page is 1 slice (classes up to 8 KiB), or 8 slices
//         starting at a multiple of 8 (classes above 8 KiB up to 128 KiB, at least 4
//         blocks a page), or, for classes above 128 KiB up to 1 MiB, one block: the
//         slices it covers (3 to 16), starting anywhere. Freed, any page's slices
//         serve any class (dirty_slices: still resident, taken first), so memory that
//         held blocks of one size is reused for the next size without being given
//         back and faulted in again.
//   └─ large block (above 1 MiB, or an alignment no class's blocks have, or grown by
//      realloc past 128 KiB): a span of whole segments
//      whose first segment starts with a Segment header of kind `large`; the data starts
//      inside that first segment, so masking the pointer still finds the header.
//      Alignments of a segment or more put the data on a segment boundary: the header is
//      then the segment before it (the only case where ptr & segment_mask == 0).
//
// From a block's address: segment = ptr & ~segment_mask; slice = (ptr & segment_mask) >>
// slice_shift; page = segment->pages[segment->page_of_slice[slice]]. No lookup table, no
// lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "smp/size_classes.hpp"

namespace zheap::smp {

inline constexpr unsigned segment_shift = 22;
inline constexpr std::size_t segment_size = std::size_t{1} << segment_shift;
inline constexpr std::uintptr_t segment_mask = segment_size - 1;
inline constexpr unsigned slice_shift = 16;
inline constexpr std::size_t slice_size = std::size_t{1} << slice_shift;
inline constexpr unsigned slices_per_segment = segment_size / slice_size;  // 64: one bit each
inline constexpr unsigned slices_per_large_page = 8;
// Classes above this get 8-slice pages, so that a page holds at least 4 blocks.
inline constexpr std::size_t single_slice_class_limit = 8 << 10;

// The slices of a page of blocks of `block_size` bytes.
constexpr unsigned page_slice_count(std::size_t block_size) noexcept {
  if (block_size <= single_slice_class_limit) return 1;
  if (block_size <= multi_block_class_limit) return slices_per_large_page;
  return static_cast<unsigned>((block_size + slice_size - 1) / slice_size);
}
static_assert(page_slice_count(multi_block_class_limit) * slice_size >= 4 * multi_block_class_limit);
static_assert(page_slice_count(max_class_size) <= 2 * slices_per_large_page);
inline constexpr std::uint64_t all_page_slices = ~std::uint64_t{1};  // slice 0 is the header

struct Heap;

// Page::thread_free's fields. Blocks are 16-byte aligned and below 2^48 (start() refuses
// a reserve above); a page holds fewer than 2^16 blocks.
inline constexpr unsigned remote_count_shift = 48;
inline constexpr std::uintptr_t remote_list_mask = ((std::uintptr_t{1} << remote_count_shift) - 1) & ~std::uintptr_t{15};
static_assert(page_slice_count(16) * slice_size / 16 < (std::size_t{1} << (64 - remote_count_shift)));

struct Block {
  Block* next;
};

// A run of slices holding blocks of one size class, owned by one heap.
struct Page {
  Block* free = nullptr;  // owner thread only
  // Blocks freed by other threads (a stack, pushed with CAS), and how many: the top block
  // in bits 4..47 (remote_list_mask), the count above remote_count_shift, so that the
  // owner takes the list without walking it (every block is a cache miss: another thread
  // wrote it). Bit 0 set: the page is on its heap's `announced` stack (see Heap), or
  // about to be, and must not be given back before the heap has taken it off.
  std::atomic<std::uintptr_t> thread_free{0};
  Heap* heap = nullptr;  // written when the page is made, before any block leaves it
  Page* prev = nullptr;  // the heap's `available` list of this class (owner only)
  Page* next = nullptr;
  Page* next_announced = nullptr;  // written by the thread that set bit 0
  std::uint32_t block_size = 0;
  std::uint32_t used = 0;  // blocks handed out and not yet back on `free`
  // Blocks are threaded onto `free` a few KiB at a time, from this offset in the page on,
  // so that memory is touched (and resident) only as it is used.
  std::uint32_t unbuilt = 0;
  std::uint8_t size_class = 0;
  std::uint8_t slice_count = 0;
  bool in_available = false;
};

enum class SegmentKind : std::uint8_t { small, large };

static_assert(sizeof(Page) == 64, "page descriptors are found by a shift");

struct Segment {
  Page pages[slices_per_segment];                 // indexed by a page's first slice
  std::uint8_t page_of_slice[slices_per_segment] = {};  // slice -> its page's first slice
  SegmentKind kind = SegmentKind::small;
  // kind == small (owner thread only):
  Heap* heap = nullptr;
  std::uint64_t free_slices = 0;
  Segment* room_prev = nullptr;  // the heap's list of segments with a free slice
  Segment* room_next = nullptr;
  bool in_room = false;
  // Free slices of freed pages left committed with their old contents (Heap::dirty_bytes);
  // new pages take them first.
  std::uint64_t dirty_slices = 0;
  std::uint64_t dirtied_ms = 0;  // when dirty_slices last became non-empty (os::monotonic_milliseconds)
  // kind == large (whoever holds the block):
  std::uintptr_t span_begin = 0;  // the whole address span (segment multiples)
  std::size_t span_len = 0;
  std::uintptr_t data = 0;        // the block
  std::uintptr_t commit_end = 0;  // [this, commit_end) is read-write; usable = commit_end - data
  // The end of what the block's holder last asked for (page aligned, <= commit_end): a
  // block reused from the large cache keeps the committed (resident) tail of a bigger
  // predecessor beyond it, which the cache takes back first when it runs short of room.
  std::uintptr_t used_end = 0;
  std::uint64_t cached_since_ms = 0;  // when it entered the large-block cache (os::monotonic_milliseconds)
};

// Blocks of blocks up to single_slice_class_limit that the heap's thread freed into one
// page of another heap, held back to be pushed there as one list (one CAS instead of one
// a block). One per size class: a thread freeing another's blocks in the order they were
// made finds the same page again and again.
struct RemoteBatch {
  Page* page = nullptr;  // nullptr: empty
  Block* head = nullptr;
  Block* tail = nullptr;
  std::uint32_t count = 0;
};

// A thread's heap. Reached through an initial-exec TLS pointer that starts at a constant
// empty heap (every current page is the constant empty page, whose free list is empty), so
// the fast path never asks whether the thread has a heap: the first allocation simply
// misses and the slow path makes one.
struct Heap {
  explicit constexpr Heap(Page* empty_page) noexcept {
    for (Page*& p : current) p = empty_page;
  }
  Page* current[class_count] = {};    // where allocation pops from, per class
  Page* available[class_count] = {};  // other pages with blocks on `free`, per class
  // Pages that got frees from other threads since the owner last looked (a stack of
  // pages through next_announced, pushed by the freeing threads, taken whole by the
  // owner). Without it the owner would never learn that a full page has room again.
  std::atomic<Page*> announced{nullptr};
  Segment* room = nullptr;   // segments with at least one free slice
  Segment* spare = nullptr;  // one wholly free segment kept (in `room` too): hysteresis
  // Bytes of the segments' dirty_slices: freed pages kept resident, for at most about
  // dirty_page_delay_ms and up to dirty_page_budget (smp.hpp), so that the next page (of
  // any class) reuses them without page faults.
  std::size_t dirty_bytes = 0;
  // When the oldest segment's dirty slices are due to be decommitted (0: none dirty, or
  // not known yet); checked as pages are freed.
  std::uint64_t purge_due_ms = 0;
  // Pages that other threads' frees emptied, kept for their class with their blocks on
  // `free` (see kept_empty_page_budget, smp.hpp): a list through prev/next, newest first.
  Page* kept = nullptr;
  std::size_t kept_empty_bytes = 0;
  Heap* next_abandoned = nullptr;
  // Frees held back for pages of other heaps, and which classes have one: pushed when the
  // batch is full or moves to another page, when this thread next makes a page, trims
  // or exits.
  RemoteBatch remote[class_count] = {};
  std::uint64_t remote_pending = 0;
  static_assert(class_count <= 64, "remote_pending has a bit per class");
};

}  // namespace zheap::smp
