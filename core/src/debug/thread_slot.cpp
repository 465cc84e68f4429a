#include "debug/thread_slot.hpp"

#include <atomic>

namespace zheap::debug {

namespace {
// The slot plus one; 0 until the thread first asks.
[[gnu::tls_model("initial-exec")]] constinit thread_local std::uint32_t slot_plus_one = 0;
constinit std::atomic<std::uint32_t> next_slot{0};
}  // namespace

std::size_t thread_slot() noexcept {
  std::uint32_t slot = slot_plus_one;
  if (slot == 0) [[unlikely]] {
    slot = next_slot.fetch_add(1, std::memory_order_relaxed) % kThreadSlots + 1;
    slot_plus_one = slot;
  }
  return slot - 1;
}

}  // namespace zheap::debug
