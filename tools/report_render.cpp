// See report_render.hpp. The JSON is read with Boost.PropertyTree (Debian's libboost-dev).
#include "report_render.hpp"

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <variant>
#include <vector>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include "debug/report_json.hpp"
#include "debug/report_model.hpp"

namespace zheap::tool {

namespace {

namespace pt = boost::property_tree;
using debug::ReportFrame;

// A field that is missing or not what the schema says.
struct BadRecord : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The frames of every stack the file holds; stack ids are 1 + their index. Keeps the
// strings the frames point to.
class SavedStacks {
 public:
  std::uint32_t add(const pt::ptree& frames) {
    std::vector<ReportFrame>& stack = stacks_.emplace_back();
    for (const auto& [unused_key, node] : frames) {
      ReportFrame frame;
      frame.address = parse_address(node.get<std::string>("address"));
      frame.symbol.function = keep(node.get<std::string>("function", ""));
      frame.symbol.file = keep(node.get<std::string>("file", ""));
      frame.symbol.line = node.get<unsigned>("line", 0);
      frame.module = keep(node.get<std::string>("module", ""));
      stack.push_back(frame);
    }
    return static_cast<std::uint32_t>(stacks_.size());
  }

  debug::StackSource source() const {
    debug::StackSource source;
    source.frame_count = [](const void* context, std::uint32_t id) noexcept -> std::size_t {
      const auto& stacks = static_cast<const SavedStacks*>(context)->stacks_;
      return id >= 1 && id <= stacks.size() ? stacks[id - 1].size() : 0;
    };
    source.frame = [](const void* context, std::uint32_t id, std::size_t index) noexcept -> ReportFrame {
      return static_cast<const SavedStacks*>(context)->stacks_[id - 1][index];
    };
    source.context = this;
    return source;
  }

  static std::uint64_t parse_address(const std::string& text) {
    if (text == "null") return 0;  // how PropertyTree reads a JSON null
    std::size_t used = 0;
    std::uint64_t value = 0;
    try {
      value = std::stoull(text, &used, 16);
    } catch (const std::exception&) {
      used = 0;
    }
    if (!text.starts_with("0x") || used != text.size()) throw BadRecord("\"" + text + "\" is not an address");
    return value;
  }

 private:
  const char* keep(std::string text) { return strings_.emplace_back(std::move(text)).c_str(); }

  std::deque<std::vector<ReportFrame>> stacks_;  // a deque: pointers to elements stay valid
  std::deque<std::string> strings_;
};

struct ErrorRecord {
  int pid = 0;
  DebugError error{};
};

struct LeaksRecord {
  int pid = 0;
  debug::LeakListing listing;
  std::vector<LeakGroup> groups;
  std::vector<debug::SuppressionUse> suppressions;
  std::deque<std::string> patterns;
};

using Record = std::variant<ErrorRecord, LeaksRecord>;

template <class Enum>
Enum parse_enum(const pt::ptree& record, const char* field, std::optional<Enum> (*from_json)(std::string_view)) {
  const auto name = record.get<std::string>(field);
  const std::optional<Enum> value = from_json(name);
  if (!value) throw BadRecord(std::string(field) + ": unknown value \"" + name + "\"");
  return *value;
}

LeakTotals parse_totals(const pt::ptree& node) {
  return LeakTotals{node.get<std::size_t>("blocks"), node.get<std::size_t>("bytes")};
}

ErrorRecord parse_error(const pt::ptree& record, SavedStacks& stacks) {
  ErrorRecord parsed;
  parsed.pid = record.get<int>("pid");
  DebugError& e = parsed.error;
  e.kind = parse_enum(record, "kind", debug::error_kind_from_json);
  e.address = reinterpret_cast<const void*>(SavedStacks::parse_address(record.get<std::string>("address")));
  e.block = reinterpret_cast<const void*>(SavedStacks::parse_address(record.get<std::string>("block")));
  e.block_size = record.get<std::size_t>("block_size");
  e.block_alignment = record.get<std::size_t>("block_alignment");
  e.allocated_with = parse_enum(record, "allocated_with", debug::family_from_json);
  e.released_with = parse_enum(record, "released_with", debug::family_from_json);
  e.given_size = record.get<std::size_t>("given_size");
  e.given_alignment = record.get<std::size_t>("given_alignment");
  e.offset = record.get<std::ptrdiff_t>("offset");
  const pt::ptree& saved = record.get_child("stacks");
  if (const auto current = saved.get_child_optional("current")) e.current_stack = stacks.add(*current);
  if (const auto freed = saved.get_child_optional("free")) e.free_stack = stacks.add(*freed);
  if (const auto allocation = saved.get_child_optional("allocation")) e.allocation_stack = stacks.add(*allocation);
  return parsed;
}

LeaksRecord parse_leaks(const pt::ptree& record, SavedStacks& stacks) {
  LeaksRecord parsed;
  parsed.pid = record.get<int>("pid");
  debug::LeakListing& listing = parsed.listing;
  listing.show_reachable = record.get<bool>("show_reachable");
  for (LeakKind kind : {LeakKind::definite, LeakKind::indirect, LeakKind::reachable}) {
    listing.totals[static_cast<int>(kind)] =
        parse_totals(record.get_child("totals").get_child(std::string(debug::json_name(kind))));
  }
  listing.suppressed = parse_totals(record.get_child("suppressed"));
  for (const auto& [unused_key, node] : record.get_child("groups")) {
    LeakGroup group;
    group.kind = parse_enum(node, "kind", debug::leak_kind_from_json);
    group.blocks = node.get<std::size_t>("blocks");
    group.bytes = node.get<std::size_t>("bytes");
    group.stack = stacks.add(node.get_child("stack"));
    parsed.groups.push_back(group);
  }
  for (const auto& [unused_key, node] : record.get_child("suppressions")) {
    const std::string& pattern = parsed.patterns.emplace_back(node.get<std::string>("pattern"));
    parsed.suppressions.push_back({pattern, node.get<std::size_t>("blocks"), node.get<std::size_t>("bytes")});
  }
  return parsed;
}

Record parse_record(const std::string& line, SavedStacks& stacks) {
  pt::ptree record;
  std::istringstream in(line);
  pt::read_json(in, record);
  const int version = record.get<int>("version");
  if (version != debug::report_json_version) {
    throw BadRecord("version " + std::to_string(version) + " (this zheap reads version " +
                    std::to_string(debug::report_json_version) + ")");
  }
  const auto type = record.get<std::string>("type");
  if (type == "error") return parse_error(record, stacks);
  if (type == "leaks") return parse_leaks(record, stacks);
  throw BadRecord("unknown record type \"" + type + "\"");
}

}  // namespace

int render_report_file(const std::string& path, int output_fd, std::ostream& errors) {
  std::ifstream in(path);
  if (!in) {
    errors << "zheap report: cannot read " << path << ": " << std::strerror(errno) << '\n';
    return 2;
  }
  SavedStacks stacks;
  std::deque<Record> records;  // a deque: listings point into their record
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      records.push_back(parse_record(line, stacks));
    } catch (const pt::json_parser_error& error) {
      errors << "zheap report: " << path << ':' << number << ": not JSON: " << error.message() << '\n';
      return 2;
    } catch (const pt::ptree_error& error) {
      errors << "zheap report: " << path << ':' << number << ": not a zheap report record: " << error.what() << '\n';
      return 2;
    } catch (const BadRecord& error) {
      errors << "zheap report: " << path << ':' << number << ": not a zheap report record: " << error.what() << '\n';
      return 2;
    }
  }
  if (in.bad()) {
    errors << "zheap report: cannot read " << path << ": " << std::strerror(errno) << '\n';
    return 2;
  }
  if (records.empty()) {
    errors << "zheap report: " << path << ": no report records in it\n";
    return 2;
  }
  for (Record& record : records) {
    if (auto* error = std::get_if<ErrorRecord>(&record)) {
      debug::write_debug_error_text(output_fd, error->error, debug::ReportOrigin{error->pid, stacks.source()});
    } else {
      auto& leaks = std::get<LeaksRecord>(record);
      leaks.listing.groups = leaks.groups;
      leaks.listing.suppressions = leaks.suppressions;
      debug::write_leak_listing_text(output_fd, leaks.listing, debug::ReportOrigin{leaks.pid, stacks.source()});
    }
  }
  return 0;
}

}  // namespace zheap::tool
