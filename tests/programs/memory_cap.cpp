// Allocates 1 MiB blocks with new[] until std::bad_alloc, then checks malloc fails the same
// way (NULL, ENOMEM), and that freeing makes room again.
//   memory_cap <cap in MiB>   the cap the run was given (ZHEAP_ARENA_LIMIT=<cap>m)
#include <malloc.h>

#include <cerrno>
#include <cstdlib>
#include <new>
#include <vector>

#include "check.hpp"

int main(int argc, char** argv) {
  CHECK(argc == 2);
  const std::size_t cap_mib = std::strtoull(argv[1], nullptr, 10);
  std::vector<char*> blocks;
  blocks.reserve(cap_mib + 1);
  bool refused = false;
  try {
    for (std::size_t i = 0; i <= cap_mib; ++i) blocks.push_back(new char[1 << 20]);
  } catch (const std::bad_alloc&) {
    refused = true;
  }
  CHECK(refused);
  CHECK(blocks.size() < cap_mib);
  CHECK(blocks.size() + 8 >= cap_mib);  // the cap, less the thread's chunk and headers
  errno = 0;
  CHECK(malloc(1 << 20) == nullptr && errno == ENOMEM);
  CHECK(::operator new(1 << 20, std::nothrow) == nullptr);
  for (char* p : blocks) delete[] p;
  void* again = malloc(1 << 20);
  CHECK(again != nullptr);
  free(again);
  std::printf("memory_cap: ok (%zu MiB blocks before the cap)\n", blocks.size());
  return 0;
}
