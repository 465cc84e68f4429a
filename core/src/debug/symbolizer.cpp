// symbolize_frame(): Boost.Stacktrace, cached per address. Report time only.
//
// This is the one translation unit of the core built WITH exceptions (core/meson.build):
// Boost.Stacktrace's symbolization allocates std::strings and may throw, so it is kept
// out of everything that runs inside malloc and caught here, at the border.
// Backend: boost_stacktrace_backtrace (libbacktrace, statically inside Debian's
// libboost-stacktrace1.74 build), which reads the DWARF line tables itself: function,
// file and line without spawning addr2line.
#define BOOST_STACKTRACE_LINK
#include <zheap/debug_allocator.hpp>

#include <boost/stacktrace/frame.hpp>

#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

namespace zheap {
namespace {

struct SymbolCache {
  std::mutex lock;
  std::unordered_map<std::uintptr_t, SymbolizedFrame> frames;
};

constinit SymbolCache* symbol_cache = nullptr;  // made on first use, never destroyed
constinit std::once_flag symbol_cache_made;

// Copies that live as long as the process (the cache hands out raw pointers).
const char* keep(const std::string& s) {
  if (s.empty()) return "";
  char* copy = new char[s.size() + 1];
  std::memcpy(copy, s.c_str(), s.size() + 1);
  return copy;
}

}  // namespace

SymbolizedFrame symbolize_frame(std::uintptr_t address) noexcept {
  try {
    std::call_once(symbol_cache_made, [] { symbol_cache = new SymbolCache; });
    std::lock_guard<std::mutex> guard(symbol_cache->lock);
    auto found = symbol_cache->frames.find(address);
    if (found != symbol_cache->frames.end()) return found->second;
    // A return address is just past its call instruction; look up the call itself, or
    // the line shown would be the one after it.
    const boost::stacktrace::frame frame(reinterpret_cast<boost::stacktrace::frame::native_frame_ptr_t>(
        address == 0 ? 0 : address - 1));
    SymbolizedFrame symbol;
    symbol.function = keep(frame.name());
    symbol.file = keep(frame.source_file());
    symbol.line = static_cast<unsigned>(frame.source_line());
    symbol_cache->frames.emplace(address, symbol);
    return symbol;
  } catch (...) {
    return SymbolizedFrame{};
  }
}

}  // namespace zheap
