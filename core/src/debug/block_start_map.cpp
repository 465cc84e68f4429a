#include "debug/block_start_map.hpp"

#include "os/os.hpp"

namespace zheap::debug {

BlockStartMap::~BlockStartMap() {
  Root* root = root_.load(std::memory_order_acquire);
  if (root == nullptr) return;
  for (auto& leaf : root->leaves)
    if (std::uint64_t* words = leaf.load(std::memory_order_relaxed)) os::unmap(words, kLeafBytes);
  os::unmap(root, sizeof(Root));
}

namespace {
// What `slot` points to, or, when it is null, a fresh zero-filled mapping of `bytes`
// published there with compare-and-swap (a thread that loses the race unmaps its own and
// takes the winner's); null when none can be mapped.
template <class T>
T* published_or_mapped(std::atomic<T*>& slot, std::size_t bytes) noexcept {
  T* current = slot.load(std::memory_order_acquire);
  if (current != nullptr) return current;
  auto* fresh = static_cast<T*>(os::map(bytes));
  if (fresh == nullptr) return nullptr;
  if (slot.compare_exchange_strong(current, fresh, std::memory_order_acq_rel, std::memory_order_acquire)) return fresh;
  os::unmap(fresh, bytes);
  return current;
}
}  // namespace

BlockStartMap::Root* BlockStartMap::root_or_map() noexcept { return published_or_mapped(root_, sizeof(Root)); }

std::uint64_t* BlockStartMap::leaf_or_map(Root* root, std::size_t index) noexcept {
  return published_or_mapped(root->leaves[index], kLeafBytes);
}

bool BlockStartMap::mark(std::uintptr_t address) noexcept {
  if (!mappable(address)) return false;
  Root* root = root_or_map();
  if (root == nullptr) return false;
  const std::size_t index = leaf_index(address);
  std::uint64_t* leaf = leaf_or_map(root, index);
  if (leaf == nullptr) return false;
  // Widen the leaf's bounds first (rarely: blocks mostly land inside them already), so
  // that an enumeration, which runs while no mark changes, reads every marked bit.
  const std::size_t after = word_index(address) + 1;  // both bounds are stored plus one: 0 is "none"
  std::size_t first = root->first_plus_one[index].load(std::memory_order_relaxed);
  while ((first == 0 || after < first) &&
         !root->first_plus_one[index].compare_exchange_weak(first, after, std::memory_order_relaxed)) {
  }
  std::size_t end = root->end[index].load(std::memory_order_relaxed);
  while (after > end && !root->end[index].compare_exchange_weak(end, after, std::memory_order_relaxed)) {
  }
  *word_of(leaf, address) |= bit_of(address);
  return true;
}

std::size_t BlockStartMap::mappings(AddressRange* out, std::size_t max) const noexcept {
  const Root* root = root_.load(std::memory_order_acquire);
  if (root == nullptr) return 0;
  std::size_t count = 0;
  const auto add = [&](const void* begin, std::size_t bytes) {
    const auto start = reinterpret_cast<std::uintptr_t>(begin);
    if (count < max) out[count] = {start, start + bytes};
    ++count;
  };
  add(root, sizeof(Root));
  for (const auto& leaf : root->leaves)
    if (const std::uint64_t* words = leaf.load(std::memory_order_acquire)) add(words, kLeafBytes);
  return count;
}

}  // namespace zheap::debug
