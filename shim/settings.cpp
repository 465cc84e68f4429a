#include "settings.hpp"

#include <cstring>

#include "os/os.hpp"
#include "report.hpp"

namespace zheap::shim {

Mode selected_mode() noexcept {
  const char* value = os::getenv("ZHEAP_ALLOCATOR");
  if (value == nullptr || *value == '\0' || std::strcmp(value, "libc") == 0) return Mode::libc;
  if (std::strcmp(value, "jemalloc") == 0) return Mode::jemalloc;
  if (std::strcmp(value, "arena") == 0) return Mode::arena;
  if (std::strcmp(value, "smp") == 0) return Mode::smp;
  report_bad_setting("ZHEAP_ALLOCATOR", value, "libc, jemalloc, arena, smp (debug: not yet built)");
  return Mode::libc;
}

std::size_t arena_limit() noexcept {
  const char* value = os::getenv("ZHEAP_ARENA_LIMIT");
  if (value == nullptr || *value == '\0') return 0;
  std::size_t bytes = 0;
  const char* c = value;
  for (; *c >= '0' && *c <= '9'; ++c) bytes = bytes * 10 + static_cast<std::size_t>(*c - '0');
  std::size_t scale = 1;
  switch (*c) {
    case '\0': break;
    case 'k': case 'K': scale = std::size_t{1} << 10; ++c; break;
    case 'm': case 'M': scale = std::size_t{1} << 20; ++c; break;
    case 'g': case 'G': scale = std::size_t{1} << 30; ++c; break;
    default: break;
  }
  if (c == value || *c != '\0') {
    report_bad_setting("ZHEAP_ARENA_LIMIT", value, "a byte count with optional k, m or g suffix");
    return 0;
  }
  return bytes * scale;
}

}  // namespace zheap::shim
