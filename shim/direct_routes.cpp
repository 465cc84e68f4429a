#include "direct_routes.hpp"

#include "bootstrap.hpp"
#include "dispatch.hpp"
#include "layers.hpp"
#include "plt_binding.hpp"

// Defined in libzheap.so only, so null in the in-process test build, whose program's call
// slots must keep glibc's malloc (plt_binding.hpp).
namespace zheap::shim::plt_binding {
[[gnu::weak]] void bind_published_routes() noexcept;
}

namespace zheap::shim::direct_routes {

namespace detail {
// [[gnu::used]]: malloc's and free's assembly entries read these by name, which the
// compiler cannot see (it must neither drop nor rename them, with -flto too).
[[gnu::used]] constinit std::atomic<void* (*)(std::size_t) noexcept> malloc{c_api::malloc_full};
[[gnu::used]] constinit std::atomic<void (*)(void*) noexcept> free{nullptr};
[[gnu::used]] constinit std::atomic<std::uintptr_t> free_begin{0};
[[gnu::used]] constinit std::atomic<std::uintptr_t> free_length{0};
constinit std::atomic<void* (*)(void*, std::size_t) noexcept> realloc{nullptr};
constinit std::atomic<void (*)(void*, std::size_t) noexcept> free_sized{nullptr};
}  // namespace detail

void publish(const Heap& h) noexcept {
  if (published()) return;
  if (&h != active_heap.load(std::memory_order_acquire) || !h.libc_conformant || layers::active()) return;
  std::uintptr_t begin;
  std::uintptr_t length;
  if (h.owns == Ownership::reserved_range) {
    begin = h.range_begin;
    length = h.range_end - h.range_begin;
  } else {
    begin = reinterpret_cast<std::uintptr_t>(bootstrap::region) + bootstrap::region_size;
    length = std::uintptr_t{0} - bootstrap::region_size;
  }
  if (length == 0) return;
  detail::free.store(h.release, std::memory_order_relaxed);
  detail::realloc.store(h.reallocate, std::memory_order_relaxed);
  detail::free_sized.store(h.release_sized, std::memory_order_relaxed);
  detail::free_begin.store(begin, std::memory_order_relaxed);
  detail::malloc.store(h.allocate_default, std::memory_order_release);
  detail::free_length.store(length, std::memory_order_release);
  if (plt_binding::bind_published_routes != nullptr) plt_binding::bind_published_routes();
}

}  // namespace zheap::shim::direct_routes
