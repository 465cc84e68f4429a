// PmrResource: a std::pmr::memory_resource over any zheap Allocator.
//
// For: handing a zheap allocator (an arena, a fixed buffer, a pool, ...) to code written
// against std::pmr containers: std::pmr::vector<int> v(&resource).
// Out of memory throws std::bad_alloc, as memory_resource requires; that is why this
// is header-only: it compiles in the user's translation unit, with the user's exception
// settings, while libzheap-core builds with -fno-exceptions.
// do_deallocate passes the size and alignment it is given on to the allocator (pmr
// frees are sized, like zheap's). Zero-byte requests are served as one byte, since a
// memory_resource must return a distinct, deallocatable pointer for them.
// Two PmrResources are equal when they wrap the same Allocator (then either may free
// what the other allocated). Thread safety: as the wrapped allocator's.
#pragma once

#include <zheap/allocator.hpp>

#include <memory_resource>
#include <new>

namespace zheap {

class PmrResource : public std::pmr::memory_resource {
 public:
  explicit PmrResource(Allocator allocator) noexcept : allocator_(allocator) {}

  Allocator allocator() const noexcept { return allocator_; }

 private:
  static std::size_t nonzero(std::size_t bytes) noexcept { return bytes == 0 ? 1 : bytes; }

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (!Alignment::is_valid(alignment)) throw std::bad_alloc();
    void* p = allocator_.raw_alloc(nonzero(bytes), Alignment::of_bytes(alignment), ZHEAP_RETURN_ADDRESS());
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }

  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    allocator_.raw_free(p, nonzero(bytes), Alignment::of_bytes(alignment), ZHEAP_RETURN_ADDRESS());
  }

  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    if (this == &other) return true;
#if defined(__cpp_rtti) || defined(__GXX_RTTI)
    const auto* zheap_other = dynamic_cast<const PmrResource*>(&other);
    return zheap_other != nullptr && zheap_other->allocator_ == allocator_;
#else
    return false;  // without RTTI another resource cannot be known to be a PmrResource
#endif
  }

  Allocator allocator_;
};

}  // namespace zheap
