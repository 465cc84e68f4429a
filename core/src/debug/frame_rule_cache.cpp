#include "debug/frame_rule_cache.hpp"

#include "os/os.hpp"

namespace zheap::debug {

namespace {
constinit FrameRuleCache process_cache;
}  // namespace

FrameRuleCache& frame_rule_cache() noexcept { return process_cache; }

FrameRuleCache::Slot* FrameRuleCache::slots() noexcept {
  Slot* table = slots_.load(std::memory_order_acquire);
  if (table != nullptr) return table;
  auto* fresh = static_cast<Slot*>(os::map(kSlots * sizeof(Slot)));  // zero-filled: every key 0
  if (fresh == nullptr) return nullptr;
  if (slots_.compare_exchange_strong(table, fresh, std::memory_order_acq_rel)) return fresh;
  os::unmap(fresh, kSlots * sizeof(Slot));  // another thread's table won
  return table;
}

FrameRule FrameRuleCache::rule_at_slow(std::uintptr_t return_address) noexcept {
  Slot* table = slots();
  if (table == nullptr || return_address == 0 || return_address >= kAddressLimit)
    return find_frame_rule(return_address);
  const std::uint64_t wanted = return_address | tag();
  FrameRule rule;  // computed at the first empty slot, at most once
  bool computed = false;
  std::size_t index = slot_index(return_address);
  for (std::size_t probe = 0; probe < kMaxProbes; ++probe, index = (index + 1) & (kSlots - 1)) {
    Slot& slot = table[index];
    std::uint64_t key = slot.key.load(std::memory_order_acquire);
    if (key == wanted) return FrameRule::unpack(slot.rule.load(std::memory_order_relaxed));
    if (key == (wanted | kPending)) return find_frame_rule(return_address);  // being filled
    if (key != 0) continue;
    if (!computed) {
      rule = find_frame_rule(return_address);
      computed = true;
    }
    if (slot.key.compare_exchange_strong(key, wanted | kPending, std::memory_order_relaxed)) {
      slot.rule.store(rule.pack(), std::memory_order_relaxed);
      slot.key.store(wanted, std::memory_order_release);
      return rule;
    }
    // Lost the slot to another address (or the same one): look at it again.
    if (key == wanted || key == (wanted | kPending)) return rule;
  }
  return computed ? rule : find_frame_rule(return_address);
}

std::size_t FrameRuleCache::cached_count() const noexcept {
  const Slot* table = slots_.load(std::memory_order_acquire);
  if (table == nullptr) return 0;
  const std::uint64_t current = tag();
  std::size_t count = 0;
  for (std::size_t i = 0; i < kSlots; ++i) {
    const std::uint64_t key = table[i].key.load(std::memory_order_acquire);
    if (key != 0 && (key & kPending) == 0 && (key & ~(kAddressLimit - 1)) == current) ++count;
  }
  return count;
}

}  // namespace zheap::debug
