// Pointers zheap did not hand out must never crash free / realloc / malloc_usable_size:
// glibc's (from a library loaded with RTLD_DEEPBIND, which binds to glibc's malloc) go back
// to glibc; with --stray, a pointer nobody allocated is reported once and ignored
// (arena and smp modes: glibc and jemalloc, which receive unknown pointers, abort on them).
//   foreign_pointer <path of libforeign_helper.so> [--stray]
#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cstring>

#include "check.hpp"

int main(int argc, char** argv) {
  CHECK(argc >= 2);
  void* helper = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
  if (helper == nullptr) std::fprintf(stderr, "%s\n", dlerror());
  CHECK(helper != nullptr);
  auto foreign_malloc = reinterpret_cast<void* (*)(std::size_t)>(dlsym(helper, "foreign_helper_malloc"));
  CHECK(foreign_malloc != nullptr);

  for (int i = 0; i < 100; ++i) {
    auto* p = static_cast<unsigned char*>(foreign_malloc(100));
    CHECK(p != nullptr && p[99] == 0x5a);
    CHECK(malloc_usable_size(p) >= 100);
    if (i % 2 == 0) {
      free(p);
    } else {
      p = static_cast<unsigned char*>(realloc(p, 5000));  // moves into zheap's heap
      CHECK(p != nullptr && p[0] == 0x5a && p[99] == 0x5a);
      free(p);
    }
  }
  CHECK(dlclose(helper) == 0);

  if (argc > 2 && std::strcmp(argv[2], "--stray") == 0) {
    // stderr goes to a pipe meanwhile: the report must name the pointer, exactly once.
    int pipe_fds[2];
    CHECK(pipe(pipe_fds) == 0);
    const int saved_stderr = dup(2);
    CHECK(dup2(pipe_fds[1], 2) == 2);
    static long not_from_malloc[4];
    free(&not_from_malloc[2]);
    free(&not_from_malloc[1]);
    const std::size_t usable = malloc_usable_size(&not_from_malloc[2]);
    void* moved = realloc(&not_from_malloc[2], 10);
    dup2(saved_stderr, 2);
    close(pipe_fds[1]);
    char report[4096] = {};
    const ssize_t n = read(pipe_fds[0], report, sizeof report - 1);
    CHECK(usable == 0);
    CHECK(moved == nullptr);
    CHECK(n > 0);
    char expected[64];
    std::snprintf(expected, sizeof expected, "free(%p)", static_cast<void*>(&not_from_malloc[2]));
    CHECK(std::strstr(report, expected) != nullptr);
    int reports = 0;
    for (const char* at = report; (at = std::strstr(at, "zheap:")) != nullptr; ++at) ++reports;
    CHECK(reports == 1);
  }
  std::printf("foreign_pointer: ok\n");
  return 0;
}
