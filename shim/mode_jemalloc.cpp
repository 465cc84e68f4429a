// jemalloc mode: Debian's libjemalloc.so.2 serves every call.
//
// libjemalloc.so.2 is a link-time dependency of libzheap.so (it uses static TLS, so it
// cannot be dlopen()ed later). Its public malloc/free are reached through dlsym on its own
// handle: calling them by name from here would bind back to zheap's exported malloc.
// The default-alignment hot path calls jemalloc's malloc/free directly from the dispatch
// (no glue function in between): in jemalloc 5.3 they are faster than mallocx/dallocx,
// whose flag decoding costs a few instructions. mallocx is used for larger alignments;
// when the caller knows the size (sized delete, free_sized), jemalloc's own sized operator
// delete (its free fast path given the size), or sdallocx where that is missing.
//
// Ownership: every extent jemalloc hands to users is carved from ONE address range that
// zheap reserves at start-up, so "is this pointer jemalloc's?" is the same single range
// compare as arena mode's (Ownership::reserved_range). At start-up, before the first user
// allocation goes to jemalloc, extent hooks (`arena.<i>.extent_hooks`, jemalloc(3)) are
// installed on every automatic arena (writing them creates an arena that does not exist
// yet) and on the huge arena (requests >= opt.oversize_threshold, 8 MiB by default),
// which jemalloc only creates on demand: it is created by binding this thread to it
// (`thread.arena`) for the moment the hooks are written, and given the eager purging
// jemalloc gives it when it creates it itself.
//   alloc           bumps down through the reserve (lock-free; top down, as mmap places
//                   jemalloc's own mappings), commits with mprotect; honours alignment
//                   and new_addr (only where the bump lands); the pages are fresh, so
//                   always zeroed and committed.
//   dalloc          opts out for our extents (jemalloc retains and reuses them; addresses
//                   are never given back to the kernel, only their memory, by purging).
//   decommit        opts out (as jemalloc does by default on Linux): it purges instead,
//                   and the range never fragments into many mappings.
//   commit          mprotect read-write (only reached for extents decommitted by others).
//   purge_lazy      MADV_FREE; purge_forced MADV_DONTNEED.
//   split, merge    allowed inside the reserve.
// Memory jemalloc mapped before the hooks lies outside the reserve: its metadata (never a
// user block), a few live internal blocks (the first thread's tcache stack), and the free
// rest of the 2 MiB it grew arena 0 by. That rest would be handed to users, so for extents
// outside the reserve the hooks refuse split, merge and commit and accept dalloc (they
// unmap it): jemalloc abandons an extent it cannot split (extent_recycle_split), forgets
// one it dallocs. Start-up then drains each arena that existed before its hooks: it purges
// it (dirty extents are dalloc'ed) and allocates from it until a block lands inside the
// reserve, keeping (leaking) any block that did not (drain_preexisting_extents; under
// LD_PRELOAD the first block already lands inside, after one refused split), and brings
// the arena's growth steps back to their start, as if it had not grown yet.
// Left open: if one of those live internal blocks is freed while the process runs (the
// first thread's tcache, when that thread calls pthread_exit), its extent could be reused
// whole, without a split, for a request of exactly its size: that block would read as
// foreign, its free be reported once and ignored. And a program that calls jemalloc
// itself before zheap starts (in-process tests link it) leaves partly used slabs outside
// the reserve, with the same outcome. Never a crash: a pointer outside the reserve never
// reaches jemalloc.
// Pointers outside the reserve go to glibc when they look like glibc's (dispatch.hpp,
// glibc_chunks.hpp), and are otherwise reported once and ignored.
// Refuses: nothing beyond jemalloc's own limits; a request fails (ENOMEM) once the
// reserve (1 TiB, or the most the system grants) is used up.
#include "heap.hpp"
#include "report.hpp"

#if ZHEAP_HAVE_JEMALLOC

#include <dlfcn.h>
#include <sys/types.h>  // ssize_t, jemalloc's decay times
// jemalloc's non-standard API (mallocx, sdallocx, mallctl) and extent_hooks_t; zheap does
// not export these names, so they bind to jemalloc.
#include <jemalloc/jemalloc.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdint>

#include "dispatch.hpp"
#include "os/os.hpp"

namespace zheap::shim {

namespace {

// --- the reserve every extent is carved from -----------------------------------------

constinit std::uintptr_t reserve_begin = 0;
constinit std::uintptr_t reserve_end = 0;
constinit std::atomic<std::uintptr_t> reserve_cursor{0};  // end of the unused part (used downwards)

bool in_reserve(const void* addr, std::size_t size) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  return a >= reserve_begin && a <= reserve_end && size <= reserve_end - a;
}

// jemalloc calls the hooks from inside malloc and free, which must leave errno alone
// when they succeed; the system calls below may set it.
class ErrnoKept {
 public:
  ErrnoKept() noexcept : saved_(errno) {}
  ~ErrnoKept() { errno = saved_; }
  ErrnoKept(const ErrnoKept&) = delete;
  ErrnoKept& operator=(const ErrnoKept&) = delete;

 private:
  int saved_;
};

// Takes [begin, begin + size) just below the cursor: the reserve is used from its top
// down, as mmap places jemalloc's own mappings when it runs alone, so that its extents lie
// in the same order (older ones at higher addresses) and coalesce as they would there.
// Carved upwards, successive growths were adjacent in the other order, freed large
// extents merged into 8 MiB ones more often, and each such merge is purged at once
// (jemalloc's oversize shortcut): realloc_growth took 10% more page faults.
// `expected_begin` non-zero: only there (a request to grow an extent in place, which the
// downward cursor can never satisfy, as jemalloc's mmap hint above its newest mapping
// cannot either).
void* carve(std::size_t size, std::size_t alignment, std::uintptr_t expected_begin) noexcept {
  std::uintptr_t cursor = reserve_cursor.load(std::memory_order_relaxed);
  std::uintptr_t begin;
  do {
    if (cursor - reserve_begin < size) return nullptr;
    begin = (cursor - size) & ~(std::uintptr_t{alignment} - 1);
    if (begin < reserve_begin) return nullptr;
    if (expected_begin != 0 && begin != expected_begin) return nullptr;
  } while (!reserve_cursor.compare_exchange_weak(cursor, begin, std::memory_order_relaxed));
  // An alignment gap above `begin + size` stays reserved and unused: address space only.
  void* p = reinterpret_cast<void*>(begin);
  if (!os::protect_read_write(p, size)) return nullptr;  // leaks the addresses, not memory
  return p;
}

void* hook_alloc(extent_hooks_t*, void* new_addr, std::size_t size, std::size_t alignment, bool* zero,
                 bool* commit, unsigned) {
  const ErrnoKept errno_kept;
  const std::size_t page = os::page_size();
  void* p = carve(size, alignment < page ? page : alignment, reinterpret_cast<std::uintptr_t>(new_addr));
  if (p == nullptr) return nullptr;
  *zero = true;  // pages never touched before
  *commit = true;
  return p;
}

bool hook_dalloc(extent_hooks_t*, void* addr, std::size_t size, bool, unsigned) {
  if (in_reserve(addr, size)) return true;  // opt out: jemalloc keeps the extent for reuse
  // Mapped by jemalloc before the hooks: jemalloc forgets it, and it is unmapped, unless
  // jemalloc took it with sbrk (opt.dss): a hole in the brk segment is left alone.
  const ErrnoKept errno_kept;
  if (!in_glibc_brk_heap(addr)) os::unmap(addr, size);
  return false;
}

void hook_destroy(extent_hooks_t*, void* addr, std::size_t size, bool, unsigned) {
  const ErrnoKept errno_kept;
  if (in_reserve(addr, size)) {
    os::uncommit(addr, size);  // the addresses stay reserved and are never carved again
  } else if (!in_glibc_brk_heap(addr)) {
    os::unmap(addr, size);
  }
}

bool hook_commit(extent_hooks_t*, void* addr, std::size_t, std::size_t offset, std::size_t length,
                 unsigned) {
  void* part = static_cast<char*>(addr) + offset;
  if (!in_reserve(part, length)) return true;  // never reuse memory outside the reserve
  const ErrnoKept errno_kept;
  return !os::protect_read_write(part, length);
}

bool hook_decommit(extent_hooks_t*, void*, std::size_t, std::size_t, std::size_t, unsigned) {
  return true;  // opt out: jemalloc purges instead
}

bool hook_purge_lazy(extent_hooks_t*, void* addr, std::size_t, std::size_t offset, std::size_t length,
                     unsigned) {
  const ErrnoKept errno_kept;  // MADV_FREE is EINVAL before Linux 4.5
  return !os::discard_lazily(static_cast<char*>(addr) + offset, length);
}

bool hook_purge_forced(extent_hooks_t*, void* addr, std::size_t, std::size_t offset,
                       std::size_t length, unsigned) {
  const ErrnoKept errno_kept;
  os::decommit(static_cast<char*>(addr) + offset, length);  // reads as zeros afterwards
  return false;
}

bool hook_split(extent_hooks_t*, void* addr, std::size_t size, std::size_t, std::size_t, bool, unsigned) {
  return !in_reserve(addr, size);
}

bool hook_merge(extent_hooks_t*, void* addr_a, std::size_t size_a, void* addr_b, std::size_t size_b, bool,
                unsigned) {
  return !in_reserve(addr_a, size_a) || !in_reserve(addr_b, size_b);
}

constinit extent_hooks_t reserve_hooks = {
    .alloc = hook_alloc,
    .dalloc = hook_dalloc,
    .destroy = hook_destroy,
    .commit = hook_commit,
    .decommit = hook_decommit,
    .purge_lazy = hook_purge_lazy,
    .purge_forced = hook_purge_forced,
    .split = hook_split,
    .merge = hook_merge,
};

// --- installing the hooks ------------------------------------------------------------

// "arena.<index>.<leaf>" into `buffer` (no snprintf: it may allocate).
const char* arena_ctl_name(char (&buffer)[64], unsigned index, const char* leaf) noexcept {
  char digits[12];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index != 0);
  std::size_t at = 0;
  for (const char* c = "arena."; *c != 0; ++c) buffer[at++] = *c;
  while (n > 0) buffer[at++] = digits[--n];
  buffer[at++] = '.';
  for (const char* c = leaf; *c != 0 && at < sizeof buffer - 1; ++c) buffer[at++] = *c;
  buffer[at] = 0;
  return buffer;
}

template <class T>
bool read_ctl(const char* name, T& value) noexcept {
  std::size_t len = sizeof value;
  return mallctl(name, &value, &len, nullptr, 0) == 0 && len == sizeof value;
}

bool arena_exists(unsigned index) noexcept {
  char name[64];
  bool initialized = false;
  return read_ctl(arena_ctl_name(name, index, "initialized"), initialized) && initialized;
}

int write_hooks(unsigned index) noexcept {
  char name[64];
  extent_hooks_t* hooks = &reserve_hooks;
  return mallctl(arena_ctl_name(name, index, "extent_hooks"), nullptr, nullptr, &hooks, sizeof hooks);
}

// jemalloc purges its huge arena eagerly: when it creates that arena on demand
// (arena_choose_huge), it sets the arena's dirty and muzzy decay to 0, unless background
// threads purge or the default decay is already 0. Created here instead, the arena would
// keep the 10 s default and purge in slices as it decays: realloc_growth took 10% more
// page faults than under jemalloc alone. The same settings are applied here.
void purge_eagerly_like_jemalloc(unsigned index) noexcept {
  bool background_threads = false;
  read_ctl("background_thread", background_threads);
  if (background_threads) return;
  struct Decay {
    const char* default_ctl;  // the decay new arenas get
    const char* arena_leaf;   // arena.<i>.<leaf>
  };
  for (const Decay decay : {Decay{"arenas.dirty_decay_ms", "dirty_decay_ms"},
                            Decay{"arenas.muzzy_decay_ms", "muzzy_decay_ms"}}) {
    ssize_t default_ms = 0;
    if (!read_ctl(decay.default_ctl, default_ms) || default_ms <= 0) continue;
    char name[64];
    ssize_t immediately = 0;
    mallctl(arena_ctl_name(name, index, decay.arena_leaf), nullptr, nullptr, &immediately, sizeof immediately);
  }
}

// An arena jemalloc creates only on demand (the huge arena): this thread is bound to it,
// which creates it, while its hooks are written; then bound back.
bool create_and_hook(unsigned index) noexcept {
  unsigned previous = 0;
  std::size_t len = sizeof previous;
  if (mallctl("thread.arena", &previous, &len, &index, sizeof index) != 0) return false;
  const bool hooked = write_hooks(index) == 0;
  mallctl("thread.arena", nullptr, nullptr, &previous, sizeof previous);
  if (hooked) purge_eagerly_like_jemalloc(index);
  return hooked;
}

// Extents an arena held before its hooks were installed lie outside the reserve. Dirty
// and muzzy ones are purged now (the dalloc hook unmaps them); retained ones are taken
// by allocating from the arena until a block lands inside the reserve: one that needs a
// split is abandoned by jemalloc (the split hook refuses), one that fits exactly is kept
// here, never handed out.
void take_preexisting_extents(unsigned index) noexcept {
  char name[64];
  mallctl(arena_ctl_name(name, index, "purge"), nullptr, nullptr, nullptr, 0);
  constexpr std::size_t drain_block = std::size_t{16} << 10;  // jemalloc's smallest large size
  constexpr int max_kept = 64;
  for (int kept = 0; kept < max_kept; ++kept) {
    void* p = mallocx(drain_block, MALLOCX_ARENA(index) | MALLOCX_TCACHE_NONE);
    if (p == nullptr) return;
    if (in_reserve(p, drain_block)) {
      dallocx(p, MALLOCX_TCACHE_NONE);
      return;
    }
  }
}

// jemalloc grows an arena's address space (opt.retain) in steps that get bigger one page
// size class at a time: 2 MiB (its HUGEPAGE), 2.5, 3, 3.5, 4, 5 MiB, ... An arena that
// existed before the hooks (arena 0) took its first step outside the reserve, and the
// drain abandons it, so every step after it would be one class bigger than under jemalloc
// alone. The extents then lie at other boundaries and coalesce into 8 MiB ones (purged at
// once: opt.oversize_threshold) at other moments: realloc_growth took 16% more page faults
// (24.8k against 21.4k). `arena.<i>.retain_grow_limit` (jemalloc(3)) caps the step; in
// jemalloc 5.3 a grow past the cap also sets the next step to the cap (exp_grow_size_commit).
// So the drain runs under a cap of the first step, its one grow brings the next step back
// to 2 MiB, and the arena's own cap is restored afterwards (tests/shim/jemalloc_settings
// checks it is jemalloc's). Where jemalloc has no such control (opt.retain off), the
// mallctl fails and nothing changes.
void drain_preexisting_extents(unsigned index) noexcept {
  constexpr std::size_t first_step = std::size_t{2} << 20;
  char name[64];
  const char* limit_name = arena_ctl_name(name, index, "retain_grow_limit");
  std::size_t own_limit = 0;
  std::size_t len = sizeof own_limit;
  std::size_t capped = first_step;
  const bool capped_now = mallctl(limit_name, &own_limit, &len, &capped, sizeof capped) == 0;
  take_preexisting_extents(index);
  if (capped_now) mallctl(limit_name, nullptr, nullptr, &own_limit, sizeof own_limit);
}

// Hooks on every automatic arena and the huge arena. False when one of them refused.
bool install_hooks() noexcept {
  unsigned automatic = 0;  // arenas 0 .. automatic-1 are chosen for threads by jemalloc
  unsigned total = 0;      // plus the huge arena (and arenas.create'd ones, not ours)
  if (!read_ctl("opt.narenas", automatic) || !read_ctl("arenas.narenas", total)) return false;
  for (unsigned i = 0; i < total; ++i) {
    const bool existed = arena_exists(i);
    const bool hooked = i < automatic || existed ? write_hooks(i) == 0 : create_and_hook(i);
    if (!hooked) return false;
    if (existed) drain_preexisting_extents(i);
  }
  return true;
}

struct JemallocFunctions {
  void* (*malloc)(std::size_t) noexcept;
  void (*free)(void*) noexcept;
  void* (*calloc)(std::size_t, std::size_t) noexcept;
  void* (*realloc)(void*, std::size_t) noexcept;
  std::size_t (*malloc_usable_size)(void*) noexcept;
  // jemalloc's own sized `operator delete(void*, size_t)` (Debian's build has it): its
  // free fast path with the size given, which sdallocx through a wrapper is not. Optional.
  void (*delete_sized)(void*, std::size_t) noexcept;
};
constinit JemallocFunctions jemalloc = {};

// MALLOCX_ALIGN(a) of jemalloc.h: log2 of the alignment in the low bits.
int align_flag(std::size_t alignment) noexcept { return std::countr_zero(alignment); }

void* jemalloc_allocate(std::size_t size, std::size_t alignment) noexcept {
  if (alignment <= 16) return jemalloc.malloc(size);
  return mallocx(size == 0 ? 1 : size, align_flag(alignment));
}
void* jemalloc_allocate_zeroed(std::size_t size) noexcept { return jemalloc.calloc(1, size); }
// Where jemalloc has no sized operator delete of its own. Keeps errno as free must
// (libc_conformant): the direct route calls it with nothing around.
void jemalloc_release_sized(void* ptr, std::size_t size) noexcept {
  const ErrnoKept errno_kept;
  sdallocx(ptr, size == 0 ? 1 : size, 0);
}

constinit Heap jemalloc_heap = {
    .name = "jemalloc",
    .allocate = jemalloc_allocate,
    .allocate_default = nullptr,  // jemalloc's malloc, set at start
    .allocate_zeroed = jemalloc_allocate_zeroed,
    .release = nullptr,           // jemalloc's free
    .release_sized = jemalloc_release_sized,
    .usable_size = nullptr,       // jemalloc's malloc_usable_size
    .reallocate = nullptr,        // jemalloc's realloc
    .owns = Ownership::reserved_range,
    .libc_conformant = true,
    .range_begin = 0,             // the reserve, set at start
    .range_end = 0,
    .fork_prepare = nullptr,      // jemalloc registers its own pthread_atfork handlers
    .fork_release = nullptr,
    .detailed = nullptr,
};

template <class Function>
bool resolve(void* handle, const char* name, Function& out) noexcept {
  out = reinterpret_cast<Function>(::dlsym(handle, name));
  return out != nullptr;
}

}  // namespace

const Heap* start_jemalloc_heap() noexcept {
  void* handle = ::dlopen("libjemalloc.so.2", RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) {
    report_mode_unavailable("jemalloc", "libjemalloc.so.2 is not loaded", "libc");
    return nullptr;
  }
  JemallocFunctions f = {};
  const bool ok = resolve(handle, "malloc", f.malloc) && resolve(handle, "free", f.free) &&
                  resolve(handle, "calloc", f.calloc) && resolve(handle, "realloc", f.realloc) &&
                  resolve(handle, "malloc_usable_size", f.malloc_usable_size);
  resolve(handle, "_ZdlPvm", f.delete_sized);
  ::dlclose(handle);  // drops RTLD_NOLOAD's reference; it stays loaded as our dependency
  if (!ok) {
    report_mode_unavailable("jemalloc", "libjemalloc.so.2 lacks malloc/free/...", "libc");
    return nullptr;
  }
  std::size_t len = 0;
  void* range = os::reserve_largest(std::size_t{1} << 40, std::size_t{1} << 30, &len);
  if (range == nullptr) {
    report_mode_unavailable("jemalloc", "cannot reserve 1 GiB of address space", "libc");
    return nullptr;
  }
  reserve_begin = reinterpret_cast<std::uintptr_t>(range);
  reserve_end = reserve_begin + len;
  reserve_cursor.store(reserve_end, std::memory_order_relaxed);
  if (!install_hooks()) {
    // Arenas hooked so far keep carving from the reserve; it stays mapped.
    report_mode_unavailable("jemalloc", "jemalloc refused the extent hooks", "libc");
    return nullptr;
  }
  jemalloc = f;
  jemalloc_heap.range_begin = reserve_begin;
  jemalloc_heap.range_end = reserve_end;
  use_malloc_family(jemalloc_heap, f);
  if (f.delete_sized != nullptr) jemalloc_heap.release_sized = f.delete_sized;
  return &jemalloc_heap;
}

}  // namespace zheap::shim

#else

namespace zheap::shim {
const Heap* start_jemalloc_heap() noexcept {
  report_mode_unavailable("jemalloc", "zheap was built without jemalloc", "libc");
  return nullptr;
}
}  // namespace zheap::shim

#endif
