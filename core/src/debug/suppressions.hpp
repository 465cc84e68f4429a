// Suppressions: leaks a program's owner has decided not to hear about, in LeakSanitizer's
// file format, so that existing suppression files work unchanged (ZHEAP_SUPPRESSIONS).
//
// Format: one `leak:PATTERN` per line; `#` starts a comment line; blank lines and spaces
// around a line are ignored. Any other line is invalid: passed to the caller (who says so
// in one line) and skipped. A pattern matches a leak group when it matches, in any frame of
// the group's allocation stack, the function name, the source file name or the path of
// the module (executable or shared library) the frame is in. Matching as LeakSanitizer's:
// `*` matches any run of characters, a leading `^` anchors the pattern at the start of the
// name, a trailing `$` at its end; otherwise the pattern may match anywhere inside (so
// `leak:foo` suppresses `foo`, `foobar()`, `libfoo.so` and `src/foo.cpp`).
// (One difference, deliberate: LSan matches the pieces between stars leftmost only, so
// it misses e.g. `a$` in "aba"; this matcher does not.)
//
// Which suppression is credited with a group, for "Suppressions used:": the first in file
// order that matches the innermost frame that any suppression matches.
// Only definite and indirect groups are suppressed (still-reachable ones are not leaks).
//
// No allocation: patterns are views into the caller's text (the shim maps the file and
// keeps it mapped), at most `capacity` of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "debug/report_model.hpp"

namespace zheap::debug {

// Whether `pattern` (with `*`, `^`, `$` as above) matches `text`. Empty text never matches.
bool suppression_pattern_matches(std::string_view pattern, std::string_view text) noexcept;

class Suppressions {
 public:
  static constexpr std::size_t capacity = 1024;
  // Receives each line that is not valid (1-based number, the line without its newline).
  using InvalidLine = void (*)(void* context, std::size_t line_number, std::string_view line) noexcept;

  // Adds the patterns of `text`, which must outlive this object. Patterns past
  // `capacity` are passed to `invalid` too.
  void parse(std::string_view text, InvalidLine invalid, void* context) noexcept;

  std::span<const std::string_view> patterns() const noexcept { return {patterns_, count_}; }
  bool empty() const noexcept { return count_ == 0; }

  // The index (into patterns()) of the suppression for stack `stack`; nullopt when none
  // matches.
  std::optional<std::size_t> match(const StackSource& stacks, std::uint32_t stack) const noexcept;

 private:
  std::string_view patterns_[capacity];
  std::size_t count_ = 0;
};

// Takes out of `listing` the definite and indirect groups a suppression matches: their
// blocks and bytes move from listing.totals to listing.suppressed, and listing.suppressions
// lists each suppression that matched with what it hid (in file order). `kept` must have
// room for listing.groups.size() groups and `uses` for suppressions.patterns().size();
// listing's spans point into them afterwards.
void apply_suppressions(LeakListing& listing, const Suppressions& suppressions, const StackSource& stacks,
                        std::span<LeakGroup> kept, std::span<SuppressionUse> uses) noexcept;

}  // namespace zheap::debug
