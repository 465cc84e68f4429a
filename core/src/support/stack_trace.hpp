// Prints the calling thread's stack to a file descriptor without allocating, for reports
// made from inside malloc (the shim's ZHEAP_FAIL_AT; any allocator's fatal errors).
//
// Capture: Boost.Stacktrace's raw frame capture (safe_dump_to into a stack array), which
// walks the stack with libgcc's _Unwind_Backtrace: no malloc, no dlopen (libgcc_s is a
// link-time dependency, loaded with the program). glibc's backtrace() was not chosen
// because its first call dlopen()s libgcc_s, which allocates, from inside our malloc.
// Printing: one line per frame, "#N 0xADDRESS module+0xOFFSET (symbol+0xOFFSET)", from
// dladdr (no allocation; it reads the loader's tables). The module+offset form is what
// addr2line -e module takes; symbols are the dynamic ones only, since full symbolization
// (Boost.Stacktrace's) allocates.
#pragma once

#include <cstddef>

namespace zheap::support {

// Writes the stack of the caller of print_stack_trace, minus `skip` more frames, each
// line prefixed by `prefix` (e.g. "zheap:   ").
void print_stack_trace(int fd, const char* prefix, std::size_t skip) noexcept;

}  // namespace zheap::support
