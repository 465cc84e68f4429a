// The smp allocator: thread heaps over segments from one reserved range.
// Layout in layout.hpp, the design summary in zheap/smp_allocator.hpp.
//
// Who touches what:
//   - a Heap, its pages' `free`, `used`, list links, its segments' slice bookkeeping:
//     only the thread that owns the heap (no lock, no atomics);
//   - Page::thread_free and Heap::announced: any thread, lock-free (CAS push, exchange);
//   - Heap::remote (frees held back for other heaps' pages): the heap's own thread;
//   - the span source (bump cursor, free spans, large-block cache, empty segments,
//     heap metadata):
//     span_lock;
//   - the abandoned-heap list: abandoned_lock.
// Locks, in order: start_lock, abandoned_lock, span_lock (only fork takes more than one).
#include "smp/smp.hpp"

#include <pthread.h>
#include <zheap/mutex.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "os/os.hpp"
#include "smp/layout.hpp"
#include "smp/size_classes.hpp"

namespace zheap::smp {

namespace {


static_assert(class_table_is_consistent());
static_assert(sizeof(Segment) <= slice_size);

// Freed large blocks kept committed for reuse (at most large_cache_limit bytes, each for
// large_cache_hold_ms, smp.hpp): a program that frees and reallocates batches of big
// buffers skips the page faults; the rest goes back at once.
constexpr std::size_t large_cache_capacity = 64;
constexpr std::size_t free_span_capacity = 1024;
// Empty segments kept committed (their freed pages decommitted) for the next new segment
// of any heap: a program that fills and empties a few segments in turn skips the system
// calls that give the address range back and take it again.
constexpr std::size_t empty_segment_capacity = 4;
// A large block that shrinks, or a cached one reused for a smaller block, gives back its
// committed tail when that is at least this big (less is not worth a system call).
constexpr std::size_t large_trim_threshold = std::size_t{1} << 20;
constexpr std::size_t max_request = std::size_t{1} << 46;

struct FreeSpan {
  std::uintptr_t begin;
  std::size_t len;
};

constinit Page empty_page{};
constinit Heap empty_heap{&empty_page};
// A thread's heap after thread_exit() (pthread key destructors that run after ours may
// still free): as empty_heap, except that its frees of other heaps' blocks are pushed at
// once, not held in a new heap that nothing would give back.
constinit Heap exited_heap{&empty_page};
[[gnu::tls_model("initial-exec")]] constinit thread_local Heap* tls_heap = &empty_heap;

// Whether `heap` is a thread's own, not one of the two placeholders above.
bool is_own_heap(const Heap* heap) noexcept { return heap != &empty_heap && heap != &exited_heap; }

constinit std::atomic<bool> started{false};
constinit Mutex start_lock;
constinit std::atomic<std::uintptr_t> reserve_begin{0};
constinit std::atomic<std::uintptr_t> reserve_end{0};
constinit pthread_key_t exit_key{};
constinit bool have_exit_key = false;

constinit Mutex abandoned_lock;
constinit Heap* abandoned_head = nullptr;

// Guarded by span_lock.
constinit Mutex span_lock;
constinit std::uintptr_t span_cursor = 0;
constinit FreeSpan free_spans[free_span_capacity] = {};
constinit std::size_t free_span_count = 0;
// Empty segments, committed, not owned by any heap (span_lock).
constinit std::uintptr_t empty_segments[empty_segment_capacity] = {};
constinit std::size_t empty_segment_count = 0;

// Freed large blocks, oldest first, kept committed.
constinit Segment* large_cache[large_cache_capacity] = {};
constinit std::size_t large_cache_count = 0;
constinit std::size_t large_cache_bytes = 0;
constinit std::uintptr_t meta_cursor = 0;  // heap structs, bumped from a segment
constinit std::uintptr_t meta_end = 0;

constinit std::atomic<std::size_t> committed_bytes{0};
constinit std::atomic<std::size_t> segment_count{0};

std::uintptr_t align_up(std::uintptr_t value, std::size_t alignment) noexcept {
  return (value + alignment - 1) & ~(std::uintptr_t{alignment} - 1);
}

// Syscalls on the release paths must leave errno as free() found it.
class ErrnoKeeper {
 public:
  ErrnoKeeper() noexcept : saved_(errno) {}
  ~ErrnoKeeper() { errno = saved_; }

 private:
  int saved_;
};

// --- span source: segment-aligned address spans from the reserve ----------------------

void remember_free_span(std::uintptr_t begin, std::size_t len) noexcept {  // span_lock held
  if (len == 0) return;
  // A full table loses the span's address space (not memory): the reserve is large.
  if (free_span_count < free_span_capacity) free_spans[free_span_count++] = {begin, len};
}

// `len` and `alignment` are multiples of segment_size. 0 when the reserve is exhausted.
std::uintptr_t take_span(std::size_t len, std::size_t alignment) noexcept {
  MutexLock guard(span_lock);
  for (std::size_t i = 0; i < free_span_count; ++i) {
    const FreeSpan span = free_spans[i];
    const std::uintptr_t begin = align_up(span.begin, alignment);
    if (begin - span.begin + len > span.len) continue;
    free_spans[i] = free_spans[--free_span_count];
    remember_free_span(span.begin, begin - span.begin);
    remember_free_span(begin + len, span.begin + span.len - (begin + len));
    return begin;
  }
  const std::uintptr_t begin = align_up(span_cursor, alignment);
  const std::uintptr_t end = reserve_end.load(std::memory_order_relaxed);
  if (begin < span_cursor || begin > end || end - begin < len) return 0;
  remember_free_span(span_cursor, begin - span_cursor);
  span_cursor = begin + len;
  return begin;
}

void give_span(std::uintptr_t begin, std::size_t len) noexcept {
  MutexLock guard(span_lock);
  remember_free_span(begin, len);
}

bool commit(std::uintptr_t begin, std::size_t len) noexcept {
  if (!os::protect_read_write(reinterpret_cast<void*>(begin), len)) return false;
  committed_bytes.fetch_add(len, std::memory_order_relaxed);
  return true;
}

void uncommit(std::uintptr_t begin, std::size_t len) noexcept {
  os::uncommit(reinterpret_cast<void*>(begin), len);
  committed_bytes.fetch_sub(len, std::memory_order_relaxed);
}

// --- pages and segments (owner thread only) ---------------------------------------------

Segment* segment_of(const void* ptr) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(ptr);
  if ((a & segment_mask) == 0) [[unlikely]] return reinterpret_cast<Segment*>(a - segment_size);
  return reinterpret_cast<Segment*>(a & ~segment_mask);
}

Page* page_of(Segment* segment, const void* ptr) noexcept {
  const auto slice = (reinterpret_cast<std::uintptr_t>(ptr) & segment_mask) >> slice_shift;
  return &segment->pages[segment->page_of_slice[slice]];
}

std::uintptr_t page_start(const Page* page) noexcept {
  const auto segment = reinterpret_cast<std::uintptr_t>(page) & ~segment_mask;
  const auto index = static_cast<std::size_t>(page - reinterpret_cast<const Segment*>(segment)->pages);
  return segment + index * slice_size;
}

void room_add(Heap* heap, Segment* s) noexcept {
  s->in_room = true;
  s->room_prev = nullptr;
  s->room_next = heap->room;
  if (heap->room != nullptr) heap->room->room_prev = s;
  heap->room = s;
}

void room_remove(Heap* heap, Segment* s) noexcept {
  if (s->room_prev != nullptr) s->room_prev->room_next = s->room_next;
  else heap->room = s->room_next;
  if (s->room_next != nullptr) s->room_next->room_prev = s->room_prev;
  s->in_room = false;
}

void available_push(Heap* heap, Page* p) noexcept {
  Page*& head = heap->available[p->size_class];
  p->in_available = true;
  p->prev = nullptr;
  p->next = head;
  if (head != nullptr) head->prev = p;
  head = p;
}

void available_remove(Heap* heap, Page* p) noexcept {
  if (p->prev != nullptr) p->prev->next = p->next;
  else heap->available[p->size_class] = p->next;
  if (p->next != nullptr) p->next->prev = p->prev;
  p->in_available = false;
}

// A committed empty segment from the cache, or 0.
std::uintptr_t take_empty_segment() noexcept {
  MutexLock guard(span_lock);
  return empty_segment_count == 0 ? 0 : empty_segments[--empty_segment_count];
}

// Keeps an empty segment for reuse; false when the cache is full.
bool keep_empty_segment(std::uintptr_t begin) noexcept {
  MutexLock guard(span_lock);
  if (empty_segment_count == empty_segment_capacity) return false;
  empty_segments[empty_segment_count++] = begin;
  return true;
}

Segment* new_segment(Heap* heap) noexcept {
  std::uintptr_t span = take_empty_segment();
  if (span == 0) {
    span = take_span(segment_size, segment_size);
    if (span == 0) return nullptr;
    if (!commit(span, segment_size)) {
      give_span(span, segment_size);
      return nullptr;
    }
  }
  auto* s = ::new (reinterpret_cast<void*>(span)) Segment();
  s->heap = heap;
  s->free_slices = all_page_slices;
  room_add(heap, s);
  segment_count.fetch_add(1, std::memory_order_relaxed);
  return s;
}

// Decommits the segment's dirty slices, a run of them per system call.
void purge_dirty_slices(Heap* heap, Segment* s) noexcept {
  ErrnoKeeper keep_errno;
  heap->dirty_bytes -= std::size_t(__builtin_popcountll(s->dirty_slices)) * slice_size;
  for (std::uint64_t dirty = s->dirty_slices; dirty != 0;) {
    const auto first = static_cast<unsigned>(__builtin_ctzll(dirty));
    const std::uint64_t from_first = dirty >> first;
    const unsigned run = ~from_first == 0 ? 64 - first : static_cast<unsigned>(__builtin_ctzll(~from_first));
    os::decommit(reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(s) + first * slice_size), run * slice_size);
    dirty = run + first >= 64 ? 0 : dirty & (~std::uint64_t{0} << (first + run));
  }
  s->dirty_slices = 0;
}

void release_segment(Heap* heap, Segment* s) noexcept {
  ErrnoKeeper keep_errno;
  if (s->in_room) room_remove(heap, s);
  if (heap->spare == s) heap->spare = nullptr;
  segment_count.fetch_sub(1, std::memory_order_relaxed);
  const auto begin = reinterpret_cast<std::uintptr_t>(s);
  // A kept empty segment saves the system calls that map it again, not its memory: its
  // freed pages go back (they would stay resident, unused, while heaps have room).
  if (s->dirty_slices != 0) purge_dirty_slices(heap, s);
  if (keep_empty_segment(begin)) return;
  uncommit(begin, segment_size);
  give_span(begin, segment_size);
}

// Decommits the dirty slices of segments that have had them for dirty_page_delay_ms (all
// such segments are in `room`: dirty slices are free slices), when one may be due.
void purge_aged_dirty_slices(Heap* heap) noexcept {
  const std::uint64_t now = os::monotonic_milliseconds();
  if (now < heap->purge_due_ms) return;
  std::uint64_t next_due = 0;
  for (Segment *s = heap->room, *next; s != nullptr; s = next) {
    next = s->room_next;
    if (s->dirty_slices == 0) continue;
    const std::uint64_t due = s->dirtied_ms + dirty_page_delay_ms;
    if (due > now) {
      if (next_due == 0 || due < next_due) next_due = due;
      continue;
    }
    // An empty segment other than the spare was kept for its resident pages alone.
    if (s->free_slices == all_page_slices && s != heap->spare) release_segment(heap, s);
    else purge_dirty_slices(heap, s);
  }
  heap->purge_due_ms = next_due;
}

// Gives back every freed page and every empty segment of the heap (the spare included).
void release_idle_memory(Heap* heap) noexcept {
  for (Segment *s = heap->room, *next; s != nullptr; s = next) {
    next = s->room_next;
    if (s->free_slices == all_page_slices) release_segment(heap, s);
    else if (s->dirty_slices != 0) purge_dirty_slices(heap, s);
  }
  heap->purge_due_ms = 0;
}

// A free run of slices for a new page: its first slice (-1: none) and how many of its
// slices are dirty (freed pages still resident: reusing them costs no page faults, and
// what is reused is not left resident beside fresh memory).
struct SliceRun {
  int first = -1;
  unsigned dirty = 0;
};

// The free run of `count` slices (1, 8, or 3 to 16 for a one-block page) with the most
// dirty slices. 8-slice pages start at a multiple of 8 (their blocks' alignment), the
// others anywhere; among equals, single slices and one-block pages take slices from
// groups of 8 already broken, to keep whole groups for 8-slice pages.
SliceRun find_slices(const Segment* s, unsigned count) noexcept {
  const std::uint64_t free = s->free_slices;
  const std::uint64_t dirty = s->dirty_slices;
  std::uint64_t whole_groups = 0;  // 8-slice groups entirely free
  for (unsigned g = 1; g < slices_per_segment / slices_per_large_page; ++g) {
    const std::uint64_t group = std::uint64_t{0xff} << (g * slices_per_large_page);
    if ((free & group) == group) whole_groups |= group;
  }
  if (count == 1) {
    for (const std::uint64_t pick : {dirty & ~whole_groups, dirty}) {
      if (pick != 0) return {__builtin_ctzll(pick), 1};
    }
    for (const std::uint64_t pick : {free & ~whole_groups, free}) {
      if (pick != 0) return {__builtin_ctzll(pick), 0};
    }
    return {};
  }
  // Bit i of `starts`: slices i .. i + count - 1 are free (8-slice pages: a whole group).
  std::uint64_t starts = free;
  for (unsigned i = 1; i < count; ++i) starts &= free >> i;
  if (count == slices_per_large_page) starts &= whole_groups & 0x0101010101010101;
  const std::uint64_t run_mask = (std::uint64_t{1} << count) - 1;
  SliceRun best;
  unsigned best_score = 0;
  for (std::uint64_t left = starts; left != 0; left &= left - 1) {
    const auto first = static_cast<unsigned>(__builtin_ctzll(left));
    const std::uint64_t run = run_mask << first;
    const auto run_dirty = static_cast<unsigned>(__builtin_popcountll(dirty & run));
    const unsigned score = 2 * run_dirty + ((run & whole_groups) == 0 ? 1 : 0) + 1;
    if (score > best_score) {
      best_score = score;
      best = {static_cast<int>(first), run_dirty};
    }
  }
  return best;
}

// Blocks threaded per extension: a 4 KiB system page's worth (at least one block), so a
// page's memory becomes resident as it is used rather than when the page is made.
constexpr std::size_t extend_bytes = 4096;

bool has_unbuilt(const Page* p) noexcept {
  const std::size_t bytes = std::size_t{p->slice_count} * slice_size;
  return p->unbuilt + p->block_size <= bytes;
}

// Threads the next blocks that were never handed out onto `free` (which is empty):
// `want` bytes of them (at least one block, at most the rest of the page).
void extend_free_list(Page* p, std::size_t want = extend_bytes) noexcept {
  const std::size_t bytes = std::size_t{p->slice_count} * slice_size;
  const std::size_t block_size = p->block_size;
  std::size_t count = want / block_size;
  if (count == 0) count = 1;
  const std::size_t left = (bytes - p->unbuilt) / block_size;
  if (count > left) count = left;
  const std::uintptr_t first = page_start(p) + p->unbuilt;
  Block* head = p->free;
  for (std::size_t i = count; i-- > 0;) {
    auto* b = reinterpret_cast<Block*>(first + i * block_size);
    b->next = head;
    head = b;
  }
  p->free = head;
  p->unbuilt += static_cast<std::uint32_t>(count * block_size);
}

Page* new_page(Heap* heap, std::size_t size_class) noexcept {
  const std::size_t block_size = class_size(size_class);
  const unsigned count = page_slice_count(block_size);
  // The run with the most resident memory among the first segments with room.
  Segment* s = nullptr;
  SliceRun best;
  int tries = 0;
  for (Segment* candidate = heap->room; candidate != nullptr && tries < 8; candidate = candidate->room_next, ++tries) {
    const SliceRun run = find_slices(candidate, count);
    if (run.first < 0 || (s != nullptr && run.dirty <= best.dirty)) continue;
    s = candidate;
    best = run;
    if (best.dirty == count || heap->dirty_bytes == 0) break;
  }
  if (s == nullptr) {
    s = new_segment(heap);
    if (s == nullptr) return nullptr;
    best = find_slices(s, count);
  }
  const int first = best.first;
  const std::uint64_t taken = ((std::uint64_t{1} << count) - 1) << first;
  s->free_slices &= ~taken;
  if (const std::uint64_t reused = s->dirty_slices & taken) {
    s->dirty_slices &= ~taken;
    heap->dirty_bytes -= std::size_t(__builtin_popcountll(reused)) * slice_size;
  }
  if (s->free_slices == 0) room_remove(heap, s);
  if (heap->spare == s) heap->spare = nullptr;
  for (unsigned i = 0; i < count; ++i) s->page_of_slice[first + i] = static_cast<std::uint8_t>(first);

  Page* p = &s->pages[first];
  p->heap = heap;
  p->block_size = static_cast<std::uint32_t>(block_size);
  p->size_class = static_cast<std::uint8_t>(size_class);
  p->slice_count = static_cast<std::uint8_t>(count);
  p->used = 0;
  p->in_available = false;
  p->thread_free.store(0, std::memory_order_relaxed);  // a free page has no pending frees
  p->unbuilt = 0;
  p->free = nullptr;
  extend_free_list(p);
  // A thread that only allocates for a while still gives its aged freed pages back.
  if (heap->purge_due_ms != 0) purge_aged_dirty_slices(heap);
  return p;
}

// The page has no block in use and is not current: its slices go back to the segment,
// and a segment with nothing left goes back to the system unless it is the heap's spare.
void free_page(Heap* heap, Page* p) noexcept {
  if (p->in_available) available_remove(heap, p);
  Segment* s = reinterpret_cast<Segment*>(reinterpret_cast<std::uintptr_t>(p) & ~segment_mask);
  const auto first = static_cast<unsigned>(p - s->pages);
  const std::uint64_t slices = ((std::uint64_t{1} << p->slice_count) - 1) << first;
  // The page's touched memory stays resident for a while (the next page of any class
  // reuses it without page faults), up to the heap's dirty budget; beyond that it goes
  // back at once: its slices may stay unused in a segment that lives on.
  const std::size_t bytes = std::size_t{p->slice_count} * slice_size;
  if (heap->dirty_bytes + bytes <= dirty_page_budget) {
    if (s->dirty_slices == 0) {
      s->dirtied_ms = os::monotonic_milliseconds();
      if (heap->purge_due_ms == 0) heap->purge_due_ms = s->dirtied_ms + dirty_page_delay_ms;
    }
    s->dirty_slices |= slices;
    heap->dirty_bytes += bytes;
  } else {
    ErrnoKeeper keep_errno;
    os::decommit(reinterpret_cast<void*>(page_start(p)), bytes);  // with what earlier pages left
  }
  p->heap = nullptr;
  p->free = nullptr;
  s->free_slices |= slices;
  if (!s->in_room) room_add(heap, s);
  if (s->free_slices == all_page_slices) {
    // An empty segment with resident pages stays until they age (see
    // purge_aged_dirty_slices): the next pages, of any class, reuse them.
    if (heap->spare == nullptr) heap->spare = s;
    else if (heap->spare != s && s->dirty_slices == 0) release_segment(heap, s);
  }
  if (heap->purge_due_ms != 0) purge_aged_dirty_slices(heap);
}

// Puts the remote list `value` (a thread_free word just taken) onto `free`.
void splice_remote(Page* p, std::uintptr_t value) noexcept {
  Block* list = reinterpret_cast<Block*>(value & remote_list_mask);
  if (list == nullptr) return;
  const auto count = static_cast<std::uint32_t>(value >> remote_count_shift);
  p->used -= count;
  if (p->free == nullptr) {
    p->free = list;
  } else if (p->used == 0 && count > 16) {
    // Every block is free: threading the page anew (in address order) costs less than
    // finding a long list's tail, a cache miss a block. All that was threaded before at
    // once: that memory is resident.
    const std::size_t was_built = p->unbuilt;
    p->free = nullptr;
    p->unbuilt = 0;
    extend_free_list(p, was_built);
  } else {  // rare: see take_announced()
    Block* tail = list;
    while (tail->next != nullptr) tail = tail->next;
    tail->next = p->free;
    p->free = list;
  }
}

// Moves the blocks other threads freed onto `free`; bit 0 stays as it is.
void collect(Page* p) noexcept {
  std::uintptr_t value = p->thread_free.load(std::memory_order_relaxed);
  do {
    if ((value & remote_list_mask) == 0) return;
  } while (!p->thread_free.compare_exchange_weak(value, value & 1, std::memory_order_acquire,
                                                 std::memory_order_relaxed));
  splice_remote(p, value);
}

// Clears bit 0 of a page just taken off the heap's announced stack, and takes its remote
// frees when that needs no walk of them (the page has no free block: the list becomes
// `free` as it is) or when they are the page's last blocks out (it can be given back).
// Otherwise they wait on thread_free, counted in `used`, for collect() when the page (current or
// available, as it has free blocks) next runs dry: walking them now would be a cache miss
// a block, each block written by another thread.
void take_announced(Page* p) noexcept {
  std::uintptr_t value = p->thread_free.load(std::memory_order_relaxed);
  bool take;
  do {
    take = p->free == nullptr || (value >> remote_count_shift) == p->used;
    // Release: our read of next_announced happens before a freeing thread rewrites it.
  } while (!p->thread_free.compare_exchange_weak(value, take ? 0 : value & ~std::uintptr_t{1},
                                                 std::memory_order_acq_rel, std::memory_order_relaxed));
  if (take) splice_remote(p, value);
}

bool is_announced(const Page* p) noexcept { return (p->thread_free.load(std::memory_order_acquire) & 1) != 0; }

// Puts a page that is not current where it belongs: given back when empty, on the
// available list when it has free blocks.
void settle(Heap* heap, Page* p) noexcept {
  if (heap->current[p->size_class] == p) return;
  // used == 0: no other thread holds a block of it, so none can set bit 0 meanwhile.
  if (p->used == 0 && !is_announced(p)) {
    free_page(heap, p);
  } else if (p->free != nullptr && !p->in_available) {
    available_push(heap, p);
  }
}

void kept_unlink(Heap* heap, Page* p) noexcept {
  if (p->prev != nullptr) p->prev->next = p->next;
  else heap->kept = p->next;
  if (p->next != nullptr) p->next->prev = p->prev;
  heap->kept_empty_bytes -= slice_size;
}

// Keeps a page that other threads' frees have just emptied (not current) for its class,
// within kept_empty_page_budget (smp.hpp); false when it does not.
bool keep_emptied_page(Heap* heap, Page* p) noexcept {
  if (p->used != 0 || p->slice_count != 1 || heap->current[p->size_class] == p) return false;
  if (heap->kept_empty_bytes + slice_size > kept_empty_page_budget) return false;
  if (p->in_available) available_remove(heap, p);
  p->prev = nullptr;
  p->next = heap->kept;
  if (heap->kept != nullptr) heap->kept->prev = p;
  heap->kept = p;
  heap->kept_empty_bytes += slice_size;
  return true;
}

// A kept page of `size_class`, taken off the kept list; or nullptr, and then the oldest
// kept page (of another class) is given back, so that the page made instead reuses its
// memory rather than fresh memory.
Page* take_kept_page(Heap* heap, std::size_t size_class) noexcept {
  Page* oldest = nullptr;
  for (Page* p = heap->kept; p != nullptr; p = p->next) {
    if (p->size_class == size_class) {
      kept_unlink(heap, p);
      return p;
    }
    oldest = p;
  }
  if (oldest != nullptr) {
    kept_unlink(heap, oldest);
    free_page(heap, oldest);
  }
  return nullptr;
}

// Gives back the pages keep_emptied_page() kept.
void release_kept_pages(Heap* heap) noexcept {
  while (Page* p = heap->kept) {
    kept_unlink(heap, p);
    free_page(heap, p);
  }
}

void drain_announced(Heap* heap) noexcept {
  Page* p = heap->announced.exchange(nullptr, std::memory_order_acquire);
  while (p != nullptr) {
    Page* next = p->next_announced;  // read before bit 0 is cleared
    take_announced(p);
    if (!keep_emptied_page(heap, p)) settle(heap, p);
    p = next;
  }
}

// --- thread heaps ---------------------------------------------------------------------

Heap* new_heap() noexcept {
  constexpr std::size_t size = (sizeof(Heap) + 63) & ~std::size_t{63};
  std::uintptr_t at = 0;
  {
    MutexLock guard(span_lock);
    if (meta_end - meta_cursor >= size) {
      at = meta_cursor;
      meta_cursor += size;
    }
  }
  if (at == 0) {
    const std::uintptr_t span = take_span(segment_size, segment_size);
    if (span == 0) return nullptr;
    if (!commit(span, segment_size)) {
      give_span(span, segment_size);
      return nullptr;
    }
    MutexLock guard(span_lock);  // the old chunk's tail is dropped (less than one heap)
    at = span;
    meta_cursor = span + size;
    meta_end = span + segment_size;
  }
  return ::new (reinterpret_cast<void*>(at)) Heap(&empty_page);
}

Heap* adopt_abandoned_heap() noexcept {
  MutexLock guard(abandoned_lock);
  Heap* heap = abandoned_head;
  if (heap != nullptr) abandoned_head = heap->next_abandoned;
  return heap;
}

void exit_key_destructor(void*) noexcept { thread_exit(); }

Heap* start_thread_heap() noexcept {
  if (!start()) return nullptr;
  Heap* heap = adopt_abandoned_heap();
  if (heap == nullptr) heap = new_heap();
  if (heap == nullptr) return nullptr;
  heap->next_abandoned = nullptr;
  // Set before pthread_setspecific: with many keys in use it callocs, and in the shim
  // that comes back here, now served by this heap.
  tls_heap = heap;
  if (have_exit_key) ::pthread_setspecific(exit_key, heap);
  return heap;
}

// A page of `size_class` with a block on `free`, made current; nullptr when out of memory.
Page* find_page(Heap* heap, std::size_t size_class) noexcept {
  Page* current = heap->current[size_class];
  if (current != &empty_page) {
    collect(current);
    if (current->free != nullptr) return current;
  }
  drain_announced(heap);
  if (current != &empty_page) {
    if (current->free != nullptr) return current;
    if (has_unbuilt(current)) {  // freed blocks first, fresh memory only then
      extend_free_list(current);
      return current;
    }
  }
  Page* p = heap->available[size_class];
  if (p != nullptr) {
    available_remove(heap, p);
  } else if (p = take_kept_page(heap, size_class); p == nullptr) {
    p = new_page(heap, size_class);
    if (p == nullptr) return nullptr;
  }
  // The old current page is full (no free block), so it belongs on no list: a local free
  // or an announced remote free brings it back.
  heap->current[size_class] = p;
  return p;
}

// Pushes a list of `count` blocks of page `p` onto its thread_free (one CAS) and, when
// this is the first push since its owner last looked, announces the page to the owner.
void push_remote(Page* p, Block* head, Block* tail, std::uint32_t count) noexcept {
  std::uintptr_t old = p->thread_free.load(std::memory_order_relaxed);
  bool must_announce;
  std::uintptr_t pushed;
  do {
    tail->next = reinterpret_cast<Block*>(old & remote_list_mask);
    must_announce = (old & 1) == 0;
    const std::uintptr_t total = (old >> remote_count_shift) + count;
    pushed = reinterpret_cast<std::uintptr_t>(head) | (total << remote_count_shift) | 1;
  } while (!p->thread_free.compare_exchange_weak(old, pushed, std::memory_order_acq_rel, std::memory_order_relaxed));
  if (!must_announce) return;
  // Bit 0 is ours: the page cannot be given back until its owner has seen this.
  Heap* owner = p->heap;
  Page* top = owner->announced.load(std::memory_order_relaxed);
  do {
    p->next_announced = top;
  } while (!owner->announced.compare_exchange_weak(top, p, std::memory_order_release, std::memory_order_relaxed));
}

// Frees held back per remote page, at most this many at a time and at most this many
// bytes of blocks: the owner cannot reuse them meanwhile (a consumer of 1 KiB messages
// would hold 16 KiB a class).
constexpr std::uint32_t remote_batch_limit = 16;
constexpr std::size_t remote_batch_bytes = 4096;

void flush_remote(Heap* heap, std::size_t size_class) noexcept {
  RemoteBatch& batch = heap->remote[size_class];
  push_remote(batch.page, batch.head, batch.tail, batch.count);
  batch = {};
  heap->remote_pending &= ~(std::uint64_t{1} << size_class);
}

void flush_all_remote(Heap* heap) noexcept {
  for (std::uint64_t pending = heap->remote_pending; pending != 0; pending &= pending - 1) {
    flush_remote(heap, static_cast<std::size_t>(__builtin_ctzll(pending)));
  }
}

// `heap`: the calling thread's (release() has read it already).
[[gnu::noinline]] void remote_free(Heap* heap, Page* p, Block* b) noexcept {
  // Big blocks are few a page, and held back they would keep much memory from their owner.
  if (p->block_size > single_slice_class_limit) return push_remote(p, b, b, 1);
  if (heap == &exited_heap) [[unlikely]] return push_remote(p, b, b, 1);
  if (heap == &empty_heap) [[unlikely]] {
    // A thread that only frees (a consumer) gets a heap to hold its frees in: pushed one
    // at a time they would cost a CAS each on the line the owner allocates from, and an
    // announcement each time the owner has looked. The heap may be an adopted one that
    // owns `b`: free it again, as the heap's thread.
    if (start_thread_heap() == nullptr) return push_remote(p, b, b, 1);
    return release(b);
  }
  const std::size_t size_class = p->size_class;
  RemoteBatch& batch = heap->remote[size_class];
  if (batch.page != p) {
    if (batch.page != nullptr) flush_remote(heap, size_class);
    b->next = nullptr;
    batch.page = p;
    batch.tail = b;
    batch.count = 0;
    heap->remote_pending |= std::uint64_t{1} << size_class;
  } else {
    b->next = batch.head;
  }
  batch.head = b;
  ++batch.count;
  if (batch.count == remote_batch_limit || batch.count * p->block_size >= remote_batch_bytes) {
    flush_remote(heap, size_class);
  }
}

[[gnu::noinline]] void* allocate_slow(Heap* heap, std::size_t size_class) noexcept {
  if (!is_own_heap(heap)) {
    heap = start_thread_heap();
    if (heap == nullptr) {
      errno = ENOMEM;
      return nullptr;
    }
  }
  if (heap->remote_pending != 0) flush_all_remote(heap);
  Page* p = find_page(heap, size_class);
  if (p == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  Block* b = p->free;
  p->free = b->next;
  ++p->used;
  return b;
}

inline void* allocate_class(std::size_t size_class) noexcept {
  Heap* heap = tls_heap;
  Page* p = heap->current[size_class];
  Block* b = p->free;
  if (b == nullptr) [[unlikely]] return allocate_slow(heap, size_class);
  Block* const next = b->next;
  p->free = next;
  // The next allocation of this class takes `next`: start loading its line now (a prefetch
  // of null is harmless). Blocks freed long ago are cold: the debug allocator's quarantine
  // reuses them 16 MiB of frees later, and so are blocks other threads freed; the load of
  // the link in the line was nearly all of this function's time on larson. One
  // instruction when the line is hot already (Linux's SLUB prefetches its next free object
  // the same way).
  __builtin_prefetch(next, 1);
  ++p->used;
  return b;
}

// A local free left the page full-before (head was null) or empty now.
[[gnu::noinline]] void local_free_slow(Heap* heap, Page* p) noexcept {
  // An empty one-block page does not stay current: it would keep up to 1 MiB resident
  // for its class alone. Freed, its slices serve the next page of any class (the same
  // class's next block most likely takes them back: dirty slices go first).
  if (p->slice_count > 1 && p->used == 0 && heap->current[p->size_class] == p) {
    heap->current[p->size_class] = &empty_page;
  }
  settle(heap, p);
}

// --- large blocks -----------------------------------------------------------------------

std::size_t large_usable(const Segment* s) noexcept { return s->commit_end - s->data; }

std::size_t large_committed(const Segment* s) noexcept {
  return s->commit_end - reinterpret_cast<std::uintptr_t>(s);
}

// Pages a large block grows into by realloc are written at once (the copy, then the
// caller's appends): faulting them in with one system call instead of one fault a page
// halves what growth costs. Bounded, for callers that realloc far ahead of their writes.
constexpr std::size_t growth_populate_limit = std::size_t{1} << 20;

void populate_growth(std::uintptr_t begin, std::uintptr_t end) noexcept {
  ErrnoKeeper keep_errno;
  const std::size_t len = end - begin;
  os::populate_write(reinterpret_cast<void*>(begin), len < growth_populate_limit ? len : growth_populate_limit);
}

// Takes entry `i` out of the large cache (span_lock held).
Segment* large_cache_remove(std::size_t i) noexcept {
  Segment* s = large_cache[i];
  for (std::size_t j = i + 1; j < large_cache_count; ++j) large_cache[j - 1] = large_cache[j];
  --large_cache_count;
  large_cache_bytes -= large_committed(s);
  return s;
}

void unmap_large(Segment* s) noexcept {
  const std::uintptr_t span_begin = s->span_begin;
  const std::size_t span_len = s->span_len;
  uncommit(reinterpret_cast<std::uintptr_t>(s), large_committed(s));
  give_span(span_begin, span_len);
}

void unmap_all(Segment** evicted, std::size_t count) noexcept {
  if (count == 0) return;
  ErrnoKeeper keep_errno;
  for (std::size_t i = 0; i < count; ++i) unmap_large(evicted[i]);
}

// Whether `bytes` more fit in the large cache (span_lock held).
bool large_cache_has_room(std::size_t bytes) noexcept {
  if (large_cache_count == large_cache_capacity) return false;
  const std::size_t cached = large_cache_bytes + bytes;
  return cached <= large_cache_limit;
}

// Entries that have waited longer than large_cache_hold_ms, oldest first, moved out of
// the cache into `evicted` (span_lock held). Returns how many.
std::size_t take_aged_large(Segment** evicted, std::size_t evicted_count) noexcept {
  if (large_cache_count == 0) return evicted_count;
  const std::uint64_t now = os::monotonic_milliseconds();
  while (large_cache_count != 0 && now - large_cache[0]->cached_since_ms > large_cache_hold_ms) {
    evicted[evicted_count++] = large_cache_remove(0);
  }
  return evicted_count;
}

// A cached span of `span_len` to `2 * span_len` bytes, taken out of the cache; or nullptr.
// Aged entries leave the cache on the way.
Segment* take_cached_large(std::size_t span_len) noexcept {
  Segment* evicted[large_cache_capacity];
  std::size_t evicted_count;
  Segment* found = nullptr;
  {
    MutexLock guard(span_lock);
    evicted_count = take_aged_large(evicted, 0);
    for (std::size_t i = large_cache_count; i-- > 0;) {  // newest first: its pages are warmest
      const std::size_t len = large_cache[i]->span_len;
      if (len >= span_len && len <= 2 * span_len) {
        found = large_cache_remove(i);
        break;
      }
    }
  }
  unmap_all(evicted, evicted_count);
  return found;
}

// `grown`: the block replaces one that realloc outgrew (its new pages are populated).
void* allocate_large(std::size_t size, std::size_t alignment, bool grown = false) noexcept {
  if (size > max_request || alignment > max_request) return nullptr;
  const std::size_t page = os::page_size();
  if (alignment < page) alignment = page;
  std::size_t data_offset;  // from the span's start
  std::size_t header_offset;
  if (alignment >= segment_size) {
    data_offset = alignment;
    header_offset = alignment - segment_size;
  } else {
    data_offset = align_up(sizeof(Segment), alignment);
    header_offset = 0;
  }
  const std::size_t span_len = align_up(data_offset + (size == 0 ? 1 : size), segment_size);
  const std::size_t commit_len = align_up(data_offset + size, page) - header_offset;

  Segment* s = header_offset == 0 ? take_cached_large(span_len) : nullptr;
  if (s != nullptr) {
    const std::uintptr_t data = s->span_begin + data_offset;
    const std::uintptr_t want_end = align_up(data + size, page);
    if (want_end > s->commit_end) {
      if (!commit(s->commit_end, want_end - s->commit_end)) {
        unmap_large(s);
        return nullptr;
      }
      if (grown) populate_growth(s->commit_end, want_end);
      s->commit_end = want_end;
    } else if (s->commit_end - want_end >= large_trim_threshold) {
      uncommit(want_end, s->commit_end - want_end);  // a smaller block: the tail goes back
      s->commit_end = want_end;
    }
    s->data = data;
    s->used_end = want_end;
    return reinterpret_cast<void*>(data);
  }
  const std::uintptr_t span = take_span(span_len, alignment > segment_size ? alignment : segment_size);
  if (span == 0) return nullptr;
  const std::uintptr_t header = span + header_offset;
  if (!commit(header, commit_len)) {
    give_span(span, span_len);
    return nullptr;
  }
  s = ::new (reinterpret_cast<void*>(header)) Segment();
  s->kind = SegmentKind::large;
  s->span_begin = span;
  s->span_len = span_len;
  s->data = span + data_offset;
  s->commit_end = header + commit_len;
  s->used_end = s->commit_end;
  if (grown) populate_growth(header, s->commit_end);
  return reinterpret_cast<void*>(s->data);
}

void release_large(Segment* s) noexcept {
  ErrnoKeeper keep_errno;
  const std::size_t committed = large_committed(s);
  if (reinterpret_cast<std::uintptr_t>(s) != s->span_begin || committed > large_cache_entry_limit) {
    unmap_large(s);  // segment-aligned blocks and very big ones are not cached
    return;
  }
  // Short of room, the tail the block inherited and did not use goes first: a whole block
  // evicted leaves its next user nothing resident, while a block cut to what its last
  // holder used still saves the next one that much (and the span's system calls).
  bool short_of_room;
  {
    MutexLock guard(span_lock);
    short_of_room = !large_cache_has_room(committed);
  }
  if (short_of_room && s->commit_end - s->used_end >= slice_size) {
    uncommit(s->used_end, s->commit_end - s->used_end);
    s->commit_end = s->used_end;
  }
  const std::size_t kept = large_committed(s);
  s->cached_since_ms = os::monotonic_milliseconds();
  Segment* evicted[2 * large_cache_capacity];
  std::size_t evicted_count = 0;
  {
    MutexLock guard(span_lock);
    evicted_count = take_aged_large(evicted, 0);
    while (large_cache_count != 0 && !large_cache_has_room(kept)) evicted[evicted_count++] = large_cache_remove(0);
    large_cache[large_cache_count++] = s;
    large_cache_bytes += kept;
  }
  unmap_all(evicted, evicted_count);
}

bool resize_large(Segment* s, std::size_t new_size) noexcept {
  const std::size_t page = os::page_size();
  const std::uintptr_t span_end = s->span_begin + s->span_len;
  if (new_size > max_request || span_end - s->data < new_size) return false;
  const std::uintptr_t want_end = align_up(s->data + new_size, page);
  if (want_end > s->commit_end) {
    if (!commit(s->commit_end, want_end - s->commit_end)) return false;
    populate_growth(s->commit_end, want_end);
    s->commit_end = want_end;
  } else if (s->commit_end - want_end >= large_trim_threshold) {
    ErrnoKeeper keep_errno;  // shrinking by this much gives the tail back
    uncommit(want_end, s->commit_end - want_end);
    s->commit_end = want_end;
  }
  s->used_end = want_end;
  return true;
}

// How every block of class `c` is aligned: one-block pages start at any slice; blocks
// sharing a page at multiples of their size from a slice boundary (8-slice pages start at
// a multiple of 8 slices, so a 128 KiB class is 128 KiB aligned).
std::size_t class_block_alignment(std::size_t c) noexcept {
  const std::size_t size = class_size(c);
  return size > multi_block_class_limit ? slice_size : size & (~size + 1);
}

// The smallest class that holds `size` bytes with blocks aligned to `alignment`, or
// class_count when only a large block will do.
std::size_t aligned_class(std::size_t size, std::size_t alignment) noexcept {
  if (size > max_class_size || alignment > max_class_size) return class_count;
  std::size_t c = class_of(size < alignment ? alignment : size);
  while (c < class_count && class_block_alignment(c) < alignment) ++c;
  return c;
}

}  // namespace

// --- the interface --------------------------------------------------------------------

bool start() noexcept {
  if (started.load(std::memory_order_acquire)) return true;
  MutexLock guard(start_lock);
  if (started.load(std::memory_order_relaxed)) return true;
  // As much address space as the system gives, from 1 TiB down: it costs no memory.
  std::size_t len = std::size_t{1} << 40;
  void* range = nullptr;
  for (; len >= (std::size_t{1} << 30); len /= 2) {
    range = os::reserve(len);
    if (range != nullptr) break;
  }
  if (range == nullptr) return false;
  const auto begin = align_up(reinterpret_cast<std::uintptr_t>(range), segment_size);
  const auto end = (reinterpret_cast<std::uintptr_t>(range) + len) & ~segment_mask;
  if (end > (std::uintptr_t{1} << remote_count_shift)) {  // Page::thread_free could not hold a block
    os::unmap(range, len);
    return false;
  }
  have_exit_key = ::pthread_key_create(&exit_key, exit_key_destructor) == 0;
  span_cursor = begin;
  reserve_begin.store(begin, std::memory_order_relaxed);
  reserve_end.store(end, std::memory_order_relaxed);
  started.store(true, std::memory_order_release);
  return true;
}

namespace {

// Out of line, so that the fast path in allocate() saves no registers.
[[gnu::noinline]] void* allocate_aligned_or_large(std::size_t size, std::size_t alignment) noexcept {
  const std::size_t c = aligned_class(size, alignment);
  if (c < class_count) return allocate_class(c);
  void* p = start() ? allocate_large(size, alignment) : nullptr;
  if (p == nullptr) errno = ENOMEM;
  return p;
}

// A large block (it can grow in place), whatever its size.
void* allocate_growable(std::size_t size) noexcept {
  void* p = allocate_large(size, 16, true);
  if (p == nullptr) errno = ENOMEM;
  return p;
}

}  // namespace

void* allocate(std::size_t size, std::size_t alignment) noexcept {
  if (alignment <= 16 && size <= max_class_size) [[likely]] return allocate_class(class_of(size));
  return allocate_aligned_or_large(size, alignment);
}

void* allocate_default(std::size_t size) noexcept {
  if (size <= max_class_size) [[likely]] return allocate_class(class_of(size));
  return allocate_aligned_or_large(size, 16);
}

void release(void* ptr) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(ptr);
  if ((a & segment_mask) == 0) [[unlikely]] return release_large(segment_of(ptr));
  auto* s = reinterpret_cast<Segment*>(a & ~segment_mask);
  Page* p = page_of(s, ptr);
  auto* b = static_cast<Block*>(ptr);
  Heap* heap = tls_heap;
  if (p->heap == heap) [[likely]] {
    Block* head = p->free;
    b->next = head;
    p->free = b;
    const std::uint32_t used = --p->used;
    if ((used == 0) | (head == nullptr)) [[unlikely]] local_free_slow(heap, p);
    return;
  }
  if (s->kind == SegmentKind::large) return release_large(s);
  remote_free(heap, p, b);
}

void release_sized(void* ptr, std::size_t) noexcept { release(ptr); }

std::size_t usable_size(const void* ptr) noexcept {
  Segment* s = segment_of(ptr);
  if (s->kind == SegmentKind::large) return large_usable(s);
  return page_of(s, ptr)->block_size;
}

bool resize_in_place(void* ptr, std::size_t new_size) noexcept {
  Segment* s = segment_of(ptr);
  if (s->kind == SegmentKind::large) return resize_large(s, new_size);
  return new_size <= page_of(s, ptr)->block_size;
}

void* reallocate(void* ptr, std::size_t size) noexcept {
  Segment* s = segment_of(ptr);
  std::size_t usable;
  if (s->kind == SegmentKind::large) {
    if (size > multi_block_class_limit && resize_large(s, size)) return ptr;
    usable = large_usable(s);
  } else {
    usable = page_of(s, ptr)->block_size;
    // Fits, and shrinking would not move it to a class at most half its size.
    if (size <= usable && (size > usable / 2 || usable <= 128)) return ptr;
  }
  // A block that realloc grows past 128 KiB is likely to grow again: as a large block it
  // grows in place (its span has room) instead of being copied at every class.
  void* moved = size > multi_block_class_limit && size > usable ? allocate_growable(size) : allocate_default(size);
  if (moved == nullptr) return nullptr;
  std::memcpy(moved, ptr, size < usable ? size : usable);
  release(ptr);
  return moved;
}

bool prefer_huge_pages() noexcept {
  const std::uintptr_t begin = range_begin();
  if (begin == 0) return false;
  return os::advise_huge_pages(reinterpret_cast<void*>(begin), range_end() - begin);
}

std::uintptr_t range_begin() noexcept { return reserve_begin.load(std::memory_order_relaxed); }
std::uintptr_t range_end() noexcept { return reserve_end.load(std::memory_order_relaxed); }

void fork_prepare() noexcept {
  start_lock.lock();
  abandoned_lock.lock();
  span_lock.lock();
}
void fork_parent() noexcept {
  span_lock.unlock();
  abandoned_lock.unlock();
  start_lock.unlock();
}
void fork_child() noexcept { fork_parent(); }  // the forking thread holds them in the child too

void thread_exit() noexcept {
  Heap* heap = tls_heap;
  if (!is_own_heap(heap)) return;
  flush_all_remote(heap);
  drain_announced(heap);
  for (std::size_t c = 0; c < class_count; ++c) {
    Page* p = heap->current[c];
    if (p == &empty_page) continue;
    heap->current[c] = &empty_page;
    collect(p);
    settle(heap, p);
  }
  release_kept_pages(heap);
  // The heap is adopted by the next new thread, which reuses its freed pages without page
  // faults (they go back as they age once that thread makes or frees pages): a program
  // that starts a thread per task pays no madvise and no refault per thread. Beyond
  // exit_dirty_kept they go back now, as a heap nobody adopts keeps what it holds.
  if (heap->dirty_bytes > exit_dirty_kept) release_idle_memory(heap);
  tls_heap = &exited_heap;
  MutexLock guard(abandoned_lock);
  heap->next_abandoned = abandoned_head;
  abandoned_head = heap;
}

namespace {

}  // namespace

void trim() noexcept {
  ErrnoKeeper keep_errno;
  Heap* heap = tls_heap;
  if (is_own_heap(heap)) {
    flush_all_remote(heap);
    drain_announced(heap);
    for (Page*& p : heap->current) {  // empty current pages are kept only against thrashing
      if (p == &empty_page) continue;
      collect(p);
      if (p->used != 0) continue;
      Page* empty = p;
      p = &empty_page;
      settle(heap, empty);
    }
    release_kept_pages(heap);
    release_idle_memory(heap);  // after the pages just freed joined it
  }
  for (std::uintptr_t empty; (empty = take_empty_segment()) != 0;) {
    uncommit(empty, segment_size);
    give_span(empty, segment_size);
  }
  for (;;) {
    Segment* s = nullptr;
    {
      MutexLock guard(span_lock);
      if (large_cache_count != 0) s = large_cache_remove(0);
    }
    if (s == nullptr) return;
    unmap_large(s);
  }
}

Stats stats() noexcept {
  std::size_t cached;
  std::size_t empty;
  {
    MutexLock guard(span_lock);
    cached = large_cache_bytes;
    empty = empty_segment_count * segment_size;
  }
  std::size_t held = 0;
  for (const RemoteBatch& batch : tls_heap->remote) held += batch.count;
  return {committed_bytes.load(std::memory_order_relaxed), segment_count.load(std::memory_order_relaxed), cached,
          empty, tls_heap->dirty_bytes, held, tls_heap->kept_empty_bytes};
}

}  // namespace zheap::smp
