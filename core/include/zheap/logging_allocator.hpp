// LoggingAllocator: one line per call, to see what a program asks of its allocator.
//
// For: debugging and learning what code allocates. Wraps a child; every alloc, resize,
// remap and free is passed on, then logged as one line with the operation, the
// pointer(s), length(s), alignment and result:
//
//   alloc len=100 align=16 -> 0x7f3a5c000010
//   alloc len=4096 align=8 -> null
//   resize 0x7f3a5c000010 len=100 align=16 new_len=200 -> ok        (or: -> refused)
//   remap 0x7f3a5c000010 len=100 align=16 new_len=9000 -> 0x7f3a5b000000   (or: -> null)
//   free 0x7f3a5c000010 len=200 align=16
//
// Each line ends in '\n' and is formatted in a buffer on the stack: no malloc, no stdio,
// so the wrapper may sit under the shim. A line goes to the sink in one write() call.
// Thread safety: as the child's; lines from several threads do not interleave within a
// line when the sink writes each line at once (stderr_sink does). Not copyable.
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/vtable_for.hpp>

#include <cstddef>

namespace zheap {

// Where log lines go: a function and its context. `line` is not NUL-terminated.
struct LogSink {
  void (*write)(void* ctx, const char* line, std::size_t len);
  void* ctx;

  // Each line written to file descriptor 2 with one write(2).
  static LogSink stderr_sink() noexcept;
  // Lines are dropped (to measure or to test the wrapper without output).
  static LogSink discard() noexcept;
};

class LoggingAllocator {
 public:
  explicit LoggingAllocator(Allocator child, LogSink sink = LogSink::stderr_sink()) noexcept
      : child_(child), sink_(sink) {}
  LoggingAllocator(const LoggingAllocator&) = delete;
  LoggingAllocator& operator=(const LoggingAllocator&) = delete;

  Allocator allocator() noexcept;

  // alloc, resize, remap, free: THE CONTRACT's operations, with the signatures declared in
  // vtable_for.hpp; allocator() hands them out through vtable_for.
  ZHEAP_ALLOCATOR_OPERATIONS;

 private:
  Allocator child_;
  LogSink sink_;
};

}  // namespace zheap
