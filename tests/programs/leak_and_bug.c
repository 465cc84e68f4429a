/* For the debug mode's report options (tests/shim/check_report_options.py): leaks one
 * block with no pointer left to it anywhere (definitely lost, whatever the classification
 * does), optionally makes one heap error first, and prints to stdout with printf, which
 * stays in stdio's buffer until exit, so a test sees whether ZHEAP_LEAK_EXITCODE's _exit
 * loses it. The leak's allocation is on the line marked `leak: definite`, the error on the
 * line marked `bug: double_free`, each in a function of its own.
 *
 * C, and stdout buffered in a static array: the only heap block live at exit is the
 * leak (a C++ runtime keeps an emergency pool, stdio a malloc'ed buffer), so the tests
 * read the same report before and after leak classification tells those apart.
 *
 *   leak_and_bug leak | clean | bug_and_leak   [STATUS]
 * STATUS: the program's own exit status (default 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The compiler must not see through the pointer (no dead-store or double-free warnings). */
static void* opaque(void* p) {
  __asm__ volatile("" : "+r"(p));
  return p;
}

static void no_tail_call(void) { __asm__ volatile("" ::: "memory"); }

/* The pointer dies with this frame and the block's bytes are overwritten: nothing points
 * to it afterwards. */
__attribute__((noinline)) static void leak_one_block(void) {
  char* p = malloc(48); /* leak: definite */
  memset(opaque(p), 'L', 48);
  no_tail_call();
}

__attribute__((noinline)) static void double_free(void) {
  char* p = malloc(40);
  free(p);
  free(opaque(p)); /* bug: double_free */
  no_tail_call();
}

/* Overwrites the stack the earlier calls used, so no stale copy of the leaked pointer
 * stays in dead stack memory. */
__attribute__((noinline)) static void scrub_stack(void) {
  volatile char scratch[8192];
  for (size_t i = 0; i < sizeof scratch; ++i) scratch[i] = 0;
  no_tail_call();
}

static char stdout_buffer[BUFSIZ];

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: leak_and_bug leak|clean|bug_and_leak [STATUS]\n");
    return 2;
  }
  setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);
  const char* what = argv[1];
  const int status = argc > 2 ? atoi(argv[2]) : 0;
  if (strcmp(what, "bug_and_leak") == 0) double_free();
  if (strcmp(what, "leak") == 0 || strcmp(what, "bug_and_leak") == 0) leak_one_block();
  scrub_stack();
  printf("printed before exit by %s\n", what);
  return status;
}
