#include "debug/quarantine.hpp"

#include "os/os.hpp"

namespace zheap::debug {

Quarantine::~Quarantine() {
  if (ring_ != nullptr) os::unmap(ring_, kCapacity * sizeof(Entry));
}

bool Quarantine::push(Entry entry) noexcept {
  if (entry.bytes > max_bytes_) return false;
  MutexLock guard(lock_);
  if (ring_ == nullptr) {
    ring_ = static_cast<Entry*>(os::map(kCapacity * sizeof(Entry)));
    if (ring_ == nullptr) return false;
  }
  if (count_ == kCapacity) return false;  // the caller pops the excess first; full only in a race
  ring_[(head_ + count_) & (kCapacity - 1)] = entry;
  ++count_;
  bytes_ += entry.bytes;
  return true;
}

bool Quarantine::pop_locked(Entry* out) noexcept {
  if (count_ == 0) return false;
  *out = ring_[head_];
  head_ = (head_ + 1) & (kCapacity - 1);
  --count_;
  bytes_ -= out->bytes;
  return true;
}

bool Quarantine::pop_excess(Entry* out) noexcept {
  MutexLock guard(lock_);
  if (bytes_ <= max_bytes_ && count_ < kCapacity) return false;
  return pop_locked(out);
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
  MutexLock guard(self.lock_);
  return bytes_;
}

}  // namespace zheap::debug
