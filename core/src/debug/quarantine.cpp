#include "debug/quarantine.hpp"

#include "debug/thread_slot.hpp"
#include "os/os.hpp"

#include <cstring>

namespace zheap::debug {

Quarantine::~Quarantine() {
  if (ring_ != nullptr) os::unmap(ring_, kCapacity * sizeof(Entry));
}

Quarantine::Added Quarantine::add_to_batch(const Entry& entry, Entry* evicted) noexcept {
  Batch& batch = batches_[thread_slot()];
  MutexLock guard(batch.lock);
  if (batch.count == kBatchEntries) [[unlikely]] {
    // Due already, and its thread has not moved it yet (a slot shared by threads): past
    // the batch, straight to the ring's end, which leaves first only what is oldest.
    MutexLock ring_guard(lock_);
    if (!map_ring_locked()) return {false, true, false};
    const bool evicted_one = count_ == kCapacity && pop_locked(evicted);
    push_locked(entry);
    return {true, true, evicted_one};
  }
  // Reserved before the entry is in: the ring never counts on bytes a batch holds.
  if (batch.count == 0) reserved_.fetch_add(batch_bytes_, std::memory_order_relaxed);
  batch.entries[batch.count++] = entry;
  batch.bytes += entry.base_len;
  return {true, batch.count == kBatchEntries || batch.bytes >= batch_bytes_, false};
}

std::size_t Quarantine::move_batch(Entry* evicted) noexcept {
  Batch& batch = batches_[thread_slot()];
  MutexLock guard(batch.lock);
  return move_to_ring_locked(batch, evicted, true);
}

std::size_t Quarantine::empty_batch_locked(Batch& batch, Entry* out) noexcept {
  const std::size_t count = batch.count;
  if (count == 0) return 0;
  std::memcpy(static_cast<void*>(out), batch.entries, count * sizeof(Entry));
  batch.count = 0;
  batch.bytes = 0;
  reserved_.fetch_sub(batch_bytes_, std::memory_order_relaxed);
  return count;
}

bool Quarantine::map_ring_locked() noexcept {
  if (ring_ == nullptr) ring_ = static_cast<Entry*>(os::map(kCapacity * sizeof(Entry)));
  return ring_ != nullptr;
}

std::size_t Quarantine::move_to_ring_locked(Batch& batch, Entry* evicted, bool leave_when_unmapped) noexcept {
  if (batch.count == 0) return 0;  // moved on already (by a thread sharing the slot, or a flush)
  MutexLock guard(lock_);
  if (!map_ring_locked()) {  // no memory for the ring: nothing is held
    return leave_when_unmapped ? empty_batch_locked(batch, evicted) : 0;
  }
  const std::size_t count = batch.count;
  std::size_t out = 0;
  while (count_ + count > kCapacity) pop_locked(&evicted[out++]);  // room first: the oldest leave early
  for (std::size_t i = 0; i < count; ++i) push_locked(batch.entries[i]);
  batch.count = 0;
  batch.bytes = 0;
  reserved_.fetch_sub(batch_bytes_, std::memory_order_relaxed);
  return out + pop_excess_locked(evicted + out, kMaxEvicted - out);
}

void Quarantine::push_locked(const Entry& entry) noexcept {
  ring_[(head_ + count_) & (kCapacity - 1)] = entry;
  ++count_;
  bytes_ += entry.base_len;
}

bool Quarantine::pop_locked(Entry* out) noexcept {
  if (count_ == 0) return false;
  *out = ring_[head_];
  head_ = (head_ + 1) & (kCapacity - 1);
  --count_;
  bytes_ -= out->base_len;
  return true;
}

std::size_t Quarantine::pop_excess_locked(Entry* out, std::size_t max) noexcept {
  // What the batches reserve is part of the limit: the ring keeps only the rest.
  std::size_t popped = 0;
  while (popped < max && bytes_ + reserved_.load(std::memory_order_relaxed) > max_bytes_ && pop_locked(&out[popped]))
    ++popped;
  return popped;
}

std::size_t Quarantine::pop_excess(Entry* out, std::size_t max) noexcept {
  MutexLock guard(lock_);
  return pop_excess_locked(out, max);
}

bool Quarantine::pop_any(Entry* out) noexcept {
  MutexLock guard(lock_);
  return pop_locked(out);
}

namespace {
bool contains(const BlockRecord& record, std::uintptr_t address) noexcept {
  const std::size_t extent = record.size == 0 ? 1 : record.size;
  return address >= record.address && address - record.address < extent;
}
}  // namespace

template <class Match>
bool Quarantine::search(Match&& match, Entry* out) noexcept {
  // Batches first, then the ring: an entry moves only that way, under both locks, so one
  // that stays quarantined throughout is seen where it is at the moment it is looked for.
  for (Batch& batch : batches_) {
    MutexLock guard(batch.lock);
    for (std::size_t i = 0; i < batch.count; ++i) {
      if (match(batch.entries[i])) {
        *out = batch.entries[i];
        return true;
      }
    }
  }
  MutexLock guard(lock_);
  for (std::size_t i = 0; i < count_; ++i) {
    const Entry& entry = ring_[(head_ + i) & (kCapacity - 1)];
    if (match(entry)) {
      *out = entry;
      return true;
    }
  }
  return false;
}

bool Quarantine::find(std::uintptr_t address, Entry* out) noexcept {
  return search([address](const Entry& entry) { return entry.address == address; }, out);
}

bool Quarantine::find_containing(std::uintptr_t address, Entry* out) noexcept {
  return search([address](const Entry& entry) { return contains(entry, address); }, out);
}

AddressRange Quarantine::mapping() const noexcept {
  auto& self = const_cast<Quarantine&>(*this);
  MutexLock guard(self.lock_);
  const auto begin = reinterpret_cast<std::uintptr_t>(ring_);
  return ring_ == nullptr ? AddressRange{} : AddressRange{begin, begin + kCapacity * sizeof(Entry)};
}

std::size_t Quarantine::bytes() const noexcept {
  auto& self = const_cast<Quarantine&>(*this);
  std::size_t held = 0;
  for (Batch& batch : self.batches_) {
    MutexLock guard(batch.lock);
    held += batch.bytes;
  }
  MutexLock guard(self.lock_);
  return held + bytes_;
}

void Quarantine::lock() noexcept {
  for (Batch& batch : batches_) batch.lock.lock();
  lock_.lock();
}

void Quarantine::unlock() noexcept {
  lock_.unlock();
  for (Batch& batch : batches_) batch.lock.unlock();
}

}  // namespace zheap::debug
