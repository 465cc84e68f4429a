// LeakSanitizer-format suppressions (see suppressions.hpp).
#include "debug/suppressions.hpp"

namespace zheap::debug {

namespace {

constexpr std::string_view leak_prefix = "leak:";

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trimmed(std::string_view text) noexcept {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// string_view's substr and find with a position check and may throw, which would pull
// libstdc++'s exception machinery into the shim; these clamp instead.
std::string_view after(std::string_view text, std::size_t count) noexcept {
  return count < text.size() ? std::string_view(text.data() + count, text.size() - count) : std::string_view();
}
std::string_view before(std::string_view text, std::size_t count) noexcept {
  return std::string_view(text.data(), count < text.size() ? count : text.size());
}

// Where `piece` occurs in `text` at or after `from`; npos when it does not.
std::size_t find_from(std::string_view text, std::string_view piece, std::size_t from) noexcept {
  if (from > text.size()) return std::string_view::npos;
  const std::size_t found = after(text, from).find(piece);
  return found == std::string_view::npos ? found : from + found;
}

}  // namespace

bool suppression_pattern_matches(std::string_view pattern, std::string_view text) noexcept {
  if (text.empty()) return false;
  bool anchored_start = false, anchored_end = false;
  if (!pattern.empty() && pattern.front() == '^') {
    anchored_start = true;
    pattern.remove_prefix(1);
  }
  if (!pattern.empty() && pattern.back() == '$') {
    anchored_end = true;
    pattern.remove_suffix(1);
  }
  // The pieces between stars, matched in order, each as far left as it goes: with `*` as
  // the only wildcard, the leftmost place of a piece never rules out a match of the rest.
  std::size_t position = 0;
  bool first = true;
  while (true) {
    const std::size_t star = pattern.find('*');
    const bool last = star == std::string_view::npos;
    const std::string_view piece = before(pattern, star);
    if (last && anchored_end) {
      // The last piece must end the text, after what earlier pieces took.
      if (piece.size() > text.size() || text.size() - piece.size() < position) return false;
      if (first && anchored_start) return text.size() == piece.size() && text == piece;
      return after(text, text.size() - piece.size()) == piece;
    }
    if (first && anchored_start) {
      if (!text.starts_with(piece)) return false;
      position = piece.size();
    } else {
      const std::size_t found = find_from(text, piece, position);
      if (found == std::string_view::npos) return false;
      position = found + piece.size();
    }
    if (last) return true;
    pattern = after(pattern, star + 1);
    first = false;
  }
}

void Suppressions::parse(std::string_view text, InvalidLine invalid, void* context) noexcept {
  std::size_t number = 0;
  while (!text.empty()) {
    const std::size_t newline = text.find('\n');
    const std::string_view raw = before(text, newline);
    text = newline == std::string_view::npos ? std::string_view() : after(text, newline + 1);
    ++number;
    const std::string_view line = trimmed(raw);
    if (line.empty() || line.front() == '#') continue;
    const std::string_view pattern = trimmed(after(line, leak_prefix.size()));
    if (!line.starts_with(leak_prefix) || pattern.empty() || count_ == capacity) {
      if (invalid != nullptr) invalid(context, number, raw);
      continue;
    }
    patterns_[count_++] = pattern;
  }
}

std::optional<std::size_t> Suppressions::match(const StackSource& stacks, std::uint32_t stack) const noexcept {
  if (count_ == 0) return std::nullopt;
  const std::size_t frames = stacks.count(stack);
  for (std::size_t f = 0; f < frames; ++f) {
    const ReportFrame frame = stacks.at(stack, f);
    for (std::size_t i = 0; i < count_; ++i) {
      if (suppression_pattern_matches(patterns_[i], frame.module) ||
          suppression_pattern_matches(patterns_[i], frame.symbol.function) ||
          suppression_pattern_matches(patterns_[i], frame.symbol.file)) {
        return i;
      }
    }
  }
  return std::nullopt;
}

void apply_suppressions(LeakListing& listing, const Suppressions& suppressions, const StackSource& stacks,
                        std::span<LeakGroup> kept, std::span<SuppressionUse> uses) noexcept {
  const std::span<const std::string_view> patterns = suppressions.patterns();
  const std::size_t use_count = patterns.size() < uses.size() ? patterns.size() : uses.size();
  for (std::size_t i = 0; i < use_count; ++i) uses[i] = SuppressionUse{patterns[i], 0, 0};

  std::size_t kept_count = 0;
  for (const LeakGroup& group : listing.groups) {
    const bool leak = group.kind == LeakKind::definite || group.kind == LeakKind::indirect;
    const std::optional<std::size_t> by = leak ? suppressions.match(stacks, group.stack) : std::nullopt;
    if (by && *by < use_count) {
      uses[*by].blocks += group.blocks;
      uses[*by].bytes += group.bytes;
      LeakTotals& total = listing.totals[static_cast<int>(group.kind)];
      total.blocks -= group.blocks;
      total.bytes -= group.bytes;
      listing.suppressed.blocks += group.blocks;
      listing.suppressed.bytes += group.bytes;
    } else if (kept_count < kept.size()) {
      kept[kept_count++] = group;
    }
  }
  // Only the suppressions that hid something are listed, as LeakSanitizer does.
  std::size_t used = 0;
  for (std::size_t i = 0; i < use_count; ++i) {
    if (uses[i].blocks != 0) uses[used++] = uses[i];
  }
  listing.groups = kept.first(kept_count);
  listing.suppressions = uses.first(used);
}

}  // namespace zheap::debug
