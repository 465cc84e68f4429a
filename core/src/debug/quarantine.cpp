#include "debug/quarantine.hpp"

#include "debug/thread_slot.hpp"
#include "os/os.hpp"

#include <cstring>

namespace zheap::debug {

Quarantine::~Quarantine() {
  if (ring_ != nullptr) os::unmap(ring_, kCapacity * sizeof(Entry));
}

std::size_t Quarantine::add_to_batch(Entry entry, Entry* full) noexcept {
  Batch& batch = batches_[thread_slot()];
  MutexLock guard(batch.lock);
  // Reserved before the entry is in: the ring never counts on bytes a batch holds.
  if (batch.count == 0) reserved_.fetch_add(batch_bytes_, std::memory_order_relaxed);
  batch.entries[batch.count++] = entry;
  batch.bytes += entry.bytes;
  if (batch.count < kBatchEntries && batch.bytes < batch_bytes_) return 0;
  return empty_batch_locked(batch, full);
}

std::size_t Quarantine::empty_batch_locked(Batch& batch, Entry* out) noexcept {
  const std::size_t count = batch.count;
  std::memcpy(out, batch.entries, count * sizeof(Entry));
  batch.count = 0;
  batch.bytes = 0;
  return count;
}

bool Quarantine::map_ring_locked() noexcept {
  if (ring_ == nullptr) ring_ = static_cast<Entry*>(os::map(kCapacity * sizeof(Entry)));
  return ring_ != nullptr;
}

bool Quarantine::map_ring() noexcept {
  MutexLock guard(lock_);
  return map_ring_locked();
}

std::size_t Quarantine::move_to_ring(Batch& batch, Entry* evicted) noexcept {
  // Another thread's batch may hold an entry its thread has not poisoned yet: it must not
  // come back to us for eviction, as it would when the ring cannot be mapped.
  if (!map_ring()) return 0;
  Entry moving[kBatchEntries];
  std::size_t count;
  {
    MutexLock guard(batch.lock);
    count = empty_batch_locked(batch, moving);
  }
  if (count == 0) return 0;
  return take_batch(moving, count, evicted);
}

// `entries`: a batch copied out of its slot, which had reserved batch_bytes_.
std::size_t Quarantine::take_batch(const Entry* entries, std::size_t count, Entry* evicted) noexcept {
  MutexLock guard(lock_);
  reserved_.fetch_sub(batch_bytes_, std::memory_order_relaxed);
  if (!map_ring_locked()) {  // no memory for the ring: nothing is held, all leave at once
    std::memcpy(evicted, entries, count * sizeof(Entry));
    return count;
  }
  std::size_t out = 0;
  while (count_ + count > kCapacity) pop_locked(&evicted[out++]);  // room first: the oldest leave early
  for (std::size_t i = 0; i < count; ++i) {
    ring_[(head_ + count_) & (kCapacity - 1)] = entries[i];
    ++count_;
    bytes_ += entries[i].bytes;
  }
  return out + pop_excess_locked(evicted + out, kMaxEvicted - out);
}

bool Quarantine::pop_locked(Entry* out) noexcept {
  if (count_ == 0) return false;
  *out = ring_[head_];
  head_ = (head_ + 1) & (kCapacity - 1);
  --count_;
  bytes_ -= out->bytes;
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
