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
