// Every allocator zheap offers, as a fixture the shared suites (conformance, model, pmr)
// are typed over. Adding an allocator to all of them is one struct here plus its name in
// AllAllocatorFixtures at the end.
//
// A fixture struct:
//   static constexpr const char* name;       // the suite's name for it
//   static constexpr AllocatorTraits traits; // what the suites may expect of it
//   explicit Fixture(zheap::Allocator backing);  // build it (over `backing` if it has one)
//   zheap::Allocator allocator();
// It is built fresh for each test and destroyed at its end; its destructor releases what
// the allocator holds (an arena's buffers), so a TestingAllocator under `backing` sees
// no leak once the fixture is gone.
#pragma once

#include <zheap/arena_allocator.hpp>
#include <zheap/c_allocator.hpp>
#include <zheap/config.hpp>
#include <zheap/debug_allocator.hpp>
#include <zheap/failing_allocator.hpp>
#include <zheap/fixed_buffer_allocator.hpp>
#include <zheap/jemalloc_allocator.hpp>
#include <zheap/logging_allocator.hpp>
#include <zheap/page_allocator.hpp>
#include <zheap/smp_allocator.hpp>
#include <zheap/stack_fallback_allocator.hpp>
#include <zheap/testing_allocator.hpp>
#include <zheap/thread_safe_allocator.hpp>
#include <zheap/validating_allocator.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "violation_recorder.hpp"

// MemoryPool<T> has no Allocator handle (it hands out T objects, not bytes), so it is
// tested in its own file, not through these fixtures.

struct AllocatorTraits {
  // Built over the backing allocator given to its constructor. The out-of-memory passes
  // inject failures there (under the allocator); for the others they wrap the allocator.
  bool uses_backing = false;
  // Only the most recent block is really freed or resized (arena, fixed buffer): other
  // frees are accepted but reclaim nothing.
  bool frees_only_last = false;
  // Bytes it can hand out in all, counting what frees do not reclaim; SIZE_MAX if only
  // the system limits it. The suites size their requests to fit.
  std::size_t capacity = SIZE_MAX;
  // Safe to call from several threads at once.
  bool thread_safe = false;
};

// ---- Allocators

struct PageFixture {
  static constexpr const char* name = "page";
  static constexpr AllocatorTraits traits{.thread_safe = true};
  explicit PageFixture(zheap::Allocator) {}
  zheap::Allocator allocator() { return zheap::page_allocator(); }
};

struct CFixture {
  static constexpr const char* name = "c";
  static constexpr AllocatorTraits traits{.thread_safe = true};
  explicit CFixture(zheap::Allocator) {}
  zheap::Allocator allocator() { return zheap::c_allocator(); }
};

#if ZHEAP_HAVE_JEMALLOC
struct JemallocFixture {
  static constexpr const char* name = "jemalloc";
  static constexpr AllocatorTraits traits{.thread_safe = true};
  explicit JemallocFixture(zheap::Allocator) {}
  zheap::Allocator allocator() { return zheap::jemalloc_allocator(); }
};
#endif

// The process-wide smp allocator: nothing to build, nothing to release.
struct SmpFixture {
  static constexpr const char* name = "smp";
  static constexpr AllocatorTraits traits{.thread_safe = true};
  explicit SmpFixture(zheap::Allocator) {}
  zheap::Allocator allocator() { return zheap::smp_allocator(); }
};

struct ArenaFixture {
  static constexpr const char* name = "arena";
  static constexpr AllocatorTraits traits{.uses_backing = true, .frees_only_last = true};
  explicit ArenaFixture(zheap::Allocator backing) : arena(backing) {}
  zheap::Allocator allocator() { return arena.allocator(); }
  zheap::ArenaAllocator arena;
};

// A fixed buffer of 4 MiB, mapped for the fixture.
struct FixedBufferFixture {
  static constexpr std::size_t buffer_bytes = std::size_t{4} << 20;
  static constexpr const char* name = "fixed_buffer";
  static constexpr AllocatorTraits traits{.frees_only_last = true, .capacity = buffer_bytes};
  explicit FixedBufferFixture(zheap::Allocator)
      : buffer(zheap::page_allocator().alloc<std::byte>(buffer_bytes)), fixed(buffer) {}
  ~FixedBufferFixture() { zheap::page_allocator().free(buffer); }
  zheap::Allocator allocator() { return fixed.allocator(); }
  std::span<std::byte> buffer;
  zheap::FixedBufferAllocator fixed;
};

// 4 KiB inline, then the backing allocator.
struct StackFallbackFixture {
  static constexpr const char* name = "stack_fallback";
  static constexpr AllocatorTraits traits{.uses_backing = true};
  explicit StackFallbackFixture(zheap::Allocator backing) : stack(backing) {}
  zheap::Allocator allocator() { return stack.get(); }
  zheap::StackFallbackAllocator<4096> stack;
};

// ---- The wrappers, each over its backing

struct ThreadSafeFixture {
  static constexpr const char* name = "thread_safe";
  static constexpr AllocatorTraits traits{.uses_backing = true, .thread_safe = true};
  explicit ThreadSafeFixture(zheap::Allocator backing) : wrapper(backing) {}
  zheap::Allocator allocator() { return wrapper.allocator(); }
  zheap::ThreadSafeAllocator wrapper;
};

// Never induces a failure: what is checked is that it passes everything on.
struct FailingFixture {
  static constexpr const char* name = "failing";
  static constexpr AllocatorTraits traits{.uses_backing = true};
  explicit FailingFixture(zheap::Allocator backing) : wrapper(backing) {}
  zheap::Allocator allocator() { return wrapper.allocator(); }
  zheap::FailingAllocator wrapper;
};

// Logs into a counter, so that the formatting runs on every call without output.
struct LoggingFixture {
  static constexpr const char* name = "logging";
  static constexpr AllocatorTraits traits{.uses_backing = true};
  explicit LoggingFixture(zheap::Allocator backing) : wrapper(backing, zheap::LogSink{count_line, &lines}) {}
  zheap::Allocator allocator() { return wrapper.allocator(); }
  static void count_line(void* ctx, const char*, std::size_t) { ++*static_cast<std::size_t*>(ctx); }
  std::size_t lines = 0;
  zheap::LoggingAllocator wrapper;
};

struct TestingFixture {
  static constexpr const char* name = "testing";
  static constexpr AllocatorTraits traits{.uses_backing = true, .thread_safe = true};
  explicit TestingFixture(zheap::Allocator backing) : wrapper(backing) {}
  ~TestingFixture() { EXPECT_EQ(wrapper.leaked_blocks(), 0u) << "the suite leaked through TestingAllocator"; }
  zheap::Allocator allocator() { return wrapper.allocator(); }
  zheap::TestingAllocator wrapper;
};

struct ValidatingFixture {
  static constexpr const char* name = "validating";
  static constexpr AllocatorTraits traits{.uses_backing = true, .thread_safe = true};
  explicit ValidatingFixture(zheap::Allocator backing) : wrapper(backing, fail_test_on_violation()) {}
  zheap::Allocator allocator() { return wrapper.allocator(); }
  zheap::ValidatingAllocator wrapper;
};

// Every error it finds fails the test; its destructor checks that nothing leaked, then
// gives everything (quarantine included) back to the backing allocator.
struct DebugFixture {
  static constexpr const char* name = "debug";
  static constexpr AllocatorTraits traits{.uses_backing = true, .thread_safe = true};
  explicit DebugFixture(zheap::Allocator backing) : debug(options(backing)) {}
  ~DebugFixture() { EXPECT_EQ(debug.leak_check().leaked_blocks(), 0u) << "the suite leaked through DebugAllocator"; }
  zheap::Allocator allocator() { return debug.allocator(); }
  static zheap::DebugOptions options(zheap::Allocator backing) {
    zheap::DebugOptions o;
    o.backing = backing;
    o.quarantine_bytes = std::size_t{1} << 20;
    o.on_error = zheap::OnError::report;
    o.error_handler = [](void*, const zheap::DebugError& e) {
      ADD_FAILURE() << "DebugAllocator: " << zheap::debug_error_name(e.kind) << " on " << e.address;
    };
    return o;
  }
  zheap::DebugAllocator debug;
};

// ---- The list the suites are typed over

using AllAllocatorFixtures = ::testing::Types<PageFixture, CFixture,
#if ZHEAP_HAVE_JEMALLOC
                                              JemallocFixture,
#endif
                                              SmpFixture, ArenaFixture, FixedBufferFixture, StackFallbackFixture, ThreadSafeFixture, FailingFixture, LoggingFixture, TestingFixture,
                                              ValidatingFixture, DebugFixture>;

// Names the typed tests after the fixture ("Conformance/page.ZeroLength").
struct AllocatorFixtureNames {
  template <class Fixture>
  static std::string GetName(int) {
    return Fixture::name;
  }
};

// The bytes a suite may ask for in one request from an allocator with these traits:
// `wanted`, or less when the allocator's capacity is small.
constexpr std::size_t fitting_size(const AllocatorTraits& traits, std::size_t wanted) {
  const std::size_t most = traits.capacity / 8;
  return wanted < most ? wanted : most;
}
