// The shim's view of its ZHEAP_* settings.
//
// Each setting the runtime needs, in the form it needs it, read from zheap::shim::options()
// (options.hpp: one table, parsed once). Bad values were reported there.
#pragma once

#include <cstddef>
#include <cstdint>

#include "option_kinds.hpp"  // Mode

namespace zheap::shim {

// ZHEAP_ALLOCATOR: libc (default), jemalloc, arena, smp, debug.
Mode selected_mode() noexcept;
// ZHEAP_ARENA_LIMIT: bytes the arena mode may map in total; 0 = no cap.
std::size_t arena_limit() noexcept;

}  // namespace zheap::shim
