// The leak scan's mark phase and classification; the rules are in leak_scan.hpp.
#include "debug/leak_scan.hpp"

#include "os/os.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace zheap::debug {

namespace {

// Where a live block stands during the scan.
enum class Mark : std::uint8_t {
  unreached,        // no chain from a root (yet); lost if still so after marking
  reachable,        // a chain of pointers leads to it from a root
  lost_referenced,  // lost, and pointed to by another lost block
  definite,
  indirect,
  cycle_leader,     // stands for a cycle of lost blocks; definite unless a later leader reaches it
};

bool is_lost(Mark mark) noexcept { return mark == Mark::unreached || mark == Mark::lost_referenced; }

constexpr std::size_t kNone = SIZE_MAX;
constexpr std::size_t kWord = sizeof(std::uintptr_t);
// Roots are copied out this much at a time (one process_vm_readv each): big enough that the
// system call's cost vanishes, small enough to stay in the cache while it is scanned.
constexpr std::size_t kReadChunk = std::size_t{64} << 10;
constexpr std::uintptr_t kReservationBytes = std::uintptr_t{1} << 40;

// An array on a mapping of its own, given back when it goes out of scope.
template <class T>
class MappedArray {
 public:
  explicit MappedArray(std::size_t count) noexcept
      : bytes_((count == 0 ? 1 : count) * sizeof(T)), data_(static_cast<T*>(os::map(bytes_))) {}
  ~MappedArray() {
    if (data_ != nullptr) os::unmap(data_, bytes_);
  }
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;

  bool ok() const noexcept { return data_ != nullptr; }
  T* data() const noexcept { return data_; }
  T& operator[](std::size_t i) const noexcept { return data_[i]; }
  AddressRange range() const noexcept {
    const auto begin = reinterpret_cast<std::uintptr_t>(data_);
    return {begin, begin + bytes_};
  }

 private:
  std::size_t bytes_;
  T* data_;
};

class LeakScan {
 public:
  LeakScan(std::span<const BlockRecord> blocks, std::size_t live) noexcept
      : blocks_(blocks),
        live_(live),
        begins_(live),
        ends_(live),
        record_of_(live),
        marks_(live),
        worklist_(live),
        structure_(live),
        chunk_bytes_(std::max(kReadChunk, os::page_size())),
        buffer_(chunk_bytes_ / kWord) {}

  bool ok() const noexcept {
    return begins_.ok() && ends_.ok() && record_of_.ok() && marks_.ok() && worklist_.ok() && structure_.ok() &&
           buffer_.ok();
  }

  // The live blocks' user ranges, in address order (blocks_ is sorted by address).
  void index_live_blocks() noexcept {
    std::size_t i = 0;
    for (std::size_t r = 0; r < blocks_.size(); ++r) {
      const BlockRecord& record = blocks_[r];
      if (record.state != BlockState::live) continue;
      begins_[i] = record.address;
      ends_[i] = record.address + (record.size == 0 ? 1 : record.size);
      record_of_[i] = static_cast<std::uint32_t>(r);
      marks_[i] = Mark::unreached;
      ++i;
    }
    if (live_ > 0) {
      lowest_ = begins_[0];
      span_ = ends_[live_ - 1] - lowest_;
    }
  }

  // Marks every block reachable from the process's roots.
  void mark_from_roots(std::span<const AddressRange> never_roots, std::span<const AddressRange> not_roots,
                       std::uintptr_t stack_start) noexcept {
    os::FileContents maps;
    if (!os::read_whole_file("/proc/self/maps", &maps)) return;  // no roots to be had: all lost
    const auto maps_begin = reinterpret_cast<std::uintptr_t>(maps.data);
    const AddressRange own[] = {begins_.range(), ends_.range(), record_of_.range(), marks_.range(),
                                worklist_.range(), structure_.range(), buffer_.range(), {maps_begin, maps_begin + maps.mapped}};
    MappedArray<AddressRange> excluded(never_roots.size() + not_roots.size() + std::size(own) + 1);
    if (excluded.ok()) {
      std::size_t n = 0;
      for (const AddressRange& r : never_roots) excluded[n++] = r;
      for (const AddressRange& r : not_roots) excluded[n++] = r;
      for (const AddressRange& r : own) excluded[n++] = r;
      excluded[n++] = excluded.range();
      excluded_ = {excluded.data(), merge_ranges(excluded.data(), n)};
      use_plain_reads_ = !process_vm_readv_works();

      const char* cursor = maps.data;
      const char* const end = maps.data + maps.size;
      os::MemoryMapping mapping;
      while (os::next_memory_mapping(&cursor, end, &mapping)) {
        if (!is_root(mapping)) continue;
        std::uintptr_t begin = mapping.begin;
        // The calling thread's stack: only the caller's part, not this scan's frames.
        if (stack_start - mapping.begin < mapping.end - mapping.begin) begin = stack_start;
        scan_root_range(begin, mapping.end);
      }
      drain([this](std::size_t j) { reach(j); });
      excluded_ = {};
    }
    os::unmap(maps.data, maps.mapped);
  }

  // Classifies what marking left unreached (see leak_scan.hpp) and writes every live
  // block's kind.
  void classify(LeakKind* kinds) noexcept {
    // Lost blocks that another lost block points to.
    for (std::size_t i = 0; i < live_; ++i) {
      if (!is_lost(marks_[i])) continue;
      scan_block(i, [this, i](std::size_t j) {
        if (j != i && is_lost(marks_[j])) marks_[j] = Mark::lost_referenced;
      });
    }
    // Blocks nobody points to: definite, and what they reach indirect.
    for (std::size_t i = 0; i < live_; ++i) {
      if (marks_[i] != Mark::unreached) continue;
      marks_[i] = Mark::definite;
      flood_lost(i);
    }
    // Cycles with no way in: one leader per cycle, in address order.
    for (std::size_t i = 0; i < live_; ++i) {
      if (marks_[i] != Mark::lost_referenced) continue;
      marks_[i] = Mark::cycle_leader;
      flood_lost(i);
    }
    for (std::size_t i = 0; i < live_; ++i) kinds[record_of_[i]] = kind_of(marks_[i]);
  }

 private:
  static LeakKind kind_of(Mark mark) noexcept {
    switch (mark) {
      case Mark::reachable: return LeakKind::reachable;
      case Mark::indirect: return LeakKind::indirect;
      default: return LeakKind::definite;
    }
  }

  // The live block whose user bytes contain `word`, or kNone.
  std::size_t find(std::uintptr_t word) const noexcept {
    if (word - lowest_ >= span_) return kNone;  // below or above every block: most words
    const std::uintptr_t* begins = begins_.data();
    std::size_t first = 0;  // first block beginning after `word`, by halving
    std::size_t count = live_;
    while (count > 0) {
      const std::size_t half = count / 2;
      if (begins[first + half] <= word) {
        first += half + 1;
        count -= half + 1;
      } else {
        count = half;
      }
    }
    if (first == 0) return kNone;
    return word < ends_[first - 1] ? first - 1 : kNone;
  }

  template <class Visit>
  void scan_words(const std::uintptr_t* word, const std::uintptr_t* end, Visit&& visit) noexcept {
    for (; word < end; ++word) {
      const std::size_t j = find(*word);
      if (j != kNone) visit(j);
    }
  }

  // A live block's aligned words. Read directly: the caller holds every block-table lock,
  // so the block stays allocated (and readable) throughout.
  template <class Visit>
  void scan_block(std::size_t i, Visit&& visit) noexcept {
    const BlockRecord& record = blocks_[record_of_[i]];
    const std::uintptr_t begin = (record.address + kWord - 1) & ~(kWord - 1);
    const std::uintptr_t end = (record.address + record.size) & ~(kWord - 1);
    if (begin >= end) return;
    scan_words(reinterpret_cast<const std::uintptr_t*>(begin), reinterpret_cast<const std::uintptr_t*>(end),
               visit);
  }

  void push(std::size_t i) noexcept { worklist_[pending_++] = static_cast<std::uint32_t>(i); }

  template <class Visit>
  void drain(Visit&& visit) noexcept {
    while (pending_ > 0) scan_block(worklist_[--pending_], visit);
  }

  void reach(std::size_t j) noexcept {
    if (marks_[j] != Mark::unreached) return;
    marks_[j] = Mark::reachable;
    push(j);
  }

  // Marks the lost blocks reached from `leader` indirect, members of its structure. A
  // cycle leader it reaches, directly or through a member of that leader's structure, gives
  // up its place: the whole cycle hangs off this leader.
  void flood_lost(std::size_t leader) noexcept {
    structure_[leader] = static_cast<std::uint32_t>(leader);
    push(leader);
    drain([this, leader](std::size_t j) {
      if (marks_[j] == Mark::lost_referenced) {
        marks_[j] = Mark::indirect;
        structure_[j] = static_cast<std::uint32_t>(leader);
        push(j);
        return;
      }
      if (marks_[j] != Mark::indirect && marks_[j] != Mark::cycle_leader) return;
      const std::size_t other = structure_leader(j);
      if (other != leader && marks_[other] == Mark::cycle_leader) {
        marks_[other] = Mark::indirect;  // its flood already marked what it reaches
        structure_[other] = static_cast<std::uint32_t>(leader);
      }
    });
  }

  // The leader of the structure a classified lost block belongs to (a union-find root;
  // leaders absorbed by a later one point to it).
  std::size_t structure_leader(std::size_t i) noexcept {
    while (structure_[i] != i) {
      structure_[i] = structure_[structure_[i]];  // path halving
      i = structure_[i];
    }
    return i;
  }

  static bool is_root(const os::MemoryMapping& mapping) noexcept {
    if (!mapping.readable || !mapping.writable || mapping.shared) return false;
    // Reservations of a terabyte or more (a sanitizer's shadow memory, some runtimes'
    // address-space reserves): walking them, even only to find their touched pages, would
    // take seconds, and what they hold is the runtime's, not the program's pointers.
    if (mapping.end - mapping.begin >= kReservationBytes) return false;
    if (mapping.named("[vvar]") || mapping.named("[vvar_vclock]") || mapping.named("[vsyscall]")) return false;
    // Device memory (a GPU's, a frame buffer): reading it may have effects, and no heap
    // pointer lives there. /dev/zero mapped privately is plain anonymous memory.
    if (mapping.name_starts_with("/dev/") && !mapping.name_starts_with("/dev/zero")) return false;
    return true;
  }

  // Sorts and merges overlapping or touching ranges in place; returns how many remain.
  static std::size_t merge_ranges(AddressRange* ranges, std::size_t count) noexcept {
    std::sort(ranges, ranges + count, [](const AddressRange& a, const AddressRange& b) { return a.begin < b.begin; });
    std::size_t merged = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (ranges[i].begin >= ranges[i].end) continue;
      if (merged > 0 && ranges[i].begin <= ranges[merged - 1].end) {
        ranges[merged - 1].end = std::max(ranges[merged - 1].end, ranges[i].end);
      } else {
        ranges[merged++] = ranges[i];
      }
    }
    return merged;
  }

  // process_vm_readv on the own process may be forbidden (seccomp); then roots are read
  // directly (a mapping unmapped during the scan would fault then, a small risk at exit).
  static bool process_vm_readv_works() noexcept {
    const std::uintptr_t probe = 0x5a5a5a5a;
    std::uintptr_t copy = 0;
    return os::read_if_readable(&copy, &probe, sizeof probe) && copy == probe;
  }

  std::uintptr_t block_memory_begin(std::size_t r) const noexcept {
    return reinterpret_cast<std::uintptr_t>(blocks_[r].base);
  }
  std::uintptr_t block_memory_end(std::size_t r) const noexcept {
    return block_memory_begin(r) + blocks_[r].base_len;
  }

  // [begin, end) of a root mapping, less the excluded ranges and every block's memory
  // (both sorted and disjoint, so one sweep over each).
  void scan_root_range(std::uintptr_t begin, std::uintptr_t end) noexcept {
    std::size_t block = static_cast<std::size_t>(
        std::partition_point(blocks_.begin(), blocks_.end(),
                             [begin](const BlockRecord& r) {
                               return reinterpret_cast<std::uintptr_t>(r.base) + r.base_len <= begin;
                             }) -
        blocks_.begin());
    std::size_t excluded = static_cast<std::size_t>(
        std::partition_point(excluded_.begin(), excluded_.end(), [begin](const AddressRange& r) { return r.end <= begin; }) -
        excluded_.begin());
    std::uintptr_t position = begin;
    while (position < end) {
      // The excluded range that starts first, among the next block and the next range.
      std::uintptr_t skip_begin = end;
      std::uintptr_t skip_end = end;
      bool from_blocks = false;
      if (block < blocks_.size() && block_memory_begin(block) < skip_begin) {
        skip_begin = block_memory_begin(block);
        skip_end = block_memory_end(block);
        from_blocks = true;
      }
      if (excluded < excluded_.size() && excluded_[excluded].begin < skip_begin) {
        skip_begin = excluded_[excluded].begin;
        skip_end = excluded_[excluded].end;
        from_blocks = false;
      }
      if (skip_begin >= end) {
        read_and_scan(position, end);
        return;
      }
      if (skip_begin > position) read_and_scan(position, skip_begin);
      position = std::max(position, skip_end);
      if (from_blocks) {
        ++block;
      } else {
        ++excluded;
      }
    }
  }

  // Root memory [begin, end): in windows of 64 pages, one /proc/self/pagemap query each;
  // the chunks holding touched pages are copied out and every aligned word looked up.
  // Untouched pages read as zeros: reading them would only map the zero page, slowly.
  void read_and_scan(std::uintptr_t begin, std::uintptr_t end) noexcept {
    begin = (begin + kWord - 1) & ~(kWord - 1);
    end &= ~(kWord - 1);
    if (begin >= end) return;
    if (use_plain_reads_) {
      scan_words(reinterpret_cast<const std::uintptr_t*>(begin), reinterpret_cast<const std::uintptr_t*>(end),
                 [this](std::size_t j) { reach(j); });
      return;
    }
    const std::size_t page = os::page_size();
    constexpr std::size_t kWindowPages = 64;
    const std::size_t chunk_pages = chunk_bytes_ / page;
    for (std::uintptr_t window = begin & ~(page - 1); window < end; window += kWindowPages * page) {
      const std::uint64_t touched = page_map_.pages_with_data(window, kWindowPages);
      for (std::size_t first = 0; first < kWindowPages; first += chunk_pages) {
        const std::uint64_t chunk_mask = chunk_pages >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << chunk_pages) - 1;
        if (((touched >> first) & chunk_mask) == 0) continue;
        const std::uintptr_t from = std::max(begin, window + first * page);
        const std::uintptr_t to = std::min(end, window + (first + chunk_pages) * page);
        if (from < to) read_chunk(from, to);
      }
    }
  }

  // [from, to), at most chunk_bytes_, copied into the buffer (page by page when some page
  // went away or lost its access meanwhile) and scanned.
  void read_chunk(std::uintptr_t from, std::uintptr_t to) noexcept {
    const auto visit = [this](std::size_t j) { reach(j); };
    if (os::read_if_readable(buffer_.data(), reinterpret_cast<const void*>(from), to - from)) {
      scan_words(buffer_.data(), buffer_.data() + (to - from) / kWord, visit);
      return;
    }
    const std::size_t page = os::page_size();
    for (std::uintptr_t at = from; at < to;) {
      const std::uintptr_t piece_end = std::min<std::uintptr_t>((at & ~(page - 1)) + page, to);
      if (os::read_if_readable(buffer_.data(), reinterpret_cast<const void*>(at), piece_end - at))
        scan_words(buffer_.data(), buffer_.data() + (piece_end - at) / kWord, visit);
      at = piece_end;
    }
  }

  std::span<const BlockRecord> blocks_;
  std::size_t live_;
  MappedArray<std::uintptr_t> begins_;
  MappedArray<std::uintptr_t> ends_;  // begin + size, or begin + 1 for size 0
  MappedArray<std::uint32_t> record_of_;
  MappedArray<Mark> marks_;
  MappedArray<std::uint32_t> worklist_;  // each block is pushed at most once per phase
  std::size_t pending_ = 0;
  MappedArray<std::uint32_t> structure_;  // lost blocks: the leader whose flood reached them
  std::size_t chunk_bytes_;  // a read's size: kReadChunk, or a page where pages are bigger
  MappedArray<std::uintptr_t> buffer_;
  std::uintptr_t lowest_ = 0;
  std::uintptr_t span_ = 0;  // ends_[last] - lowest_: find() rejects most words with one compare
  std::span<const AddressRange> excluded_;
  bool use_plain_reads_ = false;
  os::PageMap page_map_;
};

}  // namespace

bool classify_blocks(std::span<const BlockRecord> blocks, std::span<const AddressRange> never_roots,
                     const LeakCheckOptions& options, std::uintptr_t stack_start, LeakKind* kinds) noexcept {
  std::size_t live = 0;
  for (const BlockRecord& record : blocks)
    if (record.state == BlockState::live) ++live;
  LeakScan scan(blocks, live);
  if (!scan.ok()) {
    for (std::size_t r = 0; r < blocks.size(); ++r) kinds[r] = LeakKind::definite;
    return false;
  }
  scan.index_live_blocks();
  if (options.scan_process_roots) scan.mark_from_roots(never_roots, options.not_roots, stack_start);
  scan.classify(kinds);
  return true;
}

}  // namespace zheap::debug
