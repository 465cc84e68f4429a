// smp_allocator(): the Allocator handle over the process-wide smp allocator (smp/smp.cpp).
#include <zheap/smp_allocator.hpp>

#include "smp/smp.hpp"

namespace zheap {

namespace {

void* smp_alloc(void*, std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  return smp::allocate(len, alignment.bytes());
}

bool smp_resize(void*, void* memory, std::size_t, Alignment, std::size_t new_len, std::uintptr_t) noexcept {
  return smp::resize_in_place(memory, new_len);
}

void* smp_remap(void*, void* memory, std::size_t, Alignment, std::size_t new_len, std::uintptr_t) noexcept {
  return smp::resize_in_place(memory, new_len) ? memory : nullptr;
}

void smp_free(void*, void* memory, std::size_t len, Alignment, std::uintptr_t) noexcept {
  smp::release_sized(memory, len);
}

constexpr Allocator::VTable smp_vtable = {smp_alloc, smp_resize, smp_remap, smp_free};

}  // namespace

Allocator smp_allocator() noexcept { return Allocator(nullptr, &smp_vtable); }

}  // namespace zheap
