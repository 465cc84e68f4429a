// Pointers zheap did not hand out must never crash free / realloc / malloc_usable_size:
// glibc's (from a library loaded with RTLD_DEEPBIND, which binds to glibc's malloc) go back
// to glibc, whether glibc took them from its brk heap, mmapped them (large) or served them
// from a thread arena; with --stray, pointers nobody allocated (static data, the stack, the
// middle of a mapping) are reported once and ignored. --stray is for the modes whose heap
// is a reserved range (arena, jemalloc, smp): libc mode hands every pointer to glibc, which
// aborts on a stray one, as it does without zheap.
//   foreign_pointer <path of libforeign_helper.so> [--stray]
#include <dlfcn.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <initializer_list>

#include "check.hpp"

int main(int argc, char** argv) {
  CHECK(argc >= 2);
  void* helper = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
  if (helper == nullptr) std::fprintf(stderr, "%s\n", dlerror());
  CHECK(helper != nullptr);
  auto foreign_malloc = reinterpret_cast<void* (*)(std::size_t)>(dlsym(helper, "foreign_helper_malloc"));
  CHECK(foreign_malloc != nullptr);

  auto foreign_malloc_on_thread =
      reinterpret_cast<void* (*)(std::size_t)>(dlsym(helper, "foreign_helper_malloc_on_thread"));
  CHECK(foreign_malloc_on_thread != nullptr);

  // Small: glibc's brk heap; 256 KiB: glibc mmaps it; on a thread: a glibc thread arena.
  for (const std::size_t size : {std::size_t{100}, std::size_t{256} << 10}) {
    for (const bool on_thread : {false, true}) {
      for (int i = 0; i < 20; ++i) {
        auto* p = static_cast<unsigned char*>(on_thread ? foreign_malloc_on_thread(size) : foreign_malloc(size));
        CHECK(p != nullptr && p[size - 1] == 0x5a);
        // What this loop is for: large and thread blocks lie outside glibc's brk heap.
        const bool in_brk_heap = reinterpret_cast<void*>(p) < sbrk(0);
        CHECK(in_brk_heap == (size == 100 && !on_thread));
        CHECK(malloc_usable_size(p) >= size);
        if (i % 2 == 0) {
          free(p);
        } else {
          p = static_cast<unsigned char*>(realloc(p, size + 5000));  // moves into zheap's heap
          CHECK(p != nullptr && p[0] == 0x5a && p[size - 1] == 0x5a);
          CHECK(malloc_usable_size(p) >= size + 5000);
          free(p);
        }
      }
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
    long on_stack[4] = {};
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    auto* mapping = static_cast<unsigned char*>(
        mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    CHECK(mapping != MAP_FAILED);
    free(&not_from_malloc[2]);
    free(&not_from_malloc[1]);
    free(&on_stack[2]);
    free(mapping + page + 64);
    const std::size_t usable = malloc_usable_size(&not_from_malloc[2]) + malloc_usable_size(&on_stack[2]) +
                               malloc_usable_size(mapping + page + 64);
    void* moved = realloc(&not_from_malloc[2], 10);
    void* moved_from_stack = realloc(&on_stack[2], 10);
    void* moved_from_mapping = realloc(mapping + 2 * page, 10);
    dup2(saved_stderr, 2);
    close(pipe_fds[1]);
    char report[4096] = {};
    const ssize_t n = read(pipe_fds[0], report, sizeof report - 1);
    CHECK(usable == 0);
    CHECK(moved == nullptr && moved_from_stack == nullptr && moved_from_mapping == nullptr);
    CHECK(munmap(mapping, 4 * page) == 0);
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
