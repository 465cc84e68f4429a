// Loaded with dlopen(RTLD_DEEPBIND) by foreign_pointer: its malloc binds to glibc's own,
// so the pointers it returns were not handed out by zheap.
#include <malloc.h>
#include <pthread.h>

#include <cstdlib>
#include <cstring>

namespace {
// glibc raises its mmap threshold to the size of each mmapped block freed; fixed at
// 128 KiB, every 256 KiB block foreign_pointer asks for is mmapped, not only the first.
[[gnu::constructor]] void fix_mmap_threshold() { mallopt(M_MMAP_THRESHOLD, 128 * 1024); }
}  // namespace

extern "C" [[gnu::visibility("default")]] void* foreign_helper_malloc(size_t size) {
  void* p = malloc(size);
  if (p != nullptr) memset(p, 0x5a, size);
  return p;
}

namespace {
void* malloc_on_thread(void* size) { return foreign_helper_malloc(*static_cast<size_t*>(size)); }
}  // namespace

// The same on a thread of its own: glibc serves it from a thread arena (not the brk heap).
extern "C" [[gnu::visibility("default")]] void* foreign_helper_malloc_on_thread(size_t size) {
  pthread_t thread;
  if (pthread_create(&thread, nullptr, malloc_on_thread, &size) != 0) return nullptr;
  void* p = nullptr;
  pthread_join(thread, &p);
  return p;
}
