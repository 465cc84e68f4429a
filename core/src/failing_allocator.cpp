#include <zheap/failing_allocator.hpp>

namespace zheap {

Allocator FailingAllocator::allocator() noexcept { return Allocator(this, &vtable_for<FailingAllocator>); }

void* FailingAllocator::alloc(std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  if (alloc_index_ == options_.fail_index) {
    has_induced_failure_ = true;
    return nullptr;
  }
  void* memory = child_.raw_alloc(len, alignment, ret_addr);
  if (memory == nullptr) return nullptr;
  allocated_bytes_ += len;
  allocations_ += 1;
  alloc_index_ += 1;
  return memory;
}

void FailingAllocator::account_resize(std::size_t len, std::size_t new_len) noexcept {
  if (new_len < len)
    freed_bytes_ += len - new_len;
  else
    allocated_bytes_ += new_len - len;
  resize_index_ += 1;
}

bool FailingAllocator::resize(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                              std::uintptr_t ret_addr) noexcept {
  if (resize_index_ == options_.resize_fail_index) {
    has_induced_failure_ = true;
    return false;
  }
  if (!child_.raw_resize(memory, len, alignment, new_len, ret_addr)) return false;
  account_resize(len, new_len);
  return true;
}

void* FailingAllocator::remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                              std::uintptr_t ret_addr) noexcept {
  if (resize_index_ == options_.resize_fail_index) {
    has_induced_failure_ = true;
    return nullptr;
  }
  void* moved = child_.raw_remap(memory, len, alignment, new_len, ret_addr);
  if (moved == nullptr) return nullptr;
  account_resize(len, new_len);
  return moved;
}

void FailingAllocator::free(void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  child_.raw_free(memory, len, alignment, ret_addr);
  deallocations_ += 1;
  freed_bytes_ += len;
}

}  // namespace zheap
