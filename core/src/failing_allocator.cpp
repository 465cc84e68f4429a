#include <zheap/failing_allocator.hpp>

namespace zheap {

namespace {
FailingAllocator& self(void* ctx) noexcept { return *static_cast<FailingAllocator*>(ctx); }
}  // namespace

constinit const Allocator::VTable FailingAllocator::vtable{alloc, resize, remap, free};

Allocator FailingAllocator::allocator() noexcept { return Allocator(this, &vtable); }

void* FailingAllocator::alloc(void* ctx, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  FailingAllocator& s = self(ctx);
  if (s.alloc_index_ == s.options_.fail_index) {
    s.has_induced_failure_ = true;
    return nullptr;
  }
  void* memory = s.child_.raw_alloc(len, alignment, ret_addr);
  if (memory == nullptr) return nullptr;
  s.allocated_bytes_ += len;
  s.allocations_ += 1;
  s.alloc_index_ += 1;
  return memory;
}

void FailingAllocator::account_resize(std::size_t len, std::size_t new_len) noexcept {
  if (new_len < len)
    freed_bytes_ += len - new_len;
  else
    allocated_bytes_ += new_len - len;
  resize_index_ += 1;
}

bool FailingAllocator::resize(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                              std::uintptr_t ret_addr) noexcept {
  FailingAllocator& s = self(ctx);
  if (s.resize_index_ == s.options_.resize_fail_index) {
    s.has_induced_failure_ = true;
    return false;
  }
  if (!s.child_.raw_resize(memory, len, alignment, new_len, ret_addr)) return false;
  s.account_resize(len, new_len);
  return true;
}

void* FailingAllocator::remap(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                              std::uintptr_t ret_addr) noexcept {
  FailingAllocator& s = self(ctx);
  if (s.resize_index_ == s.options_.resize_fail_index) {
    s.has_induced_failure_ = true;
    return nullptr;
  }
  void* moved = s.child_.raw_remap(memory, len, alignment, new_len, ret_addr);
  if (moved == nullptr) return nullptr;
  s.account_resize(len, new_len);
  return moved;
}

void FailingAllocator::free(void* ctx, void* memory, std::size_t len, Alignment alignment,
                            std::uintptr_t ret_addr) noexcept {
  FailingAllocator& s = self(ctx);
  s.child_.raw_free(memory, len, alignment, ret_addr);
  s.deallocations_ += 1;
  s.freed_bytes_ += len;
}

}  // namespace zheap
