#include "dispatch.hpp"

#include <zheap/mutex.hpp>

#include <cerrno>
#include <cstring>

#include <pthread.h>
#include <unistd.h>

#include "glibc_chunks.hpp"
#include "os/os.hpp"
#include "report.hpp"
#include "settings.hpp"

namespace zheap::shim {

namespace {

[[gnu::tls_model("initial-exec")]] constinit thread_local bool inside_shim = false;

// Lock order 1 (see dispatch.hpp). Held only while a heap is chosen and started.
constinit Mutex startup_lock;

const Heap* start_up() noexcept;

// --- the heap that serves calls before start-up has finished ------------------------

void* lazy_allocate(std::size_t size, std::size_t alignment) noexcept {
  if (const Heap* h = start_up()) return h->allocate(size, alignment);
  return bootstrap::allocate(size, alignment);
}
void* lazy_allocate_default(std::size_t size) noexcept {
  if (const Heap* h = start_up()) return h->allocate_default(size);
  return bootstrap::allocate(size, 16);
}
void lazy_release(void* ptr) noexcept {
  if (const Heap* h = start_up()) {
    release_pointer(*h, ptr, "free");
    return;
  }
  release_elsewhere(Owner::unknown, ptr, "free");
}
std::size_t lazy_usable_size(void* ptr) noexcept {
  if (const Heap* h = start_up()) return usable_size_of(*h, ptr);
  return usable_size_elsewhere(Owner::unknown, ptr);
}

// The detailed forms, so that a first call from operator new reaches debug mode with its
// family and caller (a later delete must match it).
void* lazy_allocate_detailed(std::size_t size, std::size_t alignment, Api family, const CallSite* caller) noexcept {
  const Heap* h = start_up();
  if (h == nullptr) return bootstrap::allocate(size, alignment);
  if (h->detailed != nullptr) return h->detailed->allocate(size, alignment, family, caller);
  return alignment <= 16 ? h->allocate_default(size) : h->allocate(size, alignment);
}
void lazy_release_detailed(void* ptr, Api family, std::size_t size, std::size_t alignment,
                           const CallSite* caller) noexcept {
  const Heap* h = start_up();
  if (h != nullptr && h->detailed != nullptr && heap_owns(*h, ptr)) {
    h->detailed->release(ptr, family, size, alignment, caller);
    return;
  }
  lazy_release(ptr);
}
// realloc of a non-bootstrap pointer while the heap is still lazy (another thread has
// just started it): move the block, as realloc does for a heap without reallocate.
void* lazy_reallocate_detailed(void* ptr, std::size_t size, const CallSite* caller) noexcept {
  const Heap* h = start_up();
  if (h == nullptr) return nullptr;
  if (h->detailed != nullptr && heap_owns(*h, ptr)) return h->detailed->reallocate(ptr, size, caller);
  void* moved = h->allocate_default(size);
  if (moved == nullptr) return nullptr;
  const std::size_t old_size = usable_size_of(*h, ptr);
  std::memcpy(moved, ptr, old_size < size ? old_size : size);
  release_pointer(*h, ptr, "realloc");
  return moved;
}

constinit const DetailedEntries lazy_detailed = {
    .allocate = lazy_allocate_detailed,
    .release = lazy_release_detailed,
    .reallocate = lazy_reallocate_detailed,
};

constinit const Heap lazy_heap = {
    .name = "starting",
    .allocate = lazy_allocate,
    .allocate_default = lazy_allocate_default,
    .allocate_zeroed = nullptr,
    .release = lazy_release,
    .release_sized = nullptr,
    .usable_size = lazy_usable_size,
    .reallocate = nullptr,
    .owns = Ownership::everything,
    .libc_conformant = false,
    .range_begin = 0,
    .range_end = 0,
    .fork_prepare = nullptr,
    .fork_release = nullptr,
    .detailed = &lazy_detailed,
};

// --- the last resort when no mode can start (not even glibc's) -----------------------

void* bootstrap_allocate_default(std::size_t size) noexcept { return bootstrap::allocate(size, 16); }
void bootstrap_release(void*) noexcept {}  // never called: owner_of() says bootstrap first
std::size_t bootstrap_usable_size(void*) noexcept { return 0; }

constinit const Heap bootstrap_only_heap = {
    .name = "bootstrap",
    .allocate = bootstrap::allocate,
    .allocate_default = bootstrap_allocate_default,
    .allocate_zeroed = nullptr,
    .release = bootstrap_release,
    .release_sized = nullptr,
    .usable_size = bootstrap_usable_size,
    .reallocate = nullptr,
    .owns = Ownership::reserved_range,  // an empty range: only bootstrap pointers are ours
    .libc_conformant = false,
    .range_begin = 0,
    .range_end = 0,
    .fork_prepare = nullptr,
    .fork_release = nullptr,
    .detailed = nullptr,
};

// --- fork ----------------------------------------------------------------------------

constinit bool fork_handlers_registered = false;  // written under startup_lock

void fork_prepare() noexcept {
  startup_lock.lock();
  const Heap& h = heap();
  if (h.fork_prepare != nullptr) h.fork_prepare();
}
void fork_parent() noexcept {
  const Heap& h = heap();
  if (h.fork_release != nullptr) h.fork_release();
  startup_lock.unlock();
}
void fork_child() noexcept {
  const Heap& h = heap();
  if (h.fork_release != nullptr) h.fork_release();
  startup_lock.unlock();  // the forking thread took it in fork_prepare
}

// --- start-up ------------------------------------------------------------------------

const Heap* choose_heap() noexcept {
  const bool have_glibc = resolve_glibc();
  const Mode mode = selected_mode();
  const Heap* chosen = nullptr;
  switch (mode) {
    case Mode::arena:
      chosen = start_arena_heap();
      break;
    case Mode::jemalloc:
      chosen = start_jemalloc_heap();
      break;
    case Mode::debug:
      chosen = start_debug_heap();
      break;
    case Mode::smp:
      chosen = start_smp_heap();
      break;
    case Mode::libc:
      break;
  }
  if (chosen == nullptr && have_glibc) chosen = start_libc_heap();
  if (chosen == nullptr) {
    report_mode_unavailable("libc", "glibc's allocator functions not found", "bootstrap");
    chosen = &bootstrap_only_heap;
  }
  return chosen;
}

// The started heap; nullptr while start-up runs (re-entered, or on another thread):
// such calls are served by bootstrap rather than waiting, so that start-up can never
// deadlock against a thread holding a lock it needs (the loader's, for dlopen).
const Heap* start_up() noexcept {
  const Heap* h = active_heap.load(std::memory_order_acquire);
  if (h != &lazy_heap) return h;
  if (inside_shim) return nullptr;
  // Calls made before libc has set `environ` cannot see ZHEAP_ALLOCATOR: serve them from
  // bootstrap and choose later, unless bootstrap is half used (a program that cleared its
  // environment before its first allocation).
  if (::environ == nullptr && bootstrap::bytes_used() < bootstrap::region_size / 2) return nullptr;
  if (!startup_lock.try_lock()) return nullptr;
  h = active_heap.load(std::memory_order_acquire);
  if (h == &lazy_heap) {
    const int saved_errno = errno;
    ReentryGuard guard;
    glibc_brk_start = os::initial_program_break();
    h = choose_heap();
    if (!fork_handlers_registered) {
      fork_handlers_registered = true;
      ::pthread_atfork(fork_prepare, fork_parent, fork_child);
    }
    active_heap.store(h, std::memory_order_release);
    errno = saved_errno;
  }
  startup_lock.unlock();
  return h;
}

}  // namespace

constinit std::atomic<const Heap*> active_heap{&lazy_heap};

const Heap& started_heap() noexcept {
  const Heap* h = start_up();
  return h != nullptr ? *h : heap();
}

bool reentered() noexcept { return inside_shim; }

ReentryGuard::ReentryGuard() noexcept : was_reentered_(inside_shim) { inside_shim = true; }
ReentryGuard::~ReentryGuard() { inside_shim = was_reentered_; }

constinit std::uintptr_t glibc_brk_start = UINTPTR_MAX;

Owner owner_outside_heap(const void* ptr) noexcept {
  if (in_glibc_brk_heap(ptr) || looks_like_glibc_chunk(ptr)) return Owner::glibc;
  return Owner::unknown;
}

void release_elsewhere(Owner owner, void* ptr, const char* function) noexcept {
  switch (owner) {
    case Owner::bootstrap:
      bootstrap::release(ptr);
      return;
    case Owner::glibc:
      if (glibc().free != nullptr) {
        glibc().free(ptr);
        return;
      }
      break;
    case Owner::heap:
    case Owner::unknown:
      break;
  }
  report_foreign_pointer(function, ptr);
}

void release_not_owned(const Heap& h, void* ptr, const char* function) noexcept {
  release_elsewhere(owner_of(h, ptr), ptr, function);
}

std::size_t usable_size_not_owned(const Heap& h, void* ptr) noexcept {
  return usable_size_elsewhere(owner_of(h, ptr), ptr);
}

std::size_t usable_size_elsewhere(Owner owner, void* ptr) noexcept {
  switch (owner) {
    case Owner::bootstrap:
      return bootstrap::usable_size(ptr);
    case Owner::glibc:
      if (glibc().malloc_usable_size != nullptr) return glibc().malloc_usable_size(ptr);
      break;
    case Owner::heap:
    case Owner::unknown:
      break;
  }
  report_foreign_pointer("malloc_usable_size", ptr);
  return 0;
}

}  // namespace zheap::shim
