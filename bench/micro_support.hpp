// Shared pieces of the microbenchmarks (bench/micro_*.cpp, one executable `micro`):
// the object sizes measured, the batch size, and the object that create/destroy makes.
//
// Every benchmark of an allocator has a malloc/free (or new/delete) twin in
// micro_malloc.cpp with the same name after the slash, so the output lines up:
//   BM_BatchAlloc/malloc/64   BM_BatchAlloc/arena/64   BM_BatchAlloc/fixed_buffer/64
// Timings are for reading, never for asserting; docs/BENCHMARKS.md holds measured runs.
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstring>

namespace micro {

// Small-object sizes: the range where a general-purpose malloc's size classes and a bump
// or pool allocator differ most.
inline void small_sizes(benchmark::internal::Benchmark* b) {
  for (long size : {16, 32, 64, 128, 256}) b->Arg(size);
}

// Blocks per batch in the batch benchmarks: enough that the per-batch release (free of
// each block, or one reset) is a small part, few enough that a batch stays in L2.
constexpr std::size_t kBatch = 512;

// Touches a fresh block the way a caller would (its first and last byte), so that no
// allocator is measured handing out memory nobody writes.
// (A null block, out of memory, crashes here: loud, and never expected at these sizes.)
inline void touch(void* block, std::size_t size) {
  if (size == 0) return;  // never measured; tells the compiler the writes are in bounds
  auto* bytes = static_cast<unsigned char*>(block);
  bytes[0] = 1;
  bytes[size - 1] = 2;
  benchmark::DoNotOptimize(bytes);
}

// The object create/destroy makes: `Size` bytes, a constructor and a destructor that do
// a little work, as a real node would.
template <std::size_t Size>
struct Object {
  static_assert(Size >= sizeof(std::size_t));
  explicit Object(std::size_t id) { std::memcpy(payload, &id, sizeof id); }
  ~Object() { benchmark::DoNotOptimize(payload[0]); }
  unsigned char payload[Size];
};

}  // namespace micro
