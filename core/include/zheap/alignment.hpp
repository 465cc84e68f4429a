// Alignment: a power of two, stored as its base-2 logarithm (one byte).
//
// Every allocator in zheap takes the alignment of a request as an Alignment, never as
// a raw integer, so that "is it a power of two?" is checked once, where the value is
// made, and the hot paths only shift and mask.
#pragma once

#include <bit>
#include <compare>
#include <cstddef>
#include <cstdint>

namespace zheap {

class Alignment {
 public:
  // The alignment of `bytes`, which must be a power of two (checked in constant
  // evaluation; at run time use is_valid() first when the value comes from outside).
  static constexpr Alignment of_bytes(std::size_t bytes) noexcept {
    return Alignment(static_cast<std::uint8_t>(std::countr_zero(bytes)));
  }
  static constexpr Alignment from_log2(unsigned log2) noexcept {
    return Alignment(static_cast<std::uint8_t>(log2));
  }
  template <class T>
  static constexpr Alignment of() noexcept {
    return of_bytes(alignof(T));
  }
  // What malloc guarantees on this platform (16 on x86-64 glibc).
  static constexpr Alignment max_fundamental() noexcept { return of<std::max_align_t>(); }

  // A power of two. Not std::has_single_bit: for the baseline x86-64 (no POPCNT) GCC makes
  // that a call to libgcc's __popcountdi2, about 20 instructions on every allocation.
  static constexpr bool is_valid(std::size_t bytes) noexcept { return bytes != 0 && (bytes & (bytes - 1)) == 0; }

  constexpr std::size_t bytes() const noexcept { return std::size_t{1} << log2_; }
  constexpr unsigned log2() const noexcept { return log2_; }

  // Round an address or a length up / down to this alignment.
  constexpr std::uintptr_t forward(std::uintptr_t value) const noexcept {
    return (value + bytes() - 1) & ~(bytes() - 1);
  }
  constexpr std::uintptr_t backward(std::uintptr_t value) const noexcept {
    return value & ~(bytes() - 1);
  }
  constexpr bool check(std::uintptr_t value) const noexcept { return (value & (bytes() - 1)) == 0; }
  bool check(const void* p) const noexcept { return check(reinterpret_cast<std::uintptr_t>(p)); }

  constexpr Alignment max(Alignment other) const noexcept { return log2_ >= other.log2_ ? *this : other; }
  friend constexpr auto operator<=>(Alignment, Alignment) = default;

 private:
  constexpr explicit Alignment(std::uint8_t log2) noexcept : log2_(log2) {}
  std::uint8_t log2_;
};

}  // namespace zheap
