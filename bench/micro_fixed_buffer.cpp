// FixedBufferAllocator against malloc/free (micro_malloc.cpp) for small objects.
#include <zheap/fixed_buffer_allocator.hpp>

#include <array>

#include "micro_support.hpp"

namespace {

// Room for one batch of the largest size, with slack for alignment.
alignas(64) std::array<std::byte, micro::kBatch * 256 * 2> g_buffer;

// kBatch bump allocations from a caller's buffer, then reset().
void BM_BatchAlloc_fixed_buffer(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  zheap::FixedBufferAllocator fixed(g_buffer);
  zheap::Allocator allocator = fixed.allocator();
  for (auto _ : state) {
    for (std::size_t i = 0; i < micro::kBatch; ++i) {
      std::span<std::byte> block = allocator.alloc<std::byte>(size);
      micro::touch(block.data(), size);
    }
    fixed.reset();
  }
  state.SetItemsProcessed(state.iterations() * micro::kBatch);
}
BENCHMARK(BM_BatchAlloc_fixed_buffer)->Name("BM_BatchAlloc/fixed_buffer")->Apply(micro::small_sizes);

// Alloc then free of the same block (the last allocation is rolled back).
void BM_AllocFreePair_fixed_buffer(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  zheap::FixedBufferAllocator fixed(g_buffer);
  zheap::Allocator allocator = fixed.allocator();
  for (auto _ : state) {
    std::span<std::byte> block = allocator.alloc<std::byte>(size);
    micro::touch(block.data(), size);
    allocator.free(block);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AllocFreePair_fixed_buffer)->Name("BM_AllocFreePair/fixed_buffer")->Apply(micro::small_sizes);

// Allocator::create / destroy of one object in the buffer.
template <std::size_t Size>
void BM_CreateDestroy_fixed_buffer(benchmark::State& state) {
  zheap::FixedBufferAllocator fixed(g_buffer);
  zheap::Allocator allocator = fixed.allocator();
  std::size_t id = 0;
  for (auto _ : state) {
    auto* object = allocator.create<micro::Object<Size>>(id++);
    benchmark::DoNotOptimize(object);
    allocator.destroy(object);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CreateDestroy_fixed_buffer<16>)->Name("BM_CreateDestroy/fixed_buffer/16");
BENCHMARK(BM_CreateDestroy_fixed_buffer<64>)->Name("BM_CreateDestroy/fixed_buffer/64");
BENCHMARK(BM_CreateDestroy_fixed_buffer<256>)->Name("BM_CreateDestroy/fixed_buffer/256");

}  // namespace
