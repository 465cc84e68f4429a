// A small program for the end-to-end tests: performs the allocations named on its
// command line, then reports how each went, one line each, with write(2) only (stdio
// would allocate its buffer and shift the allocation count).
//
//   alloc_probe m:SIZE n:SIZE ...     m = malloc, n = operator new[],
//                                     a = aligned_alloc(64, SIZE), p = posix_memalign(64, SIZE)
// prints per operation "m:SIZE ok" | "m:SIZE ENOMEM" | "m:SIZE null errno=N" |
// "n:SIZE ok" | "n:SIZE bad_alloc". Every block is freed before exit. Exit code 0.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include <stdlib.h>
#include <unistd.h>

namespace {
constexpr int max_operations = 64;

struct Outcome {
  void* block = nullptr;
  bool is_new = false;
  int error = 0;  // errno after a failed malloc; -1 for bad_alloc
};

void say(const char* text) { (void)!::write(1, text, std::strlen(text)); }

void say_number(long n) {
  char digits[24];
  int i = sizeof digits;
  digits[--i] = '\0';
  do {
    digits[--i] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0);
  say(digits + i);
}
}  // namespace

int main(int argc, char** argv) {
  Outcome outcomes[max_operations];
  const int count = argc - 1 < max_operations ? argc - 1 : max_operations;
  // First every allocation, with nothing else in between...
  for (int i = 0; i < count; ++i) {
    const char* op = argv[i + 1];
    const std::size_t size = std::strtoull(op + 2, nullptr, 10);
    if (op[0] == 'n') {
      outcomes[i].is_new = true;
      try {
        outcomes[i].block = new char[size];
      } catch (const std::bad_alloc&) {
        outcomes[i].error = -1;
      }
    } else if (op[0] == 'a') {
      errno = 0;
      outcomes[i].block = std::aligned_alloc(64, size);
      if (outcomes[i].block == nullptr) outcomes[i].error = errno;
    } else if (op[0] == 'p') {
      const int error = ::posix_memalign(&outcomes[i].block, 64, size);
      if (error != 0) outcomes[i].error = error;
    } else {
      errno = 0;
      outcomes[i].block = std::malloc(size);
      if (outcomes[i].block == nullptr) outcomes[i].error = errno;
    }
  }
  // ...then the report and the frees.
  for (int i = 0; i < count; ++i) {
    say(argv[i + 1]);
    if (outcomes[i].block != nullptr) {
      say(" ok\n");
    } else if (outcomes[i].error == -1) {
      say(" bad_alloc\n");
    } else if (outcomes[i].error == ENOMEM) {
      say(" ENOMEM\n");
    } else {
      say(" null errno=");
      say_number(outcomes[i].error);
      say("\n");
    }
    if (outcomes[i].is_new) {
      delete[] static_cast<char*>(outcomes[i].block);
    } else {
      std::free(outcomes[i].block);
    }
  }
  return 0;
}
