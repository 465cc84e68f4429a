// Api: the families of allocation entry points, as the layers count and log them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zheap::shim {

// One enumerator per API family the statistics count.
enum class Api : std::uint8_t {
  malloc,
  calloc,
  realloc,            // realloc, reallocarray
  memalign,
  aligned_alloc,
  posix_memalign,
  valloc,
  pvalloc,
  new_,               // operator new(size)
  new_array,          // operator new[](size)
  new_nothrow,        // operator new(size, nothrow)
  new_array_nothrow,  // operator new[](size, nothrow)
  new_aligned,        // operator new(size, align_val_t), with or without nothrow
  new_array_aligned,  // operator new[](size, align_val_t), with or without nothrow
  free,               // free, free_sized, free_aligned_sized
  delete_,            // every operator delete(void*, ...)
  delete_array,       // every operator delete[](void*, ...)
};
inline constexpr std::size_t api_count = static_cast<std::size_t>(Api::delete_array) + 1;

// "malloc", "new[]", "delete", ...: how reports name an Api.
constexpr const char* api_name(Api api) noexcept {
  switch (api) {
    case Api::malloc: return "malloc";
    case Api::calloc: return "calloc";
    case Api::realloc: return "realloc";
    case Api::memalign: return "memalign";
    case Api::aligned_alloc: return "aligned_alloc";
    case Api::posix_memalign: return "posix_memalign";
    case Api::valloc: return "valloc";
    case Api::pvalloc: return "pvalloc";
    case Api::new_: return "new";
    case Api::new_array: return "new[]";
    case Api::new_nothrow: return "new(nothrow)";
    case Api::new_array_nothrow: return "new[](nothrow)";
    case Api::new_aligned: return "new(align)";
    case Api::new_array_aligned: return "new[](align)";
    case Api::free: return "free";
    case Api::delete_: return "delete";
    case Api::delete_array: return "delete[]";
  }
  return "?";
}

}  // namespace zheap::shim
