// FormatBuffer: text formatting into a caller's fixed buffer, for code that must not
// allocate (the logging allocator, the validating allocator's reports, the shim's
// messages and exit report).
//
// Appends strings, decimal and hexadecimal integers and pointers; never allocates,
// never calls into libc's stdio. When the buffer is full the rest is dropped and
// truncated() says so; the text so far stays valid. The buffer is not NUL-terminated
// unless c_str() is asked for (it keeps one byte free for that).
//
//   StackFormatBuffer<256> line;
//   line.append("alloc len=").append_decimal(len).append(" -> ").append_pointer(p).append('\n');
//   os::write_stderr(line.data(), line.size());
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace zheap::support {

class FormatBuffer {
 public:
  // `capacity` includes the byte kept for c_str()'s terminator; must be >= 1.
  FormatBuffer(char* buffer, std::size_t capacity) noexcept : buffer_(buffer), capacity_(capacity) {
    buffer_[0] = '\0';
  }
  FormatBuffer(const FormatBuffer&) = delete;
  FormatBuffer& operator=(const FormatBuffer&) = delete;

  FormatBuffer& append(std::string_view text) noexcept {
    const std::size_t room = capacity_ - 1 - size_;
    const std::size_t n = text.size() <= room ? text.size() : room;
    if (n < text.size()) truncated_ = true;
    if (n != 0) std::memcpy(buffer_ + size_, text.data(), n);
    size_ += n;
    return *this;
  }
  FormatBuffer& append(char c) noexcept { return append(std::string_view(&c, 1)); }

  FormatBuffer& append_decimal(std::uint64_t value) noexcept {
    char digits[20];
    std::size_t n = 0;
    do {
      digits[sizeof digits - 1 - n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    return append(std::string_view(digits + sizeof digits - n, n));
  }
  FormatBuffer& append_signed(std::int64_t value) noexcept {
    if (value < 0) {
      append('-');
      return append_decimal(~static_cast<std::uint64_t>(value) + 1);
    }
    return append_decimal(static_cast<std::uint64_t>(value));
  }

  // Lower-case hexadecimal with a 0x prefix, no leading zeros (0x0 for zero).
  FormatBuffer& append_hex(std::uint64_t value) noexcept {
    char digits[16];
    std::size_t n = 0;
    do {
      digits[sizeof digits - 1 - n++] = "0123456789abcdef"[value & 0xf];
      value >>= 4;
    } while (value != 0);
    append("0x");
    return append(std::string_view(digits + sizeof digits - n, n));
  }
  FormatBuffer& append_pointer(const void* p) noexcept { return append_hex(reinterpret_cast<std::uintptr_t>(p)); }

  const char* data() const noexcept { return buffer_; }
  std::size_t size() const noexcept { return size_; }
  std::string_view view() const noexcept { return {buffer_, size_}; }
  const char* c_str() noexcept {
    buffer_[size_] = '\0';
    return buffer_;
  }
  bool truncated() const noexcept { return truncated_; }
  void clear() noexcept {
    size_ = 0;
    truncated_ = false;
  }

 private:
  char* buffer_;
  std::size_t capacity_;
  std::size_t size_ = 0;
  bool truncated_ = false;
};

// A FormatBuffer with its storage inside, for a line built on the stack.
template <std::size_t Capacity>
class StackFormatBuffer : public FormatBuffer {
  static_assert(Capacity >= 1);

 public:
  StackFormatBuffer() noexcept : FormatBuffer(storage_, Capacity) {}

 private:
  char storage_[Capacity];
};

}  // namespace zheap::support
