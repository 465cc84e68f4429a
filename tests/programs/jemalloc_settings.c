// Prints the jemalloc settings that shape its memory use, as jemalloc reports them through
// mallctl after an ordinary and an oversize (huge-arena) allocation. Run under jemalloc
// preloaded alone and under ZHEAP_ALLOCATOR=jemalloc: zheap's start-up creates arenas and
// installs extent hooks itself, and must leave jemalloc configured as jemalloc would
// configure itself (tests/shim/compare_jemalloc_settings.py).
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef int (*mallctl_fn)(const char*, void*, size_t*, void*, size_t);

static mallctl_fn mallctl_of_jemalloc;

static long read_number(const char* name, size_t width) {
  union {
    unsigned u;
    long long ll;  // size_t and ssize_t on x86-64
  } value = {0};
  size_t len = width;
  if (mallctl_of_jemalloc(name, &value, &len, NULL, 0) != 0 || len != width) return -12345;
  return width == sizeof value.u ? (long)value.u : (long)value.ll;
}

int main(void) {
  mallctl_of_jemalloc = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
  if (mallctl_of_jemalloc == NULL) {
    fprintf(stderr, "jemalloc_settings: no mallctl in the process (is jemalloc loaded?)\n");
    return 1;
  }
  // An ordinary block, then one past opt.oversize_threshold (8 MiB): the huge arena serves it.
  char* small = malloc(100);
  char* huge = malloc(16u << 20);
  if (small == NULL || huge == NULL) return 1;
  memset(huge, 1, 16u << 20);
  free(huge);
  free(small);

  const long automatic = read_number("opt.narenas", sizeof(unsigned));
  const long total = read_number("arenas.narenas", sizeof(unsigned));
  printf("opt.narenas %ld\narenas.narenas %ld\n", automatic, total);
  printf("opt.oversize_threshold %ld\n", read_number("opt.oversize_threshold", sizeof(size_t)));
  printf("arenas.dirty_decay_ms %ld\narenas.muzzy_decay_ms %ld\n", read_number("arenas.dirty_decay_ms", sizeof(ssize_t)),
         read_number("arenas.muzzy_decay_ms", sizeof(ssize_t)));
  // Arena 0 (the main thread's) and the huge arena, the last one.
  const long shown[] = {0, total - 1};
  for (int i = 0; i < 2; ++i) {
    char name[64];
    snprintf(name, sizeof name, "arena.%ld.dirty_decay_ms", shown[i]);
    const long dirty = read_number(name, sizeof(ssize_t));
    snprintf(name, sizeof name, "arena.%ld.muzzy_decay_ms", shown[i]);
    const long muzzy = read_number(name, sizeof(ssize_t));
    snprintf(name, sizeof name, "arena.%ld.retain_grow_limit", shown[i]);
    const long grow_limit = read_number(name, sizeof(size_t));
    printf("arena %s: dirty_decay_ms %ld muzzy_decay_ms %ld retain_grow_limit %ld\n", i == 0 ? "0" : "huge", dirty,
           muzzy, grow_limit);
  }
  return 0;
}
