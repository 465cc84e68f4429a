// Calls every allocation entry point libzheap.so exports and checks what glibc 2.36
// promises: alignment, usable size, errno, contents, argument rules. Each check runs on
// the main thread and then again as the very first call of a new thread.
//   entry_points [libc|jemalloc|arena|smp]   the mode expected to serve (checked by the
//                                        usable size of malloc(1), which differs by mode)
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"

namespace {

using Function = void (*)();

bool aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

// Writes a pattern over all `size` bytes and reads it back.
void fill_and_check(void* p, std::size_t size, unsigned char seed) {
  auto* bytes = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<unsigned char>(seed + i);
  for (std::size_t i = 0; i < size; ++i) CHECK(bytes[i] == static_cast<unsigned char>(seed + i));
}

// Symbols glibc 2.36 does not declare (or does not have): reached through the dynamic table.
template <class F>
F lookup(const char* name) {
  auto f = reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
  CHECK(f != nullptr);
  return f;
}

void check_malloc() {
  for (std::size_t size : {0, 1, 7, 16, 100, 4096, 100000, 2 << 20}) {
    void* p = malloc(size);
    CHECK(p != nullptr);
    CHECK(aligned(p, size <= 8 ? 8 : 16));  // jemalloc aligns requests <= 8 bytes to 8
    CHECK(malloc_usable_size(p) >= size);
    fill_and_check(p, malloc_usable_size(p), 3);
    free(p);
  }
  errno = 0;
  CHECK(malloc(SIZE_MAX) == nullptr);
  CHECK(errno == ENOMEM);
  errno = 0;
  CHECK(malloc(SIZE_MAX / 2 + 1) == nullptr);
  CHECK(errno == ENOMEM);
}

void check_free() {
  free(nullptr);
  void* p = malloc(64);
  errno = 1234;
  free(p);
  CHECK(errno == 1234);  // free preserves errno
  errno = 0;
}

void check_calloc() {
  for (std::size_t n : {1, 10, 1000, 300000}) {
    auto* p = static_cast<unsigned char*>(calloc(n, 8));
    CHECK(p != nullptr);
    for (std::size_t i = 0; i < n * 8; ++i) CHECK(p[i] == 0);
    fill_and_check(p, n * 8, 1);
    free(p);
  }
  // Zeroing must hold for reused memory too: dirty a block, free it, calloc the same size.
  void* dirty = malloc(256);
  std::memset(dirty, 0xab, 256);
  free(dirty);
  auto* clean = static_cast<unsigned char*>(calloc(1, 256));
  for (int i = 0; i < 256; ++i) CHECK(clean[i] == 0);
  free(clean);
  errno = 0;
  CHECK(calloc(SIZE_MAX / 2, 3) == nullptr);
  CHECK(errno == ENOMEM);
}

void check_realloc() {
  auto* p = static_cast<unsigned char*>(realloc(nullptr, 10));
  CHECK(p != nullptr);
  fill_and_check(p, 10, 5);
  for (std::size_t size : {20, 200, 5000, 3 << 20, 100, 8}) {
    p = static_cast<unsigned char*>(realloc(p, size));
    CHECK(p != nullptr);
    CHECK(aligned(p, size <= 8 ? 8 : 16));
    CHECK(malloc_usable_size(p) >= size);
    for (int i = 0; i < 8; ++i) CHECK(p[i] == static_cast<unsigned char>(5 + i));
  }
  errno = 0;
  CHECK(realloc(p, SIZE_MAX) == nullptr);
  CHECK(errno == ENOMEM);
  for (int i = 0; i < 8; ++i) CHECK(p[i] == static_cast<unsigned char>(5 + i));  // untouched
  CHECK(realloc(p, 0) == nullptr);  // glibc: frees, returns NULL
}

void check_reallocarray() {
  auto* p = static_cast<int*>(reallocarray(nullptr, 10, sizeof(int)));
  CHECK(p != nullptr);
  for (int i = 0; i < 10; ++i) p[i] = i;
  p = static_cast<int*>(reallocarray(p, 1000, sizeof(int)));
  CHECK(p != nullptr);
  for (int i = 0; i < 10; ++i) CHECK(p[i] == i);
  errno = 0;
  CHECK(reallocarray(p, SIZE_MAX / 2, 4) == nullptr);
  CHECK(errno == ENOMEM);
  CHECK(p[9] == 9);
  free(p);
}

void check_posix_memalign() {
  for (std::size_t alignment : {8, 16, 32, 64, 4096, 65536, 1 << 21}) {
    void* p = nullptr;
    CHECK(posix_memalign(&p, alignment, 100) == 0);
    CHECK(p != nullptr && aligned(p, alignment));
    CHECK(malloc_usable_size(p) >= 100);
    fill_and_check(p, 100, 7);
    free(p);
  }
  void* untouched = reinterpret_cast<void*>(0x1234);
  for (std::size_t bad : {0, 1, 4, 12, 24, 48}) {
    CHECK(posix_memalign(&untouched, bad, 10) == EINVAL);
    CHECK(untouched == reinterpret_cast<void*>(0x1234));
  }
  CHECK(posix_memalign(&untouched, 64, SIZE_MAX - 100) == ENOMEM);
  CHECK(untouched == reinterpret_cast<void*>(0x1234));
}

void check_aligned_alloc() {
  for (std::size_t alignment : {1, 2, 8, 16, 128, 4096, 1 << 20}) {
    void* p = aligned_alloc(alignment, 33);  // any size is accepted since glibc 2.33 (C17)
    CHECK(p != nullptr && aligned(p, alignment));
    CHECK(malloc_usable_size(p) >= 33);
    fill_and_check(p, 33, 9);
    free(p);
  }
  errno = 0;
  CHECK(aligned_alloc(opaque(24), 48) == nullptr);
  CHECK(errno == EINVAL);
  errno = 0;
  CHECK(aligned_alloc(opaque(0), 48) == nullptr);
  CHECK(errno == EINVAL);
}

void check_memalign() {
  void* p = memalign(64, 10);
  CHECK(p != nullptr && aligned(p, 64));
  free(p);
  p = memalign(opaque(48), 10);  // rounded up to 64
  CHECK(p != nullptr && aligned(p, 64));
  free(p);
  p = memalign(1, 10);
  CHECK(p != nullptr && aligned(p, 16));
  free(p);
  errno = 0;
  CHECK(memalign(opaque(SIZE_MAX / 2 + 2), 10) == nullptr);
  CHECK(errno == EINVAL);
}

void check_valloc_pvalloc() {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void* p = valloc(10);
  CHECK(p != nullptr && aligned(p, page));
  fill_and_check(p, 10, 2);
  free(p);
  p = pvalloc(10);
  CHECK(p != nullptr && aligned(p, page));
  CHECK(malloc_usable_size(p) >= page);  // pvalloc rounds the size up to a page
  fill_and_check(p, page, 2);
  free(p);
  p = pvalloc(0);
  CHECK(p != nullptr && malloc_usable_size(p) >= page);
  free(p);
}

void check_glibc_aliases() {
  auto libc_malloc = lookup<void* (*)(std::size_t)>("__libc_malloc");
  auto libc_free = lookup<void (*)(void*)>("__libc_free");
  auto libc_calloc = lookup<void* (*)(std::size_t, std::size_t)>("__libc_calloc");
  auto libc_realloc = lookup<void* (*)(void*, std::size_t)>("__libc_realloc");
  auto libc_memalign = lookup<void* (*)(std::size_t, std::size_t)>("__libc_memalign");
  auto libc_valloc = lookup<void* (*)(std::size_t)>("__libc_valloc");
  auto libc_pvalloc = lookup<void* (*)(std::size_t)>("__libc_pvalloc");
  auto cfree_ = lookup<void (*)(void*)>("cfree");
  void* p = libc_malloc(40);
  fill_and_check(p, 40, 1);
  p = libc_realloc(p, 4000);
  CHECK(static_cast<unsigned char*>(p)[39] == static_cast<unsigned char>(40));
  free(p);  // the aliases and the plain names share one heap
  auto* z = static_cast<unsigned char*>(libc_calloc(4, 4));
  for (int i = 0; i < 16; ++i) CHECK(z[i] == 0);
  libc_free(z);
  p = libc_memalign(256, 3);
  CHECK(aligned(p, 256));
  cfree_(p);
  p = libc_valloc(1);
  CHECK(aligned(p, 4096));
  free(p);
  p = libc_pvalloc(1);
  CHECK(aligned(p, 4096) && malloc_usable_size(p) >= 4096);
  libc_free(p);
}

void check_sized_frees() {
  auto free_sized_ = lookup<void (*)(void*, std::size_t)>("free_sized");
  auto free_aligned_sized_ = lookup<void (*)(void*, std::size_t, std::size_t)>("free_aligned_sized");
  for (std::size_t size : {1, 100, 5000, 2 << 20}) {
    void* p = malloc(size);
    fill_and_check(p, size, 4);
    free_sized_(p, size);
    p = aligned_alloc(128, size);
    free_aligned_sized_(p, 128, size);
  }
  free_sized_(nullptr, 0);
}

void check_introspection() {
  CHECK(mallopt(M_ARENA_MAX, 8) == 1);
  CHECK(malloc_trim(0) >= 0);
  struct mallinfo2 info2 = mallinfo2();
  (void)info2;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  struct mallinfo info = mallinfo();  // deprecated, still exported: programs call it
#pragma GCC diagnostic pop
  (void)info;
}

int new_handler_calls = 0;
void counting_new_handler() {
  if (++new_handler_calls == 3) std::set_new_handler(nullptr);  // then new throws
}

void check_operators() {
  struct alignas(128) Wide {
    char bytes[300];
  };
  int* one = new int(7);
  CHECK(*one == 7 && aligned(one, alignof(int)));
  delete one;
  auto* many = new int[1000]();
  for (int i = 0; i < 1000; ++i) CHECK(many[i] == 0);
  delete[] many;
  auto* wide = new Wide;
  CHECK(aligned(wide, 128));
  fill_and_check(wide->bytes, sizeof wide->bytes, 6);
  delete wide;
  auto* wides = new Wide[3];
  CHECK(aligned(wides, 128));
  delete[] wides;
  // Every form by explicit call, with its matching delete.
  void* p = ::operator new(24);
  ::operator delete(p, 24);
  p = ::operator new[](24);
  ::operator delete[](p, 24);
  p = ::operator new(24, std::nothrow);
  CHECK(p != nullptr);
  ::operator delete(p, std::nothrow);
  p = ::operator new[](24, std::nothrow);
  ::operator delete[](p, std::nothrow);
  p = ::operator new(24, std::align_val_t{4096});
  CHECK(aligned(p, 4096));
  ::operator delete(p, std::align_val_t{4096});
  p = ::operator new[](24, std::align_val_t{256});
  CHECK(aligned(p, 256));
  ::operator delete[](p, std::align_val_t{256});
  p = ::operator new(24, std::align_val_t{64}, std::nothrow);
  CHECK(aligned(p, 64));
  ::operator delete(p, std::align_val_t{64}, std::nothrow);
  p = ::operator new[](24, std::align_val_t{64}, std::nothrow);
  CHECK(aligned(p, 64));
  ::operator delete[](p, std::align_val_t{64}, std::nothrow);
  p = ::operator new(24, std::align_val_t{64});
  ::operator delete(p, 24, std::align_val_t{64});
  p = ::operator new[](24, std::align_val_t{64});
  ::operator delete[](p, 24, std::align_val_t{64});
  p = ::operator new(24);
  ::operator delete(p);
  p = ::operator new[](24);
  ::operator delete[](p);
  // Failure: bad_alloc, nullptr for nothrow, the new-handler called until it gives up.
  bool thrown = false;
  try {
    p = ::operator new(SIZE_MAX / 2);
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown);
  CHECK(::operator new(SIZE_MAX / 2, std::nothrow) == nullptr);
  CHECK(::operator new[](SIZE_MAX / 2, std::align_val_t{64}, std::nothrow) == nullptr);
  new_handler_calls = 0;
  std::set_new_handler(counting_new_handler);
  thrown = false;
  try {
    p = ::operator new[](SIZE_MAX / 2, std::align_val_t{32});
  } catch (const std::bad_alloc&) {
    thrown = true;
  }
  CHECK(thrown && new_handler_calls == 3);
  // A nothrow new whose new-handler throws bad_alloc still returns nullptr.
  std::set_new_handler([] { throw std::bad_alloc(); });
  CHECK(::operator new(SIZE_MAX / 2, std::nothrow) == nullptr);
  CHECK(::operator new[](SIZE_MAX / 2, std::nothrow) == nullptr);
  CHECK(::operator new(SIZE_MAX / 2, std::align_val_t{64}, std::nothrow) == nullptr);
  CHECK(::operator new[](SIZE_MAX / 2, std::align_val_t{64}, std::nothrow) == nullptr);
  std::set_new_handler(nullptr);
  // The standard library on top (exceptions allocate too).
  std::vector<std::string> strings;
  for (int i = 0; i < 1000; ++i) strings.push_back(std::string(i % 50 + 20, 'x'));
  try {
    throw std::runtime_error(std::string(100, 'e'));
  } catch (const std::exception& e) {
    CHECK(std::strlen(e.what()) == 100);
  }
}

void check_mode(const char* expected) {
  void* p = malloc(1);
  const std::size_t usable = malloc_usable_size(p);
  free(p);
  // The usable size of malloc(1) tells the heaps apart: glibc 24, jemalloc 8, arena and smp 16,
  // debug exactly the size asked.
  if (std::strcmp(expected, "debug") == 0) CHECK(usable == 1);
  if (std::strcmp(expected, "libc") == 0) CHECK(usable == 24);
  if (std::strcmp(expected, "jemalloc") == 0) CHECK(usable == 8);
  if (std::strcmp(expected, "arena") == 0) CHECK(usable == 16);
  if (std::strcmp(expected, "smp") == 0) CHECK(usable == 16);
}

// Before main (the earliest constructor) and after it (atexit, static destructors): the
// shim must serve both.
void* allocated_before_main = nullptr;

[[gnu::constructor(101)]] void allocate_before_main() {
  allocated_before_main = malloc(333);
  CHECK(allocated_before_main != nullptr);
  std::memset(allocated_before_main, 0x11, 333);
}

struct FreesAtExit {
  ~FreesAtExit() {
    void* late = malloc(100);
    CHECK(late != nullptr);
    late = realloc(late, 10000);
    CHECK(late != nullptr);
    free(late);
    delete new std::string(100, 'x');
  }
} frees_at_exit;

void free_at_exit() {
  CHECK(static_cast<unsigned char*>(allocated_before_main)[332] == 0x11);
  free(allocated_before_main);
}

const Function checks[] = {check_malloc,        check_free,           check_calloc,      check_realloc,
                           check_reallocarray,  check_posix_memalign, check_aligned_alloc,
                           check_memalign,      check_valloc_pvalloc, check_glibc_aliases,
                           check_sized_frees,   check_introspection,  check_operators};

void* run_as_thread(void* function) {
  reinterpret_cast<Function>(function)();
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  std::atexit(free_at_exit);
  if (argc > 1) check_mode(argv[1]);
  for (Function check : checks) check();
  for (Function check : checks) {  // each as the first call of a fresh thread
    pthread_t thread;
    CHECK(pthread_create(&thread, nullptr, run_as_thread, reinterpret_cast<void*>(check)) == 0);
    CHECK(pthread_join(thread, nullptr) == 0);
  }
  std::printf("entry_points: ok\n");
  return 0;
}
