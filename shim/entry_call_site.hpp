// The call site of an exported function (malloc, operator new, ...), where debug mode's
// stacks start, in two steps so that the fast paths of the other modes, which share the
// exported functions, pay nothing for it:
//
//   ZHEAP_ENTRY_STACK_POINTER(), written in the exported function itself: its CFA, the
//   program's stack pointer once the call returns (one lea, and none when unused). It
//   travels down the inline C API (libc_semantics.hpp) as `caller`: one register, as the
//   return address did before it.
//   entry_call_site(caller), on debug mode's path only: the whole CallSite
//   (zheap/call_site.hpp). The return address is the word below the CFA. rbp, the
//   program's value at the call:
//     GCC: the files that define exported functions are built with -ffixed-rbp and
//       -fomit-frame-pointer (ZHEAP_RBP_RESERVED, shim/meson.build): no code of theirs
//       writes rbp, so the register still holds it.
//     Other compilers (clang builds the sanitizer stages) cannot reserve rbp: those files
//       are built with frame pointers instead (ZHEAP_ENTRY_FRAME_POINTERS), so the
//       exported function, or the one it jumped to on the same stack, pushed it right
//       below the return address.
//   Either way, only inside those files: entry_call_site() must run in a function of
//   theirs, before control passes to another file (the heap's entries).
//
// malloc and free reach malloc_full / free_full by a jump (a sibling call), on the same
// stack and with rbp untouched: their call site is still the program's.
#pragma once

#include <zheap/call_site.hpp>

#include <cstdint>

#if !(ZHEAP_RBP_RESERVED || ZHEAP_ENTRY_FRAME_POINTERS)
#error "exported functions must be built with ZHEAP_RBP_RESERVED or ZHEAP_ENTRY_FRAME_POINTERS (shim/meson.build)"
#endif

#define ZHEAP_ENTRY_STACK_POINTER() reinterpret_cast<std::uintptr_t>(__builtin_dwarf_cfa())

namespace zheap::shim {

// The CallSite of the exported function whose ZHEAP_ENTRY_STACK_POINTER() is `caller`.
[[gnu::always_inline]] inline CallSite entry_call_site(std::uintptr_t caller) noexcept {
  const auto* return_address_slot = reinterpret_cast<const std::uintptr_t*>(caller) - 1;
  std::uintptr_t rbp;
#if ZHEAP_RBP_RESERVED
  __asm__("movq %%rbp, %0" : "=r"(rbp));
#else
  rbp = return_address_slot[-1];
#endif
  return CallSite{*return_address_slot, caller, rbp};
}

}  // namespace zheap::shim
