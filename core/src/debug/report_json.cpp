// JSON Lines records of debug errors and leaks (see report_json.hpp, docs/REPORT.md).
#include "debug/report_json.hpp"

#include <iterator>

#include "os/os.hpp"
#include "support/format.hpp"

namespace zheap::debug {

namespace {

// Streams one JSON value to a descriptor through a fixed buffer, putting the commas
// between members and elements itself. Not a validator: callers nest correctly.
class JsonWriter {
 public:
  explicit JsonWriter(int fd) noexcept : fd_(fd) {}
  ~JsonWriter() { flush(); }
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  void begin_object() noexcept { open('{'); }
  void end_object() noexcept { close('}'); }
  void begin_array() noexcept { open('['); }
  void end_array() noexcept { close(']'); }

  // A member's name; its value follows.
  void key(std::string_view name) noexcept {
    separate();
    quoted(name);
    put(':');
    after_key_ = true;
  }
  void string(std::string_view value) noexcept {
    separate();
    quoted(value);
  }
  void unsigned_number(std::uint64_t value) noexcept {
    separate();
    char digits[24];
    support::BufferWriter out(digits);
    raw(out.unsigned_decimal(value).view());
  }
  void signed_number(std::int64_t value) noexcept {
    separate();
    char digits[24];
    support::BufferWriter out(digits);
    raw(out.signed_decimal(value).view());
  }
  // An address, as a string: JSON numbers are doubles to most readers.
  void address(std::uint64_t value) noexcept {
    separate();
    char digits[24];
    support::BufferWriter out(digits);
    put('"');
    raw(out.hex(value).view());
    put('"');
  }
  void boolean(bool value) noexcept {
    separate();
    raw(value ? "true" : "false");
  }
  void null() noexcept {
    separate();
    raw("null");
  }
  // Ends the record: a JSON Lines file holds one value per line.
  void end_line() noexcept {
    put('\n');
    flush();
  }

 private:
  static constexpr int max_depth = 16;

  void open(char bracket) noexcept {
    separate();
    put(bracket);
    if (depth_ + 1 < max_depth) ++depth_;
    has_member_[depth_] = false;
  }
  void close(char bracket) noexcept {
    put(bracket);
    if (depth_ > 0) --depth_;
  }
  void separate() noexcept {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (has_member_[depth_]) put(',');
    has_member_[depth_] = true;
  }
  void put(char c) noexcept {
    if (used_ == sizeof buffer_) flush();
    buffer_[used_++] = c;
  }
  void raw(std::string_view text) noexcept {
    for (char c : text) put(c);
  }
  void flush() noexcept {
    os::write_all(fd_, buffer_, used_);
    used_ = 0;
  }

  // The length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlong
  // forms, no surrogates, nothing above U+10FFFF), or 0 if there is none.
  static std::size_t utf8_sequence(std::string_view text, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    std::size_t length;
    unsigned char low = 0x80, high = 0xbf;  // the second byte's range
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) low = 0xa0;   // overlong
      if (lead == 0xed) high = 0x9f;  // surrogates
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) low = 0x90;   // overlong
      if (lead == 0xf4) high = 0x8f;  // above U+10FFFF
    } else {
      return 0;
    }
    if (i + length > text.size()) return 0;
    if (byte(i + 1) < low || byte(i + 1) > high) return 0;
    for (std::size_t k = 2; k < length; ++k) {
      if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
    }
    return length;
  }

  void quoted(std::string_view text) noexcept {
    put('"');
    for (std::size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c >= 0x80) {
        const std::size_t length = utf8_sequence(text, i);
        if (length == 0) {
          raw("\\ufffd");  // not UTF-8: the replacement character, one per byte
          ++i;
        } else {
          raw(std::string_view(text.data() + i, length));  // not substr: it may throw
          i += length;
        }
        continue;
      }
      switch (c) {
        case '"': raw("\\\""); break;
        case '\\': raw("\\\\"); break;
        case '\n': raw("\\n"); break;
        case '\r': raw("\\r"); break;
        case '\t': raw("\\t"); break;
        case '\b': raw("\\b"); break;
        case '\f': raw("\\f"); break;
        default:
          if (c < 0x20 || c == 0x7f) {
            raw("\\u00");
            put("0123456789abcdef"[c >> 4]);
            put("0123456789abcdef"[c & 0xf]);
          } else {
            put(static_cast<char>(c));
          }
      }
      ++i;
    }
    put('"');
  }

  int fd_;
  char buffer_[4096];
  std::size_t used_ = 0;
  int depth_ = 0;
  bool has_member_[max_depth] = {};
  bool after_key_ = false;
};

void write_frame(JsonWriter& out, const ReportFrame& frame) noexcept {
  out.begin_object();
  out.key("address");
  out.address(frame.address);
  if (frame.symbol.function[0] != '\0') {
    out.key("function");
    out.string(frame.symbol.function);
  }
  if (frame.symbol.file[0] != '\0') {
    out.key("file");
    out.string(frame.symbol.file);
  }
  if (frame.symbol.line != 0) {
    out.key("line");
    out.unsigned_number(frame.symbol.line);
  }
  if (frame.module[0] != '\0') {
    out.key("module");
    out.string(frame.module);
  }
  out.end_object();
}

void write_stack(JsonWriter& out, const StackSource& stacks, std::uint32_t stack) noexcept {
  out.begin_array();
  const std::size_t count = stacks.count(stack);
  for (std::size_t i = 0; i < count; ++i) write_frame(out, stacks.at(stack, i));
  out.end_array();
}

void write_totals(JsonWriter& out, std::string_view name, LeakTotals totals) noexcept {
  out.key(name);
  out.begin_object();
  out.key("blocks");
  out.unsigned_number(totals.blocks);
  out.key("bytes");
  out.unsigned_number(totals.bytes);
  out.end_object();
}

void write_record_start(JsonWriter& out, std::string_view type, int process_id) noexcept {
  out.begin_object();
  out.key("version");
  out.unsigned_number(report_json_version);
  out.key("type");
  out.string(type);
  out.key("pid");
  out.signed_number(process_id);
}

// Identifier tables, one per enum, in the enumerators' order (checked below).
constexpr std::string_view error_kind_names[] = {
    "double_free",     "write_after_free",     "buffer_overflow", "buffer_underflow", "mismatched_free",
    "wrong_size_free", "wrong_alignment_free", "invalid_free",    "interior_free",    "realloc_of_freed",
};
static_assert(static_cast<int>(DebugErrorKind::realloc_of_freed) + 1 == std::size(error_kind_names));

constexpr std::string_view family_names[] = {
    "allocator", "malloc", "new_object", "new_array", "new_object_aligned", "new_array_aligned",
};
static_assert(static_cast<int>(AllocationFamily::new_array_aligned) + 1 == std::size(family_names));

constexpr std::string_view leak_kind_names[] = {"definite", "indirect", "reachable"};
static_assert(static_cast<int>(LeakKind::reachable) + 1 == std::size(leak_kind_names));

template <class Enum, std::size_t N>
std::string_view name_in(const std::string_view (&names)[N], Enum value) noexcept {
  const auto index = static_cast<std::size_t>(value);
  return index < N ? names[index] : std::string_view("unknown");
}

template <class Enum, std::size_t N>
std::optional<Enum> value_in(const std::string_view (&names)[N], std::string_view name) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

}  // namespace

std::string_view json_name(DebugErrorKind kind) noexcept { return name_in(error_kind_names, kind); }
std::string_view json_name(AllocationFamily family) noexcept { return name_in(family_names, family); }
std::string_view json_name(LeakKind kind) noexcept { return name_in(leak_kind_names, kind); }
std::optional<DebugErrorKind> error_kind_from_json(std::string_view name) noexcept {
  return value_in<DebugErrorKind>(error_kind_names, name);
}
std::optional<AllocationFamily> family_from_json(std::string_view name) noexcept {
  return value_in<AllocationFamily>(family_names, name);
}
std::optional<LeakKind> leak_kind_from_json(std::string_view name) noexcept {
  return value_in<LeakKind>(leak_kind_names, name);
}

void write_debug_error_json(int fd, const DebugError& error, const ReportOrigin& origin) noexcept {
  JsonWriter out(fd);
  write_record_start(out, "error", origin.process_id);
  out.key("kind");
  out.string(json_name(error.kind));
  out.key("title");
  out.string(debug_error_name(error.kind));
  out.key("address");
  out.address(reinterpret_cast<std::uintptr_t>(error.address));
  out.key("block");
  if (error.block != nullptr) {
    out.address(reinterpret_cast<std::uintptr_t>(error.block));
  } else {
    out.null();
  }
  out.key("block_size");
  out.unsigned_number(error.block_size);
  out.key("block_alignment");
  out.unsigned_number(error.block_alignment);
  out.key("allocated_with");
  out.string(json_name(error.allocated_with));
  out.key("released_with");
  out.string(json_name(error.released_with));
  out.key("given_size");
  out.unsigned_number(error.given_size);
  out.key("given_alignment");
  out.unsigned_number(error.given_alignment);
  out.key("offset");
  out.signed_number(error.offset);
  out.key("stacks");
  out.begin_object();
  const struct {
    std::string_view name;
    std::uint32_t id;
  } stacks[] = {{"current", error.current_stack}, {"free", error.free_stack}, {"allocation", error.allocation_stack}};
  for (const auto& stack : stacks) {
    if (stack.id == 0) continue;
    out.key(stack.name);
    write_stack(out, origin.stacks, stack.id);
  }
  out.end_object();
  out.end_object();
  out.end_line();
}

void write_leak_listing_json(int fd, const LeakListing& listing, const ReportOrigin& origin) noexcept {
  JsonWriter out(fd);
  write_record_start(out, "leaks", origin.process_id);
  out.key("show_reachable");
  out.boolean(listing.show_reachable);
  out.key("totals");
  out.begin_object();
  for (LeakKind kind : {LeakKind::definite, LeakKind::indirect, LeakKind::reachable})
    write_totals(out, json_name(kind), listing.total(kind));
  out.end_object();
  write_totals(out, "leaked", LeakTotals{listing.leaked_blocks(), listing.leaked_bytes()});
  write_totals(out, "suppressed", listing.suppressed);
  out.key("groups");
  out.begin_array();
  for (const LeakGroup& group : listing.groups) {
    if (group.kind == LeakKind::reachable && !listing.show_reachable) continue;
    out.begin_object();
    out.key("kind");
    out.string(json_name(group.kind));
    out.key("blocks");
    out.unsigned_number(group.blocks);
    out.key("bytes");
    out.unsigned_number(group.bytes);
    out.key("stack");
    write_stack(out, origin.stacks, group.stack);
    out.end_object();
  }
  out.end_array();
  out.key("suppressions");
  out.begin_array();
  for (const SuppressionUse& use : listing.suppressions) {
    out.begin_object();
    out.key("pattern");
    out.string(use.pattern);
    out.key("blocks");
    out.unsigned_number(use.blocks);
    out.key("bytes");
    out.unsigned_number(use.bytes);
    out.end_object();
  }
  out.end_array();
  out.end_object();
  out.end_line();
}

}  // namespace zheap::debug
