// See stats.hpp. The report:
//
//   zheap: stats for process 4242
//   zheap:   allocations: 12 (malloc 9, new 3)
//   zheap:   frees: 11 (free 8, delete 3)
//   zheap:   live blocks: 1
//   zheap:   bytes in use: 48, peak 4160
//   zheap:   usable sizes (bytes: blocks):
//   zheap:     [16, 32): 10
//   zheap:     [4096, 8192): 2
#include "stats.hpp"

#include "os/os.hpp"
#include "support/format.hpp"

namespace zheap::shim {

namespace {
using support::BufferWriter;

void emit(int fd, BufferWriter& out) noexcept {
  out.character('\n');
  os::write_all(fd, out.c_str(), out.size());
}

// "12 (malloc 9, new 3)": the total, then each API with a nonzero count.
template <class Count>
void by_api(BufferWriter& out, std::uint64_t total, Count count) noexcept {
  out.unsigned_decimal(total);
  bool first = true;
  for (std::size_t i = 0; i < api_count; ++i) {
    const std::uint64_t n = count(static_cast<Api>(i));
    if (n == 0) continue;
    out.text(first ? " (" : ", ").text(api_name(static_cast<Api>(i))).character(' ').unsigned_decimal(n);
    first = false;
  }
  if (!first) out.character(')');
}
}  // namespace

std::uint64_t Stats::total_allocs() const noexcept {
  std::uint64_t total = 0;
  for (const auto& count : allocs_) total += count.load(std::memory_order_relaxed);
  return total;
}

std::uint64_t Stats::total_frees() const noexcept {
  std::uint64_t total = 0;
  for (const auto& count : frees_) total += count.load(std::memory_order_relaxed);
  return total;
}

void Stats::write_report(int fd) const noexcept {
  char line[512];
  {
    BufferWriter out(line);
    out.text("zheap: stats for process ").unsigned_decimal(static_cast<unsigned>(os::process_id()));
    emit(fd, out);
  }
  const std::uint64_t allocated = total_allocs();
  const std::uint64_t freed = total_frees();
  {
    BufferWriter out(line);
    out.text("zheap:   allocations: ");
    by_api(out, allocated, [this](Api api) { return allocs(api); });
    emit(fd, out);
  }
  {
    BufferWriter out(line);
    out.text("zheap:   frees: ");
    by_api(out, freed, [this](Api api) { return frees(api); });
    emit(fd, out);
  }
  {
    BufferWriter out(line);
    // Signed: a block allocated before the layers were configured may be freed after.
    out.text("zheap:   live blocks: ").signed_decimal(static_cast<std::int64_t>(allocated - freed));
    emit(fd, out);
  }
  {
    BufferWriter out(line);
    out.text("zheap:   bytes in use: ").signed_decimal(net_bytes());
    out.text(", peak ").unsigned_decimal(peak_bytes());
    emit(fd, out);
  }
  {
    BufferWriter out(line);
    out.text("zheap:   usable sizes (bytes: blocks):");
    emit(fd, out);
  }
  for (std::size_t b = 0; b < bucket_count; ++b) {
    const std::uint64_t n = bucket(b);
    if (n == 0) continue;
    BufferWriter out(line);
    out.text("zheap:     [");
    if (b == 0) {
      out.text("0, 1)");
    } else {
      const std::uint64_t low = std::uint64_t{1} << (b - 1);
      out.unsigned_decimal(low).text(", ");
      // The last bucket's upper end, 2^64, does not fit in 64 bits.
      if (b == 64) out.text("2^64)"); else out.unsigned_decimal(low << 1).character(')');
    }
    out.text(": ").unsigned_decimal(n);
    emit(fd, out);
  }
}

}  // namespace zheap::shim
