// A tiny check macro for the test programs run under LD_PRELOAD: prints the failed
// condition with its line and exits 1. (Programs only; they may use stdio freely.)
#pragma once

#include <cstdio>
#include <cstdlib>

#define CHECK(condition)                                                              \
  do {                                                                                \
    if (!(condition)) {                                                               \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

// `value`, hidden from the optimizer: an argument the compiler cannot see stays a call
// to the allocator under test (and clang 14's optimizer crashes on some constant bad
// alignments given to memalign/aligned_alloc).
template <class T>
inline T opaque(T value) {
  asm volatile("" : "+r"(value));
  return value;
}
