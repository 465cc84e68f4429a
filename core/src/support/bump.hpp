// Placing a block in a bump buffer: the arithmetic FixedBufferAllocator and ArenaAllocator
// share (skip to the alignment, then take `len` bytes), with every overflow checked.
#pragma once

#include <zheap/alignment.hpp>

#include <cstddef>
#include <cstdint>

namespace zheap::support {

struct Placement {
  std::size_t start;  // offset of the block from the buffer's start
  std::size_t end;    // offset just past it: the buffer's next end index
};

// Where a block of `len` bytes aligned to `alignment` goes in the buffer at `base` whose
// first free byte is at offset `end_index`. false when the arithmetic overflows; the
// caller still compares `out->end` with its capacity.
inline bool place_after(const std::byte* base, std::size_t end_index, std::size_t len, Alignment alignment,
                        Placement* out) noexcept {
  const auto address = reinterpret_cast<std::uintptr_t>(base);
  std::uintptr_t unaligned;
  if (__builtin_add_overflow(address, end_index, &unaligned)) return false;
  const std::uintptr_t aligned = alignment.forward(unaligned);
  if (aligned < unaligned) return false;  // wrapped past the top of the address space
  out->start = aligned - address;
  return !__builtin_add_overflow(out->start, len, &out->end);
}

}  // namespace zheap::support
