// "No allocation" as a tested property: this executable replaces malloc and friends with
// counting wrappers over glibc's, then drives every layer (first-use option parsing with
// bad values, ZHEAP_FAIL_AT's stack print, the limit, the log file, the stats report into
// a file) and asserts that none of it called malloc.
#include "layers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "child_process.hpp"

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> counting{false};
std::atomic<int> calls{0};
void count() {
  if (counting.load(std::memory_order_relaxed)) calls.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

// Interpose on the whole process (gtest included); only counted while `counting`.
extern "C" void* malloc(std::size_t size) {
  count();
  return __libc_malloc(size);
}
extern "C" void* calloc(std::size_t n, std::size_t size) {
  count();
  return __libc_calloc(n, size);
}
extern "C" void* realloc(void* p, std::size_t size) {
  count();
  return __libc_realloc(p, size);
}
extern "C" void free(void* p) {
  count();
  __libc_free(p);
}

namespace {
using namespace zheap::shim;

TEST(LayersNoAlloc, EveryLayerWorksWithoutCallingMalloc) {
  std::string dir = ::testing::TempDir() + "zheap-noalloc-XXXXXX";
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string options = "stats=1:stats_file=" + dir + "/stats.%p:log=" + dir + "/log.%p:colour=blue";

  const auto child = zheap::testing::run_in_child([&] {
    ::setenv("ZHEAP_OPTIONS", options.c_str(), 1);
    ::setenv("ZHEAP_FAIL_AT", "2", 1);
    ::setenv("ZHEAP_LIMIT", "64K", 1);
    ::setenv("ZHEAP_ARENA_LIMIT", "12X", 1);
    counting = true;
    bool ok = layers::admit(100);          // first use: parses, opens the log
    ok = ok && !layers::admit(200);        // ZHEAP_FAIL_AT=2: stack printed
    layers::on_alloc(reinterpret_cast<void*>(0x1000), 112, Api::malloc, 100, 0);
    ok = ok && !layers::admit(128 * 1024);  // over ZHEAP_LIMIT: reported
    layers::on_free(reinterpret_cast<void*>(0x1000), 112, Api::free);
    layers::at_exit();                     // opens the stats file, writes the report
    counting = false;
    if (!ok) return 2;
    return calls.load() == 0 ? 0 : 1;
  });
  EXPECT_EQ(child.exit_code, 0) << "calls to malloc while counting (exit 1), or wrong answers (exit 2)\n" << child.err;
  // Everything it was meant to say, it said.
  EXPECT_NE(child.err.find("ZHEAP_OPTIONS item \"colour=blue\""), std::string::npos) << child.err;
  EXPECT_NE(child.err.find("ZHEAP_ARENA_LIMIT=\"12X\""), std::string::npos) << child.err;
  EXPECT_NE(child.err.find("ZHEAP_FAIL_AT=2: allocation 2 (200 bytes) fails here:"), std::string::npos) << child.err;
  EXPECT_NE(child.err.find("zheap:   #0 0x"), std::string::npos) << child.err;
  EXPECT_NE(child.err.find("ZHEAP_LIMIT=65536: an allocation of 131072 bytes is refused"), std::string::npos) << child.err;
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files += entry.file_size() > 0;
  EXPECT_EQ(files, 2u) << "the log and the stats files, both written";
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
