// How and where debug mode's reports are written: the options ZHEAP_REPORT (where),
// ZHEAP_REPORT_FORMAT (text or JSON Lines), ZHEAP_SUPPRESSIONS, ZHEAP_SHOW_REACHABLE and
// ZHEAP_LEAK_EXITCODE (docs/REPORT.md). mode_debug.cpp finds the errors and leaks; this
// file only renders them, with the core's writers (text: debug_report.cpp; JSON:
// report_json.cpp).
//
// Every function here symbolizes, which allocates: call them with the shim's ReentryGuard
// held (as mode_debug.cpp does for every report), and one report at a time (its report
// lock). No allocation of their own: the suppressions file is mapped, never read into
// the heap.
#pragma once

#include <zheap/debug_allocator.hpp>

namespace zheap::shim {

// ZHEAP_REPORT's descriptor, opened at a process's first report (so that `%p` names the
// process that reports, a forked child included); stderr when unset or unopenable.
int report_destination() noexcept;

// One error, in the chosen format, to report_destination().
void write_error_report(const DebugError& error) noexcept;

// The leak report at exit, to report_destination(): suppressed groups left out (and
// listed under "Suppressions used:"), still-reachable groups listed in full with
// ZHEAP_SHOW_REACHABLE, text or JSON.
void write_leak_report(const LeakReport& report) noexcept;

// With ZHEAP_LEAK_EXITCODE non-zero and definite or indirect leaks left after
// suppressions, ends the process now with that status; otherwise returns.
void apply_leak_exit_code(const LeakReport& report) noexcept;

}  // namespace zheap::shim
