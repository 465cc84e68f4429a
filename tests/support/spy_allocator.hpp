// SpyAllocator: a test double that forwards to a real allocator, records every live block
// and checks, call by call, the part of the contract a parent allocator must keep towards
// its child: free / resize / remap name a live block with exactly its length and alignment.
// It can also be told to refuse allocations or resizes, to drive out-of-memory paths.
// For tests only (uses std::map and GoogleTest).
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/c_allocator.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <map>

namespace zheap::testing {

class SpyAllocator {
 public:
  struct Block {
    std::size_t len;
    std::size_t alignment;
  };

  explicit SpyAllocator(Allocator backing = c_allocator()) : backing_(backing) {}
  SpyAllocator(const SpyAllocator&) = delete;
  SpyAllocator& operator=(const SpyAllocator&) = delete;

  Allocator allocator() { return Allocator(this, &vtable); }

  bool fail_alloc = false;
  bool fail_resize = false;

  std::size_t alloc_calls = 0;
  std::size_t resize_calls = 0;
  std::size_t free_calls = 0;

  const std::map<void*, Block>& live() const { return live_; }
  std::size_t live_blocks() const { return live_.size(); }
  std::size_t live_bytes() const {
    std::size_t total = 0;
    for (const auto& [p, block] : live_) total += block.len;
    return total;
  }

 private:
  static SpyAllocator& self(void* ctx) { return *static_cast<SpyAllocator*>(ctx); }

  void expect_live(void* memory, std::size_t len, Alignment alignment) const {
    auto it = live_.find(memory);
    if (it == live_.end()) {
      ADD_FAILURE() << "call on a block that is not live: " << memory;
      return;
    }
    EXPECT_EQ(it->second.len, len) << "length does not match the block's last successful call";
    EXPECT_EQ(it->second.alignment, alignment.bytes()) << "alignment does not match the block's";
  }

  static void* alloc(void* ctx, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
    SpyAllocator& spy = self(ctx);
    ++spy.alloc_calls;
    EXPECT_GT(len, 0u);
    if (spy.fail_alloc) return nullptr;
    void* p = spy.backing_.raw_alloc(len, alignment, ret_addr);
    if (p != nullptr) spy.live_[p] = {len, alignment.bytes()};
    return p;
  }
  static bool resize(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                     std::uintptr_t ret_addr) noexcept {
    SpyAllocator& spy = self(ctx);
    ++spy.resize_calls;
    spy.expect_live(memory, len, alignment);
    if (spy.fail_resize || !spy.backing_.raw_resize(memory, len, alignment, new_len, ret_addr)) return false;
    spy.live_[memory].len = new_len;
    return true;
  }
  static void* remap(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                     std::uintptr_t ret_addr) noexcept {
    SpyAllocator& spy = self(ctx);
    spy.expect_live(memory, len, alignment);
    if (spy.fail_resize) return nullptr;
    void* p = spy.backing_.raw_remap(memory, len, alignment, new_len, ret_addr);
    if (p == nullptr) return nullptr;
    spy.live_.erase(memory);
    spy.live_[p] = {new_len, alignment.bytes()};
    return p;
  }
  static void free(void* ctx, void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) noexcept {
    SpyAllocator& spy = self(ctx);
    ++spy.free_calls;
    spy.expect_live(memory, len, alignment);
    spy.live_.erase(memory);
    spy.backing_.raw_free(memory, len, alignment, ret_addr);
  }
  static constexpr Allocator::VTable vtable{alloc, resize, remap, free};

  Allocator backing_;
  std::map<void*, Block> live_;
};

}  // namespace zheap::testing
