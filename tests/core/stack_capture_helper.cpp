// A shared library for stack_capture_test: the stack crosses into it and back out.
#include "stack_capture_helper.hpp"

extern "C" __attribute__((noinline)) int stack_capture_helper_recurse(int depth, void (*callback)(void*), void* arg) {
  if (depth == 0) {
    callback(arg);
    return 0;
  }
  const int result = stack_capture_helper_recurse(depth - 1, callback, arg);
  __asm__ volatile("" ::: "memory");  // no tail call: keep every frame
  return result + 1;
}
