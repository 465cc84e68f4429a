#include <zheap/thread_safe_allocator.hpp>

namespace zheap {

namespace {
ThreadSafeAllocator& self(void* ctx) noexcept { return *static_cast<ThreadSafeAllocator*>(ctx); }
}  // namespace

constinit const Allocator::VTable ThreadSafeAllocator::vtable{alloc, resize, remap, free};

Allocator ThreadSafeAllocator::allocator() noexcept { return Allocator(this, &vtable); }

void* ThreadSafeAllocator::alloc(void* ctx, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  ThreadSafeAllocator& s = self(ctx);
  MutexLock lock(s.mutex_);
  return s.child_.raw_alloc(len, alignment, ret_addr);
}

bool ThreadSafeAllocator::resize(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                                 std::uintptr_t ret_addr) noexcept {
  ThreadSafeAllocator& s = self(ctx);
  MutexLock lock(s.mutex_);
  return s.child_.raw_resize(memory, len, alignment, new_len, ret_addr);
}

void* ThreadSafeAllocator::remap(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                                 std::uintptr_t ret_addr) noexcept {
  ThreadSafeAllocator& s = self(ctx);
  MutexLock lock(s.mutex_);
  return s.child_.raw_remap(memory, len, alignment, new_len, ret_addr);
}

void ThreadSafeAllocator::free(void* ctx, void* memory, std::size_t len, Alignment alignment,
                               std::uintptr_t ret_addr) noexcept {
  ThreadSafeAllocator& s = self(ctx);
  MutexLock lock(s.mutex_);
  s.child_.raw_free(memory, len, alignment, ret_addr);
}

}  // namespace zheap
