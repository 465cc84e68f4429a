// The exported malloc and free, written in assembly: their direct routes (direct_routes.hpp)
// and nothing else.
//
// Written in C++, GCC gives malloc a load and a jump through a register, and free seven
// instructions: it does not fold an atomic load into the instruction that uses it. Here:
//
//   malloc:  jmp  *route_malloc(%rip)          the heap's allocate_default, or malloc_full
//
//   free:    mov  route_free_length(%rip), %rax  0 until published: every free is refused
//            mov  %rdi, %rcx
//            sub  route_free_begin(%rip), %rcx    ptr - begin
//            cmp  %rax, %rcx
//            jae  free_full                       not the heap's (or unpublished): full path
//            jmp  *route_free(%rip)               the heap's release
//
// Memory ordering, as direct_routes.hpp states it for the C++ readers: `free_length` is
// loaded first (there with acquire order), then `free_begin` and the route. On x86-64 every
// load has acquire semantics (loads are not reordered with later loads, stores not with
// earlier stores), so a thread that sees publish()'s store of the length also sees the begin
// and the route stored before it, and one that sees the malloc route sees the started heap
// behind it. Loading the length first costs one instruction (its `mov`) over folding it into
// the `cmp`, which would load it after `begin`: a `begin` read before publish() (0) with a
// length read after it would take pointers that are not the heap's.
//
// Neither entry touches the stack or rbp, so the function they jump to (the heap's, or
// malloc_full / free_full) runs on the program's call: debug mode's stacks still start
// at the program's frame, as entry_call_site.hpp requires. The CFI is that of a function
// that has pushed nothing (return address at the CFA - 8).
//
// Used by exports.cpp for the entries that entry_points.inc marks ZHEAP_C_ROUTED_ENTRY:
// ZHEAP_DIRECT_ROUTE_ENTRY_<impl>("exported name") is a top-level asm string.
#pragma once

#if !defined(__x86_64__)
#error "the direct route entries are written for x86-64"
#endif

// The symbols the entries use are hidden (direct_routes.hpp names them), so they are
// reached pc-relative, without the GOT or the PLT.
// Each entry also gets a hidden alias, zheap_entry_<symbol>: plt_binding.cpp recognises a
// call slot bound to the entry by its address, which a reference to the exported name
// itself would take from the GOT (wherever the loader bound it).
#define ZHEAP_DIRECT_ROUTE_ENTRY_BEGIN_(symbol)   \
  ".pushsection .text\n"                          \
  ".p2align 4\n"                                  \
  ".globl " symbol "\n"                           \
  ".globl zheap_entry_" symbol "\n"               \
  ".hidden zheap_entry_" symbol "\n"              \
  ".type " symbol ", @function\n" symbol ":\n"   \
  "zheap_entry_" symbol ":\n"                     \
  ".cfi_startproc\n"

#define ZHEAP_DIRECT_ROUTE_ENTRY_END_(symbol) \
  ".cfi_endproc\n"                            \
  ".size " symbol ", .-" symbol "\n"          \
  ".popsection\n"

#define ZHEAP_DIRECT_ROUTE_ENTRY_malloc(symbol)       \
  ".hidden zheap_route_malloc\n"                      \
  ZHEAP_DIRECT_ROUTE_ENTRY_BEGIN_(symbol)             \
  "jmp *zheap_route_malloc(%rip)\n"                   \
  ZHEAP_DIRECT_ROUTE_ENTRY_END_(symbol)

#define ZHEAP_DIRECT_ROUTE_ENTRY_free(symbol)              \
  ".hidden zheap_route_free_length\n"                      \
  ".hidden zheap_route_free_begin\n"                       \
  ".hidden zheap_route_free\n"                             \
  ".hidden zheap_free_full\n"                              \
  ZHEAP_DIRECT_ROUTE_ENTRY_BEGIN_(symbol)                  \
  "movq zheap_route_free_length(%rip), %rax\n"             \
  "movq %rdi, %rcx\n"                                      \
  "subq zheap_route_free_begin(%rip), %rcx\n"              \
  "cmpq %rax, %rcx\n"                                      \
  "jae zheap_free_full\n"                                  \
  "jmp *zheap_route_free(%rip)\n"                          \
  ZHEAP_DIRECT_ROUTE_ENTRY_END_(symbol)

// free once the routes are published, for call slots that plt_binding.cpp points at it
// (never exported): the same test and jump as free's entry above, with both bounds folded
// into the instructions that use them (one instruction less). Folded, `begin` would be
// loaded before `length`, which is safe only once both are final: a slot is pointed here
// only after publish() stored them, and they never change afterwards.
//
//   free_after_publish:  mov  %rdi, %rax
//                        sub  route_free_begin(%rip), %rax
//                        cmp  route_free_length(%rip), %rax
//                        jae  free_full
//                        jmp  *route_free(%rip)
#define ZHEAP_DIRECT_ROUTE_FREE_AFTER_PUBLISH(symbol)     \
  ".hidden zheap_route_free_length\n"                      \
  ".hidden zheap_route_free_begin\n"                       \
  ".hidden zheap_route_free\n"                             \
  ".hidden zheap_free_full\n"                              \
  ".hidden " symbol "\n"                                   \
  ZHEAP_DIRECT_ROUTE_ENTRY_BEGIN_(symbol)                  \
  "movq %rdi, %rax\n"                                      \
  "subq zheap_route_free_begin(%rip), %rax\n"              \
  "cmpq zheap_route_free_length(%rip), %rax\n"             \
  "jae zheap_free_full\n"                                  \
  "jmp *zheap_route_free(%rip)\n"                          \
  ZHEAP_DIRECT_ROUTE_ENTRY_END_(symbol)
