// ArenaAllocator against malloc/free (micro_malloc.cpp) for small objects.
#include <zheap/arena_allocator.hpp>
#include <zheap/page_allocator.hpp>

#include "micro_support.hpp"

namespace {

// kBatch bump allocations, then one reset that keeps the buffer: the arena's whole reason
// to exist. Against BM_BatchAlloc/malloc, which frees each block.
void BM_BatchAlloc_arena(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  zheap::ArenaAllocator arena(zheap::page_allocator());
  zheap::Allocator allocator = arena.allocator();
  for (auto _ : state) {
    for (std::size_t i = 0; i < micro::kBatch; ++i) {
      std::span<std::byte> block = allocator.alloc<std::byte>(size);
      micro::touch(block.data(), size);
    }
    arena.reset(zheap::ResetMode::retain_capacity);
  }
  state.SetItemsProcessed(state.iterations() * micro::kBatch);
}
BENCHMARK(BM_BatchAlloc_arena)->Name("BM_BatchAlloc/arena")->Apply(micro::small_sizes);

// Alloc then free of the same block: the arena rolls back its last allocation, so the
// memory is really reused (not leaked until reset).
void BM_AllocFreePair_arena(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  zheap::ArenaAllocator arena(zheap::page_allocator());
  zheap::Allocator allocator = arena.allocator();
  for (auto _ : state) {
    std::span<std::byte> block = allocator.alloc<std::byte>(size);
    micro::touch(block.data(), size);
    allocator.free(block);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AllocFreePair_arena)->Name("BM_AllocFreePair/arena")->Apply(micro::small_sizes);

// Allocator::create / destroy of one object through the arena handle.
template <std::size_t Size>
void BM_CreateDestroy_arena(benchmark::State& state) {
  zheap::ArenaAllocator arena(zheap::page_allocator());
  zheap::Allocator allocator = arena.allocator();
  std::size_t id = 0;
  for (auto _ : state) {
    auto* object = allocator.create<micro::Object<Size>>(id++);
    benchmark::DoNotOptimize(object);
    allocator.destroy(object);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CreateDestroy_arena<16>)->Name("BM_CreateDestroy/arena/16");
BENCHMARK(BM_CreateDestroy_arena<64>)->Name("BM_CreateDestroy/arena/64");
BENCHMARK(BM_CreateDestroy_arena<256>)->Name("BM_CreateDestroy/arena/256");

}  // namespace
