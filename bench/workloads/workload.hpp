// Shared plumbing for the benchmark workloads (bench/workloads/*.cpp).
//
// Each workload is a plain C++ program that allocates through malloc/free/new/delete,
// so that scripts/bench can put any allocator under it with LD_PRELOAD. This header
// gives them the same command line, the same deterministic random numbers and the same
// output, so scripts/bench treats them all alike:
//
//   <workload> [--threads=N] [--scale=F] [--seed=S] [--name=value ...]
//
//   --scale multiplies the amount of work (1.0 is the default size, about 0.2-1 s on one
//   core; scripts/bench --quick passes a smaller one). Other --name=value pairs are read
//   by the workload that knows them; an unknown one is an error, so typos do not pass
//   unnoticed.
//
// stdout carries one line, "checksum <hex>", a value computed from the data the
// workload wrote and read back: it keeps the compiler from removing the work and is the
// same under every allocator. Anything allocator-dependent (RSS) goes to stderr.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace workload {

// splitmix64: tiny, fast, and the same sequence on every platform and allocator.
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound), bound > 0 (the slight modulo bias does not matter here).
  std::size_t below(std::size_t bound) { return static_cast<std::size_t>(next() % bound); }
  // Uniform in [low, high].
  std::size_t between(std::size_t low, std::size_t high) { return low + below(high - low + 1); }

 private:
  std::uint64_t state_;
};

class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      std::size_t eq = arg.find('=');
      if (!arg.starts_with("--") || eq == std::string_view::npos) usage_error(arg);
      pairs_.push_back({std::string(arg.substr(2, eq - 2)), std::string(arg.substr(eq + 1)), false});
    }
  }

  long integer(std::string_view name, long fallback) {
    const char* text = find(name);
    if (text == nullptr) return fallback;
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (*end != '\0' || value < 0) value_error(name, text, "a non-negative integer");
    return value;
  }

  double real(std::string_view name, double fallback) {
    const char* text = find(name);
    if (text == nullptr) return fallback;
    char* end = nullptr;
    double value = std::strtod(text, &end);
    if (*end != '\0' || !(value > 0)) value_error(name, text, "a positive number");
    return value;
  }

  int threads(long fallback = 1) {
    long n = integer("threads", fallback);
    return n > 0 ? static_cast<int>(n) : 1;
  }
  double scale() { return real("scale", 1.0); }
  std::uint64_t seed() { return static_cast<std::uint64_t>(integer("seed", 42)); }

  // `base` scaled by --scale, at least 1.
  std::size_t scaled(std::size_t base) {
    double n = static_cast<double>(base) * scale();
    return n < 1 ? 1 : static_cast<std::size_t>(n);
  }

  // Call after reading every option: rejects the ones no one asked for.
  void finish() {
    for (const Pair& p : pairs_)
      if (!p.used) {
        std::fprintf(stderr, "workload: unknown option --%s\n", p.name.c_str());
        std::exit(2);
      }
  }

 private:
  struct Pair {
    std::string name, value;
    bool used;
  };

  const char* find(std::string_view name) {
    const char* found = nullptr;
    for (Pair& p : pairs_)
      if (p.name == name) {
        p.used = true;
        found = p.value.c_str();  // the last one given wins
      }
    return found;
  }
  [[noreturn]] static void usage_error(std::string_view arg) {
    std::fprintf(stderr, "workload: expected --name=value, got '%.*s'\n", static_cast<int>(arg.size()), arg.data());
    std::exit(2);
  }
  [[noreturn]] static void value_error(std::string_view name, const char* text, const char* accepted) {
    std::fprintf(stderr, "workload: --%.*s=%s: expected %s\n", static_cast<int>(name.size()), name.data(), text,
                 accepted);
    std::exit(2);
  }

  std::vector<Pair> pairs_;
};

// An allocator that says no ends the workload with one line and exit status 3: the run
// then reads as "out of memory" in scripts/bench's tables instead of as a crash (a NULL
// written through would look like the allocator's fault).
[[noreturn]] inline void out_of_memory(const char* call, std::size_t size) {
  std::fprintf(stderr, "workload: out of memory: %s(%zu) returned NULL\n", call, size);
  std::_Exit(3);
}
inline void* checked_malloc(std::size_t size) {
  void* block = std::malloc(size);
  if (block == nullptr && size != 0) out_of_memory("malloc", size);
  return block;
}
inline void* checked_realloc(void* block, std::size_t size) {
  void* moved = std::realloc(block, size);
  if (moved == nullptr && size != 0) out_of_memory("realloc", size);
  return moved;
}

// Writes a recognisable pattern into a fresh block and folds it into a checksum later,
// so that every allocation is really touched (first and last byte, and one byte per page
// in between, which is what makes its pages resident).
inline void fill(void* block, std::size_t size, std::uint64_t tag) {
  auto* bytes = static_cast<unsigned char*>(block);
  for (std::size_t i = 0; i < size; i += 4096) bytes[i] = static_cast<unsigned char>(tag + i);
  bytes[size - 1] = static_cast<unsigned char>(tag >> 8);
}

inline std::uint64_t fold(const void* block, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(block);
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < size; i += 4096) sum = sum * 31 + bytes[i];
  return sum * 31 + bytes[size - 1];
}

inline void print_checksum(std::uint64_t checksum) { std::printf("checksum %016llx\n", static_cast<unsigned long long>(checksum)); }

// The process's resident set now and at its peak, from /proc/self/status, in KiB.
struct ResidentSet {
  long current_kib = -1, peak_kib = -1;
};

inline ResidentSet resident_set() {
  ResidentSet rss;
  if (std::FILE* status = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, status)) {
      if (std::strncmp(line, "VmRSS:", 6) == 0) rss.current_kib = std::strtol(line + 6, nullptr, 10);
      if (std::strncmp(line, "VmHWM:", 6) == 0) rss.peak_kib = std::strtol(line + 6, nullptr, 10);
    }
    std::fclose(status);
  }
  return rss;
}

}  // namespace workload
