// The shortest malloc/free workload: N times malloc(SIZE), store the pointer to a
// volatile (so the pair is not optimised out), free it. tests/shim/count_fast_path.py runs
// it under callgrind at two N and takes the difference, so start-up cancels out and what
// remains is the instruction count of one malloc + free pair, loop included.
//   malloc_free_loop N SIZE
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  const size_t n = strtoul(argv[1], 0, 10);
  const size_t size = strtoul(argv[2], 0, 10);
  void* volatile sink;
  for (size_t i = 0; i < n; ++i) {
    void* p = malloc(size);
    sink = p;
    free(p);
  }
  (void)sink;
  return 0;
}
