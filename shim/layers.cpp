// See layers.hpp.
#include "layers.hpp"

#include "options.hpp"
#include "os/os.hpp"
#include "output_file.hpp"
#include "stats.hpp"
#include "support/format.hpp"
#include "support/once.hpp"
#include "support/stack_trace.hpp"

namespace zheap::shim {

namespace layers {

namespace detail {
constinit std::atomic<std::uint8_t> active_bits{unconfigured};
}  // namespace detail

namespace {

using support::BufferWriter;
using detail::active_bits;
using detail::unconfigured;
using detail::limit_bit;
using detail::fail_at_bit;
using detail::stats_bit;
using detail::log_bit;

// Written once by configure() before `active_bits` is published (release); read after an
// acquire load of `active_bits`.
constinit std::size_t limit_bytes = Limit::unlimited;
constinit std::uint64_t fail_at_index = 0;
constinit int log_fd = -1;

constinit Stats process_stats;
constinit std::atomic<std::uint64_t> allocations_admitted{0};
constinit std::atomic<bool> limit_refusal_reported{false};
constinit std::atomic<bool> stats_printed{false};

constinit support::Once configured_once;

std::uint8_t configure_now() noexcept {
  const Options& o = options();
  std::uint8_t bits = 0;
  if (o.limit != Limit::unlimited) {
    limit_bytes = o.limit;
    bits |= limit_bit;
  }
  if (o.fail_at != 0) {
    fail_at_index = o.fail_at;
    bits |= fail_at_bit;
  }
  if (o.stats) bits |= stats_bit;
  if (!o.log.empty()) {
    log_fd = open_output_file("ZHEAP_LOG", o.log.c_str());
    if (log_fd >= 0) bits |= log_bit;
  }
  return bits;
}

// The layers in force, configuring them on the first call of the process (see Once for
// concurrent first calls, re-entry and fork). A re-entrant call sees no layer.
std::uint8_t current_layers() noexcept {
  const std::uint8_t bits = active_bits.load(std::memory_order_acquire);
  if ((bits & unconfigured) == 0) [[likely]] return bits;
  // Too early to read the options (see options()): no layer yet, configure later.
  if (!os::environment_ready()) return 0;
  if (!configured_once.run([] { active_bits.store(configure_now(), std::memory_order_release); })) return 0;
  return active_bits.load(std::memory_order_acquire);
}

__attribute__((noinline)) void report_injected_failure(std::uint64_t index, std::size_t size) noexcept {
  char line[256];
  BufferWriter out(line);
  out.text("zheap: ZHEAP_FAIL_AT=").unsigned_decimal(index).text(": allocation ").unsigned_decimal(index);
  out.text(" (").unsigned_decimal(size).text(" bytes) fails here:\n");
  os::write_stderr(out.c_str(), out.size());
  // Skip admit_slow and this function: the stack starts at the runtime's entry point.
  support::print_stack_trace(2, "zheap:   ", 2);
}

void report_limit_refusal(std::size_t size, std::size_t in_use) noexcept {
  if (limit_refusal_reported.exchange(true, std::memory_order_relaxed)) return;
  char line[256];
  BufferWriter out(line);
  out.text("zheap: ZHEAP_LIMIT=").unsigned_decimal(limit_bytes).text(": an allocation of ").unsigned_decimal(size);
  out.text(" bytes is refused (").unsigned_decimal(in_use).text(" bytes in use); later refusals are not reported\n");
  os::write_stderr(out.c_str(), out.size());
}

void log_line(BufferWriter& out) noexcept {
  out.character('\n');
  os::write_all(log_fd, out.c_str(), out.size());
}

}  // namespace

namespace detail {

__attribute__((noinline)) bool admit_slow(std::size_t size) noexcept {
  const std::uint8_t bits = current_layers();
  if (bits & fail_at_bit) {
    const std::uint64_t index = allocations_admitted.fetch_add(1, std::memory_order_relaxed) + 1;
    if (index == fail_at_index) {
      report_injected_failure(index, size);
      return false;
    }
  }
  if (bits & limit_bit) {
    const std::size_t in_use = process_stats.bytes_in_use();
    if (size > limit_bytes || in_use > limit_bytes - size) {
      report_limit_refusal(size, in_use);
      return false;
    }
  }
  return true;
}

void on_alloc_slow(void* p, std::size_t usable, Api api, std::size_t size, std::size_t alignment) noexcept {
  const std::uint8_t bits = current_layers();
  if (bits & stats_bit) {
    process_stats.record_alloc(usable, api);
  } else if (bits & limit_bit) {
    process_stats.add_bytes(usable);
  }
  if (bits & log_bit) {
    char line[256];  // the longest line is about 150 bytes
    BufferWriter out(line);
    out.text("tid=").unsigned_decimal(static_cast<unsigned>(os::thread_id())).character(' ').text(api_name(api));
    out.text(" size=").unsigned_decimal(size).text(" align=").unsigned_decimal(alignment);
    out.text(" usable=").unsigned_decimal(usable).text(" -> ").pointer(p);
    log_line(out);
  }
}

void on_free_slow(void* p, std::size_t usable, Api api) noexcept {
  const std::uint8_t bits = current_layers();
  if (bits & stats_bit) {
    process_stats.record_free(usable, api);
  } else if (bits & limit_bit) {
    process_stats.remove_bytes(usable);
  }
  if (bits & log_bit) {
    char line[256];  // the longest line is about 150 bytes
    BufferWriter out(line);
    out.text("tid=").unsigned_decimal(static_cast<unsigned>(os::thread_id())).character(' ').text(api_name(api));
    out.character(' ').pointer(p).text(" usable=").unsigned_decimal(usable);
    log_line(out);
  }
}

}  // namespace detail

void at_exit() noexcept {
  if ((current_layers() & stats_bit) == 0) return;
  if (stats_printed.exchange(true, std::memory_order_relaxed)) return;
  const Options& o = options();
  int fd = 2;
  if (!o.stats_file.empty()) {
    fd = open_output_file("ZHEAP_STATS_FILE", o.stats_file.c_str());
    if (fd < 0) fd = 2;  // open_output_file said why; stderr still gets the report
  }
  process_stats.write_report(fd);
  if (fd != 2) os::close(fd);
}

}  // namespace layers
}  // namespace zheap::shim
