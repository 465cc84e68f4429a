// The 20 replaceable operator new / delete forms of C++17/20.
//
// The only shim file built with exceptions: operator new must throw std::bad_alloc. The
// loop is the standard's ([new.delete.single]): on failure call the new-handler and try
// again; no handler means throw (or, for the nothrow forms, return nullptr; a handler that
// throws bad_alloc also ends a nothrow call with nullptr).
#include <new>

#include "libc_semantics.hpp"

namespace {

using zheap::shim::api;
namespace c_api = zheap::shim::c_api;

void* allocate_or_null(std::size_t size, std::size_t alignment, api family) noexcept {
  return c_api::allocate_aligned(size, alignment, family);
}

void* allocate_or_throw(std::size_t size, std::size_t alignment, api family) {
  for (;;) {
    if (void* p = allocate_or_null(size, alignment, family)) [[likely]] return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* allocate_nothrow(std::size_t size, std::size_t alignment, api family) noexcept {
  try {
    for (;;) {
      if (void* p = allocate_or_null(size, alignment, family)) [[likely]] return p;
      std::new_handler handler = std::get_new_handler();
      if (handler == nullptr) return nullptr;
      handler();
    }
  } catch (...) {
    return nullptr;
  }
}

void release(void* ptr, api family) noexcept { c_api::release(ptr, family, "operator delete"); }

void release_sized(void* ptr, std::size_t size, api family) noexcept {
  c_api::release_sized(ptr, size, family, "operator delete");
}

std::size_t alignment_of(std::align_val_t alignment) noexcept { return static_cast<std::size_t>(alignment); }

}  // namespace

#define ZHEAP_OPERATOR [[gnu::visibility("default")]]
constexpr std::size_t plain = c_api::default_alignment;

// new
ZHEAP_OPERATOR void* operator new(std::size_t size) { return allocate_or_throw(size, plain, api::new_object); }
ZHEAP_OPERATOR void* operator new[](std::size_t size) { return allocate_or_throw(size, plain, api::new_array); }
ZHEAP_OPERATOR void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return allocate_nothrow(size, plain, api::new_object);
}
ZHEAP_OPERATOR void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return allocate_nothrow(size, plain, api::new_array);
}
ZHEAP_OPERATOR void* operator new(std::size_t size, std::align_val_t alignment) {
  return allocate_or_throw(size, alignment_of(alignment), api::new_object);
}
ZHEAP_OPERATOR void* operator new[](std::size_t size, std::align_val_t alignment) {
  return allocate_or_throw(size, alignment_of(alignment), api::new_array);
}
ZHEAP_OPERATOR void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return allocate_nothrow(size, alignment_of(alignment), api::new_object);
}
ZHEAP_OPERATOR void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return allocate_nothrow(size, alignment_of(alignment), api::new_array);
}

// delete
ZHEAP_OPERATOR void operator delete(void* ptr) noexcept { release(ptr, api::new_object); }
ZHEAP_OPERATOR void operator delete[](void* ptr) noexcept { release(ptr, api::new_array); }
ZHEAP_OPERATOR void operator delete(void* ptr, const std::nothrow_t&) noexcept { release(ptr, api::new_object); }
ZHEAP_OPERATOR void operator delete[](void* ptr, const std::nothrow_t&) noexcept { release(ptr, api::new_array); }
ZHEAP_OPERATOR void operator delete(void* ptr, std::size_t size) noexcept {
  release_sized(ptr, size, api::new_object);
}
ZHEAP_OPERATOR void operator delete[](void* ptr, std::size_t size) noexcept {
  release_sized(ptr, size, api::new_array);
}
// Over-aligned blocks: the heaps find their size from the pointer, so the aligned and
// sized+aligned forms all free without size.
ZHEAP_OPERATOR void operator delete(void* ptr, std::align_val_t) noexcept { release(ptr, api::new_object); }
ZHEAP_OPERATOR void operator delete[](void* ptr, std::align_val_t) noexcept { release(ptr, api::new_array); }
ZHEAP_OPERATOR void operator delete(void* ptr, std::align_val_t, const std::nothrow_t&) noexcept {
  release(ptr, api::new_object);
}
ZHEAP_OPERATOR void operator delete[](void* ptr, std::align_val_t, const std::nothrow_t&) noexcept {
  release(ptr, api::new_array);
}
ZHEAP_OPERATOR void operator delete(void* ptr, std::size_t, std::align_val_t) noexcept {
  release(ptr, api::new_object);
}
ZHEAP_OPERATOR void operator delete[](void* ptr, std::size_t, std::align_val_t) noexcept {
  release(ptr, api::new_array);
}
