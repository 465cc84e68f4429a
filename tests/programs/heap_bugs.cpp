// One heap bug per run, for debug mode's tests (tests/shim/check_debug_report.py): each
// bug sits in a function of its own, on a line marked `// bug: <kind>`, which the report
// must name (function and file:line). Clean otherwise; prints "survived <kind>" when the
// program goes on after the bug (ZHEAP_ON_ERROR=report).
//   heap_bugs double_free | malloc_delete | new_array_delete | new_free | new_delete_array
//             | wrong_size_delete | aligned_new_plain_delete | overflow | underflow
//             | write_after_free | realloc_of_freed | stack_free | global_free | mmap_free
//             | interior_free
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

#include "opaque.hpp"

namespace {

using test_programs::no_tail_call;
using test_programs::opaque;

[[gnu::noinline]] void double_free() {
  char* p = static_cast<char*>(std::malloc(40));
  std::free(p);
  std::free(opaque(p));  // bug: double_free
  no_tail_call();
}

[[gnu::noinline]] void malloc_delete() {
  int* p = static_cast<int*>(std::malloc(sizeof(int)));
  delete opaque(p);  // bug: malloc_delete
  no_tail_call();
}

[[gnu::noinline]] void new_array_delete() {
  long* p = new long[8];
  delete opaque(p);  // bug: new_array_delete
  no_tail_call();
}

[[gnu::noinline]] void new_free() {
  int* p = new int(7);
  std::free(opaque(p));  // bug: new_free
  no_tail_call();
}

[[gnu::noinline]] void new_delete_array() {
  int* p = new int(7);
  delete[] opaque(p);  // bug: new_delete_array
  no_tail_call();
}

struct Pair {
  long first;
  long second;
};

[[gnu::noinline]] void wrong_size_delete() {
  Pair* p = new Pair{1, 2};
  ::operator delete(opaque(p), sizeof(Pair) + 8);  // bug: wrong_size_delete
  no_tail_call();
}

struct alignas(64) CacheLine {
  char bytes[64];
};

[[gnu::noinline]] void aligned_new_plain_delete() {
  CacheLine* p = new CacheLine{};
  ::operator delete(opaque(p));  // bug: aligned_new_plain_delete
  no_tail_call();
}

[[gnu::noinline]] void overflow() {
  char* p = static_cast<char*>(std::malloc(24));
  std::memset(opaque(p), 'x', 25);
  std::free(p);  // bug: overflow
  no_tail_call();
}

[[gnu::noinline]] void underflow() {
  char* p = static_cast<char*>(std::malloc(24));
  opaque(p)[-1] = 'x';
  std::free(p);  // bug: underflow
  no_tail_call();
}

[[gnu::noinline]] void write_after_free() {
  char* p = static_cast<char*>(std::malloc(32));
  std::free(p);  // bug: write_after_free
  opaque(p)[5] = 'x';
}

[[gnu::noinline]] void realloc_of_freed() {
  char* p = static_cast<char*>(std::malloc(16));
  std::free(p);
  void* again = std::realloc(opaque(p), 32);  // bug: realloc_of_freed
  std::printf("realloc returned %s\n", again == nullptr ? "null" : "a block");
}

char global_buffer[32];

[[gnu::noinline]] void global_free() {
  std::free(opaque(global_buffer));  // bug: global_free
  no_tail_call();
}

[[gnu::noinline]] void mmap_free() {
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return;
  std::free(opaque(static_cast<char*>(page) + 256));  // bug: mmap_free
  no_tail_call();
}

[[gnu::noinline]] void interior_free() {
  char* p = static_cast<char*>(std::malloc(64));
  std::free(opaque(p + 8));  // bug: interior_free
  no_tail_call();
}

[[gnu::noinline]] void stack_free() {
  char on_stack[64] = {};
  std::free(opaque(on_stack + 16));  // bug: stack_free
  no_tail_call();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: heap_bugs KIND\n");
    return 2;
  }
  const std::string_view kind = argv[1];
  using Bug = void (*)();
  constexpr struct {
    std::string_view name;
    Bug bug;
  } bugs[] = {
      {"double_free", double_free},
      {"malloc_delete", malloc_delete},
      {"new_array_delete", new_array_delete},
      {"new_free", new_free},
      {"new_delete_array", new_delete_array},
      {"wrong_size_delete", wrong_size_delete},
      {"aligned_new_plain_delete", aligned_new_plain_delete},
      {"overflow", overflow},
      {"underflow", underflow},
      {"write_after_free", write_after_free},
      {"realloc_of_freed", realloc_of_freed},
      {"stack_free", stack_free},
      {"global_free", global_free},
      {"mmap_free", mmap_free},
      {"interior_free", interior_free},
  };
  Bug chosen = nullptr;
  for (const auto& entry : bugs)
    if (entry.name == kind) chosen = entry.bug;
  if (chosen == nullptr) return 2;
  chosen();
  std::printf("survived %s\n", argv[1]);
  return 0;
}
