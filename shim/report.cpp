#include "report.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>

#include "os/os.hpp"
#include "support/format.hpp"

namespace zheap::shim {

namespace {

constinit std::atomic<bool> foreign_pointer_reported{false};
constinit std::atomic<bool> bootstrap_exhaustion_reported{false};

// A line assembled in a caller's buffer: no allocation, no stdio.
class Line {
 public:
  Line& text(const char* s) noexcept {
    while (*s != '\0' && used_ < sizeof(buffer_) - 1) buffer_[used_++] = *s++;
    return *this;
  }
  Line& address(const void* p) noexcept {
    char digits[2 + 16];
    auto value = reinterpret_cast<std::uintptr_t>(p);
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[value & 15];
      value >>= 4;
    } while (value != 0);
    text("0x");
    while (n > 0 && used_ < sizeof(buffer_) - 1) buffer_[used_++] = digits[--n];
    return *this;
  }
  void print() noexcept {
    buffer_[used_++] = '\n';
    os::write_stderr(buffer_, used_);
  }

 private:
  char buffer_[512];
  std::size_t used_ = 0;
};

}  // namespace

void report_mode_unavailable(const char* mode, const char* why, const char* fallback) noexcept {
  Line().text("zheap: allocator '").text(mode).text("' cannot start: ").text(why)
      .text("; using '").text(fallback).text("'").print();
}

void report_foreign_pointer(const char* function, const void* ptr) noexcept {
  if (foreign_pointer_reported.exchange(true, std::memory_order_relaxed)) return;
  Line().text("zheap: ").text(function).text("(").address(ptr)
      .text("): pointer not allocated by zheap nor glibc; ignored (reported once)").print();
}

void report_bootstrap_exhausted() noexcept {
  if (bootstrap_exhaustion_reported.exchange(true, std::memory_order_relaxed)) return;
  Line().text("zheap: bootstrap region exhausted; early/re-entrant allocation fails").print();
}

void report_nested_debug_error(const char* kind, const void* ptr) noexcept {
  Line().text("zheap: ").text(kind).text(" on ").address(ptr)
      .text(" while the shim was busy on this thread (in another report?); not symbolized").print();
}

void report_suppressions_unreadable(const char* path, int error) noexcept {
  // strerrordesc_np: the message without locale or allocation (glibc >= 2.32).
  const char* reason = ::strerrordesc_np(error);
  Line().text("zheap: ZHEAP_SUPPRESSIONS: cannot read \"").text(path).text("\": ")
      .text(reason != nullptr ? reason : "error").text("; no leak is suppressed").print();
}

void report_invalid_suppression(const char* path, std::size_t line_number, std::string_view line) noexcept {
  char buffer[512];
  support::BufferWriter out(buffer);
  out.text("zheap: ZHEAP_SUPPRESSIONS: ").text(path).character(':').unsigned_decimal(line_number)
      .text(": not a suppression (expected leak:PATTERN, # comments, blank lines), skipped: \"");
  constexpr std::size_t shown = 160;  // one line, whatever the file holds
  for (std::size_t i = 0; i < line.size() && i < shown; ++i) {
    const char c = line[i];
    out.character(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (line.size() > shown) out.text("...");
  out.text("\"\n");
  os::write_stderr(out.c_str(), out.size());
}

}  // namespace zheap::shim
