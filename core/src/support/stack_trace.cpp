// See stack_trace.hpp.
#include "support/stack_trace.hpp"

#include <cstdint>
#include <string_view>

#include <dlfcn.h>

#include <boost/stacktrace/safe_dump_to.hpp>

#include "os/os.hpp"
#include "support/format.hpp"

namespace zheap::support {

namespace {
constexpr std::size_t max_frames = 64;
}

__attribute__((noinline)) void print_stack_trace(int fd, const char* prefix, std::size_t skip) noexcept {
  void* frames[max_frames + 1];
  // +1: do not show print_stack_trace itself.
  std::size_t count = boost::stacktrace::safe_dump_to(skip + 1, frames, sizeof frames);
  if (count > 0) --count;  // the terminating null frame

  for (std::size_t i = 0; i < count; ++i) {
    char line[512];
    BufferWriter out(line);
    out.text(prefix).character('#').unsigned_decimal(i).character(' ').pointer(frames[i]);
    Dl_info info{};
    // A return address points after the call; look up the byte before it so that a call
    // that ends a function is attributed to that function.
    const auto address = reinterpret_cast<std::uintptr_t>(frames[i]);
    if (address != 0 && ::dladdr(reinterpret_cast<void*>(address - 1), &info) != 0) {
      if (info.dli_fname != nullptr && info.dli_fname[0] != '\0') {
        out.text(" ").text(info.dli_fname).text("+").hex(address - reinterpret_cast<std::uintptr_t>(info.dli_fbase));
      }
      if (info.dli_sname != nullptr) {
        out.text(" (").text(info.dli_sname).text("+").hex(address - reinterpret_cast<std::uintptr_t>(info.dli_saddr)).text(")");
      }
    }
    out.character('\n');
    if (out.truncated()) line[sizeof line - 2] = '\n';
    os::write_all(fd, out.c_str(), out.truncated() ? sizeof line - 1 : out.size());
  }
}

}  // namespace zheap::support
