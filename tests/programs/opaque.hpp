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

// Zeroes the vector registers, which no call needs to preserve: the allocator may return
// with a leaked block's address still in one (a record copied with SSE), and the next
// lazily bound PLT call (_dl_runtime_resolve saves every register on the stack) would
// leave it in dead stack that a conservative scan at exit reads, as scrub_stack() in
// leaks.cpp explains for stack slots.
inline void scrub_vector_registers() {
#if defined(__x86_64__)
  asm volatile(
      "pxor %%xmm0, %%xmm0\n pxor %%xmm1, %%xmm1\n pxor %%xmm2, %%xmm2\n pxor %%xmm3, %%xmm3\n"
      "pxor %%xmm4, %%xmm4\n pxor %%xmm5, %%xmm5\n pxor %%xmm6, %%xmm6\n pxor %%xmm7, %%xmm7\n"
      "pxor %%xmm8, %%xmm8\n pxor %%xmm9, %%xmm9\n pxor %%xmm10, %%xmm10\n pxor %%xmm11, %%xmm11\n"
      "pxor %%xmm12, %%xmm12\n pxor %%xmm13, %%xmm13\n pxor %%xmm14, %%xmm14\n pxor %%xmm15, %%xmm15"
      ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
      "xmm12", "xmm13", "xmm14", "xmm15", "memory");
#endif
}

}  // namespace test_programs
