// Debug reports' outputs without a process behind them: suppressions (parsing, LSan's
// pattern matching, applying them to a listing), the JSON Lines writer (escaping, the
// records' fields, read back by a JSON parser) and the text writer's leak listing
// (show-reachable, "Suppressions used:"). Stacks come from a fake StackSource.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "debug/report_json.hpp"
#include "debug/report_model.hpp"
#include "debug/suppressions.hpp"

namespace {

using zheap::DebugError;
using zheap::DebugErrorKind;
using zheap::LeakGroup;
using zheap::LeakKind;
using zheap::debug::LeakListing;
using zheap::debug::ReportFrame;
using zheap::debug::StackSource;
using zheap::debug::suppression_pattern_matches;
using zheap::debug::SuppressionUse;
using zheap::debug::Suppressions;

// Stacks 1..n, each a list of frames.
struct FakeStacks {
  std::vector<std::vector<ReportFrame>> stacks;

  std::uint32_t add(std::vector<ReportFrame> frames) {
    stacks.push_back(std::move(frames));
    return static_cast<std::uint32_t>(stacks.size());
  }
  StackSource source() const {
    StackSource s;
    s.frame_count = [](const void* c, std::uint32_t id) noexcept -> std::size_t {
      const auto& all = static_cast<const FakeStacks*>(c)->stacks;
      return id >= 1 && id <= all.size() ? all[id - 1].size() : 0;
    };
    s.frame = [](const void* c, std::uint32_t id, std::size_t i) noexcept {
      return static_cast<const FakeStacks*>(c)->stacks[id - 1][i];
    };
    s.context = this;
    return s;
  }
};

ReportFrame frame(std::uintptr_t address, const char* function, const char* file, unsigned line,
                  const char* module) {
  ReportFrame f;
  f.address = address;
  f.symbol.function = function;
  f.symbol.file = file;
  f.symbol.line = line;
  f.module = module;
  return f;
}

// What a writer writes to a descriptor.
template <class Write>
std::string captured(Write write) {
  const int fd = ::memfd_create("report", 0);
  EXPECT_GE(fd, 0);
  write(fd);
  std::string text(static_cast<std::size_t>(::lseek(fd, 0, SEEK_END)), '\0');
  EXPECT_EQ(::pread(fd, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
  ::close(fd);
  return text;
}

boost::property_tree::ptree parsed(const std::string& line) {
  boost::property_tree::ptree tree;
  std::istringstream in(line);
  boost::property_tree::read_json(in, tree);
  return tree;
}

// ---- pattern matching ------------------------------------------------------------------

TEST(SuppressionPattern, PlainPatternMatchesAnywhere) {
  EXPECT_TRUE(suppression_pattern_matches("leak", "leak"));
  EXPECT_TRUE(suppression_pattern_matches("leak", "my_leaky_function()"));
  EXPECT_TRUE(suppression_pattern_matches("libfoo.so", "/usr/lib/libfoo.so.1"));
  EXPECT_FALSE(suppression_pattern_matches("leak", "lea"));
  EXPECT_FALSE(suppression_pattern_matches("leak", ""));  // nothing known never matches
  EXPECT_FALSE(suppression_pattern_matches("", ""));
}

TEST(SuppressionPattern, AnchorsTieThePatternToStartOrEnd) {
  EXPECT_TRUE(suppression_pattern_matches("^foo", "foobar"));
  EXPECT_FALSE(suppression_pattern_matches("^foo", "afoo"));
  EXPECT_TRUE(suppression_pattern_matches("bar$", "foobar"));
  EXPECT_FALSE(suppression_pattern_matches("bar$", "barfoo"));
  EXPECT_TRUE(suppression_pattern_matches("^foo$", "foo"));
  EXPECT_FALSE(suppression_pattern_matches("^foo$", "foofoo"));
  EXPECT_TRUE(suppression_pattern_matches("a$", "aba"));  // LSan's leftmost-only matcher misses this
}

TEST(SuppressionPattern, StarMatchesAnyRun) {
  EXPECT_TRUE(suppression_pattern_matches("foo*bar", "foobar"));
  EXPECT_TRUE(suppression_pattern_matches("foo*bar", "xfoo::baz::barx"));
  EXPECT_FALSE(suppression_pattern_matches("foo*bar", "barfoo"));
  EXPECT_TRUE(suppression_pattern_matches("^std::*::allocate$", "std::vector<int>::allocate"));
  EXPECT_FALSE(suppression_pattern_matches("^std::*::allocate$", "std::vector<int>::allocate_more"));
  EXPECT_TRUE(suppression_pattern_matches("*", "anything"));
  EXPECT_TRUE(suppression_pattern_matches("^*$", "x"));
  EXPECT_TRUE(suppression_pattern_matches("a*b*c", "a--b--c"));
  EXPECT_FALSE(suppression_pattern_matches("a*b*c", "a--c--b"));
  EXPECT_TRUE(suppression_pattern_matches("^ab*ba$", "aba") == false);  // pieces may not overlap
  EXPECT_TRUE(suppression_pattern_matches("^ab*ba$", "abba"));
}

// ---- parsing -------------------------------------------------------------------------------

struct InvalidLines {
  std::vector<std::pair<std::size_t, std::string>> lines;
  static void record(void* context, std::size_t number, std::string_view line) noexcept {
    static_cast<InvalidLines*>(context)->lines.emplace_back(number, std::string(line));
  }
};

TEST(Suppressions, ParsesLeakLinesAndReportsTheRest) {
  const std::string text =
      "# comment\n"
      "\n"
      "leak:first\n"
      "   leak:  second  \r\n"
      "race:not_ours\n"
      "leak:\n"
      "garbage\n"
      "\t# indented comment\n"
      "leak:^third$";  // no final newline
  Suppressions suppressions;
  InvalidLines invalid;
  suppressions.parse(text, InvalidLines::record, &invalid);
  ASSERT_EQ(suppressions.patterns().size(), 3u);
  EXPECT_EQ(suppressions.patterns()[0], "first");
  EXPECT_EQ(suppressions.patterns()[1], "second");
  EXPECT_EQ(suppressions.patterns()[2], "^third$");
  const std::vector<std::pair<std::size_t, std::string>> expected = {
      {5, "race:not_ours"}, {6, "leak:"}, {7, "garbage"}};
  EXPECT_EQ(invalid.lines, expected);
}

TEST(Suppressions, PatternsPastCapacityAreReported) {
  std::string text;
  for (std::size_t i = 0; i < Suppressions::capacity + 2; ++i) text += "leak:p" + std::to_string(i) + "\n";
  auto suppressions = std::make_unique<Suppressions>();
  InvalidLines invalid;
  suppressions->parse(text, InvalidLines::record, &invalid);
  EXPECT_EQ(suppressions->patterns().size(), Suppressions::capacity);
  ASSERT_EQ(invalid.lines.size(), 2u);
  EXPECT_EQ(invalid.lines[0].first, Suppressions::capacity + 1);
}

// ---- matching and applying --------------------------------------------------------------

class SuppressionsOnStacks : public ::testing::Test {
 protected:
  void SetUp() override {
    from_main = stacks.add({frame(0x1010, "make_widget", "src/widget.cpp", 12, "/usr/bin/app"),
                            frame(0x1020, "main", "src/main.cpp", 3, "/usr/bin/app")});
    from_library = stacks.add({frame(0x7000, "", "", 0, "/usr/lib/libthird.so.2"),
                               frame(0x1030, "main", "src/main.cpp", 4, "/usr/bin/app")});
    from_file = stacks.add({frame(0x1040, "helper", "src/cache.cpp", 40, "/usr/bin/app")});
  }
  FakeStacks stacks;
  std::uint32_t from_main = 0, from_library = 0, from_file = 0;
};

TEST_F(SuppressionsOnStacks, MatchesFunctionFileOrModuleInAnyFrame) {
  Suppressions s;
  s.parse("leak:no_such\nleak:libthird.so\nleak:cache.cpp$\nleak:^main$\n", nullptr, nullptr);
  const StackSource source = stacks.source();
  EXPECT_EQ(s.match(source, from_library), std::optional<std::size_t>(1));  // module, innermost frame first
  EXPECT_EQ(s.match(source, from_file), std::optional<std::size_t>(2));     // file name
  EXPECT_EQ(s.match(source, from_main), std::optional<std::size_t>(3));     // an outer frame's function
  EXPECT_EQ(s.match(source, 0), std::nullopt);                              // no stack
  Suppressions none;
  none.parse("leak:nothing_here\n", nullptr, nullptr);
  EXPECT_EQ(none.match(source, from_main), std::nullopt);
}

TEST_F(SuppressionsOnStacks, ApplyMovesSuppressedLeaksOutOfTheListing) {
  const LeakGroup groups[] = {
      {from_main, LeakKind::definite, 2, 200},
      {from_library, LeakKind::definite, 1, 100},
      {from_library, LeakKind::indirect, 3, 30},
      {from_library, LeakKind::reachable, 5, 50},  // not a leak: never suppressed
  };
  LeakListing listing;
  listing.groups = groups;
  listing.totals[0] = {3, 300};
  listing.totals[1] = {3, 30};
  listing.totals[2] = {5, 50};
  Suppressions s;
  s.parse("leak:never\nleak:third\n", nullptr, nullptr);
  LeakGroup kept[4];
  SuppressionUse uses[2];
  zheap::debug::apply_suppressions(listing, s, stacks.source(), kept, uses);

  ASSERT_EQ(listing.groups.size(), 2u);
  EXPECT_EQ(listing.groups[0].stack, from_main);
  EXPECT_EQ(listing.groups[1].kind, LeakKind::reachable);
  EXPECT_EQ(listing.total(LeakKind::definite).blocks, 2u);
  EXPECT_EQ(listing.total(LeakKind::definite).bytes, 200u);
  EXPECT_EQ(listing.total(LeakKind::indirect).blocks, 0u);
  EXPECT_EQ(listing.total(LeakKind::reachable).blocks, 5u);
  EXPECT_EQ(listing.suppressed.blocks, 4u);
  EXPECT_EQ(listing.suppressed.bytes, 130u);
  ASSERT_EQ(listing.suppressions.size(), 1u);  // "never" hid nothing: not listed
  EXPECT_EQ(listing.suppressions[0].pattern, "third");
  EXPECT_EQ(listing.suppressions[0].blocks, 4u);
  EXPECT_EQ(listing.suppressions[0].bytes, 130u);
}

// ---- text --------------------------------------------------------------------------------

class LeakText : public SuppressionsOnStacks {
 protected:
  std::string text(const LeakListing& listing) {
    return captured([&](int fd) {
      zheap::debug::write_leak_listing_text(fd, listing, zheap::debug::ReportOrigin{4242, stacks.source()});
    });
  }
};

TEST_F(LeakText, ReachableIsOneCountUnlessShown) {
  const LeakGroup groups[] = {{from_main, LeakKind::definite, 2, 200}, {from_file, LeakKind::reachable, 5, 50}};
  LeakListing listing;
  listing.groups = groups;
  listing.totals[0] = {2, 200};
  listing.totals[2] = {5, 50};
  const std::string counted = text(listing);
  EXPECT_NE(counted.find("==4242==ERROR: zheap: detected memory leaks\n"), std::string::npos) << counted;
  EXPECT_NE(counted.find("Direct leak of 200 byte(s) in 2 object(s) allocated from:\n"
                         "    #0 0x1010 in make_widget src/widget.cpp:12\n"
                         "    #1 0x1020 in main src/main.cpp:3\n"),
            std::string::npos)
      << counted;
  EXPECT_NE(counted.find("50 byte(s) in 5 object(s) still reachable (not leaks)"), std::string::npos) << counted;
  EXPECT_EQ(counted.find("helper"), std::string::npos) << counted;
  EXPECT_NE(counted.find("SUMMARY: zheap: 200 byte(s) leaked in 2 allocation(s).\n"), std::string::npos);

  listing.show_reachable = true;
  const std::string shown = text(listing);
  EXPECT_NE(shown.find("Still reachable: 50 byte(s) in 5 object(s) allocated from:\n"
                       "    #0 0x1040 in helper src/cache.cpp:40\n"),
            std::string::npos)
      << shown;
  EXPECT_EQ(shown.find("still reachable (not leaks)"), std::string::npos) << shown;
}

TEST_F(LeakText, SuppressionsUsedTableAndNothingWhenAllIsSuppressed) {
  const SuppressionUse used[] = {{"third", 4, 130}};
  LeakListing listing;
  listing.suppressions = used;
  listing.suppressed = {4, 130};
  const std::string only_suppressed = text(listing);
  EXPECT_EQ(only_suppressed,
            "-----------------------------------------------------\n"
            "Suppressions used:\n"
            "  count      bytes template\n"
            "      4        130 third\n"
            "-----------------------------------------------------\n");
  EXPECT_EQ(text(LeakListing{}), "");  // nothing live, nothing suppressed: silent
}

// ---- JSON --------------------------------------------------------------------------------

TEST_F(SuppressionsOnStacks, JsonStringsAreEscapedAndStayUtf8) {
  const char nasty_function[] = "operator\"\"_x<'\\'>(char const*)\n\t\x01";
  const char nasty_file[] = "dir/caf\xc3\xa9/\xff\xfe.cpp";  // valid é, then two bytes that are not UTF-8
  const std::uint32_t id = stacks.add({frame(0xdeadbeef, nasty_function, nasty_file, 7, "")});
  const LeakGroup groups[] = {{id, LeakKind::definite, 1, 8}};
  LeakListing listing;
  listing.groups = groups;
  listing.totals[0] = {1, 8};
  const std::string json = captured([&](int fd) {
    zheap::debug::write_leak_listing_json(fd, listing, zheap::debug::ReportOrigin{1, stacks.source()});
  });
  ASSERT_FALSE(json.empty());
  EXPECT_EQ(json.find('\n'), json.size() - 1) << "one record, one line";
  EXPECT_NE(json.find(R"("function":"operator\"\"_x<'\\'>(char const*)\n\t\u0001")"), std::string::npos) << json;
  EXPECT_NE(json.find("\"file\":\"dir/caf\xc3\xa9/\\ufffd\\ufffd.cpp\""), std::string::npos) << json;
  EXPECT_EQ(json.find("\"module\""), std::string::npos) << "unknown module left out: " << json;

  const auto tree = parsed(json);
  const auto& stack = tree.get_child("groups").begin()->second.get_child("stack");
  EXPECT_EQ(stack.begin()->second.get<std::string>("function"), std::string(nasty_function));
  EXPECT_EQ(stack.begin()->second.get<std::string>("address"), "0xdeadbeef");
}

TEST_F(SuppressionsOnStacks, JsonErrorRecordHasEveryField) {
  DebugError error;
  error.kind = DebugErrorKind::mismatched_free;
  error.address = reinterpret_cast<const void*>(0x5000);
  error.block = error.address;
  error.block_size = 24;
  error.block_alignment = 16;
  error.allocated_with = zheap::AllocationFamily::new_array;
  error.released_with = zheap::AllocationFamily::new_object;
  error.offset = -3;
  error.current_stack = from_main;
  error.allocation_stack = from_file;
  const std::string json = captured([&](int fd) {
    zheap::debug::write_debug_error_json(fd, error, zheap::debug::ReportOrigin{77, stacks.source()});
  });
  const auto tree = parsed(json);
  EXPECT_EQ(tree.get<int>("version"), 1);
  EXPECT_EQ(tree.get<std::string>("type"), "error");
  EXPECT_EQ(tree.get<int>("pid"), 77);
  EXPECT_EQ(tree.get<std::string>("kind"), "mismatched_free");
  EXPECT_EQ(tree.get<std::string>("title"), "alloc-dealloc-mismatch");
  EXPECT_EQ(tree.get<std::string>("address"), "0x5000");
  EXPECT_EQ(tree.get<std::string>("block"), "0x5000");
  EXPECT_EQ(tree.get<std::size_t>("block_size"), 24u);
  EXPECT_EQ(tree.get<std::string>("allocated_with"), "new_array");
  EXPECT_EQ(tree.get<std::string>("released_with"), "new_object");
  EXPECT_EQ(tree.get<long>("offset"), -3);
  EXPECT_EQ(tree.get_child("stacks").size(), 2u);  // no free stack: left out
  const auto& current = tree.get_child("stacks.current");
  ASSERT_EQ(current.size(), 2u);
  EXPECT_EQ(current.begin()->second.get<std::string>("function"), "make_widget");
  EXPECT_EQ(current.begin()->second.get<std::string>("file"), "src/widget.cpp");
  EXPECT_EQ(current.begin()->second.get<unsigned>("line"), 12u);
  EXPECT_EQ(current.begin()->second.get<std::string>("module"), "/usr/bin/app");
}

TEST(ReportJsonNames, RoundTrip) {
  for (int k = 0; k <= static_cast<int>(DebugErrorKind::realloc_of_freed); ++k) {
    const auto kind = static_cast<DebugErrorKind>(k);
    EXPECT_EQ(zheap::debug::error_kind_from_json(zheap::debug::json_name(kind)), kind);
  }
  for (int f = 0; f <= static_cast<int>(zheap::AllocationFamily::new_array_aligned); ++f) {
    const auto family = static_cast<zheap::AllocationFamily>(f);
    EXPECT_EQ(zheap::debug::family_from_json(zheap::debug::json_name(family)), family);
  }
  for (LeakKind kind : {LeakKind::definite, LeakKind::indirect, LeakKind::reachable})
    EXPECT_EQ(zheap::debug::leak_kind_from_json(zheap::debug::json_name(kind)), kind);
  EXPECT_EQ(zheap::debug::error_kind_from_json("double-free"), std::nullopt);  // titles are not names
}

}  // namespace
