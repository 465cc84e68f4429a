// Every block the active heap hands out is one zheap recognises as its own: for every
// size class from 8 B to 64 MiB, from several threads at once, and for alignments up to
// 64 MiB, malloc_usable_size covers the request and free reports nothing. (In jemalloc
// mode this checks that every extent came from zheap's reserve: a block outside it would
// read as foreign, usable size 0, and free would report it.) "every_size: ok" is printed
// before exit; a report caught at exit still fails the program (exit status 1).
//   every_size [threads]
#include <malloc.h>
#include <sys/mman.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "check.hpp"

namespace {

constexpr std::size_t max_size = std::size_t{64} << 20;

// Sizes in geometric steps of a quarter (jemalloc's size classes), plus their neighbours.
template <class Visit>
void for_each_size(Visit visit) {
  for (std::size_t base = 8; base <= max_size; base *= 2) {
    for (std::size_t quarter = 0; quarter < 4 && base + quarter * (base / 4) <= max_size; ++quarter) {
      const std::size_t size = base + quarter * (base / 4);
      visit(size - 1);
      visit(size);
      visit(size + 1);
    }
  }
}

void use_and_free(void* p, std::size_t size) {
  CHECK(p != nullptr);
  CHECK(malloc_usable_size(p) >= size);
  auto* bytes = static_cast<unsigned char*>(p);
  bytes[0] = 1;
  bytes[size - 1] = 2;
  free(p);
}

void* exercise(void*) {
  for (int round = 0; round < 3; ++round) {
    for_each_size([](std::size_t size) { use_and_free(malloc(size), size); });
    for_each_size([](std::size_t size) {
      void* p = calloc(1, size);
      CHECK(p != nullptr && static_cast<unsigned char*>(p)[size - 1] == 0);
      use_and_free(p, size);
    });
    // Blocks kept alive at once, so the heap has to grow rather than reuse.
    void* kept[64];
    int n = 0;
    for_each_size([&](std::size_t size) {
      if (size <= (std::size_t{1} << 20) && n < 64) kept[n++] = malloc(size);
    });
    for (int i = 0; i < n; ++i) CHECK(kept[i] != nullptr && malloc_usable_size(kept[i]) > 0);
    for (int i = 0; i < n; ++i) free(kept[i]);
    for (std::size_t alignment = 32; alignment <= max_size; alignment *= 4) {
      for (const std::size_t size : {std::size_t{1}, alignment / 2 + 1, alignment + 16}) {
        void* p = nullptr;
        CHECK(posix_memalign(&p, alignment, size) == 0);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % alignment == 0);
        use_and_free(p, size);
      }
    }
    void* grown = malloc(16);
    for (std::size_t size = 32; size <= max_size; size *= 2) {
      grown = realloc(grown, size);
      CHECK(grown != nullptr && malloc_usable_size(grown) >= size);
    }
    free(grown);
  }
  return nullptr;
}

// stderr goes to a memory file meanwhile; at exit (also a failed CHECK's) its contents are
// copied to the real stderr, and a zheap report in them fails the program.
int saved_stderr = -1;
int captured_stderr = -1;

void restore_stderr_and_check() {
  dup2(saved_stderr, 2);
  char captured[4096] = {};
  const ssize_t n = pread(captured_stderr, captured, sizeof captured - 1, 0);
  if (n > 0) std::fprintf(stderr, "%s", captured);
  if (n > 0 && std::strstr(captured, "zheap:") != nullptr) _exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  CHECK(threads >= 1 && threads <= 64);
  captured_stderr = memfd_create("stderr", 0);
  CHECK(captured_stderr >= 0);
  saved_stderr = dup(2);
  CHECK(dup2(captured_stderr, 2) == 2);
  CHECK(std::atexit(restore_stderr_and_check) == 0);
  pthread_t ids[64];
  for (int i = 0; i < threads; ++i) CHECK(pthread_create(&ids[i], nullptr, exercise, nullptr) == 0);
  exercise(nullptr);
  for (int i = 0; i < threads; ++i) CHECK(pthread_join(ids[i], nullptr) == 0);
  std::printf("every_size: ok\n");
  return 0;
}
