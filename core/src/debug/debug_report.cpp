// Every word the debug allocator says about an error or a leak is in this file.
#include "debug/debug_report.hpp"

#include "debug/report_model.hpp"

#include "os/os.hpp"
#include "support/format.hpp"

#include <cstdlib>

namespace zheap {

const char* debug_error_name(DebugErrorKind kind) noexcept {
  switch (kind) {
    case DebugErrorKind::double_free: return "double-free";
    case DebugErrorKind::write_after_free: return "heap-use-after-free (write)";
    case DebugErrorKind::buffer_overflow: return "heap-buffer-overflow";
    case DebugErrorKind::buffer_underflow: return "heap-buffer-underflow";
    case DebugErrorKind::mismatched_free: return "alloc-dealloc-mismatch";
    case DebugErrorKind::wrong_size_free: return "new-delete-type-mismatch";
    case DebugErrorKind::wrong_alignment_free: return "wrong-alignment-free";
    case DebugErrorKind::invalid_free: return "bad-free";
    case DebugErrorKind::interior_free: return "bad-free (interior pointer)";
    case DebugErrorKind::realloc_of_freed: return "realloc-of-freed-block";
  }
  return "unknown-error";
}

const char* allocation_family_name(AllocationFamily family) noexcept {
  switch (family) {
    case AllocationFamily::allocator: return "zheap::Allocator";
    case AllocationFamily::malloc: return "malloc";
    case AllocationFamily::new_object: return "operator new";
    case AllocationFamily::new_array: return "operator new []";
    case AllocationFamily::new_object_aligned: return "operator new(align_val_t)";
    case AllocationFamily::new_array_aligned: return "operator new [](align_val_t)";
  }
  return "?";
}

namespace {

const char* release_name(AllocationFamily family) noexcept {
  switch (family) {
    case AllocationFamily::allocator: return "zheap::Allocator::free";
    case AllocationFamily::malloc: return "free";
    case AllocationFamily::new_object: return "operator delete";
    case AllocationFamily::new_array: return "operator delete []";
    case AllocationFamily::new_object_aligned: return "operator delete(align_val_t)";
    case AllocationFamily::new_array_aligned: return "operator delete [](align_val_t)";
  }
  return "?";
}

// Lines are built in a fixed buffer and written whole; a report is a few dozen lines.
class ReportWriter {
 public:
  ReportWriter(int fd, const debug::StackSource& stacks) noexcept : fd_(fd), stacks_(stacks), line_(buffer_) {}
  support::BufferWriter& line() noexcept { return line_; }
  void end_line() noexcept {
    line_.character('\n');
    os::write_all(fd_, line_.c_str(), line_.size());
    line_ = support::BufferWriter(buffer_);
  }
  // "    #N 0xADDR in function file:line", one line per frame.
  void stack(const char* title, std::uint32_t stack_id) noexcept {
    line_.text(title);
    end_line();
    const std::size_t count = stacks_.count(stack_id);
    if (count == 0) {
      line_.text("    <stack not recorded>");
      end_line();
      return;
    }
    for (std::size_t i = 0; i < count; ++i) {
      const debug::ReportFrame frame = stacks_.at(stack_id, i);
      line_.text("    #").unsigned_decimal(i).character(' ').hex(frame.address);
      if (frame.symbol.function[0] != '\0') line_.text(" in ").text(frame.symbol.function);
      if (frame.symbol.file[0] != '\0') {
        line_.character(' ').text(frame.symbol.file);
        if (frame.symbol.line != 0) line_.character(':').unsigned_decimal(frame.symbol.line);
      }
      end_line();
    }
  }
  // The first frame with a function name, for the SUMMARY line.
  void where(std::uint32_t stack_id) noexcept {
    const std::size_t count = stacks_.count(stack_id);
    for (std::size_t i = 0; i < count; ++i) {
      const SymbolizedFrame symbol = stacks_.at(stack_id, i).symbol;
      if (symbol.function[0] == '\0') continue;
      if (symbol.file[0] != '\0') {
        line_.character(' ').text(symbol.file);
        if (symbol.line != 0) line_.character(':').unsigned_decimal(symbol.line);
      }
      line_.text(" in ").text(symbol.function);
      return;
    }
  }
  // "==PID==", every report's first line starts so.
  support::BufferWriter& process_tag(int process_id) noexcept {
    return line_.text("==").unsigned_decimal(static_cast<std::uint64_t>(process_id)).text("==");
  }

 private:
  int fd_;
  const debug::StackSource& stacks_;
  char buffer_[1024]{};
  support::BufferWriter line_;
};

void describe_block(ReportWriter& out, const DebugError& error) noexcept {
  if (error.block == nullptr) return;
  out.line()
      .text("the block: ")
      .unsigned_decimal(error.block_size)
      .text(" byte(s) at ")
      .pointer(error.block)
      .text(", alignment ")
      .unsigned_decimal(error.block_alignment)
      .text(", allocated with ")
      .text(allocation_family_name(error.allocated_with));
  if (error.kind == DebugErrorKind::interior_free)
    out.line().text("; the pointer is ").unsigned_decimal(static_cast<std::uint64_t>(error.offset)).text(
        " byte(s) inside it");
  out.end_line();
}

}  // namespace

void write_debug_error(int fd, const DebugError& error) noexcept {
  debug::write_debug_error_text(fd, error, debug::this_process());
}

void debug::write_debug_error_text(int fd, const DebugError& error, const ReportOrigin& origin) noexcept {
  ReportWriter out(fd, origin.stacks);
  out.process_tag(origin.process_id).text("ERROR: zheap: ");
  out.line().text(debug_error_name(error.kind)).text(" ");
  const char* now_title = "noticed here:";
  const char* free_title = "freed here:";
  switch (error.kind) {
    case DebugErrorKind::double_free:
      out.line().text("on ").pointer(error.address).text(" (").text(release_name(error.released_with)).text(")");
      now_title = "freed again here:";
      free_title = "first freed here:";
      break;
    case DebugErrorKind::write_after_free:
      out.line().text("at ").pointer(error.address).text(": byte ").signed_decimal(error.offset).text(
          " of a freed block was written while it was in quarantine");
      break;
    case DebugErrorKind::buffer_overflow:
      out.line()
          .text("at ")
          .pointer(error.address)
          .text(": byte ")
          .signed_decimal(error.offset)
          .text(" of a ")
          .unsigned_decimal(error.block_size)
          .text("-byte block was written (")
          .unsigned_decimal(static_cast<std::uint64_t>(error.offset) - error.block_size)
          .text(" bytes past its end)");
      break;
    case DebugErrorKind::buffer_underflow:
      out.line()
          .text("at ")
          .pointer(error.address)
          .text(": ")
          .unsigned_decimal(static_cast<std::uint64_t>(-error.offset))
          .text(" bytes before a ")
          .unsigned_decimal(error.block_size)
          .text("-byte block were written");
      break;
    case DebugErrorKind::mismatched_free:
      out.line()
          .text("(")
          .text(allocation_family_name(error.allocated_with))
          .text(" vs ")
          .text(release_name(error.released_with))
          .text(") on ")
          .pointer(error.address);
      if (error.allocated_with == AllocationFamily::new_object_aligned ||
          error.allocated_with == AllocationFamily::new_array_aligned)
        out.line().text(": an aligned new must be deleted with its alignment");
      now_title = "released here:";
      break;
    case DebugErrorKind::wrong_size_free:
      out.line()
          .text("on ")
          .pointer(error.address)
          .text(": ")
          .text(release_name(error.released_with))
          .text(" was given size ")
          .unsigned_decimal(error.given_size)
          .text(", the block has ")
          .unsigned_decimal(error.block_size);
      now_title = "released here:";
      break;
    case DebugErrorKind::wrong_alignment_free:
      out.line()
          .text("on ")
          .pointer(error.address)
          .text(": ")
          .text(release_name(error.released_with))
          .text(" was given alignment ")
          .unsigned_decimal(error.given_alignment)
          .text(", the block has ")
          .unsigned_decimal(error.block_alignment);
      now_title = "released here:";
      break;
    case DebugErrorKind::invalid_free:
      out.line()
          .text("on ")
          .pointer(error.address)
          .text(": ")
          .text(release_name(error.released_with))
          .text(" of a pointer that was not allocated here (or was freed long ago)");
      now_title = "released here:";
      break;
    case DebugErrorKind::interior_free:
      out.line().text("on ").pointer(error.address).text(": ").text(release_name(error.released_with)).text(
          " of a pointer into the middle of a block");
      now_title = "released here:";
      break;
    case DebugErrorKind::realloc_of_freed:
      out.line().text("on ").pointer(error.address).text(": realloc of a block that was already freed");
      now_title = "realloc called here:";
      break;
  }
  out.end_line();
  describe_block(out, error);
  if (error.current_stack != 0) out.stack(now_title, error.current_stack);
  if (error.free_stack != 0) out.stack(free_title, error.free_stack);
  if (error.allocation_stack != 0) out.stack("allocated here:", error.allocation_stack);
  out.line().text("SUMMARY: zheap: ").text(debug_error_name(error.kind));
  out.where(error.current_stack != 0 ? error.current_stack : error.allocation_stack);
  out.end_line();
}

void LeakReport::write(int fd) const noexcept {
  debug::write_leak_listing_text(fd, debug::listing_of(*this), debug::this_process());
}

namespace debug {

LeakListing listing_of(const LeakReport& report) noexcept {
  LeakListing listing;
  listing.groups = report.groups();
  for (LeakKind kind : {LeakKind::definite, LeakKind::indirect, LeakKind::reachable})
    listing.totals[static_cast<int>(kind)] = report.totals(kind);
  return listing;
}

namespace {

const char* leak_heading(LeakKind kind) noexcept {
  switch (kind) {
    case LeakKind::definite: return "Direct leak of ";
    case LeakKind::indirect: return "Indirect leak of ";
    case LeakKind::reachable: return "Still reachable: ";
  }
  return "Leak of ";
}

// LeakSanitizer's table of the suppressions that hid something.
void write_suppressions_used(ReportWriter& out, std::span<const SuppressionUse> used) noexcept {
  if (used.empty()) return;
  constexpr std::string_view rule = "-----------------------------------------------------";
  out.line().text(rule);
  out.end_line();
  out.line().text("Suppressions used:");
  out.end_line();
  out.line().text("  count      bytes template");
  out.end_line();
  for (const SuppressionUse& use : used) {
    char number[24];
    support::BufferWriter digits(number);
    digits.unsigned_decimal(use.blocks);
    for (std::size_t pad = digits.size(); pad < 7; ++pad) out.line().character(' ');
    out.line().text(digits.view()).character(' ');
    digits = support::BufferWriter(number);
    digits.unsigned_decimal(use.bytes);
    for (std::size_t pad = digits.size(); pad < 10; ++pad) out.line().character(' ');
    out.line().text(digits.view()).character(' ').text(use.pattern);
    out.end_line();
  }
  out.line().text(rule);
  out.end_line();
}

}  // namespace

void write_leak_listing_text(int fd, const LeakListing& listing, const ReportOrigin& origin) noexcept {
  const bool leaks = listing.leaked_blocks() != 0;
  const LeakTotals reachable = listing.total(LeakKind::reachable);
  const bool list_reachable = listing.show_reachable && reachable.blocks != 0;
  if (!leaks && !list_reachable && listing.suppressions.empty()) return;
  ReportWriter out(fd, origin.stacks);
  if (leaks) {
    out.process_tag(origin.process_id).text("ERROR: zheap: detected memory leaks");
    out.end_line();
  } else if (list_reachable) {
    out.process_tag(origin.process_id).text("zheap: no leaks; blocks still reachable at exit:");
    out.end_line();
  }
  for (const LeakGroup& group : listing.groups) {
    if (group.kind == LeakKind::reachable && !listing.show_reachable) continue;
    out.end_line();
    out.line()
        .text(leak_heading(group.kind))
        .unsigned_decimal(group.bytes)
        .text(" byte(s) in ")
        .unsigned_decimal(group.blocks)
        .text(" object(s) allocated from:");
    out.stack("", group.stack);
  }
  if (leaks && !listing.show_reachable && reachable.blocks != 0) {
    out.end_line();
    out.line()
        .unsigned_decimal(reachable.bytes)
        .text(" byte(s) in ")
        .unsigned_decimal(reachable.blocks)
        .text(" object(s) still reachable (not leaks); ZHEAP_SHOW_REACHABLE=1 lists them");
    out.end_line();
  }
  if (leaks || list_reachable) out.end_line();
  write_suppressions_used(out, listing.suppressions);
  if (!leaks) return;
  if (!listing.suppressions.empty()) out.end_line();
  out.line()
      .text("SUMMARY: zheap: ")
      .unsigned_decimal(listing.leaked_bytes())
      .text(" byte(s) leaked in ")
      .unsigned_decimal(listing.leaked_blocks())
      .text(" allocation(s).");
  out.end_line();
}

namespace {

std::size_t depot_frame_count(const void*, std::uint32_t stack) noexcept { return debug_stack_frames(stack).size(); }

ReportFrame depot_frame(const void*, std::uint32_t stack, std::size_t index) noexcept {
  const std::span<const std::uintptr_t> frames = debug_stack_frames(stack);
  ReportFrame frame;
  if (index >= frames.size()) return frame;
  frame.address = frames[index];
  frame.symbol = symbolize_frame(frame.address);
  // A return address may be one past its function's last byte (a call to a noreturn
  // function): ask about the call instruction itself.
  if (const char* module = os::object_path_containing(frame.address - 1); module != nullptr) frame.module = module;
  return frame;
}

}  // namespace

StackSource process_stacks() noexcept {
  StackSource source;
  source.frame_count = depot_frame_count;
  source.frame = depot_frame;
  return source;
}

ReportOrigin this_process() noexcept { return ReportOrigin{os::process_id(), process_stacks()}; }

}  // namespace debug

namespace debug {
namespace {

DebugError error_about(DebugErrorKind kind, const BlockRecord& block, StackId now) noexcept {
  DebugError error;
  error.kind = kind;
  error.address = reinterpret_cast<const void*>(block.address);
  error.block = reinterpret_cast<const void*>(block.address);
  error.block_size = block.size;
  error.block_alignment = block.alignment();
  error.allocated_with = block.family;
  error.allocation_stack = block.allocation_stack;
  error.free_stack = block.free_stack;
  error.current_stack = now;
  return error;
}

void deliver(const ReportPolicy& policy, OnError on, const DebugError& error) noexcept {
  if (on == OnError::ignore) return;
  if (policy.handler != nullptr) {
    policy.handler(policy.context, error);
  } else {
    write_debug_error(2, error);
  }
  if (on == OnError::abort) std::abort();
}

}  // namespace

void report_double_free(const ReportPolicy& policy, const BlockRecord& block, AllocationFamily released_with,
                        StackId now) noexcept {
  DebugError error = error_about(DebugErrorKind::double_free, block, now);
  error.released_with = released_with;
  deliver(policy, policy.on_error, error);
}

void report_write_after_free(const ReportPolicy& policy, const BlockRecord& block, std::ptrdiff_t offset,
                             StackId now) noexcept {
  DebugError error = error_about(DebugErrorKind::write_after_free, block, now);
  error.address = reinterpret_cast<const void*>(block.address + static_cast<std::uintptr_t>(offset));
  error.offset = offset;
  deliver(policy, policy.on_error, error);
}

void report_redzone_corruption(const ReportPolicy& policy, const BlockRecord& block, std::ptrdiff_t offset,
                               StackId now) noexcept {
  DebugError error =
      error_about(offset < 0 ? DebugErrorKind::buffer_underflow : DebugErrorKind::buffer_overflow, block, now);
  error.address = reinterpret_cast<const void*>(block.address + static_cast<std::uintptr_t>(offset));
  error.offset = offset;
  deliver(policy, policy.on_error, error);
}

void report_mismatched_free(const ReportPolicy& policy, const BlockRecord& block, AllocationFamily released_with,
                            StackId now) noexcept {
  DebugError error = error_about(DebugErrorKind::mismatched_free, block, now);
  error.released_with = released_with;
  deliver(policy, policy.on_error, error);
}

void report_wrong_size_free(const ReportPolicy& policy, const BlockRecord& block, AllocationFamily released_with,
                            std::size_t given_size, StackId now) noexcept {
  DebugError error = error_about(DebugErrorKind::wrong_size_free, block, now);
  error.released_with = released_with;
  error.given_size = given_size;
  deliver(policy, policy.on_wrong_size, error);
}

void report_wrong_alignment_free(const ReportPolicy& policy, const BlockRecord& block,
                                 AllocationFamily released_with, std::size_t given_alignment, StackId now) noexcept {
  DebugError error = error_about(DebugErrorKind::wrong_alignment_free, block, now);
  error.released_with = released_with;
  error.given_alignment = given_alignment;
  deliver(policy, policy.on_error, error);
}

void report_invalid_free(const ReportPolicy& policy, const void* address, AllocationFamily released_with,
                         StackId now) noexcept {
  DebugError error;
  error.kind = DebugErrorKind::invalid_free;
  error.address = address;
  error.released_with = released_with;
  error.current_stack = now;
  deliver(policy, policy.on_error, error);
}

void report_interior_free(const ReportPolicy& policy, const void* address, const BlockRecord& block,
                          AllocationFamily released_with, StackId now) noexcept {
  DebugError error = error_about(DebugErrorKind::interior_free, block, now);
  error.address = address;
  error.offset = static_cast<std::ptrdiff_t>(reinterpret_cast<std::uintptr_t>(address) - block.address);
  error.released_with = released_with;
  deliver(policy, policy.on_error, error);
}

void report_realloc_of_freed(const ReportPolicy& policy, const BlockRecord& block, StackId now) noexcept {
  DebugError error = error_about(DebugErrorKind::realloc_of_freed, block, now);
  error.released_with = AllocationFamily::malloc;
  deliver(policy, policy.on_error, error);
}

}  // namespace debug
}  // namespace zheap
