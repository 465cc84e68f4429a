#include <zheap/thread_safe_allocator.hpp>

namespace zheap {

Allocator ThreadSafeAllocator::allocator() noexcept { return Allocator(this, &vtable_for<ThreadSafeAllocator>); }

void* ThreadSafeAllocator::alloc(std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  MutexLock lock(mutex_);
  return child_.raw_alloc(len, alignment, ret_addr);
}

bool ThreadSafeAllocator::resize(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                                 std::uintptr_t ret_addr) noexcept {
  MutexLock lock(mutex_);
  return child_.raw_resize(memory, len, alignment, new_len, ret_addr);
}

void* ThreadSafeAllocator::remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                                 std::uintptr_t ret_addr) noexcept {
  MutexLock lock(mutex_);
  return child_.raw_remap(memory, len, alignment, new_len, ret_addr);
}

void ThreadSafeAllocator::free(void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  MutexLock lock(mutex_);
  child_.raw_free(memory, len, alignment, ret_addr);
}

}  // namespace zheap
