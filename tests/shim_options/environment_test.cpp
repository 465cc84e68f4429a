// parse_environment: ZHEAP_<NAME> variables, ZHEAP_OPTIONS, precedence, bad values and
// their one-line messages, setuid/setgid handling. Driven through a fake environment.
#include "options.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace {
using namespace zheap::shim;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The fake environment and the lines reported, reached from captureless callbacks.
std::map<std::string, std::string> environment;
std::vector<std::string> lines;

const char* fake_lookup(const char* name) noexcept {
  const auto found = environment.find(name);
  return found == environment.end() ? nullptr : found->second.c_str();
}
void record_line(std::string_view line) noexcept { lines.emplace_back(line); }

class Environment : public ::testing::Test {
 protected:
  void SetUp() override {
    environment.clear();
    lines.clear();
  }
  static Options parse(bool secure = false) { return parse_environment(fake_lookup, record_line, secure); }
};

TEST_F(Environment, NothingSetGivesTheDefaults) {
  const Options options = parse();
  EXPECT_EQ(options.allocator, Mode::debug);
  EXPECT_EQ(options.limit, Limit::unlimited);
  EXPECT_EQ(options.arena_limit, Limit::unlimited);
  EXPECT_EQ(options.fail_at, 0u);
  EXPECT_FALSE(options.stats);
  EXPECT_TRUE(options.stats_file.empty());
  EXPECT_TRUE(options.log.empty());
  EXPECT_TRUE(lines.empty());
}

TEST_F(Environment, IndividualVariables) {
  environment = {{"ZHEAP_ALLOCATOR", "arena"}, {"ZHEAP_ARENA_LIMIT", "64M"}, {"ZHEAP_LIMIT", "1G"},
                 {"ZHEAP_FAIL_AT", "17"},      {"ZHEAP_STATS", "yes"},      {"ZHEAP_STATS_FILE", "/tmp/s.%p"},
                 {"ZHEAP_LOG", "/tmp/log"}};
  const Options options = parse();
  EXPECT_EQ(options.allocator, Mode::arena);
  EXPECT_EQ(options.arena_limit, std::size_t{64} << 20);
  EXPECT_EQ(options.limit, std::size_t{1} << 30);
  EXPECT_EQ(options.fail_at, 17u);
  EXPECT_TRUE(options.stats);
  EXPECT_STREQ(options.stats_file.c_str(), "/tmp/s.%p");
  EXPECT_STREQ(options.log.c_str(), "/tmp/log");
  EXPECT_TRUE(lines.empty());
}

TEST_F(Environment, OptionsVariableSetsSeveralWithNamesInAnyCase) {
  environment = {{"ZHEAP_OPTIONS", "allocator=smp:LIMIT=2M:Stats=on:zheap_fail_at=5:log=/tmp/x"}};
  const Options options = parse();
  EXPECT_EQ(options.allocator, Mode::smp);
  EXPECT_EQ(options.limit, std::size_t{2} << 20);
  EXPECT_TRUE(options.stats);
  EXPECT_EQ(options.fail_at, 5u);
  EXPECT_STREQ(options.log.c_str(), "/tmp/x");
  EXPECT_TRUE(lines.empty());
}

TEST_F(Environment, IndividualVariableWinsOverOptionsVariable) {
  environment = {{"ZHEAP_OPTIONS", "allocator=smp:limit=2M"}, {"ZHEAP_ALLOCATOR", "debug"}};
  const Options options = parse();
  EXPECT_EQ(options.allocator, Mode::debug);
  EXPECT_EQ(options.limit, std::size_t{2} << 20);
}

TEST_F(Environment, IndividualVariableWinsEvenWhenTheOptionsItemIsBad) {
  environment = {{"ZHEAP_OPTIONS", "limit=nonsense"}, {"ZHEAP_LIMIT", "4K"}};
  const Options options = parse();
  EXPECT_EQ(options.limit, 4096u);
  EXPECT_TRUE(lines.empty());
}

TEST_F(Environment, LaterItemsInOptionsVariableWin) {
  environment = {{"ZHEAP_OPTIONS", "limit=1K:limit=2K"}};
  EXPECT_EQ(parse().limit, 2048u);
}

TEST_F(Environment, EmptyItemsAndEmptyVariablesAreIgnored) {
  environment = {{"ZHEAP_OPTIONS", ":stats=1::"}, {"ZHEAP_LIMIT", ""}};
  const Options options = parse();
  EXPECT_TRUE(options.stats);
  EXPECT_EQ(options.limit, Limit::unlimited);
  EXPECT_TRUE(lines.empty());
}

TEST_F(Environment, BadValueIsExactlyOneLineAndTheDefaultIsUsed) {
  environment = {{"ZHEAP_LIMIT", "12X"}};
  const Options options = parse();
  EXPECT_EQ(options.limit, Limit::unlimited);
  ASSERT_THAT(lines, ElementsAre(
      "zheap: ZHEAP_LIMIT=\"12X\" is not a size (accepted: a byte count with optional K, M or G suffix; "
      "0 or unlimited for none); using the default (unlimited)"));
}

TEST_F(Environment, EveryOptionsBadValueNamesVariableValueAndAccepted) {
  const std::map<std::string, std::string> bad = {{"ZHEAP_ALLOCATOR", "glibc"}, {"ZHEAP_ARENA_LIMIT", "1T"},
                                                   {"ZHEAP_LIMIT", "99999999999G"}, {"ZHEAP_FAIL_AT", "-1"},
                                                   {"ZHEAP_STATS", "maybe"}};
  for (const auto& [variable, value] : bad) {
    SetUp();
    environment = {{variable, value}};
    const Options options = parse();
    const std::size_t index = find_option(variable);
    ASSERT_LT(index, option_count);
    EXPECT_TRUE(is_default(options, index)) << variable;
    ASSERT_EQ(lines.size(), 1u) << variable;
    const std::string& line = lines[0];
    EXPECT_THAT(line, StartsWith("zheap: " + variable + "=\"" + value + "\" is not "));
    EXPECT_THAT(line, HasSubstr("(accepted: " + std::string(option_table[index].accepted) + ")"));
    EXPECT_THAT(line, HasSubstr("; using the default (" + std::string(option_table[index].default_text) + ")"));
    EXPECT_EQ(line.find('\n'), std::string::npos);
  }
}

TEST_F(Environment, TooLongAPathIsRefused) {
  environment = {{"ZHEAP_LOG", std::string(Path::capacity + 10, 'a')}};
  const Options options = parse();
  EXPECT_TRUE(options.log.empty());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], StartsWith("zheap: ZHEAP_LOG=\"aaaa"));
  EXPECT_THAT(lines[0], HasSubstr("...\" is not a usable path (accepted: a file path shorter than 1024 bytes"));
  EXPECT_THAT(lines[0], HasSubstr("using the default (unset)"));
}

TEST_F(Environment, UnprintableCharactersCannotBreakTheLine) {
  environment = {{"ZHEAP_STATS", "on\nzheap: forged"}};
  parse();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], StartsWith("zheap: ZHEAP_STATS=\"on?zheap: forged\" is not a boolean"));
}

TEST_F(Environment, BadValueInOptionsVariable) {
  environment = {{"ZHEAP_OPTIONS", "stats=1:limit=12X:allocator=arena"}};
  const Options options = parse();
  EXPECT_TRUE(options.stats);
  EXPECT_EQ(options.allocator, Mode::arena);
  EXPECT_EQ(options.limit, Limit::unlimited);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], StartsWith("zheap: ZHEAP_OPTIONS item limit=\"12X\" is not a size (accepted: "));
  EXPECT_THAT(lines[0], HasSubstr("using the default (unlimited)"));
}

TEST_F(Environment, BadValueAfterGoodOneInOptionsVariableRestoresTheDefault) {
  environment = {{"ZHEAP_OPTIONS", "limit=1K:limit=12X"}};
  EXPECT_EQ(parse().limit, Limit::unlimited);
  EXPECT_EQ(lines.size(), 1u);
}

TEST_F(Environment, UnknownNameInOptionsVariable) {
  environment = {{"ZHEAP_OPTIONS", "stats=1:colour=blue:limit=1K"}};
  const Options options = parse();
  EXPECT_TRUE(options.stats);
  EXPECT_EQ(options.limit, 1024u);
  ASSERT_THAT(lines, ElementsAre(
      "zheap: ZHEAP_OPTIONS item \"colour=blue\" names no option (accepted names: allocator, arena_limit, "
      "limit, bind_plt, fail_at, stats, stats_file, log, on_error, quarantine, stack_depth, redzone, guard, "
      "huge_pages, report, report_format, suppressions, leak_exitcode, show_reachable); ignoring it"));
}

TEST_F(Environment, ItemWithoutEqualsInOptionsVariable) {
  environment = {{"ZHEAP_OPTIONS", "stats"}};
  EXPECT_FALSE(parse().stats);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], StartsWith("zheap: ZHEAP_OPTIONS item \"stats\" is not name=value (accepted names: allocator,"));
}

TEST_F(Environment, SetuidProgramsIgnorePathsWithOneLineEach) {
  environment = {{"ZHEAP_LOG", "/tmp/log"}, {"ZHEAP_OPTIONS", "stats_file=/tmp/s:stats=1"}};
  const Options options = parse(/*secure=*/true);
  EXPECT_TRUE(options.log.empty());
  EXPECT_TRUE(options.stats_file.empty());
  EXPECT_TRUE(options.stats);  // only paths are dropped
  EXPECT_THAT(lines, ElementsAre("zheap: ZHEAP_STATS_FILE is ignored in a setuid or setgid program",
                                 "zheap: ZHEAP_LOG is ignored in a setuid or setgid program"));
}

}  // namespace
