// LiveBlockTable: the blocks an allocator wrapper has handed out and not yet seen freed.
//
// For: the wrappers that check what their users do with memory (TestingAllocator,
// ValidatingAllocator): address -> (length, alignment) of each live block.
// Layout: open addressing with linear probing in one array of Blocks, mapped straight
// from the kernel (os::map), so it never calls malloc and may run under the shim.
// It holds at most half its slots full and doubles when it gets there; deletion shifts
// the following entries back (no tombstones), so lookups stay short however many blocks
// come and go. Thread safety: none; its owners lock around it.
// Refuses: nullptr as a key; growing when the kernel has no memory (insert -> false).
#pragma once

#include <zheap/alignment.hpp>

#include <cstddef>
#include <cstdint>

namespace zheap {

class LiveBlockTable {
 public:
  struct Block {
    void* address = nullptr;  // nullptr: the slot is empty
    std::size_t len = 0;
    Alignment alignment = Alignment::from_log2(0);
  };

  constexpr LiveBlockTable() noexcept = default;
  ~LiveBlockTable();
  LiveBlockTable(const LiveBlockTable&) = delete;
  LiveBlockTable& operator=(const LiveBlockTable&) = delete;

  // Records a block at `address` (which must not be recorded yet). false when the table
  // could not grow; then nothing was recorded.
  bool insert(void* address, std::size_t len, Alignment alignment) noexcept;
  // The block recorded at exactly `address`, or nullptr.
  const Block* find(const void* address) const noexcept;
  // Changes the recorded length of the block at `address`; false if there is none.
  bool set_len(const void* address, std::size_t new_len) noexcept;
  // Forgets the block at `address`; false if there was none.
  bool erase(const void* address) noexcept;

  std::size_t size() const noexcept { return count_; }
  std::size_t total_bytes() const noexcept { return total_bytes_; }

  // Calls f(const Block&) for every recorded block, in no particular order. `f` must
  // not change the table.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < capacity_; ++i)
      if (slots_[i].address != nullptr) f(static_cast<const Block&>(slots_[i]));
  }

 private:
  std::size_t home_slot(const void* address) const noexcept;
  std::size_t find_slot(const void* address) const noexcept;  // capacity_ when absent
  bool grow() noexcept;

  Block* slots_ = nullptr;
  std::size_t capacity_ = 0;  // a power of two, or 0 before the first insert
  std::size_t count_ = 0;
  std::size_t total_bytes_ = 0;
};

}  // namespace zheap
