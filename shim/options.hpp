// The shim's configuration: the Options struct and the table of options, both expanded
// from options.inc, and the environment parser.
//
// Sources, in order of precedence: ZHEAP_<NAME> variables, then the items of
// ZHEAP_OPTIONS="name=value:name=value", then the defaults. A bad value or an unknown name
// prints exactly one line on stderr (variable, value, what is accepted) and the default is
// used; the program always runs on. Paths are ignored, with one line each, in setuid and
// setgid programs.
//
// options() parses once, on first use, from `environ` directly, without allocating: it is
// called from inside the first malloc. Thread safety: the first caller parses; concurrent
// first callers wait for it (a few microseconds, once per process). A call from the parsing
// thread itself (a signal handler that allocates) gets the defaults.
//
// The header part (the table, the struct, the kinds) is also compiled into the `zheap`
// command; only options.cpp is shim-only.
#pragma once

#include <cstddef>
#include <string_view>
#include <type_traits>

#include "option_kinds.hpp"

namespace zheap::shim {

namespace detail {
// Deliberately not constexpr: reaching it while evaluating a default is a compile error
// that names the problem.
void default_value_in_options_inc_does_not_parse();

template <class Kind>
constexpr std::optional<typename Kind::value_type> parse_value(std::string_view text, std::string_view choices) noexcept {
  if constexpr (requires { Kind::parse(text, choices); }) {
    return Kind::parse(text, choices);
  } else {
    return Kind::parse(text);
  }
}

template <class Kind>
consteval typename Kind::value_type default_value(std::string_view text, std::string_view choices) {
  const auto value = parse_value<Kind>(text, choices);
  if (!value) default_value_in_options_inc_does_not_parse();
  return *value;
}

template <class Kind>
constexpr std::string_view accepted_text(std::string_view choices) noexcept {
  if constexpr (requires { Kind::accepted; }) {
    return Kind::accepted;
  } else {
    return choices;
  }
}
}  // namespace detail

struct Options {
#define ZHEAP_OPTION(NAME, member, Kind, default_text, choices, meaning) \
  typename Kind::value_type member = detail::default_value<Kind>(default_text, choices);
#include "options.inc"
#undef ZHEAP_OPTION
};

// What `zheap options` and the bad-value lines say about one option.
struct OptionInfo {
  std::string_view name;          // "LIMIT": the ZHEAP_OPTIONS spelling, any case
  std::string_view variable;      // "ZHEAP_LIMIT"
  std::string_view noun;          // "a size": the value "is not <noun>"
  std::string_view accepted;      // what the value may be
  std::string_view default_text;  // as written in options.inc
  std::string_view meaning;       // one sentence
};

inline constexpr OptionInfo option_table[] = {
#define ZHEAP_OPTION(NAME, member, Kind, default_text, choices, meaning) \
  {#NAME, "ZHEAP_" #NAME, Kind::noun, detail::accepted_text<Kind>(choices), default_text, meaning},
#include "options.inc"
#undef ZHEAP_OPTION
};
inline constexpr std::size_t option_count = sizeof(option_table) / sizeof(option_table[0]);

// The index of the option named `name` ("limit", "LIMIT", "ZHEAP_LIMIT": any case, prefix
// optional), or option_count when there is none.
constexpr std::size_t find_option(std::string_view name) noexcept {
  constexpr std::string_view prefix = "ZHEAP_";
  if (name.size() > prefix.size() && detail::equals_ignoring_case(detail::head(name, prefix.size()), prefix)) {
    name.remove_prefix(prefix.size());
  }
  for (std::size_t i = 0; i < option_count; ++i) {
    if (detail::equals_ignoring_case(name, option_table[i].name)) return i;
  }
  return option_count;
}

// Parses `value` for option number `index` into `options`; false (options unchanged) when
// the value is not accepted. Pure; the `zheap` command uses it to validate `--set`.
constexpr bool set_option(Options& options, std::size_t index, std::string_view value) noexcept {
  std::size_t i = 0;
#define ZHEAP_OPTION(NAME, member, Kind, default_text, choices, meaning) \
  if (i++ == index) {                                                   \
    const auto parsed = detail::parse_value<Kind>(value, choices);      \
    if (!parsed) return false;                                          \
    options.member = *parsed;                                           \
    return true;                                                        \
  }
#include "options.inc"
#undef ZHEAP_OPTION
  return false;
}

// Puts option number `index` back to its default.
constexpr void reset_option(Options& options, std::size_t index) noexcept {
  const Options defaults;
  std::size_t i = 0;
#define ZHEAP_OPTION(NAME, member, Kind, default_text, choices, meaning) \
  if (i++ == index) options.member = defaults.member;
#include "options.inc"
#undef ZHEAP_OPTION
}

// Whether option number `index` has its default value in `options`.
constexpr bool is_default(const Options& options, std::size_t index) noexcept {
  const Options defaults;
  std::size_t i = 0;
#define ZHEAP_OPTION(NAME, member, Kind, default_text, choices, meaning) \
  if (i++ == index) return options.member == defaults.member;
#include "options.inc"
#undef ZHEAP_OPTION
  return true;
}

// Whether option number `index` names a file (ignored in setuid/setgid programs).
constexpr bool is_path_option(std::size_t index) noexcept {
  std::size_t i = 0;
#define ZHEAP_OPTION(NAME, member, Kind, default_text, choices, meaning) \
  if (i++ == index) return std::is_same_v<Kind, Path>;
#include "options.inc"
#undef ZHEAP_OPTION
  return false;
}

// The environment parser, with its inputs explicit so that tests can drive it:
// `lookup` is getenv-like (nullptr when unset); `report` receives each complaint as one
// line without its '\n'; `secure` is true in setuid/setgid programs.
using EnvironmentLookup = const char* (*)(const char* name) noexcept;
using ReportLine = void (*)(std::string_view line) noexcept;
Options parse_environment(EnvironmentLookup lookup, ReportLine report, bool secure) noexcept;

// The process's options, parsed from its environment on first call (see the top).
const Options& options() noexcept;

}  // namespace zheap::shim
