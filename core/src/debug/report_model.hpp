// What a debug report is made of, apart from where its stacks come from.
//
// The same errors and leak listings are rendered in two places: by the process that found
// them (its stacks are stack-depot ids, symbolized on demand) and by `zheap report`, which
// reads a saved JSON report (its stacks are the frames written there). Both hand the text
// writers (debug_report.cpp) and the JSON writer (report_json.cpp) a StackSource, so each
// layout is written once. Stack ids keep their meaning only inside one StackSource.
// No allocation anywhere here: these run inside the shim's malloc.
#pragma once

#include <zheap/debug_allocator.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace zheap::debug {

// One frame of a stack, as a report shows it.
struct ReportFrame {
  std::uintptr_t address = 0;  // the return address (a call site's next instruction)
  SymbolizedFrame symbol;      // function, file, line; "" and 0 when unknown
  const char* module = "";     // the loaded object's path; "" when unknown
};

// The frames of a stack id, innermost first. Plain function pointers (not virtual
// functions): the core is built without RTTI and the `zheap` command with it.
struct StackSource {
  std::size_t (*frame_count)(const void* context, std::uint32_t stack) noexcept = nullptr;
  ReportFrame (*frame)(const void* context, std::uint32_t stack, std::size_t index) noexcept = nullptr;
  const void* context = nullptr;

  std::size_t count(std::uint32_t stack) const noexcept { return stack == 0 ? 0 : frame_count(context, stack); }
  ReportFrame at(std::uint32_t stack, std::size_t index) const noexcept { return frame(context, stack, index); }
};

// This process's stacks: the stack depot's frames, symbolized (symbolize_frame, cached)
// and named by module (the dynamic loader's tables).
StackSource process_stacks() noexcept;

// Who reports, and where its stacks are.
struct ReportOrigin {
  int process_id = 0;
  StackSource stacks;
};
// This process: its id and process_stacks().
ReportOrigin this_process() noexcept;

// One suppression that matched, for "Suppressions used:" (LeakSanitizer's table).
struct SuppressionUse {
  std::string_view pattern;
  std::size_t blocks = 0;  // leaked blocks it hid
  std::size_t bytes = 0;
};

// The leaks to print at exit, once suppressions have been applied.
struct LeakListing {
  // Definite, then indirect, then reachable groups, each kind by bytes descending;
  // suppressed groups left out. Reachable groups are printed only with show_reachable.
  std::span<const LeakGroup> groups;
  // Per LeakKind (indexed by it), suppressed blocks left out.
  LeakTotals totals[3] = {};
  bool show_reachable = false;  // list still-reachable groups in full, not as one count
  std::span<const SuppressionUse> suppressions;  // those that hid something
  LeakTotals suppressed;                         // what they hid, in all

  LeakTotals total(LeakKind kind) const noexcept { return totals[static_cast<int>(kind)]; }
  std::size_t leaked_blocks() const noexcept { return total(LeakKind::definite).blocks + total(LeakKind::indirect).blocks; }
  std::size_t leaked_bytes() const noexcept { return total(LeakKind::definite).bytes + total(LeakKind::indirect).bytes; }
};

// A report's listing as it stands (nothing suppressed, reachable groups as a count).
LeakListing listing_of(const LeakReport& report) noexcept;

// ---- Text, in the layouts of debug_report.cpp (ASan's for errors, LSan's for leaks).
void write_debug_error_text(int fd, const DebugError& error, const ReportOrigin& origin) noexcept;
// Writes nothing when there is nothing to say (no leak, no listed reachable group, no
// suppression used).
void write_leak_listing_text(int fd, const LeakListing& listing, const ReportOrigin& origin) noexcept;

}  // namespace zheap::debug
