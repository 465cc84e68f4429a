#include "bootstrap.hpp"

#include <atomic>
#include <cerrno>

#include "report.hpp"

namespace zheap::shim::bootstrap {

alignas(4096) constinit unsigned char region[region_size] = {};

namespace {

constexpr std::size_t header_size = 16;

struct Header {
  std::size_t size;        // usable bytes after the header
  std::size_t block_start; // offset of the block's first byte (for rolling back)
};
static_assert(sizeof(Header) == header_size);

constinit std::atomic<std::size_t> cursor{0};

Header* header_of(const void* ptr) noexcept {
  return reinterpret_cast<Header*>(const_cast<unsigned char*>(static_cast<const unsigned char*>(ptr)) - header_size);
}

}  // namespace

void* allocate(std::size_t size, std::size_t alignment) noexcept {
  if (alignment < 16) alignment = 16;
  if (size > region_size || alignment > region_size) {
    report_bootstrap_exhausted();
    errno = ENOMEM;
    return nullptr;
  }
  const std::size_t rounded = (size + 15) & ~std::size_t{15};
  std::size_t start = cursor.load(std::memory_order_relaxed);
  for (;;) {
    const std::size_t data = (start + header_size + alignment - 1) & ~(alignment - 1);
    const std::size_t end = data + rounded;
    if (end > region_size) {
      report_bootstrap_exhausted();
      errno = ENOMEM;
      return nullptr;
    }
    if (cursor.compare_exchange_weak(start, end, std::memory_order_relaxed)) {
      auto* header = reinterpret_cast<Header*>(region + data - header_size);
      header->size = rounded;
      header->block_start = start;
      return region + data;
    }
  }
}

void release(void* ptr) noexcept {
  const Header* header = header_of(ptr);
  const std::size_t data = static_cast<std::size_t>(static_cast<unsigned char*>(ptr) - region);
  std::size_t expected = data + header->size;
  // Only the most recent block gives its bytes back; anything else stays used.
  cursor.compare_exchange_strong(expected, header->block_start, std::memory_order_relaxed);
}

std::size_t usable_size(const void* ptr) noexcept { return header_of(ptr)->size; }

std::size_t bytes_used() noexcept { return cursor.load(std::memory_order_relaxed); }

}  // namespace zheap::shim::bootstrap
