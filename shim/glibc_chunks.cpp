#include "glibc_chunks.hpp"

#include <cstddef>
#include <cstdint>

#include "os/os.hpp"

namespace zheap::shim {

namespace {

// glibc's malloc on 64-bit Linux (malloc/malloc.c, malloc/arena.c). These have not
// changed since glibc 2.26.
constexpr std::uintptr_t malloc_alignment = 16;
constexpr std::uintptr_t chunk_header = 2 * sizeof(std::size_t);  // prev_size, size
constexpr std::size_t prev_inuse = 0x1;
constexpr std::size_t is_mmapped = 0x2;
constexpr std::size_t non_main_arena = 0x4;
constexpr std::size_t flag_bits = 0x7;
constexpr std::uintptr_t heap_max_size = std::uintptr_t{64} << 20;  // 2 * 32 MiB mmap max
// heap_info {ar_ptr, prev, size, mprotect_size[, pagesize], pad}: 32 or 48 bytes; the
// arena of a heap's first mapping follows it directly.
constexpr std::uintptr_t max_heap_info_size = 64;

struct HeapInfo {
  std::uintptr_t arena;
  std::uintptr_t prev;
  std::size_t size;
  std::size_t mprotect_size;
};

template <class T>
bool read(std::uintptr_t address, T& out) noexcept {
  return os::read_if_readable(&out, reinterpret_cast<const void*>(address), sizeof out);
}

bool looks_like_mmapped_chunk(std::uintptr_t chunk, std::size_t prev_size, std::size_t size) noexcept {
  // The checks glibc's munmap_chunk makes before it aborts, plus "the mapping is there".
  const std::uintptr_t page = os::page_size();
  const std::uintptr_t block = chunk - prev_size;
  const std::size_t total = prev_size + size;
  if (block > chunk || total < size || ((block | total) & (page - 1)) != 0 || total < page) return false;
  unsigned char first, last;
  return read(block, first) && read(block + total - 1, last);
}

bool looks_like_thread_arena_chunk(std::uintptr_t chunk, std::size_t size) noexcept {
  const std::uintptr_t heap = chunk & ~(heap_max_size - 1);
  HeapInfo info;
  if (!read(heap, info) || info.size > heap_max_size || chunk < heap + sizeof(HeapInfo) ||
      chunk + size < chunk || chunk + size > heap + info.size) {
    return false;
  }
  // The arena lives after the heap_info of its first heap, which names it too.
  const std::uintptr_t arena_heap = info.arena & ~(heap_max_size - 1);
  HeapInfo arena_info;
  if (info.arena - arena_heap <= sizeof(HeapInfo) || info.arena - arena_heap > max_heap_info_size ||
      info.arena % malloc_alignment != 0 || !read(arena_heap, arena_info) ||
      arena_info.arena != info.arena) {
    return false;
  }
  // In use: the next chunk says its predecessor (this one) is.
  std::size_t next_size;
  return read(chunk + size + sizeof(std::size_t), next_size) && (next_size & prev_inuse) != 0;
}

}  // namespace

bool looks_like_glibc_chunk(const void* ptr) noexcept {
  const auto p = reinterpret_cast<std::uintptr_t>(ptr);
  if (p % malloc_alignment != 0 || p < chunk_header) return false;
  const std::uintptr_t chunk = p - chunk_header;
  std::size_t header[2];  // prev_size, size
  if (!read(chunk, header)) return false;
  const std::size_t size = header[1] & ~flag_bits;
  if (size < 2 * chunk_header || size % malloc_alignment != 0) return false;
  if ((header[1] & is_mmapped) != 0) return looks_like_mmapped_chunk(chunk, header[0], size);
  if ((header[1] & non_main_arena) != 0) return looks_like_thread_arena_chunk(chunk, size);
  return false;  // a main-arena chunk lives in the brk heap, which dispatch checks first
}

}  // namespace zheap::shim
