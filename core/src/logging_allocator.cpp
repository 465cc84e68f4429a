#include <zheap/logging_allocator.hpp>

#include "os/os.hpp"
#include "support/format.hpp"

namespace zheap {

namespace {

// Two pointers, three numbers and the words around them fit with room to spare.
constexpr std::size_t line_capacity = 160;

void write_to_stderr(void*, const char* line, std::size_t len) { os::write_stderr(line, len); }
void drop_line(void*, const char*, std::size_t) {}

// "<operation> [<memory> ]len=<len> align=<alignment>"
void describe_call(support::BufferWriter& line, const char* operation, const void* memory, std::size_t len,
                   Alignment alignment) noexcept {
  line.text(operation).character(' ');
  if (memory != nullptr) line.pointer(memory).character(' ');
  line.text("len=").unsigned_decimal(len).text(" align=").unsigned_decimal(alignment.bytes());
}

void append_result_pointer(support::BufferWriter& line, const void* result) noexcept {
  line.text(" -> ");
  if (result == nullptr)
    line.text("null");
  else
    line.pointer(result);
}

}  // namespace

LogSink LogSink::stderr_sink() noexcept { return LogSink{write_to_stderr, nullptr}; }
LogSink LogSink::discard() noexcept { return LogSink{drop_line, nullptr}; }

Allocator LoggingAllocator::allocator() noexcept { return Allocator(this, &vtable_for<LoggingAllocator>); }

void* LoggingAllocator::alloc(std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  void* result = child_.raw_alloc(len, alignment, ret_addr);
  char buffer[line_capacity];
  support::BufferWriter line(buffer);
  describe_call(line, "alloc", nullptr, len, alignment);
  append_result_pointer(line, result);
  line.character('\n');
  sink_.write(sink_.ctx, line.c_str(), line.size());
  return result;
}

bool LoggingAllocator::resize(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                              std::uintptr_t ret_addr) noexcept {
  const bool resized = child_.raw_resize(memory, len, alignment, new_len, ret_addr);
  char buffer[line_capacity];
  support::BufferWriter line(buffer);
  describe_call(line, "resize", memory, len, alignment);
  line.text(" new_len=").unsigned_decimal(new_len).text(resized ? " -> ok\n" : " -> refused\n");
  sink_.write(sink_.ctx, line.c_str(), line.size());
  return resized;
}

void* LoggingAllocator::remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                              std::uintptr_t ret_addr) noexcept {
  void* result = child_.raw_remap(memory, len, alignment, new_len, ret_addr);
  char buffer[line_capacity];
  support::BufferWriter line(buffer);
  describe_call(line, "remap", memory, len, alignment);
  line.text(" new_len=").unsigned_decimal(new_len);
  append_result_pointer(line, result);
  line.character('\n');
  sink_.write(sink_.ctx, line.c_str(), line.size());
  return result;
}

void LoggingAllocator::free(void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  child_.raw_free(memory, len, alignment, ret_addr);
  char buffer[line_capacity];
  support::BufferWriter line(buffer);
  describe_call(line, "free", memory, len, alignment);
  line.character('\n');
  sink_.write(sink_.ctx, line.c_str(), line.size());
}

}  // namespace zheap
