// CallSite: where a program called an allocator's entry point, as the registers a stack
// walk needs to start in the program's own frame (x86-64): the return address, the stack
// pointer the caller has once the call returns, and rbp as it was at the call.
//
// Why: debug mode records a stack at every allocation and free. Walking up from the
// capture itself would step through the allocator's own 4-5 frames (export, dispatch, mode,
// DebugAllocator entry, capture) on every call only to drop them; an entry point that
// takes its caller's CallSite hands the walk the program's frame directly. These three
// registers are all the walker's cached rules use (a CFA is rsp- or rbp-based, the return
// address is at CFA - 8); any other rule falls back to libgcc's unwinder.
//
// ZHEAP_CALL_SITE() gives the CallSite of the function it is written in: its caller's call
// to it. Write it in that function itself (a macro, not a helper: the builtins describe
// the function they are compiled into). __builtin_frame_address(0) makes the function set
// up a frame pointer (push rbp; mov rsp, rbp), whose first word is the caller's rbp: exact
// whatever the compiler does with rbp elsewhere, at the price of a frame. (The shim's
// exported functions, which other modes' fast paths share, get theirs without a frame:
// shim/entry_call_site.hpp.)
#pragma once

#include <cstdint>

namespace zheap {

struct CallSite {
  std::uintptr_t return_address = 0;  // a code address in the caller, just after the call
  std::uintptr_t stack_pointer = 0;   // the caller's rsp after the call returns (the callee's CFA)
  std::uintptr_t frame_pointer = 0;   // rbp at the call (callee-saved: the caller's value)
};

}  // namespace zheap

#define ZHEAP_CALL_SITE()                                                                   \
  (::zheap::CallSite{reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)),         \
                     reinterpret_cast<std::uintptr_t>(__builtin_dwarf_cfa()),               \
                     *static_cast<const std::uintptr_t*>(__builtin_frame_address(0))})
