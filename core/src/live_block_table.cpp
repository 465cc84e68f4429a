#include <zheap/live_block_table.hpp>

#include <bit>

#include "os/os.hpp"

namespace zheap {

namespace {
// One page of slots to start with (170 Blocks fit; the capacity is the power of two below).
constexpr std::size_t initial_capacity = 128;
}  // namespace

LiveBlockTable::~LiveBlockTable() {
  if (slots_ != nullptr) os::unmap(slots_, capacity_ * sizeof(Block));
}

std::size_t LiveBlockTable::home_slot(const void* address) const noexcept {
  // Fibonacci hashing: block addresses share their low bits (alignment) and often their
  // high bits (one mapping), so multiply to mix the middle bits into the top and take those.
  const auto key = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(address));
  const unsigned shift = 64 - static_cast<unsigned>(std::countr_zero(capacity_));
  return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift);
}

std::size_t LiveBlockTable::find_slot(const void* address) const noexcept {
  if (capacity_ == 0 || address == nullptr) return capacity_;
  const std::size_t mask = capacity_ - 1;
  for (std::size_t i = home_slot(address);; i = (i + 1) & mask) {
    if (slots_[i].address == address) return i;
    if (slots_[i].address == nullptr) return capacity_;
  }
}

bool LiveBlockTable::grow() noexcept {
  const std::size_t new_capacity = capacity_ == 0 ? initial_capacity : capacity_ * 2;
  auto* new_slots = static_cast<Block*>(os::map(new_capacity * sizeof(Block)));  // zero-filled: all empty
  if (new_slots == nullptr) return false;
  Block* old_slots = slots_;
  const std::size_t old_capacity = capacity_;
  slots_ = new_slots;
  capacity_ = new_capacity;
  const std::size_t mask = capacity_ - 1;
  for (std::size_t i = 0; i < old_capacity; ++i) {
    if (old_slots[i].address == nullptr) continue;
    std::size_t j = home_slot(old_slots[i].address);
    while (slots_[j].address != nullptr) j = (j + 1) & mask;
    slots_[j] = old_slots[i];
  }
  if (old_slots != nullptr) os::unmap(old_slots, old_capacity * sizeof(Block));
  return true;
}

bool LiveBlockTable::insert(void* address, std::size_t len, Alignment alignment) noexcept {
  if (address == nullptr) return false;
  if ((count_ + 1) * 2 > capacity_ && !grow()) return false;
  const std::size_t mask = capacity_ - 1;
  std::size_t i = home_slot(address);
  while (slots_[i].address != nullptr) i = (i + 1) & mask;
  slots_[i] = Block{address, len, alignment};
  count_ += 1;
  total_bytes_ += len;
  return true;
}

const LiveBlockTable::Block* LiveBlockTable::find(const void* address) const noexcept {
  const std::size_t i = find_slot(address);
  return i == capacity_ ? nullptr : &slots_[i];
}

bool LiveBlockTable::set_len(const void* address, std::size_t new_len) noexcept {
  const std::size_t i = find_slot(address);
  if (i == capacity_) return false;
  total_bytes_ = total_bytes_ - slots_[i].len + new_len;
  slots_[i].len = new_len;
  return true;
}

bool LiveBlockTable::erase(const void* address) noexcept {
  std::size_t hole = find_slot(address);
  if (hole == capacity_) return false;
  total_bytes_ -= slots_[hole].len;
  count_ -= 1;
  // Backward-shift deletion: move later entries of the probe run into the hole when
  // their home slot does not lie (cyclically) between the hole and where they sit.
  const std::size_t mask = capacity_ - 1;
  for (std::size_t i = (hole + 1) & mask; slots_[i].address != nullptr; i = (i + 1) & mask) {
    const std::size_t home = home_slot(slots_[i].address);
    const bool home_after_hole = ((i - home) & mask) < ((i - hole) & mask);
    if (home_after_hole) continue;
    slots_[hole] = slots_[i];
    hole = i;
  }
  slots_[hole].address = nullptr;
  return true;
}

}  // namespace zheap
