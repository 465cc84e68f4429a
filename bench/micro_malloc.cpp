// The baselines: malloc/free and new/delete, measured exactly as the zheap allocators are
// in micro_arena.cpp, micro_fixed_buffer.cpp and micro_memory_pool.cpp.
#include <cstdlib>

#include "micro_support.hpp"

namespace {

// kBatch blocks allocated, then all freed: malloc's counterpart of an arena's bump-then-reset.
void BM_BatchAlloc_malloc(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  void* blocks[micro::kBatch];
  for (auto _ : state) {
    for (void*& block : blocks) {
      block = std::malloc(size);
      micro::touch(block, size);
    }
    for (void* block : blocks) std::free(block);
  }
  state.SetItemsProcessed(state.iterations() * micro::kBatch);
}
BENCHMARK(BM_BatchAlloc_malloc)->Name("BM_BatchAlloc/malloc")->Apply(micro::small_sizes);

// One block allocated and freed at once, over and over.
void BM_AllocFreePair_malloc(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* block = std::malloc(size);
    micro::touch(block, size);
    std::free(block);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AllocFreePair_malloc)->Name("BM_AllocFreePair/malloc")->Apply(micro::small_sizes);

// new + delete of one object.
template <std::size_t Size>
void BM_CreateDestroy_new(benchmark::State& state) {
  std::size_t id = 0;
  for (auto _ : state) {
    auto* object = new micro::Object<Size>(id++);
    benchmark::DoNotOptimize(object);
    delete object;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CreateDestroy_new<16>)->Name("BM_CreateDestroy/new/16");
BENCHMARK(BM_CreateDestroy_new<64>)->Name("BM_CreateDestroy/new/64");
BENCHMARK(BM_CreateDestroy_new<256>)->Name("BM_CreateDestroy/new/256");

// kBatch objects made with new, then all deleted (a pool's common pattern: many alive).
template <std::size_t Size>
void BM_CreateDestroyBatch_new(benchmark::State& state) {
  micro::Object<Size>* objects[micro::kBatch];
  for (auto _ : state) {
    for (std::size_t i = 0; i < micro::kBatch; ++i) objects[i] = new micro::Object<Size>(i);
    for (auto* object : objects) delete object;
  }
  state.SetItemsProcessed(state.iterations() * micro::kBatch);
}
BENCHMARK(BM_CreateDestroyBatch_new<16>)->Name("BM_CreateDestroyBatch/new/16");
BENCHMARK(BM_CreateDestroyBatch_new<64>)->Name("BM_CreateDestroyBatch/new/64");
BENCHMARK(BM_CreateDestroyBatch_new<256>)->Name("BM_CreateDestroyBatch/new/256");

}  // namespace

BENCHMARK_MAIN();
