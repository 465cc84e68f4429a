// symbolize_frame() for libzheap.so: loads the real symbolizer only when a report needs it.
//
// The core's symbolizer (core/src/debug/symbolizer.cpp) uses Boost.Stacktrace, which
// needs the C++ runtime; libzheap.so must not (shim/operator_new.cpp says what that costs
// every preloaded process). So libzheap.so defines symbolize_frame itself, and the core
// archive's definition is never linked in: this one dlopen()s libzheap-symbolizer.so, the
// symbolizer built as a module installed beside libzheap.so, at the first report, and
// forwards to it. Reports run with the shim's re-entry guard set (mode_debug.cpp), so the
// loader's and the symbolizer's allocations do not come from the heap being reported on.
// Without the module, frames are printed as addresses only.
#include <dlfcn.h>

#include <zheap/debug_allocator.hpp>

#include <atomic>
#include <cstring>

namespace zheap {
namespace {

using Symbolize = SymbolizedFrame (*)(std::uintptr_t) noexcept;

constexpr char module_name[] = "libzheap-symbolizer.so";
constexpr char mangled_symbolize_frame[] = "_ZN5zheap15symbolize_frameEm";

// nullptr: not tried yet; `unavailable`: tried and failed.
constinit std::atomic<Symbolize> loaded{nullptr};

SymbolizedFrame unavailable(std::uintptr_t) noexcept { return {}; }

// The module's path: libzheap.so's own directory, then the module's name.
bool module_path(char (&path)[4096]) noexcept {
  Dl_info self;
  if (::dladdr(reinterpret_cast<const void*>(&unavailable), &self) == 0 || self.dli_fname == nullptr) return false;
  const char* slash = std::strrchr(self.dli_fname, '/');
  const std::size_t directory = slash == nullptr ? 0 : static_cast<std::size_t>(slash - self.dli_fname + 1);
  if (directory + sizeof module_name > sizeof path) return false;
  std::memcpy(path, self.dli_fname, directory);
  std::memcpy(path + directory, module_name, sizeof module_name);
  return true;
}

Symbolize load() noexcept {
  char path[4096];
  if (!module_path(path)) return unavailable;
  void* module = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (module == nullptr) return unavailable;
  auto symbolize = reinterpret_cast<Symbolize>(::dlsym(module, mangled_symbolize_frame));
  return symbolize != nullptr ? symbolize : unavailable;
}

}  // namespace

SymbolizedFrame symbolize_frame(std::uintptr_t address) noexcept {
  Symbolize symbolize = loaded.load(std::memory_order_acquire);
  if (symbolize == nullptr) {
    symbolize = load();  // two racing first reports both load; dlopen returns the same module
    loaded.store(symbolize, std::memory_order_release);
  }
  return symbolize(address);
}

}  // namespace zheap
