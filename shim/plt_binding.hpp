// PLT binding: once the direct routes are published, the loaded objects' call slots for
// malloc and free are pointed past libzheap.so's exported entries.
//
// Why: a program calls malloc through its PLT, one indirect jump to the entry bound in
// its GOT slot; libzheap.so's malloc entry is itself a jump through its route
// (direct_route_entries.hpp), so every malloc takes two jumps where preloading the
// allocator's own library takes one, and free's entry reloads its bounds for a race that
// only exists before publishing. On a pure malloc/free loop that was most of what
// zheap-jemalloc cost over jemalloc alone (docs/BENCHMARKS.md). After binding, a slot for
// malloc holds the heap's allocate_default itself (jemalloc's malloc in jemalloc mode),
// and a slot for free holds free_after_publish, the ownership test with its bounds folded
// in: foreign pointers still never reach the heap.
//
// Which slots: the JUMP_SLOT relocations named malloc or free of every object loaded when
// the routes are published (the program and its libraries), when the slot is bound to
// zheap's exported entry (the loader chose zheap for it, whatever the object's flags),
// or not bound yet (lazy binding: it still points into the object's own PLT) where it
// would be bound to zheap's entry, which the global scope finds first: not when the
// object binds its own symbols first (DT_SYMBOLIC) or defines the function itself.
// Left alone: GLOB_DAT slots (a function pointer taken with &malloc keeps its identity;
// glibc 2.36 calls its own malloc through one); objects loaded later (dlopen), which
// call the exported entries as before. A slot in a RELRO page is written with the page
// made writable for that moment and then read-only again. A slot changes once, with one
// atomic store, from one correct target to another, so a thread calling through it
// meanwhile takes either.
//
// Turned off by ZHEAP_BIND_PLT=0; never done in debug mode or with a layer on (the routes
// are not published then), nor in the in-process test build (plt_binding.cpp is built
// into libzheap.so only).
#pragma once

namespace zheap::shim::plt_binding {

// Rebinds the slots described above to the published routes. Called by
// direct_routes::publish() once it has published them.
void bind_published_routes() noexcept;

}  // namespace zheap::shim::plt_binding
