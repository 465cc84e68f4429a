/* Definite, indirect and still-reachable blocks in known numbers, for the comparison of
 * debug mode's leak totals with Valgrind's (tests/shim/compare_with_valgrind.py). C, and
 * no stdio: nothing of libstdc++ or glibc's own stays allocated at exit, which Valgrind
 * frees before counting (__libc_freeres, __gnu_cxx::__freeres) and zheap does not. Every
 * pointer points to a block's start: Valgrind calls a block reached only through an
 * interior pointer "possibly lost", zheap (like LeakSanitizer) reachable.
 *   definitely lost: 4 blocks, 100 + 24 * 3 bytes (a lone block, two list heads, one
 *                    block of a pure cycle)
 *   indirectly lost: 4 blocks, 24 * 3 (the lists' tails) + 24 (the cycle's other block)
 *   still reachable: 3 blocks, 300 + 50 (through the first) + 16, from globals
 * `leak_kinds baseline` leaks one byte only: what a tool counts there (zheap: libstdc++'s
 * emergency exception pool, which libjemalloc's dependency loads) is not the program's. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
  struct node* next;
  long payload[2];
};

static void* volatile kept_for_life;
static void* volatile also_kept;

static void* opaque(void* p) {
  __asm__ volatile("" : "+r"(p));
  return p;
}

static struct node* __attribute__((noinline)) list(int length) {
  struct node* head = NULL;
  for (int i = 0; i < length; ++i) {
    struct node* n = malloc(sizeof *n);
    n->next = head;
    n->payload[0] = n->payload[1] = i;
    head = n;
  }
  return opaque(head);
}

static void __attribute__((noinline)) leak(void) {
  opaque(malloc(100));
  list(3);  /* a head and two tails */
  list(2);  /* a head and one tail */
  struct node* a = list(1);
  struct node* b = list(1);
  a->next = b;
  b->next = a;
  void** reachable = malloc(300);
  memset(reachable, 0, 300);
  reachable[0] = malloc(50);
  kept_for_life = reachable;
  also_kept = malloc(16);
}

static void __attribute__((noinline)) scrub_stack(void) {
  volatile char pad[64 << 10];
  for (size_t i = 0; i < sizeof pad; ++i) pad[i] = 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "baseline") == 0) {
    opaque(malloc(1));
  } else {
    leak();
  }
  scrub_stack();
  static const char done[] = "leaked\n";
  return write(1, done, sizeof done - 1) == sizeof done - 1 ? 0 : 1;
}
