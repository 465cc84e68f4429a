// FrameRuleCache: return address -> FrameRule, a fixed-size lock-free hash table.
//
// Each slot is two atomic words, {key, rule}; a key is the address tagged with the cache's
// generation in bits 48-62 (user-space addresses fit in 47). A slot is written once:
// claimed by a CAS of its key from 0 to (key | kPending), then the rule is stored, then
// the key is published with release order. A reader that sees its key (acquire)
// therefore sees the finished rule; one that sees the pending form treats the slot as a
// miss and computes the rule itself. Slots are never reused, so a key never changes under
// a reader and no lock is needed on either side.
//
// invalidate() (for dlclose: a library mapped later at the same addresses has other
// code) moves to the next generation: older keys stop matching and merely occupy slots.
//
// Full table (more distinct return addresses than kSlots / 2 in practice, the probe limit
// reached): lookups still work, new addresses are simply not cached (each capture then
// re-reads their CFI: slower, still correct).
//
// Memory: kSlots * 16 bytes, mmap'd on first use (1 MiB virtual, touched as it fills).
// One process-wide table: rules belong to code addresses, which all threads share.
#pragma once

#include "debug/frame_rule.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace zheap::debug {

class FrameRuleCache {
 public:
  static constexpr std::size_t kSlots = std::size_t{1} << 16;
  static constexpr std::size_t kMaxProbes = 32;

  constexpr FrameRuleCache() noexcept = default;

  // The rule at `return_address`: cached, or found with find_frame_rule() and cached.
  FrameRule rule_at(std::uintptr_t return_address) noexcept {
    std::uint64_t bits;
    if (lookup(return_address, &bits)) return FrameRule::unpack(bits);
    return rule_at_slow(return_address);
  }

  // The same, packed (FrameRule::pack()), for the walker.
  std::uint64_t packed_rule_at(std::uintptr_t return_address) noexcept {
    std::uint64_t bits;
    if (lookup(return_address, &bits)) return bits;
    return rule_at_slow(return_address).pack();
  }

  // The hit path, inline (it runs once per frame of every capture): the packed rule of
  // `return_address` when the cache holds it.
  bool lookup(std::uintptr_t return_address, std::uint64_t* bits) const noexcept {
    const Slot* table = slots_.load(std::memory_order_acquire);
    if (table == nullptr) return false;
    const std::uint64_t wanted = return_address | tag();
    std::size_t index = slot_index(return_address);
    for (std::size_t probe = 0; probe < kMaxProbes; ++probe, index = (index + 1) & (kSlots - 1)) {
      const std::uint64_t key = table[index].key.load(std::memory_order_acquire);
      if (key == wanted) {
        *bits = table[index].rule.load(std::memory_order_relaxed);
        return true;
      }
      if (key == 0) return false;
    }
    return false;
  }

  // Forgets every rule (they stay in memory but no longer match). For dlclose.
  void invalidate() noexcept {
    generation_.store((generation_.load(std::memory_order_relaxed) + 1) & kGenerationMask,
                      std::memory_order_release);
  }

  // Changes whenever invalidate() is called: anything derived from this cache's rules
  // (the stack walker's memo of the previous capture) is stale once it moves.
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

  // How many addresses hold a rule of this generation (for tests; walks the table).
  std::size_t cached_count() const noexcept;

 private:
  struct Slot {
    std::atomic<std::uint64_t> key;
    std::atomic<std::uint64_t> rule;
  };
  static constexpr std::uint64_t kPending = std::uint64_t{1} << 63;
  static constexpr unsigned kGenerationShift = 48;
  static constexpr std::uint64_t kGenerationMask = (std::uint64_t{1} << 15) - 1;
  static constexpr std::uintptr_t kAddressLimit = std::uintptr_t{1} << 47;

  std::uint64_t tag() const noexcept {
    return generation_.load(std::memory_order_acquire) << kGenerationShift;
  }

  static std::size_t slot_index(std::uintptr_t address) noexcept {
    // Fibonacci hashing: return addresses cluster, the multiply spreads their low bits.
    return static_cast<std::size_t>((address * 0x9E3779B97F4A7C15ull) >> 48) & (kSlots - 1);
  }
  Slot* slots() noexcept;
  FrameRule rule_at_slow(std::uintptr_t return_address) noexcept;

  std::atomic<Slot*> slots_{nullptr};
  std::atomic<std::uint64_t> generation_{0};
};

// The process's cache, constinit.
FrameRuleCache& frame_rule_cache() noexcept;

}  // namespace zheap::debug
