// The cross-mode layers, called in-process the way the runtime calls them. Each test runs
// in a fresh child process, since options are read once per process on first use.
#include "layers.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "child_process.hpp"

namespace {
using namespace zheap::shim;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using zheap::testing::run_in_child;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::size_t count_lines_with(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) count += line.find(needle) != std::string::npos;
  return count;
}

class Layers : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "zheap-layers-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

// The block pointers handed to on_alloc are never dereferenced; any distinct values do.
void* fake_block(std::uintptr_t n) { return reinterpret_cast<void*>(0x10000 + n * 0x100); }

TEST_F(Layers, NothingEnabledAdmitsEverythingSilently) {
  const auto child = run_in_child([] {
    if (!layers::active()) return 3;  // not yet configured: the first call must come in
    for (std::size_t size : {std::size_t{1}, std::size_t{1} << 40, SIZE_MAX}) {
      if (!layers::admit(size)) return 1;
    }
    if (layers::observes_frees() || layers::active()) return 2;  // configured by the first call: nothing on
    layers::on_alloc(fake_block(1), 16, Api::malloc);
    layers::on_free(fake_block(1), 16, Api::free);
    layers::at_exit();
    return 0;
  });
  EXPECT_EQ(child.exit_code, 0);
  EXPECT_EQ(child.err, "");
}

TEST_F(Layers, FailAtFailsOnlyTheNthAllocationAndPrintsItsStack) {
  const auto child = run_in_child([] {
    ::setenv("ZHEAP_FAIL_AT", "3", 1);
    int refused = 0;  // bit i set: allocation i+1 was refused
    for (int i = 0; i < 6; ++i) {
      if (!layers::admit(100 * (i + 1))) refused |= 1 << i;
    }
    return refused;
  });
  EXPECT_EQ(child.exit_code, 1 << 2);
  EXPECT_EQ(count_lines_with(child.err, "ZHEAP_FAIL_AT"), 1u) << child.err;
  EXPECT_THAT(child.err, HasSubstr("zheap: ZHEAP_FAIL_AT=3: allocation 3 (300 bytes) fails here:\n"));
  EXPECT_THAT(child.err, ContainsRegex("zheap:   #0 0x[0-9a-f]+ "));
  EXPECT_THAT(child.err, ContainsRegex("zheap:   #1 0x[0-9a-f]+ "));
  // Frames name their module and offset, which addr2line takes: this test's executable
  // must be among them (it made the call).
  const std::string self = ::program_invocation_name;
  const std::string base = self.substr(self.rfind('/') + 1);
  EXPECT_THAT(child.err, ContainsRegex(base + "\\+0x[0-9a-f]+")) << child.err;
  // libc's own frame (__libc_start_call_main) comes last: the walk reached the bottom.
  EXPECT_THAT(child.err, ContainsRegex("libc\\.so\\.6\\+0x")) << child.err;
}

TEST_F(Layers, CallsBeforeTheEnvironmentIsReadyDoNotFixTheOptions) {
  const auto child = run_in_child([] {
    ::setenv("ZHEAP_FAIL_AT", "1", 1);
    char** const saved = environ;
    environ = nullptr;  // as when the dynamic loader allocates before libc's start-up
    const bool early = layers::admit(10);
    environ = saved;
    const bool first_counted = layers::admit(20);
    return early && !first_counted ? 0 : 1;
  });
  EXPECT_EQ(child.exit_code, 0) << child.err;
  EXPECT_THAT(child.err, HasSubstr("ZHEAP_FAIL_AT=1: allocation 1 (20 bytes) fails here:"));
}

TEST_F(Layers, LimitRefusesWhatWouldExceedTheBytesInUse) {
  const auto child = run_in_child([] {
    ::setenv("ZHEAP_LIMIT", "1K", 1);
    if (!layers::admit(512)) return 1;
    layers::on_alloc(fake_block(1), 512, Api::malloc);
    if (layers::admit(600)) return 2;  // 512 + 600 > 1024
    if (!layers::admit(512)) return 3;  // exactly at the limit is fine
    layers::on_free(fake_block(1), 512, Api::free);
    if (!layers::admit(1024)) return 4;
    if (layers::admit(1025)) return 5;
    if (layers::admit(SIZE_MAX)) return 6;  // no overflow in the check
    return 0;
  });
  EXPECT_EQ(child.exit_code, 0);
  // Reported once, for the first refusal only.
  EXPECT_EQ(child.err,
            "zheap: ZHEAP_LIMIT=1024: an allocation of 600 bytes is refused (512 bytes in use); "
            "later refusals are not reported\n");
}

TEST_F(Layers, LimitSurvivesFreesOfBlocksItNeverSawAllocated) {
  const auto child = run_in_child([] {
    ::setenv("ZHEAP_LIMIT", "1K", 1);
    layers::on_free(fake_block(9), 4096, Api::free);  // e.g. from the bootstrap region
    if (!layers::admit(1024)) return 1;  // the negative balance must not wrap to "huge"
    if (layers::admit(1025)) return 2;   // nor count as credit
    return 0;
  });
  EXPECT_EQ(child.exit_code, 0) << child.err;
}

TEST_F(Layers, StatsCountByApiAndBalance) {
  const auto child = run_in_child([] {
    ::setenv("ZHEAP_STATS", "1", 1);
    layers::on_alloc(fake_block(1), 24, Api::malloc);
    if (!layers::observes_frees() || !layers::active()) return 2;
    layers::on_alloc(fake_block(2), 40, Api::malloc);
    layers::on_alloc(fake_block(3), 4096, Api::new_);
    layers::on_free(fake_block(1), 24, Api::free);
    layers::on_free(fake_block(3), 4096, Api::delete_);
    // realloc 2 -> 4, as the runtime reports it
    layers::on_free(fake_block(2), 40, Api::realloc);
    layers::on_alloc(fake_block(4), 100, Api::realloc);
    layers::at_exit();
    layers::at_exit();  // printed once
    return 0;
  });
  EXPECT_EQ(child.exit_code, 0);
  const std::string& err = child.err;
  EXPECT_EQ(count_lines_with(err, "zheap: stats for process"), 1u) << err;
  EXPECT_THAT(err, HasSubstr("zheap:   allocations: 4 (malloc 2, realloc 1, new 1)\n"));
  EXPECT_THAT(err, HasSubstr("zheap:   frees: 3 (realloc 1, free 1, delete 1)\n"));
  EXPECT_THAT(err, HasSubstr("zheap:   live blocks: 1\n"));
  EXPECT_THAT(err, HasSubstr("zheap:   bytes in use: 100, peak 4160\n"));
  EXPECT_THAT(err, HasSubstr("zheap:     [16, 32): 1\n"));
  EXPECT_THAT(err, HasSubstr("zheap:     [32, 64): 1\n"));
  EXPECT_THAT(err, HasSubstr("zheap:     [64, 128): 1\n"));
  EXPECT_THAT(err, HasSubstr("zheap:     [4096, 8192): 1\n"));
}

TEST_F(Layers, StatsFileExpandsProcessIdAndIsNotWorldReadable) {
  const std::string pattern = dir_ + "/stats.%p.txt";
  const auto child = run_in_child([&] {
    ::setenv("ZHEAP_OPTIONS", ("stats=on:stats_file=" + pattern).c_str(), 1);
    layers::on_alloc(fake_block(1), 8, Api::calloc);
    layers::at_exit();
    std::printf("%d", static_cast<int>(::getpid()));
    std::fflush(stdout);
    return 0;
  });
  EXPECT_EQ(child.exit_code, 0);
  EXPECT_EQ(child.err, "");
  const std::string pid = child.out;
  const std::string path = dir_ + "/stats." + pid + ".txt";
  const std::string report = read_file(path);
  EXPECT_THAT(report, HasSubstr("zheap: stats for process " + pid + "\n"));
  EXPECT_THAT(report, HasSubstr("allocations: 1 (calloc 1)"));
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0) << path;
  EXPECT_EQ(info.st_mode & 0027, 0u) << std::oct << info.st_mode;  // no group write, nothing for others
}

TEST_F(Layers, LogWritesOneLinePerCall) {
  const std::string path = dir_ + "/trace.log";
  const auto child = run_in_child([&] {
    ::setenv("ZHEAP_LOG", path.c_str(), 1);
    if (!layers::admit(24)) return 1;
    layers::on_alloc(fake_block(1), 32, Api::malloc, 24, 0);
    layers::on_alloc(fake_block(2), 64, Api::new_aligned, 64, 64);
    layers::on_free(fake_block(1), 32, Api::free);
    layers::on_free(fake_block(2), 64, Api::delete_);
    return 0;
  });
  EXPECT_EQ(child.exit_code, 0);
  EXPECT_EQ(child.err, "");
  const std::string log = read_file(path);
  const std::regex expected(
      "tid=[0-9]+ malloc size=24 align=0 usable=32 -> 0x10100\n"
      "tid=[0-9]+ new\\(align\\) size=64 align=64 usable=64 -> 0x10200\n"
      "tid=[0-9]+ free 0x10100 usable=32\n"
      "tid=[0-9]+ delete 0x10200 usable=64\n");
  EXPECT_TRUE(std::regex_match(log, expected)) << log;
}

TEST_F(Layers, LogDescriptorStaysOutOfTheProgramsWay) {
  const std::string path = dir_ + "/trace.log";
  const auto child = run_in_child([&] {
    ::setenv("ZHEAP_LOG", path.c_str(), 1);
    const int lowest_free_before = ::dup(0);
    ::close(lowest_free_before);
    layers::on_alloc(fake_block(1), 8, Api::malloc, 8, 0);  // opens the log
    const int lowest_free_after = ::dup(0);  // the program's next descriptor is unchanged
    return lowest_free_after == lowest_free_before ? 0 : 1;
  });
  EXPECT_EQ(child.exit_code, 0) << child.err;
  EXPECT_THAT(read_file(path), HasSubstr("malloc size=8"));
}

TEST_F(Layers, LogRefusesASymbolicLinkAndTheProgramRunsOn) {
  const std::string target = dir_ + "/target";
  const std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  const auto child = run_in_child([&] {
    ::setenv("ZHEAP_LOG", link.c_str(), 1);
    if (!layers::admit(8)) return 1;
    layers::on_alloc(fake_block(1), 8, Api::malloc, 8, 0);
    return 0;
  });
  EXPECT_EQ(child.exit_code, 0);
  EXPECT_EQ(child.err, "zheap: ZHEAP_LOG: cannot open \"" + link + "\": Too many levels of symbolic links\n");
  EXPECT_FALSE(std::filesystem::exists(target));
}

TEST_F(Layers, BadValueIsReportedOnceAndTheProgramRunsOn) {
  const auto child = run_in_child([] {
    ::setenv("ZHEAP_FAIL_AT", "third", 1);
    for (int i = 0; i < 5; ++i) {
      if (!layers::admit(10)) return 1;
    }
    return 0;
  });
  EXPECT_EQ(child.exit_code, 0);
  EXPECT_EQ(child.err,
            "zheap: ZHEAP_FAIL_AT=\"third\" is not a count (accepted: a non-negative decimal integer); "
            "using the default (0)\n");
}

TEST_F(Layers, ThreadsRacingOnFirstUseConfigureOnceAndCountExactly) {
  const auto child = run_in_child([] {
    ::setenv("ZHEAP_STATS", "1", 1);
    ::setenv("ZHEAP_ALLOCATOR", "nonsense", 1);  // its line must appear once, not per thread
    constexpr int threads = 8, per_thread = 1000;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([t] {
        for (int i = 0; i < per_thread; ++i) {
          void* p = fake_block(static_cast<std::uintptr_t>(t * per_thread + i));
          if (!layers::admit(16)) std::abort();
          layers::on_alloc(p, 16, Api::malloc);
          if (i % 2 == 0) layers::on_free(p, 16, Api::free);
        }
      });
    }
    for (auto& w : workers) w.join();
    layers::at_exit();
    return 0;
  });
  EXPECT_EQ(child.exit_code, 0);
  EXPECT_EQ(count_lines_with(child.err, "ZHEAP_ALLOCATOR=\"nonsense\""), 1u) << child.err;
  EXPECT_THAT(child.err, HasSubstr("allocations: 8000 (malloc 8000)\n"));
  EXPECT_THAT(child.err, HasSubstr("frees: 4000 (free 4000)\n"));
  EXPECT_THAT(child.err, HasSubstr("live blocks: 4000\n"));
  EXPECT_THAT(child.err, HasSubstr("bytes in use: 64000, peak "));
}

}  // namespace
