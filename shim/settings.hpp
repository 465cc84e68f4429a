// The shim's view of its ZHEAP_* settings.
//
// THE SEAM with the options module (worktree shim-options): until shim/options.hpp is
// merged, each setting is read here with os::getenv, one function per setting, and
// nowhere else. Integration replaces the bodies in settings.cpp with zheap::shim::options().
#pragma once

#include <cstddef>
#include <cstdint>

namespace zheap::shim {

enum class Mode : std::uint8_t { libc, jemalloc, arena, debug, smp };

// ZHEAP_ALLOCATOR: libc (default), jemalloc, arena, smp. debug is not built yet and falls
// back to libc with one line on stderr.
Mode selected_mode() noexcept;
// ZHEAP_ARENA_LIMIT: bytes the arena mode may map in total (suffixes k, m, g); 0 = no cap.
std::size_t arena_limit() noexcept;

}  // namespace zheap::shim
