// ns per stack capture at a given depth: zheap's cached CFI unwinder (capture_stack),
// libgcc's _Unwind_Backtrace (what the cached one falls back to), glibc's backtrace();
// and what a whole DebugAllocator allocate+release pair costs next to malloc+free.
// Built with -O2 -fomit-frame-pointer, as Debian builds programs. Not a test; run it:
//   build/bench/stack_capture/stack_capture_bench
#include "debug/stack_capture.hpp"

#include <zheap/debug_allocator.hpp>

#include <benchmark/benchmark.h>

#include <execinfo.h>

#include <cstdlib>

namespace {

using zheap::debug::kMaxStackFrames;

enum class Unwinder { cached, unwind_backtrace, glibc_backtrace };

// Recurses until the stack holds `frames` frames in all (the benchmark library's own
// frames below us count), then runs the timed loop there.
template <class Body>
__attribute__((noinline)) void at_depth(int frames, Body& body) {
  std::uintptr_t probe[kMaxStackFrames];
  if (static_cast<int>(zheap::debug::capture_stack_unwind(probe, kMaxStackFrames, 0)) >= frames) {
    body();
    return;
  }
  at_depth(frames, body);
  benchmark::ClobberMemory();  // no tail call: every level keeps its frame
}

void BM_Capture(benchmark::State& state, Unwinder unwinder) {
  const int depth = static_cast<int>(state.range(0));
  std::size_t captured = 0;
  auto body = [&] {
    void* glibc_frames[kMaxStackFrames];
    std::uintptr_t frames[kMaxStackFrames];
    for (auto _ : state) {
      switch (unwinder) {
        case Unwinder::cached: captured = zheap::debug::capture_stack(frames, kMaxStackFrames, 0); break;
        case Unwinder::unwind_backtrace:
          captured = zheap::debug::capture_stack_unwind(frames, kMaxStackFrames, 0);
          break;
        case Unwinder::glibc_backtrace:
          captured = static_cast<std::size_t>(backtrace(glibc_frames, kMaxStackFrames));
          break;
      }
      benchmark::DoNotOptimize(frames);
      benchmark::DoNotOptimize(glibc_frames);
    }
  };
  at_depth(depth, body);
  state.counters["frames"] = static_cast<double>(captured);
}
BENCHMARK_CAPTURE(BM_Capture, cached_cfi, Unwinder::cached)->Arg(10)->Arg(30);
BENCHMARK_CAPTURE(BM_Capture, unwind_backtrace, Unwinder::unwind_backtrace)->Arg(10)->Arg(30);
BENCHMARK_CAPTURE(BM_Capture, glibc_backtrace, Unwinder::glibc_backtrace)->Arg(10)->Arg(30);

void BM_MallocFree(benchmark::State& state) {
  auto body = [&] {
    for (auto _ : state) {
      void* p = std::malloc(64);
      benchmark::DoNotOptimize(p);
      std::free(p);
    }
  };
  at_depth(static_cast<int>(state.range(0)), body);
}
BENCHMARK(BM_MallocFree)->Arg(10)->Arg(30);

// Stack depth 30 recorded at both ends; the quarantine makes frees FIFO-delayed, as in use.
void BM_DebugAllocateRelease(benchmark::State& state) {
  zheap::DebugAllocator debug;
  auto body = [&] {
    for (auto _ : state) {
      void* p = debug.allocate(64, 16, zheap::AllocationFamily::malloc);
      benchmark::DoNotOptimize(p);
      debug.release(p, zheap::AllocationFamily::malloc);
    }
  };
  at_depth(static_cast<int>(state.range(0)), body);
}
BENCHMARK(BM_DebugAllocateRelease)->Arg(10)->Arg(30);

}  // namespace

BENCHMARK_MAIN();
