// The 20 replaceable operator new / delete forms of C++17/20.
//
// operator new follows the standard's loop ([new.delete.single]): on failure call the
// new-handler and try again; no handler means throw std::bad_alloc (the nothrow forms
// return nullptr instead).
//
// libzheap.so does not link libstdc++: loading it costs every preloaded process ~1 MiB of
// RSS and ~0.9 ms of start-up (measured on /bin/true, tests/shim/measure_overhead.sh), and
// most preloaded programs are C. Only the out-of-memory path needs the C++ runtime, and a
// program that calls operator new has it loaded, so that path finds it with dlsym:
// get_new_handler, and __throw_bad_alloc to throw. The bad_alloc passes through this
// file's frames, which catch nothing and clean nothing up: their unwind tables are all it
// needs, so the file is built without exceptions (and so without a personality routine,
// which g++ would otherwise attach to every operator that reads its return address). A nothrow new whose handler may throw delegates to the C++ runtime's own
// nothrow operator, which calls zheap's throwing one inside its try block.
#include <dlfcn.h>

#include <cstdlib>
#include <new>

#include "libc_semantics.hpp"

namespace {

using zheap::shim::Api;
namespace c_api = zheap::shim::c_api;

// The first of `names` the process defines (libstdc++'s name, then libc++'s).
void* find_in_process(const char* gnu_name, const char* llvm_name) noexcept {
  void* symbol = ::dlsym(RTLD_DEFAULT, gnu_name);
  return symbol != nullptr ? symbol : ::dlsym(RTLD_DEFAULT, llvm_name);
}

std::new_handler current_new_handler() noexcept {
  using Getter = std::new_handler (*)() noexcept;
  auto get = reinterpret_cast<Getter>(find_in_process("_ZSt15get_new_handlerv", "_ZNSt3__115get_new_handlerEv"));
  return get != nullptr ? get() : nullptr;
}

[[noreturn]] void throw_bad_alloc() {
  using Thrower = void (*)();
  auto raise = reinterpret_cast<Thrower>(find_in_process("_ZSt17__throw_bad_allocv", "_ZNSt3__117__throw_bad_allocEv"));
  if (raise != nullptr) raise();
  std::abort();  // no C++ runtime in the process, yet operator new was called
}

// The C++ runtime's own definition of a nothrow operator (not zheap's, which precedes it
// in the global scope): looked up in libstdc++.so.6 itself.
void* runtime_nothrow_operator(const char* mangled) noexcept {
  void* runtime = ::dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (runtime == nullptr) return nullptr;
  void* symbol = ::dlsym(runtime, mangled);
  ::dlclose(runtime);  // drops RTLD_NOLOAD's reference only
  return symbol;
}

bool is_array(Api family) noexcept {
  return family == Api::new_array || family == Api::new_array_nothrow || family == Api::new_array_aligned;
}

namespace direct_routes = zheap::shim::direct_routes;

// Out of line, so that operator new's own path stays a test and a jump.
[[gnu::noinline]] void* allocate_full(std::size_t size, std::size_t alignment, Api family,
                                      std::uintptr_t caller) noexcept {
  void* p = c_api::allocate_aligned(size, alignment, family, caller);
  // A program that allocates only with new publishes the routes here (malloc's full path
  // does it for the others); a no-op where they do not apply (debug mode, layers on).
  direct_routes::publish(zheap::shim::heap());
  return p;
}

void* allocate_or_null(std::size_t size, std::size_t alignment, Api family, std::uintptr_t caller) noexcept {
  if (alignment <= c_api::default_alignment && direct_routes::published()) [[likely]] return direct_routes::allocate(size);
  return allocate_full(size, alignment, family, caller);
}

[[gnu::noinline]] void* allocate_or_throw(std::size_t size, std::size_t alignment, Api family, std::uintptr_t caller) {
  for (;;) {
    if (void* p = allocate_or_null(size, alignment, family, caller)) [[likely]] return p;
    std::new_handler handler = current_new_handler();
    if (handler == nullptr) throw_bad_alloc();
    handler();
  }
}

// The plain operators' own path: the direct route, as malloc's, when it is published and
// succeeds (a call and a test, no frame to set up); the full loop otherwise.
[[gnu::always_inline]] inline void* new_plain(std::size_t size, Api family, std::uintptr_t caller) {
  if (direct_routes::published()) [[likely]]
    if (void* p = direct_routes::allocate(size)) [[likely]] return p;
  return allocate_or_throw(size, c_api::default_alignment, family, caller);
}

void* allocate_nothrow(std::size_t size, std::size_t alignment, Api family, std::uintptr_t caller) noexcept {
  if (void* p = allocate_or_null(size, alignment, family, caller)) [[likely]] return p;
  if (current_new_handler() == nullptr) return nullptr;
  if (alignment <= c_api::default_alignment) {
    using Plain = void* (*)(std::size_t, const std::nothrow_t&) noexcept;
    const char* name = is_array(family) ? "_ZnamRKSt9nothrow_t" : "_ZnwmRKSt9nothrow_t";
    if (auto runtime_new = reinterpret_cast<Plain>(runtime_nothrow_operator(name))) return runtime_new(size, std::nothrow_t{});
  } else {
    using Aligned = void* (*)(std::size_t, std::align_val_t, const std::nothrow_t&) noexcept;
    const char* name = is_array(family) ? "_ZnamSt11align_val_tRKSt9nothrow_t" : "_ZnwmSt11align_val_tRKSt9nothrow_t";
    if (auto runtime_new = reinterpret_cast<Aligned>(runtime_nothrow_operator(name)))
      return runtime_new(size, std::align_val_t{alignment}, std::nothrow_t{});
  }
  return nullptr;
}

// `size` and `alignment`: what a sized or aligned delete passed (0: not given); debug
// mode checks them against the allocation.
void release(void* ptr, Api family, std::uintptr_t caller, std::size_t size = 0, std::size_t alignment = 0) noexcept {
  c_api::release(ptr, family, "operator delete", caller, size, alignment);
}

void release_sized(void* ptr, std::size_t size, Api family, std::uintptr_t caller) noexcept {
  c_api::release_sized(ptr, size, family, "operator delete", caller);
}

std::size_t alignment_of(std::align_val_t alignment) noexcept { return static_cast<std::size_t>(alignment); }

}  // namespace

#define ZHEAP_OPERATOR [[gnu::visibility("default")]]
// The operator's stack pointer at its call: where debug mode's recorded stacks start
// (entry_call_site.hpp).
#define ZHEAP_CALLER ZHEAP_ENTRY_STACK_POINTER()
constexpr std::size_t plain = c_api::default_alignment;

// new
ZHEAP_OPERATOR void* operator new(std::size_t size) { return new_plain(size, Api::new_, ZHEAP_CALLER); }
ZHEAP_OPERATOR void* operator new[](std::size_t size) { return new_plain(size, Api::new_array, ZHEAP_CALLER); }
ZHEAP_OPERATOR void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return allocate_nothrow(size, plain, Api::new_nothrow, ZHEAP_CALLER);
}
ZHEAP_OPERATOR void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return allocate_nothrow(size, plain, Api::new_array_nothrow, ZHEAP_CALLER);
}
ZHEAP_OPERATOR void* operator new(std::size_t size, std::align_val_t alignment) {
  return allocate_or_throw(size, alignment_of(alignment), Api::new_aligned, ZHEAP_CALLER);
}
ZHEAP_OPERATOR void* operator new[](std::size_t size, std::align_val_t alignment) {
  return allocate_or_throw(size, alignment_of(alignment), Api::new_array_aligned, ZHEAP_CALLER);
}
ZHEAP_OPERATOR void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return allocate_nothrow(size, alignment_of(alignment), Api::new_aligned, ZHEAP_CALLER);
}
ZHEAP_OPERATOR void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return allocate_nothrow(size, alignment_of(alignment), Api::new_array_aligned, ZHEAP_CALLER);
}

// delete
ZHEAP_OPERATOR void operator delete(void* ptr) noexcept { release(ptr, Api::delete_, ZHEAP_CALLER); }
ZHEAP_OPERATOR void operator delete[](void* ptr) noexcept { release(ptr, Api::delete_array, ZHEAP_CALLER); }
ZHEAP_OPERATOR void operator delete(void* ptr, const std::nothrow_t&) noexcept {
  release(ptr, Api::delete_, ZHEAP_CALLER);
}
ZHEAP_OPERATOR void operator delete[](void* ptr, const std::nothrow_t&) noexcept {
  release(ptr, Api::delete_array, ZHEAP_CALLER);
}
ZHEAP_OPERATOR void operator delete(void* ptr, std::size_t size) noexcept {
  release_sized(ptr, size, Api::delete_, ZHEAP_CALLER);
}
ZHEAP_OPERATOR void operator delete[](void* ptr, std::size_t size) noexcept {
  release_sized(ptr, size, Api::delete_array, ZHEAP_CALLER);
}
// Over-aligned blocks: the heaps find their size from the pointer; only debug mode looks
// at the size and alignment the aligned forms pass.
ZHEAP_OPERATOR void operator delete(void* ptr, std::align_val_t alignment) noexcept {
  release(ptr, Api::delete_, ZHEAP_CALLER, 0, alignment_of(alignment));
}
ZHEAP_OPERATOR void operator delete[](void* ptr, std::align_val_t alignment) noexcept {
  release(ptr, Api::delete_array, ZHEAP_CALLER, 0, alignment_of(alignment));
}
ZHEAP_OPERATOR void operator delete(void* ptr, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  release(ptr, Api::delete_, ZHEAP_CALLER, 0, alignment_of(alignment));
}
ZHEAP_OPERATOR void operator delete[](void* ptr, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  release(ptr, Api::delete_array, ZHEAP_CALLER, 0, alignment_of(alignment));
}
ZHEAP_OPERATOR void operator delete(void* ptr, std::size_t size, std::align_val_t alignment) noexcept {
  release(ptr, Api::delete_, ZHEAP_CALLER, size, alignment_of(alignment));
}
ZHEAP_OPERATOR void operator delete[](void* ptr, std::size_t size, std::align_val_t alignment) noexcept {
  release(ptr, Api::delete_array, ZHEAP_CALLER, size, alignment_of(alignment));
}
