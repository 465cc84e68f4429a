// Loaded with dlopen(RTLD_DEEPBIND) by foreign_pointer: its malloc binds to glibc's own,
// so the pointers it returns were not handed out by zheap.
#include <pthread.h>

#include <cstdlib>
#include <cstring>

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
