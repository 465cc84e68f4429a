// The bootstrap region: a static bump allocator for calls made before a heap is ready or
// while the shim is re-entered (the dynamic loader, dlsym/dlopen during start-up, libc
// and jemalloc start-up, pthread_setspecific's first use of a key, another thread calling
// while start-up is running).
//
// Layout: one constinit 384 KiB array; each block is [16-byte header: size][data],
// data 16-aligned (or more, the header sits just before the data). Lock-free: the bump
// cursor is one atomic. Freeing the latest block rolls the cursor back; other frees are
// ignored (the region is small and used only briefly). Pointers are recognised by
// address range, so free/realloc/malloc_usable_size of them always work, in any mode.
// When the region is used up, allocation fails (nullptr, reported once).
#pragma once

#include <cstddef>
#include <cstdint>

namespace zheap::shim::bootstrap {

inline constexpr std::size_t region_size = 384 * 1024;

extern unsigned char region[region_size];

inline bool contains(const void* ptr) noexcept {
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  const auto begin = reinterpret_cast<std::uintptr_t>(region);
  return p - begin < region_size;  // one compare: below begin wraps to a huge value
}

void* allocate(std::size_t size, std::size_t alignment) noexcept;
void release(void* ptr) noexcept;
std::size_t usable_size(const void* ptr) noexcept;
// Bytes handed out so far (for tests and the exit report).
std::size_t bytes_used() noexcept;

}  // namespace zheap::shim::bootstrap
