// The value parsers behind every option: sizes, limits, booleans, counts, choices, paths.
#include "option_kinds.hpp"
#include "options.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {
using namespace zheap::shim;

// The parsers are constexpr: the defaults in options.inc are parsed at compile time.
static_assert(parse_size("64K") == 65536);
static_assert(!parse_size("12X"));
static_assert(Options{}.allocator == Mode::debug);
static_assert(Options{}.limit == Limit::unlimited);

TEST(ParseSize, PlainByteCounts) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("1"), 1u);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("007"), 7u);
}

TEST(ParseSize, SuffixesArePowersOf1024InEitherCase) {
  EXPECT_EQ(parse_size("1K"), 1024u);
  EXPECT_EQ(parse_size("3k"), 3u * 1024);
  EXPECT_EQ(parse_size("5M"), 5u << 20);
  EXPECT_EQ(parse_size("5m"), 5u << 20);
  EXPECT_EQ(parse_size("2G"), std::size_t{2} << 30);
  EXPECT_EQ(parse_size("2g"), std::size_t{2} << 30);
}

TEST(ParseSize, RefusesWhatIsNotASize) {
  for (const char* bad : {"", "K", "12X", "-1", "+1", " 1", "1 ", "1.5M", "1KB", "0x10", "1KK", "M1", "one"}) {
    EXPECT_FALSE(parse_size(bad)) << '"' << bad << '"';
  }
}

TEST(ParseSize, RefusesOverflowInsteadOfWrapping) {
  EXPECT_FALSE(parse_size("99999999999G"));
  EXPECT_FALSE(parse_size("18446744073709551616"));  // 2^64
  EXPECT_EQ(parse_size("18446744073709551615"), SIZE_MAX);
  EXPECT_EQ(parse_size("17179869183G"), std::size_t{17179869183} << 30);  // largest that fits
  EXPECT_FALSE(parse_size("17179869184G"));                               // 2^34 G = 2^64
  EXPECT_FALSE(parse_size("18014398509481984K"));                         // 2^54 K = 2^64
}

TEST(Limit, ZeroAndUnlimitedMeanNoLimit) {
  EXPECT_EQ(Limit::parse("0"), Limit::unlimited);
  EXPECT_EQ(Limit::parse("unlimited"), Limit::unlimited);
  EXPECT_EQ(Limit::parse("Unlimited"), Limit::unlimited);
  EXPECT_EQ(Limit::parse("1M"), std::size_t{1} << 20);
  EXPECT_FALSE(Limit::parse("none"));
  EXPECT_FALSE(Limit::parse("12X"));
}

TEST(ParseBool, AcceptsTheEightWordsInAnyCase) {
  for (const char* yes : {"1", "true", "TRUE", "True", "yes", "YES", "on", "On"}) EXPECT_EQ(parse_bool(yes), true) << yes;
  for (const char* no : {"0", "false", "FALSE", "no", "No", "off", "OFF"}) EXPECT_EQ(parse_bool(no), false) << no;
  for (const char* bad : {"", "2", "y", "n", "enable", "truee", " on", "-1"}) EXPECT_FALSE(parse_bool(bad)) << bad;
}

TEST(ParseCount, DecimalOnlyWithinUint64) {
  EXPECT_EQ(parse_count("0"), 0u);
  EXPECT_EQ(parse_count("3"), 3u);
  EXPECT_EQ(parse_count("18446744073709551615"), UINT64_MAX);
  for (const char* bad : {"", "-3", "3K", "1e3", "0x3", "18446744073709551616", "3 "}) EXPECT_FALSE(parse_count(bad)) << bad;
}

TEST(ParseChoice, IndexInTheListAnyCase) {
  constexpr std::string_view choices = "debug|smp|arena|jemalloc|libc";
  EXPECT_EQ(parse_choice("debug", choices), 0u);
  EXPECT_EQ(parse_choice("arena", choices), 2u);
  EXPECT_EQ(parse_choice("LIBC", choices), 4u);
  for (const char* bad : {"", "deb", "debugx", "glibc", "smp|arena", "|"}) EXPECT_FALSE(parse_choice(bad, choices)) << bad;
}

TEST(AllocatorChoice, EnumeratorsFollowTheTable) {
  const std::size_t index = find_option("ALLOCATOR");
  ASSERT_LT(index, option_count);
  const std::pair<const char*, Mode> expected[] = {{"debug", Mode::debug},
                                                       {"smp", Mode::smp},
                                                       {"arena", Mode::arena},
                                                       {"jemalloc", Mode::jemalloc},
                                                       {"libc", Mode::libc}};
  for (const auto& [word, mode] : expected) {
    Options options;
    ASSERT_TRUE(set_option(options, index, word)) << word;
    EXPECT_EQ(options.allocator, mode) << word;
  }
}

TEST(PathKind, KeepsTheTextUpToItsCapacity) {
  const auto path = Path::parse("/tmp/zheap.%p.log");
  ASSERT_TRUE(path);
  EXPECT_STREQ(path->c_str(), "/tmp/zheap.%p.log");
  EXPECT_TRUE(Path::parse("")->empty());
  EXPECT_TRUE(Path::parse(std::string(Path::capacity - 1, 'a')));
  EXPECT_FALSE(Path::parse(std::string(Path::capacity, 'a')));
  EXPECT_FALSE(Path::parse(std::string_view("a\0b", 3)));
}

TEST(OptionTable, NamesAreFoundWithOrWithoutPrefixInAnyCase) {
  EXPECT_EQ(find_option("limit"), find_option("LIMIT"));
  EXPECT_EQ(find_option("ZHEAP_LIMIT"), find_option("LIMIT"));
  EXPECT_EQ(find_option("zheap_limit"), find_option("LIMIT"));
  EXPECT_EQ(find_option("Arena_Limit"), find_option("ARENA_LIMIT"));
  EXPECT_NE(find_option("LIMIT"), find_option("ARENA_LIMIT"));
  EXPECT_EQ(find_option("ZHEAP_"), option_count);
  EXPECT_EQ(find_option("LIMITS"), option_count);
  EXPECT_EQ(find_option(""), option_count);
}

TEST(OptionTable, EveryRowIsComplete) {
  for (const auto& info : option_table) {
    EXPECT_EQ(info.variable, "ZHEAP_" + std::string(info.name));
    EXPECT_FALSE(info.noun.empty()) << info.name;
    EXPECT_FALSE(info.accepted.empty()) << info.name;
    EXPECT_FALSE(info.meaning.empty()) << info.name;
    EXPECT_EQ(info.meaning.find('\n'), std::string_view::npos) << info.name;
  }
}

TEST(OptionTable, SetOptionLeavesTheFieldAloneOnABadValue) {
  Options options;
  const std::size_t limit = find_option("LIMIT");
  ASSERT_TRUE(set_option(options, limit, "2M"));
  EXPECT_EQ(options.limit, std::size_t{2} << 20);
  EXPECT_FALSE(is_default(options, limit));
  EXPECT_FALSE(set_option(options, limit, "2X"));
  EXPECT_EQ(options.limit, std::size_t{2} << 20);
  reset_option(options, limit);
  EXPECT_EQ(options.limit, Limit::unlimited);
  EXPECT_TRUE(is_default(options, limit));
}

}  // namespace
