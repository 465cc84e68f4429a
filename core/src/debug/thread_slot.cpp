#include "debug/thread_slot.hpp"

#include <atomic>

namespace zheap::debug {

namespace thread_slot_detail {

[[gnu::tls_model("initial-exec")]] constinit thread_local std::uint32_t slot_plus_one = 0;

namespace {
constinit std::atomic<std::uint32_t> next_slot{0};
}  // namespace

std::uint32_t assign_slot() noexcept {
  const std::uint32_t turn = next_slot.fetch_add(1, std::memory_order_relaxed);
  // Past 2^32 threads the count wraps and a slot could come round a second time with its
  // first holder still alive; saturating instead would need a CAS loop, and no process
  // gets there.
  const std::uint32_t bits = (turn % kThreadSlots + 1) | (turn < kThreadSlots ? kExclusive : 0);
  slot_plus_one = bits;
  return bits;
}

}  // namespace thread_slot_detail
}  // namespace zheap::debug
