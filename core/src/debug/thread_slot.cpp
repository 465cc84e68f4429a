#include "debug/thread_slot.hpp"

#include <atomic>

namespace zheap::debug {

namespace {
// The slot plus one, with kExclusive set for the first kThreadSlots threads; 0 until the
// thread first asks.
[[gnu::tls_model("initial-exec")]] constinit thread_local std::uint32_t slot_plus_one = 0;
constinit std::atomic<std::uint32_t> next_slot{0};
constexpr std::uint32_t kExclusive = std::uint32_t{1} << 31;

std::uint32_t slot_bits() noexcept {
  std::uint32_t bits = slot_plus_one;
  if (bits == 0) [[unlikely]] {
    const std::uint32_t turn = next_slot.fetch_add(1, std::memory_order_relaxed);
    // Past 2^32 threads the count wraps and a slot could come round a second time with
    // its first holder still alive; saturating instead would need a CAS loop, and no
    // process gets there.
    bits = (turn % kThreadSlots + 1) | (turn < kThreadSlots ? kExclusive : 0);
    slot_plus_one = bits;
  }
  return bits;
}
}  // namespace

std::size_t thread_slot() noexcept { return (slot_bits() & ~kExclusive) - 1; }

std::size_t exclusive_thread_slot() noexcept {
  const std::uint32_t bits = slot_bits();
  return (bits & kExclusive) != 0 ? (bits & ~kExclusive) - 1 : kThreadSlots;
}

}  // namespace zheap::debug
