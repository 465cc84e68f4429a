// Allocation statistics for ZHEAP_STATS (and the bytes-in-use count ZHEAP_LIMIT needs).
//
// Counts by API family, blocks allocated and freed, bytes in use (current and peak, by
// usable size) and a histogram of usable sizes in power-of-two buckets. Every counter is
// a relaxed atomic: exact once threads have joined, never a lock inside malloc.
// constexpr-constructible, so the shim's instance is constinit and tests make their own.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "api.hpp"

namespace zheap::shim {

class Stats {
 public:
  // Bucket b holds sizes in [2^(b-1), 2^b); bucket 0 holds size 0.
  static constexpr std::size_t bucket_count = 65;
  static constexpr std::size_t bucket_of(std::size_t size) noexcept { return static_cast<std::size_t>(std::bit_width(size)); }

  constexpr Stats() noexcept = default;

  void record_alloc(std::size_t usable, Api api) noexcept {
    allocs_[index(api)].fetch_add(1, std::memory_order_relaxed);
    histogram_[bucket_of(usable)].fetch_add(1, std::memory_order_relaxed);
    add_bytes(usable);
  }
  void record_free(std::size_t usable, Api api) noexcept {
    frees_[index(api)].fetch_add(1, std::memory_order_relaxed);
    remove_bytes(usable);
  }
  // Only the bytes in use, for ZHEAP_LIMIT without ZHEAP_STATS.
  void add_bytes(std::size_t usable) noexcept {
    const auto delta = static_cast<std::int64_t>(usable);
    const std::int64_t now = bytes_in_use_.fetch_add(delta, std::memory_order_relaxed) + delta;
    std::int64_t peak = peak_bytes_.load(std::memory_order_relaxed);
    while (now > peak && !peak_bytes_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
  }
  void remove_bytes(std::size_t usable) noexcept {
    bytes_in_use_.fetch_sub(static_cast<std::int64_t>(usable), std::memory_order_relaxed);
  }

  // Signed: a block the layers never saw allocated (served before they were configured,
  // or from the runtime's bootstrap region) may still be reported freed. Never below 0
  // as far as the limit is concerned; see bytes_in_use().
  std::int64_t net_bytes() const noexcept { return bytes_in_use_.load(std::memory_order_relaxed); }
  std::size_t bytes_in_use() const noexcept {
    const std::int64_t net = net_bytes();
    return net > 0 ? static_cast<std::size_t>(net) : 0;
  }
  std::size_t peak_bytes() const noexcept { return static_cast<std::size_t>(peak_bytes_.load(std::memory_order_relaxed)); }
  std::uint64_t allocs(Api api) const noexcept { return allocs_[index(api)].load(std::memory_order_relaxed); }
  std::uint64_t frees(Api api) const noexcept { return frees_[index(api)].load(std::memory_order_relaxed); }
  std::uint64_t total_allocs() const noexcept;
  std::uint64_t total_frees() const noexcept;
  std::uint64_t bucket(std::size_t b) const noexcept { return histogram_[b].load(std::memory_order_relaxed); }

  // The report, one "zheap: "-prefixed line per item, written to `fd` (see stats.cpp for
  // the format; tests/shim_options parse it).
  void write_report(int fd) const noexcept;

 private:
  static constexpr std::size_t index(Api api) noexcept { return static_cast<std::size_t>(api); }

  std::atomic<std::uint64_t> allocs_[api_count] = {};
  std::atomic<std::uint64_t> frees_[api_count] = {};
  std::atomic<std::uint64_t> histogram_[bucket_count] = {};
  std::atomic<std::int64_t> bytes_in_use_{0};
  std::atomic<std::int64_t> peak_bytes_{0};
};

}  // namespace zheap::shim
