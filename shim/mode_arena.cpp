// arena mode: one bump arena per thread; free costs almost nothing.
//
// For: short-lived batch programs that allocate a lot and free little or in LIFO order.
// Memory is handed back only by whole large blocks; everything else lives until exit.
//
// Layout: all memory comes from one reserved address range (os::reserve, PROT_NONE, no
// commit charge), so "is this pointer ours" is one range compare. The range is carved
// into spans (page multiples) by a bump cursor plus a small list of freed spans:
//   chunk  (4 MiB, committed on demand, never given back): a thread bumps through it.
//          A thread's first chunk starts with its ThreadState (64 bytes).
//   large  (requests of 1 MiB and more): a span of its own, uncommitted on free.
// Every block has a 16-byte header just before it: usable size, the offset from the
// block's start (or its span's start) to the data, its kind, and for small blocks the
// distance back to the previous block; so free without size and malloc_usable_size are
// exact, and LIFO frees unwind the bump one block after another.
//
// Thread safety: a thread's bump state is touched only by that thread (through an
// initial-exec TLS pointer). free() looks at the *calling* thread's state only: if the
// block is that thread's most recent one the bump rolls back, otherwise the free is only
// counted; so a free from another thread never touches the owner's state. Large blocks
// and the span list are shared, under span_lock.
// Thread exit: a pthread key destructor (the key is created at start-up; setting it may
// allocate once per thread, from bootstrap) puts the state on a retired list; the next
// new thread adopts it with its chunk's unused tail. Blocks in the chunks stay valid.
// Limit: ZHEAP_ARENA_LIMIT caps the bytes committed (chunks + large blocks); beyond it
// allocation fails (ENOMEM / std::bad_alloc).
// Locks, in order (after dispatch's start-up lock): span_lock, then retired_lock.
// Refuses: alignments above 1 GiB.
#include <pthread.h>

#include <zheap/mutex.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "bootstrap.hpp"
#include "dispatch.hpp"
#include "heap.hpp"
#include "os/os.hpp"
#include "report.hpp"
#include "settings.hpp"

namespace zheap::shim {

namespace {

constexpr std::size_t chunk_size = std::size_t{4} << 20;
// Requests this big get a span of their own, so freeing them gives memory back. A quarter
// of a chunk at most, so a fresh chunk always has room for a small request.
constexpr std::size_t large_threshold = std::size_t{1} << 20;
constexpr std::size_t header_size = 16;
constexpr std::size_t max_alignment = std::size_t{1} << 30;
constexpr std::size_t free_span_capacity = 1024;

enum class Kind : std::uint32_t { small = 0x5a41534d, large = 0x5a414c47 };

// Small blocks (< large_threshold, so 32-bit fields suffice) also record the distance back
// to the previous block's data in the same chunk, so that freeing blocks in LIFO order
// unwinds the bump step by step (a std::string's buffer, then the string).
struct SmallHeader {
  std::uint32_t usable;     // bytes from the data pointer the caller may use
  std::uint32_t offset;     // data - block start
  std::uint32_t prev_gap;   // data - previous block's data; 0: first block of the chunk
  Kind kind;                // Kind::small
};
struct LargeHeader {
  std::uint64_t usable;     // bytes from the data pointer the caller may use
  std::uint32_t offset;     // data - span start
  Kind kind;                // Kind::large
};
static_assert(sizeof(SmallHeader) == header_size && sizeof(LargeHeader) == header_size);
static_assert(offsetof(SmallHeader, kind) == offsetof(LargeHeader, kind));

Kind kind_of(void* ptr) noexcept {
  Kind kind;
  std::memcpy(&kind, static_cast<unsigned char*>(ptr) - sizeof(Kind), sizeof kind);
  return kind;
}

struct alignas(64) ThreadState {
  std::uintptr_t cursor;   // next free byte in the current chunk
  std::uintptr_t end;      // end of the current chunk
  std::uintptr_t last;     // data address of the most recent block, 0 when none
  std::uint64_t frees;     // frees that gave nothing back (counted only)
  ThreadState* next_retired;
};

struct Span {
  std::uintptr_t begin;
  std::size_t len;
};

constinit std::uintptr_t reserve_begin = 0;
constinit std::uintptr_t reserve_end = 0;
constinit std::size_t limit = 0;  // 0: no cap
constinit std::atomic<std::size_t> committed{0};

// Lock order 2a. Guards span_cursor and free_spans.
constinit Mutex span_lock;
constinit std::uintptr_t span_cursor = 0;
constinit Span free_spans[free_span_capacity] = {};
constinit std::size_t free_span_count = 0;

// Lock order 2b. Guards retired_head.
constinit Mutex retired_lock;
constinit ThreadState* retired_head = nullptr;

constinit pthread_key_t state_key = 0;
[[gnu::tls_model("initial-exec")]] constinit thread_local ThreadState* thread_state = nullptr;

// Every failed allocation goes through here: malloc's contract (libc_conformant).
void* out_of_memory() noexcept {
  errno = ENOMEM;
  return nullptr;
}

std::uintptr_t align_up(std::uintptr_t value, std::size_t alignment) noexcept {
  return (value + alignment - 1) & ~(std::uintptr_t{alignment} - 1);
}

template <class Header>
Header* header_of(void* ptr) noexcept {
  return reinterpret_cast<Header*>(static_cast<unsigned char*>(ptr) - header_size);
}

// --- spans of the reserved range -----------------------------------------------------

void remember_free_span(std::uintptr_t begin, std::size_t len) noexcept {  // under span_lock
  if (len == 0) return;
  if (free_span_count < free_span_capacity) free_spans[free_span_count++] = {begin, len};
  // else: the address range is dropped (it stays reserved, costing no memory)
}

std::uintptr_t carve_span(std::size_t len, std::size_t alignment) noexcept {
  MutexLock guard(span_lock);
  for (std::size_t i = 0; i < free_span_count; ++i) {  // first fit
    const Span span = free_spans[i];
    const std::uintptr_t begin = align_up(span.begin, alignment);
    if (begin < span.begin || begin + len < begin || begin + len > span.begin + span.len) continue;
    free_spans[i] = free_spans[--free_span_count];
    remember_free_span(span.begin, begin - span.begin);
    remember_free_span(begin + len, span.begin + span.len - (begin + len));
    return begin;
  }
  const std::uintptr_t begin = align_up(span_cursor, alignment);
  if (begin < span_cursor || begin > reserve_end || reserve_end - begin < len) return 0;
  remember_free_span(span_cursor, begin - span_cursor);
  span_cursor = begin + len;
  return begin;
}

// A committed span of `len` bytes (a page multiple), or 0 (limit, reserve exhausted).
std::uintptr_t take_span(std::size_t len, std::size_t alignment) noexcept {
  const std::size_t before = committed.fetch_add(len, std::memory_order_relaxed);
  if (limit != 0 && (before + len > limit || before + len < before)) {
    committed.fetch_sub(len, std::memory_order_relaxed);
    return 0;
  }
  const std::uintptr_t begin = carve_span(len, alignment);
  if (begin != 0 && os::protect_read_write(reinterpret_cast<void*>(begin), len)) return begin;
  if (begin != 0) {
    MutexLock guard(span_lock);
    remember_free_span(begin, len);
  }
  committed.fetch_sub(len, std::memory_order_relaxed);
  return 0;
}

void give_span(std::uintptr_t begin, std::size_t len) noexcept {
  const int saved_errno = errno;  // free() leaves errno alone
  os::uncommit(reinterpret_cast<void*>(begin), len);
  errno = saved_errno;
  committed.fetch_sub(len, std::memory_order_relaxed);
  MutexLock guard(span_lock);
  remember_free_span(begin, len);
}

// --- thread states -------------------------------------------------------------------

void retire_thread_state(void* state) noexcept {  // pthread key destructor, at thread exit
  auto* s = static_cast<ThreadState*>(state);
  thread_state = nullptr;
  MutexLock guard(retired_lock);
  s->next_retired = retired_head;
  retired_head = s;
}

ThreadState* adopt_retired_state() noexcept {
  MutexLock guard(retired_lock);
  ThreadState* s = retired_head;
  if (s != nullptr) retired_head = s->next_retired;
  return s;
}

ThreadState* new_thread_state() noexcept {
  const std::uintptr_t chunk = take_span(chunk_size, os::page_size());
  if (chunk == 0) return nullptr;
  auto* s = reinterpret_cast<ThreadState*>(chunk);  // fresh pages: already zero
  s->cursor = chunk + sizeof(ThreadState);
  s->end = chunk + chunk_size;
  return s;
}

// The calling thread's state, made on its first allocation. nullptr when re-entered (the
// caller then uses bootstrap) or out of memory.
ThreadState* thread_state_slow() noexcept {
  if (reentered()) return nullptr;
  ReentryGuard guard;  // pthread_setspecific may calloc the key's second-level array
  ThreadState* s = adopt_retired_state();
  if (s == nullptr) s = new_thread_state();
  if (s == nullptr) return nullptr;
  s->next_retired = nullptr;
  thread_state = s;
  ::pthread_setspecific(state_key, s);
  return s;
}

// --- blocks --------------------------------------------------------------------------

void* allocate_large(std::size_t size, std::size_t alignment) noexcept {
  const std::size_t page = os::page_size();
  const std::size_t data_offset = alignment > header_size ? alignment : header_size;
  if (size > PTRDIFF_MAX) return out_of_memory();
  const std::size_t len = align_up(data_offset + size, page);
  const std::uintptr_t span = take_span(len, alignment > page ? alignment : page);
  if (span == 0) return out_of_memory();
  const std::uintptr_t data = span + data_offset;
  auto* header = reinterpret_cast<LargeHeader*>(data - header_size);
  header->usable = len - data_offset;
  header->offset = static_cast<std::uint32_t>(data_offset);
  header->kind = Kind::large;
  return reinterpret_cast<void*>(data);
}

bool next_chunk(ThreadState* s) noexcept {
  const std::uintptr_t chunk = take_span(chunk_size, os::page_size());
  if (chunk == 0) return false;
  s->cursor = chunk;  // the old chunk's tail is abandoned (at most large_threshold + header)
  s->end = chunk + chunk_size;
  s->last = 0;
  return true;
}

void* arena_allocate(std::size_t size, std::size_t alignment) noexcept {
  if (alignment > max_alignment) return out_of_memory();
  if (size >= large_threshold || alignment >= large_threshold) return allocate_large(size, alignment);
  ThreadState* s = thread_state;
  if (s == nullptr) [[unlikely]] {
    s = thread_state_slow();
    if (s == nullptr) return reentered() ? bootstrap::allocate(size, alignment) : out_of_memory();
  }
  const std::size_t rounded = (size + 15) & ~std::size_t{15};
  std::uintptr_t data = align_up(s->cursor + header_size, alignment);
  if (data + rounded > s->end) [[unlikely]] {
    if (!next_chunk(s)) return out_of_memory();
    data = align_up(s->cursor + header_size, alignment);
  }
  auto* header = reinterpret_cast<SmallHeader*>(data - header_size);
  header->usable = static_cast<std::uint32_t>(rounded);
  header->offset = static_cast<std::uint32_t>(data - s->cursor);
  header->prev_gap = s->last == 0 ? 0 : static_cast<std::uint32_t>(data - s->last);
  header->kind = Kind::small;
  s->cursor = data + rounded;
  s->last = data;
  return reinterpret_cast<void*>(data);
}

void* arena_allocate_default(std::size_t size) noexcept { return arena_allocate(size, 16); }

void* arena_allocate_zeroed(std::size_t size) noexcept {
  void* p = arena_allocate(size, 16);
  // Large blocks are fresh (or uncommitted and recommitted) pages: zero already.
  if (p != nullptr && kind_of(p) == Kind::small) std::memset(p, 0, size);
  return p;
}

void arena_release(void* ptr) noexcept {
  if (kind_of(ptr) == Kind::large) {
    const LargeHeader* header = header_of<LargeHeader>(ptr);
    const std::uintptr_t span = reinterpret_cast<std::uintptr_t>(ptr) - header->offset;
    give_span(span, header->offset + header->usable);
    return;
  }
  ThreadState* s = thread_state;
  if (s == nullptr) return;
  const auto data = reinterpret_cast<std::uintptr_t>(ptr);
  if (s->last == data) {
    // The most recent block: roll the bump back, and make the block before it the most
    // recent one (if it is still live, freeing it next rolls back further).
    const SmallHeader* header = header_of<SmallHeader>(ptr);
    s->cursor = data - header->offset;
    s->last = header->prev_gap == 0 ? 0 : data - header->prev_gap;
  } else {
    ++s->frees;
  }
}

std::size_t arena_usable_size(void* ptr) noexcept {
  if (kind_of(ptr) == Kind::large) return header_of<LargeHeader>(ptr)->usable;
  return header_of<SmallHeader>(ptr)->usable;
}

void* arena_reallocate(void* ptr, std::size_t size) noexcept {
  const std::size_t usable = arena_usable_size(ptr);
  if (size <= usable) return ptr;  // shrinking keeps the block as it is
  const std::size_t rounded = (size + 15) & ~std::size_t{15};
  ThreadState* s = thread_state;
  const auto data = reinterpret_cast<std::uintptr_t>(ptr);
  if (kind_of(ptr) == Kind::small && size < large_threshold && s != nullptr && s->last == data &&
      rounded <= s->end - data) {
    header_of<SmallHeader>(ptr)->usable = static_cast<std::uint32_t>(rounded);  // grows in place
    s->cursor = data + rounded;
    return ptr;
  }
  void* moved = arena_allocate(size, 16);
  if (moved == nullptr) return nullptr;
  std::memcpy(moved, ptr, usable);
  arena_release(ptr);
  return moved;
}

// Lock order: span_lock, then retired_lock; released in reverse.
void arena_fork_prepare() noexcept {
  span_lock.lock();
  retired_lock.lock();
}
void arena_fork_release() noexcept {
  retired_lock.unlock();
  span_lock.unlock();
}

constinit Heap arena_heap = {
    .name = "arena",
    .allocate = arena_allocate,
    .allocate_default = arena_allocate_default,
    .allocate_zeroed = arena_allocate_zeroed,
    .release = arena_release,
    .release_sized = nullptr,
    .usable_size = arena_usable_size,
    .reallocate = arena_reallocate,
    .owns = Ownership::reserved_range,
    .libc_conformant = true,
    .range_begin = 0,  // the reserve, set at start
    .range_end = 0,
    .fork_prepare = arena_fork_prepare,
    .fork_release = arena_fork_release,
    .detailed = nullptr,
};

}  // namespace

const Heap* start_arena_heap() noexcept {
  // As much address space as the system gives, from 1 TiB down: it costs no memory.
  std::size_t len = std::size_t{1} << 40;
  void* range = nullptr;
  for (; len >= (std::size_t{1} << 30); len /= 2) {
    range = os::reserve(len);
    if (range != nullptr) break;
  }
  if (range == nullptr) {
    report_mode_unavailable("arena", "cannot reserve 1 GiB of address space", "libc");
    return nullptr;
  }
  if (::pthread_key_create(&state_key, retire_thread_state) != 0) {
    os::unmap(range, len);
    report_mode_unavailable("arena", "no pthread key left", "libc");
    return nullptr;
  }
  reserve_begin = reinterpret_cast<std::uintptr_t>(range);
  reserve_end = reserve_begin + len;
  span_cursor = reserve_begin;
  limit = arena_limit();
  arena_heap.range_begin = reserve_begin;
  arena_heap.range_end = reserve_end;
  return &arena_heap;
}

}  // namespace zheap::shim
