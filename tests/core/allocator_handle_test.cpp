// The Allocator handle's own logic (zero length, overflow, realloc's fallback, create's
// cleanup), checked against a scripted allocator that records every vtable call.
#include <zheap/allocator.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace {
using zheap::Alignment;
using zheap::Allocator;

struct Call {
  char op;  // 'a'lloc, 'r'esize, 'm'remap, 'f'ree
  std::size_t len, new_len, alignment;
};

// Allocates with aligned_alloc; resize and remap answer as scripted.
struct ScriptedAllocator {
  std::vector<Call> calls;
  bool resize_answer = false;
  bool remap_supported = false;
  bool fail_alloc = false;

  Allocator allocator() { return Allocator(this, &vtable); }

  static ScriptedAllocator& self(void* ctx) { return *static_cast<ScriptedAllocator*>(ctx); }
  static void* alloc(void* ctx, std::size_t len, Alignment a, std::uintptr_t) noexcept {
    self(ctx).calls.push_back({'a', len, 0, a.bytes()});
    if (self(ctx).fail_alloc) return nullptr;
    return std::aligned_alloc(a.bytes(), a.forward(len));
  }
  static bool resize(void* ctx, void*, std::size_t len, Alignment a, std::size_t new_len, std::uintptr_t) noexcept {
    self(ctx).calls.push_back({'r', len, new_len, a.bytes()});
    return self(ctx).resize_answer;
  }
  static void* remap(void* ctx, void* p, std::size_t len, Alignment a, std::size_t new_len, std::uintptr_t) noexcept {
    self(ctx).calls.push_back({'m', len, new_len, a.bytes()});
    return self(ctx).remap_supported ? p : nullptr;  // "in place", for the test's purpose
  }
  static void free(void* ctx, void* p, std::size_t len, Alignment a, std::uintptr_t) noexcept {
    self(ctx).calls.push_back({'f', len, 0, a.bytes()});
    std::free(p);
  }
  static constexpr Allocator::VTable vtable{alloc, resize, remap, free};
};

TEST(AllocatorHandle, ZeroLengthNeverReachesTheAllocator) {
  ScriptedAllocator s;
  Allocator a = s.allocator();
  auto empty = a.alloc<double>(0);
  EXPECT_EQ(empty.size(), 0u);
  ASSERT_NE(empty.data(), nullptr);
  EXPECT_TRUE(Alignment::of<double>().check(empty.data()));
  a.free(empty);
  auto big_aligned = a.alloc<char>(0, Alignment::of_bytes(4096));
  EXPECT_TRUE(Alignment::of_bytes(4096).check(big_aligned.data()));
  EXPECT_TRUE(s.calls.empty());
}

TEST(AllocatorHandle, OverflowingCountIsOutOfMemoryWithoutACall) {
  ScriptedAllocator s;
  auto span = s.allocator().alloc<std::uint64_t>(SIZE_MAX / 4);
  EXPECT_EQ(span.data(), nullptr);
  EXPECT_TRUE(span.empty());
  EXPECT_TRUE(s.calls.empty());
}

TEST(AllocatorHandle, OutOfMemoryIsAnEmptySpanWithNullData) {
  ScriptedAllocator s;
  s.fail_alloc = true;
  auto span = s.allocator().alloc<int>(10);
  EXPECT_EQ(span.data(), nullptr);
  EXPECT_EQ(s.allocator().create<int>(5), nullptr);
}

TEST(AllocatorHandle, SizesAndAlignmentArePassedInBytes) {
  ScriptedAllocator s;
  Allocator a = s.allocator();
  auto span = a.alloc<std::uint32_t>(10, Alignment::of_bytes(64));
  ASSERT_NE(span.data(), nullptr);
  a.free(span, Alignment::of_bytes(64));
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_EQ(s.calls[0].op, 'a');
  EXPECT_EQ(s.calls[0].len, 40u);
  EXPECT_EQ(s.calls[0].alignment, 64u);
  EXPECT_EQ(s.calls[1].op, 'f');
  EXPECT_EQ(s.calls[1].len, 40u);
  EXPECT_EQ(s.calls[1].alignment, 64u);
}

TEST(AllocatorHandle, ReallocFallsBackToAllocCopyFreeAndKeepsContents) {
  ScriptedAllocator s;
  Allocator a = s.allocator();
  auto span = a.alloc<int>(4);
  for (int i = 0; i < 4; ++i) span[i] = i * 11;
  auto grown = a.realloc(span, 100);
  ASSERT_EQ(grown.size(), 100u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(grown[i], i * 11);
  // alloc(16), remap tried (16 -> 400), alloc(400), free(16)
  ASSERT_EQ(s.calls.size(), 4u);
  EXPECT_EQ(s.calls[1].op, 'm');
  EXPECT_EQ(s.calls[2].op, 'a');
  EXPECT_EQ(s.calls[2].len, 400u);
  EXPECT_EQ(s.calls[3].op, 'f');
  EXPECT_EQ(s.calls[3].len, 16u);
  a.free(grown);
}

TEST(AllocatorHandle, ReallocUsesRemapWhenTheAllocatorCan) {
  ScriptedAllocator s;
  s.remap_supported = true;
  Allocator a = s.allocator();
  auto span = a.alloc<char>(8);
  auto same = a.realloc(span, 4);
  EXPECT_EQ(same.data(), span.data());
  EXPECT_EQ(same.size(), 4u);
  a.free(same);
  EXPECT_EQ(s.calls.size(), 3u);  // alloc, remap, free: no copy
}

TEST(AllocatorHandle, ReallocFailureLeavesTheOldBlockUsable) {
  ScriptedAllocator s;
  Allocator a = s.allocator();
  auto span = a.alloc<char>(8);
  span[0] = 'x';
  s.fail_alloc = true;
  auto failed = a.realloc(span, 1 << 20);
  EXPECT_EQ(failed.data(), nullptr);
  EXPECT_EQ(span[0], 'x');
  s.fail_alloc = false;
  a.free(span);
  EXPECT_EQ(s.calls.back().op, 'f');
}

TEST(AllocatorHandle, ResizeToZeroFreesAndResizeOfEmptyFails) {
  ScriptedAllocator s;
  Allocator a = s.allocator();
  auto span = a.alloc<char>(8);
  EXPECT_TRUE(a.resize(span, 0));
  EXPECT_EQ(s.calls.back().op, 'f');
  EXPECT_FALSE(a.resize(std::span<char>{}, 3));
  EXPECT_TRUE(a.resize(std::span<char>{}, 0));
}

TEST(AllocatorHandle, ResizeAsksTheAllocatorWithByteLengths) {
  ScriptedAllocator s;
  s.resize_answer = true;
  Allocator a = s.allocator();
  auto span = a.alloc<std::uint16_t>(8);
  EXPECT_TRUE(a.resize(span, 12));
  EXPECT_EQ(s.calls.back().len, 16u);
  EXPECT_EQ(s.calls.back().new_len, 24u);
  a.free(std::span<std::uint16_t>(span.data(), 12));
}

TEST(AllocatorHandle, DupeAndDupeZ) {
  ScriptedAllocator s;
  Allocator a = s.allocator();
  const int source[] = {1, 2, 3};
  auto copy = a.dupe(std::span<const int>(source));
  ASSERT_EQ(copy.size(), 3u);
  EXPECT_EQ(copy[2], 3);
  a.free(copy);
  auto z = a.dupe_z("hello");
  ASSERT_EQ(z.size(), 6u);
  EXPECT_STREQ(z.data(), "hello");
  a.free(z);
  EXPECT_EQ(s.calls.back().len, 6u);
}

struct Tracked {
  static inline int live = 0;
  explicit Tracked(bool fail) {
    if (fail) throw std::runtime_error("constructor failed");
    ++live;
  }
  ~Tracked() { --live; }
  char payload[24];
};

TEST(AllocatorHandle, CreateDestroyRunConstructorAndDestructor) {
  ScriptedAllocator s;
  Allocator a = s.allocator();
  Tracked* t = a.create<Tracked>(false);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Tracked::live, 1);
  a.destroy(t);
  EXPECT_EQ(Tracked::live, 0);
  a.destroy(static_cast<Tracked*>(nullptr));
  EXPECT_EQ(s.calls.size(), 2u);
}

TEST(AllocatorHandle, CreateFreesTheMemoryWhenTheConstructorThrows) {
  ScriptedAllocator s;
  Allocator a = s.allocator();
  EXPECT_THROW(a.create<Tracked>(true), std::runtime_error);
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_EQ(s.calls[1].op, 'f');
  EXPECT_EQ(s.calls[1].len, sizeof(Tracked));
}
}  // namespace
