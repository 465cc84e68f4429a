// Loaded with dlopen(RTLD_DEEPBIND) by foreign_pointer: its malloc binds to glibc's own,
// so the pointers it returns were not handed out by zheap.
#include <cstdlib>
#include <cstring>

extern "C" [[gnu::visibility("default")]] void* foreign_helper_malloc(size_t size) {
  void* p = malloc(size);
  if (p != nullptr) memset(p, 0x5a, size);
  return p;
}
