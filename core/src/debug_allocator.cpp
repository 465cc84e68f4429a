// DebugAllocator: the block records, the redzones, the quarantine and the checks. The
// design is in the header; the parts live in src/debug/ (stack capture and depot, block
// table, quarantine, reports).
#include <zheap/alignment.hpp>
#include <zheap/debug_allocator.hpp>

#include "debug/block_table.hpp"
#include "debug/byte_pattern.hpp"
#include "debug/debug_report.hpp"
#include "debug/leak_scan.hpp"
#include "debug/quarantine.hpp"
#include "debug/recent_stacks.hpp"
#include "debug/recycle_bins.hpp"
#include "debug/stack_capture.hpp"
#include "debug/stack_depot.hpp"
#include "os/os.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <new>

namespace zheap {

using debug::BlockRecord;
using debug::BlockState;
using debug::BlockStartMap;
using debug::BlockTable;
using debug::Quarantine;
using debug::StackId;

namespace {

// Byte patterns, as in ASan's and glibc's MALLOC_PERTURB_ habits: distinctive in a
// debugger, and not a plausible pointer, length or small integer when read by mistake.
constexpr std::uint8_t kCanary = 0xCB;  // redzones around live blocks
constexpr std::uint8_t kPoison = 0xFD;  // freed blocks in quarantine

// Starts loading the cache line at `address`. The empty asm keeps it: GCC deletes a loop
// whose body is nothing but __builtin_prefetch (no side effect: a dead loop), which
// silently took the poison prefetch out of evict_all() once the table lookup beside it
// had gone.
inline void prefetch_line(std::uintptr_t address) noexcept {
  __builtin_prefetch(reinterpret_cast<const void*>(address));
  asm volatile("" : : "r"(address));
}

}  // namespace

struct DebugAllocator::Impl {
  explicit Impl(const DebugOptions& o) noexcept
      : options(o), blocks(BlockTable::header_offset_for(o.redzone_size)), quarantine(o.quarantine_bytes) {
    options.stack_depth = std::clamp<std::size_t>(options.stack_depth, 1, debug::kMaxStackDepth);
    policy = debug::ReportPolicy{options.on_error, options.on_wrong_size, options.error_handler, options.error_context};
  }

  DebugOptions options;
  debug::ReportPolicy policy;
  BlockTable blocks;
  Quarantine quarantine;
  debug::RecycleBins recycled;  // small blocks out of the quarantine, for their thread's next allocations
  // Requested bytes of live blocks, for memory_limit only (the per-shard counts serve
  // live_bytes()): a shared atomic costs every allocation and free a locked instruction.
  std::atomic<std::size_t> limited_bytes{0};
  bool limited() const noexcept { return options.memory_limit != SIZE_MAX; }
  // The span of memory any block has ever been placed in: a pointer outside it was never
  // ours, so freeing it needs no search of the quarantine (the shim offers every free to
  // this allocator first, glibc's blocks included). Widened, rarely, as blocks are placed.
  std::atomic<std::uintptr_t> lowest_placed{UINTPTR_MAX};
  std::atomic<std::uintptr_t> highest_placed{0};

  void note_placed(const BlockRecord& record) noexcept {
    const auto begin = reinterpret_cast<std::uintptr_t>(record.base);
    const std::uintptr_t end = begin + record.base_len;
    std::uintptr_t low = lowest_placed.load(std::memory_order_relaxed);
    while (begin < low && !lowest_placed.compare_exchange_weak(low, begin, std::memory_order_relaxed)) {
    }
    std::uintptr_t high = highest_placed.load(std::memory_order_relaxed);
    while (end > high && !highest_placed.compare_exchange_weak(high, end, std::memory_order_relaxed)) {
    }
  }
  bool ever_placed_near(std::uintptr_t address) const noexcept {
    return address >= lowest_placed.load(std::memory_order_relaxed) &&
           address < highest_placed.load(std::memory_order_relaxed);
  }

  // ---- stacks

  // The calling thread's stack from `caller` (the program's call into our entry point)
  // outwards, in the depot. The walk starts in the program's frame: none of ours is walked.
  // `series`: allocations (realloc among them) or frees, each compared with its own
  // previous capture (stack_capture.hpp).
  StackId capture_stack_here(const CallSite& caller, debug::CaptureSeries series) noexcept {
    return debug::capture_stack_id(caller, options.stack_depth, series, debug::recent_stacks());
  }

  // ---- placing blocks

  // `captured`: the call's stack when the caller has it already (realloc), else null.
  void* allocate(std::size_t size, std::size_t alignment, AllocationFamily family, const CallSite& caller,
                 const StackId* captured = nullptr) noexcept {
    if (!Alignment::is_valid(alignment)) return nullptr;
    if (limited()) {
      const std::size_t before = limited_bytes.fetch_add(size, std::memory_order_relaxed);
      if (before + size < before || before + size > options.memory_limit) {
        limited_bytes.fetch_sub(size, std::memory_order_relaxed);
        return nullptr;
      }
    }
    BlockRecord record{};
    record.size = size;
    record.log2_alignment = static_cast<std::uint8_t>(std::countr_zero(alignment));
    record.family = family;
    const bool placed = options.guard_pages ? place_guarded(&record) : place_in_backing(&record);
    if (!placed) {
      if (limited()) limited_bytes.fetch_sub(size, std::memory_order_relaxed);
      return nullptr;
    }
    blocks.prefetch(record.address);  // the slot's cache miss is served during the capture
    note_placed(record);
    record.allocation_stack =
        captured != nullptr ? *captured : capture_stack_here(caller, debug::CaptureSeries::allocations);
    BlockTable::Shard& shard = blocks.shard_for(record.address);
    bool inserted;
    {
      MutexLock guard(shard.lock);
      inserted = blocks.insert(shard, record);
      if (inserted) BlockTable::add_live(shard, 1, static_cast<std::ptrdiff_t>(size));
    }
    if (!inserted) {
      release_memory(record);
      if (limited()) limited_bytes.fetch_sub(size, std::memory_order_relaxed);
      return nullptr;
    }
    return reinterpret_cast<void*>(record.address);
  }

  // The alignment a block is asked of the backing with: at least 16 bytes, so that every
  // small block may be recycled for any request of up to that alignment (the backing
  // must be given back the alignment it was asked for).
  static constexpr std::uint8_t kLog2MinBackingAlignment = 4;
  static constexpr std::size_t kRecycleGranule = debug::RecycleBins::kGranule;
  static Alignment backing_alignment(const BlockRecord& record) noexcept {
    return Alignment::from_log2(std::max(record.log2_alignment, kLog2MinBackingAlignment));
  }

  // [record and left redzone, rounded up to the alignment][size bytes][right redzone] from
  // backing, or from the thread's recycled blocks (then the right redzone runs to that
  // block's end). The record is written by BlockTable::insert(); here its place gets
  // canaries like the rest of the left part.
  // Inlined into allocate(), its one caller: GCC's own choice moved with unrelated edits,
  // and the call cost sqlite 15M instructions (0.4%).
  [[gnu::always_inline]] bool place_in_backing(BlockRecord* record) noexcept {
    const std::size_t alignment = record->alignment();
    const std::size_t redzone = options.redzone_size;
    const std::size_t in_front = blocks.header_offset();
    const std::size_t left = (in_front + alignment - 1) & ~(alignment - 1);
    std::size_t total;
    if (left < in_front || __builtin_add_overflow(left, record->size, &total) ||
        __builtin_add_overflow(total, redzone + kRecycleGranule - 1, &total))
      return false;
    // Whole granules (the right redzone takes the rest): a block comes back from the
    // recycle bins for a request of its own size (they are binned by granules), and most
    // backings round up so anyway.
    total &= ~(kRecycleGranule - 1);
    if (total == 0) total = kRecycleGranule;  // malloc(0) with no redzones still needs an address of its own
    void* base;
    debug::RecycleBins::Block kept;
    if (record->log2_alignment <= kLog2MinBackingAlignment && recycled.take(total, &kept)) {
      base = kept.base;
      total = kept.length;
      record->backing_thread = kept.owner;
    } else {
      base = options.backing.raw_alloc(total, backing_alignment(*record), 0);
      if (base == nullptr) return false;
      record->backing_thread = static_cast<std::uint8_t>(debug::thread_slot());
    }
    auto* bytes = static_cast<std::uint8_t*>(base);
    write_left_canaries(bytes, bytes + left);
    std::memset(bytes + left + record->size, kCanary, total - left - record->size);
    record->base = base;
    record->base_len = total;
    record->address = reinterpret_cast<std::uintptr_t>(bytes + left);
    return true;
  }

  // The left part of a block, [base, user): the padding to the alignment, the place of
  // its record (BlockTable::insert() writes it there), the left redzone.
  std::size_t left_redzone_bytes() const noexcept { return blocks.header_offset() - sizeof(BlockRecord); }
  const std::uint8_t* record_place(const std::uint8_t* user) const noexcept { return user - blocks.header_offset(); }
  const std::uint8_t* left_redzone(const std::uint8_t* user) const noexcept { return user - left_redzone_bytes(); }
  // Canaries on the whole left part, the record's place included, which insert() then
  // overwrites: one memset call. Two that skip the record's place (the first mostly of
  // length 0) cost containers 1.1% more instructions (`scripts/count_instructions`).
  static void write_left_canaries(std::uint8_t* base, std::uint8_t* user) noexcept {
    std::memset(base, kCanary, static_cast<std::size_t>(user - base));
  }

  // A mapping of its own: canaries (and the record), the block ending as close to the next
  // page as its alignment allows (16 bytes at least, as every block's record and user
  // address are: up to 15 bytes of right redzone, checked at free, before the guard),
  // then a PROT_NONE page.
  bool place_guarded(BlockRecord* record) noexcept {
    const std::size_t page = os::page_size();
    const std::size_t alignment = std::max<std::size_t>(record->alignment(), BlockStartMap::kGranule);
    std::size_t data;
    if (__builtin_add_overflow(record->size, blocks.header_offset() + alignment + page - 1, &data)) return false;
    data &= ~(page - 1);
    auto* base = static_cast<std::uint8_t*>(os::map(data + page));
    if (base == nullptr) return false;
    std::uint8_t* const guard = base + data;
    if (!os::protect_none(guard, page)) {
      os::unmap(base, data + page);
      return false;
    }
    const std::uintptr_t user = (reinterpret_cast<std::uintptr_t>(guard) - record->size) & ~(alignment - 1);
    auto* user_bytes = reinterpret_cast<std::uint8_t*>(user);
    write_left_canaries(base, user_bytes);
    std::memset(user_bytes + record->size, kCanary, static_cast<std::size_t>(guard - user_bytes) - record->size);
    record->base = base;
    record->base_len = data + page;
    record->address = user;
    record->guarded = true;
    return true;
  }

  void release_memory(const BlockRecord& record) noexcept {
    if (record.guarded) {
      os::unmap(record.base, record.base_len);
    } else {
      options.backing.raw_free(record.base, record.base_len, backing_alignment(record), 0);
    }
  }

  // The end of the bytes a block may check as redzone: the guard page, or the block's end.
  static std::uint8_t* redzone_end(const BlockRecord& record) noexcept {
    const std::size_t guard_page = record.guarded ? os::page_size() : 0;
    return static_cast<std::uint8_t*>(record.base) + record.base_len - guard_page;
  }

  // ---- checks

  // Where (from the user address) a redzone byte was overwritten: the one nearest the
  // block on the left, else the first on the right; kIntact when none was.
  static constexpr std::ptrdiff_t kIntact = PTRDIFF_MAX;
  std::ptrdiff_t redzone_damage(const BlockRecord& record) const noexcept {
    const auto* user = reinterpret_cast<const std::uint8_t*>(record.address);
    const auto* base = static_cast<const std::uint8_t*>(record.base);
    // The left part less the record in it: the redzone after it, the padding before it.
    const std::uint8_t* redzone = left_redzone(user);
    const std::uint8_t* padding_end = record_place(user);
    if (!debug::filled_with(redzone, user, kCanary) || !debug::filled_with(base, padding_end, kCanary)) {
      const std::uint8_t* damaged = debug::last_not(redzone, user, kCanary);
      if (damaged == nullptr) damaged = debug::last_not(base, padding_end, kCanary);
      return damaged - user;
    }
    const std::uint8_t* end = redzone_end(record);
    if (!debug::filled_with(user + record.size, end, kCanary))
      return debug::first_not(user + record.size, end, kCanary) - user;
    return kIntact;
  }

  // false (after reporting) when a redzone byte was overwritten.
  bool check_redzones(const BlockRecord& record, StackId now) noexcept {
    return report_redzone_damage(record, redzone_damage(record), now);
  }
  bool report_redzone_damage(const BlockRecord& record, std::ptrdiff_t damage, StackId now) noexcept {
    if (damage == kIntact) return true;
    debug::report_redzone_corruption(policy, record, damage, now);
    return false;
  }

  // Where a freed block's poison was first written, or -1 when it was not (or the block
  // is guarded: PROT_NONE while quarantined, a write would have faulted).
  static std::ptrdiff_t poison_damage(const BlockRecord& record) noexcept {
    if (record.guarded) return -1;
    const auto* user = reinterpret_cast<const std::uint8_t*>(record.address);
    const std::uint8_t* end = user + record.size;
    if (debug::filled_with(user, end, kPoison)) return -1;
    return debug::first_not(user, end, kPoison) - user;
  }

  // A freed block's poison; false (after reporting) when it was written.
  bool check_poison(const BlockRecord& record, StackId now) noexcept {
    const std::ptrdiff_t damage = poison_damage(record);
    if (damage < 0) return true;
    debug::report_write_after_free(policy, record, damage, now);
    return false;
  }

  // ---- freeing

  // Whether a block is poisoned before it joins its thread's quarantine batch rather than
  // after (see release()): a big one, which another thread's flush_batches() could release
  // before this thread poisons it (guarded ones are poisoned first too, under the lock).
  bool poison_first(const BlockRecord& record) const noexcept {
    return quarantine.could_leave_from_flush(record.base_len);
  }

  // Puts a quarantined block's record (taken out of the table) into its thread's batch;
  // the block's shard lock held, so that a racing second free finds the block in the
  // table or in the quarantine. What must be done once the lock is dropped goes to *next.
  struct AfterAdd {
    bool release_now = false;  // the quarantine has no room at all: release it unchecked
    bool batch_due = false;    // move the thread's batch on (Quarantine::move_batch)
    bool evicted_one = false;  // `evicted` left the ring for it: evict it
    BlockRecord evicted;
  };
  void add_to_quarantine_locked(const BlockRecord& record, AfterAdd* next) noexcept {
    const Quarantine::Added added = quarantine.add_to_batch(record, &next->evicted);
    next->release_now = !added.held;
    next->batch_due = added.batch_due;
    next->evicted_one = added.evicted_one;
  }

  // What follows add_to_quarantine_locked(), no lock held; `record` is poisoned by now.
  void after_add(const BlockRecord& record, AfterAdd& next) noexcept {
    if (next.release_now) release_memory(record);
    if (next.evicted_one) evict(next.evicted, true);
    if (!next.batch_due) return;
    Quarantine::Entry leaving[Quarantine::kMaxEvicted];
    evict_all(leaving, quarantine.move_batch(leaving));
  }

  // A block entering quarantine: poisoned, or inaccessible when guarded.
  static void poison(const BlockRecord& record) noexcept {
    if (record.guarded) {
      os::protect_none(record.base, record.base_len);
    } else {
      std::memset(reinterpret_cast<void*>(record.address), kPoison, record.size);
    }
  }

  // Evicts (checking poison) the `count` entries in `leaving`, then, while the quarantine
  // handed back as many as it could, what else it has in excess. `leaving` is a buffer of
  // Quarantine::kMaxEvicted entries.
  void evict_all(Quarantine::Entry* leaving, std::size_t count) noexcept {
    // Blocks leaving were freed long ago: their poison is cold (their records are here,
    // read in order). Its loads are started a few blocks ahead, so that the misses
    // overlap: the first few cache lines (most blocks are small; the hardware prefetcher
    // takes over along a large one once it has seen a few lines).
    constexpr std::size_t kAhead = 8;
    constexpr std::size_t kPoisonLinesAhead = 8;
    const auto prefetch = [&](const Quarantine::Entry& entry) {
      if (entry.guarded || entry.size == 0) return;  // no poison to read
      const std::uintptr_t first = entry.address & ~std::uintptr_t{63};
      const std::size_t lines = std::min<std::size_t>(kPoisonLinesAhead, (entry.address + entry.size - first + 63) / 64);
      for (std::size_t line = 0; line < lines; ++line)
        prefetch_line(first + line * 64);
    };
    for (;;) {
      for (std::size_t i = 0; i < count && i < kAhead; ++i) prefetch(leaving[i]);
      for (std::size_t i = 0; i < count; ++i) {
        if (i + kAhead < count) prefetch(leaving[i + kAhead]);
        evict(leaving[i], true);
      }
      if (count < Quarantine::kMaxEvicted) return;
      count = quarantine.pop_excess(leaving, Quarantine::kMaxEvicted);
    }
  }

  // Releases a block that left the quarantine for good, checking its poison first when
  // `check`, or keeps it for this thread's next allocation of its size (recycle_bins.hpp:
  // its lines are in this core's cache now) when the backing gave it to another thread.
  // Its record came with it: no table lookup.
  void evict(const BlockRecord& record, bool check) noexcept {
    if (check) check_poison(record, debug::kNoStack);
    if (!record.guarded && record.log2_alignment <= kLog2MinBackingAlignment &&
        record.backing_thread != debug::thread_slot() &&
        recycled.keep({record.base, record.base_len, record.backing_thread}))
      return;
    release_memory(record);
  }

  // A live block whose record an underflow overwrote (BlockTable::intact() false): reported
  // as the underflow it is, with what is still known (its address; not its size or
  // stacks), after the caller has forgotten it. Its memory is neither released nor kept:
  // the record no longer says where it begins or ends.
  void report_damaged_record(std::uintptr_t address, AllocationFamily family, StackId now) noexcept {
    BlockRecord known{};
    known.address = address;
    known.family = family;
    const auto* user = reinterpret_cast<const std::uint8_t*>(address);
    const std::uint8_t* redzone = left_redzone(user);
    // The byte nearest the block that was written: in the redzone, or the record's seal.
    const std::uint8_t* damaged = debug::last_not(redzone, user, kCanary);
    if (damaged == nullptr) damaged = redzone - 1;
    debug::report_redzone_corruption(policy, known, damaged - user, now);
  }

  // A pointer that is no block's start: inside one (live or quarantined), or nobody's.
  void report_unknown(const void* ptr, AllocationFamily family, StackId now) noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(ptr);
    BlockRecord containing{};
    if (blocks.find_containing(address, &containing) || quarantine.find_containing(address, &containing)) {
      debug::report_interior_free(policy, ptr, containing, family, now);
    } else {
      debug::report_invalid_free(policy, ptr, family, now);
    }
  }

  // `report_unknown`: false makes a pointer this allocator never returned a `false`
  // return, unreported (the caller may know its owner); otherwise true. `captured`: the
  // call's stack when the caller has it already (realloc), else null.
  [[gnu::always_inline]] bool release(void* ptr, AllocationFamily family, std::size_t size, std::size_t alignment,
                                      const CallSite& caller, bool report_unknown_pointer = true,
                                      const StackId* captured = nullptr) noexcept {
    const auto address = reinterpret_cast<std::uintptr_t>(ptr);
    blocks.prefetch(address);  // the slot's cache miss is served during the capture
    const StackId now = captured != nullptr ? *captured : capture_stack_here(caller, debug::CaptureSeries::frees);
    BlockTable::Shard& shard = blocks.shard_for(address);
    BlockRecord record{};
    // How a live block leaves use, decided once under its shard lock.
    enum class Retire : std::uint8_t {
      not_live,         // unknown here, or marked quarantined by a free still poisoning it
      release_now,      // too big for the quarantine: out of the table, released unpoisoned
      poison_then_add,  // big: stays in the table, marked, until it is poisoned
      guarded_added,    // guarded: made inaccessible and moved into the quarantine, under the lock
      added,            // the common case: its record already moved into the quarantine
    };
    Retire retire = Retire::not_live;
    AfterAdd next;
    bool damaged = false;
    std::ptrdiff_t guarded_damage = kIntact;  // checked before the block was made inaccessible
    {
      MutexLock guard(shard.lock);
      BlockRecord* found = blocks.find(shard, address);
      if (found != nullptr && !BlockTable::intact(*found, address)) [[unlikely]] {
        damaged = true;
        blocks.forget_damaged(shard, found);
        found = nullptr;
      }
      if (found != nullptr) record = *found;
      if (found != nullptr && record.state == BlockState::live) {
        BlockTable::add_live(shard, -1, -static_cast<std::ptrdiff_t>(record.size));
        record.state = BlockState::quarantined;
        record.free_stack = now;
        if (!quarantine.could_hold(record.base_len)) {
          retire = Retire::release_now;
          blocks.erase(shard, found);
        } else if (record.guarded) {
          // Its record is in the mapping that poison() makes inaccessible: checked, out of
          // the table, inaccessible and quarantined all under the lock, so that no one (a
          // leak check) reads the record of a block still in the table but no longer
          // readable, and a racing second free finds it in one or the other. A system call
          // under a shard lock, in a mode that makes one per free anyway.
          retire = Retire::guarded_added;
          guarded_damage = redzone_damage(record);  // reported below, with no lock held
          blocks.erase(shard, found);
          poison(record);
          add_to_quarantine_locked(record, &next);
        } else if (poison_first(record)) {
          // A racing second free finds it in the table and reports a double free.
          retire = Retire::poison_then_add;
          *found = record;
        } else {
          // The record moves from the table into the quarantine, where it stays until the
          // block leaves; poisoned after the add, with no lock held (no other thread can
          // release a block this small before that; a leak_check() running meanwhile may
          // report it unpoisoned, as it may any block freed while it runs).
          retire = Retire::added;
          blocks.erase(shard, found);
          add_to_quarantine_locked(record, &next);
        }
      }
    }
    if (damaged) [[unlikely]] {
      report_damaged_record(address, family, now);
      return true;
    }
    if (record.address == 0) {
      // Not in the table: freed (in the quarantine) or unknown.
      if (ever_placed_near(address) && quarantine.find(address, &record)) {
        debug::report_double_free(policy, record, family, now);
        return true;
      }
      if (!report_unknown_pointer) return false;
      report_unknown(ptr, family, now);
      return true;
    }
    if (retire == Retire::not_live) {  // marked quarantined, being poisoned by another free
      debug::report_double_free(policy, record, family, now);
      return true;
    }

    if (record.family != family) {
      debug::report_mismatched_free(policy, record, family, now);
    } else {
      if (size != 0 && size != record.size) debug::report_wrong_size_free(policy, record, family, size, now);
      if (alignment != 0 && alignment != record.alignment())
        debug::report_wrong_alignment_free(policy, record, family, alignment, now);
    }
    if (retire == Retire::guarded_added) {
      report_redzone_damage(record, guarded_damage, now);
    } else {
      check_redzones(record, now);
    }
    if (limited()) limited_bytes.fetch_sub(record.size, std::memory_order_relaxed);
    switch (retire) {
      case Retire::release_now:
        // Unpoisoned: poisoning would touch every page of a block that is often mostly
        // untouched (sort's buffer is a large share of RAM).
        release_memory(record);
        break;
      case Retire::poison_then_add:
        poison(record);  // made inaccessible first, then out of the table into the quarantine
        {
          MutexLock guard(shard.lock);
          // Still there: a racing free only reports it (marked), nothing else erases it.
          if (BlockRecord* marked = blocks.find(shard, address)) blocks.erase(shard, marked);
          add_to_quarantine_locked(record, &next);
        }
        after_add(record, next);
        break;
      case Retire::guarded_added:
        after_add(record, next);
        break;
      case Retire::added:
        poison(record);
        after_add(record, next);
        break;
      case Retire::not_live:
        break;  // reported above
    }
    return true;
  }

  // A copy of the block at `address` in the table (live, or being freed).
  enum class Lookup : std::uint8_t { none, found, damaged };
  Lookup lookup(std::uintptr_t address, BlockRecord* out) noexcept {
    BlockTable::Shard& shard = blocks.shard_for(address);
    MutexLock guard(shard.lock);
    const BlockRecord* found = blocks.find(shard, address);
    if (found == nullptr) return Lookup::none;
    if (!BlockTable::intact(*found, address)) return Lookup::damaged;
    *out = *found;
    return Lookup::found;
  }

  void* reallocate(void* ptr, std::size_t new_size, const CallSite& caller) noexcept {
    constexpr std::size_t kMallocAlignment = alignof(std::max_align_t);
    if (ptr == nullptr) return allocate(new_size, kMallocAlignment, AllocationFamily::malloc, caller);
    // One capture for the whole call: its reports, the new block's allocation and the old
    // block's free (two walks of the same stack before: 1 capture in 15 on sqlite).
    const StackId now = capture_stack_here(caller, debug::CaptureSeries::allocations);
    BlockRecord record{};
    const Lookup looked_up = lookup(reinterpret_cast<std::uintptr_t>(ptr), &record);
    if (looked_up == Lookup::damaged) {  // the free reports it and forgets the block
      release(ptr, AllocationFamily::malloc, 0, 0, caller, true, &now);
      return nullptr;
    }
    if (looked_up == Lookup::none) {
      if (quarantine.find(reinterpret_cast<std::uintptr_t>(ptr), &record)) {
        debug::report_realloc_of_freed(policy, record, now);
      } else {
        report_unknown(ptr, AllocationFamily::malloc, now);
      }
      return nullptr;
    }
    if (record.state == BlockState::quarantined) {
      debug::report_realloc_of_freed(policy, record, now);
      return nullptr;
    }
    void* fresh = allocate(new_size, kMallocAlignment, AllocationFamily::malloc, caller, &now);
    if (fresh == nullptr) return nullptr;
    std::memcpy(fresh, ptr, std::min(new_size, record.size));
    // Released as realloc's own family: a new'd block given to realloc is a mismatch.
    release(ptr, AllocationFamily::malloc, 0, 0, caller, true, &now);
    return fresh;
  }

  // ---- leak_check

  // A live block as the grouping sees it.
  struct LiveBlock {
    StackId stack;
    LeakKind kind;
    std::size_t size;
  };

  // `stack_start`: where the caller's part of this thread's stack begins (see leak_scan.hpp).
  LeakReport leak_check(const LeakCheckOptions& options, std::uintptr_t stack_start) noexcept {
    LeakReport report;
    // Blocks in the threads' batches move on to the ring, where their poison is checked
    // below; moving them keeps quarantined_bytes() and the limit exact.
    quarantine.flush_batches([&](const Quarantine::Entry& entry) { evict(entry, true); });
    Quarantine::Entry leaving[Quarantine::kMaxEvicted];
    evict_all(leaving, quarantine.pop_excess(leaving, Quarantine::kMaxEvicted));
    check_quarantined_poison();
    // The ring never moves once mapped; one mapped later holds only quarantined blocks.
    const AddressRange quarantine_ring = quarantine.mapping();
    // Every shard lock is held from the snapshot to the end of the scan: no block can be
    // freed (its memory reused or unmapped) while the scan reads it, and the shard arrays
    // stay where the scan is told they are. Nothing in between allocates or reports.
    blocks.lock_all();
    const std::size_t count = blocks.size_while_locked();
    const std::size_t records_bytes = (count + 1) * sizeof(BlockRecord);
    const std::size_t kinds_bytes = (count + 1) * sizeof(LeakKind);
    auto* records = static_cast<BlockRecord*>(os::map(records_bytes));
    auto* kinds = static_cast<LeakKind*>(os::map(kinds_bytes));
    if (records == nullptr || kinds == nullptr) {
      blocks.unlock_all();
      if (records != nullptr) os::unmap(records, records_bytes);
      if (kinds != nullptr) os::unmap(kinds, kinds_bytes);
      return report;
    }
    // In address order (the scan wants them so). A block whose record an underflow
    // overwrote is forgotten here and reported below (the first few of them).
    std::size_t n = 0;
    constexpr std::size_t kDamagedReported = 16;
    std::uintptr_t damaged[kDamagedReported];
    std::size_t damaged_count = 0;
    blocks.for_each_while_locked([&](BlockRecord& record, std::uintptr_t address) {
      if (BlockTable::intact(record, address)) {
        records[n++] = record;
        return;
      }
      if (damaged_count < kDamagedReported) damaged[damaged_count++] = address;
      blocks.forget_damaged(blocks.shard_for(address), &record);
    });
    // Memory of ours that is no root: the start map (no addresses in it, only time to
    // read), the quarantine ring, this object, the snapshot, the stack depot, the walk memos.
    constexpr std::size_t kMapRanges = 64;  // the map's root and leaves: one per GiB of address space blocks are in
    AddressRange never_roots[kMapRanges + 9];
    std::size_t roots_skipped = std::min(blocks.mappings_while_locked(never_roots, kMapRanges), kMapRanges);
    const auto range_of = [](const void* begin, std::size_t bytes) {
      const auto start = reinterpret_cast<std::uintptr_t>(begin);
      return AddressRange{start, start + bytes};
    };
    never_roots[roots_skipped++] = quarantine_ring;
    never_roots[roots_skipped++] = range_of(this, sizeof *this);
    never_roots[roots_skipped++] = range_of(records, records_bytes);
    never_roots[roots_skipped++] = range_of(kinds, kinds_bytes);
    roots_skipped += debug::stack_depot().mappings(never_roots + roots_skipped, 4);
    never_roots[roots_skipped++] = debug::stack_memo_range();
    debug::classify_blocks({records, n}, {never_roots, roots_skipped}, options, stack_start, kinds);
    blocks.unlock_all();
    for (std::size_t i = 0; i < damaged_count; ++i)
      report_damaged_record(damaged[i], AllocationFamily::malloc, debug::kNoStack);

    // The checks report, so they run with no lock held. A quarantined record here is a
    // block being freed (poisoned first): its free checks it.
    std::size_t live = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (records[i].state != BlockState::live) continue;
      check_redzones(records[i], debug::kNoStack);
      ++live;
    }
    group_leaks({records, n}, kinds, live, &report);
    os::unmap(kinds, kinds_bytes);
    os::unmap(records, records_bytes);
    return report;
  }

  // Checks the poison of every block in the quarantine's ring (leak_check() moved the
  // batches there): read under the ring's lock, so that none is released meanwhile;
  // reported after it, from copies.
  void check_quarantined_poison() noexcept {
    struct Damaged {
      BlockRecord record;
      std::ptrdiff_t offset;
    };
    // As many as the ring may hold; only the pages written are ever touched.
    const std::size_t damaged_bytes = Quarantine::kCapacity * sizeof(Damaged);
    auto* damaged = static_cast<Damaged*>(os::map(damaged_bytes));
    if (damaged == nullptr) return;
    std::size_t n = 0;
    quarantine.for_each_in_ring([&](const BlockRecord& record) {
      const std::ptrdiff_t offset = poison_damage(record);
      if (offset >= 0 && n < Quarantine::kCapacity) damaged[n++] = {record, offset};
    });
    for (std::size_t i = 0; i < n; ++i)
      debug::report_write_after_free(policy, damaged[i].record, damaged[i].offset, debug::kNoStack);
    os::unmap(damaged, damaged_bytes);
  }

  // Groups the live blocks by kind and allocation stack: definite first, then indirect,
  // then reachable, largest bytes first within a kind.
  static void group_leaks(std::span<const BlockRecord> records, const LeakKind* kinds, std::size_t live,
                          LeakReport* report) noexcept {
    if (live == 0) return;
    const std::size_t live_bytes = live * sizeof(LiveBlock);
    auto* blocks = static_cast<LiveBlock*>(os::map(live_bytes));
    if (blocks == nullptr) return;
    std::size_t n = 0;
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (records[i].state != BlockState::live) continue;
      blocks[n++] = {records[i].allocation_stack, kinds[i], records[i].size};
      LeakTotals& totals = report->totals_[static_cast<int>(kinds[i])];
      totals.blocks += 1;
      totals.bytes += records[i].size;
    }
    const auto same_group = [](const LiveBlock& a, const LiveBlock& b) { return a.kind == b.kind && a.stack == b.stack; };
    std::sort(blocks, blocks + n, [](const LiveBlock& a, const LiveBlock& b) {
      return a.kind != b.kind ? a.kind < b.kind : a.stack < b.stack;
    });
    std::size_t groups = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (i == 0 || !same_group(blocks[i], blocks[i - 1])) ++groups;
    const std::size_t group_bytes = groups * sizeof(LeakGroup);
    auto* group = static_cast<LeakGroup*>(os::map(group_bytes));
    if (group != nullptr) {
      std::size_t g = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (i > 0 && !same_group(blocks[i], blocks[i - 1])) ++g;
        group[g].stack = blocks[i].stack;
        group[g].kind = blocks[i].kind;
        group[g].blocks += 1;
        group[g].bytes += blocks[i].size;
      }
      std::sort(group, group + groups, [](const LeakGroup& a, const LeakGroup& b) {
        if (a.kind != b.kind) return a.kind < b.kind;
        return a.bytes != b.bytes ? a.bytes > b.bytes : a.stack < b.stack;
      });
      report->groups_ = group;
      report->group_count_ = groups;
      report->mapped_bytes_ = group_bytes;
    }
    os::unmap(blocks, live_bytes);
  }

  // ---- teardown: everything back to backing, silently.
  void release_everything() noexcept {
    quarantine.drain([&](const Quarantine::Entry& entry) { release_memory(entry); });
    blocks.for_each([&](const BlockRecord& record, std::uintptr_t address) {
      if (BlockTable::intact(record, address)) release_memory(record);
    });
    recycled.drain([&](const debug::RecycleBins::Block& block) {
      options.backing.raw_free(block.base, block.length, Alignment::from_log2(kLog2MinBackingAlignment), 0);
    });
  }
};

// ---- LeakReport

LeakReport::LeakReport(LeakReport&& other) noexcept
    : groups_(other.groups_),
      group_count_(other.group_count_),
      mapped_bytes_(other.mapped_bytes_),
      totals_{other.totals_[0], other.totals_[1], other.totals_[2]} {
  other.groups_ = nullptr;
  other.group_count_ = other.mapped_bytes_ = 0;
  for (LeakTotals& t : other.totals_) t = {};
}

LeakReport& LeakReport::operator=(LeakReport&& other) noexcept {
  if (this != &other) {
    this->~LeakReport();
    new (this) LeakReport(static_cast<LeakReport&&>(other));
  }
  return *this;
}

LeakReport::~LeakReport() {
  if (groups_ != nullptr) os::unmap(groups_, mapped_bytes_);
}

// ---- DebugAllocator

DebugAllocator::DebugAllocator(DebugOptions options) noexcept : impl_(nullptr) {
  void* memory = os::map(sizeof(Impl));
  if (memory != nullptr) impl_ = new (memory) Impl(options);
}

DebugAllocator::~DebugAllocator() {
  if (impl_ == nullptr) return;
  impl_->release_everything();
  impl_->~Impl();
  os::unmap(impl_, sizeof(Impl));
}

__attribute__((noinline)) void* DebugAllocator::allocate(std::size_t size, std::size_t alignment,
                                                         AllocationFamily family, const CallSite* caller) noexcept {
  if (impl_ == nullptr) return nullptr;
  return impl_->allocate(size, alignment == 0 ? 1 : alignment, family, caller != nullptr ? *caller : ZHEAP_CALL_SITE());
}

__attribute__((noinline)) void DebugAllocator::release(void* ptr, AllocationFamily family, std::size_t size,
                                                       std::size_t alignment, const CallSite* caller) noexcept {
  if (impl_ == nullptr || ptr == nullptr) return;
  impl_->release(ptr, family, size, alignment, caller != nullptr ? *caller : ZHEAP_CALL_SITE());
}

__attribute__((noinline)) bool DebugAllocator::release_if_known(void* ptr, AllocationFamily family, std::size_t size,
                                                                std::size_t alignment, const CallSite* caller) noexcept {
  if (impl_ == nullptr || ptr == nullptr) return false;
  return impl_->release(ptr, family, size, alignment, caller != nullptr ? *caller : ZHEAP_CALL_SITE(), false);
}

__attribute__((noinline)) void* DebugAllocator::reallocate(void* ptr, std::size_t new_size,
                                                           const CallSite* caller) noexcept {
  if (impl_ == nullptr) return nullptr;
  return impl_->reallocate(ptr, new_size, caller != nullptr ? *caller : ZHEAP_CALL_SITE());
}

std::size_t DebugAllocator::usable_size(const void* ptr) const noexcept {
  BlockRecord record{};
  if (impl_ == nullptr || impl_->lookup(reinterpret_cast<std::uintptr_t>(ptr), &record) != Impl::Lookup::found) return 0;
  return record.state == BlockState::live ? record.size : 0;
}

bool DebugAllocator::owns(const void* ptr) const noexcept {
  BlockRecord record{};
  if (impl_ == nullptr) return false;
  // A block whose record was overwritten is still ours: its free reports the damage.
  const Impl::Lookup looked_up = impl_->lookup(reinterpret_cast<std::uintptr_t>(ptr), &record);
  return looked_up == Impl::Lookup::damaged || (looked_up == Impl::Lookup::found && record.state == BlockState::live);
}

__attribute__((noinline)) LeakReport DebugAllocator::leak_check(const LeakCheckOptions& options) noexcept {
  if (impl_ == nullptr) return LeakReport{};
  // The caller's callee-saved registers may hold its only pointer to a block:
  // __builtin_unwind_init() makes this function save all of them in its frame, above
  // `marker`. The scan takes this thread's stack from `marker` up (the caller's frames);
  // below it are the scan's own frames, full of block addresses.
  __builtin_unwind_init();
  volatile std::uintptr_t marker = 0;
  LeakReport report = impl_->leak_check(options, reinterpret_cast<std::uintptr_t>(&marker));
  asm volatile("" : : "r"(&marker) : "memory");  // no tail call: this frame outlives the scan
  return report;
}

// The shard locks before the quarantine's: a free adds to the quarantine under its shard's.
void DebugAllocator::lock_for_fork() noexcept {
  if (impl_ == nullptr) return;
  impl_->blocks.lock_all();
  impl_->quarantine.lock();
  debug::stack_depot().lock();
}

void DebugAllocator::unlock_after_fork() noexcept {
  if (impl_ == nullptr) return;
  debug::stack_depot().unlock();
  impl_->quarantine.unlock();
  impl_->blocks.unlock_all();
}

std::size_t DebugAllocator::live_blocks() const noexcept {
  return impl_ == nullptr ? 0 : impl_->blocks.live_blocks();
}
std::size_t DebugAllocator::live_bytes() const noexcept {
  return impl_ == nullptr ? 0 : impl_->blocks.live_bytes();
}
std::size_t DebugAllocator::quarantined_bytes() const noexcept {
  return impl_ == nullptr ? 0 : impl_->quarantine.bytes();
}

// ---- the Allocator interface: each thunk passes its own call site (the function that
// called alloc()/free(), where the recorded stack starts).

__attribute__((noinline)) void* DebugAllocator::vtable_alloc(void* ctx, std::size_t len, Alignment alignment,
                                                             std::uintptr_t) noexcept {
  auto* self = static_cast<DebugAllocator*>(ctx);
  if (self->impl_ == nullptr) return nullptr;
  return self->impl_->allocate(len, alignment.bytes(), AllocationFamily::allocator, ZHEAP_CALL_SITE());
}

__attribute__((noinline)) bool DebugAllocator::vtable_resize(void* ctx, void* memory, std::size_t len,
                                                             Alignment alignment, std::size_t new_len,
                                                             std::uintptr_t) noexcept {
  auto* self = static_cast<DebugAllocator*>(ctx);
  Impl* impl = self->impl_;
  if (impl == nullptr) return false;
  const auto address = reinterpret_cast<std::uintptr_t>(memory);
  BlockTable::Shard& shard = impl->blocks.shard_for(address);
  BlockRecord record{};
  {
    MutexLock guard(shard.lock);
    BlockRecord* found = impl->blocks.find(shard, address);
    if (found != nullptr && !BlockTable::intact(*found, address)) return false;  // its free reports it
    if (found != nullptr && found->state == BlockState::live && found->family == AllocationFamily::allocator &&
        found->size == len && found->alignment() == alignment.bytes() && new_len <= len) {
      // Shrinks in place: the freed tail becomes redzone.
      std::memset(reinterpret_cast<std::uint8_t*>(address) + new_len, kCanary, len - new_len);
      found->size = new_len;
      BlockTable::add_live(shard, 0, -static_cast<std::ptrdiff_t>(len - new_len));
      if (impl->limited()) impl->limited_bytes.fetch_sub(len - new_len, std::memory_order_relaxed);
      return true;
    }
    if (found != nullptr) record = *found;
  }
  // Not resized. When the call itself was wrong, say so (growing is merely refused).
  const StackId now = impl->capture_stack_here(ZHEAP_CALL_SITE(), debug::CaptureSeries::allocations);
  if (record.address == 0 && impl->quarantine.find(address, &record)) {
    debug::report_double_free(impl->policy, record, AllocationFamily::allocator, now);
  } else if (record.address == 0) {
    impl->report_unknown(memory, AllocationFamily::allocator, now);
  } else if (record.state == BlockState::quarantined) {
    debug::report_double_free(impl->policy, record, AllocationFamily::allocator, now);
  } else if (record.family != AllocationFamily::allocator) {
    debug::report_mismatched_free(impl->policy, record, AllocationFamily::allocator, now);
  } else if (record.size != len) {
    debug::report_wrong_size_free(impl->policy, record, AllocationFamily::allocator, len, now);
  } else if (record.alignment() != alignment.bytes()) {
    debug::report_wrong_alignment_free(impl->policy, record, AllocationFamily::allocator, alignment.bytes(), now);
  }
  return false;
}

__attribute__((noinline)) void DebugAllocator::vtable_free(void* ctx, void* memory, std::size_t len,
                                                           Alignment alignment, std::uintptr_t) noexcept {
  auto* self = static_cast<DebugAllocator*>(ctx);
  if (self->impl_ == nullptr) return;
  self->impl_->release(memory, AllocationFamily::allocator, len, alignment.bytes(),
                       ZHEAP_CALL_SITE());
}

const Allocator::VTable DebugAllocator::vtable = {
    &DebugAllocator::vtable_alloc,
    &DebugAllocator::vtable_resize,
    &Allocator::no_remap,
    &DebugAllocator::vtable_free,
};

// ---- stacks, for reports

std::span<const std::uintptr_t> debug_stack_frames(std::uint32_t stack_id) noexcept {
  return debug::stack_depot().get(stack_id);
}

}  // namespace zheap
