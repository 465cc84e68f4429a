// One heap bug per run, for debug mode's tests (tests/shim/check_debug_report.py): each
// bug sits in a function of its own, on a line marked `// bug: <kind>`, which the report
// must name (function and file:line). Clean otherwise; prints "survived <kind>" when the
// program goes on after the bug (ZHEAP_ON_ERROR=report).
//   heap_bugs double_free | malloc_delete | new_array_delete | overflow | write_after_free
//             | stack_free
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

// The compiler must not see through the pointers (no dead-store or bad-free warnings).
template <class T>
T* opaque(T* p) {
  asm volatile("" : "+r"(p));
  return p;
}

// After the bug's call: keeps that call out of tail position, so that the function's own
// frame is still on the stack (optimized builds would jump to free and leave only main).
inline void no_tail_call() { asm volatile("" ::: "memory"); }

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

[[gnu::noinline]] void overflow() {
  char* p = static_cast<char*>(std::malloc(24));
  std::memset(opaque(p), 'x', 25);
  std::free(p);  // bug: overflow
  no_tail_call();
}

[[gnu::noinline]] void write_after_free() {
  char* p = static_cast<char*>(std::malloc(32));
  std::free(p);  // bug: write_after_free
  opaque(p)[5] = 'x';
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
  if (kind == "double_free") double_free();
  else if (kind == "malloc_delete") malloc_delete();
  else if (kind == "new_array_delete") new_array_delete();
  else if (kind == "overflow") overflow();
  else if (kind == "write_after_free") write_after_free();
  else if (kind == "stack_free") stack_free();
  else return 2;
  std::printf("survived %s\n", argv[1]);
  return 0;
}
