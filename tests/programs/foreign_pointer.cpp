// Pointers zheap did not hand out must never crash free / realloc / malloc_usable_size:
// glibc's (from a library loaded with RTLD_DEEPBIND, which binds to glibc's malloc) go back
// to glibc; with --stray, a pointer nobody allocated is reported once and ignored
// (arena mode only: glibc and jemalloc, which receive unknown pointers, abort on them).
//   foreign_pointer <path of libforeign_helper.so> [--stray]
#include <dlfcn.h>
#include <malloc.h>

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
    static long not_from_malloc[4];
    free(&not_from_malloc[2]);
    free(&not_from_malloc[1]);
    CHECK(malloc_usable_size(&not_from_malloc[2]) == 0);
    CHECK(realloc(&not_from_malloc[2], 10) == nullptr);
  }
  std::printf("foreign_pointer: ok\n");
  return 0;
}
