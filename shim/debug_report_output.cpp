// See debug_report_output.hpp.
#include "debug_report_output.hpp"

#include <cerrno>
#include <cstdio>

#include "debug/report_json.hpp"
#include "debug/report_model.hpp"
#include "debug/suppressions.hpp"
#include "option_kinds.hpp"
#include "options.hpp"
#include "os/os.hpp"
#include "output_file.hpp"
#include "report.hpp"
#include "support/once.hpp"

namespace zheap::shim {

namespace {

// Written under the caller's report lock.
constinit int report_fd = -1;
constinit int report_fd_process = 0;

// ZHEAP_SUPPRESSIONS, parsed at the first leak report. The patterns point into the
// file's mapping, which is kept for the life of the process.
constinit support::Once suppressions_loaded;
constinit debug::Suppressions suppressions;
constinit char suppressions_path[Path::capacity + 32] = {};

void complain_about_line(void* /*context*/, std::size_t line_number, std::string_view line) noexcept {
  report_invalid_suppression(suppressions_path, line_number, line);
}

void load_suppressions() noexcept {
  const Options& o = options();
  if (o.suppressions.empty()) return;
  if (!expand_path(o.suppressions.c_str(), os::process_id(), suppressions_path, sizeof suppressions_path)) {
    report_suppressions_unreadable(o.suppressions.c_str(), ENAMETOOLONG);
    return;
  }
  const os::MappedFile file = os::map_file(suppressions_path);
  if (file.data == nullptr) {
    report_suppressions_unreadable(suppressions_path, errno);
    return;
  }
  suppressions.parse({file.data, file.size}, complain_about_line, nullptr);
}

const debug::Suppressions& process_suppressions() noexcept {
  suppressions_loaded.run(load_suppressions);
  return suppressions;
}

// Scratch memory for a report with its suppressions applied, on a mapping of its own
// (the report's groups can be many; nothing here may come from the heap).
class SuppressedListing {
 public:
  explicit SuppressedListing(const LeakReport& report) noexcept : listing_(debug::listing_of(report)) {
    const debug::Suppressions& s = process_suppressions();
    if (s.empty() || listing_.groups.empty()) return;
    const std::size_t groups = listing_.groups.size();
    const std::size_t uses = s.patterns().size();
    mapped_bytes_ = groups * sizeof(LeakGroup) + uses * sizeof(debug::SuppressionUse);
    void* memory = os::map(mapped_bytes_);
    if (memory == nullptr) {  // no memory for the scratch: report unsuppressed
      mapped_bytes_ = 0;
      return;
    }
    memory_ = memory;
    auto* kept = static_cast<LeakGroup*>(memory);
    auto* used = reinterpret_cast<debug::SuppressionUse*>(kept + groups);
    debug::apply_suppressions(listing_, s, debug::process_stacks(), {kept, groups}, {used, uses});
  }
  ~SuppressedListing() {
    if (memory_ != nullptr) os::unmap(memory_, mapped_bytes_);
  }
  SuppressedListing(const SuppressedListing&) = delete;
  SuppressedListing& operator=(const SuppressedListing&) = delete;

  debug::LeakListing& listing() noexcept { return listing_; }

 private:
  debug::LeakListing listing_;
  void* memory_ = nullptr;
  std::size_t mapped_bytes_ = 0;
};

bool json() noexcept { return options().report_format == ReportFormat::json; }

}  // namespace

int report_destination() noexcept {
  const Options& o = options();
  if (o.report.empty()) return 2;
  const int process = os::process_id();
  if (report_fd_process != process) {  // first report of this process
    report_fd_process = process;
    report_fd = open_output_file("ZHEAP_REPORT", o.report.c_str());
  }
  return report_fd >= 0 ? report_fd : 2;
}

void write_error_report(const DebugError& error) noexcept {
  if (json()) {
    debug::write_debug_error_json(report_destination(), error, debug::this_process());
  } else {
    write_debug_error(report_destination(), error);
  }
}

void write_leak_report(const LeakReport& report) noexcept {
  SuppressedListing suppressed(report);
  debug::LeakListing& listing = suppressed.listing();
  listing.show_reachable = options().show_reachable;
  if (json()) {
    debug::write_leak_listing_json(report_destination(), listing, debug::this_process());
  } else {
    debug::write_leak_listing_text(report_destination(), listing, debug::this_process());
  }
}

void apply_leak_exit_code(const LeakReport& report) noexcept {
  const int status = options().leak_exitcode;
  if (status == 0 || report.ok()) return;
  const debug::Suppressions& s = process_suppressions();
  const debug::StackSource stacks = debug::process_stacks();
  bool leaks_remain = false;
  for (const LeakGroup& group : report.groups()) {
    if (group.kind == LeakKind::reachable) continue;
    if (!s.match(stacks, group.stack)) {
      leaks_remain = true;
      break;
    }
  }
  if (!leaks_remain) return;
  // We run inside exit(), before libc flushes stdio (that comes after the destructors):
  // _exit skips that flush, so whatever the program printf'ed into a buffer (all of
  // stdout when it is a pipe or file) would be lost. Flush it first.
  std::fflush(nullptr);
  os::exit_immediately(status);
}

}  // namespace zheap::shim
