// The `zheap` command: version, options listing, argument errors, and what `run` puts in
// the program's environment (checked with a stand-in libzheap.so, so it runs whether or
// not the real shim is built; end_to_end_test.cpp runs the real one).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "child_process.hpp"
#include "options.hpp"

namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using zheap::testing::run_program;

// Set by tests/shim_options/meson.build.
std::string zheap_tool() { return std::getenv("SHIM_OPTIONS_TEST_ZHEAP"); }

zheap::testing::ChildResult zheap(std::vector<std::string> args, std::vector<std::string> env = {"PATH=/usr/bin:/bin"}) {
  args.insert(args.begin(), zheap_tool());
  return run_program(args, env);
}

TEST(ZheapCommand, Version) {
  const auto result = zheap({"--version"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(result.out, StartsWith("zheap 0."));
}

TEST(ZheapCommand, HelpAndNoArguments) {
  EXPECT_THAT(zheap({"--help"}).out, HasSubstr("zheap run [--allocator MODE] [--set NAME=VALUE]... -- PROG"));
  const auto bare = zheap({});
  EXPECT_EQ(bare.exit_code, 2);
  EXPECT_THAT(bare.err, HasSubstr("Usage:"));
  EXPECT_THAT(zheap({"run", "--help"}).out, HasSubstr("--allocator"));
}

TEST(ZheapCommand, OptionsListsEveryOptionFromTheTable) {
  const auto result = zheap({"options"});
  EXPECT_EQ(result.exit_code, 0);
  for (const auto& info : zheap::shim::option_table) {
    EXPECT_THAT(result.out, HasSubstr(std::string(info.variable) + " (default: ")) << info.variable;
    EXPECT_THAT(result.out, HasSubstr(std::string(info.meaning))) << info.variable;
  }
}

TEST(ZheapCommand, MarkdownHasOneRowPerOption) {
  const auto result = zheap({"options", "--markdown"});
  EXPECT_EQ(result.exit_code, 0);
  for (const auto& info : zheap::shim::option_table) {
    EXPECT_THAT(result.out, HasSubstr("| `" + std::string(info.variable) + "` | `")) << info.variable;
  }
}

TEST(ZheapCommand, ReportWantsAReadableFile) {
  const auto no_file = zheap({"report"});
  EXPECT_EQ(no_file.exit_code, 2);
  EXPECT_THAT(no_file.err, HasSubstr("report: no file given"));

  const auto missing = zheap({"report", "/nonexistent/report.json"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("zheap report: cannot read /nonexistent/report.json: No such file"));
}

TEST(ZheapCommand, UsageErrorsExitWith2) {
  const auto unknown = zheap({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command \"frobnicate\""));

  const auto bad_value = zheap({"run", "--set", "LIMIT=12X", "--", "/bin/true"});
  EXPECT_EQ(bad_value.exit_code, 2);
  EXPECT_THAT(bad_value.err, HasSubstr("--set LIMIT=12X: \"12X\" is not a size (accepted: "));

  const auto bad_allocator = zheap({"run", "--allocator", "glibc", "--", "/bin/true"});
  EXPECT_EQ(bad_allocator.exit_code, 2);
  EXPECT_THAT(bad_allocator.err, HasSubstr("\"glibc\" is not one of the choices (accepted: libc|jemalloc|arena|debug|smp)"));

  const auto unknown_option = zheap({"run", "--set", "COLOUR=blue", "--", "/bin/true"});
  EXPECT_EQ(unknown_option.exit_code, 2);
  EXPECT_THAT(unknown_option.err, HasSubstr("no option is called COLOUR"));

  const auto no_program = zheap({"run", "--set", "STATS=1"});
  EXPECT_EQ(no_program.exit_code, 2);
  EXPECT_THAT(no_program.err, HasSubstr("no program given"));
}

// A copy of the tool in <tmp>/tools/zheap beside a stand-in <tmp>/shim/libzheap.so, the
// build tree's layout. The dynamic loader refuses the stand-in (one line) and runs on.
class ZheapRun : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "zheap-run-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "tools");
    fs::create_directories(root_ / "shim");
    fs::copy_file(zheap_tool(), root_ / "tools" / "zheap");
    std::ofstream(root_ / "shim" / "libzheap.so") << "not a library";
  }
  void TearDown() override { fs::remove_all(root_); }
  zheap::testing::ChildResult run(std::vector<std::string> args, std::vector<std::string> env) {
    args.insert(args.begin(), (root_ / "tools" / "zheap").string());
    return run_program(args, env);
  }
  fs::path root_;
};

TEST_F(ZheapRun, SetsPreloadAndOptionsThenExecsTheProgram) {
  const auto result = run({"run", "-a", "arena", "--set", "limit=1G", "-s", "ZHEAP_STATS=yes", "--", "env"},
                          {"PATH=/usr/bin:/bin", "LD_PRELOAD=/other.so", "ZHEAP_LOG=/kept"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const std::string library = fs::canonical(root_ / "shim" / "libzheap.so").string();
  EXPECT_THAT(result.out, HasSubstr("LD_PRELOAD=" + library + ":/other.so\n"));
  EXPECT_THAT(result.out, HasSubstr("ZHEAP_ALLOCATOR=arena\n"));
  EXPECT_THAT(result.out, HasSubstr("ZHEAP_LIMIT=1G\n"));
  EXPECT_THAT(result.out, HasSubstr("ZHEAP_STATS=yes\n"));
  EXPECT_THAT(result.out, HasSubstr("ZHEAP_LOG=/kept\n"));
}

TEST_F(ZheapRun, PassesArgumentsAndExitCodeThrough) {
  const auto result = run({"run", "--", "sh", "-c", "echo \"$0 $1\"; exit 7", "--set", "x"}, {"PATH=/usr/bin:/bin"});
  EXPECT_EQ(result.exit_code, 7);
  EXPECT_EQ(result.out, "--set x\n");
}

TEST_F(ZheapRun, MissingProgramExits127) {
  const auto result = run({"run", "--", "no-such-program-zheap"}, {"PATH=/usr/bin:/bin"});
  EXPECT_EQ(result.exit_code, 127);
  EXPECT_THAT(result.err, HasSubstr("zheap: cannot run no-such-program-zheap: No such file or directory"));
}

TEST_F(ZheapRun, MissingLibraryIsSaid) {
  fs::remove(root_ / "shim" / "libzheap.so");
  const auto result = run({"run", "--", "true"}, {"PATH=/usr/bin:/bin"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("zheap: cannot find libzheap.so; looked at: " + (root_ / "shim" / "libzheap.so").string()));
}

}  // namespace
