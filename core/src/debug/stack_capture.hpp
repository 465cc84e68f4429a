// Stack capture for the debug allocator: the return addresses of the calling thread's
// stack, full depth, without frame pointers, fast enough to run on every malloc.
//
// capture_stack() walks with cached CFI rules (frame_rule_cache.hpp): per frame one hash
// lookup and two loads (the return address at CFA-8, and rbp where the frame saved it).
// It starts from the registers at its own entry (a few instructions of assembly that read
// rsp, rbp and the return address before any compiler-generated code can move them);
// capture_stack_at() starts from a CallSite instead (call_site.hpp: the registers of the
// program's call into an allocator's entry point), so that the allocator's own frames
// between that entry and the capture are never walked.
// Whenever a frame's rule is not one the cache can express (a signal frame, a DWARF
// expression, code without CFI) or a step looks wrong (the stack pointer does not grow,
// or leaves a plausible stack span), the whole capture is redone with libgcc's
// _Unwind_Backtrace: correct first, fast where it can be.
//
// Consecutive captures on a thread share most of their outer frames, so each thread slot
// keeps a memo of its previous capture's steps, one per series of captures (allocations,
// frees: CaptureSeries; stack_capture.cpp): a frame in the same state (return address,
// stack pointer, and rbp where the CFA comes from rbp) as one of the previous capture
// takes that step's outcome instead of a rule lookup. The stack is still read at every
// frame, so the result is exactly the plain walk's.
//
// Safe inside malloc: no allocation, no lock (the memo is the thread's own), only
// thread_slot()'s initial-exec TLS; the first capture through a given return address
// reads its CFI (libgcc's FDE lookup, as _Unwind_Backtrace does).
// x86-64 Linux only.
#pragma once

#include <zheap/call_site.hpp>
#include <zheap/debug_allocator.hpp>

#include "debug/recent_stacks.hpp"

#include <cstddef>
#include <cstdint>

namespace zheap::debug {

// A stack walk never goes deeper than this, whatever `max` is asked for.
inline constexpr std::size_t kMaxStackFrames = 128;

// Fills `frames` with up to `max` return addresses, innermost first. frames[0] is the
// address capture_stack() returns to (a code address in its caller), unless `skip` drops
// that many frames from the top first. Returns the number written.
// (Its body is assembly, stack_capture.cpp, bound to this declaration by the asm label.)
std::size_t capture_stack(std::uintptr_t* frames, std::size_t max, std::size_t skip) noexcept
    __asm__("zheap_debug_capture_stack");

// The deepest stack a DebugAllocator records (DebugOptions::stack_depth is clamped to it).
inline constexpr std::size_t kMaxStackDepth = 120;

// Up to `max` return addresses from `site` outwards: frames[0] is site.return_address,
// then its callers. The walk starts with the site's registers, so nothing between the
// site and this call is walked; the site's frame must still be on the stack (the call it
// describes has not returned). Same walk, memo and fallback as capture_stack(); the
// fallback's _Unwind_Backtrace drops the frames above the site by its return address.
std::size_t capture_stack_at(std::uintptr_t* frames, std::size_t max, const CallSite& site) noexcept;

// Which earlier capture of the thread a walk follows (each series keeps its own memo):
// a thread's allocations come from the same few call paths again and again, so do its
// frees, but the two alternate. capture_stack() and capture_stack_at() walk in the
// allocations' series.
enum class CaptureSeries : std::uint8_t { allocations, frees };
inline constexpr std::size_t kCaptureSeries = 2;

// The id in `stacks` of the stack capture_stack_at(frames, max, site) would give. Each
// series keeps its thread's 32 most recent captures as the stack words their walks read:
// a capture that starts where one of them did and finds those words unchanged is that
// capture's stack again, and takes its id without walking or interning (a program's
// allocations cycle through a few dozen stacks: 99.9% of sqlite's captures). Others are
// walked and interned, and replace the oldest.
StackId capture_stack_id(const CallSite& site, std::size_t max, CaptureSeries series, RecentStacks& stacks) noexcept;

// The same stack, always through libgcc's _Unwind_Backtrace: the fallback, and the
// reference that tests compare capture_stack() with. frames[0] is the address this
// function returns to.
std::size_t capture_stack_unwind(std::uintptr_t* frames, std::size_t max, std::size_t skip) noexcept;

// Forgets the cached unwind rules, for after dlclose(): a library mapped later at the
// same addresses has other code. Safe at any time, from any thread.
void forget_frame_rules() noexcept;

// The walk memos' memory (static storage): it holds stale register values of the
// program's frames (rbp, which code without frame pointers uses for anything, a heap
// pointer included), so a leak scan must not take it for a root.
AddressRange stack_memo_range() noexcept;

// How many capture_stack_id() calls found their stack among their series' recent ones
// (and took its id without walking) since start-up, over the threads that have a memo.
std::uint64_t capture_ids_reused() noexcept;

// How many capture_stack() calls had to fall back to _Unwind_Backtrace since start-up.
std::uint64_t capture_fallback_count() noexcept;

}  // namespace zheap::debug
