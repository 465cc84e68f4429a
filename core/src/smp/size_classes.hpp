// The smp allocator's size classes: which block size serves a request.
//
// 16-byte steps up to 128 bytes (8 classes), then 4 classes per power of two up to
// 1 MiB (52 classes): 160, 192, 224, 256, 320, ... 131072, ... 1048576. Every class is a multiple
// of 16 (malloc's alignment). Waste bound: at most 15 bytes up to 128 bytes; above, a
// block is less than 1.25x the request (under 20% of the block is unused).
// Blocks of a class up to 128 KiB start at page_start + i * size with page_start 64 KiB
// aligned, so a block is aligned to the largest power of two dividing its class size;
// classes above 128 KiB have one block per page, at its start, 64 KiB aligned (see
// layout.hpp). Aligned requests pick the first class whose blocks are aligned enough.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace zheap::smp {

inline constexpr std::size_t class_count = 60;
inline constexpr std::size_t max_class_size = std::size_t{1} << 20;
// Classes up to this size share a page among many blocks; above it a page holds one.
inline constexpr std::size_t multi_block_class_limit = std::size_t{128} << 10;

constexpr std::size_t class_size(std::size_t c) noexcept {
  if (c < 8) return (c + 1) * 16;
  const std::size_t k = 7 + (c - 8) / 4;
  const std::size_t i = (c - 8) % 4;
  return (std::size_t{1} << k) + (i + 1) * (std::size_t{1} << (k - 2));
}
static_assert(class_size(7) == 128 && class_size(8) == 160 && class_size(class_count - 1) == max_class_size);

// For 1 <= size <= max_class_size.
constexpr std::size_t class_of_computed(std::size_t size) noexcept {
  if (size <= 128) return size == 0 ? 0 : (size + 15) / 16 - 1;
  const std::size_t k = static_cast<std::size_t>(std::bit_width(size - 1)) - 1;
  return 8 + (k - 7) * 4 + ((size - 1 - (std::size_t{1} << k)) >> (k - 2));
}

// Sizes up to 1 KiB (the common case) by one table load, indexed by (size + 15) / 16.
inline constexpr std::size_t table_limit = 1024;
inline constexpr auto small_class_table = [] {
  std::array<std::uint8_t, table_limit / 16 + 1> table{};
  for (std::size_t i = 0; i < table.size(); ++i) table[i] = static_cast<std::uint8_t>(class_of_computed(i * 16));
  return table;
}();

constexpr std::size_t class_of(std::size_t size) noexcept {
  if (size <= table_limit) [[likely]] return small_class_table[(size + 15) >> 4];
  return class_of_computed(size);
}

// Each class serves exactly the sizes between the previous class's size (exclusive) and
// its own: checked at every boundary, and everywhere the table covers.
constexpr bool class_table_is_consistent() noexcept {
  for (std::size_t c = 0; c < class_count; ++c) {
    const std::size_t lowest = c == 0 ? 1 : class_size(c - 1) + 1;
    if (class_of(lowest) != c || class_of(class_size(c)) != c) return false;
  }
  for (std::size_t s = 1; s <= table_limit; ++s) {
    if (class_of(s) != class_of_computed(s)) return false;
  }
  return true;
}

}  // namespace zheap::smp
