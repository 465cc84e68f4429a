#include "debug/stack_depot.hpp"

#include "os/os.hpp"

#include <bit>

namespace zheap::debug {

namespace {
// Never destroyed: frees during and after static destructors still record stacks.
union NeverDestroyedDepot {
  StackDepot depot;
  constexpr NeverDestroyedDepot() noexcept : depot() {}
  ~NeverDestroyedDepot() {}
};
constinit NeverDestroyedDepot process_depot;
constexpr std::size_t kRecordHeaderWords = 2;  // hash, depth
}  // namespace

StackDepot& stack_depot() noexcept { return process_depot.depot; }

StackDepot::~StackDepot() {
  std::atomic<StackId>* table = table_.load(std::memory_order_acquire);
  if (table == nullptr) return;
  os::unmap(table, table_slots() * sizeof(std::atomic<StackId>));
  os::unmap(index_, (max_stacks_ + 1) * sizeof(std::uint64_t));
  os::unmap(store_, (max_frames_ + kRecordHeaderWords * max_stacks_) * sizeof(std::uint64_t));
}

std::size_t StackDepot::table_slots() const noexcept { return std::bit_ceil(max_stacks_ * 2); }

std::uint64_t StackDepot::hash_frames(std::span<const std::uintptr_t> frames) noexcept {
  // A multiply-shift mix per frame (wyhash-like constants); equal stacks must collide,
  // different ones rarely do, and a collision costs only a comparison. Two chains take the
  // frames in turn, so that two multiplications are in flight instead of one chain of 30
  // (this runs twice per allocation and free); they are mixed together at the end.
  constexpr std::uint64_t kMul = 0xBF58476D1CE4E5B9ull;
  std::uint64_t even = 0x9E3779B97F4A7C15ull ^ frames.size();
  std::uint64_t odd = 0x94D049BB133111EBull;
  const std::size_t n = frames.size();
  std::size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    even = (even ^ frames[i]) * kMul;
    odd = (odd ^ frames[i + 1]) * kMul;
    even ^= even >> 31;
    odd ^= odd >> 31;
  }
  if (i < n) {
    even = (even ^ frames[i]) * kMul;
    even ^= even >> 31;
  }
  std::uint64_t h = (even ^ odd) * kMul;
  h ^= h >> 31;
  return h | 1;  // never zero
}

bool StackDepot::same_stack(StackId id, std::span<const std::uintptr_t> frames, std::uint64_t hash) const noexcept {
  const std::uint64_t* record = store_ + index_[id];
  if (record[0] != hash || record[1] != frames.size()) return false;
  for (std::size_t i = 0; i < frames.size(); ++i)
    if (record[kRecordHeaderWords + i] != frames[i]) return false;
  return true;
}

StackId StackDepot::find(std::span<const std::uintptr_t> frames, std::uint64_t hash) const noexcept {
  std::atomic<StackId>* table = table_.load(std::memory_order_acquire);
  if (table == nullptr) return kNoStack;
  const std::size_t mask = table_slots() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const StackId id = table[i].load(std::memory_order_acquire);
    if (id == kNoStack) return kNoStack;  // the table never fills: at most half its slots are used
    if (same_stack(id, frames, hash)) return id;
  }
}

bool StackDepot::map_storage() noexcept {
  auto* table = static_cast<std::atomic<StackId>*>(os::map(table_slots() * sizeof(std::atomic<StackId>)));
  auto* index = static_cast<std::uint64_t*>(os::map((max_stacks_ + 1) * sizeof(std::uint64_t)));
  auto* store = static_cast<std::uint64_t*>(
      os::map((max_frames_ + kRecordHeaderWords * max_stacks_) * sizeof(std::uint64_t)));
  if (table == nullptr || index == nullptr || store == nullptr) {
    if (table != nullptr) os::unmap(table, table_slots() * sizeof(std::atomic<StackId>));
    if (index != nullptr) os::unmap(index, (max_stacks_ + 1) * sizeof(std::uint64_t));
    if (store != nullptr) os::unmap(store, (max_frames_ + kRecordHeaderWords * max_stacks_) * sizeof(std::uint64_t));
    return false;
  }
  index_ = index;
  store_ = store;
  table_.store(table, std::memory_order_release);
  return true;
}

std::size_t StackDepot::mappings(AddressRange* out, std::size_t max) const noexcept {
  const auto* table = table_.load(std::memory_order_acquire);  // index_ and store_ are set before it
  if (table == nullptr) return 0;
  const auto range = [](const void* begin, std::size_t bytes) {
    const auto start = reinterpret_cast<std::uintptr_t>(begin);
    return AddressRange{start, start + bytes};
  };
  const AddressRange ranges[3] = {
      range(table, table_slots() * sizeof(std::atomic<StackId>)),
      range(index_, (max_stacks_ + 1) * sizeof(std::uint64_t)),
      range(store_, (max_frames_ + kRecordHeaderWords * max_stacks_) * sizeof(std::uint64_t)),
  };
  for (std::size_t i = 0; i < 3 && i < max; ++i) out[i] = ranges[i];
  return 3;
}

StackId StackDepot::insert(std::span<const std::uintptr_t> frames) noexcept {
  if (frames.empty()) return kNoStack;
  const std::uint64_t hash = hash_frames(frames);
  if (StackId id = find(frames, hash); id != kNoStack) return id;

  MutexLock guard(insert_lock_);
  if (table_.load(std::memory_order_relaxed) == nullptr && !map_storage()) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return kNoStack;
  }
  if (StackId id = find(frames, hash); id != kNoStack) return id;  // inserted while we waited
  const std::size_t count = count_.load(std::memory_order_relaxed);
  const std::size_t words = kRecordHeaderWords + frames.size();
  if (count >= max_stacks_ || store_used_ + words > max_frames_ + kRecordHeaderWords * max_stacks_) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return kNoStack;
  }
  const auto id = static_cast<StackId>(count + 1);
  std::uint64_t* record = store_ + store_used_;
  record[0] = hash;
  record[1] = frames.size();
  for (std::size_t i = 0; i < frames.size(); ++i) record[kRecordHeaderWords + i] = frames[i];
  index_[id] = store_used_;
  store_used_ += words;

  std::atomic<StackId>* table = table_.load(std::memory_order_relaxed);
  const std::size_t mask = table_slots() - 1;
  std::size_t i = hash & mask;
  while (table[i].load(std::memory_order_relaxed) != kNoStack) i = (i + 1) & mask;
  table[i].store(id, std::memory_order_release);  // publishes the record and its index entry
  count_.store(count + 1, std::memory_order_release);
  return id;
}

std::span<const std::uintptr_t> StackDepot::get(StackId id) const noexcept {
  if (id == kNoStack || id > count_.load(std::memory_order_acquire)) return {};
  const std::uint64_t* record = store_ + index_[id];
  return {reinterpret_cast<const std::uintptr_t*>(record + kRecordHeaderWords), static_cast<std::size_t>(record[1])};
}

}  // namespace zheap::debug
