// Direct routes: malloc and free reduced to the least a heap without glue needs.
//
// Once the active heap is started, is libc_conformant (heap.hpp) and no layer is on, a
// malloc only has to reach the heap's allocate_default, and a free only has to ask
// "is this pointer the heap's?" before reaching its release. The routes below hold
// exactly that, so that the exported malloc is one jump through its route, and free a
// subtract, a compare and a jump (direct_route_entries.hpp: they are written in assembly):
// the price of an interposed allocator over preloading its library directly
// (docs/BENCHMARKS.md, `zheap-jemalloc` against `jemalloc`).
// Everything else (start-up, layers, debug mode's detailed entries, null, bootstrap and
// foreign pointers) keeps the full paths of libc_semantics.hpp, which the routes send
// every call to until they are published.
//
// realloc has a route too (the heap's reallocate, when it has one): the same ownership
// test, a size check, and errno set on failure; so has a sized free (the heap's
// release_sized, when it has one). The C++ operators use the routes through the inline
// functions below.
//
// Ownership as one range compare, `ptr - begin < length` in modular arithmetic:
//   Ownership::reserved_range  begin = range_begin, length = range_end - range_begin;
//   Ownership::everything      everything except the bootstrap region: begin = its end,
//                              length = 2^64 - its size (null lands inside: the heap's
//                              free takes null, as glibc's free does).
// Published once (direct_routes::publish), never withdrawn: the heap never changes and
// the layers are configured once. `free_length` is stored last with release order and
// loaded first with acquire, so a reader that sees a non-zero length sees the rest (the
// assembly entries keep that order: direct_route_entries.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "heap.hpp"

namespace zheap::shim {

// malloc's and free's full paths (exports.cpp). free_full has a plain name for free's
// assembly entry to jump to.
namespace c_api {
void* malloc_full(std::size_t size) noexcept;
void free_full(void* ptr) noexcept __asm__("zheap_free_full");
}  // namespace c_api

namespace direct_routes {

// Separate variables rather than one struct, declared hidden (-fvisibility=hidden covers
// definitions only): each is then read straight from the instruction that uses it, with
// no address to load from the GOT first. The four that malloc's and free's assembly
// entries read have plain names (zheap_route_*).
namespace detail {
// Never null, so that malloc is one jump: the full path until published.
[[gnu::visibility("hidden")]] extern constinit std::atomic<void* (*)(std::size_t) noexcept> malloc
    __asm__("zheap_route_malloc");
[[gnu::visibility("hidden")]] extern constinit std::atomic<void (*)(void*) noexcept> free __asm__("zheap_route_free");
[[gnu::visibility("hidden")]] extern constinit std::atomic<std::uintptr_t> free_begin __asm__("zheap_route_free_begin");
[[gnu::visibility("hidden")]] extern constinit std::atomic<std::uintptr_t> free_length
    __asm__("zheap_route_free_length");  // 0: every free takes the full path
[[gnu::visibility("hidden")]] extern constinit std::atomic<void* (*)(void*, std::size_t) noexcept> realloc;
[[gnu::visibility("hidden")]] extern constinit std::atomic<void (*)(void*, std::size_t) noexcept> free_sized;
}  // namespace detail

// Publishes the routes for `h` when they apply: h is the started heap, libc_conformant,
// and no layer is on. Idempotent; cheap to call when they do not apply.
void publish(const Heap& h) noexcept;

inline bool published() noexcept { return detail::free_length.load(std::memory_order_acquire) != 0; }

// malloc: the heap's allocate_default once published, else malloc_full.
inline void* allocate(std::size_t size) noexcept { return detail::malloc.load(std::memory_order_acquire)(size); }

// free's ownership test: false for everything while unpublished.
inline bool owns_for_free(const void* ptr) noexcept {
  const std::uintptr_t length = detail::free_length.load(std::memory_order_acquire);
  const std::uintptr_t begin = detail::free_begin.load(std::memory_order_relaxed);
  return reinterpret_cast<std::uintptr_t>(ptr) - begin < length;
}

// The heap's release; only after owns_for_free(ptr) said true.
inline void release(void* ptr) noexcept { detail::free.load(std::memory_order_relaxed)(ptr); }

// A sized free (sized delete, free_sized) after owns_for_free(ptr) said true: the heap's
// release_sized when it has one (jemalloc's sdallocx skips a lookup), else its release.
inline void release_sized(void* ptr, std::size_t size) noexcept {
  if (auto sized = detail::free_sized.load(std::memory_order_relaxed)) return sized(ptr, size);
  release(ptr);
}

// The heap's reallocate for a pointer owns_for_free() accepted and a size in
// 1..PTRDIFF_MAX; nullptr (no route: the full path) while unpublished or when the heap
// has no reallocate of its own.
inline auto reallocate_route() noexcept { return detail::realloc.load(std::memory_order_relaxed); }

}  // namespace direct_routes
}  // namespace zheap::shim
