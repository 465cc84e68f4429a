// BlockStartMap: which 16-byte granules of the address space hold the first user byte of
// a block the debug allocator tracks.
//
// Why a map and not a hash table: the debug allocator keeps each block's record inside
// the block, just before its left redzone (block_table.hpp). What it still needs on the
// side is an answer to "is this pointer the start of one of our live blocks?", safe to ask
// of any pointer (a stack address, a global, a block of glibc's) before anything reads
// the memory in front of it, and a way to enumerate every live block for the leak scan.
// A bit per granule answers both. Neighbouring blocks have neighbouring bits, so a
// thread allocating and freeing in one region of memory touches a few lines of the map,
// where the hash table it replaces touched a random line of a shared array per block
// (on the containers workload its probes were 15% of the time, and its lines bounced
// between cores on larson).
//
// Layout: one bit per granule, so the map is 1/128 of the span of memory blocks have been
// placed in (16 MiB of quarantined and live blocks: 128 KiB, which stays in cache; a byte
// per granule, 1 MiB there, made larson with one thread 15% slower, every allocation's
// store to it missing), in 64-bit words that each cover 1 KiB; in leaves of 8 MiB that
// each cover 1 GiB of address space, found through a root of 131072 leaf pointers (47-bit
// user addresses). The root and the leaves are mapped when first needed; nothing is
// mapped for address space no block was ever placed in. Each leaf remembers the lowest
// and highest word ever marked, so an enumeration reads only that part of it.
//
// Thread safety: the words are read and written plainly, so the caller must order every
// mark(), unmark() and marked() of addresses in one 1 KiB-aligned KiB (the block table
// does: its shard locks are per 64 KiB stretch). Leaves and their bounds are published
// with compare-and-swap, so addresses elsewhere may be marked concurrently.
// for_each_marked() must run while no mark changes.
#pragma once

#include <zheap/debug_allocator.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace zheap::debug {

class BlockStartMap {
 public:
  static constexpr unsigned kGranuleShift = 4;
  static constexpr std::size_t kGranule = std::size_t{1} << kGranuleShift;
  static constexpr unsigned kLeafSpanShift = 30;
  static constexpr unsigned kAddressBits = 47;
  static constexpr std::size_t kLeafCount = std::size_t{1} << (kAddressBits - kLeafSpanShift);
  static constexpr unsigned kWordShift = kGranuleShift + 6;  // a word's bits cover 1 KiB
  static constexpr std::size_t kLeafWords = std::size_t{1} << (kLeafSpanShift - kWordShift);
  static constexpr std::size_t kLeafBytes = kLeafWords * sizeof(std::uint64_t);

  constexpr BlockStartMap() noexcept = default;
  ~BlockStartMap();
  BlockStartMap(const BlockStartMap&) = delete;
  BlockStartMap& operator=(const BlockStartMap&) = delete;

  // Whether `address` can be marked at all: granule-aligned, below 2^47, not null.
  static bool mappable(std::uintptr_t address) noexcept {
    return address != 0 && (address & (kGranule - 1)) == 0 && (address >> kAddressBits) == 0;
  }

  // False when `address` is not mappable() or its leaf cannot be mapped (out of memory).
  bool mark(std::uintptr_t address) noexcept;
  // `address` was marked.
  void unmark(std::uintptr_t address) noexcept { *word_of(leaf_of(address), address) &= ~bit_of(address); }
  bool marked(std::uintptr_t address) const noexcept {
    if (!mappable(address)) return false;
    const std::uint64_t* leaf = leaf_of(address);
    return leaf != nullptr && (*word_of(leaf, address) & bit_of(address)) != 0;
  }
  // A hint, no ordering needed: starts loading the word of `address`.
  void prefetch(std::uintptr_t address) const noexcept {
    if (!mappable(address)) return;
    if (const std::uint64_t* leaf = leaf_of(address)) __builtin_prefetch(word_of(leaf, address), 1);
  }

  // visit(address) for every marked address, in ascending order.
  template <class Visit>
  void for_each_marked(Visit&& visit) const noexcept {
    const Root* root = root_.load(std::memory_order_acquire);
    if (root == nullptr) return;
    for (std::size_t l = 0; l < kLeafCount; ++l) {
      const std::uint64_t* leaf = root->leaves[l].load(std::memory_order_acquire);
      if (leaf == nullptr) continue;
      const std::size_t first_plus_one = root->first_plus_one[l].load(std::memory_order_relaxed);
      if (first_plus_one == 0) continue;
      const std::size_t end = root->end[l].load(std::memory_order_relaxed);
      const std::uintptr_t leaf_base = static_cast<std::uintptr_t>(l) << kLeafSpanShift;
      for (std::size_t w = first_plus_one - 1; w < end; ++w) {
        for (std::uint64_t word = leaf[w]; word != 0; word &= word - 1) {
          const auto bit = static_cast<std::uintptr_t>(__builtin_ctzll(word));
          visit(leaf_base + (w << kWordShift) + (bit << kGranuleShift));
        }
      }
    }
  }

  // The map's own mappings (they hold no pointers; a leak scan need not read them), at
  // most `max` into `out`; returns how many there are.
  std::size_t mappings(AddressRange* out, std::size_t max) const noexcept;

 private:
  struct Root {
    std::atomic<std::uint64_t*> leaves[kLeafCount];
    // Per leaf: the lowest word ever marked plus one, and one past the highest (0 for
    // both: none yet), widened with compare-and-swap by mark().
    std::atomic<std::size_t> first_plus_one[kLeafCount];
    std::atomic<std::size_t> end[kLeafCount];
  };

  static std::size_t leaf_index(std::uintptr_t address) noexcept { return address >> kLeafSpanShift; }
  static std::size_t word_index(std::uintptr_t address) noexcept {
    return (address & ((std::uintptr_t{1} << kLeafSpanShift) - 1)) >> kWordShift;
  }
  static std::uint64_t bit_of(std::uintptr_t address) noexcept {
    return std::uint64_t{1} << ((address >> kGranuleShift) & 63);
  }
  static std::uint64_t* word_of(const std::uint64_t* leaf, std::uintptr_t address) noexcept {
    return const_cast<std::uint64_t*>(leaf) + word_index(address);
  }
  std::uint64_t* leaf_of(std::uintptr_t address) const noexcept {
    const Root* root = root_.load(std::memory_order_acquire);
    return root == nullptr ? nullptr : root->leaves[leaf_index(address)].load(std::memory_order_acquire);
  }
  Root* root_or_map() noexcept;
  std::uint64_t* leaf_or_map(Root* root, std::size_t index) noexcept;

  std::atomic<Root*> root_{nullptr};
};

}  // namespace zheap::debug
