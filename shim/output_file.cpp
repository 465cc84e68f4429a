// See output_file.hpp.
#include "output_file.hpp"

#include <cerrno>
#include <cstring>

#include "option_kinds.hpp"
#include "os/os.hpp"
#include "support/format.hpp"

namespace zheap::shim {

bool expand_path(const char* pattern, int process_id, char* out, std::size_t capacity) noexcept {
  support::BufferWriter path(out, capacity);
  for (const char* c = pattern; *c != '\0'; ++c) {
    if (c[0] == '%' && c[1] == 'p') {
      path.unsigned_decimal(static_cast<unsigned>(process_id));
      ++c;
    } else if (c[0] == '%' && c[1] == '%') {
      path.character('%');
      ++c;
    } else {
      path.character(*c);
    }
  }
  return !path.truncated();
}

namespace {
constexpr int high_descriptor = 600;
}

int open_output_file(const char* variable, const char* pattern) noexcept {
  char path[Path::capacity + 32];
  int fd = -1;
  int error = ENAMETOOLONG;
  if (expand_path(pattern, os::process_id(), path, sizeof path)) {
    fd = os::open_for_append(path);
    error = errno;
    // A log kept open for the whole run must not sit on a low descriptor: a program that
    // closes fd 3 and opens another file would get our lines written into it.
    if (fd >= 0) fd = os::move_descriptor_up(fd, high_descriptor);
  }
  if (fd < 0) {
    char line[Path::capacity + 256];
    support::BufferWriter out(line);
    // strerrordesc_np: the message without locale or allocation (glibc >= 2.32).
    const char* reason = ::strerrordesc_np(error);
    out.text("zheap: ").text(variable).text(": cannot open \"").text(path).text("\": ").text(reason ? reason : "error").text("\n");
    os::write_stderr(out.c_str(), out.size());
  }
  return fd;
}

}  // namespace zheap::shim
