// FrameRule: how to step from one x86-64 stack frame to its caller at a given return
// address, read once from the DWARF call-frame information (.eh_frame) and then cached.
//
// Why: Debian builds programs and libraries without frame pointers, so the only correct
// way up the stack is the CFI that the compiler emits for exceptions. libgcc's
// _Unwind_Backtrace re-interprets it for every frame of every capture (tens of
// microseconds a stack); but at one return address the rule is always the same, and for
// compiled code it has one of a few shapes:
//
//     CFA = rsp + N   or   CFA = rbp + N        (CFA: the caller's rsp after the return)
//     return address at CFA - 8
//     rbp unchanged   or   saved at CFA + k
//
// find_frame_rule() looks up the FDE that covers the address (libgcc's _Unwind_Find_FDE:
// the binary search over .eh_frame_hdr that _Unwind_Backtrace itself uses), runs the CIE's
// and FDE's CFA programs up to that address, and says which of those shapes it found, or
// that the address needs the general unwinder (a signal frame, a DWARF expression, a CFA
// in another register, an opcode we do not know, no FDE at all), or that the stack ends
// there (the return-address column is undefined, as in _start and a new thread's clone).
//
// No allocation, no locks of ours (libgcc's FDE lookup takes the loader's lock for a
// moment, as every _Unwind_Backtrace does). Cold path: once per distinct return address.
#pragma once

#include <cstdint>

namespace zheap::debug {

struct FrameRule {
  enum class Kind : std::uint8_t {
    unknown = 0,   // not computed (an empty cache slot reads as this)
    step,          // the fields below say how to reach the caller
    end_of_stack,  // the return address is undefined here: the outermost frame
    general,       // only the general unwinder can step over this frame
  };
  enum class CfaBase : std::uint8_t { rsp, rbp };

  Kind kind = Kind::unknown;
  CfaBase cfa_base = CfaBase::rsp;
  bool rbp_saved = false;         // rbp is at CFA + rbp_offset; otherwise unchanged
  std::int32_t cfa_offset = 0;    // CFA = base register + cfa_offset
  std::int32_t rbp_offset = 0;

  // 64 bits, so that a cache slot can hold it in one atomic word. The walker reads the
  // packed form directly (the accessors below): building the struct from it went
  // through the stack and stalled on store forwarding, a third of a capture's time.
  std::uint64_t pack() const noexcept {
    return static_cast<std::uint64_t>(kind) | static_cast<std::uint64_t>(cfa_base) << 2 |
           static_cast<std::uint64_t>(rbp_saved) << 3 |
           static_cast<std::uint64_t>(static_cast<std::uint16_t>(static_cast<std::int16_t>(rbp_offset))) << 16 |
           static_cast<std::uint64_t>(static_cast<std::uint32_t>(cfa_offset)) << 32;
  }
  static Kind packed_kind(std::uint64_t bits) noexcept { return static_cast<Kind>(bits & 3); }
  static bool packed_cfa_from_rbp(std::uint64_t bits) noexcept { return ((bits >> 2) & 1) != 0; }
  static bool packed_rbp_saved(std::uint64_t bits) noexcept { return ((bits >> 3) & 1) != 0; }
  static std::int64_t packed_rbp_offset(std::uint64_t bits) noexcept {
    return static_cast<std::int16_t>(static_cast<std::uint16_t>(bits >> 16));
  }
  static std::int64_t packed_cfa_offset(std::uint64_t bits) noexcept {
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(bits >> 32));
  }

  static FrameRule unpack(std::uint64_t bits) noexcept {
    FrameRule rule;
    rule.kind = static_cast<Kind>(bits & 3);
    rule.cfa_base = static_cast<CfaBase>((bits >> 2) & 1);
    rule.rbp_saved = ((bits >> 3) & 1) != 0;
    rule.rbp_offset = static_cast<std::int16_t>(static_cast<std::uint16_t>(bits >> 16));
    rule.cfa_offset = static_cast<std::int32_t>(static_cast<std::uint32_t>(bits >> 32));
    return rule;
  }
};

// The rule at `return_address` (a value found in a return-address slot: the call
// instruction ends just before it, so the rule of `return_address - 1` is used).
FrameRule find_frame_rule(std::uintptr_t return_address) noexcept;

}  // namespace zheap::debug
