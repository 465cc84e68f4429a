// The options and layers in real processes under LD_PRELOAD=libzheap.so. Skipped, with
// the reason, when the shim library has not been built (it comes from the shim runtime).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "child_process.hpp"
#include "options.hpp"

namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using zheap::testing::ChildResult;
using zheap::testing::run_program;

// Set by tests/shim_options/meson.build.
std::string library() { return std::getenv("SHIM_OPTIONS_TEST_LIBRARY"); }
std::string probe() { return std::getenv("SHIM_OPTIONS_TEST_PROBE"); }
std::string zheap_tool() { return std::getenv("SHIM_OPTIONS_TEST_ZHEAP"); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(library())) GTEST_SKIP() << library() << " is not built (the shim runtime is not merged yet)";
  }
  // `program` under the shim with exactly the ZHEAP_* variables in `options`.
  ChildResult preloaded(std::vector<std::string> argv, std::vector<std::string> options) {
    options.push_back("LD_PRELOAD=" + library());
    options.push_back("PATH=/usr/bin:/bin");
    return run_program(argv, options);
  }
};

// A value each kind refuses.
std::string bad_value_for(const zheap::shim::OptionInfo& info) {
  if (info.noun == "a size") return "12X";
  if (info.noun == "a boolean") return "maybe";
  if (info.noun == "a count") return "-1";
  if (info.noun == "a usable path") return std::string(2000, 'p');
  return "nonsense";  // a choice
}

TEST_F(EndToEnd, BadValueOfEveryOptionIsOneLineAndTheProgramRuns) {
  for (const auto& info : zheap::shim::option_table) {
    const std::string variable(info.variable);
    const auto result = preloaded({"/bin/true"}, {variable + "=" + bad_value_for(info)});
    EXPECT_EQ(result.exit_code, 0) << variable << '\n' << result.err;
    const auto lines = lines_of(result.err);
    ASSERT_EQ(lines.size(), 1u) << variable << '\n' << result.err;
    EXPECT_THAT(lines[0], ::testing::StartsWith("zheap: " + variable + "=\""));
    EXPECT_THAT(lines[0], HasSubstr("(accepted: " + std::string(info.accepted) + ")"));
  }
}

TEST_F(EndToEnd, UnknownNameInOptionsVariableIsOneLine) {
  const auto result = preloaded({"/bin/true"}, {"ZHEAP_OPTIONS=colour=blue"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(lines_of(result.err).size(), 1u) << result.err;
  EXPECT_THAT(result.err, HasSubstr("ZHEAP_OPTIONS item \"colour=blue\" names no option"));
}

// The process makes allocations of its own before main (loader, libc, libstdc++), so the
// probe's first malloc is allocation k+1 for some k. Find it by raising N until one of
// the probe's own mallocs fails; from then on, N and N+1 must fail exactly the probe's
// first and second.
TEST_F(EndToEnd, FailAtMakesTheNthMallocFail) {
  const std::vector<std::string> argv = {probe(), "m:1001", "m:1002", "m:1003", "m:1004"};
  int first = 0;
  for (int n = 1; n <= 500 && first == 0; ++n) {
    const auto result = preloaded(argv, {"ZHEAP_FAIL_AT=" + std::to_string(n)});
    if (result.out.find("ENOMEM") != std::string::npos) first = n;
  }
  ASSERT_NE(first, 0) << "no ZHEAP_FAIL_AT up to 500 reached the probe's mallocs";

  for (int k = 0; k < 4; ++k) {
    const auto result = preloaded(argv, {"ZHEAP_FAIL_AT=" + std::to_string(first + k)});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    std::string expected;
    for (int i = 0; i < 4; ++i) expected += "m:100" + std::to_string(i + 1) + (i == k ? " ENOMEM\n" : " ok\n");
    EXPECT_EQ(result.out, expected) << "ZHEAP_FAIL_AT=" << first + k;
    EXPECT_THAT(result.err, HasSubstr("allocation " + std::to_string(first + k) + " (100" + std::to_string(k + 1) +
                                      " bytes) fails here:"));
    EXPECT_THAT(result.err, HasSubstr("zheap:   #0 0x"));
  }
}

TEST_F(EndToEnd, LimitMakesALargeMallocFailWithENOMEM) {
  const auto result = preloaded({probe(), "m:100", "m:2097152", "n:2097152", "m:1000"}, {"ZHEAP_LIMIT=1M"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "m:100 ok\nm:2097152 ENOMEM\nn:2097152 bad_alloc\nm:1000 ok\n");
  EXPECT_THAT(result.err, HasSubstr("ZHEAP_LIMIT=1048576: an allocation of 2097152 bytes is refused"));
}

struct Counts {
  long allocations = -1, frees = -1, live = -1;
};

Counts parse_stats(const std::string& err) {
  Counts counts;
  std::smatch match;
  if (std::regex_search(err, match, std::regex("allocations: ([0-9]+)"))) counts.allocations = std::stol(match[1]);
  if (std::regex_search(err, match, std::regex("frees: ([0-9]+)"))) counts.frees = std::stol(match[1]);
  if (std::regex_search(err, match, std::regex("live blocks: (-?[0-9]+)"))) counts.live = std::stol(match[1]);
  return counts;
}

TEST_F(EndToEnd, StatsCountsBalance) {
  const auto idle = preloaded({probe()}, {"ZHEAP_STATS=1"});
  std::vector<std::string> argv = {probe()};
  for (int i = 0; i < 10; ++i) argv.push_back("m:" + std::to_string(64 << i));
  for (int i = 0; i < 5; ++i) argv.push_back("n:" + std::to_string(100 + i));
  const auto busy = preloaded(argv, {"ZHEAP_STATS=1"});
  ASSERT_EQ(idle.exit_code, 0) << idle.err;
  ASSERT_EQ(busy.exit_code, 0) << busy.err;
  const Counts before = parse_stats(idle.err), after = parse_stats(busy.err);
  ASSERT_GE(before.allocations, 0) << idle.err;
  ASSERT_GE(after.allocations, 0) << busy.err;
  EXPECT_EQ(before.allocations - before.frees, before.live);
  EXPECT_EQ(after.allocations - after.frees, after.live);
  // The probe's 15 allocations, each freed, and nothing else changes.
  EXPECT_EQ(after.allocations - before.allocations, 15) << busy.err;
  EXPECT_EQ(after.frees - before.frees, 15) << busy.err;
  EXPECT_EQ(after.live, before.live);
  EXPECT_THAT(busy.err, HasSubstr("new[] 5"));
}

TEST_F(EndToEnd, StatsNameEachEntryPoint) {
  const auto result = preloaded({probe(), "m:10", "a:640", "p:6400", "n:20", "n:30"}, {"ZHEAP_STATS=1"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::smatch allocations, frees;
  const std::string& err = result.err;
  ASSERT_TRUE(std::regex_search(err, allocations, std::regex("allocations: [0-9]+ \\(([^)]*)\\)"))) << err;
  ASSERT_TRUE(std::regex_search(err, frees, std::regex("frees: [0-9]+ \\(([^)]*)\\)"))) << err;
  EXPECT_THAT(allocations[1].str(), HasSubstr("aligned_alloc 1"));
  EXPECT_THAT(allocations[1].str(), HasSubstr("posix_memalign 1"));
  EXPECT_THAT(allocations[1].str(), HasSubstr("new[] 2"));
  EXPECT_THAT(frees[1].str(), HasSubstr("delete[] 2"));
  EXPECT_THAT(err, HasSubstr("zheap:     [512, 1024): "));   // the aligned_alloc block
  EXPECT_THAT(err, HasSubstr("zheap:     [4096, 8192): "));  // the posix_memalign block
}

TEST_F(EndToEnd, LogTracesEveryCall) {
  std::string dir = ::testing::TempDir() + "zheap-e2e-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const auto result = preloaded({probe(), "m:4242"}, {"ZHEAP_LOG=" + dir + "/log.%p"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::string log;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path());
    log.assign(std::istreambuf_iterator<char>(in), {});
  }
  fs::remove_all(dir);
  EXPECT_TRUE(std::regex_search(log, std::regex("malloc size=4242 align=0 usable=[0-9]+ -> 0x[0-9a-f]+\n"))) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex("free 0x[0-9a-f]+ usable=[0-9]+\n"))) << log;
}

TEST_F(EndToEnd, ZheapRunPreloadsTheShim) {
  const auto result = run_program({zheap_tool(), "run", "--set", "STATS=1", "--", probe(), "m:100"}, {"PATH=/usr/bin:/bin"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "m:100 ok\n");
  EXPECT_THAT(result.err, HasSubstr("zheap: stats for process"));
}

}  // namespace
