// jemalloc mode: Debian's libjemalloc.so.2 serves every call.
//
// libjemalloc.so.2 is a link-time dependency of libzheap.so (it uses static TLS, so it
// cannot be dlopen()ed later). Its public malloc/free are reached through dlsym on its own
// handle: calling them by name from here would bind back to zheap's exported malloc.
// The default-alignment hot path calls jemalloc's malloc/free directly from the dispatch
// (no glue function in between): in jemalloc 5.3 they are faster than mallocx/dallocx,
// whose flag decoding costs a few instructions. mallocx is used for larger alignments,
// sdallocx when the caller knows the size (sized delete, free_sized).
//
// Ownership (limit, documented): jemalloc maps its memory wherever the kernel puts it, so
// "ours" is "everything outside glibc's brk heap". Pointers in glibc's brk heap go to
// glibc; other foreign pointers (glibc's mmapped or thread-arena chunks, stray pointers)
// reach jemalloc, which does not check them. Carving jemalloc's extents from zheap's
// reserved range with extent hooks would make the check exact; not done yet.
#include "heap.hpp"
#include "report.hpp"

#if ZHEAP_HAVE_JEMALLOC

#include <dlfcn.h>

#include <bit>

extern "C" {
// jemalloc's non-standard API; zheap does not export these names, so they bind to jemalloc.
void* mallocx(std::size_t size, int flags);
void sdallocx(void* ptr, std::size_t size, int flags);
}

namespace zheap::shim {

namespace {

struct JemallocFunctions {
  void* (*malloc)(std::size_t) noexcept;
  void (*free)(void*) noexcept;
  void* (*calloc)(std::size_t, std::size_t) noexcept;
  void* (*realloc)(void*, std::size_t) noexcept;
  std::size_t (*malloc_usable_size)(void*) noexcept;
};
constinit JemallocFunctions jemalloc = {};

// MALLOCX_ALIGN(a) of jemalloc.h: log2 of the alignment in the low bits.
int align_flag(std::size_t alignment) noexcept { return std::countr_zero(alignment); }

void* jemalloc_allocate(std::size_t size, std::size_t alignment) noexcept {
  if (alignment <= 16) return jemalloc.malloc(size);
  return mallocx(size == 0 ? 1 : size, align_flag(alignment));
}
void* jemalloc_allocate_zeroed(std::size_t size) noexcept { return jemalloc.calloc(1, size); }
void jemalloc_release_sized(void* ptr, std::size_t size) noexcept { sdallocx(ptr, size == 0 ? 1 : size, 0); }

constinit Heap jemalloc_heap = {
    .name = "jemalloc",
    .allocate = jemalloc_allocate,
    .allocate_default = nullptr,  // jemalloc's malloc, set at start
    .allocate_zeroed = jemalloc_allocate_zeroed,
    .release = nullptr,           // jemalloc's free
    .release_sized = jemalloc_release_sized,
    .usable_size = nullptr,       // jemalloc's malloc_usable_size
    .reallocate = nullptr,        // jemalloc's realloc
    .owns = Ownership::all_but_brk_heap,
    .libc_conformant = true,
    .range_begin = 0,
    .range_end = 0,
    .fork_prepare = nullptr,      // jemalloc registers its own pthread_atfork handlers
    .fork_release = nullptr,
};

template <class Function>
bool resolve(void* handle, const char* name, Function& out) noexcept {
  out = reinterpret_cast<Function>(::dlsym(handle, name));
  return out != nullptr;
}

}  // namespace

const Heap* start_jemalloc_heap() noexcept {
  void* handle = ::dlopen("libjemalloc.so.2", RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) {
    report_mode_unavailable("jemalloc", "libjemalloc.so.2 is not loaded", "libc");
    return nullptr;
  }
  JemallocFunctions f = {};
  const bool ok = resolve(handle, "malloc", f.malloc) && resolve(handle, "free", f.free) &&
                  resolve(handle, "calloc", f.calloc) && resolve(handle, "realloc", f.realloc) &&
                  resolve(handle, "malloc_usable_size", f.malloc_usable_size);
  ::dlclose(handle);  // drops RTLD_NOLOAD's reference; it stays loaded as our dependency
  if (!ok) {
    report_mode_unavailable("jemalloc", "libjemalloc.so.2 lacks malloc/free/...", "libc");
    return nullptr;
  }
  jemalloc = f;
  jemalloc_heap.allocate_default = f.malloc;
  jemalloc_heap.release = f.free;
  jemalloc_heap.usable_size = f.malloc_usable_size;
  jemalloc_heap.reallocate = f.realloc;
  return &jemalloc_heap;
}

}  // namespace zheap::shim

#else

namespace zheap::shim {
const Heap* start_jemalloc_heap() noexcept {
  report_mode_unavailable("jemalloc", "zheap was built without jemalloc", "libc");
  return nullptr;
}
}  // namespace zheap::shim

#endif
