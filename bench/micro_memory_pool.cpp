// MemoryPool<T> against new/delete (micro_malloc.cpp) for small objects.
#include <zheap/memory_pool.hpp>
#include <zheap/page_allocator.hpp>

#include "micro_support.hpp"

namespace {

// create + destroy of one object: a pop from and a push onto the pool's free list.
template <std::size_t Size>
void BM_CreateDestroy_memory_pool(benchmark::State& state) {
  zheap::MemoryPool<micro::Object<Size>> pool(zheap::page_allocator());
  std::size_t id = 0;
  for (auto _ : state) {
    auto* object = pool.create(id++);
    benchmark::DoNotOptimize(object);
    pool.destroy(object);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CreateDestroy_memory_pool<16>)->Name("BM_CreateDestroy/memory_pool/16");
BENCHMARK(BM_CreateDestroy_memory_pool<64>)->Name("BM_CreateDestroy/memory_pool/64");
BENCHMARK(BM_CreateDestroy_memory_pool<256>)->Name("BM_CreateDestroy/memory_pool/256");

// kBatch objects alive at once, then all destroyed; after the first batch every slot
// comes from the free list (the slot freed last is reused first).
template <std::size_t Size>
void BM_CreateDestroyBatch_memory_pool(benchmark::State& state) {
  zheap::MemoryPool<micro::Object<Size>> pool(zheap::page_allocator());
  micro::Object<Size>* objects[micro::kBatch];
  for (auto _ : state) {
    for (std::size_t i = 0; i < micro::kBatch; ++i) objects[i] = pool.create(i);
    for (auto* object : objects) pool.destroy(object);
  }
  state.SetItemsProcessed(state.iterations() * micro::kBatch);
}
BENCHMARK(BM_CreateDestroyBatch_memory_pool<16>)->Name("BM_CreateDestroyBatch/memory_pool/16");
BENCHMARK(BM_CreateDestroyBatch_memory_pool<64>)->Name("BM_CreateDestroyBatch/memory_pool/64");
BENCHMARK(BM_CreateDestroyBatch_memory_pool<256>)->Name("BM_CreateDestroyBatch/memory_pool/256");

}  // namespace
