// BufferWriter: formats text into a caller's fixed buffer, for code that must not allocate
// (inside malloc, in signal handlers, after static destructors).
//
// Appends never overflow: text that does not fit is cut off and truncated() says so; the
// buffer always has room for a terminating NUL (c_str()). No locale, no printf, no errno.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace zheap::support {

class BufferWriter {
 public:
  // `buffer` must have at least one byte (for the NUL).
  constexpr BufferWriter(char* buffer, std::size_t capacity) noexcept : buffer_(buffer), capacity_(capacity) {
    buffer_[0] = '\0';
  }
  template <std::size_t N>
  constexpr explicit BufferWriter(char (&buffer)[N]) noexcept : BufferWriter(buffer, N) {}

  constexpr BufferWriter& text(std::string_view s) noexcept {
    for (char c : s) character(c);
    return *this;
  }
  constexpr BufferWriter& character(char c) noexcept {
    if (length_ + 1 < capacity_) {
      buffer_[length_++] = c;
      buffer_[length_] = '\0';
    } else {
      truncated_ = true;
    }
    return *this;
  }
  constexpr BufferWriter& unsigned_decimal(std::uint64_t value) noexcept {
    char digits[20];
    std::size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    while (n > 0) character(digits[--n]);
    return *this;
  }
  constexpr BufferWriter& signed_decimal(std::int64_t value) noexcept {
    if (value < 0) {
      character('-');
      // Negate in unsigned arithmetic: -INT64_MIN does not fit in int64.
      return unsigned_decimal(0 - static_cast<std::uint64_t>(value));
    }
    return unsigned_decimal(static_cast<std::uint64_t>(value));
  }
  // Lower-case hexadecimal with a 0x prefix, no leading zeros.
  constexpr BufferWriter& hex(std::uint64_t value) noexcept {
    text("0x");
    int shift = 60;
    while (shift > 0 && ((value >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) character("0123456789abcdef"[(value >> shift) & 0xf]);
    return *this;
  }
  BufferWriter& pointer(const void* p) noexcept { return hex(reinterpret_cast<std::uintptr_t>(p)); }

  constexpr std::string_view view() const noexcept { return {buffer_, length_}; }
  constexpr const char* c_str() const noexcept { return buffer_; }
  constexpr std::size_t size() const noexcept { return length_; }
  constexpr bool truncated() const noexcept { return truncated_; }

 private:
  char* buffer_;
  std::size_t capacity_;
  std::size_t length_ = 0;
  bool truncated_ = false;
};

}  // namespace zheap::support
