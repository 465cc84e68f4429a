// Every message the runtime part of the shim prints, one function per event; the wording
// lives in report.cpp. None of them allocates; all write straight to stderr and preserve errno.
#pragma once

#include <cstddef>
#include <string_view>

namespace zheap::shim {

// A mode could not start (e.g. no address space to reserve); the shim runs on `fallback`.
void report_mode_unavailable(const char* mode, const char* why, const char* fallback) noexcept;
// free/realloc/malloc_usable_size got a pointer no known heap handed out. Printed for
// the first such pointer only; the call is then ignored.
void report_foreign_pointer(const char* function, const void* ptr) noexcept;
// The bootstrap region is used up (only re-entrant or pre-start-up calls come from it).
void report_bootstrap_exhausted() noexcept;
// Debug mode found an error while the shim was already busy on this thread (inside the
// report of another error, or start-up): one unsymbolized line, since symbolizing here
// could re-enter what is running. `kind` is the error's name.
void report_nested_debug_error(const char* kind, const void* ptr) noexcept;
// The file ZHEAP_SUPPRESSIONS names cannot be read (`error`: errno); nothing is suppressed.
void report_suppressions_unreadable(const char* path, int error) noexcept;
// A line of that file that is not a suppression (or one past the most kept); skipped.
void report_invalid_suppression(const char* path, std::size_t line_number, std::string_view line) noexcept;

}  // namespace zheap::shim
