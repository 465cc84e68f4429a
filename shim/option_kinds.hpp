// The kinds of value an option can take, each with its pure parser.
//
// Every kind is a type with: `value_type` (the field's type in Options), `noun` (for the
// bad-value line: "... is not <noun>"), `accepted` (what the value may be, said to the user)
// and `static constexpr std::optional<value_type> parse(std::string_view text)`.
// Parsers are constexpr and allocate nothing, so the shim can run them inside malloc, the
// defaults in options.inc are parsed at compile time, and the `zheap` command validates
// `--set` values with the very same code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace zheap::shim {

namespace detail {
// string_view::substr checks its position and may throw, which drags libstdc++'s
// __throw_out_of_range_fmt into the shim; these clamp instead.
constexpr std::string_view head(std::string_view text, std::size_t count) noexcept {
  return {text.data(), count < text.size() ? count : text.size()};
}
constexpr std::string_view tail_after(std::string_view text, std::size_t position) noexcept {
  return position < text.size() ? std::string_view(text.data() + position + 1, text.size() - position - 1)
                                : std::string_view();
}

constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// Decimal digits only, no sign, no spaces; nullopt when empty, not digits or above `max`.
constexpr std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t max) noexcept {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}
}  // namespace detail

// A byte count with an optional K, M or G suffix (powers of 1024, either case).
// "99999999999G" and anything above SIZE_MAX are refused rather than wrapped.
constexpr std::optional<std::size_t> parse_size(std::string_view text) noexcept {
  std::uint64_t scale = 1;
  if (!text.empty()) {
    switch (detail::ascii_lower(text.back())) {
      case 'k': scale = std::uint64_t{1} << 10; break;
      case 'm': scale = std::uint64_t{1} << 20; break;
      case 'g': scale = std::uint64_t{1} << 30; break;
      default: break;
    }
    if (scale != 1) text.remove_suffix(1);
  }
  const auto count = detail::parse_decimal(text, SIZE_MAX / scale);
  if (!count) return std::nullopt;
  return static_cast<std::size_t>(*count * scale);
}

// 1/0, true/false, yes/no, on/off, in any case.
constexpr std::optional<bool> parse_bool(std::string_view text) noexcept {
  constexpr std::string_view yes[] = {"1", "true", "yes", "on"};
  constexpr std::string_view no[] = {"0", "false", "no", "off"};
  for (auto word : yes) {
    if (detail::equals_ignoring_case(text, word)) return true;
  }
  for (auto word : no) {
    if (detail::equals_ignoring_case(text, word)) return false;
  }
  return std::nullopt;
}

// A non-negative decimal integer (no suffix).
constexpr std::optional<std::uint64_t> parse_count(std::string_view text) noexcept {
  return detail::parse_decimal(text, UINT64_MAX);
}

// The position of `text` (any case) in `choices`, a '|'-separated list; nullopt if absent.
constexpr std::optional<std::size_t> parse_choice(std::string_view text, std::string_view choices) noexcept {
  std::size_t index = 0;
  while (true) {
    const std::size_t bar = choices.find('|');
    if (detail::equals_ignoring_case(text, detail::head(choices, bar))) return index;
    if (bar == std::string_view::npos) return std::nullopt;
    choices.remove_prefix(bar + 1);
    ++index;
  }
}

// ---- The kinds named in options.inc ----

// A byte limit: SIZE_MAX means none. "0" and "unlimited" both mean none, since a limit of
// zero bytes would fail every allocation and is never what anyone wants.
struct Limit {
  using value_type = std::size_t;
  static constexpr std::size_t unlimited = SIZE_MAX;
  static constexpr std::string_view noun = "a size";
  static constexpr std::string_view accepted = "a byte count with optional K, M or G suffix; 0 or unlimited for none";
  static constexpr std::optional<value_type> parse(std::string_view text) noexcept {
    if (detail::equals_ignoring_case(text, "unlimited")) return unlimited;
    const auto size = parse_size(text);
    if (!size) return std::nullopt;
    return *size == 0 ? unlimited : *size;
  }
};

// A byte count where 0 means zero (a quarantine of 0 bytes is "none", not "unlimited").
struct Bytes {
  using value_type = std::size_t;
  static constexpr std::string_view noun = "a size";
  static constexpr std::string_view accepted = "a byte count with optional K, M or G suffix";
  static constexpr std::optional<value_type> parse(std::string_view text) noexcept { return parse_size(text); }
};

struct Bool {
  using value_type = bool;
  static constexpr std::string_view noun = "a boolean";
  static constexpr std::string_view accepted = "1, 0, true, false, yes, no, on or off";
  static constexpr std::optional<value_type> parse(std::string_view text) noexcept { return parse_bool(text); }
};

struct Count {
  using value_type = std::uint64_t;
  static constexpr std::string_view noun = "a count";
  static constexpr std::string_view accepted = "a non-negative decimal integer";
  static constexpr std::optional<value_type> parse(std::string_view text) noexcept { return parse_count(text); }
};

// A process exit status: 0 to 255 (what the parent sees of anything larger is its low byte).
struct ExitStatus {
  using value_type = std::uint8_t;
  static constexpr std::string_view noun = "an exit status";
  static constexpr std::string_view accepted = "a decimal integer from 0 to 255";
  static constexpr std::optional<value_type> parse(std::string_view text) noexcept {
    const auto status = detail::parse_decimal(text, 255);
    if (!status) return std::nullopt;
    return static_cast<value_type>(*status);
  }
};

// A file path, kept in the Options struct itself (nothing may be allocated); empty means
// "not set". `%p` is expanded to the process id when the file is opened, not here.
struct Path {
  static constexpr std::size_t capacity = 1024;
  struct value_type {
    char text[capacity] = {};
    constexpr bool empty() const noexcept { return text[0] == '\0'; }
    constexpr const char* c_str() const noexcept { return text; }
    friend constexpr bool operator==(const value_type&, const value_type&) = default;
  };
  static constexpr std::string_view noun = "a usable path";
  static constexpr std::string_view accepted = "a file path shorter than 1024 bytes, %p for the process id";
  static constexpr std::optional<value_type> parse(std::string_view text) noexcept {
    if (text.size() >= capacity) return std::nullopt;
    value_type path;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\0') return std::nullopt;
      path.text[i] = text[i];
    }
    return path;
  }
};

// One word out of a fixed list; `Enum`'s enumerators are in the order of the option's
// `choices` column in options.inc (checked by static_asserts beside each enum).
template <class Enum>
struct Choice {
  using value_type = Enum;
  static constexpr std::string_view noun = "one of the choices";
  static constexpr std::optional<value_type> parse(std::string_view text, std::string_view choices) noexcept {
    const auto index = parse_choice(text, choices);
    if (!index) return std::nullopt;
    return static_cast<Enum>(*index);
  }
};

// Which heap serves the program's allocations (ZHEAP_ALLOCATOR). Called Mode, not
// Allocator, so as not to hide zheap::Allocator inside namespace zheap::shim.
enum class Mode : std::uint8_t { libc, jemalloc, arena, debug, smp };

// What debug mode does after it has found and reported an error (ZHEAP_ON_ERROR); the
// same order as zheap::OnError, which mode_debug.cpp maps it onto.
enum class ErrorAction : std::uint8_t { abort, report, ignore };

// How debug mode writes its reports (ZHEAP_REPORT_FORMAT): LeakSanitizer-style text, or
// JSON Lines (docs/REPORT.md).
enum class ReportFormat : std::uint8_t { text, json };

}  // namespace zheap::shim
