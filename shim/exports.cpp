// The exported C symbols: entry_points.inc expanded over libc_semantics.hpp.
//
// Built twice: into libzheap.so with the public names (default visibility, filtered by
// libzheap.map), and into the in-process test library with ZHEAP_SHIM_PREFIX set
// (zheap_test_malloc, ...), so that tests can call the very same code without replacing
// their own malloc.
#include "direct_route_entries.hpp"
#include "libc_semantics.hpp"
#include "os/os.hpp"

#define ZHEAP_CONCAT_(a, b) a##b
#define ZHEAP_CONCAT(a, b) ZHEAP_CONCAT_(a, b)

#ifdef ZHEAP_SHIM_PREFIX
#define ZHEAP_EXPORTED_NAME(name) ZHEAP_CONCAT(ZHEAP_SHIM_PREFIX, name)
#else
#define ZHEAP_EXPORTED_NAME(name) name
#endif

// (a, b) -> (a, b, caller): every c_api entry takes the exported function's stack pointer
// last (entry_call_site.hpp; libc_semantics.hpp says why it costs the fast paths nothing).
#define ZHEAP_WITH_CALLER(...) (__VA_ARGS__ __VA_OPT__(, ) ZHEAP_ENTRY_STACK_POINTER())

extern "C" {
#define ZHEAP_C_ENTRY(ret, name, impl, params, args)                          \
  [[gnu::visibility("default")]] ret ZHEAP_EXPORTED_NAME(name) params noexcept { \
    return zheap::shim::c_api::impl ZHEAP_WITH_CALLER args;                     \
  }
#define ZHEAP_STRINGIFY_(x) #x
#define ZHEAP_STRINGIFY(x) ZHEAP_STRINGIFY_(x)
#define ZHEAP_C_ROUTED_ENTRY(ret, name, route, params, args) \
  __asm__(ZHEAP_DIRECT_ROUTE_ENTRY_##route(ZHEAP_STRINGIFY(ZHEAP_EXPORTED_NAME(name))));
#include "entry_points.inc"
#undef ZHEAP_C_ENTRY
#undef ZHEAP_C_ROUTED_ENTRY
}

namespace zheap::shim::c_api {

// Where malloc's and free's direct routes (direct_routes.hpp) send what they do not take.
// Reached from malloc and free by a jump (direct_route_entries.hpp), so their call site is
// still the program's: debug mode's stacks start there, and tests/shim's debug report
// tests check the frame they name.
[[gnu::noinline]] void* malloc_full(std::size_t size) noexcept {
  return malloc_observed(heap(), size, ZHEAP_ENTRY_STACK_POINTER());
}
// [[gnu::used]]: free's assembly entry jumps to it by name.
[[gnu::noinline, gnu::used]] void free_full(void* ptr) noexcept { release(ptr, Api::free, "free", ZHEAP_ENTRY_STACK_POINTER()); }

void print_malloc_stats() noexcept {
  const char* name = started_heap().name;
  char line[96] = "zheap: allocator ";
  std::size_t used = std::strlen(line);
  while (*name != '\0' && used < sizeof line - 2) line[used++] = *name++;
  line[used++] = '\n';
  os::write_stderr(line, used);
}

}  // namespace zheap::shim::c_api

#ifndef ZHEAP_SHIM_PREFIX
// The layers' exit report (ZHEAP_STATS). A destructor of the preloaded library runs after
// the program's atexit handlers (exit() calls them before the loader's finalisers) and
// after the static destructors of the program and of every library loaded after
// libzheap.so, so memory they free is counted as freed.
[[gnu::destructor]] static void print_layers_report_at_exit() { zheap::shim::layers::at_exit(); }
#endif
