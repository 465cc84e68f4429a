// word_frequencies: the most frequent words of a text file, written as a zheap user would.
//
// It passes allocators as values and names them by their contract (DESIGN.md):
//   gpa     — general purpose; the caller frees what it returns (the file's contents);
//   arena   — bulk-freed at the end (the distinct words and the table that counts them);
//   scratch — never escapes a function (each word, lowercased; a stack buffer first).
//
// Build against an installed zheap:
//   c++ -std=c++20 word_frequencies.cpp $(pkg-config --cflags --libs zheap)
#include <zheap/zheap.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory_resource>
#include <span>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

// The whole file, in memory from `gpa`; the caller frees it with gpa.free(). Empty span with
// a null data() when the file cannot be read or memory runs out.
std::span<char> read_file(zheap::Allocator gpa, const char* path) {
  std::FILE* file = std::fopen(path, "rb");
  if (file == nullptr) return {};
  std::span<char> buffer = gpa.alloc<char>(4096);
  std::size_t used = 0;
  while (buffer.data() != nullptr) {
    if (used == buffer.size()) {
      std::span<char> bigger = gpa.realloc(buffer, buffer.size() * 2);
      if (bigger.data() == nullptr) {
        gpa.free(buffer);
        buffer = {};
        break;
      }
      buffer = bigger;
    }
    const std::size_t n = std::fread(buffer.data() + used, 1, buffer.size() - used, file);
    if (n == 0) break;
    used += n;
  }
  std::fclose(file);
  if (buffer.data() == nullptr) return {};
  // Give back the unused tail, so that the caller frees exactly what it holds.
  std::span<char> fitted = gpa.realloc(buffer, used);
  if (fitted.data() == nullptr) gpa.free(buffer);
  return fitted;
}

// Counts each distinct lowercased word. The words are copied into `arena`, which outlives
// the table; `scratch` holds one word at a time.
void count_words(std::string_view text, zheap::Allocator arena, zheap::Allocator scratch,
                 std::pmr::unordered_map<std::string_view, std::size_t>& counts) {
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    const std::size_t start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start) continue;

    std::span<char> lower = scratch.alloc<char>(i - start);
    if (lower.data() == nullptr) return;
    std::transform(text.begin() + start, text.begin() + i, lower.begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    const std::string_view word(lower.data(), lower.size());
    if (auto found = counts.find(word); found != counts.end()) {
      ++found->second;
    } else {
      std::span<char> kept = arena.dupe(std::span<const char>(word));
      if (kept.data() != nullptr) counts.emplace(std::string_view(kept.data(), kept.size()), 1);
    }
    scratch.free(lower);  // the last allocation: the stack buffer is reused for the next word
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
  }
  zheap::Allocator gpa = zheap::c_allocator();
  std::span<char> text = read_file(gpa, argv[1]);
  if (text.data() == nullptr) {
    std::fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[1]);
    return 1;
  }

  zheap::ArenaAllocator arena_state(zheap::page_allocator());
  zheap::StackFallbackAllocator<128> scratch_state(gpa);
  {
    zheap::PmrResource arena_resource(arena_state.allocator());
    std::pmr::unordered_map<std::string_view, std::size_t> counts(&arena_resource);
    count_words(std::string_view(text.data(), text.size()), arena_state.allocator(), scratch_state.get(), counts);

    std::pmr::vector<std::pair<std::string_view, std::size_t>> ranked(counts.begin(), counts.end(), &arena_resource);
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    for (std::size_t k = 0; k < ranked.size() && k < 10; ++k) {
      std::printf("%4zu %.*s\n", ranked[k].second, static_cast<int>(ranked[k].first.size()), ranked[k].first.data());
    }
    std::printf("%zu distinct words; the arena holds %zu bytes for them and their table\n", counts.size(),
                arena_state.query_capacity());
  }  // the table lives in the arena: destroy it before the arena goes
  gpa.free(text);
  return 0;
}
