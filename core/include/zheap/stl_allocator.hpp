// StlAllocator<T>: a standard-library allocator (std::vector<T, StlAllocator<T>>, ...)
// over any zheap Allocator.
//
// For: standard containers whose memory must come from a zheap allocator without pmr's
// virtual calls. It holds only the Allocator handle (two pointers), so copies and
// rebinds are cheap; two StlAllocators compare equal when their handles are equal,
// which is what lets a container free with a copy what another copy allocated.
// allocate() throws std::bad_alloc when out of memory (header-only for that reason:
// it compiles with the user's exception settings). deallocate() is sized, as zheap's
// free is; the alignment is alignof(T). Zero-element requests are served as one
// element so the pointer is real and deallocatable.
// Thread safety: as the wrapped allocator's.
#pragma once

#include <zheap/allocator.hpp>

#include <cstddef>
#include <limits>
#include <new>
#include <type_traits>

namespace zheap {

template <class T>
class StlAllocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::false_type;

  constexpr explicit StlAllocator(Allocator allocator) noexcept : allocator_(allocator) {}
  template <class U>
  constexpr StlAllocator(const StlAllocator<U>& other) noexcept : allocator_(other.allocator()) {}

  template <class U>
  struct rebind {
    using other = StlAllocator<U>;
  };

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    void* p = allocator_.raw_alloc(bytes(n), Alignment::of<T>(), ZHEAP_RETURN_ADDRESS());
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }

  void deallocate(T* p, std::size_t n) noexcept {
    allocator_.raw_free(p, bytes(n), Alignment::of<T>(), ZHEAP_RETURN_ADDRESS());
  }

  constexpr Allocator allocator() const noexcept { return allocator_; }

  template <class U>
  friend constexpr bool operator==(const StlAllocator& a, const StlAllocator<U>& b) noexcept {
    return a.allocator() == b.allocator();
  }

 private:
  static constexpr std::size_t bytes(std::size_t n) noexcept { return (n == 0 ? 1 : n) * sizeof(T); }

  Allocator allocator_;
};

}  // namespace zheap
