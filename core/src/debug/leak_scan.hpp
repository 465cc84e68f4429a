// The leak scan: which live blocks are still reachable at leak_check(), and which of the
// lost ones are definitely or indirectly lost (LeakKind), as LeakSanitizer and Valgrind's
// memcheck decide it. A conservative mark phase: any aligned word whose value lies in a
// live block's user bytes [address, address + size) (size 0: exactly address) points to
// that block; interior pointers count.
//
// Roots (LeakCheckOptions::scan_process_roots), from a snapshot of /proc/self/maps: every
// readable, writable, private mapping (the globals and .bss of every loaded object, the
// brk heap, thread stacks with their static TLS, other anonymous memory), except
//   - LeakCheckOptions::not_roots (the backing allocator's region in the shim);
//   - every tracked block's backing memory, live or quarantined ([base, base + base_len),
//     the record in front of it included, which holds its address): a block is scanned
//     only once it is reached, and then only its user bytes;
//   - `never_roots`: the allocator's own bookkeeping (the block table's start map; the
//     quarantine ring, which holds freed blocks' addresses; the snapshot and this scan's
//     arrays);
//   - [vvar], [vsyscall] and device mappings (/dev/..., reading them can have effects);
//   - the calling thread's stack below `stack_start`: the scanner's own frames, which hold
//     block addresses. From stack_start up (the caller's frames) it is scanned.
// The calling thread's callee-saved registers are spilled into its stack above
// stack_start by DebugAllocator::leak_check before it calls in here (caller-saved ones
// are dead across that call, or already in the caller's frame). Other threads' registers
// are NOT captured: LeakSanitizer stops every thread and reads them; this scan does not
// stop anyone, so a pointer held only in another running (or blocked) thread's registers
// is missed, and its block may be reported lost. Other threads' whole stack mappings are
// scanned, dead space below their stack pointer included (we do not know it): stale
// pointers there can make a lost block look reachable, never the reverse.
// Roots are read with process_vm_readv in chunks (os::read_if_readable), so a mapping that
// shrinks or vanishes under a running thread is skipped, not faulted on; where the system
// call is refused (seccomp), plain reads are used. Blocks are read directly: the caller
// holds every block-table lock, so no live block can be freed during the scan.
//
// Classification, after marking everything reachable from the roots:
//   1. a lost block pointed to by no other lost block is `definite`; each definite block's
//      flood marks the lost blocks it reaches `indirect`;
//   2. lost blocks still unclassified are cycles with no way in (Valgrind's cliques): in
//      address order, each one is called `definite` and flooded; a cycle leader reached by
//      a later flood becomes `indirect` (it was reachable from that leader's structure).
// Quarantined blocks are poisoned: never scanned, never reached.
//
// Cost: every root word and every live byte is read once to mark, lost blocks twice more
// at most (finding lost referrers, then their flood); each word that falls inside the
// heap's span costs a binary search over the live blocks. O((roots + live bytes) log n).
// Memory: about 25 bytes per block on mappings of its own, plus a 64 KiB read buffer.
// No malloc, no locks, no exceptions.
#pragma once

#include "debug/block_table.hpp"

#include <zheap/debug_allocator.hpp>

#include <cstdint>
#include <span>

namespace zheap::debug {

// `blocks`: every block (live and quarantined), sorted by address. Writes the kind of each
// live block into kinds[i] (quarantined blocks' entries are left as they are).
// `stack_start`: an address in the calling thread's stack; the part from there up is a
// root, the part below is the scanner's own. Unused without scan_process_roots.
// false when the scan's memory could not be mapped: then every live block is `definite`.
bool classify_blocks(std::span<const BlockRecord> blocks, std::span<const AddressRange> never_roots,
                     const LeakCheckOptions& options, std::uintptr_t stack_start, LeakKind* kinds) noexcept;

}  // namespace zheap::debug
