#include <zheap/testing_allocator.hpp>

namespace zheap {

Allocator TestingAllocator::allocator() noexcept { return Allocator(this, &vtable_for<TestingAllocator>); }

std::size_t TestingAllocator::leaked_blocks() const noexcept {
  MutexLock lock(mutex_);
  return live_.size();
}

std::size_t TestingAllocator::leaked_bytes() const noexcept {
  MutexLock lock(mutex_);
  return live_.total_bytes();
}

std::size_t TestingAllocator::invalid_calls() const noexcept {
  MutexLock lock(mutex_);
  return invalid_calls_;
}

void TestingAllocator::release_leaked_blocks() noexcept {
  MutexLock lock(mutex_);
  // Erasing while iterating would shift entries under the loop: copy out a batch, then
  // erase and free it, until none is left.
  constexpr std::size_t batch_size = 64;
  LiveBlockTable::Block batch[batch_size];
  while (live_.size() != 0) {
    std::size_t taken = 0;
    live_.for_each([&](const LiveBlockTable::Block& b) {
      if (taken < batch_size) batch[taken++] = b;
    });
    for (std::size_t i = 0; i < taken; ++i) {
      live_.erase(batch[i].address);
      child_.raw_free(batch[i].address, batch[i].len, batch[i].alignment, 0);
    }
  }
}

bool TestingAllocator::is_live(const void* memory) noexcept {
  MutexLock lock(mutex_);
  if (live_.find(memory) != nullptr) return true;
  invalid_calls_ += 1;
  return false;
}

void* TestingAllocator::alloc(std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  void* memory = child_.raw_alloc(len, alignment, ret_addr);
  if (memory == nullptr) return nullptr;
  bool recorded;
  {
    MutexLock lock(mutex_);
    recorded = live_.insert(memory, len, alignment);
  }
  if (!recorded) {  // a block it cannot track would be a false leak report later
    child_.raw_free(memory, len, alignment, ret_addr);
    return nullptr;
  }
  return memory;
}

bool TestingAllocator::resize(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                              std::uintptr_t ret_addr) noexcept {
  if (!is_live(memory)) return false;
  if (!child_.raw_resize(memory, len, alignment, new_len, ret_addr)) return false;
  MutexLock lock(mutex_);
  live_.set_len(memory, new_len);
  return true;
}

void* TestingAllocator::remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                              std::uintptr_t ret_addr) noexcept {
  if (!is_live(memory)) return nullptr;
  void* moved = child_.raw_remap(memory, len, alignment, new_len, ret_addr);
  if (moved == nullptr) return nullptr;
  MutexLock lock(mutex_);
  if (moved == memory) {
    live_.set_len(memory, new_len);
  } else {
    live_.erase(memory);
    // Erasing made room, so this insert cannot need to grow the table.
    live_.insert(moved, new_len, alignment);
  }
  return moved;
}

void TestingAllocator::free(void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
  {
    MutexLock lock(mutex_);
    if (!live_.erase(memory)) {
      invalid_calls_ += 1;
      return;
    }
  }
  child_.raw_free(memory, len, alignment, ret_addr);
}

}  // namespace zheap
