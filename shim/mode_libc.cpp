// libc mode: glibc's own allocator serves every call.
//
// Why not call __libc_malloc by name: libzheap.so exports __libc_malloc & co. itself (some
// programs call them), and a call by name from inside a shared object binds to the first
// definition in the process's lookup scope: the preloaded libzheap.so, i.e. back into the
// shim. dlsym() on libc.so.6's own handle searches libc.so.6 (and ld.so) only, so it finds
// glibc's definitions whatever was preloaded; tests/shim checks with dladdr that each
// resolved function lies in libc.so.6.
#include <dlfcn.h>
#include <malloc.h>

#include <cstring>

#include "dispatch.hpp"
#include "heap.hpp"

namespace zheap::shim {

namespace {

constinit GlibcFunctions glibc_functions = {};
constinit bool glibc_resolved = false;

template <class Function>
bool resolve(void* libc, const char* name, Function& out) noexcept {
  out = reinterpret_cast<Function>(::dlsym(libc, name));
  return out != nullptr;
}

void* libc_allocate(std::size_t size, std::size_t alignment) noexcept {
  if (alignment <= 16) return glibc_functions.malloc(size);
  return glibc_functions.memalign(alignment, size);
}
void* libc_allocate_zeroed(std::size_t size) noexcept { return glibc_functions.calloc(1, size); }

constinit Heap libc_heap = {
    .name = "libc",
    .allocate = libc_allocate,
    .allocate_default = nullptr,  // glibc's malloc itself, set by start_libc_heap
    .allocate_zeroed = libc_allocate_zeroed,
    .release = nullptr,           // glibc's free
    .release_sized = nullptr,
    .usable_size = nullptr,       // glibc's malloc_usable_size
    .reallocate = nullptr,        // glibc's realloc
    .owns = Ownership::everything,
    .libc_conformant = true,
    .range_begin = 0,
    .range_end = 0,
    .fork_prepare = nullptr,      // glibc's fork() locks its own arenas
    .fork_release = nullptr,
    .detailed = nullptr,
};

}  // namespace

bool resolve_glibc() noexcept {
  if (glibc_resolved) return true;
  // RTLD_NOLOAD: libc.so.6 is always loaded; this only returns its handle.
  void* libc = ::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (libc == nullptr) return false;
  GlibcFunctions f = {};
  bool ok = resolve(libc, "__libc_malloc", f.malloc) && resolve(libc, "__libc_free", f.free) &&
            resolve(libc, "__libc_calloc", f.calloc) && resolve(libc, "__libc_realloc", f.realloc) &&
            resolve(libc, "__libc_memalign", f.memalign) &&
            resolve(libc, "malloc_usable_size", f.malloc_usable_size);
  // Introspection is optional: answered by zheap itself when missing.
  resolve(libc, "mallopt", f.mallopt);
  resolve(libc, "malloc_trim", f.malloc_trim);
  resolve(libc, "malloc_stats", f.malloc_stats);
  f.mallinfo = ::dlsym(libc, "mallinfo");
  f.mallinfo2 = ::dlsym(libc, "mallinfo2");
  ::dlclose(libc);  // drops the reference RTLD_NOLOAD took; libc.so.6 stays loaded
  if (!ok) return false;
  glibc_functions = f;
  glibc_resolved = true;
  return true;
}

const GlibcFunctions& glibc() noexcept { return glibc_functions; }

const Heap* start_libc_heap() noexcept {
  if (!resolve_glibc()) return nullptr;
  use_malloc_family(libc_heap, glibc_functions);
  return &libc_heap;
}

}  // namespace zheap::shim
