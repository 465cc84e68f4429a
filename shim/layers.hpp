// THE SEAM with the options/layers module (worktree shim-options).
//
// This file is a stub: it declares the names the dispatch calls around every operation,
// as inline no-ops, so that integrating the real layers (memory limit, fail-at-N, stats,
// call log) means replacing this one file. Keep the names.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zheap::shim {

// Which entry point family made the call; the layers report by it.
enum class api : std::uint8_t {
  malloc,
  calloc,
  realloc,
  memalign,        // memalign, posix_memalign, aligned_alloc, valloc, pvalloc
  free,
  new_object,      // operator new / delete
  new_array,       // operator new[] / delete[]
};

namespace layers {

// True when any layer is on (limit, fail-at, stats, log). When false, malloc and free call
// the heap with nothing around them (the hot path: a few instructions and one jump).
inline bool active() noexcept { return false; }
// True when any layer wants to see frees (then the dispatch pays for usable_size()).
inline bool observes_frees() noexcept { return false; }
// False: fail this allocation with ENOMEM / std::bad_alloc.
inline bool admit(std::size_t /*size*/) noexcept { return true; }
inline void on_alloc(void* /*ptr*/, std::size_t /*size*/, api /*family*/) noexcept {}
inline void on_free(void* /*ptr*/, std::size_t /*usable_size*/, api /*family*/) noexcept {}

}  // namespace layers
}  // namespace zheap::shim
