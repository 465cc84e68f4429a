// Debug reports as JSON Lines: one JSON object per line, for tools (ZHEAP_REPORT_FORMAT=json;
// `zheap report` renders them back as text). The schema is docs/REPORT.md; every record
// has "version": 1 and "type": "error" or "leaks".
//
// Written without malloc (the shim calls these inside its heap), streamed through a small
// buffer, so a record of any size is one line with no length limit: strings are escaped
// (quotes, backslashes, control characters; bytes that are not UTF-8 become U+FFFD, since a
// file name may hold anything and JSON must be UTF-8). Addresses are strings ("0x4011d6"):
// JSON readers keep numbers as doubles, which lose an address's low bits.
//
// The words the records use for kinds and families are fixed identifiers, listed here
// both ways, so that a reader parses with the very tables the writer used.
#pragma once

#include <zheap/debug_allocator.hpp>

#include <optional>
#include <string_view>

#include "debug/report_model.hpp"

namespace zheap::debug {

inline constexpr int report_json_version = 1;

void write_debug_error_json(int fd, const DebugError& error, const ReportOrigin& origin) noexcept;
// Always writes the record (a tool reading the file learns "no leaks" from it too).
void write_leak_listing_json(int fd, const LeakListing& listing, const ReportOrigin& origin) noexcept;

// The identifiers, e.g. "double_free", "new_array", "definite".
std::string_view json_name(DebugErrorKind kind) noexcept;
std::string_view json_name(AllocationFamily family) noexcept;
std::string_view json_name(LeakKind kind) noexcept;
std::optional<DebugErrorKind> error_kind_from_json(std::string_view name) noexcept;
std::optional<AllocationFamily> family_from_json(std::string_view name) noexcept;
std::optional<LeakKind> leak_kind_from_json(std::string_view name) noexcept;

}  // namespace zheap::debug
