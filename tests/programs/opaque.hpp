// What the buggy and leaking test programs need to keep the compiler from seeing through
// them (header-only, no dependencies).
#pragma once

namespace test_programs {

// The compiler must not see through the pointer: no dead-store elimination, no elided
// allocation, no bad-free warnings on purpose-made bugs.
template <class T>
T* opaque(T* p) {
  asm volatile("" : "+r"(p));
  return p;
}

// After a call: keeps it out of tail position, so that the calling function's own frame
// is still on the stack when the call records it (optimized builds would jump instead).
inline void no_tail_call() { asm volatile("" ::: "memory"); }

}  // namespace test_programs
