/* A plain C program (no C++ runtime of its own) under the shim: the C API from several
   threads, with contents checked. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                           \
  do {                                                                     \
    if (!(c)) {                                                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

static void* work(void* arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  char* blocks[256] = {0};
  for (int i = 0; i < 20000; ++i) {
    seed = seed * 1103515245u + 12345u;
    int slot = (int)((seed >> 8) % 256);
    size_t size = (seed >> 16) % 700 + 1;
    if (blocks[slot] != NULL) {
      /* every byte holds (its block's size - 1) & 0xff; realloc must keep them */
      const char mark = blocks[slot][0];
      char* grown = realloc(blocks[slot], 1000);
      CHECK(grown != NULL && grown[0] == mark);
      free(grown);
    }
    blocks[slot] = (seed & 1) ? malloc(size) : calloc(1, size);
    CHECK(blocks[slot] != NULL);
    memset(blocks[slot], (int)(size - 1), size);
  }
  for (int i = 0; i < 256; ++i) free(blocks[i]);
  void* aligned = NULL;
  CHECK(posix_memalign(&aligned, 256, 1000) == 0 && ((uintptr_t)aligned & 255) == 0);
  CHECK(malloc_usable_size(aligned) >= 1000);
  free(aligned);
  return NULL;
}

int main(void) {
  pthread_t threads[4];
  for (uintptr_t i = 0; i < 4; ++i) CHECK(pthread_create(&threads[i], NULL, work, (void*)(i + 1)) == 0);
  work((void*)99);
  for (int i = 0; i < 4; ++i) CHECK(pthread_join(threads[i], NULL) == 0);
  errno = 0;
  CHECK(malloc(SIZE_MAX) == NULL && errno == ENOMEM);
  char* text = strdup("zheap");  /* libc's own allocations come from the shim too */
  CHECK(text != NULL && strcmp(text, "zheap") == 0);
  free(text);
  puts("c_program: ok");
  return 0;
}
