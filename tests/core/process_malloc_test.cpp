// Linking libzheap-core (and with it libjemalloc) must not change the program's allocator:
// `malloc` stays glibc's and `operator new` libstdc++'s, while jemalloc_allocator() reaches
// jemalloc through mallocx. Built twice: against the static archive and against
// libzheap-core.so, the two ways a program can link the core.
#include <zheap/c_allocator.hpp>
#include <zheap/config.hpp>
#include <zheap/jemalloc_allocator.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

#include <dlfcn.h>

namespace {

// The question is about link order. A malloc put in front on purpose (LD_PRELOAD: the
// zheap shim, valgrind; or the interceptors of AddressSanitizer or ThreadSanitizer) rightly
// wins, so these checks then have nothing to say.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)  // g++
#define ZHEAP_UNDER_SANITIZER 1
#elif defined(__has_feature)                                        // clang
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ZHEAP_UNDER_SANITIZER 1
#endif
#endif

bool malloc_replaced_on_purpose() {
#if defined(ZHEAP_UNDER_SANITIZER)
  return true;
#else
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && *preload != '\0';
#endif
}

// The file name of the object that defines `symbol` for this process (the one the dynamic
// linker binds callers to), or "" when nothing does.
std::string_view object_defining(const char* symbol) {
  void* address = dlsym(RTLD_DEFAULT, symbol);
  if (address == nullptr) return {};
  Dl_info info{};
  if (dladdr(address, &info) == 0 || info.dli_fname == nullptr) return {};
  std::string_view path(info.dli_fname);
  return path.substr(path.rfind('/') + 1);
}

TEST(ProcessMalloc, MallocAndFreeStayGlibcs) {
  if (malloc_replaced_on_purpose()) GTEST_SKIP() << "malloc is replaced on purpose (preload or sanitizer)";
  EXPECT_EQ(object_defining("malloc"), "libc.so.6");
  EXPECT_EQ(object_defining("free"), "libc.so.6");
  EXPECT_EQ(object_defining("realloc"), "libc.so.6");
  EXPECT_EQ(object_defining("posix_memalign"), "libc.so.6");
  EXPECT_EQ(object_defining("malloc_usable_size"), "libc.so.6");
}

TEST(ProcessMalloc, OperatorNewStaysLibstdcxxs) {
  if (malloc_replaced_on_purpose()) GTEST_SKIP() << "operator new is replaced on purpose (preload or sanitizer)";
  EXPECT_EQ(object_defining("_Znwm"), "libstdc++.so.6");                  // operator new(size_t)
  EXPECT_EQ(object_defining("_ZdlPvm"), "libstdc++.so.6");                // operator delete(void*, size_t)
  EXPECT_EQ(object_defining("_ZnwmSt11align_val_t"), "libstdc++.so.6");  // aligned new
}

#if ZHEAP_HAVE_JEMALLOC
TEST(ProcessMalloc, JemallocIsLoadedAndServesJemallocAllocator) {
  // The check above means something only if libjemalloc is really in the process.
  EXPECT_EQ(object_defining("mallocx"), "libjemalloc.so.2");
  auto span = zheap::jemalloc_allocator().alloc<char>(100);
  ASSERT_NE(span.data(), nullptr);
  using Sallocx = std::size_t (*)(const void*, int);
  auto sallocx = reinterpret_cast<Sallocx>(dlsym(RTLD_DEFAULT, "sallocx"));
  ASSERT_NE(sallocx, nullptr);
  EXPECT_GE(sallocx(span.data(), 0), 100u);  // jemalloc knows the block: it made it
  zheap::jemalloc_allocator().free(span);
}
#endif

TEST(ProcessMalloc, CAllocatorIsTheProcesssMalloc) {
  auto span = zheap::c_allocator().alloc<char>(100);
  ASSERT_NE(span.data(), nullptr);
  free(span.data());  // glibc's free accepts it
}
}  // namespace
