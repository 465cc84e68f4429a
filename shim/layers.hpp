// The layers that work in every mode: the seam the shim's runtime calls around each
// allocation operation, whatever heap serves it.
//
//   ZHEAP_LIMIT    admit() refuses an allocation that would take the bytes in use above it
//   ZHEAP_FAIL_AT  admit() refuses the Nth allocation and prints its stack once
//   ZHEAP_STATS    counts by API, current/peak bytes, a size histogram, printed by at_exit()
//   ZHEAP_LOG      one line per call, appended to a file
//
// How the runtime calls them, for every API:
//   allocation:  if (!admit(size)) fail (ENOMEM / std::bad_alloc);  p = heap.alloc(...);
//                if (p) on_alloc(p, usable_size(p), api, size, alignment);
//   free:        if (observes_frees()) on_free(p, usable_size(p), api);  heap.free(p);
//                (not for nullptr; api is the freeing family: free, delete_, delete_array)
//   realloc:     admit(new_size) first; on success, on_free(old, old_usable, Api::realloc)
//                then on_alloc(new, new_usable, Api::realloc, new_size, 0), also when it
//                resized in place; realloc(p, 0) that frees is on_free(p, ..., Api::realloc);
//                a failed realloc reports neither.
//   exit:        at_exit() once, after the program's own exit handlers and destructors.
// `usable` must be the same for a block's on_alloc and on_free (the bytes-in-use count
// depends on it).
//
// Cost when no layer is enabled: admit/on_alloc/on_free are inline and test one constinit
// byte (relaxed load, predicted not-taken branch). The first call reads the options.
// Thread safety: counters are relaxed atomics; ZHEAP_LIMIT is therefore approximate by
// at most one allocation per racing thread. Nothing here allocates or takes a lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "api.hpp"

namespace zheap::shim {

namespace layers {

namespace detail {
// Which layers are on: a bit per layer, or `unconfigured` before the first call has read
// the options. Zero, the common case, means every function below returns at once.
enum LayerBit : std::uint8_t { limit_bit = 1, fail_at_bit = 2, stats_bit = 4, log_bit = 8, unconfigured = 0x80 };
extern constinit std::atomic<std::uint8_t> active_bits;

bool admit_slow(std::size_t size) noexcept;
void on_alloc_slow(void* p, std::size_t usable, Api api, std::size_t size, std::size_t alignment) noexcept;
void on_free_slow(void* p, std::size_t usable, Api api) noexcept;
}  // namespace detail

// False when no layer is on: the runtime may then call the heap with nothing around it
// (its fastest path). True before the first call has read the options, so that the first
// allocation goes through admit() and configures the layers.
inline bool active() noexcept { return detail::active_bits.load(std::memory_order_relaxed) != 0; }

// Whether on_free wants to be called at all: when false the runtime may skip computing
// the usable size of a block being freed. True before the first call has read the options.
inline bool observes_frees() noexcept { return detail::active_bits.load(std::memory_order_relaxed) != 0; }

// False: this allocation must fail (ENOMEM, or std::bad_alloc for a throwing new).
inline bool admit(std::size_t size) noexcept {
  if (detail::active_bits.load(std::memory_order_relaxed) == 0) [[likely]] return true;
  return detail::admit_slow(size);
}

// A successful allocation: `p` with `usable` bytes, for `api`. `size` and `alignment` (the
// request; 0 when unknown or the default) only feed ZHEAP_LOG.
inline void on_alloc(void* p, std::size_t usable, Api api, std::size_t size = 0, std::size_t alignment = 0) noexcept {
  if (detail::active_bits.load(std::memory_order_relaxed) == 0) [[likely]] return;
  detail::on_alloc_slow(p, usable, api, size, alignment);
}

// A block about to be freed (not nullptr).
inline void on_free(void* p, std::size_t usable, Api api) noexcept {
  if (detail::active_bits.load(std::memory_order_relaxed) == 0) [[likely]] return;
  detail::on_free_slow(p, usable, api);
}

// At process exit: prints ZHEAP_STATS. Safe to call more than once (prints once).
void at_exit() noexcept;

}  // namespace layers
}  // namespace zheap::shim
