// MemoryPool<T, Options>: fast create/destroy of many objects of one type, reusing freed
// slots (Zig's std.heap.MemoryPoolExtra).
//
// For: nodes, handles, anything made and destroyed often: create() is a pop from a free
// list (or a bump in an arena), destroy() a push, and no slot is returned to the backing
// allocator before reset() or the pool's end.
// Layout: the slots live in an ArenaAllocator over the backing allocator. Every slot is
// `slot_size` bytes at `slot_alignment` (T's size and alignment, raised to hold one pointer
// and rounded so that neighbouring slots stay aligned). A free slot holds the pointer to
// the next free slot in its first bytes, where the T was:
//
//     arena buffer: [ slot | slot | slot | ... ]      free_ -> slot -> slot -> nullptr
//
// The slot freed last is reused first (LIFO), so recently touched memory is reused warm.
// Options: alignment (bytes, a power of two; 0 = alignof(T)); growable = false caps the
// pool at the slots preheated so far (preheat() / preheated()): create() then returns
// nullptr when they are all in use, and after reset() the same number can be made again.
// reset() and the destructor release slots WITHOUT running ~T on objects still alive (as
// Zig's deinit/reset); destroy() what needs destroying first.
// Thread safety: none; one thread at a time.
// Movable (the slots stay where they are); not copyable.
#pragma once

#include <zheap/allocator.hpp>
#include <zheap/arena_allocator.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <utility>

namespace zheap {

struct MemoryPoolOptions {
  std::size_t alignment = 0;  // bytes, a power of two; 0 means alignof(T)
  bool growable = true;       // false: only the preheated slots, never more
};

template <class T, MemoryPoolOptions Options = MemoryPoolOptions{}>
class MemoryPool {
  struct FreeSlot {
    FreeSlot* next;
  };
  static_assert(Options.alignment == 0 || Alignment::is_valid(Options.alignment),
                "MemoryPoolOptions::alignment must be 0 or a power of two");

 public:
  static constexpr std::size_t slot_alignment =
      std::max({Options.alignment, alignof(T), alignof(FreeSlot)});
  static constexpr std::size_t slot_size =
      Alignment::of_bytes(slot_alignment).forward(std::max(sizeof(T), sizeof(FreeSlot)));

  explicit MemoryPool(Allocator backing) noexcept : arena_(backing) {}
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;
  MemoryPool(MemoryPool&& other) noexcept
      : arena_(std::move(other.arena_)),
        free_(std::exchange(other.free_, nullptr)),
        slots_made_(std::exchange(other.slots_made_, 0)),
        slot_limit_(std::exchange(other.slot_limit_, initial_slot_limit)) {}
  MemoryPool& operator=(MemoryPool&& other) noexcept {
    arena_ = std::move(other.arena_);
    free_ = std::exchange(other.free_, nullptr);
    slots_made_ = std::exchange(other.slots_made_, 0);
    slot_limit_ = std::exchange(other.slot_limit_, initial_slot_limit);
    return *this;
  }

  // A pool with `count` free slots made up front; nullopt when the backing allocator could
  // not provide them. The only way to give a non-growable pool any slots besides preheat().
  static std::optional<MemoryPool> preheated(Allocator backing, std::size_t count) noexcept {
    std::optional<MemoryPool> pool(std::in_place, backing);
    if (!pool->preheat(count)) pool.reset();
    return pool;
  }

  // Makes `count` more free slots, in one arena allocation; false (and nothing made) when
  // out of memory. A non-growable pool's cap rises by `count`.
  bool preheat(std::size_t count) noexcept {
    if (count == 0) return true;
    std::size_t bytes;
    if (__builtin_mul_overflow(count, slot_size, &bytes)) return false;
    auto* slots = static_cast<std::byte*>(alloc_slots(bytes));
    if (slots == nullptr) return false;
    for (std::size_t i = count; i-- > 0;) push(slots + i * slot_size);  // lowest address on top
    slots_made_ += count;
    if constexpr (!Options.growable) slot_limit_ += count;
    return true;
  }

  // A new T built from `args` in a free slot; nullptr when out of memory or, for a
  // non-growable pool, out of slots. If T's constructor throws, the slot is kept free.
  template <class... Args>
  T* create(Args&&... args) {
    void* slot = take_slot();
    if (slot == nullptr) return nullptr;
#if defined(__cpp_exceptions)
    try {
      return ::new (slot) T(std::forward<Args>(args)...);
    } catch (...) {
      push(slot);
      throw;
    }
#else
    return ::new (slot) T(std::forward<Args>(args)...);
#endif
  }

  // Runs ~T and makes the slot the next one create() uses. nullptr is ignored. `object`
  // must come from this pool's create().
  void destroy(T* object) noexcept {
    if (object == nullptr) return;
    object->~T();
    push(object);
  }

  // Forgets every slot (live objects are NOT destroyed) and resets the arena that holds
  // them; the return value is ArenaAllocator::reset's.
  bool reset(ResetMode mode, std::size_t limit = 0) noexcept {
    free_ = nullptr;
    slots_made_ = 0;
    return arena_.reset(mode, limit);
  }

  // Slots made since construction or the last reset (in use or free).
  std::size_t slot_count() const noexcept { return slots_made_; }
  // The most slots a non-growable pool may make; SIZE_MAX for a growable one.
  std::size_t slot_limit() const noexcept { return slot_limit_; }
  // Bytes the arena holds for slots, as ArenaAllocator::query_capacity().
  std::size_t query_capacity() const noexcept { return arena_.query_capacity(); }

 private:
  static constexpr std::size_t initial_slot_limit = Options.growable ? SIZE_MAX : 0;

  void push(void* slot) noexcept { free_ = ::new (slot) FreeSlot{free_}; }

  // `bytes` of slot-aligned memory from the arena (which records no return addresses).
  void* alloc_slots(std::size_t bytes) noexcept { return arena_.alloc(bytes, Alignment::of_bytes(slot_alignment), 0); }

  void* take_slot() noexcept {
    if (FreeSlot* slot = free_) {
      free_ = slot->next;
      return slot;
    }
    if (slots_made_ >= slot_limit_) return nullptr;
    void* slot = alloc_slots(slot_size);
    if (slot != nullptr) ++slots_made_;
    return slot;
  }

  ArenaAllocator arena_;
  FreeSlot* free_ = nullptr;
  std::size_t slots_made_ = 0;
  std::size_t slot_limit_ = initial_slot_limit;
};

}  // namespace zheap
