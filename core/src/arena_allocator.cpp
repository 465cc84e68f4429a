#include <zheap/arena_allocator.hpp>

#include <algorithm>
#include <new>
#include <utility>

#include "support/bump.hpp"

namespace zheap {

// The header at the start of every child block. `len` is the child block's whole length,
// as the child must be told when the block is resized or freed.
struct ArenaAllocator::Buffer {
  Buffer* next;
  std::size_t len;

  std::byte* data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
  std::size_t capacity() const noexcept { return len - sizeof(Buffer); }
};

namespace {

constexpr Alignment buffer_alignment = Alignment::of_bytes(alignof(std::max_align_t));
static_assert(sizeof(void*) * 2 % alignof(std::max_align_t) == 0,
              "the buffer header keeps data() aligned like the child block");

// The capacity of the buffer that follows one of `previous` usable bytes, when it must
// hold at least `minimum`: previous + minimum, times 1.5. SIZE_MAX on overflow.
std::size_t next_capacity(std::size_t previous, std::size_t minimum) noexcept {
  std::size_t sum, grown;
  if (__builtin_add_overflow(previous, minimum, &sum) || __builtin_add_overflow(sum, sum / 2, &grown)) return SIZE_MAX;
  return grown;
}

}  // namespace

ArenaAllocator::ArenaAllocator(ArenaAllocator&& other) noexcept
    : child_(other.child_),
      newest_(std::exchange(other.newest_, nullptr)),
      end_index_(std::exchange(other.end_index_, 0)) {}

ArenaAllocator& ArenaAllocator::operator=(ArenaAllocator&& other) noexcept {
  if (this != &other) {
    release_all();
    child_ = other.child_;
    newest_ = std::exchange(other.newest_, nullptr);
    end_index_ = std::exchange(other.end_index_, 0);
  }
  return *this;
}

void ArenaAllocator::release_buffer(Buffer* buffer) noexcept {
  child_.raw_free(buffer, buffer->len, buffer_alignment, ZHEAP_RETURN_ADDRESS());
}

void ArenaAllocator::release_all() noexcept {
  for (Buffer* buffer = newest_; buffer != nullptr;) {
    Buffer* next = buffer->next;
    release_buffer(buffer);
    buffer = next;
  }
  newest_ = nullptr;
  end_index_ = 0;
}

// A new newest buffer of at least `minimum_capacity` usable bytes, geometrically larger
// than the last; if the child refuses that size, exactly the minimum is tried.
ArenaAllocator::Buffer* ArenaAllocator::add_buffer(std::size_t minimum_capacity) noexcept {
  const std::size_t previous = newest_ != nullptr ? newest_->capacity() : 0;
  void* block = nullptr;
  std::size_t len = 0;
  for (std::size_t capacity : {next_capacity(previous, minimum_capacity), minimum_capacity}) {
    if (__builtin_add_overflow(capacity, sizeof(Buffer), &len)) continue;
    block = child_.raw_alloc(len, buffer_alignment, ZHEAP_RETURN_ADDRESS());
    if (block != nullptr) break;
  }
  if (block == nullptr) return nullptr;
  newest_ = ::new (block) Buffer{newest_, len};
  end_index_ = 0;
  return newest_;
}

bool ArenaAllocator::grow_in_place(Buffer* buffer, std::size_t capacity) noexcept {
  std::size_t len;
  if (__builtin_add_overflow(capacity, sizeof(Buffer), &len)) return false;
  if (!child_.raw_resize(buffer, buffer->len, buffer_alignment, len, ZHEAP_RETURN_ADDRESS())) return false;
  buffer->len = len;
  return true;
}

void* ArenaAllocator::alloc(std::size_t len, Alignment alignment, std::uintptr_t) noexcept {
  support::Placement placement{};
  if (Buffer* buffer = newest_) {
    if (!support::place_after(buffer->data(), end_index_, len, alignment, &placement)) return nullptr;
    // Growing in place keeps one contiguous buffer (page_allocator can, with mremap); ask
    // for the geometric size a new buffer would have, so that this stays rare.
    if (placement.end <= buffer->capacity() ||
        grow_in_place(buffer, next_capacity(buffer->capacity(), placement.end - buffer->capacity()))) {
      end_index_ = placement.end;
      return buffer->data() + placement.start;
    }
  }
  // A fresh buffer: room for `len` after at most alignment - 1 bytes of padding.
  std::size_t minimum;
  if (__builtin_add_overflow(len, alignment.bytes() - 1, &minimum)) return nullptr;
  Buffer* buffer = add_buffer(minimum);
  if (buffer == nullptr) return nullptr;
  support::place_after(buffer->data(), 0, len, alignment, &placement);  // fits by construction
  end_index_ = placement.end;
  return buffer->data() + placement.start;
}

bool ArenaAllocator::resize(void* memory, std::size_t len, Alignment, std::size_t new_len, std::uintptr_t) noexcept {
  const bool is_last = newest_ != nullptr && static_cast<std::byte*>(memory) + len == newest_->data() + end_index_;
  if (!is_last) return new_len <= len;  // a shrink leaves the tail unused until reset
  const std::size_t start = end_index_ - len;
  if (new_len > newest_->capacity() - start) return false;
  end_index_ = start + new_len;
  return true;
}

// Remap is resize or nothing: moving cannot be cheaper than the caller's copy.
void* ArenaAllocator::remap(void* memory, std::size_t len, Alignment alignment, std::size_t new_len,
                            std::uintptr_t ret_addr) noexcept {
  return resize(memory, len, alignment, new_len, ret_addr) ? memory : nullptr;
}

void ArenaAllocator::free(void* memory, std::size_t len, Alignment, std::uintptr_t) noexcept {
  if (newest_ != nullptr && static_cast<std::byte*>(memory) + len == newest_->data() + end_index_) end_index_ -= len;
}

std::size_t ArenaAllocator::query_capacity() const noexcept {
  std::size_t total = 0;
  for (const Buffer* buffer = newest_; buffer != nullptr; buffer = buffer->next) total += buffer->capacity();
  return total;
}

bool ArenaAllocator::reset(ResetMode mode, std::size_t limit) noexcept {
  std::size_t retained = 0;
  if (mode != ResetMode::free_all) retained = query_capacity();
  if (mode == ResetMode::retain_with_limit) retained = std::min(retained, limit);
  if (retained == 0) {
    release_all();
    return true;
  }
  // Keep the newest (largest) buffer, return the others, then bring the one kept to the
  // retained size: in place if the child can, else by replacing it.
  Buffer* kept = newest_;
  for (Buffer* buffer = kept->next; buffer != nullptr;) {
    Buffer* next = buffer->next;
    release_buffer(buffer);
    buffer = next;
  }
  kept->next = nullptr;
  end_index_ = 0;
  const std::size_t len = retained + sizeof(Buffer);  // retained <= a sum of real lengths
  if (kept->len == len) return true;
  if (child_.raw_resize(kept, kept->len, buffer_alignment, len, ZHEAP_RETURN_ADDRESS())) {
    kept->len = len;
    return true;
  }
  release_all();
  void* block = child_.raw_alloc(len, buffer_alignment, ZHEAP_RETURN_ADDRESS());
  if (block == nullptr) return false;
  newest_ = ::new (block) Buffer{nullptr, len};
  return true;
}

Allocator ArenaAllocator::allocator() noexcept { return Allocator(this, &vtable_for<ArenaAllocator>); }

}  // namespace zheap
