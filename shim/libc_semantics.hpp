// The C allocation API's semantics, as glibc 2.36 gives them, in front of the active heap:
// errno, size overflow, alignment rules, null pointers, realloc(p, 0), foreign pointers.
// exports.cpp gives these functions their public names (entry_points.inc); the heaps
// behind them (heap.hpp) see only valid requests.
//
// Everything is inline so that each exported function compiles to its checks plus one
// indirect call into the heap. Nothing here allocates or throws.
//
// `caller` (the last parameter of every entry): the exported function's stack pointer at
// its call, taken there with ZHEAP_ENTRY_STACK_POINTER() and made a CallSite where a heap
// with DetailedEntries (debug mode) gets it (entry_call_site.hpp). Only those paths use
// it, and other modes never take them, so computing it costs them nothing.
#pragma once

#include <malloc.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "direct_routes.hpp"
#include "dispatch.hpp"
#include "entry_call_site.hpp"
#include "layers.hpp"
#include "os/os.hpp"
#include "report.hpp"

namespace zheap::shim::c_api {

// glibc refuses every request above PTRDIFF_MAX (pointer differences must stay defined).
inline constexpr std::size_t max_request = PTRDIFF_MAX;
inline constexpr std::size_t default_alignment = 16;  // alignof(max_align_t) on x86-64

inline bool is_power_of_two(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

inline void* fail_enomem() noexcept {
  errno = ENOMEM;
  return nullptr;
}

// --- the shared paths ----------------------------------------------------------------

// Tells the layers about a new block. They count bytes by usable size, the same measure
// on_free gets, so that bytes in use balance; heap() is read again because the call that
// made `p` may have been the one that finished start-up.
inline void observe_alloc(void* p, Api family, std::size_t size, std::size_t alignment) noexcept {
  if (layers::active()) layers::on_alloc(p, usable_size_of(heap(), p), family, size, alignment);
}

// The heap's allocation: with everything the entry point knows for a heap that wants it
// (debug), else size and alignment (allocate_default for the default alignment).
inline void* heap_allocate(const Heap& h, std::size_t size, std::size_t alignment, Api family,
                           std::uintptr_t caller) noexcept {
  if (h.detailed != nullptr) [[unlikely]] {
    const CallSite site = entry_call_site(caller);
    return h.detailed->allocate(size, alignment, family, &site);
  }
  return alignment <= default_alignment ? h.allocate_default(size) : h.allocate(size, alignment);
}

// Alignment is a power of two; the heap sees at least the default alignment.
inline void* allocate_aligned(std::size_t size, std::size_t alignment, Api family, std::uintptr_t caller) noexcept {
  if (size > max_request || !layers::admit(size)) [[unlikely]] return fail_enomem();
  const Heap& h = heap();
  void* p = heap_allocate(h, size, alignment, family, caller);
  if (p == nullptr) [[unlikely]] return fail_enomem();
  observe_alloc(p, family, size, alignment);
  return p;
}

// free() with the layers watching, or on a heap that may change errno: kept out of line
// so that the fast path of free() needs no stack frame.
[[gnu::noinline]] inline void release_observed(const Heap& h, void* ptr, Api family, const char* function) noexcept {
  const int saved_errno = errno;  // free() never changes errno (POSIX 2024, glibc)
  if (layers::observes_frees()) layers::on_free(ptr, usable_size_of(h, ptr), family);
  release_pointer(h, ptr, function);
  errno = saved_errno;
}

// The same for a heap with DetailedEntries (debug mode). `size` and `alignment`: a sized
// or aligned delete's, 0 when not given. Six arguments, all in registers: free() keeps
// no stack frame.
[[gnu::noinline]] inline void release_detailed(const Heap& h, void* ptr, Api family, std::size_t size,
                                               std::size_t alignment, std::uintptr_t caller) noexcept {
  const int saved_errno = errno;
  if (layers::observes_frees()) layers::on_free(ptr, usable_size_of(h, ptr), family);
  if (heap_owns(h, ptr)) {
    const CallSite site = entry_call_site(caller);
    h.detailed->release(ptr, family, size, alignment, &site);
  } else {
    release_not_owned(h, ptr, "free");
  }
  errno = saved_errno;
}

[[gnu::always_inline]] inline void release(void* ptr, Api family, const char* function, std::uintptr_t caller,
                                           std::size_t size = 0, std::size_t alignment = 0) noexcept {
  if (direct_routes::owns_for_free(ptr)) [[likely]] return direct_routes::release(ptr);
  if (ptr == nullptr) return;
  const Heap& h = heap();
  if (h.libc_conformant && !layers::active()) [[likely]] {
    release_pointer(h, ptr, function);
    return;
  }
  if (h.detailed != nullptr) {
    release_detailed(h, ptr, family, size, alignment, caller);
    return;
  }
  release_observed(h, ptr, family, function);
}

// A free that knows the size the block was asked with (sized delete, free_sized).
inline void release_sized(void* ptr, std::size_t size, Api family, const char* function,
                          std::uintptr_t caller) noexcept {
  if (direct_routes::owns_for_free(ptr)) [[likely]] return direct_routes::release_sized(ptr, size);
  if (ptr == nullptr) return;
  const Heap& h = heap();
  if (h.release_sized == nullptr || layers::observes_frees() || owner_of(h, ptr) != Owner::heap) {
    release(ptr, family, function, caller, size);
    return;
  }
  const int saved_errno = errno;
  h.release_sized(ptr, size);
  errno = saved_errno;
}

// posix_memalign's and aligned_alloc's shared core after their own argument checks;
// `family` is the entry point, for the layers.
inline void* memalign_checked(std::size_t alignment, std::size_t size, Api family, std::uintptr_t caller) noexcept {
  return allocate_aligned(size, alignment, family, caller);
}

// --- the C API -----------------------------------------------------------------------

// malloc() with the layers watching or on a heap that is not libc-conformant: out of
// line, so that malloc's fast path stays a few instructions and a jump.
[[gnu::noinline]] inline void* malloc_observed(const Heap& h, std::size_t size, std::uintptr_t caller) noexcept {
  if (size > max_request || !layers::admit(size)) [[unlikely]] return fail_enomem();
  void* p = heap_allocate(h, size, default_alignment, Api::malloc, caller);
  if (p == nullptr) [[unlikely]] return fail_enomem();
  observe_alloc(p, Api::malloc, size, 0);
  direct_routes::publish(heap());  // the first call has started the heap and the layers
  return p;
}

// The exported malloc and free are their direct routes, in assembly
// (direct_route_entries.hpp), in front of the full paths malloc_full and free_full
// (exports.cpp).

inline void* calloc(std::size_t count, std::size_t size, std::uintptr_t caller) noexcept {
  std::size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes) || bytes > max_request || !layers::admit(bytes))
    return fail_enomem();
  const Heap& h = heap();
  void* p;
  if (h.allocate_zeroed != nullptr) {
    p = h.allocate_zeroed(bytes);
  } else {
    p = heap_allocate(h, bytes, default_alignment, Api::calloc, caller);
    if (p != nullptr) std::memset(p, 0, bytes);
  }
  if (p == nullptr) return fail_enomem();
  observe_alloc(p, Api::calloc, bytes, 0);
  return p;
}

inline std::size_t malloc_usable_size(void* ptr, std::uintptr_t /*caller*/) noexcept {
  if (ptr == nullptr) return 0;
  return usable_size_of(heap(), ptr);
}

inline void* realloc(void* ptr, std::size_t size, std::uintptr_t caller) noexcept {
  if (direct_routes::owns_for_free(ptr) && size - 1 < max_request) [[likely]] {
    if (auto route = direct_routes::reallocate_route()) {
      void* moved = route(ptr, size);
      if (moved == nullptr) [[unlikely]] errno = ENOMEM;
      return moved;
    }
  }
  if (ptr == nullptr) return allocate_aligned(size, default_alignment, Api::realloc, caller);
  if (size == 0) {  // glibc (REALLOC_ZERO_BYTES_FREES): frees and returns NULL
    release(ptr, Api::realloc, "realloc", caller);
    return nullptr;
  }
  if (size > max_request || !layers::admit(size)) return fail_enomem();
  const Heap& h = heap();
  const Owner owner = owner_of(h, ptr);
  if (owner == Owner::unknown) {
    report_foreign_pointer("realloc", ptr);
    return fail_enomem();
  }
  const bool observed = layers::observes_frees();
  const std::size_t old_usable = observed ? usable_size_of(h, ptr) : 0;
  void* moved;
  if (owner == Owner::heap && h.detailed != nullptr) {
    const CallSite site = entry_call_site(caller);
    moved = h.detailed->reallocate(ptr, size, &site);
    if (moved == nullptr) return fail_enomem();
  } else if (owner == Owner::heap && h.reallocate != nullptr) {
    moved = h.reallocate(ptr, size);
    if (moved == nullptr) return fail_enomem();
  } else {
    // Bootstrap and glibc blocks move into the heap; so do a heap's blocks when it has
    // no reallocate of its own.
    moved = heap_allocate(h, size, default_alignment, Api::realloc, caller);
    if (moved == nullptr) return fail_enomem();
    const std::size_t old_size = usable_size_of(h, ptr);
    std::memcpy(moved, ptr, old_size < size ? old_size : size);
    release_pointer(h, ptr, "realloc");
  }
  if (observed) layers::on_free(ptr, old_usable, Api::realloc);
  observe_alloc(moved, Api::realloc, size, 0);
  return moved;
}

inline void* reallocarray(void* ptr, std::size_t count, std::size_t size, std::uintptr_t caller) noexcept {
  std::size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) return fail_enomem();
  return realloc(ptr, bytes, caller);
}

// glibc: alignment a power of two and a multiple of sizeof(void*), else EINVAL with
// *memptr untouched; ENOMEM likewise leaves *memptr alone. errno is not changed.
inline int posix_memalign(void** memptr, std::size_t alignment, std::size_t size, std::uintptr_t caller) noexcept {
  if (alignment % sizeof(void*) != 0 || !is_power_of_two(alignment)) return EINVAL;
  const int saved_errno = errno;
  void* p = memalign_checked(alignment, size, Api::posix_memalign, caller);
  errno = saved_errno;
  if (p == nullptr) return ENOMEM;
  *memptr = p;
  return 0;
}

// glibc 2.36 (as C17): a non-power-of-two alignment is EINVAL; any size is accepted.
inline void* aligned_alloc(std::size_t alignment, std::size_t size, std::uintptr_t caller) noexcept {
  if (!is_power_of_two(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return memalign_checked(alignment, size, Api::aligned_alloc, caller);
}

// glibc: an alignment above SIZE_MAX/2+1 is EINVAL; a non-power of two is rounded up.
inline void* memalign(std::size_t alignment, std::size_t size, std::uintptr_t caller) noexcept {
  if (alignment > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return nullptr;
  }
  if (alignment <= default_alignment) return allocate_aligned(size, default_alignment, Api::memalign, caller);
  if (!is_power_of_two(alignment)) alignment = std::size_t{1} << (64 - __builtin_clzl(alignment));
  return memalign_checked(alignment, size, Api::memalign, caller);
}

inline std::size_t page_size() noexcept { return os::page_size(); }

inline void* valloc(std::size_t size, std::uintptr_t caller) noexcept {
  return memalign_checked(page_size(), size, Api::valloc, caller);
}

// pvalloc rounds the size up to whole pages (0 -> one page).
inline void* pvalloc(std::size_t size, std::uintptr_t caller) noexcept {
  const std::size_t page = page_size();
  if (size > max_request) return fail_enomem();
  const std::size_t rounded = size == 0 ? page : (size + page - 1) & ~(page - 1);
  return memalign_checked(page, rounded, Api::pvalloc, caller);
}

inline void cfree(void* ptr, std::uintptr_t caller) noexcept { release(ptr, Api::free, "cfree", caller); }

// C23: the size (and alignment) the block was asked with; zheap may use them.
inline void free_sized(void* ptr, std::size_t size, std::uintptr_t caller) noexcept {
  release_sized(ptr, size, Api::free, "free_sized", caller);
}
inline void free_aligned_sized(void* ptr, std::size_t /*alignment*/, std::size_t /*size*/, std::uintptr_t caller) noexcept {
  release(ptr, Api::free, "free_aligned_sized", caller);
}

// --- introspection: glibc's answers in libc mode, zheap's (neutral) otherwise ----------

// True when glibc's allocator is the active heap (libc mode), after start-up.
inline bool glibc_serves() noexcept { return started_heap().release == glibc().free && glibc().free != nullptr; }

inline int mallopt(int param, int value, std::uintptr_t /*caller*/) noexcept {
  if (glibc_serves() && glibc().mallopt != nullptr) return glibc().mallopt(param, value);
  return 1;  // accepted: zheap's modes have no such tunables, so nothing to change
}

inline int malloc_trim(std::size_t pad, std::uintptr_t /*caller*/) noexcept {
  if (glibc_serves() && glibc().malloc_trim != nullptr) return glibc().malloc_trim(pad);
  return 0;  // no memory was given back
}

inline struct mallinfo mallinfo(std::uintptr_t /*caller*/) noexcept {
  if (glibc_serves() && glibc().mallinfo != nullptr)
    return reinterpret_cast<struct mallinfo (*)()>(glibc().mallinfo)();
  struct mallinfo info;
  std::memset(&info, 0, sizeof info);
  return info;
}

inline struct mallinfo2 mallinfo2(std::uintptr_t /*caller*/) noexcept {
  if (glibc_serves() && glibc().mallinfo2 != nullptr)
    return reinterpret_cast<struct mallinfo2 (*)()>(glibc().mallinfo2)();
  struct mallinfo2 info;
  std::memset(&info, 0, sizeof info);
  return info;
}

void print_malloc_stats() noexcept;  // exports.cpp: one line naming the mode

inline void malloc_stats(std::uintptr_t /*caller*/) noexcept {
  if (glibc_serves() && glibc().malloc_stats != nullptr) {
    glibc().malloc_stats();
    return;
  }
  print_malloc_stats();
}

}  // namespace zheap::shim::c_api
