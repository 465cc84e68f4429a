#include "settings.hpp"

#include "options.hpp"

namespace zheap::shim {

Mode selected_mode() noexcept { return options().allocator; }

std::size_t arena_limit() noexcept {
  const std::size_t limit = options().arena_limit;
  return limit == Limit::unlimited ? 0 : limit;  // the arena's "no cap"
}

}  // namespace zheap::shim
