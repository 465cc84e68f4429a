// Allocator: the handle every zheap allocator is passed around as.
//
// A non-owning pair {ctx, vtable}, copied by value, the way Zig's std.mem.Allocator is.
// Code that allocates takes an Allocator parameter and never knows which allocator is
// behind it; the caller chooses (page, arena, fixed buffer, pool, debug, smp, ...).
//
// ---------------------------------------------------------------------------------------
// THE CONTRACT (written here once; every allocator in zheap implements it, and
// ValidatingAllocator checks it call by call)
//
//   alloc(ctx, len, alignment, ret_addr) -> void*
//       len > 0 (the handle answers zero-length requests itself, see below).
//       Returns a pointer to at least `len` bytes aligned to `alignment`, or nullptr when
//       out of memory. Any power-of-two alignment may be asked for. Never throws.
//
//   resize(ctx, memory, len, alignment, new_len, ret_addr) -> bool
//       Grows or shrinks the block IN PLACE or not at all. true: the block now holds
//       `new_len` bytes at the same address. false: nothing changed. new_len > 0.
//
//   remap(ctx, memory, len, alignment, new_len, ret_addr) -> void*
//       Like resize, but the block may move (e.g. with mremap): returns the block's new
//       address (possibly `memory` itself), contents preserved up to min(len, new_len);
//       nullptr means nothing changed and the caller should allocate, copy and free
//       itself. An allocator that cannot move a block cheaper than that returns nullptr.
//
//   free(ctx, memory, len, alignment, ret_addr)
//       len > 0. Releases the block.
//
//   For every call on an existing block, `memory`, `len` and `alignment` are exactly
//   the address, the length and the alignment of the last successful alloc / resize /
//   remap of that block (sized free, as in Zig). `ret_addr` is the caller's return
//   address, for allocators that record where memory came from; it may be zero.
//
// Zero-length requests never reach an allocator: alloc<T>(0) returns an empty span whose
// data() is a non-null, suitably aligned sentinel, and free() of an empty span does
// nothing. Out of memory is an empty span whose data() is nullptr, or a nullptr from
// create(). Nothing here throws, except a constructor run by create().
// ---------------------------------------------------------------------------------------
#pragma once

#include <zheap/alignment.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

namespace zheap {

// The caller's return address, handed to allocators that record where memory came from.
#define ZHEAP_RETURN_ADDRESS() (reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)))

class Allocator {
 public:
  struct VTable {
    void* (*alloc)(void* ctx, std::size_t len, Alignment alignment, std::uintptr_t ret_addr);
    bool (*resize)(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                   std::uintptr_t ret_addr);
    void* (*remap)(void* ctx, void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                   std::uintptr_t ret_addr);
    void (*free)(void* ctx, void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr);
  };

  // Ready-made VTable entries for allocators that cannot do one of the operations.
  static bool no_resize(void*, void*, std::size_t, Alignment, std::size_t, std::uintptr_t) noexcept { return false; }
  static void* no_remap(void*, void*, std::size_t, Alignment, std::size_t, std::uintptr_t) noexcept { return nullptr; }
  static void no_free(void*, void*, std::size_t, Alignment, std::uintptr_t) noexcept {}

  constexpr Allocator(void* ctx, const VTable* vtable) noexcept : ctx(ctx), vtable(vtable) {}

  void* ctx;
  const VTable* vtable;

  friend bool operator==(const Allocator& a, const Allocator& b) noexcept {
    return a.ctx == b.ctx && a.vtable == b.vtable;
  }

  // ---- Raw byte interface: the vtable, called directly. `len`/`new_len` must be > 0.
  void* raw_alloc(std::size_t len, Alignment alignment, std::uintptr_t ret_addr) const noexcept {
    return vtable->alloc(ctx, len, alignment, ret_addr);
  }
  bool raw_resize(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                  std::uintptr_t ret_addr) const noexcept {
    return vtable->resize(ctx, memory, len, alignment, new_len, ret_addr);
  }
  void* raw_remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                  std::uintptr_t ret_addr) const noexcept {
    return vtable->remap(ctx, memory, len, alignment, new_len, ret_addr);
  }
  void raw_free(void* memory, std::size_t len, Alignment alignment, std::uintptr_t ret_addr) const noexcept {
    vtable->free(ctx, memory, len, alignment, ret_addr);
  }

  // ---- Typed interface over arrays. Elements are bytes to zheap (no constructors run),
  // so T must be trivially copyable; use create/destroy for objects with constructors.
  // An allocation made with an alignment other than alignof(T) must pass that same
  // alignment to free / resize / remap / realloc.

  template <class T>
  std::span<T> alloc(std::size_t n, Alignment alignment = Alignment::of<T>()) const noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "alloc<T>: T must be trivially copyable; use create<T>()");
    alignment = alignment.max(Alignment::of<T>());
    if (n == 0) return {zero_length_sentinel<T>(alignment), 0};
    std::size_t bytes;
    if (__builtin_mul_overflow(n, sizeof(T), &bytes)) return {};
    void* p = raw_alloc(bytes, alignment, ZHEAP_RETURN_ADDRESS());
    if (p == nullptr) return {};
    return {static_cast<T*>(p), n};
  }

  template <class T>
  void free(std::span<T> s, Alignment alignment = Alignment::of<T>()) const noexcept {
    if (s.empty() || s.data() == nullptr) return;
    raw_free(const_cast<std::remove_const_t<T>*>(s.data()), s.size_bytes(), alignment.max(Alignment::of<T>()),
             ZHEAP_RETURN_ADDRESS());
  }

  // In place or not at all. resize(s, 0) frees `s` and returns true (as Zig's resize does);
  // an empty `s` can only be "resized" to zero.
  template <class T>
  bool resize(std::span<T> s, std::size_t n, Alignment alignment = Alignment::of<T>()) const noexcept {
    alignment = alignment.max(Alignment::of<T>());
    if (n == 0) {
      free(s, alignment);
      return true;
    }
    if (s.empty() || s.data() == nullptr) return false;
    std::size_t bytes;
    if (__builtin_mul_overflow(n, sizeof(T), &bytes)) return false;
    return raw_resize(s.data(), s.size_bytes(), alignment, bytes, ZHEAP_RETURN_ADDRESS());
  }

  // May move; returns an empty span with data() == nullptr when the allocator cannot do
  // better than allocate + copy + free (then `s` is unchanged). Never copies by hand.
  template <class T>
  std::span<T> remap(std::span<T> s, std::size_t n, Alignment alignment = Alignment::of<T>()) const noexcept {
    alignment = alignment.max(Alignment::of<T>());
    if (s.empty() || s.data() == nullptr) return {};
    if (n == 0) {
      free(s, alignment);
      return {zero_length_sentinel<T>(alignment), 0};
    }
    std::size_t bytes;
    if (__builtin_mul_overflow(n, sizeof(T), &bytes)) return {};
    void* p = raw_remap(s.data(), s.size_bytes(), alignment, bytes, ZHEAP_RETURN_ADDRESS());
    if (p == nullptr) return {};
    return {static_cast<T*>(p), n};
  }

  // Always succeeds unless out of memory: in place, remapped, or allocate + copy + free.
  // On failure returns an empty span with data() == nullptr and `s` is still valid.
  template <class T>
  std::span<T> realloc(std::span<T> s, std::size_t n, Alignment alignment = Alignment::of<T>()) const noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "realloc<T>: T must be trivially copyable");
    alignment = alignment.max(Alignment::of<T>());
    if (s.empty() || s.data() == nullptr) return alloc<T>(n, alignment);
    if (n == 0) {
      free(s, alignment);
      return {zero_length_sentinel<T>(alignment), 0};
    }
    std::size_t bytes;
    if (__builtin_mul_overflow(n, sizeof(T), &bytes)) return {};
    const std::uintptr_t ret_addr = ZHEAP_RETURN_ADDRESS();
    if (void* p = raw_remap(s.data(), s.size_bytes(), alignment, bytes, ret_addr)) return {static_cast<T*>(p), n};
    void* p = raw_alloc(bytes, alignment, ret_addr);
    if (p == nullptr) return {};
    std::memcpy(p, s.data(), std::min(bytes, s.size_bytes()));
    raw_free(s.data(), s.size_bytes(), alignment, ret_addr);
    return {static_cast<T*>(p), n};
  }

  // A copy of `s` in memory from this allocator; free it with free().
  template <class T>
  std::span<std::remove_const_t<T>> dupe(std::span<T> s) const noexcept {
    using U = std::remove_const_t<T>;
    std::span<U> copy = alloc<U>(s.size());
    if (copy.data() != nullptr && !s.empty()) std::memcpy(copy.data(), s.data(), s.size_bytes());
    return copy;
  }

  // A NUL-terminated copy of a string, for C APIs. The span covers the terminator too
  // (size() == s.size() + 1), so free() of it releases exactly what was allocated.
  std::span<char> dupe_z(std::string_view s) const noexcept {
    std::span<char> copy = alloc<char>(s.size() + 1);
    if (copy.data() == nullptr) return copy;
    if (!s.empty()) std::memcpy(copy.data(), s.data(), s.size());
    copy[s.size()] = '\0';
    return copy;
  }

  // ---- Single objects, constructed in place. nullptr when out of memory. If T's
  // constructor throws, the memory is released and the exception goes on.
  template <class T, class... Args>
  T* create(Args&&... args) const {
    void* p = raw_alloc(sizeof(T), Alignment::of<T>(), ZHEAP_RETURN_ADDRESS());
    if (p == nullptr) return nullptr;
#if defined(__cpp_exceptions)
    try {
      return ::new (p) T(std::forward<Args>(args)...);
    } catch (...) {
      raw_free(p, sizeof(T), Alignment::of<T>(), ZHEAP_RETURN_ADDRESS());
      throw;
    }
#else
    return ::new (p) T(std::forward<Args>(args)...);
#endif
  }

  // Runs ~T and frees the object; nullptr is ignored.
  template <class T>
  void destroy(T* p) const noexcept {
    if (p == nullptr) return;
    using U = std::remove_cv_t<T>;
    U* object = const_cast<U*>(p);
    object->~U();
    raw_free(object, sizeof(U), Alignment::of<U>(), ZHEAP_RETURN_ADDRESS());
  }

 private:
  template <class T>
  static T* zero_length_sentinel(Alignment alignment) noexcept {
    // Non-null and aligned, as Zig's zero-length slices are; never dereferenced (its
    // length is zero) and never handed to an allocator (free() skips empty spans).
    return reinterpret_cast<T*>(alignment.bytes());
  }
};

}  // namespace zheap
