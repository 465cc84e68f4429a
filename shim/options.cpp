// The environment parser and the process-wide options (see options.hpp).
#include "options.hpp"

#include <atomic>

#include "os/os.hpp"
#include "support/format.hpp"
#include "support/once.hpp"

namespace zheap::shim {

namespace {

using support::BufferWriter;

// Values are quoted into a one-line message: at most this many characters, anything
// unprintable (a newline would break "one line") shown as '?'.
constexpr std::size_t max_quoted_value = 200;

void quote(BufferWriter& out, std::string_view value) noexcept {
  out.character('"');
  const std::size_t shown = value.size() < max_quoted_value ? value.size() : max_quoted_value;
  for (std::size_t i = 0; i < shown; ++i) {
    const char c = value[i];
    out.character(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (shown < value.size()) out.text("...");
  out.character('"');
}

void default_text(BufferWriter& out, const OptionInfo& info) noexcept {
  out.text(info.default_text.empty() ? std::string_view("unset") : info.default_text);
}

void option_names(BufferWriter& out) noexcept {
  for (std::size_t i = 0; i < option_count; ++i) {
    if (i != 0) out.text(", ");
    for (char c : option_table[i].name) out.character(detail::ascii_lower(c));
  }
}

// "<source>="value" is not a size (accepted: ...); using the default (unlimited)"
// where <source> is "ZHEAP_LIMIT" or "ZHEAP_OPTIONS item limit".
void report_bad_value(ReportLine report, std::string_view source_prefix, std::string_view source,
                      const OptionInfo& info, std::string_view value) noexcept {
  char line[768];
  BufferWriter out(line);
  out.text("zheap: ").text(source_prefix).text(source).character('=');
  quote(out, value);
  out.text(" is not ").text(info.noun).text(" (accepted: ").text(info.accepted).text("); using the default (");
  default_text(out, info);
  out.character(')');
  report(out.view());
}

void report_bad_item(ReportLine report, std::string_view item, bool has_equals) noexcept {
  char line[768];
  BufferWriter out(line);
  out.text("zheap: ZHEAP_OPTIONS item ");
  quote(out, item);
  out.text(has_equals ? " names no option" : " is not name=value");
  out.text(" (accepted names: ");
  option_names(out);
  out.text("); ignoring it");
  report(out.view());
}

void report_ignored_path(ReportLine report, const OptionInfo& info) noexcept {
  char line[256];
  BufferWriter out(line);
  out.text("zheap: ").text(info.variable).text(" is ignored in a setuid or setgid program");
  report(out.view());
}

// Applies `value` to option `index`; on a bad value, says so and restores the default.
void apply(Options& options, std::size_t index, std::string_view value, ReportLine report,
           std::string_view source_prefix, std::string_view source) noexcept {
  if (set_option(options, index, value)) return;
  reset_option(options, index);
  report_bad_value(report, source_prefix, source, option_table[index], value);
}

void apply_options_variable(Options& options, std::string_view list, EnvironmentLookup lookup,
                            ReportLine report) noexcept {
  while (!list.empty()) {
    const std::size_t colon = list.find(':');
    const std::string_view item = detail::head(list, colon);
    list = detail::tail_after(list, colon);
    if (item.empty()) continue;  // "a=1::b=2" and a trailing ':' are harmless

    const std::size_t equals = item.find('=');
    const std::size_t index = equals == std::string_view::npos ? option_count : find_option(detail::head(item, equals));
    if (index == option_count) {
      report_bad_item(report, item, equals != std::string_view::npos);
      continue;
    }
    // The individual variable wins: leave this option to it.
    const char* individual = lookup(option_table[index].variable.data());
    if (individual != nullptr && individual[0] != '\0') continue;
    apply(options, index, detail::tail_after(item, equals), report, "ZHEAP_OPTIONS item ", detail::head(item, equals));
  }
}

}  // namespace

Options parse_environment(EnvironmentLookup lookup, ReportLine report, bool secure) noexcept {
  Options options;
  if (const char* list = lookup("ZHEAP_OPTIONS"); list != nullptr) apply_options_variable(options, list, lookup, report);

  for (std::size_t index = 0; index < option_count; ++index) {
    // option_table's variable names come from string literals, so data() is NUL-terminated.
    const char* value = lookup(option_table[index].variable.data());
    // Set but empty counts as unset, as for most of libc's own variables.
    if (value != nullptr && value[0] != '\0') apply(options, index, value, report, "", option_table[index].variable);
  }

  if (secure) {
    // A file named by the environment of a privileged program would let its caller create
    // or append to files with the program's privileges.
    for (std::size_t index = 0; index < option_count; ++index) {
      if (!is_path_option(index) || is_default(options, index)) continue;
      report_ignored_path(report, option_table[index]);
      reset_option(options, index);
    }
  }
  return options;
}

namespace {

constinit support::Once parsed_once;
constinit Options process_options;
constinit const Options default_options;

void report_to_stderr(std::string_view line) noexcept {
  char buffer[1024];
  BufferWriter out(buffer);
  out.text(line).character('\n');
  os::write_stderr(out.c_str(), out.size());
}

const char* lookup_environ(const char* name) noexcept { return os::getenv(name); }

}  // namespace

const Options& options() noexcept {
  if (parsed_once.done()) [[likely]] return process_options;
  // Too early (the loader allocating before libc set up `environ`): answer with the
  // defaults and parse on a later call, rather than parse an empty environment for good.
  if (!os::environment_ready()) return default_options;
  const bool parsed = parsed_once.run([] {
    process_options = parse_environment(lookup_environ, report_to_stderr, os::is_secure_execution());
  });
  // Not parsed: a signal handler allocating while this thread parses gets the defaults.
  return parsed ? process_options : default_options;
}

}  // namespace zheap::shim
