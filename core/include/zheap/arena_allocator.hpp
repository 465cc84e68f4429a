// ArenaAllocator: a bump allocator over buffers from a child allocator, freed all at once
// (Zig's std.heap.ArenaAllocator).
//
// For: many allocations with one lifetime (a request, a frame, a parse), freed together by
// reset() or the destructor instead of one by one.
// Layout: a singly linked list of buffers, newest first, each one block from the child:
//
//     child block: [ Buffer{next, len} | data ............................ ]
//                                        ^ allocations bump from here; end_index_ is the
//                                          offset of the first free byte of the newest buffer
//
// When the newest buffer is full, the arena first asks the child to grow it in place, then
// takes a new buffer about 1.5 times the size of the last plus the request (geometric
// growth: O(log n) child calls for n bytes). The rest of a left-behind buffer is not reused.
// Alignment is honoured by skipping bytes, for any power of two.
// Frees and resizes: only the LAST allocation can be freed (rolled back) or grown/shrunk in
// place; other frees are no-ops and other blocks can only shrink. Remap is resize or nothing.
// reset(): free_all returns every buffer; retain_capacity keeps one buffer as large as all
// of them were; retain_with_limit keeps one buffer of at most `limit` usable bytes.
// Thread safety: none; one thread at a time (wrap it in a ThreadSafeAllocator to share).
// The handle from allocator() points to this object: moving the arena invalidates handles.
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/vtable_for.hpp>

#include <cstddef>
#include <cstdint>

namespace zheap {

// What reset() keeps (Zig's ArenaAllocator.ResetMode).
enum class ResetMode {
  free_all,           // return every buffer to the child
  retain_capacity,    // keep as many usable bytes as the arena holds, in one buffer
  retain_with_limit,  // as retain_capacity, but at most `limit` usable bytes
};

class ArenaAllocator {
 public:
  explicit ArenaAllocator(Allocator child) noexcept : child_(child) {}
  ~ArenaAllocator() { release_all(); }
  ArenaAllocator(const ArenaAllocator&) = delete;
  ArenaAllocator& operator=(const ArenaAllocator&) = delete;
  // The moved-from arena is empty; handles taken from either before the move are invalid.
  ArenaAllocator(ArenaAllocator&& other) noexcept;
  ArenaAllocator& operator=(ArenaAllocator&& other) noexcept;

  Allocator allocator() noexcept;
  Allocator child_allocator() const noexcept { return child_; }

  // Frees every allocation at once and keeps buffers as `mode` says (`limit` is read only
  // for retain_with_limit). Returns false when the child could not provide the retained
  // buffer, in which case everything was freed (the arena is still usable).
  bool reset(ResetMode mode, std::size_t limit = 0) noexcept;

  // Usable bytes in the buffers the arena holds, excluding its own buffer headers.
  std::size_t query_capacity() const noexcept;

  // alloc, resize, remap, free: THE CONTRACT's operations (signatures in vtable_for.hpp);
  // allocator() hands them out through vtable_for, and MemoryPool calls alloc directly.
  // The arena records no return addresses and needs no alignment to resize or free: those
  // arguments are ignored.
  ZHEAP_ALLOCATOR_OPERATIONS;

 private:
  struct Buffer;

  Buffer* add_buffer(std::size_t minimum_capacity) noexcept;
  bool grow_in_place(Buffer* buffer, std::size_t capacity) noexcept;
  void release_buffer(Buffer* buffer) noexcept;
  void release_all() noexcept;

  Allocator child_;
  Buffer* newest_ = nullptr;
  std::size_t end_index_ = 0;  // offset of the first free byte in newest_'s data
};

}  // namespace zheap
